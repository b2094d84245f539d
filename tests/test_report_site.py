"""`flamingo-eval report`: the folder it writes (a page that opens from disk, a first view independent of the
number of samples, the leaderboard's PNG), what it refuses to write over, and what it says."""

import re

import pytest

from flamingo_eval.cli import main
from flamingo_eval.errors import UserError
from flamingo_eval.report import build_report
from flamingo_eval.report.site import MARKER
from tests.helpers_report import bench_module, read_script, stand_in_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("site")
        mp.setenv("FLAMINGO_EVAL_CACHE", str(base / "cache"))
        return stand_in_run(base / "runs")


def test_the_command_writes_a_page_that_opens_from_disk_and_prints_where(run, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"open {(out / 'index.html').resolve().as_uri()}" in printed
    assert re.search(r"report: 4 cells, 48 items, \d+ images \(\d+ thumbnails made, 0 reused\), 0 missing", printed)
    html = (out / "index.html").read_text()
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == ["style.css", "app.js", "data/index.js", "#/", "#/", "#/compare"]
    assert "http" not in html and "http://" not in (out / "app.js").read_text().replace("http://www.w3.org", "")
    name, index = read_script(out / "data" / "index.js")
    assert name == "data/index.js"
    assert sorted(index["cells"]) == [f"copy-last-demo__{t}_{s}shot_random" for t in ("hateful_memes", "vqav2")
                                      for s in (0, 2)]
    cell = index["cells"]["copy-last-demo__vqav2_2shot_random"]
    assert [t["seed"] for t in cell["trials"]] == [1, 2] and all(t["items"] == 6 for t in cell["trials"])
    assert (out / cell["trials"][1]["dir"] / "i0.js").is_file()
    assert (out / "shots.png").stat().st_size > 1000 and (out / MARKER).is_file()


def test_the_first_view_does_not_grow_with_the_number_of_samples(tmp_path):
    bench = bench_module()
    sizes = {}
    for items in (50, 5000):
        run = bench.synthetic_run(tmp_path / f"runs{items}", tmp_path / "data", items, shots=4, trials=1, images=30)
        summary = build_report([str(run)], tmp_path / f"r{items}", progress=False)
        sizes[items] = (summary.first_view_bytes, summary.bytes)
    assert abs(sizes[5000][0] - sizes[50][0]) < 200  # a few more digits in the counts, nothing per item
    assert sizes[5000][1] > sizes[50][1] + 1_000_000  # the samples are all there, in files read on demand


def test_a_folder_that_is_not_a_report_is_never_written_over(run, tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not empty and holds no flamingo-eval report"):
        build_report([str(run)], keep, progress=False)
    assert [p.name for p in keep.iterdir()] == ["thesis.tex"]
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file"):
        build_report([str(run)], tmp_path / "file", progress=False)


def test_an_earlier_report_is_replaced_whole(run, tmp_path):
    out = tmp_path / "report"
    build_report([str(run)], out, progress=False)
    only_vqa = tmp_path / "only"
    only_vqa.mkdir()
    for p in run.glob("vqav2_2shot*"):
        (only_vqa / p.name).write_bytes(p.read_bytes())
    build_report([str(only_vqa)], out, progress=False)
    assert sorted(p.name for p in (out / "data").iterdir()) == ["copy-last-demo__vqav2_2shot_random", "index.js"]
    assert not [p for p in out.iterdir() if p.name.startswith(".data")]


def test_no_results_is_one_clear_line(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err
    assert "no result files" in err and "Traceback" not in err


def test_missing_images_are_noted_and_the_report_is_still_written(run, tmp_path, capsys):
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in run.glob("vqav2_2shot*"):
        text = p.read_text()
        if p.suffix == ".json":
            import json

            r = json.loads(text)
            r["data_paths"] = {k: str(tmp_path / "gone" / k) for k in r["data_paths"]}
            text = json.dumps(r)
        (moved / p.name).write_text(text)
    assert main(["report", str(moved), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"note: (\d+) of \1 images not found .*pass --data-root", captured.err)
    assert (tmp_path / "r" / "index.html").is_file()
