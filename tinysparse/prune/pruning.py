"""Prune a model: score its weights, select masks, attach them to the layers.

::

    prune(model, 0.9)                                  # 90% of each layer, by magnitude
    prune(model, 0.9, scope="global")                  # one threshold for all layers
    prune(model, 0.9, overrides={"fc3.weight": 0.45})  # output layer at half the rate
    prune(model, 0.5, method="random", seed=1)         # the baseline to beat

Masks are attached with :meth:`Module.set_mask`, which also zeroes the pruned weights; from
then on the layer applies the mask in its forward pass and the optimisers keep the
pruned weights at exactly zero.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinysparse.nn.module import Module
from tinysparse.prune.scores import get_score_function
from tinysparse.prune.selection import check_scope, prunable_parameters, select_masks
from tinysparse.sparse.mask import Mask


def current_masks(model: Module, names: Sequence[str] | None = None) -> dict[str, Mask]:
    """The masks the model already has (for the given parameters, or all)."""
    masks = dict(model.named_masks())
    return masks if names is None else {n: masks[n] for n in names if n in masks}


def apply_masks(model: Module, masks: Mapping[str, Mask | np.ndarray]) -> None:
    """Attach each mask to the layer owning the parameter of that name (zeroing what it prunes)."""
    for name, mask in masks.items():
        module_name, _, param_name = name.rpartition(".")
        model.get_submodule(module_name).set_mask(param_name, mask)


def remove_masks(model: Module) -> None:
    """Forget every mask (pruned weights stay zero until training moves them)."""
    for module in model.modules():
        for param_name in list(module._masks):
            module.remove_mask(param_name)


def prune(
    model: Module,
    sparsity: float | Mapping[str, float],
    method: str = "magnitude",
    scope: str = "layer",
    parameters: Sequence[str] | None = None,
    overrides: Mapping[str, float] | None = None,
    include_bias: bool = False,
    **score_options: Any,
) -> dict[str, Mask]:
    """Prune ``model`` in place to ``sparsity`` and return the new masks.

    Parameters
    ----------
    model : Module
    sparsity : float or dict name -> float
        Target fraction of zeros in [0, 1), of each parameter (``scope="layer"``) or of
        all of them together (``scope="global"``). Existing zeros count and are kept.
    method : str
        How weights are scored: ``"magnitude"``, ``"random"`` (and the second-order
        methods once registered).
    scope : {"layer", "global"}
    parameters : list of str, optional
        Which parameters to prune (default: every weight matrix/kernel, no biases).
    overrides : dict name -> float, optional
        Per-parameter sparsities that take precedence (e.g. ``{"fc3.weight": 0.45}``).
    include_bias : bool
        Also prune biases (when ``parameters`` is not given).
    **score_options
        Passed to the score function (``seed`` for random, data for OBD/OBS, ...).
    """
    check_scope(scope)
    names = list(parameters) if parameters is not None else prunable_parameters(
        model, include_bias)
    if not names:
        raise ValueError("parameters: nothing to prune")
    own = {n for n, _ in model.named_parameters()}
    unknown = [n for n in names if n not in own]
    if unknown:
        raise ValueError(f"parameters: {unknown} are not parameters of the model; it has "
                         f"{sorted(own)}")
    scores = get_score_function(method)(model, names, **score_options)
    masks = select_masks(scores, sparsity, scope, current_masks(model, names), overrides)
    apply_masks(model, masks)
    return masks


def sparsity_of(model: Module, names: Sequence[str] | None = None) -> float:
    """Fraction of the (prunable) weights that are pruned."""
    names = list(names) if names is not None else prunable_parameters(model)
    masks = current_masks(model, names)
    total = sum(model.get_parameter(n).size for n in names)
    pruned = sum(masks[n].pruned for n in names if n in masks)
    return pruned / total if total else 0.0


def layer_sparsities(model: Module, names: Sequence[str] | None = None) -> dict[str, float]:
    """Sparsity of each prunable parameter, by name."""
    names = list(names) if names is not None else prunable_parameters(model)
    masks = current_masks(model, names)
    return {n: masks[n].sparsity if n in masks else 0.0 for n in names}


def clone(model: Module) -> Module:
    """An independent copy of a model: weights, masks, snapshots and all."""
    return copy.deepcopy(model)
