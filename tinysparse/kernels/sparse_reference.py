"""Sparse kernels in plain NumPy: the readable specification of the Numba kernels.

A sparse weight W (rows × cols) is stored in CSR form: the non-zeros of row i are
``values[indptr[i]:indptr[i+1]]`` in the columns ``indices[indptr[i]:indptr[i+1]]``. The
backward pass also needs W's columns, which the CSC arrays ``t_indptr, t_indices`` give
together with ``t_order``: the CSR position of each CSC entry, so both views share one
``values`` array.

Activations are **feature-major**: X is (features × batch). Then every inner loop below
runs over a contiguous batch row, which is what makes the compiled versions fast.

=====================  =============================  ==============================
kernel                 computes                        used for
=====================  =============================  ==============================
``spmm``               Y = W X (+ b)                   forward pass
``spmm_transposed``    dX = Wᵀ dY                      gradient w.r.t. the input
``sddmm``              dW_ij = Σ_b dY_ib X_jb, (i,j)   gradient w.r.t. the weights,
                       in the sparsity pattern only    only where W is non-zero
=====================  =============================  ==============================
"""

from __future__ import annotations

import numpy as np


def spmm(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, x: np.ndarray,
         bias: np.ndarray | None = None) -> np.ndarray:
    """Y = W X (+ b) for sparse W (CSR) and feature-major X (cols × batch): Y is (rows × batch).

    Row by row: Y[i] = Σ_k values[k] · X[indices[k]] over row i's non-zeros (+ bias[i],
    given a bias of one value per row).
    """
    rows = len(indptr) - 1
    y = np.zeros((rows, x.shape[1]), dtype=x.dtype)
    if bias is not None:
        y += bias[:, None]
    for i in range(rows):
        start, stop = indptr[i], indptr[i + 1]
        y[i] += values[start:stop] @ x[indices[start:stop]]
    return y


def spmm_transposed(t_indptr: np.ndarray, t_indices: np.ndarray, t_order: np.ndarray,
                    values: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dX = Wᵀ dY through W's columns (CSC): dX[j] = Σ_k values[t_order[k]] · dY[t_indices[k]].
    """
    cols = len(t_indptr) - 1
    dx = np.zeros((cols, dy.shape[1]), dtype=dy.dtype)
    for j in range(cols):
        start, stop = t_indptr[j], t_indptr[j + 1]
        dx[j] = values[t_order[start:stop]] @ dy[t_indices[start:stop]]
    return dx


def sddmm(indptr: np.ndarray, indices: np.ndarray, dy: np.ndarray, x: np.ndarray
          ) -> np.ndarray:
    """The weight gradient dW = dY Xᵀ, but only at W's non-zeros (in CSR order).

    "Sampled dense-dense matrix product": entry k of row i is the dot product of the
    batch rows dY[i] and X[indices[k]].
    """
    values = np.empty(len(indices), dtype=dy.dtype)
    for i in range(len(indptr) - 1):
        start, stop = indptr[i], indptr[i + 1]
        values[start:stop] = x[indices[start:stop]] @ dy[i]
    return values


def spmv(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, x: np.ndarray,
         bias: np.ndarray, relu: bool) -> np.ndarray:
    """Y = X Wᵀ + b for sparse W (CSR) and **batch-major** X (examples × cols), one sparse
    matrix-vector product per example: Y is (examples × rows).

    For example n and row i: Y[n, i] = b_i + Σ_k values[k] · X[n, indices[k]] over row i's
    non-zeros; with ``relu``, max(Y[n, i], 0) (the activation fused into the product).
    """
    rows = len(indptr) - 1
    y = np.empty((x.shape[0], rows), dtype=x.dtype)
    for i in range(rows):
        start, stop = indptr[i], indptr[i + 1]
        y[:, i] = x[:, indices[start:stop]] @ values[start:stop] + bias[i]
    return np.maximum(y, 0) if relu else y


def spmv_layers(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray,
                bias: np.ndarray, layer_rows: np.ndarray, relu: np.ndarray, x: np.ndarray
                ) -> np.ndarray:
    """Sparse fully connected layers one after the other, :func:`spmv` for each:
    X ← max(X Wₗᵀ + bₗ, 0) (without the max where ``relu[l]`` is False).

    The layers' matrices are stacked into one CSR matrix: layer l owns the rows
    ``layer_rows[l]:layer_rows[l + 1]`` (and the matching entries of ``bias``), and
    ``indptr`` points into the shared ``indices`` and ``values``. The compiled twin runs
    the whole stack in one call.
    """
    for layer in range(len(relu)):
        start, stop = layer_rows[layer], layer_rows[layer + 1]
        x = spmv(indptr[start : stop + 1], indices, values, x, bias[start:stop], relu[layer])
    return x


def obs_rows_greedy(weight: np.ndarray, inverse: np.ndarray, steps: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Layer-wise OBS, one deletion at a time, for every row (see ``obs_layerwise.py``).

    For each row w with its own copy of H⁻¹: ``steps`` times, delete
    p = argmin w_p² / [H⁻¹]_pp, set w ← w − (w_p / [H⁻¹]_pp) H⁻¹_{:,p} and
    H⁻¹ ← H⁻¹ − H⁻¹_{:,p} H⁻¹_{p,:} / [H⁻¹]_pp. Returns the deletion order and each
    deletion's error increase w_p² / (2 [H⁻¹]_pp), both (rows × steps).
    """
    rows, d = weight.shape
    order = np.zeros((rows, steps), dtype=np.int64)
    increase = np.zeros((rows, steps))
    for r in range(rows):
        w = weight[r].astype(np.float64)
        inv = inverse.astype(np.float64)
        alive = np.ones(d, dtype=bool)
        for s in range(steps):
            diagonal = np.where(alive, np.diag(inv), 1.0)
            saliency = np.where(alive, w * w / (2 * diagonal), np.inf)
            p = int(np.argmin(saliency))
            column = inv[:, p].copy()
            w -= (w[p] / column[p]) * column
            w[p] = 0.0
            inv -= np.outer(column, column) / column[p]
            alive[p] = False
            order[r, s], increase[r, s] = p, saliency[p]
    return order, increase
