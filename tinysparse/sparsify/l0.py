"""L0 regularisation as a recipe (Louizos, Welling & Kingma 2018): train a network whose
weights (or units) pass through learned hard-concrete gates, with a penalty on the
expected number of open gates; the gates that end closed become masks (or removed units).
The result is an ordinary pruned model.

1. (Optionally train the network plainly first, ``pretrain_epochs``.)
2. Gate its Linear/Conv2d layers (:func:`tinysparse.nn.to_l0`): one gate per weight, or
   per hidden unit (neuron or filter; the output layer keeps its units).
3. Train on the penalised loss per training example::

       loss = cross-entropy(batch) + (λ / N) · Σ_gates |g| · P(z_g ≠ 0)

   where N is the number of training examples and |g| the number of weights a gate
   controls (1, or a unit's incoming weights) — the expected L0 norm of the weights,
   weighed like Louizos et al.'s λ/N (0.1/N is, as we recall, their setting for the MLP
   on MNIST: not yet checked against the paper).
4. Fold the deterministic test-time gates into ordinary layers (:func:`tinysparse.nn.from_l0`);
   the weights whose gate is 0 get masked (:func:`tinysparse.prune.apply_masks`), or the
   units whose gate is 0 are removed with the columns that read them
   (:func:`tinysparse.prune.remove_units`; :func:`tinysparse.prune.shrink` then builds the
   smaller dense network).

The paper also weighs an L2 penalty by the gates; this recipe leaves it out.

The gates move slowly: Adam changes each log α by about ``lr`` per step, and a gate that
starts at log α = 0 closes only below about −2.4. The paper had 120,000 steps (200 epochs
of 60,000 digits); 100 epochs of mnist-5k at batch 100 are 4,000. Measured here
(LeNet-300-100, fresh network, λ = 0.1, 100 epochs, batch 100, seed 0): weight gates with
lr 1e-3 left 2.2x (test accuracy 0.944), lr 5e-3 7.5x (0.956), lr 1e-2 12x (0.953; seeds
1, 2: 12x at 0.949, 0.946); unit gates with lr 1e-3 collapsed (the gates were still
crossing the threshold together when training ended: 0.338), with lr 5e-3 they kept
15-18 of fc1's 300 units and 22-29 of fc2's 100 (18-22x; 0.914, 0.897, 0.904 for seeds
0, 1, 2), with lr 1e-2 14 and 14 (0.904).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, cross_entropy
from tinysparse.data.dataset import Dataset, training_examples
from tinysparse.nn.l0 import (
    GATES,
    INITIAL_DROP_RATE,
    L0Layer,
    expected_l0,
    from_l0,
    l0_layers,
    open_gate_fractions,
    to_l0,
)
from tinysparse.nn.module import Module
from tinysparse.prune.masks import apply_masks, layer_sparsities, sparsity_of
from tinysparse.prune.structured import remove_units
from tinysparse.sparsify.method import SparsifyRun
from tinysparse.train import evaluate, fit

#: Louizos et al.'s λ for LeNet-300-100 on MNIST as we recall it (unchecked), per training
#: example (λ/N in the loss).
PAPER_LAMBDA = 0.1


def check_options(gates: str, lambda_: float, initial_drop_rate: float,
                  pretrain_epochs: int) -> None:
    """A ValueError naming the first option out of its range."""
    if gates not in GATES:
        raise ValueError(f"gates: expected one of {list(GATES)}, got {gates!r}")
    if not (isinstance(lambda_, int | float) and math.isfinite(lambda_) and lambda_ >= 0):
        raise ValueError(f"lambda_: expected a finite number >= 0 (the L0 penalty per weight "
                         f"and training example is lambda_ / N), got {lambda_!r}")
    if isinstance(initial_drop_rate, bool) or not isinstance(initial_drop_rate, int | float) \
            or not 0 < initial_drop_rate < 1:
        raise ValueError(f"initial_drop_rate: expected a probability in (0, 1), got "
                         f"{initial_drop_rate!r}")
    if isinstance(pretrain_epochs, bool) or not isinstance(pretrain_epochs, int) or \
            pretrain_epochs < 0:
        raise ValueError(f"pretrain_epochs: expected an integer >= 0, got {pretrain_epochs!r}")


def prune_closed_gates(model: Module, input_shape: Sequence[int] = (1, 28, 28)
                       ) -> dict[str, dict[str, int]]:
    """Turn a gated model into an ordinary pruned one: fold the deterministic gates into
    ordinary layers (:func:`tinysparse.nn.from_l0`), then mask the weights whose gate is 0,
    or remove the units whose gate is 0 with the columns that read them.

    Returns
    -------
    dict layer name -> {"kept": int, "of": int}
        For unit gates, the units each gated layer keeps (empty for weight gates).
    """
    unit_gated = [name for name, layer in l0_layers(model).items() if layer.gates == "unit"]
    _, final_gates = from_l0(model)
    weight_masks = {f"{name}.weight": values > 0 for name, values in final_gates.items()
                    if name not in unit_gated}
    if weight_masks:
        apply_masks(model, weight_masks, allow_empty_layers=True)
    if unit_gated:
        remove_units(model, {name: np.flatnonzero(final_gates[name] == 0)
                             for name in unit_gated},
                     input_shape=input_shape, allow_empty_layers=True)
    return {name: {"kept": int(np.count_nonzero(final_gates[name])),
                   "of": int(final_gates[name].size)} for name in unit_gated}


def run(model: Module, data: Dataset, *, epochs: int = 100, lr: float = 1e-3,
        batch_size: int = 100, seed: int = 0, quiet: bool = False, gates: str = "weight",
        lambda_: float = PAPER_LAMBDA, initial_drop_rate: float = INITIAL_DROP_RATE,
        pretrain_epochs: int = 0) -> SparsifyRun:
    """Train ``model`` with L0 gates and prune what the closed gates switch off.

    Parameters
    ----------
    model : Module
        A dense network (a flat Sequential for ``gates="unit"``), trained in place; it ends
        as an ordinary pruned model.
    data : Dataset
        Trains on the training split, reports accuracies on the test split.
    epochs, lr, batch_size, seed, quiet
        For the gated training (Adam); ``seed`` also seeds the gates' noise.
    gates : {"weight", "unit"}
        One gate per weight, or per hidden unit (neuron, filter).
    lambda_ : float
        The L0 penalty per weight and training example is ``lambda_ / N``.
    initial_drop_rate : float
        The gates start with P(z = 0) about this (log α = log((1 − p)/p)).
    pretrain_epochs : int
        Train the dense network plainly for this many epochs first.

    Returns
    -------
    SparsifyRun
        ``test_accuracy``: the pruned model's (it computes what the gated model computes
        in evaluation). ``extra``: the open gates per layer, for ``gates="unit"`` the units
        kept per layer, the gated model's test accuracy and the settings.
    """
    check_options(gates, lambda_, initial_drop_rate, pretrain_epochs)
    if not isinstance(data, Dataset):
        raise ValueError("data: expected a Dataset (the test split gives the accuracies)")
    if isinstance(model, L0Layer) or not list(model.children()):
        raise ValueError(f"model: expected a network of layers (e.g. a Sequential), got "
                         f"{model.describe()}; wrap a single layer in a Sequential")
    started = time.perf_counter()
    n_train = len(training_examples(data)[0])
    extra: dict[str, Any] = {"gates": gates, "lambda": lambda_,
                             "lambda_per_example": lambda_ / n_train, "n_train": n_train,
                             "initial_drop_rate": initial_drop_rate,
                             "pretrain_epochs": pretrain_epochs}
    if pretrain_epochs:
        fit(model, data, epochs=pretrain_epochs, lr=lr, batch_size=batch_size, seed=seed,
            quiet=quiet, desc="pretrain")
        extra["pretrained_test_accuracy"] = evaluate(model, *data.test)["accuracy"]

    to_l0(model, gates=gates, initial_drop_rate=initial_drop_rate, seed=seed)
    steps_per_epoch = math.ceil(n_train / batch_size)
    per_epoch: list[dict[str, Any]] = []

    def penalised_loss(output: Tensor, target: np.ndarray) -> Tensor:
        # cross-entropy of the batch + (λ/N) E[L0]
        data_term = cross_entropy(output, target)
        return data_term + expected_l0(model) * (lambda_ / n_train) if lambda_ else data_term

    def after_step(step: int) -> None:
        if step % steps_per_epoch == 0:
            per_epoch.append({"expected_l0": float(expected_l0(model).data),
                              "open_gates": open_gate_fractions(model)})

    history = fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  quiet=quiet, loss=penalised_loss, on_step=after_step, desc="L0 gates")
    extra["open_gates"] = open_gate_fractions(model)
    extra["gated_test_accuracy"] = evaluate(model, *data.test)["accuracy"]

    units = prune_closed_gates(model, input_shape=data.x_train.shape[1:])
    if gates == "unit":
        extra["units"] = units
    accuracy = evaluate(model, *data.test)["accuracy"]
    sparsity = sparsity_of(model)
    extra["seconds"] = time.perf_counter() - started
    records = [{**record, **stats} for record, stats in zip(history.epochs, per_epoch)]
    return SparsifyRun(method="l0", test_accuracy=accuracy, sparsity=sparsity,
                       compression=1.0 / max(1.0 - sparsity, 1e-12),
                       layers=layer_sparsities(model), history=records, extra=extra)
