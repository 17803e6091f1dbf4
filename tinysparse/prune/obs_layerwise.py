"""Layer-wise Optimal Brain Surgeon (L-OBS, Dong et al. 2017; OBC/ExactOBS, Frantar,
Singh & Alistarh 2022), for networks too large for one n × n inverse Hessian.

Prune each layer so that its *output* on calibration inputs X changes as little as
possible: minimise ‖W X − Ŵ X‖². This is a quadratic in each row w of W with the same
Hessian for every row,

    H = 2 X Xᵀ (+ damping)             one d × d matrix per layer, inverted once,

so OBS applies row by row, exactly: repeatedly delete p = argmin w_p² / [H⁻¹]_pp, update
the row ``w −= (w_p / [H⁻¹]_pp) H⁻¹_{:,p}`` and remove p from the row's copy of H⁻¹.
Each deletion's error increase w_p² / [H⁻¹]_pp (in units of ‖·‖²) is recorded, so the
rows can then share the layer's sparsity where deletions are cheapest (or several layers
share one global sparsity, comparing errors relative to ‖W X‖²). Finally each row is
re-solved for its chosen deletions: with S the kept and P the deleted inputs,
``ŵ_S = w_S + H_SS⁻¹ H_SP w_P`` is the best reconstruction.

Convolutions are handled through im2col: a kernel row (C·K·K) sees the input patches as
its X. Deletions are made ``group_size`` at a time per row (the same formulas for a set;
1 = exactly one at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinysparse import kernels
from tinysparse.autograd import Tensor, no_grad
from tinysparse.data.dataset import training_examples
from tinysparse.kernels import im2col
from tinysparse.nn.dropout import deterministic
from tinysparse.nn.layers import Conv2d, Linear
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import to_dense
from tinysparse.prune.hessian import layer_sequence
from tinysparse.prune.masks import apply_masks
from tinysparse.prune.selection import check_scope, check_sparsity
from tinysparse.sparse.mask import Mask
from tinysparse.train import evaluate


def layer_inputs(model: Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """X for every Linear/Conv2d layer: its inputs as columns, (d, samples), float64.

    For a Linear layer the columns are the input vectors; for a convolution they are the
    im2col patches (one column per example and output position).
    """
    inputs: dict[str, np.ndarray] = {}
    with no_grad(), deterministic(model):  # the network itself: no weight noise sampled
        activation = Tensor(x)
        for name, layer in layer_sequence(model):
            if isinstance(layer, Linear):
                inputs[name] = activation.data.reshape(len(x), -1).T.astype(np.float64)
            elif isinstance(layer, Conv2d):
                cols, _ = im2col(activation.data, layer.kernel_size, layer.kernel_size,
                                 layer.stride, layer.padding)
                inputs[name] = cols.astype(np.float64)
            activation = layer(activation)
    return inputs


def layer_hessian(inputs: np.ndarray, damping: float) -> np.ndarray:
    """H = 2 X Xᵀ / N + λ·mean(diag)·I (N samples; the 1/N only rescales the errors)."""
    if not damping > 0:
        raise ValueError(f"damping: expected a positive number, got {damping} (dead inputs, "
                         f"such as MNIST's always-black border pixels, make X Xᵀ singular)")
    hessian = 2 * inputs @ inputs.T / inputs.shape[1]
    hessian += damping * max(float(np.mean(np.diag(hessian))), 1e-12) * np.eye(len(hessian))
    return hessian


@dataclass
class RowTrajectories:
    """For every row: the inputs deleted, in order, and the error each deletion added."""

    order: np.ndarray  # (rows, steps) indices
    increase: np.ndarray  # (rows, steps) error increase of each deletion


def greedy_row_deletions(
    weight: np.ndarray, inverse: np.ndarray, steps: int, group_size: int = 1,
    rows_at_once: int = 32,
) -> RowTrajectories:
    """Run OBS on every row of ``weight`` (rows × d) for ``steps`` deletions.

    All rows start from the shared H⁻¹; each then keeps its own copy. One deletion at a
    time runs :func:`tinysparse.kernels.obs_rows_greedy`; groups of ``group_size`` run
    here, vectorised over ``rows_at_once`` rows (same formulas for a set of deletions).
    Each deletion's error increase is w_p² / (2 [H⁻¹]_pp) in units of ‖ΔW X‖² / N.
    """
    if group_size == 1:  # exactly one at a time: the compiled kernel (or its NumPy twin)
        order, increase = kernels.obs_rows_greedy(np.ascontiguousarray(weight, np.float64),
                                                  np.ascontiguousarray(inverse, np.float64),
                                                  steps)
        return RowTrajectories(order, increase)
    rows, d = weight.shape
    order = np.zeros((rows, steps), dtype=np.int64)
    increase = np.zeros((rows, steps))
    for start in range(0, rows, rows_at_once):
        w = weight[start : start + rows_at_once].astype(np.float64)
        r = len(w)
        inv = np.repeat(inverse[None], r, axis=0)  # (r, d, d)
        alive = np.ones((r, d), dtype=bool)
        done = 0
        while done < steps:
            count = min(group_size, steps - done)
            diagonal = np.einsum("rii->ri", inv)
            saliency = np.where(alive, w * w / np.where(alive, diagonal, 1.0), np.inf)
            chosen = np.argsort(saliency, axis=1, kind="stable")[:, :count]  # (r, g)
            index = np.arange(r)[:, None]
            columns = np.take_along_axis(inv, chosen[:, None, :], axis=2)  # H⁻¹_{:,Q} (r,d,g)
            block = np.take_along_axis(columns, chosen[:, :, None], axis=1)  # H⁻¹_QQ (r,g,g)
            w_q = w[index, chosen]
            coefficients = np.linalg.solve(block, w_q[..., None])[..., 0]  # H⁻¹_QQ⁻¹ w_Q
            # error increase of the group: ½ w_Qᵀ H⁻¹_QQ⁻¹ w_Q (split by saliency)
            group_error = 0.5 * np.einsum("rg,rg->r", w_q, coefficients)
            share = saliency[index, chosen]
            share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-300)
            w -= np.einsum("rdg,rg->rd", columns, coefficients)  # compensation
            w[index, chosen] = 0.0
            inv -= columns @ np.linalg.solve(block, np.swapaxes(columns, 1, 2))
            alive[index, chosen] = False
            inv[index, chosen, :] = 0.0
            inv[index, :, chosen] = 0.0
            order[start : start + r, done : done + count] = chosen
            increase[start : start + r, done : done + count] = group_error[:, None] * share
            done += count
    return RowTrajectories(order, increase)


def allocate(trajectories: Sequence[RowTrajectories], budgets: Sequence[float],
             total_deletions: int) -> list[np.ndarray]:
    """How many deletions each row gets: the cheapest ``total_deletions`` across rows
    (each row's increases made non-decreasing, so every row deletes a prefix of its
    order). ``budgets`` scales each trajectory set's errors (1 for a single layer)."""
    costs, owners = [], []
    for t, (traj, scale) in enumerate(zip(trajectories, budgets)):
        monotone = np.maximum.accumulate(traj.increase, axis=1) / scale
        costs.append(monotone.ravel())
        owners.append(np.stack([np.full(monotone.size, t),
                                np.repeat(np.arange(monotone.shape[0]), monotone.shape[1])]))
    cost = np.concatenate(costs)
    owner = np.concatenate(owners, axis=1)
    chosen = np.argsort(cost, kind="stable")[:total_deletions]
    counts = [np.zeros(traj.order.shape[0], dtype=np.int64) for traj in trajectories]
    for t, row in owner[:, chosen].T:
        counts[t][row] += 1
    return counts


