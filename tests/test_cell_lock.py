"""One run per cell at a time: a second run of the same cell into the same folder waits for the first and then
computes nothing (or, with --no-wait, stops with one line); a run killed with SIGKILL never blocks the rerun."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flamingo_eval import cli
from flamingo_eval.cell_lock import CellBusy
from flamingo_eval.runner import Runner
from tests.test_runner import FIXTURES, CopyLastDemo, config

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")

# A run of vqav2 at 2 shots with the stand-in model; with a gate, it stops in its first batch until the gate
# file exists. Prints how many prompts it computed.
RUN = """
import json, sys, time
from pathlib import Path
from flamingo_eval.runner import Runner
from tests.test_runner import CopyLastDemo, config

out, gate = Path(sys.argv[1]), sys.argv[2]

class Gated(CopyLastDemo):
    def generate(self, prompts, settings):
        if gate != "-":
            (out / "started").touch()
            deadline = time.time() + 120
            while not Path(gate).exists() and time.time() < deadline:
                time.sleep(0.02)
        return super().generate(prompts, settings)

model = Gated()
Runner(config(out, shots=[2], seeds=[1]), model=model).run()
print(json.dumps({"generated": model.generated}))
"""


def start_run(out: Path, gate: str = "-") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN, str(out), gate], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def generated(proc: subprocess.Popen) -> int:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])["generated"]


def logged_ids(tmp_path: Path) -> list[str]:
    return [json.loads(line)["id"] for p in (tmp_path / "runs" / "copy-last-demo" / "items").glob("*.jsonl")
            for line in p.read_text().splitlines()]


def test_a_second_run_of_the_same_cell_waits_for_the_first_then_computes_nothing(tmp_path):
    gate = tmp_path / "gate"
    first = start_run(tmp_path, str(gate))
    wait_for(tmp_path / "started", first)  # the first run holds the cell and is computing it
    second = start_run(tmp_path)
    deadline = time.time() + 60
    while "waiting for another run" not in (line := second.stderr.readline()):
        assert line and time.time() < deadline, "the second run did not wait"
    assert "copy-last-demo/vqav2_2shot_random" in line
    gate.touch()
    assert generated(first) == 6  # every item, once
    assert generated(second) == 0  # it found them logged
    ids = logged_ids(tmp_path)
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 6
    result = json.loads((tmp_path / "runs" / "copy-last-demo" / "vqav2_2shot_random.json").read_text())
    assert result["n"] == 6


def test_with_no_wait_a_busy_cell_stops_the_run_with_one_line_and_exit_3(tmp_path, capsys, monkeypatch):
    import flamingo_eval.runner

    gate = tmp_path / "gate"
    first = start_run(tmp_path, str(gate))
    try:
        wait_for(tmp_path / "started", first)
        with pytest.raises(CellBusy, match="copy-last-demo/vqav2_2shot_random is being computed by another run"):
            Runner(config(tmp_path, shots=[2], seeds=[1], wait=False), model=CopyLastDemo()).run()
        # the command line, with the stand-in model instead of a loaded one
        monkeypatch.setattr(flamingo_eval.runner, "run", lambda cfg: Runner(cfg, model=CopyLastDemo()).run())
        code = cli.main(["run", "--model", "copy-last-demo", "--task", "vqav2", "--shots", "2", "--seeds", "1",
                         "--data-root", str(FIXTURES), "--output-dir", str(tmp_path / "runs"), "--quiet",
                         "--no-wait"])
        err = capsys.readouterr().err
        assert code == 3 and "Traceback" not in err
        assert [x for x in err.splitlines() if x.startswith("flamingo-eval:")] == [
            x for x in err.splitlines() if "is being computed by another run" in x]
    finally:
        gate.touch()
    assert generated(first) == 6


def test_a_run_killed_with_sigkill_leaves_no_lock_that_blocks_the_rerun(tmp_path):
    gate = tmp_path / "never"
    killed = start_run(tmp_path, str(gate))
    wait_for(tmp_path / "started", killed)  # holding the lock, mid-cell
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert list((tmp_path / "runs" / "copy-last-demo" / "items").glob("*.lock"))  # the file stays; the lock not
    rerun = CopyLastDemo()
    Runner(config(tmp_path, shots=[2], seeds=[1], wait=False), model=rerun).run()
    assert rerun.generated == 6
    assert json.loads((tmp_path / "runs" / "copy-last-demo" / "vqav2_2shot_random.json").read_text())["n"] == 6


def test_under_torchrun_the_other_ranks_follow_rank_0_and_never_touch_the_lock(tmp_path):
    from dataclasses import dataclass, field

    from flamingo_eval.cell_lock import cell_lock
    from flamingo_eval.distributed import World

    @dataclass(frozen=True)
    class Rank1(World):
        """Rank 1 of 2, hearing from rank 0: not yet, not yet, taken."""

        told: list = field(default_factory=lambda: [False, False, True])

        def broadcast_from_main(self, obj):
            assert obj is False  # rank 1 never claims the lock itself
            return self.told.pop(0)

    lock = tmp_path / "items" / "cell.lock"
    world = Rank1(rank=1, size=2)
    with cell_lock(lock, "m/cell", world, wait=True, poll_s=0):
        assert world.told == []  # it waited through both polls
    assert not lock.exists()
    with pytest.raises(CellBusy, match="m/cell is being computed by another run"):
        with cell_lock(lock, "m/cell", Rank1(rank=1, size=2, told=[False]), wait=False):
            pass
