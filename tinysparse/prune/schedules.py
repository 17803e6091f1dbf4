"""When to prune: one-shot, iterative prune → retrain rounds, gradual (cubic) pruning.

* **One-shot**: prune to the final sparsity at once, then retrain.
* **Iterative** (Han et al. 2015): R rounds of "prune a bit, retrain at a reduced learning
  rate". Round r prunes to ``s_r = 1 − (1 − s)^(r/R)``, so every round removes the same
  *fraction of the remaining* weights (as the lottery-ticket experiments do).
* **Gradual** (Zhu & Gupta 2017): prune every Δt steps *while* training, following
  ``s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(nΔt))³`` — fast at first, when there are many
  redundant weights, then slower, so the network can recover.

The model is pruned in place; each function returns a :class:`PruneRun` with the test
accuracy before pruning, right after pruning and after retraining.

**Dropout when retraining** (Han et al. 2015, section 3.4): pruning has already removed
capacity, so retraining should drop less. Dropout acts on neurons, and a layer's
connections grow with the product of its neuron counts, ``C_i = N_i N_{i−1}``, so the
rate after pruning is ``D_r = D_o √(C_ir / C_io)``. With ``adjust_dropout=True`` every
Dropout layer that *follows* a pruned layer — it drops that layer's outputs, the neurons
``N_i`` of Han's equation (Caffe's ``drop6`` after ``fc6``) — gets that rate after each
pruning step, ``C`` counting the layer's kept weights (``o``: when the schedule started).
A Dropout before the first weighted layer (on the input) follows no layer and keeps its
rate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tinysparse.data.dataset import Dataset
from tinysparse.nn.dropout import Dropout
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import NOISY_LAYERS, to_dense, to_sparse
from tinysparse.prune.masks import current_masks, layer_sparsities, sparsity_of
from tinysparse.prune.pruning import check_method_options, prune_step
from tinysparse.prune.selection import check_sparsity
from tinysparse.sparse import density_threshold_set
from tinysparse.train import TrainingWarning, evaluate, fit


@dataclass
class PruneRun:
    """What a pruning schedule did, with accuracies measured on the test split."""

    schedule: str
    method: str
    scope: str
    target_sparsity: float
    dense_test_accuracy: float
    pruned_test_accuracy: float | None = None
    test_accuracy: float | None = None
    sparsity: float | None = None
    layers: dict[str, float] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific figures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iterative_targets(final_sparsity: float, rounds: int) -> list[float]:
    """Sparsity after each round when every round prunes the same fraction of what remains."""
    check_sparsity(final_sparsity)
    if rounds < 1:
        raise ValueError(f"rounds: expected a positive integer, got {rounds}")
    return [1 - (1 - final_sparsity) ** (r / rounds) for r in range(1, rounds + 1)]


def cubic_sparsity(step: int, final: float, initial: float = 0.0, start: int = 0,
                   end: int = 1) -> float:
    """Zhu & Gupta's schedule: s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(t_end − t₀))³."""
    if step <= start:
        return initial
    if step >= end:
        return final
    progress = (step - start) / (end - start)
    return final + (initial - final) * (1 - progress) ** 3


def _test_accuracy(model: Module, data: Dataset) -> float:
    return evaluate(model, *data.test)["accuracy"]


def sparsity_at(final: float, progress: float, schedule: str) -> float:
    """Where ``schedule`` is when a fraction ``progress`` (0 → 1) of its pruning is done."""
    if schedule == "iterative":
        return 1 - (1 - final) ** progress
    if schedule == "gradual":
        return cubic_sparsity(progress, final, start=0, end=1)
    return final


def dropout_after_layers(model: Module) -> dict[str, str]:
    """Each Dropout layer's name -> the weighted layer (Linear, Conv2d or a sparse twin)
    it follows, i.e. whose outputs it drops; Dropout layers before any weighted layer
    are left out."""
    following, last_weighted = {}, None
    for name, module in model.named_modules():
        if isinstance(module, NOISY_LAYERS):
            last_weighted = name
        elif isinstance(module, Dropout) and last_weighted is not None:
            following[name] = last_weighted
    return following


