"""Learned structured sparsity with group lasso (Wen, Wu, Wang, Chen & Li 2016): train with
a penalty on the norms of whole groups of weights, so that training itself drives whole
units (neurons, filters) to zero; then remove those units physically.

1. Train on the penalised loss per training example (as the other methods here, λ/N)::

       loss = cross-entropy(batch) + (λ / N) · Σ_layers Σ_units ‖w_unit‖₂

   where N is the number of training examples, and a unit's group (``groups``) is

   * ``"incoming"``: its incoming weights, a row of a Linear weight (out, in) or a filter
     of a Conv2d (its output channel);
   * ``"outgoing"``: its outgoing weights, the columns of the next weighted layer that
     read it (a Linear's column, the H·W columns a channel feeds through a Flatten, or a
     Conv2d's input channel) — the weights whose zero makes the unit unread;
   * ``"both"``: both groups, each penalised.

   Only hidden units are grouped (the outputs stay; input pixels are not removed). The
   penalty is :func:`tinysparse.autograd.group_lasso` (gradient ``w_g / ‖w_g‖₂``, 0 at a
   zero group). Every group has λ_g = 1: groups of different sizes are not reweighted.
2. Remove the units whose group norm fell below ``threshold`` times the largest group norm
   of the same layer (relative, so that one number serves layers of different widths and
   scales; with ``"both"``, a unit goes when either of its groups is below). Plain
   (sub)gradient steps with Adam never make a norm exactly 0: the weights of a collapsed
   group keep moving by about the learning rate per step, so a small relative threshold
   separates them from the living units. The removal is the existing structured code:
   :func:`tinysparse.prune.remove_units` masks each removed unit's row (or filter), its
   bias and its readers' columns; :func:`tinysparse.prune.shrink_in_place` then makes the
   model an ordinary smaller dense network.
3. Optionally fine-tune the smaller network (``finetune_epochs``, plain cross-entropy).

A removed unit with a small but non-zero group is not exactly silent: with
``"incoming"``, its output is the constant act(bias), which its readers lose; with
``"outgoing"``, its small outgoing weights go. So the test accuracy is reported before
and after the removal.

``compare_norm_removal`` runs the comparison of issue 18: the same network (same
initial weights) trained plainly for the same epochs, then the same number of units per
layer removed by the L2 norm of their incoming weights
(:func:`tinysparse.prune.structured_prune`, Li et al.'s ranking with L2) and fine-tuned for
the same ``finetune_epochs``: both methods end at the same size.

Measured here (mnist-5k, LeNet-300-100, 30 epochs, Adam 1e-3, batch 64, groups "both",
threshold 0.05): λ = 2, 10, 30, 100 kept 268/85, 63/68, 20/43, 8/17 units of fc1/fc2 at
test accuracy 0.951, 0.949, 0.915, 0.876 after removal (equal to before removal); at λ =
10 the same number of units removed by L2 norm from a plainly trained network left 0.594,
and 0.942 after 5 fine-tuning epochs (group lasso fine-tuned alike: 0.946). The README
has seeds 1 and 2 and LeNet-5.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, cross_entropy, group_lasso, no_grad
from tinysparse.data.dataset import Dataset, training_examples
from tinysparse.nn.layers import Conv2d, Linear
from tinysparse.nn.module import Module, clone
from tinysparse.nn.sparse_layers import as_dense
from tinysparse.prune.masks import layer_sparsities, sparsity_of
from tinysparse.prune.structured import (
    remove_units,
    shrink_in_place,
    structured_prune,
    unit_counts,
    unit_readers,
)
from tinysparse.sparsify.method import SparsifyRun
from tinysparse.train import evaluate, fit

#: which weights make up a unit's group
GROUP_KINDS = ("incoming", "outgoing", "both")

#: defaults of :func:`run` (ours, chosen on mnist-5k; not the paper's)
DEFAULT_LAMBDA = 10.0
DEFAULT_THRESHOLD = 0.05


def check_options(lambda_: Any, threshold: Any, groups: Any, finetune_epochs: Any = 0
                  ) -> None:
    """A ValueError naming the first option out of its range."""
    if isinstance(lambda_, bool) or not isinstance(lambda_, int | float) or \
            not math.isfinite(lambda_) or lambda_ < 0:
        raise ValueError(f"lambda_: expected a finite number >= 0 (the group-lasso penalty "
                         f"per training example is lambda_ / N), got {lambda_!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or \
            not 0 <= threshold < 1:
        raise ValueError(f"threshold: expected a number in [0, 1) (a unit goes when its "
                         f"group norm is below threshold x the layer's largest), got "
                         f"{threshold!r}")
    if groups not in GROUP_KINDS:
        raise ValueError(f"groups: expected one of {list(GROUP_KINDS)}, got {groups!r}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or \
            finetune_epochs < 0:
        raise ValueError(f"finetune_epochs: expected an integer >= 0, got "
                         f"{finetune_epochs!r}")


def threshold_option(text: Any) -> float:
    """The command line's ``--threshold`` as a number in [0, 1), or a ValueError naming it."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 <= value < 1:
        raise ValueError(f"threshold: expected a number in [0, 1), got {text!r}")
    return value


