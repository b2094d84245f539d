"""The golden runner cell (tests/golden/runner/) as a script, so torchrun can run it in several processes:
``python -m torch.distributed.run --nproc_per_node 2 tests/helpers_golden_run.py OUTPUT_DIR``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flamingo_eval.runner import Runner  # noqa: E402
from tests.test_runner import CopyLastDemo, golden_config  # noqa: E402

if __name__ == "__main__":
    Runner(golden_config(Path(sys.argv[1])), model=CopyLastDemo()).run()
