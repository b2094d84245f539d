"""`flamingo-eval index`: features of both splits computed ahead of time, so the evaluation reuses them."""


import numpy as np
import pytest

import flamingo_eval.data
from flamingo_eval.cli import main
from flamingo_eval.data.sample import Sample
from flamingo_eval.demos.encoder import ClipEncoder
from flamingo_eval.demos.features import image_features, image_table
from flamingo_eval.indexing import build_index
from flamingo_eval.prompt import Image
from tests.test_demos_features import write_image


class FakeSplit(list):
    def __init__(self, samples, name, fingerprint):
        super().__init__(samples)
        self.name, self.fingerprint, self.ids = name, fingerprint, [s.id for s in samples]


@pytest.fixture
def splits(tmp_path, monkeypatch):
    imgs = [
        Image(key=f"coco/img{i}.png", path=str(write_image(tmp_path / f"{i}.png", (40 * i, 0, 0))))
        for i in range(4)
    ]
    made = {
        "demo": FakeSplit(
            [Sample("a", imgs[0]), Sample("b", imgs[1]), Sample("c", imgs[1])], "train", "fp-t"
        ),
        "eval": FakeSplit([Sample("x", imgs[2]), Sample("y", imgs[3])], "val", "fp-v"),
    }
    calls = []

    def load_split(task, which, data_root, overrides):
        calls.append((task.name, which, data_root, overrides))
        return made[which]

    monkeypatch.setattr(flamingo_eval.data, "load_split", load_split, raising=False)
    return made, calls


def test_build_index_caches_both_splits_for_the_evaluation(splits, tiny_clip):  # noqa: F811
    made, calls = splits
    summary = build_index("vqav2", "D", {"val_images": "V"}, tiny_clip, None, progress=False, num_workers=0)
    assert calls == [("vqav2", "demo", "D", {"val_images": "V"}), ("vqav2", "eval", "D", {"val_images": "V"})]
    assert summary["demo"]["samples"] == 3 and summary["demo"]["images"] == 2 and summary["demo"]["dim"] == 16
    assert summary["eval"]["split"] == "val"

    class NoEncoder(ClipEncoder):
        def encode_batches(self, images):
            raise AssertionError("features should come from the cache")

    feats = image_features(image_table(made["demo"]), "fp-t", NoEncoder(tiny_clip, None))
    assert feats.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)


def test_index_command_parses_encoder_options(splits, tiny_clip, capsys):  # noqa: F811
    argv = ["index", "--task", "vqav2", "--data-root", "D", "--rices-encoder", tiny_clip,
            "--rices-pretrained", "none", "--workers", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "demo  train: 3 samples, 2 images, 16-d" in out
