"""Putting masks on a model, taking them off, and counting what they prune.

Every pruning method ends here: :func:`apply_masks` attaches the masks to the layers that
own the weights (zeroing what they prune) and then moves each layer whose mask keeps at
most :func:`tinysparse.sparse.density_threshold` of its weights to the sparse kernels
(:func:`tinysparse.nn.to_sparse`). That is the whole of the switch to the sparse path:
nothing happens behind the user's back later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import to_dense, to_sparse
from tinysparse.prune.selection import prunable_parameters
from tinysparse.sparse.mask import Mask


def current_masks(model: Module, names: Sequence[str] | None = None) -> dict[str, Mask]:
    """The masks the model already has (for the given weights, or all)."""
    masks = dict(model.named_masks())
    return masks if names is None else {n: masks[n] for n in names if n in masks}


def apply_masks(model: Module, masks: Mapping[str, Mask | np.ndarray],
                allow_empty_layers: bool = False) -> None:
    """Attach each mask to the layer owning the weight of that name (zeroing what it
    prunes), then move the layers sparse enough for it to the sparse kernels.

    Layers already on the sparse kernels come back to their dense twins first (their
    masks can only change there), so the masks may keep anything the dense weights hold.
    Build optimisers after this call: the layers it moves get new parameters.

    A mask that would leave a weight matrix or kernel with no weight at all (the layer
    then passes nothing on, and training runs on a constant network) is refused unless
    ``allow_empty_layers``. Units left with no input are allowed: structured pruning
    makes them on purpose (the sparsity report counts them).
    """
    check_no_empty_layer(masks, allow_empty_layers)
    to_dense(model)
    for name, mask in masks.items():
        module_name, _, param_name = name.rpartition(".")
        model.get_submodule(module_name).set_mask(param_name, mask)
    to_sparse(model)


def check_no_empty_layer(masks: Mapping[str, Mask | np.ndarray],
                         allow_empty_layers: bool = False) -> None:
    """A ValueError naming the weights ``masks`` would empty (unless allowed)."""
    if allow_empty_layers:
        return
    empty = [name for name, mask in masks.items()
             if np.ndim(mask.keep if isinstance(mask, Mask) else mask) > 1
             and not np.any(mask.keep if isinstance(mask, Mask) else mask)]
    if empty:
        raise ValueError(f"pruning would remove every weight of {', '.join(empty)}: the "
                         f"network could no longer pass anything through. Prune less (or "
                         f"with scope='layer'), or pass allow_empty_layers=True if you mean "
                         f"it")


def remove_masks(model: Module) -> None:
    """Forget every mask (pruned weights stay zero until training moves them); layers on
    the sparse kernels come back to dense ones."""
    to_dense(model)
    for module in model.modules():
        for param_name in list(module._masks):
            module.remove_mask(param_name)


def sparsity_of(model: Module, names: Sequence[str] | None = None) -> float:
    """Fraction of the (prunable) weights that are pruned."""
    names = list(names) if names is not None else prunable_parameters(model)
    shapes, masks = model.state_shapes(), current_masks(model, names)
    total = sum(int(np.prod(shapes[n])) for n in names)
    pruned = sum(masks[n].pruned for n in names if n in masks)
    return pruned / total if total else 0.0


def layer_sparsities(model: Module, names: Sequence[str] | None = None) -> dict[str, float]:
    """Sparsity of each prunable weight, by name."""
    names = list(names) if names is not None else prunable_parameters(model)
    masks = current_masks(model, names)
    return {n: masks[n].sparsity if n in masks else 0.0 for n in names}
