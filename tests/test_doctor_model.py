"""doctor's model checks: where each part's weights are (local, the Hugging Face cache, the hub), how large, and
whether the model fits the memory it would run in at the chosen precision."""

from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from flamingo_eval.doctor import model as doctor_model
from flamingo_eval.doctor import weights
from flamingo_eval.doctor.environment import Gpu
from flamingo_eval.doctor.model import check_fit, check_model
from flamingo_eval.doctor.weights import Part, checkpoint_params, locate, model_parts, safetensors_params
from flamingo_eval.models.families import get_spec

GPU80 = Gpu("H100", 80_000_000_000, True)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_parameters_are_counted_from_safetensors_headers_and_mapped_checkpoints(tmp_path):
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5, dtype=torch.bfloat16)}, tmp_path / "m.safetensors")
    assert safetensors_params(tmp_path / "m.safetensors") == 17
    torch.save({"model_state_dict": {"x": torch.zeros(2, 3), "y": torch.zeros(7)}}, tmp_path / "checkpoint.pt")
    assert checkpoint_params(tmp_path / "checkpoint.pt") == 13


def test_of_toy_is_all_local_and_its_count_is_its_tensors():
    found = [locate(p) for p in model_parts(get_spec("of-toy"))]
    assert [(f.part.label, f.where) for f in found] == [
        ("language model", "local"), ("checkpoint", "local"), ("vision tower", "local")]
    from safetensors.torch import load_file

    lm = load_file(f"{found[0].note}/model.safetensors")
    assert found[0].params == sum(t.numel() for t in lm.values())
    assert all(f.bytes > 0 and f.params > 0 for f in found)


def test_an_openflamingo_preset_names_its_hub_parts():
    parts = model_parts(get_spec("of-9b"))
    assert [(p.label, p.ref, p.filename) for p in parts] == [
        ("language model", "anas-awadalla/mpt-7b", None),
        ("checkpoint", "openflamingo/OpenFlamingo-9B-vitl-mpt7b", "checkpoint.pt"),
        ("vision tower", "timm/vit_large_patch14_clip_224.openai", "open_clip_model.safetensors")]
    assert [(p.ref, p.revision) for p in model_parts(get_spec("idefics2-8b-base"))] == [
        ("HuggingFaceM4/idefics2-8b-base", None)]


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache in its on-disk layout; ``add(repo, files)`` caches a snapshot."""
    from huggingface_hub import constants

    root = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))

    def add(repo, files):
        repo_dir = root / f"models--{repo.replace('/', '--')}"
        (repo_dir / "refs").mkdir(parents=True)
        (repo_dir / "refs" / "main").write_text(COMMIT)
        snap = repo_dir / "snapshots" / COMMIT
        snap.mkdir(parents=True)
        for name, tensors in files.items():
            save_file(tensors, snap / name)
        return snap

    return add


def test_a_cached_repository_is_found_on_disk_with_its_size(hub_cache):
    snap = hub_cache("org/vlm", {"model.safetensors": {"w": torch.zeros(10, 10)}})
    found = locate(Part("model", "org/vlm", False))
    assert (found.where, found.params, found.bytes) == ("cached", 100, (snap / "model.safetensors").stat().st_size)
    check = check_model_parts_line(found)
    assert check.status == "ok" and "in the Hugging Face cache" in check.what


def check_model_parts_line(found):
    return doctor_model._weights_check(found)


def test_a_repository_offline_and_not_cached_blocks_with_the_download_command(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = locate(Part("model", "org/absent", False))
    assert found.where == "missing"
    check = check_model_parts_line(found)
    assert check.status == "fail" and "HF_HUB_OFFLINE" in check.what
    assert check.fix == "`huggingface-cli download org/absent` ahead of the run"


def test_online_a_missing_repository_says_how_much_the_run_downloads(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asked = []

    def model_info(repo_id, revision=None, files_metadata=False, timeout=None):
        asked.append((repo_id, files_metadata))
        siblings = [SimpleNamespace(rfilename=n, size=s) for n, s in (
            ("model-00001-of-00002.safetensors", 10_000_000_000), ("model-00002-of-00002.safetensors", 6_000_000_000),
            ("pytorch_model.bin", 16_000_000_000), ("config.json", 900), ("sub/model.safetensors", 5))]
        return SimpleNamespace(siblings=siblings, safetensors=SimpleNamespace(total=8_000_000_000))

    monkeypatch.setattr("huggingface_hub.model_info", model_info)
    found = locate(Part("model", "org/big", False))
    assert (found.where, found.bytes, found.params) == ("download", 16_000_000_000, 8_000_000_000)
    assert asked == [("org/big", True)]
    check = check_model_parts_line(found)
    assert check.status == "warn" and "the run downloads 16.0 GB, 8.00B parameters" in check.what


def test_an_unreachable_hub_leaves_the_size_unknown(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.model_info", unreachable)
    found = locate(Part("checkpoint", "org/of", False, filename="checkpoint.pt"))
    assert found.where == "download" and found.bytes is None and "Name or service not known" in found.note


def test_a_local_folder_without_weights_blocks(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    check = check_model_parts_line(locate(Part("language model", str(tmp_path), True)))
    assert check.status == "fail" and "no weight files" in check.what


def test_fit_against_one_gpu_all_gpus_and_none():
    assert check_fit(8_000_000_000, "bf16", [GPU80], "cuda").status == "ok"  # 19.2 GB
    spread = check_fit(30_000_000_000, "bf16", [GPU80, GPU80], "cuda")  # 72 GB: not one, both
    assert spread.status == "ok"
    spread = check_fit(40_000_000_000, "bf16", [GPU80, GPU80], "cuda")  # 96 GB
    assert spread.status == "warn" and spread.fix == "run with --device-map auto"
    too_big = check_fit(80_000_000_000, "fp32", [GPU80], "cuda")
    assert too_big.status == "fail" and "--precision bf16" in too_big.fix
    assert "384.0 GB" in too_big.what
    assert check_fit(None, "bf16", [GPU80], "cuda").status == "warn"


def test_fit_on_the_cpu_is_against_the_machines_memory(monkeypatch):
    monkeypatch.setattr(doctor_model, "machine_memory", lambda: 16_000_000_000)
    assert check_fit(1_000_000_000, "fp32", [], "cpu").status == "ok"
    assert check_fit(9_000_000_000, "fp32", [], "cpu").status == "fail"


def test_an_unknown_model_is_one_failing_line():
    (check,) = check_model("of-9x", "bf16", [], "cpu")
    assert check.status == "fail" and "of-9b" in check.what and "ls models" in check.fix


def test_of_toy_is_ready_here():
    checks = check_model("of-toy", "fp32", [], "cpu")
    assert [c.status for c in checks] == ["ok"] * 4 and checks[-1].name == "fits"


def test_a_hub_checkpoint_file_is_looked_up_in_the_cache(hub_cache, monkeypatch):
    monkeypatch.setattr(weights, "checkpoint_params", lambda path: 42)
    snap = hub_cache("openflamingo/of", {})
    torch.save({"x": torch.zeros(1)}, snap / "checkpoint.pt")
    found = locate(Part("checkpoint", "openflamingo/of", False, filename="checkpoint.pt"))
    assert (found.where, found.params) == ("cached", 42)
