"""The device check (bench/gpu.py): --tiny runs every section on the CPU and prints the README's tables;
its full Qwen2.5-VL shape is the released checkpoint's; its helpers name the card, compare neighbours up to
ties and skip what the time budget cannot hold."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def gpu():
    path = Path(__file__).resolve().parent.parent / "bench" / "gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_tiny_check_prints_the_tables_and_writes_the_figures(gpu, tmp_path, capsys):
    out = tmp_path / "gpu" / "cpu.json"
    assert gpu.main(["--tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("Device: "):]

    rows = re.findall(r"^\| (of-9b|idefics2-8b|qwen2.5-vl-7b) \| (\d+) \| (\d+) \| [\d.]+ \| (\d+) \|(.*)\|$", table, re.M)
    throughput = [r for r in rows if r[3] == str(gpu.TINY.batch)]
    assert [(m, int(s)) for m, s, *_ in throughput] == [(m, s) for m in gpu.MODELS for s in gpu.TINY.shots]
    for *_, rest in throughput:
        cells = [c.strip() for c in rest.split("|")]
        assert len(cells) == 10  # samples/s, tokens/s, peak; largest batch and its three; prefill tok/s, prefill, step
        assert float(cells[0]) > 0 and float(cells[1]) > 0 and cells[2] == "-"  # no CUDA: no peak memory
        assert cells[3].startswith(str(gpu.TINY.max_batch))  # tiny plan: doubling stops at its largest batch
        assert re.fullmatch(r"[\d.]+ \(-\)", cells[8]) and re.fullmatch(r"[\d.]+ \(-\)", cells[9])  # floors unknown

    agreement = re.findall(r"^\| (of-9b|idefics2-8b|qwen2.5-vl-7b) \| [\d.e+-]+B \| [\d.e+-]+ \| (\d+)/(\d+) \| ([\d.e+-]+) \| (\w+) \|$",
                           table, re.M)
    assert tuple(a[0] for a in agreement) == gpu.MODELS
    for _, agree, prompts, diff, repeatable in agreement:
        assert int(prompts) == gpu.TINY.agreement_prompts and 0 <= int(agree) <= int(prompts)
        assert 0 <= float(diff) < 5  # bf16 moves log-probabilities a little, not by whole units
        assert repeatable == "yes"  # the same weights after bf16 -> fp32 -> bf16 give the same ids: they must

    rank = re.search(r"^ImageNet rank, of-9b: (\d+) classes.*: ([\d.]+)x; means agree to (\S+), top-1 over those "
                     r"classes (\w+)$", table, re.M)
    assert rank is not None and int(rank.group(1)) == gpu.TINY.rank[0] and float(rank.group(2)) > 0
    assert float(rank.group(3)) < 1e-2 and rank.group(4) == "same"  # bf16 on both sides: the same arithmetic

    figures = json.loads(out.read_text())
    assert figures["tiny"] and figures["card"]["bandwidth"] is None and figures["table"] == table.split("\ntotal")[0]
    rices = figures["rices"]
    assert (rices["pool"], rices["queries"]) == gpu.TINY.rices[:2]
    for other in rices["against"]:  # exact searches agree on every row (up to float ties)
        assert other["differ"] == 0 and other["identical"] + other["ties"] == rices["queries"]
    assert not figures["skipped"]


def test_the_full_qwen_shape_is_the_released_checkpoints(gpu):
    """Qwen2.5-VL-7B-Instruct's config at the default shape, built on the meta device (no memory, no weights):
    its parameter count, and what the floors count (the LM and output matrix; the embedding only for prefill)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    config = gpu.qwen2_5_vl_config(gpu.QwenVLShape(), gpu.qwen_tokenizer())
    with gpu.torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    assert sum(p.numel() for p in model.parameters()) == 8_292_166_656
    weights, embed, head = gpu.lm_parts(model)
    assert embed.shape == head.shape == (152064, 3584) and head is not embed  # untied, as released
    assert sum(p.numel() for p in weights) == 7_615_616_512  # all but the ViT and its merger
    assert config.vision_config.fullatt_block_indexes == [7, 15, 23, 31] and config.vision_config.window_size == 112


