"""Sparse kernels vs dense BLAS, scipy.sparse and torch CSR: when does sparsity pay?

For a weight W (out × in) with a random mask at each sparsity, and feature-major
activations X (in × batch), times the three products of a training step:

* ``forward``  Y = W X        (tinysparse: SpMM on the kept weights, which a layer on the
  sparse path keeps compact between steps — no gather)
* ``dX``       dX = Wᵀ dY     (tinysparse: SpMM over the CSC view)
* ``dW``       dY Xᵀ at W's non-zeros (tinysparse: SDDMM; dense: the full product)

Implementations: ``numpy-dense`` (BLAS, multiplies the zeros too), ``scipy-csr``,
``torch-csr`` (when installed), ``tinysparse-reference`` (the readable NumPy loops; only
where it finishes in reasonable time), ``tinysparse-numba`` (what tinysparse runs) and
``tinysparse-numba-parallel`` (its parallel twins forced on, even for small work). All
implementations of a case run interleaved in this process; the table shows medians and
the ratio to dense, then the break-even sparsity of each (the lowest sparsity from which
it beats dense).

Usage::

    python benchmarks/sparse_kernels.py [--json] [--quick]
"""

from __future__ import annotations

import argparse

import tinysparse as ts  # noqa: F401  (first: configures BLAS/OpenMP threads before NumPy)

# isort: split
import numpy as np

from tinysparse import kernels  # noqa: E402
from tinysparse.benchmarking import (  # noqa: E402
    machine_description,
    make_records,
    print_records,
    ratio_table,
    time_interleaved,
)
from tinysparse.sparse import build_structure  # noqa: E402
from tinysparse.tables import format_table  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
SHAPES = ((784, 300, 128), (4096, 4096, 256))  # (in, out, batch)


def optional(module: str):
    try:
        return __import__(module)
    except ImportError:
        return None


def gathered_dot_products(dy, x, rows, cols, chunk=1 << 16):
    """dY Xᵀ at (rows, cols) by gathering the rows needed — scipy has no SDDMM, this is
    the usual NumPy way — in chunks, so that memory stays bounded."""
    out = np.empty(len(rows), dtype=dy.dtype)
    for start in range(0, len(rows), chunk):
        part = slice(start, start + chunk)
        out[part] = np.einsum("kb,kb->k", dy[rows[part]], x[cols[part]])
    return out


def case_functions(w, keep, x, dy, include_slow: bool):
    """{op: {implementation: callable}} for one weight and batch.

    ``tinysparse-numba`` is what tinysparse runs (one thread below ``PARALLEL_FROM``
    multiply-adds, see kernels/numba_kernels.py); ``tinysparse-numba-parallel`` forces
    the kernels' parallel twins, to show what the second core adds when its thread is
    awake.
    """
    s = build_structure(keep)
    values = s.gather(w)
    numba = {name: kernels.compiled(name) for name in ("spmm", "spmm_transposed", "sddmm")}
    parallel = {name: kernel.parallel for name, kernel in numba.items()}
    ref = {name: kernels.reference(name) for name in ("spmm", "spmm_transposed", "sddmm")}
    forward = (s.indptr, s.indices)
    backward = (s.t_indptr, s.t_indices, s.t_order, values, dy)
    ops = {
        "forward": {
            "numpy-dense": lambda: w @ x,
            "tinysparse-numba": lambda: numba["spmm"](*forward, values, x),
            "tinysparse-numba-parallel": lambda: parallel["spmm"](*forward, values, x),
        },
        "dX": {
            "numpy-dense": lambda: w.T @ dy,
            "tinysparse-numba": lambda: numba["spmm_transposed"](*backward),
            "tinysparse-numba-parallel": lambda: parallel["spmm_transposed"](*backward),
        },
        "dW": {
            "numpy-dense": lambda: dy @ x.T,
            "tinysparse-numba": lambda: numba["sddmm"](*forward, dy, x),
            "tinysparse-numba-parallel": lambda: parallel["sddmm"](*forward, dy, x),
        },
    }
    if include_slow:
        ops["forward"]["tinysparse-reference"] = lambda: ref["spmm"](*forward, values, x)
        ops["dX"]["tinysparse-reference"] = lambda: ref["spmm_transposed"](
            s.t_indptr, s.t_indices, s.t_order, values, dy)
        ops["dW"]["tinysparse-reference"] = lambda: ref["sddmm"](s.indptr, s.indices, dy, x)
    scipy_sparse = optional("scipy.sparse")
    if scipy_sparse is not None:
        import scipy.sparse as sp

        csr = sp.csr_matrix(w)
        csr_t = csr.T.tocsr()
        rows, cols = np.nonzero(keep)
        ops["forward"]["scipy-csr"] = lambda: csr @ x
        ops["dX"]["scipy-csr"] = lambda: csr_t @ dy
        if include_slow:
            ops["dW"]["scipy-csr"] = lambda: gathered_dot_products(dy, x, rows, cols)
    torch = optional("torch")
    if torch is not None:
        tw = torch.from_numpy(w).to_sparse_csr()
        tw_t = torch.from_numpy(np.ascontiguousarray(w.T)).to_sparse_csr()
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
        pattern = torch.from_numpy(keep.astype(np.float32)).to_sparse_csr()
        ops["forward"]["torch-csr"] = lambda: torch.sparse.mm(tw, tx)
        ops["dX"]["torch-csr"] = lambda: torch.sparse.mm(tw_t, tdy)
        ops["dW"]["torch-csr"] = lambda: torch.sparse.sampled_addmm(pattern, tdy, tx.T,
                                                                    beta=0.0)
    return ops


