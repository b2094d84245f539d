"""doctor's machine checks, each with its condition forced: what blocks a run (fail), what only slows or
qualifies it (warn), and the fix every problem names."""

import pytest

from flamingo_eval import stack
from flamingo_eval.doctor import environment
from flamingo_eval.doctor.environment import Gpu, check_cuda, check_java, check_lock, check_nltk, check_search
from flamingo_eval.metrics import okvqa_stem
from flamingo_eval.metrics.cider import JAVA_HINT
from flamingo_eval.task import load_task

H100 = Gpu("NVIDIA H100 80GB HBM3", 85_000_000_000, True)
V100 = Gpu("Tesla V100-SXM2-32GB", 34_000_000_000, False)


def test_a_stack_outside_the_supported_ranges_blocks_unless_allowed(monkeypatch):
    monkeypatch.setattr(stack, "out_of_range", lambda: ["transformers 9.0.0 (supported >=4.56,<=5.25.0)"])
    monkeypatch.delenv(stack.UNTESTED_ENV, raising=False)
    check = check_lock()
    assert check.status == "fail" and "transformers 9.0.0" in check.what and "make clean setup" in check.fix
    monkeypatch.setenv(stack.UNTESTED_ENV, "1")
    assert check_lock().status == "warn"


def test_a_stack_that_differs_from_the_lock_is_a_warning_naming_the_packages(monkeypatch):
    monkeypatch.setattr(stack, "out_of_range", lambda: [])
    monkeypatch.setattr(stack, "read_lock", lambda: {"numpy": "2.3.0"})
    monkeypatch.setattr(stack, "lock_differences", lambda lock: {"numpy": {"locked": "2.3.0", "installed": "2.4.1"}})
    check = check_lock()
    assert check.status == "warn" and "numpy 2.4.1 (locked 2.3.0)" in check.what and "make clean setup" in check.fix
    monkeypatch.setattr(stack, "lock_differences", lambda lock: {})
    assert check_lock().status == "ok"
    monkeypatch.setattr(stack, "read_lock", lambda: None)
    assert check_lock().status == "warn"


def test_java_is_checked_only_for_cider_tasks_and_its_absence_blocks_them(monkeypatch):
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    assert check_java([load_task("vqav2")]) is None
    check = check_java([load_task("vqav2"), load_task("coco")])
    assert (check.status, check.fix) == ("fail", JAVA_HINT) and "coco" in check.what
    monkeypatch.setattr(environment.shutil, "which", lambda name: "/usr/bin/java")
    assert check_java([load_task("flickr30k")]).status == "ok"


def test_missing_nltk_data_blocks_okvqa_and_names_the_fetch_and_the_offline_copy(monkeypatch):
    assert check_nltk([load_task("vqav2")], "data") is None
    monkeypatch.setattr(okvqa_stem, "missing_nltk_data", lambda: ["wordnet"])
    check = check_nltk([load_task("okvqa")], "/d")
    assert check.status == "fail" and "wordnet" in check.what
    assert "`flamingo-eval data fetch okvqa --data-root /d`" in check.fix and str(okvqa_stem.nltk_data_dir()) in check.fix
    monkeypatch.setattr(okvqa_stem, "missing_nltk_data", lambda: [])
    assert check_nltk([load_task("okvqa")], "/d").status == "ok"


def test_no_gpu_blocks_only_a_run_asked_to_use_cuda():
    assert check_cuda([], "cuda", "bf16").status == "fail"
    check = check_cuda([], "cpu", "fp32")
    assert check.status == "warn" and "runs go on the CPU" in check.what and "nvidia-smi" in check.fix


def test_gpus_are_listed_with_memory_and_bf16_support():
    check = check_cuda([H100, H100], "cuda", "bf16")
    assert check.status == "ok"
    assert check.what == "cuda:0 NVIDIA H100 80GB HBM3, 85.0 GB, bf16 yes; cuda:1 NVIDIA H100 80GB HBM3, 85.0 GB, bf16 yes"
    check = check_cuda([V100], "cuda", "bf16")
    assert check.status == "warn" and "bf16 no" in check.what and "--precision fp16" in check.fix
    assert check_cuda([V100], "cuda", "fp16").status == "ok"


@pytest.fixture
def backend(monkeypatch):
    """Force choose_backend's answer and a search speed of 1e9 pairs/s (VQAv2: 40,504 x 82,783 -> about 3 s)."""
    from flamingo_eval.demos import index

    monkeypatch.setattr(environment, "search_rate", lambda backend, device, dim: 1e9)

    def force(name):
        monkeypatch.setattr(index, "choose_backend", lambda device="cpu": name if device.startswith("cuda") else
                            ("faiss-cpu" if name.startswith("faiss") else "torch"))

    return force


def test_faiss_without_gpu_support_beside_a_gpu_warns_with_the_cpu_path_and_its_time(backend):
    backend("faiss-cpu")
    check = check_search([H100], "cuda")
    assert check.status == "warn"
    assert "RICES falls back to faiss-cpu IndexFlatIP on the CPU" in check.what
    assert "40,504 val2014 images against 82,783 train2014 images, 768-d) would take roughly 3 s here" in check.what
    assert "make setup FAISS=gpu" in check.fix


def test_faiss_gpu_or_torch_on_the_gpu_is_fine(backend):
    backend("faiss-gpu")
    assert check_search([H100], "cuda").status == "ok"
    backend("torch")
    check = check_search([H100], "cuda")
    assert check.status == "ok" and "torch matmul + top-k on the GPU" in check.what


def test_a_cpu_run_names_its_search_and_time(backend):
    backend("torch")
    check = check_search([], "cpu")
    assert check.status == "ok" and "torch matmul + top-k on the CPU (faiss is not installed)" in check.what
    assert "roughly 3 s" in check.what


def test_the_search_speed_is_measured_on_the_real_index(monkeypatch):
    pairs_per_s = environment.search_rate("torch", "cpu", 16, probe=(300, 20))
    assert pairs_per_s > 0


def test_visible_gpus_reads_names_memory_and_bf16_from_torch(monkeypatch):
    import torch

    cards = [("NVIDIA H100 80GB HBM3", 85_000_000_000, (9, 0)), ("Tesla V100-SXM2-32GB", 34_000_000_000, (7, 0))]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(cards))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: type("P", (), {"name": cards[i][0], "total_memory": cards[i][1]})())
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: cards[i][2])
    assert environment.visible_gpus() == [H100, V100]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert environment.visible_gpus() == []
