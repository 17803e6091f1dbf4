"""Optimal Brain Surgeon (Hassibi & Stork, NIPS 1992/1993), with the full inverse Hessian.

Delete weight q and let every other weight move to the best place the quadratic model of
the loss allows (minimise ½ δwᵀ H δw subject to e_qᵀ δw + w_q = 0)::

    L_q = w_q² / (2 [H⁻¹]_qq)                 the saliency: the loss increase
    δw  = −(w_q / [H⁻¹]_qq) H⁻¹ e_q           the compensation of all other weights

then remove q from H⁻¹ (H⁻¹ ← H⁻¹ − H⁻¹ e_q e_qᵀ H⁻¹ / [H⁻¹]_qq) and repeat. A diagonal H
gives back OBD's saliency; H ∝ I gives magnitude pruning.

H is the curvature of the mean loss over the data: the outer-product (empirical Fisher
or Gauss–Newton) approximation (1/P) Σ g gᵀ + α I inverted by the Woodbury recursion, or
the exact Hessian for tiny nets. H⁻¹ has n² entries, so this is for nets of up to
:data:`MAX_WEIGHTS` weights; larger ones go layer by layer (:mod:`.obs_layerwise`).

Groups: deleting a set Q at once with the same formulas in matrix form,
``δw = −H⁻¹_{:,Q} (H⁻¹_{QQ})⁻¹ w_Q`` and ``ΔL = ½ w_Qᵀ (H⁻¹_{QQ})⁻¹ w_Q``, gives exactly the
result of deleting Q's weights one after another; only the *choice* of Q (the |Q| lowest
saliencies at that moment) differs from the one-at-a-time algorithm. It turns n²-sized
rank-one updates into fewer, faster matrix products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinysparse.data.dataset import training_examples
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import to_dense
from tinysparse.prune.hessian import (
    curvature_rows,
    exact_hessian,
    flatten_parameters,
    inverse_fisher,
    unflatten_into,
)
from tinysparse.prune.masks import apply_masks, current_masks
from tinysparse.prune.selection import check_sparsity, prunable_parameters
from tinysparse.sparse.mask import Mask
from tinysparse.train import evaluate

MAX_WEIGHTS = 10_000
HESSIANS = ("fisher", "gauss-newton", "exact")
ROWS_PER_BLOCK = 512


@dataclass
class SurgeryStep:
    """After a deletion (or a group): how many are gone, what OBS predicted, what happened."""

    deleted: int
    weights: list[int]
    predicted_increase: float
    measured_increase: float | None = None


@dataclass
class SurgeryReport:
    """The outcome of :func:`obs_prune`."""

    masks: dict[str, Mask]
    predicted_increase: float
    actual_increase: float
    loss_before: float
    loss_after: float
    steps: list[SurgeryStep] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def obs_saliency(weights: np.ndarray, inverse_diagonal: np.ndarray) -> np.ndarray:
    """L_q = w_q² / (2 [H⁻¹]_qq) for every q."""
    return weights * weights / (2 * inverse_diagonal)


def obs_delete(weights: np.ndarray, inverse: np.ndarray, group: Sequence[int]) -> float:
    """Delete the weights ``group`` with optimal compensation, in place; return ΔL.

    For one weight: δw = −(w_q / [H⁻¹]_qq) H⁻¹ e_q, ΔL = w_q² / (2 [H⁻¹]_qq). For a set Q
    the same in matrix form. ``inverse`` loses Q (rows/columns become zero).
    """
    q = np.asarray(group)
    block = inverse[np.ix_(q, q)]  # [H⁻¹]_QQ
    coefficients = np.linalg.solve(block, weights[q])  # [H⁻¹]_QQ⁻¹ w_Q
    increase = 0.5 * float(weights[q] @ coefficients)  # ΔL = ½ w_Qᵀ [H⁻¹]_QQ⁻¹ w_Q
    columns = inverse[:, q].copy()
    weights -= columns @ coefficients  # δw = −H⁻¹_{:,Q} [H⁻¹]_QQ⁻¹ w_Q
    weights[q] = 0.0  # exactly, not just up to round-off
    right = np.linalg.solve(block, columns.T)  # [H⁻¹]_QQ⁻¹ H⁻¹_{Q,:}
    for start in range(0, len(inverse), ROWS_PER_BLOCK):  # H⁻¹ −= H⁻¹_{:,Q} [H⁻¹]_QQ⁻¹ H⁻¹_{Q,:}
        stop = start + ROWS_PER_BLOCK  # (block by block: no n × n temporary)
        inverse[start:stop] -= columns[start:stop] @ right
    inverse[q, :] = 0.0
    inverse[:, q] = 0.0
    return increase


def inverse_hessian(
    model: Module, data: Any, names: Sequence[str], hessian: str = "fisher",
    loss: str = "cross_entropy", damping: float = 1e-4, block: int = 100,
) -> np.ndarray:
    """H⁻¹ for OBS: ((1/P) Σ g gᵀ + α I)⁻¹ by Woodbury, or (H_exact + α I)⁻¹.

    ``damping`` is relative: α = damping × the mean of H's diagonal.
    """
    if hessian not in HESSIANS:
        raise ValueError(f"hessian: unknown {hessian!r}; choose one of {list(HESSIANS)}")
    if not damping > 0:
        raise ValueError(f"damping: expected a positive number, got {damping}")
    if hessian == "exact":
        matrix = exact_hessian(model, data, loss, names)
        alpha = damping * max(float(np.mean(np.diag(matrix))), 1e-12)
        return np.linalg.inv(matrix + alpha * np.eye(len(matrix)))
    rows, examples = curvature_rows(model, data, hessian, loss, names)
    mean_diagonal = float(np.sum(rows * rows)) / (examples * rows.shape[1])
    alpha = damping * max(mean_diagonal, 1e-12)
    return inverse_fisher(rows, examples, alpha, block)


def check_size(model: Module, parameters: Sequence[str] | None = None,
               max_weights: int = MAX_WEIGHTS) -> int:
    """The number n of weights full OBS would work on (``parameters``, default all of
    them); a ValueError when its n x n inverse Hessian would be too large."""
    shapes = model.state_shapes()
    names = list(parameters) if parameters is not None else list(shapes)
    total = sum(int(np.prod(shapes[n])) for n in names)
    if total > max_weights:
        raise ValueError(
            f"full OBS keeps an n x n inverse Hessian: this model has n = {total:,} weights "
            f"({total * total * 8 / 1e9:.1f} GB), more than the limit of {max_weights:,}. "
            f"Use the layer-wise method (method='obs-layerwise', tinysparse.prune."
            f"obs_layerwise_prune), or pass fewer parameters= to compensate with")
    return total


def obs_prune(
    model: Module,
    sparsity: float,
    data: Any,
    parameters: Sequence[str] | None = None,
    prunable: Sequence[str] | None = None,
    hessian: str = "fisher",
    loss: str = "cross_entropy",
    damping: float = 1e-2,
    group_size: int | None = None,
    measure_every: int | None = None,
    max_weights: int = MAX_WEIGHTS,
    allow_empty_layers: bool = False,
) -> SurgeryReport:
    """Prune ``model`` in place with Optimal Brain Surgeon until ``sparsity`` is reached.

    Parameters
    ----------
    model : Module
    sparsity : float
        Target fraction of zeros among the prunable weights, in [0, 1).
    data : (x, y) or Dataset
        The examples defining the loss (and its curvature) — typically the training set.
    parameters : list of str, optional
        The parameters OBS may move to compensate (default: all of them, biases included).
    prunable : list of str, optional
        The parameters it may delete from (default: the weight matrices).
    hessian : {"fisher", "gauss-newton", "exact"}
        Outer-product approximation from per-example gradients ("fisher"), per-output
        Jacobian rows ("gauss-newton"), or the exact Hessian (tiny nets).
    damping : float
        Relative damping: α = damping × mean(diag H), added to H. With fewer examples
        than weights the outer-product H is singular; too little damping then makes the
        saliencies (and the predicted loss increase) meaninglessly small.
    group_size : int or None
        Weights deleted per step: 1 = the paper's one at a time; None (default) = about
        100 steps in all (one at a time when fewer than 200 weights go).
    measure_every : int, optional
        Also measure the true loss after every this many steps (slower).
    """
    sparsity = check_sparsity(sparsity)
    to_dense(model)  # OBS reads and moves dense weights
    x, y = training_examples(data)
    names = list(parameters) if parameters is not None else [n for n, _ in
                                                             model.named_parameters()]
    prunable = list(prunable) if prunable is not None else [
        n for n in prunable_parameters(model) if n in names]
    total = check_size(model, names, max_weights)
    loss_before = evaluate(model, x, y, loss=loss)["loss"]

    weights = flatten_parameters(model, names)
    sizes = {n: model.get_parameter(n).size for n in names}
    offsets = dict(zip(names, np.cumsum([0, *sizes.values()])[:-1]))
    candidate = np.zeros(total, dtype=bool)
    for n in prunable:
        candidate[offsets[n]:offsets[n] + sizes[n]] = True
    previous = current_masks(model, names)
    alive = np.ones(total, dtype=bool)
    for n, mask in previous.items():
        alive[offsets[n]:offsets[n] + sizes[n]] = mask.keep.ravel()

    inverse = inverse_hessian(model, (x, y), names, hessian, loss, damping)
    dead = np.flatnonzero(~alive)
    if len(dead):  # already-pruned weights are fixed at zero: take them out of H⁻¹
        obs_delete(weights, inverse, dead)
    # H⁻¹ shrinks as we go: every so often the rows/columns of deleted weights are dropped
    # (``index`` maps the rows of the compact matrix to positions in the flat vector).
    index = np.arange(total)
    inverse, weights, index = compact(inverse, weights, index, alive)

    n_prunable = int(candidate.sum())
    to_delete = int(round(sparsity * n_prunable)) - int((candidate & ~alive).sum())
    group = max(1, to_delete // 100) if group_size is None else int(group_size)
    report = SurgeryReport({}, 0.0, 0.0, loss_before, loss_before, names=names)
    deleted = 0
    while deleted < to_delete:
        open_ = np.flatnonzero(candidate[index] & alive[index])  # rows we may delete
        saliency = obs_saliency(weights[open_], np.diag(inverse)[open_])
        count = min(group, to_delete - deleted)
        chosen = open_[np.argsort(saliency, kind="stable")[:count]]
        report.predicted_increase += obs_delete(weights, inverse, chosen)
        alive[index[chosen]] = False
        deleted += count
        step = SurgeryStep(deleted, index[chosen].tolist(), report.predicted_increase)
        if np.count_nonzero(~alive[index]) > 0.1 * len(index):
            inverse, weights, index = compact(inverse, weights, index, alive)
        if measure_every and (len(report.steps) + 1) % measure_every == 0:
            _write(model, names, _expand(weights, index, total), alive, offsets, sizes,
                   prunable, allow_empty_layers)
            step.measured_increase = evaluate(model, x, y, loss=loss)["loss"] - loss_before
        report.steps.append(step)
    report.masks = _write(model, names, _expand(weights, index, total), alive, offsets,
                          sizes, prunable, allow_empty_layers)
    report.loss_after = evaluate(model, x, y, loss=loss)["loss"]
    report.actual_increase = report.loss_after - loss_before
    return report


def compact(inverse: np.ndarray, weights: np.ndarray, index: np.ndarray, alive: np.ndarray):
    """Drop the rows/columns of deleted weights (all zero by now) from H⁻¹ and the weights."""
    keep = np.flatnonzero(alive[index])
    return inverse[np.ix_(keep, keep)], weights[keep], index[keep]


def _expand(alive_weights: np.ndarray, index: np.ndarray, total: int) -> np.ndarray:
    """The full flat weight vector: surviving values at their positions, zeros elsewhere."""
    weights = np.zeros(total)
    weights[index] = alive_weights
    return weights


def _write(model, names, weights, alive, offsets, sizes, prunable, allow_empty_layers
           ) -> dict[str, Mask]:
    """Put the compensated weights, then the masks, into the model (the masks may move
    layers to the sparse kernels: the weights go into the dense layers first)."""
    shapes = model.state_shapes()
    masks = {n: Mask(alive[offsets[n]:offsets[n] + sizes[n]].reshape(shapes[n]))
             for n in prunable}
    unflatten_into(model, names, weights)
    apply_masks(model, masks, allow_empty_layers)
    return masks
