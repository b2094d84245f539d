"""Exact inner-product search: FAISS and the torch fallback equal brute force; GPU only when available."""

import numpy as np
import pytest
import torch

from flamingo_eval.demos import index as index_mod
from flamingo_eval.demos.index import FlatIPIndex, choose_backend
from flamingo_eval.errors import ConfigError


def random_unit(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(pool, queries, k):
    sims, ids = torch.topk(torch.from_numpy(queries) @ torch.from_numpy(pool).T, k, dim=1)
    return sims.numpy(), ids.numpy()


@pytest.mark.parametrize("backend", ["faiss-cpu", "torch"])
def test_search_equals_brute_force_top_k(backend):
    pool, queries = random_unit(2000, 64, 0), random_unit(300, 64, 1)
    sims, ids = FlatIPIndex(pool, backend=backend).search(queries, 16)
    want_sims, want_ids = brute_force(pool, queries, 16)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)
    assert ids.dtype == np.int64 and sims.shape == (300, 16)


def test_torch_fallback_equals_faiss_across_query_chunks(monkeypatch):
    monkeypatch.setattr(index_mod, "_TORCH_CHUNK", 7)
    pool, queries = random_unit(500, 32, 2), random_unit(50, 32, 3)
    f_sims, f_ids = FlatIPIndex(pool, backend="faiss-cpu").search(queries, 10)
    t_sims, t_ids = FlatIPIndex(pool, backend="torch").search(queries, 10)
    np.testing.assert_array_equal(f_ids, t_ids)
    np.testing.assert_allclose(f_sims, t_sims, atol=1e-5)


def test_results_are_best_first_and_k_is_capped_by_pool_size():
    pool = random_unit(5, 8, 4)
    sims, ids = FlatIPIndex(pool).search(pool[:2], 10)
    assert ids.shape == (2, 5)
    assert list(ids[:, 0]) == [0, 1]  # a vector is its own nearest neighbour
    assert np.all(np.diff(sims, axis=1) <= 0)


def test_cpu_index_unless_cuda_requested_and_available(monkeypatch):
    assert choose_backend("cpu") == "faiss-cpu"
    monkeypatch.setattr(index_mod, "_cuda_available", lambda: True)
    monkeypatch.setattr(index_mod, "faiss_has_gpu", lambda faiss: False)
    assert choose_backend("cuda") == "faiss-cpu"  # faiss-cpu build: no GPU index


def test_gpu_index_when_faiss_and_torch_both_see_a_gpu(monkeypatch):
    monkeypatch.setattr(index_mod, "faiss_has_gpu", lambda faiss: True)
    monkeypatch.setattr(index_mod, "_cuda_available", lambda: False)
    assert choose_backend("cuda") == "faiss-cpu"
    monkeypatch.setattr(index_mod, "_cuda_available", lambda: True)
    assert choose_backend("cuda") == "faiss-gpu"
    assert choose_backend("cpu") == "faiss-cpu"


def test_torch_fallback_when_faiss_is_missing(monkeypatch):
    monkeypatch.setattr(index_mod, "_faiss", lambda: None)
    assert choose_backend("cuda") == "torch"
    assert FlatIPIndex(random_unit(10, 4, 5)).backend == "torch"
    with pytest.raises(ConfigError, match="needs faiss"):
        FlatIPIndex(random_unit(10, 4, 5), backend="faiss-cpu")


def test_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown search backend 'annoy'"):
        FlatIPIndex(random_unit(3, 4, 6), backend="annoy")
