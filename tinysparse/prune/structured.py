"""Structured pruning: remove whole neurons and convolution filters.

Unstructured masks leave the matrices the same size, so only sparse kernels (and only at
high sparsity) turn the zeros into speed. Removing a *whole unit* — a Linear layer's row
(one neuron) or a Conv2d filter — shrinks the matrices themselves: the next layer loses
the matching input column (or input channel), and the network is simply a smaller dense
network that every dense kernel runs faster (Li et al. 2017 rank filters by their L1
norm; Wen et al. 2016 learn the structure with group lasso).

Two steps, so that each can be checked:

1. :func:`structured_prune` masks the units with the smallest L1 (or L2) norm of their
   incoming weights: the unit's weight row (or filter), its bias, and the next layer's
   weights that read it (:func:`unit_removal_masks`, which other ways of choosing units,
   such as Ising-dropout, share). The masked network computes exactly what the smaller
   one will.
2. :func:`shrink` builds that smaller dense network from the masked one.

:func:`shrink_in_place` puts the smaller layers into the model itself.

:func:`remove_units` is step 1 for units chosen otherwise (L0 gates that closed, for
example): it masks the units it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, no_grad
from tinysparse.nn.dropout import deterministic
from tinysparse.nn.layers import Conv2d, Flatten, Linear, Reshape, Sequential
from tinysparse.nn.module import Module, build_from_spec, replace_layers
from tinysparse.nn.sparse_layers import as_dense
from tinysparse.prune.masks import apply_masks, current_masks
from tinysparse.sparse.mask import Mask

CRITERIA = ("l1", "l2")


def _layers(model: Module) -> list[tuple[str, Module]]:
    if not isinstance(model, Sequential) or any(isinstance(m, Sequential) for m in model):
        raise TypeError("structured pruning works on a flat Sequential model")
    return list(model._modules.items())


def _weighted(layers: Sequence[tuple[str, Module]]) -> list[int]:
    return [i for i, (_, layer) in enumerate(layers) if isinstance(layer, Linear | Conv2d)]


def unit_norms(model: Module, criterion: str = "l1") -> dict[str, np.ndarray]:
    """Norm of each unit's incoming weights, for every hidden Linear/Conv2d layer (the last
    weighted layer — the output — is never pruned)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: unknown {criterion!r}; choose one of {list(CRITERIA)}")
    layers = _layers(as_dense(model))
    norms = {}
    for index in _weighted(layers)[:-1]:
        name, layer = layers[index]
        rows = layer.weight.data.reshape(layer.weight.shape[0], -1).astype(np.float64)
        norms[name] = (np.abs(rows).sum(axis=1) if criterion == "l1"
                       else np.sqrt((rows * rows).sum(axis=1)))
    return norms


