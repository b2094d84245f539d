"""`make bench`: run every benchmark script in this folder, one after another, and fail if any fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# arguments a script needs here: the device check's full shapes need a GPU and minutes, so `make bench` runs
# its CPU mode (the same code at tiny sizes); on a GPU run `python bench/gpu.py --out results/gpu/<card>.json`
ARGS = {"gpu.py": ["--tiny"]}


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_"))
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script), *ARGS.get(script.name, [])], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