def connections(model: Module, layer: str) -> int:
    """C: the number of weights layer ``layer`` keeps (all of them when unpruned)."""
    name = f"{layer}.weight" if layer else "weight"
    mask = current_masks(model, [name]).get(name)
    return mask.kept if mask is not None else math.prod(model.state_shapes()[name])


class DropoutAdjustment:
    """Han et al.'s ``D_r = D_o √(C_r / C_o)`` for every Dropout layer that follows a
    weighted layer of ``model``; ``D_o`` and ``C_o`` are read when this is made."""

    def __init__(self, model: Module) -> None:
        self.model = model
        self.layers = dropout_after_layers(model)
        if not self.layers:
            raise ValueError("adjust_dropout: the model has no Dropout layer after a Linear "
                             "or Conv2d layer, so there is no rate to adjust (build it with "
                             "dropout=, e.g. tinysparse.nn.lenet300(dropout=0.5))")
        self.original = {name: (model.get_submodule(name).p, connections(model, layer))
                         for name, layer in self.layers.items()}

    def apply(self) -> dict[str, float]:
        """Set every rate for the model's current masks; return them by Dropout layer."""
        rates = {}
        for name, layer in self.layers.items():
            rate, original_connections = self.original[name]
            # D_r = D_o √(C_r / C_o)
            rates[name] = rate * math.sqrt(connections(self.model, layer)
                                           / original_connections)
            self.model.get_submodule(name).set_p(rates[name])
        return rates


