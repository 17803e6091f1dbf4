"""Optimal Brain Damage (LeCun, Denker & Solla, NIPS 1989/1990).

Expand the loss to second order around a trained minimum, assume the Hessian is
diagonal and the gradient zero; deleting weight k (δw_k = −w_k) then costs

    δE ≈ ½ Σ_k h_kk δw_k²   so the saliency of weight k is   s_k = h_kk w_k² / 2

with h_kk from the second backward pass (:func:`~tinysparse.prune.hessian.hessian_diagonal`).
Recipe: train → diagonal → saliencies → delete the lowest → retrain → repeat
(``prune_and_retrain(..., method="obd", data=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysparse.data.dataset import training_examples
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import to_dense
from tinysparse.prune.hessian import hessian_diagonal
from tinysparse.prune.masks import apply_masks, current_masks
from tinysparse.prune.selection import prunable_parameters, select_masks
from tinysparse.sparse.mask import Mask
from tinysparse.train import evaluate


def saliencies(
    model: Module, data: Any, names: Sequence[str], loss: str = "cross_entropy",
    kind: str = "gauss-newton", batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """OBD saliency of every weight of the named parameters: s_k = h_kk w_k² / 2."""
    diagonal = hessian_diagonal(model, data, loss=loss, kind=kind, batch_size=batch_size)
    result = {}
    for name in names:
        w = model.get_parameter(name).data.astype(np.float64)
        result[name] = diagonal[name] * w * w / 2  # s_k = h_kk w_k² / 2
    return result


def obd_scores(
    model: Module, names: Sequence[str], data: Any = None, loss: str = "cross_entropy",
    kind: str = "gauss-newton", batch_size: int = 256, **_: Any,
) -> dict[str, np.ndarray]:
    """Score function for :func:`~tinysparse.prune.prune` (``method="obd"``)."""
    if data is None:
        raise ValueError("method 'obd' needs data=(x, y) to compute the Hessian diagonal "
                         "(e.g. a calibration batch of the training set)")
    return saliencies(model, data, names, loss, kind, batch_size)


def predicted_increase(
    scores: Mapping[str, np.ndarray], before: Mapping[str, Mask], after: Mapping[str, Mask],
) -> float:
    """Sum of the saliencies of the weights that ``after`` prunes and ``before`` kept."""
    total = 0.0
    for name, mask in after.items():
        newly = ~mask.keep if name not in before else before[name].keep & ~mask.keep
        total += float(np.sum(np.asarray(scores[name])[newly]))
    return total


@dataclass
class DamageReport:
    """OBD's prediction beside the measured change of the (mean) loss."""

    predicted_increase: float
    actual_increase: float
    loss_before: float
    loss_after: float
    masks: dict[str, Mask]


def obd_prune(
    model: Module, sparsity: float | Mapping[str, float], data: Any, scope: str = "layer",
    loss: str = "cross_entropy", kind: str = "gauss-newton",
    parameters: Sequence[str] | None = None, batch_size: int = 256,
    allow_empty_layers: bool = False,
) -> DamageReport:
    """Prune ``model`` in place by OBD saliency and compare the predicted loss increase
    (sum of the deleted saliencies) with the one measured on ``data``."""
    to_dense(model)  # the second backward pass reads dense weights
    x, y = training_examples(data)
    names = list(parameters) if parameters is not None else prunable_parameters(model)
    before = evaluate(model, x, y, loss=loss)["loss"]
    previous = current_masks(model, names)
    scores = saliencies(model, (x, y), names, loss, kind, batch_size)
    masks = select_masks(scores, sparsity, scope, previous)
    apply_masks(model, masks, allow_empty_layers)
    after = evaluate(model, x, y, loss=loss)["loss"]
    return DamageReport(predicted_increase(scores, previous, masks), after - before, before,
                        after, masks)
