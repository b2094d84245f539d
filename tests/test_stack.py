"""The stack a result was computed on: key versions, the declared ranges, and whether the install is the lock."""

from importlib.metadata import version
from pathlib import Path

from flamingo_eval import stack


def test_the_lock_pins_every_key_package_and_the_declared_ranges_admit_it():
    lock = stack.read_lock()
    assert lock is not None
    for name in stack.KEY_PACKAGES:
        assert stack.canonical(name) in lock
    assert "<=" in stack.declared_range("transformers") and "<=" in stack.declared_range("open_clip_torch")
    assert "<=" in stack.declared_range("tokenizers")
    cap = stack.declared_range("transformers").split("<=")[1].split(",")[0]
    assert lock["transformers"] == cap  # the lock holds the newest version the range admits


def test_a_version_other_than_the_locked_one_is_a_difference(tmp_path):
    lock = {stack.canonical(n): version(n) for n in stack.KEY_PACKAGES}
    lock["transformers"] = "0.0.1"
    lock["not-a-real-package"] = "1.0"
    diff = stack.lock_differences(lock)
    assert diff["transformers"] == {"locked": "0.0.1", "installed": version("transformers")}
    assert diff["not-a-real-package"] == {"locked": "1.0", "installed": None}
    assert "torch" not in diff


def test_a_package_shadowed_earlier_on_the_path_is_the_version_compared(tmp_path, monkeypatch):
    """An overlay (PYTHONPATH=/some/dir holding another transformers) is what Python imports: the lock check
    must compare that version, not the one it shadows in site-packages."""
    meta = tmp_path / "tokenizers-0.0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: tokenizers\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert version("tokenizers") == "0.0.1"
    lock = {stack.canonical(n): version(n) for n in stack.KEY_PACKAGES}
    assert "tokenizers" not in stack.lock_differences(lock)
    lock["tokenizers"] = "1.0"
    assert stack.lock_differences(lock)["tokenizers"] == {"locked": "1.0", "installed": "0.0.1"}


def test_an_unlocked_installed_package_is_a_difference():
    lock = {stack.canonical(n): version(n) for n in stack.KEY_PACKAGES}
    assert stack.lock_differences(lock)["numpy"] == {"locked": None, "installed": version("numpy")}


def test_the_record_names_the_key_versions_and_the_lock_verdict():
    record = stack.stack_record()
    for name in stack.KEY_PACKAGES:
        assert record["versions"][name] == version(name)
    lock = record["lock"]
    assert lock["file"] == "requirements.lock"
    assert set(lock["key_packages"]) == set(stack.KEY_PACKAGES)
    assert lock["matches"] == (not lock["differences"])


def test_a_missing_lock_reads_as_none(tmp_path):
    assert stack.read_lock(tmp_path / "requirements.lock") is None


def test_describe_is_one_line_with_the_supported_range():
    line = stack.describe()
    assert "\n" not in line and f"transformers {version('transformers')}" in line
    assert f"supported transformers {stack.declared_range('transformers')}" in line


def test_a_transformers_outside_the_declared_range_refuses_in_one_line(monkeypatch, tmp_path, capsys):
    """A newer transformers may read a config or run a processor differently; no result is written."""
    from flamingo_eval import stack
    from flamingo_eval.cli import main

    real = stack.installed
    monkeypatch.setattr(stack, "installed", lambda name: "5.99.0" if name == "transformers" else real(name))
    assert stack.out_of_range() == [f"transformers 5.99.0 (supported {stack.declared_range('transformers')})"]
    root = Path(__file__).resolve().parent
    code = main(["run", "--model", "of-toy", "--task", "vqav2", "--shots", "0", "--data-root",
                 str(root / "fixtures" / "data"), "--output-dir", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "untested versions installed: transformers 5.99.0" in err[0]
    assert not [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    monkeypatch.setenv(stack.UNTESTED_ENV, "1")
    stack.check_supported()  # told to go on: no error, and results record out_of_range


def test_the_installed_lock_is_inside_the_declared_ranges():
    from flamingo_eval import stack

    assert stack.out_of_range() == []
