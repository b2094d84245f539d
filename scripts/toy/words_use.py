"""Does of-toy take a data set's colour words from its demonstrations? Colour words in a demo run's outputs.

    python scripts/toy/words_use.py results/runs/demo/of-toy

Each toy data set calls the colours by its own words (``toy.datasets.NAMES``), which no image shows.
For every item whose references name a colour (captions; VQA colour answers), this prints the
share of outputs that use the data set's word, split by whether the prompt's demonstrations contain
that word. A model that learns words from its demonstrations scores far higher where they do; without
them it can only guess among the synonyms (about a quarter).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flamingo_eval.toy.datasets import NAMES  # noqa: E402
from flamingo_eval.toy.language import colour_words  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a demo's per-model folder, e.g. results/runs/demo/of-toy")
    args = p.parse_args()
    for task, names in NAMES.items():
        own = set(names.values())
        for path in sorted(args.run_dir.glob(f"{task}_*shot_*.samples.jsonl")):
            groups: dict[str, list[bool]] = {}
            for line in path.read_text().splitlines():
                r = json.loads(line)
                true = next((w for ref in r["references"][:1] for w in colour_words(ref) if w in own), None)
                if true is None:
                    continue
                shown = true in colour_words(r["prompt"][: r["prompt"].rfind("<image>")])
                key = "named in the demonstrations" if shown else "not named in them"
                groups.setdefault(key, []).append(true in colour_words(r["output"]))
            cells = "; ".join(f"{k}: {sum(v) / len(v):.2f} (n={len(v)})" for k, v in sorted(groups.items()))
            print(f"{path.name.removesuffix('.samples.jsonl')}: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