def run(quick: bool = False, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    shapes = ((784, 300, 128),) if quick else SHAPES
    for fan_in, fan_out, batch in shapes:
        x = rng.standard_normal((fan_in, batch)).astype(np.float32)
        dy = rng.standard_normal((fan_out, batch)).astype(np.float32)
        for sparsity in SPARSITIES:
            keep = rng.random((fan_out, fan_in)) >= sparsity
            w = (rng.standard_normal((fan_out, fan_in)) * keep).astype(np.float32)
            # the readable loops and the gathering SDDMM only where they finish in
            # reasonable time (and memory): up to 5·10⁸ multiply-adds
            affordable = keep.sum() * batch <= 500_000_000
            ops = case_functions(w, keep, x, dy, include_slow=affordable)
            for op, implementations in ops.items():
                budget = 0.05 if quick else 0.3
                # five calls in a row per turn: a library's thread pool woken once per
                # turn, as in a training step, not once per call
                timings = time_interleaved(implementations, repeats=5 if quick else 15,
                                           warmup=2, min_seconds=budget, block=5)
                records += make_records("sparse_kernels", {
                    "op": op, "shape": f"{fan_in}->{fan_out}", "batch": batch,
                    "sparsity": sparsity, "dtype": "float32"}, timings)
    return records


def break_even(records: list[dict]) -> list[list]:
    """Lowest measured sparsity from which each implementation beats numpy-dense."""
    rows = []
    keys = sorted({(r["shape"], r["op"], r["implementation"]) for r in records
                   if r["implementation"] != "numpy-dense"})
    dense = {(r["shape"], r["op"], r["sparsity"]): r["median_seconds"] for r in records
             if r["implementation"] == "numpy-dense"}
    for shape, op, implementation in keys:
        points = sorted((r["sparsity"], r["median_seconds"] / dense[(shape, op, r["sparsity"])])
                        for r in records if (r["shape"], r["op"], r["implementation"])
                        == (shape, op, implementation))
        winning = [s for s, ratio in points if ratio <= 1.0]
        # from this sparsity on, every measured point is faster than dense
        stays = [s for i, (s, _) in enumerate(points)
                 if all(ratio <= 1.0 for _, ratio in points[i:])]
        rows.append([shape, op, implementation, stays[0] if stays else None,
                     min(winning) if winning else None])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="784->300 only, short timings")
    args = parser.parse_args()
    records = run(quick=args.quick)
    text = (f"sparse kernels (float32, feature-major) — {machine_description()}\n\n"
            + ratio_table(records, ["shape", "op", "sparsity"], baseline="numpy-dense")
            + "\n\nbreak-even: the sparsity from which each implementation stays faster "
              "than dense\n\n"
            + format_table(break_even(records), ["shape", "op", "implementation",
                                                 "break-even", "first win"]))
    print_records(records, args.json, text)


if __name__ == "__main__":
    main()
