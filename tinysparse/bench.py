"""``tinysparse bench``: a short, honest speed check on this machine.

Two questions, each answered by timing the alternatives interleaved in this process:

1. the three products of a sparse layer (784 → 300, batch 128) at 95% sparsity: sparse
   kernels vs dense BLAS;
2. one LeNet-300-100 training step (batch 128, SGD with momentum) at 95% sparsity: the
   sparse path vs the masked dense path vs the unpruned network.

The full benchmarks (all sparsities, scipy and torch, structured pruning) are
``benchmarks/sparse_kernels.py`` and ``benchmarks/train_step.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysparse import kernels
from tinysparse.autograd import cross_entropy
from tinysparse.benchmarking import make_records, time_interleaved
from tinysparse.data import load_dataset
from tinysparse.nn import clone, lenet300, to_dense, to_sparse
from tinysparse.optim import SGD
from tinysparse.prune import prune
from tinysparse.sparse import build_structure


def _training_step(model, x, y):
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def kernel_records(sparsity: float = 0.95, repeats: int = 20, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    keep = rng.random((300, 784)) >= sparsity
    w = (rng.standard_normal((300, 784)) * keep).astype(np.float32)
    x = rng.standard_normal((784, 128)).astype(np.float32)
    dy = rng.standard_normal((300, 128)).astype(np.float32)
    s = build_structure(keep)
    values = s.gather(w)  # what a SparseLinear stores: the kept weights, in CSR order
    cases = {
        "forward": {"numpy-dense": lambda: w @ x,
                    "tinysparse": lambda: kernels.spmm(s.indptr, s.indices, values, x)},
        "dX": {"numpy-dense": lambda: w.T @ dy,
               "tinysparse": lambda: kernels.spmm_transposed(s.t_indptr, s.t_indices,
                                                             s.t_order, values, dy)},
        "dW": {"numpy-dense": lambda: dy @ x.T,
               "tinysparse": lambda: kernels.sddmm(s.indptr, s.indices, dy, x)},
    }
    records = []
    for op, implementations in cases.items():
        records += make_records("sparse_kernels", {"op": op, "shape": "784->300",
                                                   "batch": 128, "sparsity": sparsity},
                                time_interleaved(implementations, repeats=repeats,
                                                 warmup=3, min_seconds=0.2))
    return records


def training_records(sparsity: float = 0.95, repeats: int = 30, seed: int = 0) -> list[dict]:
    data = load_dataset("mnist-5k")
    x, y = data.x_train[:128], data.y_train[:128]
    dense, sparse = lenet300(seed=seed), lenet300(seed=seed)
    prune(sparse, sparsity)
    masked = to_dense(clone(sparse))  # the same masks on the dense kernels
    to_sparse(sparse, max_density=1.0)
    implementations = {
        "dense": _training_step(dense, x, y),
        "sparse-path": _training_step(sparse, x, y),
        "masked-dense-path": _training_step(masked, x, y),
    }
    timings = time_interleaved(implementations, repeats=repeats, warmup=3, block=5)
    return make_records("train_step", {"model": "lenet300", "batch": 128,
                                       "sparsity": sparsity}, timings)


def run_bench(sparsity: float = 0.95) -> dict[str, Any]:
    """Both measurements, as records plus the ratios a reader wants."""
    kernel = kernel_records(sparsity)
    training = training_records(sparsity)
    dense = {r["op"]: r["median_seconds"] for r in kernel if r["implementation"] == "numpy-dense"}
    ratios = {f"{r['op']}_sparse_over_dense": r["median_seconds"] / dense[r["op"]]
              for r in kernel if r["implementation"] == "tinysparse"}
    step = {r["implementation"]: r["median_seconds"] for r in training}
    ratios["train_step_sparse_over_dense"] = step["sparse-path"] / step["dense"]
    ratios["train_step_masked_dense_over_dense"] = step["masked-dense-path"] / step["dense"]
    return {"records": kernel + training, "ratios": ratios,
            "compiled_kernels": kernels.numba_enabled()}
