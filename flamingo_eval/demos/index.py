"""Exact inner-product search over L2-normalised features (so inner product = cosine similarity).

FAISS ``IndexFlatIP`` on the GPU when faiss has GPU support and CUDA is available, on the CPU otherwise;
an exact torch matmul + top-k when faiss is not installed (the lent GPU machines have none). All three are
exact, so they return the same neighbours up to float rounding.
"""

from __future__ import annotations

import numpy as np

from flamingo_eval.errors import ConfigError

BACKENDS = ("faiss-gpu", "faiss-cpu", "torch")
_TORCH_CHUNK = 4096  # queries per matmul: bounds the (chunk, pool) score matrix


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def faiss_has_gpu(faiss) -> bool:
    return hasattr(faiss, "StandardGpuResources") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0


def choose_backend(device: str = "cpu") -> str:
    """faiss-gpu only when both faiss and torch see a GPU and the caller asked for cuda."""
    faiss = _faiss()
    if faiss is None:
        return "torch"
    if device.startswith("cuda") and faiss_has_gpu(faiss) and _cuda_available():
        return "faiss-gpu"
    return "faiss-cpu"


class FlatIPIndex:
    """An exact index over ``features`` (n, d), fp32, rows L2-normalised by the caller."""

    def __init__(self, features: np.ndarray, *, backend: str | None = None, device: str = "cpu"):
        self.backend = backend or choose_backend(device)
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown search backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        self.device = device
        feats = np.ascontiguousarray(features, dtype=np.float32)
        if feats.ndim != 2:
            raise ValueError(f"features must be 2-d, got shape {feats.shape}")
        self.size, self.dim = feats.shape
        if self.backend == "torch":
            import torch

            dev = device if device.startswith("cuda") and _cuda_available() else "cpu"
            self._pool = torch.from_numpy(feats).to(dev)
        else:
            faiss = _faiss()
            if faiss is None:
                raise ConfigError(f"search backend {self.backend} needs faiss, which is not installed")
            index = faiss.IndexFlatIP(self.dim)
            if self.backend == "faiss-gpu":
                self._gpu_resources = faiss.StandardGpuResources()
                index = faiss.index_cpu_to_gpu(self._gpu_resources, int(device.partition(":")[2] or 0), index)
            index.add(feats)
            self._index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each (n_queries, min(k, size)), best first."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.size)
        if k <= 0 or len(q) == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if self.backend == "torch":
            return self._torch_search(q, k)
        sims, ids = self._index.search(q, k)
        return sims, ids.astype(np.int64, copy=False)

    def _torch_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        sims_out, ids_out = [], []
        with torch.inference_mode():
            for start in range(0, len(q), _TORCH_CHUNK):
                chunk = torch.from_numpy(q[start : start + _TORCH_CHUNK]).to(self._pool.device)
                sims, ids = torch.topk(chunk @ self._pool.T, k, dim=1)
                sims_out.append(sims.cpu().numpy())
                ids_out.append(ids.cpu().numpy())
        return np.concatenate(sims_out), np.concatenate(ids_out).astype(np.int64, copy=False)