def test_cards_are_named_by_their_cuda_device_names(gpu, monkeypatch):
    expect = {"NVIDIA H100 80GB HBM3": ("H100 SXM", 3.35e12, 989e12), "NVIDIA H100 PCIe": ("H100 PCIe", 2.0e12, 756e12),
              "NVIDIA H200": ("H200", 4.8e12, 989e12), "NVIDIA A100-SXM4-80GB": ("A100 80GB SXM", 2.039e12, 312e12)}
    for name, (card, bandwidth, flops) in expect.items():
        monkeypatch.setattr(gpu.torch.cuda, "get_device_name", lambda device, name=name: name)
        got = gpu.detect_card("cuda", None, None)
        assert (got["card"], got["bandwidth"], got["flops"], got["figures"]) == (card, bandwidth, flops, "table")
    monkeypatch.setattr(gpu.torch.cuda, "get_device_name", lambda device: "Some Future GPU")
    assert gpu.detect_card("cuda", None, None)["bandwidth"] is None
    given = gpu.detect_card("cuda", 1e12, 2e14)
    assert (given["bandwidth"], given["flops"], given["figures"]) == (1e12, 2e14, "given")


def test_neighbours_compare_up_to_ties(gpu):
    ids = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    sims = np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7], [0.9, 0.8, 0.8]], dtype=np.float32)
    other_ids = np.array([[1, 2, 3], [4, 5, 10], [7, 9, 8]])  # row 1: another neighbour tied at the boundary;
    # row 2: two tied neighbours in the other order
    other_sims = sims.copy()
    assert gpu.same_neighbours(ids, sims, other_ids, other_sims) == {"rows": 3, "identical": 1, "ties": 2, "differ": 0}
    other_sims[2, 1] = 0.75  # a real difference in similarity is no tie
    assert gpu.same_neighbours(ids, sims, other_ids, other_sims)["differ"] == 1
    swapped = np.array([[2, 1, 3]])  # neighbours of different similarity in the other order: no tie either
    assert gpu.same_neighbours(ids[:1], sims[:1], swapped, sims[:1])["differ"] == 1


def test_budget_skips_a_section_that_does_not_fit(gpu, capsys):
    budget = gpu.Budget(10.0)
    assert budget.allows("small", 5.0)
    assert not budget.allows("of-9b build", 60.0)
    assert budget.skipped == ["of-9b build"]
    assert "skipped of-9b build: time guard" in capsys.readouterr().out


def test_a_gpu_report_reads_as_the_readme_table(gpu):
    """What only a GPU run fills in: peak memory, the floors, a batch search that ran out of memory."""
    run = lambda batch, seconds: {"batch": batch, "seconds": seconds, "samples_s": batch / seconds,  # noqa: E731
                                  "tokens_s": 20 * batch / seconds, "peak_bytes": (20 + batch) * 2**30}
    report = {
        "precision": "bf16", "torch": "2.x", "tiny": False, "skipped": ["idefics2-8b 32-shot throughput"],
        "card": {"device_name": "NVIDIA H100 80GB HBM3", "card": "H100 SXM", "bandwidth": 3.35e12, "flops": 989e12,
                 "figures": "table"},
        "models": [{"name": "of-9b", "params": 8.131e9, "decode_bytes": 15.5e9,
                    "agreement": {"prompts": 4, "ids_agree": 3, "max_logprob_diff": 0.42, "bf16_repeatable": True},
                    "throughput": [{"shots": 32, "prompt_tokens": 557.0, "base": run(8, 4.0), "prefill_s": 0.25,
                                    "prefill_tokens_s": 17824.0, "prefill_floor_s": 0.0683, "step_s": 0.03,
                                    "step_floor_s": 0.00463, "oom_at": 256, "largest": run(128, 20.0)}]}],
    }
    table = gpu.markdown(report)
    assert "NVIDIA H100 80GB HBM3 (H100 SXM: 3.35 TB/s, 989 TFLOP/s bf16; figures: table)" in table
    assert ("| of-9b | 32 | 557 | 20.0 | 8 | 2.00 | 40.0 | 28 | 128 (OOM at 256) | 6.40 | 128.0 | 148 | 17824 | "
            "250.0 (68.3) | 30.0 (4.6) |") in table
    assert "| of-9b | 8.13B | 14.4 | 3/4 | 0.42 | yes |" in table
    assert "skipped by the time guard: idefics2-8b 32-shot throughput" in table


def test_out_of_memory_skips_a_section_and_recovers(gpu):
    budget, recovered = gpu.Budget(10.0), []

    def too_big():
        raise gpu.torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB")

    assert gpu.attempt("of-9b agreement", too_big, "cpu", budget, recover=lambda: recovered.append(1)) is None
    assert budget.skipped == ["of-9b agreement (out of memory)"] and recovered == [1]
    assert gpu.attempt("fits", lambda: {"ok": 1}, "cpu", budget) == {"ok": 1}

    def broken():
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):  # only running out of memory is survived
        gpu.attempt("broken", broken, "cpu", budget)
