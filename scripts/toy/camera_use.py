"""Does of-toy read the camera from its demonstrations? Colour words in a demo run's per-item outputs.

    python scripts/toy/camera_use.py results/runs/demo/of-toy [--data-root DIR]

For COCO and Flickr30k captions: the share of items whose first colour word is the true one, split by
whether the query photo is grey (its own tint shows the camera) and whether any image demonstration is
grey. A model that carries the camera over from demonstrations scores higher on non-grey queries when a
demonstration is grey.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flamingo_eval.toy import default_root  # noqa: E402
from flamingo_eval.toy.scenes import COLOURS, grey_cast  # noqa: E402


def _image(root: Path, task: str, item_id: str) -> Path:
    if task == "flickr30k":
        return root / "flickr30k" / "flickr30k-images" / f"{item_id}.jpg"
    for folder in ("val2014", "train2014"):
        path = root / "coco" / folder / f"COCO_{folder}_{int(item_id):012d}.jpg"
        if path.exists():
            return path
    raise FileNotFoundError(f"no COCO toy image for id {item_id} under {root / 'coco'}")


def _grey(root: Path, task: str, item_id: str) -> bool:
    return grey_cast(Image.open(_image(root, task, item_id)).convert("RGB").getpixel((0, 0))) is not None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a demo's per-model folder, e.g. results/runs/demo/of-toy")
    p.add_argument("--data-root", type=Path, help="toy data root (default: the cache's seed-0 root)")
    args = p.parse_args()
    root = args.data_root or default_root(0)
    for task in ("coco", "flickr30k"):
        for path in sorted(args.run_dir.glob(f"{task}_*shot_*.samples.jsonl")):
            groups: dict[str, list[bool]] = {}
            for line in path.read_text().splitlines():
                r = json.loads(line)
                true = next(w for w in r["references"][0].split() if w in COLOURS)
                said = [w for w in r["output"].split() if w in COLOURS]
                with_images = r["prompt"].count("<image>") > 1
                demo_grey = with_images and any(_grey(root, task, d) for d in r["demos"])
                key = f"query {'grey' if _grey(root, task, r['id']) else 'other'}, " \
                      f"{'a grey demo' if demo_grey else 'no grey demo'}"
                groups.setdefault(key, []).append(said[:1] == [true])
            cells = "; ".join(f"{k}: {sum(v) / len(v):.2f} (n={len(v)})" for k, v in sorted(groups.items()))
            print(f"{path.name.removesuffix('.samples.jsonl')}: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