def prune_and_retrain(
    model: Module,
    data: Dataset,
    sparsity: float,
    schedule: str = "iterative",
    method: str = "magnitude",
    scope: str = "layer",
    rounds: int = 5,
    retrain_epochs: int = 5,
    retrain_lr: float = 1e-4,
    batch_size: int = 64,
    optimizer: str = "adam",
    overrides: Mapping[str, float] | None = None,
    gradual_frequency: int = 10,
    seed: int = 0,
    quiet: bool = True,
    dense_test_accuracy: float | None = None,
    allow_empty_layers: bool = False,
    adjust_dropout: bool = False,
    **method_options: Any,
) -> PruneRun:
    """Prune a trained ``model`` to ``sparsity`` following ``schedule``, retraining as it goes.

    Parameters
    ----------
    model : Module
        A trained model; pruned in place.
    data : Dataset
        Training split for retraining, test split for the reported accuracies.
    sparsity : float
        Final fraction of zeros among the prunable weights, in [0, 1).
    schedule : {"oneshot", "iterative", "gradual"}
    method : {"magnitude", "random", "obd", "obs", "obs-layerwise"}
    scope, overrides
        As for :func:`~tinysparse.prune.prune`.
    **method_options
        ``calibration``, ``damping``, ``hessian`` ... for the second-order methods
        (see :func:`~tinysparse.prune.pruning.prune_step`). OBD and OBS add the predicted
        and actual increase of the training loss (summed over steps) to ``run.extra``.
    rounds : int
        Prune → retrain rounds of the iterative schedule.
    retrain_epochs : int
        Epochs of retraining after each prune (iterative: per round; gradual: in total,
        pruning during the first three quarters of them).
    retrain_lr : float
        Learning rate for retraining (Han et al. retrain at a tenth of the original).
    gradual_frequency : int
        Δt: optimiser steps between two prunes of the gradual schedule.
    allow_empty_layers : bool
        Let a weight lose every entry (refused by default, see
        :func:`~tinysparse.prune.masks.apply_masks`).
    adjust_dropout : bool
        After each pruning step, set the rate of every Dropout layer that follows a
        pruned layer to Han et al.'s ``D_r = D_o √(C_r / C_o)`` (see the module's
        docstring); the rates are in ``run.extra["dropout"]`` and in each round's record.
        The model keeps the last rates.
    """
    check_method_options(method, scope, schedule, hessian=method_options.get("hessian"),
                         damping=method_options.get("damping"), overrides=overrides)
    sparsity = check_sparsity(sparsity)
    if schedule == "iterative" and rounds < 1:
        raise ValueError(f"rounds: expected a positive integer, got {rounds}")
    if schedule == "gradual" and retrain_epochs < 1:
        raise ValueError("retrain_epochs: the gradual schedule prunes while training; "
                         "give it at least one epoch")
    if dense_test_accuracy is None:
        dense_test_accuracy = _test_accuracy(model, data)
    adjustment = DropoutAdjustment(model) if adjust_dropout else None
    run = PruneRun(schedule, method, scope, sparsity, dense_test_accuracy)
    fit_options = dict(batch_size=batch_size, optimizer=optimizer, lr=retrain_lr, quiet=quiet)

    def prune_to(progress: float) -> float:
        """Prune every layer (overrides included) to the schedule's point ``progress``."""
        target = sparsity_at(sparsity, progress, schedule)
        layer_overrides = {n: sparsity_at(s, progress, schedule)
                           for n, s in (overrides or {}).items()}
        measured = prune_step(model, target, method=method, scope=scope,
                              overrides=layer_overrides, data=data, seed=seed,
                              allow_empty_layers=allow_empty_layers, **method_options)
        for key in ("predicted_increase", "actual_increase"):
            if key in measured:
                run.extra[key] = run.extra.get(key, 0.0) + measured[key]
        if "layer_relative_error" in measured:
            run.extra.update(measured)
        if adjustment is not None:
            run.extra["dropout"] = adjustment.apply()
        return target

    if schedule in ("oneshot", "iterative"):
        total = 1 if schedule == "oneshot" else rounds
        for index in range(1, total + 1):
            target = prune_to(index / total)
            pruned = _test_accuracy(model, data)
            if retrain_epochs:
                fit(model, data, epochs=retrain_epochs, seed=seed + index,
                    desc=f"retrain round {index}", **fit_options)
            run.rounds.append({"round": index, "target_sparsity": target,
                               "sparsity": sparsity_of(model),
                               "pruned_test_accuracy": pruned,
                               "test_accuracy": _test_accuracy(model, data),
                               **({"dropout": run.extra["dropout"]} if adjustment else {})})
        run.pruned_test_accuracy = run.rounds[-1]["pruned_test_accuracy"]
    else:
        steps_per_epoch = math.ceil(len(data.x_train) / batch_size)
        end = max(1, int(0.75 * retrain_epochs * steps_per_epoch))

        def on_step(step: int) -> None:
            if step % gradual_frequency and step != end:
                return
            if step > end:
                return
            target = prune_to(step / end)
            if step == end:
                run.pruned_test_accuracy = _test_accuracy(model, data)
            run.rounds.append({"step": step, "target_sparsity": target,
                               "sparsity": sparsity_of(model)})

        # Pruning inside the training loop must not replace the parameters the optimiser
        # is updating: the layers stay dense (masked) while it trains, and move to the
        # sparse kernels when it is done.
        to_dense(model)
        with density_threshold_set(0.0), warnings.catch_warnings():
            # pruning while training raises the loss on purpose: not a learning-rate problem
            warnings.simplefilter("ignore", TrainingWarning)
            fit(model, data, epochs=retrain_epochs, seed=seed, on_step=on_step,
                desc="gradual pruning", **fit_options)
            finished = run.pruned_test_accuracy is not None
            if not finished:  # fewer steps than planned: finish the prune
                prune_to(1.0)
        to_sparse(model)
        if not finished:
            run.pruned_test_accuracy = _test_accuracy(model, data)
    run.test_accuracy = _test_accuracy(model, data)
    run.sparsity = sparsity_of(model)
    run.layers = layer_sparsities(model)
    return run
