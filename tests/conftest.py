import json
import os

import pytest

# Tests never download: a hub id that is not cached fails at once instead of waiting on the network.
# (huggingface_hub reads this when it is first imported, which is after this file.)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 100, "width": 16, "heads": 1, "layers": 1},
}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache root: no test sees another's parsed splits or features."""
    monkeypatch.setenv("FLAMINGO_EVAL_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A registered open_clip config with random weights: a CLIP small enough for every test."""
    import open_clip

    path = tmp_path_factory.mktemp("clipcfg") / "tiny-rices-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(path)
    return "tiny-rices-clip"


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    """``tiny_vlm(arch) -> Path``: the tiny random checkpoint of ``arch`` (tests/helpers_vlm.py), built once per
    test session."""
    from tests.helpers_vlm import build_tiny

    root, built = tmp_path_factory.mktemp("tiny-vlm"), {}

    def get(arch: str):
        if arch not in built:
            built[arch] = build_tiny(arch, root)
        return built[arch]

    return get
