"""The report benchmark runs end to end at a small size: synthetic run, report, sizes, first view in Chromium."""

from tests.helpers_report import bench_module


def test_report_bench_smoke_run(capsys):
    bench = bench_module()
    assert bench.main(["--items", "300", "--shots", "4", "--trials", "2", "--images", "30"]) == 0
    out = capsys.readouterr().out
    assert "300 items x 4 shots x 2 trials (random)" in out and "report written in" in out
    if bench.find_chromium():
        assert "no sample data" in out and "budget: first view < 1000 ms, cell < 2000 ms: OK" in out
    else:
        assert "first view not measured" in out