def _input_shapes(model: Module, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """The per-example input shape of every layer (one zero example run through)."""
    shapes = []
    with no_grad(), deterministic(model):  # no Dropout draws: looking changes nothing
        x = Tensor(np.zeros((1, *input_shape)), dtype=model.dtype)
        for _, layer in _layers(model):
            shapes.append(tuple(x.shape[1:]))
            x = layer(x)
    return shapes


def _readers(layers, index: int, input_shapes) -> tuple[int, int]:
    """The next weighted layer after ``index`` and how many of its inputs each unit feeds
    (1, or H·W when a Flatten turns channels into features)."""
    per_unit = 1
    for j in range(index + 1, len(layers)):
        layer = layers[j][1]
        if isinstance(layer, Flatten):
            channels, *spatial = input_shapes[j]
            per_unit = int(np.prod(spatial)) if spatial else 1
        elif isinstance(layer, Reshape):
            raise TypeError("structured pruning cannot follow units through a Reshape")
        if isinstance(layer, Linear | Conv2d):
            return j, per_unit
    raise ValueError("the last weighted layer has no reader")


def unit_readers(model: Module, input_shape: Sequence[int] = (1, 28, 28)
                 ) -> dict[str, tuple[str, int]]:
    """For every hidden Linear/Conv2d layer, the next weighted layer that reads its units
    and how many of that reader's inputs each unit feeds (1, or H·W after a Flatten): unit
    u of the hidden layer is read by the reader's inputs ``u·per_unit ... (u+1)·per_unit −
    1`` (its columns, or input channel u). The same following that
    :func:`unit_removal_masks` does."""
    model = as_dense(model)
    layers = _layers(model)
    shapes = _input_shapes(model, input_shape)
    readers = {}
    for index in _weighted(layers)[:-1]:
        reader_index, per_unit = _readers(layers, index, shapes)
        readers[layers[index][0]] = (layers[reader_index][0], per_unit)
    return readers


def structured_prune(
    model: Module,
    fraction: float | Mapping[str, float],
    criterion: str = "l1",
    input_shape: Sequence[int] = (1, 28, 28),
) -> dict[str, Mask]:
    """Mask the ``fraction`` of units with the smallest norms in every hidden layer.

    Parameters
    ----------
    fraction : float or dict layer name -> float
        Fraction of each hidden layer's units (neurons or filters) to remove, in [0, 1).
    criterion : {"l1", "l2"}
        Norm of a unit's incoming weights.

    Returns
    -------
    dict name -> Mask
        The masks now on the model (rows, biases, and the readers' columns).
    """
    norms = unit_norms(model, criterion)
    removed: dict[str, np.ndarray] = {}
    for name, layer_norms in norms.items():
        share = fraction[name] if isinstance(fraction, Mapping) else fraction
        if not 0 <= share < 1:
            raise ValueError(f"fraction of {name}: expected a number in [0, 1), got {share}")
        count = int(round(share * len(layer_norms)))
        removed[name] = np.argsort(layer_norms, kind="stable")[:count]
    return remove_units(model, removed, input_shape)


def remove_units(
    model: Module,
    removed: Mapping[str, Sequence[int] | np.ndarray],
    input_shape: Sequence[int] = (1, 28, 28),
    allow_empty_layers: bool = False,
) -> dict[str, Mask]:
    """Mask the given units of hidden layers: each one's weight row (or filter), its bias,
    and the next weighted layer's weights that read it; earlier masks are kept.

    Parameters
    ----------
    removed : dict layer name -> unit indices
        For hidden Linear/Conv2d layers (not the last weighted layer: the outputs stay).
    input_shape : sequence of int
        One example's shape (to follow channels through a Flatten).
    allow_empty_layers : bool
        Allow removing every unit of a layer (see :func:`~tinysparse.prune.apply_masks`).

    Returns
    -------
    dict name -> Mask
        The masks now on the model.
    """
    masks = unit_removal_masks(model, removed, input_shape)
    apply_masks(model, masks, allow_empty_layers)
    return masks


def unit_removal_masks(
    model: Module,
    removed: Mapping[str, Sequence[int] | np.ndarray],
    input_shape: Sequence[int] = (1, 28, 28),
) -> dict[str, Mask]:
    """The masks that remove whole units, on top of the masks the model already has, for
    :func:`remove_units` and the methods that add masks of their own (Ising-dropout's
    dropped inputs). Nothing is applied to ``model``.

    Parameters
    ----------
    removed : dict hidden layer name -> indices of its units (rows or filters) to remove
        For each, the unit's weight row (or filter), its bias, and the next weighted
        layer's inputs that read it (its columns, or input channels) are masked.

    Returns
    -------
    dict name -> Mask
        Masks for every weight and bias that changes.
    """
    model = as_dense(model)
    layers = _layers(model)
    hidden = {layers[index][0]: index for index in _weighted(layers)[:-1]}
    unknown = sorted(set(removed) - set(hidden))
    if unknown:
        raise ValueError(f"removed: {unknown} {'is' if len(unknown) == 1 else 'are'} not "
                         f"hidden Linear/Conv2d layers; the hidden layers are {list(hidden)} "
                         f"(the output layer keeps its units)")
    shapes = _input_shapes(model, input_shape)
    keep: dict[str, np.ndarray] = {}

    def keep_of(layer_name: str, param: str) -> np.ndarray:
        key = f"{layer_name}.{param}"
        if key not in keep:
            layer = dict(layers)[layer_name]
            existing = current_masks(model, [key]).get(key)
            keep[key] = (existing.keep.copy() if existing is not None
                         else np.ones(getattr(layer, param).shape, dtype=bool))
        return keep[key]

    for name, units in removed.items():
        index, layer = hidden[name], layers[hidden[name]][1]
        units = np.asarray(units, dtype=np.int64).reshape(-1)
        if units.size and (units.min() < 0 or units.max() >= layer.weight.shape[0]):
            raise ValueError(f"removed[{name!r}]: unit indices must lie in "
                             f"[0, {layer.weight.shape[0]}), got {units.min()}..{units.max()}")
        keep_of(name, "weight")[units] = False
        if layer.bias is not None:
            keep_of(name, "bias")[units] = False
        reader_index, per_unit = _readers(layers, index, shapes)
        reader = layers[reader_index][0]
        columns = (units[:, None] * per_unit + np.arange(per_unit)).ravel()
        keep_of(reader, "weight")[:, columns] = False
    return {key: Mask(values) for key, values in keep.items()}


def shrink(model: Module, input_shape: Sequence[int] = (1, 28, 28)) -> Sequential:
    """A smaller dense copy of ``model`` without the units :func:`structured_prune` removed.

    A unit is removed when its whole weight row (or filter) and its bias are masked. Its
    outputs equal the masked model's (up to the order of floating-point sums). Masks inside
    the kept units come along, sliced.
    """
    model = as_dense(model)
    layers = _layers(model)
    shapes = _input_shapes(model, input_shape)
    weighted = _weighted(layers)
    new_layers: list[tuple[str, Module]] = []
    kept_inputs: np.ndarray | None = None  # kept input features/channels of the next layer
    for index, (name, layer) in enumerate(layers):
        spec = layer.spec()
        if isinstance(layer, Flatten) and kept_inputs is not None:
            channels, *spatial = shapes[index]
            per_unit = int(np.prod(spatial)) if spatial else 1
            kept_inputs = (kept_inputs[:, None] * per_unit + np.arange(per_unit)).ravel()
        if not isinstance(layer, Linear | Conv2d):
            new_layers.append((name, build_from_spec(spec)))
            continue
        weight_mask = layer._masks.get("weight")
        bias_mask = layer._masks.get("bias")
        rows = weight_mask.keep.reshape(layer.weight.shape[0], -1) if weight_mask else None
        if index == weighted[-1] or rows is None:
            kept_units = np.arange(layer.weight.shape[0])
        else:
            alive = rows.any(axis=1)
            if bias_mask is not None:
                alive |= bias_mask.keep
            elif layer.bias is not None:
                alive[:] = True  # an unmasked bias keeps the unit's output alive
            kept_units = np.flatnonzero(alive)
        inputs = (kept_inputs if kept_inputs is not None
                  else np.arange(layer.weight.shape[1]))
        args: dict[str, Any] = dict(spec["args"])
        if isinstance(layer, Linear):
            args.update(in_features=len(inputs), out_features=len(kept_units))
        else:
            args.update(in_channels=len(inputs), out_channels=len(kept_units))
        new = type(layer)(**args).to(layer.dtype)
        new.weight.data = layer.weight.data[np.ix_(kept_units, inputs)].copy()
        if layer.bias is not None:
            new.bias.data = layer.bias.data[kept_units].copy()
        if weight_mask is not None:
            sliced = weight_mask.keep[np.ix_(kept_units, inputs)]
            if not sliced.all():
                new.set_mask("weight", sliced)
        new_layers.append((name, new))
        kept_inputs = kept_units
    return Sequential(*new_layers)


def shrink_in_place(model: Module, input_shape: Sequence[int] = (1, 28, 28)) -> Module:
    """:func:`shrink` ``model`` and put the smaller layers into it, under the same names (its
    config and snapshots stay; the old layers' parameters are marked replaced, so an
    optimiser still holding them refuses to step). Returns ``model``."""
    smaller = shrink(model, input_shape)
    old = dict(_layers(model))
    new_by_old = {id(old[name]): layer for name, layer in smaller._modules.items()}
    return replace_layers(model, lambda layer: new_by_old.get(id(layer)))


def unit_counts(model: Module) -> dict[str, int]:
    """Units (rows/filters) of every Linear/Conv2d layer: handy to show what shrink did."""
    return {name: layer.weight.shape[0] for name, layer in _layers(as_dense(model))
            if isinstance(layer, Linear | Conv2d)}