def _unit_groups(model: Module, groups: str, input_shape: Sequence[int]
                 ) -> dict[str, list[tuple[Any, int, int]]]:
    """For every hidden layer, its units' groups as (weight Parameter, per_unit, axis):
    group u is the weight's slice u along ``axis`` after reshaping a Flatten's reader
    (out, C·H·W) to (out, C, H·W)."""
    if groups not in GROUP_KINDS:
        raise ValueError(f"groups: expected one of {list(GROUP_KINDS)}, got {groups!r}")
    layers = dict(model._modules)
    for name, layer in layers.items():
        if isinstance(layer, Linear | Conv2d) and not hasattr(layer, "weight"):
            raise TypeError(f"group lasso: layer {name!r} has no dense weight")
    found: dict[str, list[tuple[Any, int, int]]] = {}
    for name, (reader, per_unit) in unit_readers(model, input_shape).items():
        found[name] = []
        if groups in ("incoming", "both"):
            found[name].append((layers[name].weight, 1, 0))
        if groups in ("outgoing", "both"):
            found[name].append((layers[reader].weight, per_unit, 1))
    return found


def _grouped(weight, per_unit: int):
    """The weight with one axis per unit: a Flatten's reader (out, C·H·W) as (out, C, H·W)."""
    return weight.reshape(weight.shape[0], -1, per_unit) if per_unit > 1 else weight


def penalty(model: Module, groups: str = "both", input_shape: Sequence[int] = (1, 28, 28)
            ) -> Tensor:
    """``Σ_layers Σ_units ‖w_unit‖₂`` over the hidden units' groups (see the module's
    docstring for ``groups``), a scalar Tensor with gradients to the weights."""
    total = None
    for unit_groups in _unit_groups(model, groups, input_shape).values():
        for weight, per_unit, axis in unit_groups:
            term = group_lasso(_grouped(weight, per_unit), axis=axis)
            total = term if total is None else total + term
    if total is None:
        raise ValueError("group lasso: the model has no hidden Linear/Conv2d layer")
    return total


def group_norms(model: Module, groups: str = "both", input_shape: Sequence[int] = (1, 28, 28)
                ) -> dict[str, dict[str, np.ndarray]]:
    """Each hidden unit's group norms: ``{layer: {"incoming": (units,), "outgoing":
    (units,)}}`` (the kinds ``groups`` asks for)."""
    model = as_dense(model)
    norms: dict[str, dict[str, np.ndarray]] = {}
    for name, unit_groups in _unit_groups(model, groups, input_shape).items():
        norms[name] = {}
        for weight, per_unit, axis in unit_groups:
            values = _grouped(weight.data, per_unit).astype(np.float64)
            others = tuple(a for a in range(values.ndim) if a != axis)
            kind = "incoming" if axis == 0 else "outgoing"
            norms[name][kind] = np.sqrt((values * values).sum(axis=others))
    return norms


