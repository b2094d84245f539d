"""Runs for the report tests: the real runner on the fixture data with the deterministic stand-in model of
test_runner (seconds, no weights), and the bench's synthetic run for scale."""

import importlib.util
import json
from pathlib import Path

from flamingo_eval.runner import RunConfig, Runner
from tests.test_runner import FIXTURES, CopyLastDemo

ROOT = Path(__file__).resolve().parent.parent


def stand_in_run(out: Path, tasks=("vqav2", "hateful_memes"), shots=(0, 2), seeds=(1, 2)) -> Path:
    """<out>/copy-last-demo/: results and samples of the runner on the fixtures."""
    config = RunConfig(model="copy-last-demo", tasks=list(tasks), shots=list(shots), seeds=list(seeds),
                       data_root=str(FIXTURES), output_dir=str(out), batch_size=4, progress=False)
    Runner(config, model=CopyLastDemo()).run()
    return out / "copy-last-demo"


def read_samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_script(path: Path) -> tuple[str, dict]:
    """A data script ``window.__chunk(name, payload);`` -> (name, payload)."""
    text = path.read_text()
    assert text.startswith("window.__chunk(") and text.endswith(");\n"), text[:80]
    name, _, payload = text[len("window.__chunk("):-3].partition(",")
    return json.loads(name), json.loads(payload)