def reconstruct(weight: np.ndarray, hessian: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Best rows for fixed masks: ŵ_S = w_S + H_SS⁻¹ H_SP w_P, ŵ_P = 0 (per row)."""
    result = np.zeros_like(weight, dtype=np.float64)
    for i, (w, kept) in enumerate(zip(weight.astype(np.float64), keep)):
        pruned = ~kept
        if not kept.any():
            continue
        h_ss = hessian[np.ix_(kept, kept)]
        h_sp = hessian[np.ix_(kept, pruned)]
        result[i, kept] = w[kept] + np.linalg.solve(h_ss, h_sp @ w[pruned])
    return result


@dataclass
class LayerwiseReport:
    """What layer-wise OBS did to each layer: sparsity and relative reconstruction error."""

    masks: dict[str, Mask]
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    loss_before: float | None = None
    loss_after: float | None = None


def obs_layerwise_prune(
    model: Module,
    sparsity: float,
    data: Any,
    scope: str = "layer",
    calibration: int = 1000,
    damping: float = 1e-2,
    group_size: int = 1,
    loss: str = "cross_entropy",
    headroom: float = 0.5,
    allow_empty_layers: bool = False,
) -> LayerwiseReport:
    """Prune every Linear/Conv2d weight of ``model`` in place by layer-wise OBS.

    Parameters
    ----------
    sparsity : float
        Target sparsity of each layer (``scope="layer"``) or of all weights together
        (``scope="global"``), in [0, 1).
    data : (x, y) or Dataset
        The first ``calibration`` examples give each layer's inputs X.
    damping : float
        Relative damping of H = 2 X Xᵀ (fraction of its mean diagonal).
    group_size : int
        Deletions per OBS step in each row: 1 (the default) deletes one at a time,
        exactly, on the compiled kernel, which is also the fastest. Larger groups run
        the vectorised NumPy version; they only help when Numba is unavailable.
    headroom : float
        How far past the target each row's greedy trajectory runs, as a fraction of the
        remaining density, so the rows can share the deletions unevenly.
    """
    sparsity = check_sparsity(sparsity)
    check_scope(scope)
    if calibration < 1:
        raise ValueError(f"calibration: expected a positive number of examples, got "
                         f"{calibration}")
    to_dense(model)  # layer-wise OBS reads and rewrites dense weights
    x, y = training_examples(data)
    x = x[:calibration]
    loss_before = evaluate(model, x, y[:calibration], loss=loss)["loss"]
    inputs = layer_inputs(model, x)
    layers = [(name, layer) for name, layer in layer_sequence(model)
              if isinstance(layer, Linear | Conv2d)]
    reach = min(0.999, sparsity + headroom * (1 - sparsity))
    per_layer = {}
    for name, layer in layers:
        weight = layer.weight.data.reshape(layer.weight.shape[0], -1).astype(np.float64)
        if layer.weight.mask is not None:
            raise ValueError(f"{name}: layer-wise OBS starts from a dense layer (this one "
                             f"already has a mask)")
        hessian = layer_hessian(inputs[name], damping)
        steps = min(weight.shape[1], int(np.ceil(reach * weight.shape[1])))
        trajectories = greedy_row_deletions(weight, np.linalg.inv(hessian), steps, group_size)
        output_energy = float(np.sum((weight @ inputs[name]) ** 2)) / inputs[name].shape[1]
        per_layer[name] = (layer, weight, hessian, trajectories, output_energy)

    names = list(per_layer)
    if scope == "layer":
        counts = {}
        for name in names:
            _, weight, _, trajectories, _ = per_layer[name]
            counts[name] = allocate([trajectories], [1.0], int(round(sparsity * weight.size)))[0]
    else:
        total = sum(per_layer[n][1].size for n in names)
        allocations = allocate([per_layer[n][3] for n in names],
                               [max(per_layer[n][4], 1e-12) for n in names],
                               int(round(sparsity * total)))
        counts = dict(zip(names, allocations))

    report = LayerwiseReport({}, loss_before=loss_before)
    for name in names:
        layer, weight, hessian, trajectories, energy = per_layer[name]
        keep = np.ones(weight.shape, dtype=bool)
        for row, count in enumerate(counts[name]):
            keep[row, trajectories.order[row, :count]] = False
        new_weight = reconstruct(weight, hessian, keep)
        delta = (weight - new_weight) @ inputs[name]
        error = float(np.sum(delta * delta)) / inputs[name].shape[1]
        mask = Mask(keep.reshape(layer.weight.shape))
        layer.weight.data = new_weight.reshape(layer.weight.shape).astype(layer.weight.dtype)
        report.masks[f"{name}.weight"] = mask
        report.layers[f"{name}.weight"] = {"sparsity": mask.sparsity,
                                           "relative_error": error / max(energy, 1e-300)}
    apply_masks(model, report.masks, allow_empty_layers)
    report.loss_after = evaluate(model, x, y[:calibration], loss=loss)["loss"]
    return report