def units_below(norms: dict[str, dict[str, np.ndarray]], threshold: float
                ) -> dict[str, np.ndarray]:
    """The units to remove: a unit whose group norm (either group, with two) is below
    ``threshold`` × the largest norm of that kind in its layer (never every unit of a
    layer: the unit with the largest relative norm stays)."""
    removed = {}
    for name, kinds in norms.items():
        relative = _relative(kinds)
        below = relative < threshold
        if below.all():  # with two kinds every unit can be below in one: keep the best
            below[np.argmax(relative)] = False
        removed[name] = np.flatnonzero(below)
    return removed


def _relative(kinds: dict[str, np.ndarray]) -> np.ndarray:
    """Each unit's smallest group norm relative to its layer's largest of the same kind."""
    return np.min([values / values.max() if values.max() > 0 else np.zeros_like(values)
                   for values in kinds.values()], axis=0)


def kept_units(model: Module) -> dict[str, int]:
    """Units of each hidden layer (the output layer's are fixed)."""
    counts = unit_counts(model)
    return dict(list(counts.items())[:-1])


def norm_removal_at_same_size(model: Module, data: Dataset, kept: dict[str, int], *,
                              finetune_epochs: int = 0, lr: float = 1e-3,
                              batch_size: int = 64, seed: int = 0, quiet: bool = False
                              ) -> dict[str, Any]:
    """Remove units of a (plainly trained) ``model`` by the L2 norm of their incoming
    weights, down to ``kept`` units per hidden layer (:func:`structured_prune`), shrink it
    in place, and fine-tune it for ``finetune_epochs``. Returns the test accuracies
    before removal, after it, and after fine-tuning (when there is any)."""
    before = evaluate(model, *data.test)["accuracy"]
    units = kept_units(model)
    fractions = {name: (units[name] - kept[name]) / units[name] for name in units}
    structured_prune(model, fractions, criterion="l2", input_shape=data.x_train.shape[1:])
    shrink_in_place(model, data.x_train.shape[1:])
    result: dict[str, Any] = {"unpruned_test_accuracy": before,
                              "pruned_test_accuracy": evaluate(model, *data.test)["accuracy"],
                              "units": kept_units(model)}
    if finetune_epochs:
        fit(model, data, epochs=finetune_epochs, lr=lr, batch_size=batch_size, seed=seed,
            quiet=quiet, desc="fine-tune (norm)")
        result["finetuned_test_accuracy"] = evaluate(model, *data.test)["accuracy"]
    return result


def run(model: Module, data: Dataset, *, epochs: int = 30, lr: float = 1e-3,
        batch_size: int = 64, seed: int = 0, quiet: bool = False,
        lambda_: float = DEFAULT_LAMBDA, threshold: float = DEFAULT_THRESHOLD,
        groups: str = "both", finetune_epochs: int = 0,
        compare_norm_removal: bool = False) -> SparsifyRun:
    """Train ``model`` with a group-lasso penalty on its hidden units, remove the units
    whose groups collapsed, and leave ``model`` an ordinary smaller dense network.

    Parameters
    ----------
    model : Module
        A dense flat Sequential (``lenet300``, ``lenet5``, ``mlp``), trained and shrunk in
        place.
    data : Dataset
        Trains on the training split, reports accuracies on the test split.
    epochs, lr, batch_size, seed, quiet
        For the penalised training (Adam), the fine-tuning and the comparison.
    lambda_ : float
        λ ≥ 0; the penalty per training example is ``lambda_ / N``.
    threshold : float in [0, 1)
        A unit goes when its group norm is below ``threshold`` × the largest in its layer.
    groups : {"incoming", "outgoing", "both"}
        Which weights make a unit's group (see the module's docstring).
    finetune_epochs : int
        Plain epochs after the removal (0: none).
    compare_norm_removal : bool
        Also train a copy of ``model`` (same initial weights) plainly and remove the same
        number of units per layer by L2 norm (:func:`norm_removal_at_same_size`).

    Returns
    -------
    SparsifyRun
        ``unpruned_test_accuracy`` (after the penalised training), ``pruned_test_accuracy``
        (right after removal), ``test_accuracy`` (the final smaller model's).
        ``sparsity``, ``compression`` and ``layers`` count the original network's weights
        that the removal took. ``extra["units"]``: kept units per hidden layer.
    """
    check_options(lambda_, threshold, groups, finetune_epochs)
    if not isinstance(data, Dataset):
        raise ValueError("data: expected a Dataset (the test split gives the accuracies)")
    input_shape = data.x_train.shape[1:]
    started = time.perf_counter()
    n_train = len(training_examples(data)[0])
    plain = clone(model) if compare_norm_removal else None
    penalty(model, groups, input_shape)  # refuses a model without hidden layers, now
    units_before = kept_units(model)
    per_epoch: list[dict[str, Any]] = []
    steps_per_epoch = math.ceil(n_train / batch_size)

    def penalised_loss(output: Tensor, target: np.ndarray) -> Tensor:
        # cross-entropy of the batch + (λ/N) Σ_g ‖w_g‖₂
        data_term = cross_entropy(output, target)
        if not lambda_:
            return data_term
        return data_term + penalty(model, groups, input_shape) * (lambda_ / n_train)

    def after_step(step: int) -> None:
        if step % steps_per_epoch == 0:
            survivors = units_below(group_norms(model, groups, input_shape), threshold)
            with no_grad():
                current = float(penalty(model, groups, input_shape).data)
            per_epoch.append({"penalty": current,
                              "units_above_threshold": {
                                  name: units_before[name] - len(gone)
                                  for name, gone in survivors.items()}})

    history = fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  quiet=quiet, loss=penalised_loss, on_step=after_step, desc="group lasso")
    unpruned = evaluate(model, *data.test)["accuracy"]

    norms = group_norms(model, groups, input_shape)
    removed = units_below(norms, threshold)
    remove_units(model, removed, input_shape)
    pruned = evaluate(model, *data.test)["accuracy"]
    sparsity, layers = sparsity_of(model), layer_sparsities(model)
    shrink_in_place(model, input_shape)
    kept = kept_units(model)
    units = {name: {"kept": kept[name], "of": units_before[name]} for name in kept}
    extra: dict[str, Any] = {"lambda": lambda_, "lambda_per_example": lambda_ / n_train,
                             "n_train": n_train, "threshold": threshold, "groups": groups,
                             "units": units,
                             "smallest_kept_relative_norm": _smallest_kept(norms, removed),
                             "finetune_epochs": finetune_epochs}
    accuracy = evaluate(model, *data.test)["accuracy"]
    extra["shrunk_test_accuracy"] = accuracy  # equals pruned (same function, fewer sums)
    if finetune_epochs:
        fit(model, data, epochs=finetune_epochs, lr=lr, batch_size=batch_size, seed=seed,
            quiet=quiet, desc="fine-tune")
        accuracy = evaluate(model, *data.test)["accuracy"]
    json: dict[str, Any] = {"units": units}
    if plain is not None:
        fit(plain, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, quiet=quiet,
            desc="plain (for norm removal)")
        comparison = norm_removal_at_same_size(plain, data, kept,
                                               finetune_epochs=finetune_epochs, lr=lr,
                                               batch_size=batch_size, seed=seed, quiet=quiet)
        extra["norm_removal"] = json["norm_removal"] = comparison
    extra["json"] = json
    extra["seconds"] = time.perf_counter() - started
    records = [{**record, **stats} for record, stats in zip(history.epochs, per_epoch)]
    return SparsifyRun(method="group-lasso", test_accuracy=accuracy, sparsity=sparsity,
                       compression=1.0 / max(1.0 - sparsity, 1e-12), layers=layers,
                       unpruned_test_accuracy=unpruned, pruned_test_accuracy=pruned,
                       history=records, extra=extra)


def _smallest_kept(norms: dict[str, dict[str, np.ndarray]],
                   removed: dict[str, np.ndarray]) -> dict[str, float]:
    """Per layer, the smallest relative group norm among the kept units (how far the
    threshold is from the living units: a wide gap means the choice of threshold is easy)."""
    smallest = {}
    for name, kinds in norms.items():
        keep = np.ones(len(next(iter(kinds.values()))), dtype=bool)
        keep[removed[name]] = False
        relative = _relative(kinds)
        smallest[name] = float(relative[keep].min()) if keep.any() else math.nan
    return smallest
