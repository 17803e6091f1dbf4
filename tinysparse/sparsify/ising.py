"""Ising-dropout (Salehinejad & Valaee 2019): drop the units of a low-energy Ising state
while training, then remove them from the inference model.

The recipe, one training cycle (an epoch) at a time:

1. Build the Ising model of the network from its current weights and biases
   (:func:`tinysparse.nn.ising.network_ising_model`): a spin per visible and hidden unit,
   couplings J_ij = w_ij between connected units, fields h_j = b_j, the outputs held on.
2. Find a low-energy state s of E(s) = −Σ_{i<j} J_ij s_i s_j − Σ_i h_i s_i
   (:func:`tinysparse.nn.ising.anneal`, simulated annealing, seeded per cycle).
3. Train one epoch with the units of s = −1 dropped: their activations are multiplied by
   0 (:class:`tinysparse.nn.ising.UnitGate`), so their weights get no gradient and are
   not "optimised in that training cycle", as the paper puts it.
4. After the last cycle, apply the last state to the inference model: each dropped unit's
   weight row and bias and the next layer's columns that read it are masked
   (:func:`tinysparse.prune.unit_removal_masks`, as structured pruning does), a dropped visible
   unit's column of the first weight matrix too; then :func:`tinysparse.prune.apply_masks`.
   The result is an ordinary pruned model that computes exactly what the trained
   sub-network computed.

Where the paper leaves a step open, we chose (and the lesson says so):

* A "training cycle" is an epoch: the state is solved before the first epoch (from the
  initial weights) and again before each following one, from the weights as they are.
* The state used in the last epoch is the one applied to the inference model (the
  weights were trained for that sub-network); we do not solve again after training.
* The output units are never dropped (their spins are held at +1).
* No rescaling of the kept activations: the state is not random, and the same
  sub-network runs at inference.
* The paper solves the energy with an annealer; we use seeded simulated annealing
  (``sweeps`` per solve, ``restarts``), so the same seed gives the same states.
* Every solve starts afresh, from a random state (as an annealer does): the paper asks
  for a low-energy state, not for one near the last. The energy of an MLP has many
  minima of nearly equal energy, so consecutive states share only about half of their
  units. ``warm_start=True`` (ours, off by default) starts each later solve from the
  previous state at a low temperature (``WARM_T_START``), so the state changes only
  where the weights have moved the energy: the network then trains nearly one
  sub-network, at the price of higher energies.
* The optimiser is Adam (as :func:`tinysparse.fit` by default). Its moments keep moving a
  dropped unit's weights a little for a few steps after the unit is dropped; the
  gradients themselves are zero.

Supported models: MLPs (a Sequential of an optional Flatten, then Linear layers with one
ReLU/tanh/sigmoid between them), such as ``lenet300`` and ``mlp``; the paper and its
follow-up (Salehinejad, Wang & Valaee 2019, with node grouping) define the method on MLPs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinysparse.data.dataset import Dataset, training_examples
from tinysparse.nn.ising import (
    UnitGate,
    anneal,
    mlp_layers,
    network_ising_model,
)
from tinysparse.nn.layers import ACTIVATIONS, Flatten, Linear, Sequential
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import to_dense
from tinysparse.optim import make_optimizer
from tinysparse.prune.masks import apply_masks, layer_sparsities, sparsity_of
from tinysparse.prune.structured import unit_removal_masks
from tinysparse.sparse.mask import Mask
from tinysparse.sparsify.method import SparsifyRun
from tinysparse.train import evaluate, fit

#: the options of :func:`run` and their defaults (the paper's solver is hardware; these
#: are ours)
DEFAULTS: dict[str, Any] = {"sweeps": 1000, "restarts": 1, "drop_inputs": True,
                            "warm_start": False}

#: with ``warm_start``, the starting temperature of the solves after the first (in units
#: of the field scale; a fresh solve starts at 3.0)
WARM_T_START = 0.1


def gated_network(model: Module, drop_inputs: bool = True
                  ) -> tuple[Sequential, dict[str, UnitGate]]:
    """A Sequential that runs ``model``'s own layers (the same objects, so training it
    trains ``model``) with a :class:`UnitGate` on the visible units (if ``drop_inputs``)
    and after the activation of every hidden layer.

    Returns the network and its gates by the name of the layer of units they drop
    (``"input"``, ``"fc1"``, ...): the names :class:`~tinysparse.nn.ising.NetworkIsing` uses.
    """
    linears = mlp_layers(model)
    hidden = {name for name, _ in linears[:-1]}
    gates: dict[str, UnitGate] = {}
    layers: list[tuple[str, Module]] = []

    def gate(units_name: str, units: int) -> None:
        gates[units_name] = UnitGate(units)
        layers.append((f"ising_{units_name}", gates[units_name]))

    items = list(model._modules.items())
    if drop_inputs and not isinstance(items[0][1], Flatten):
        gate("input", linears[0][1].in_features)
    last_linear = None
    for name, layer in items:
        layers.append((name, layer))
        if isinstance(layer, Flatten) and drop_inputs:
            gate("input", linears[0][1].in_features)
        elif isinstance(layer, Linear):
            last_linear = (name, layer)
        elif isinstance(layer, tuple(ACTIVATIONS.values())) and last_linear[0] in hidden:
            gate(last_linear[0], last_linear[1].out_features)  # after the activation
    return Sequential(*layers), gates


def unit_state_masks(model: Module, keep: dict[str, np.ndarray],
                     input_shape: tuple[int, ...] = (1, 28, 28)) -> dict[str, Mask]:
    """The masks that remove an Ising state's dropped units from ``model`` (step 4): a
    hidden unit's weight row, bias and the next layer's columns reading it; a visible
    unit's column of the first weight matrix. ``keep`` as :meth:`NetworkIsing.keep`."""
    removed = {name: np.flatnonzero(~kept) for name, kept in keep.items() if name != "input"}
    masks = unit_removal_masks(model, removed, input_shape)
    if "input" in keep and not keep["input"].all():
        first = mlp_layers(model)[0][0]
        key = f"{first}.weight"
        current = masks[key] if key in masks else dict(model.named_masks()).get(key)
        columns = (current.keep.copy() if current is not None
                   else np.ones(model.get_submodule(first).weight.shape, dtype=bool))
        columns[:, ~keep["input"]] = False  # a dropped visible unit feeds nothing
        masks[key] = Mask(columns)
    return masks


def _check_options(sweeps: Any, restarts: Any, drop_inputs: Any, warm_start: Any) -> None:
    for name, value in (("sweeps", sweeps), ("restarts", restarts)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    for name, value in (("drop_inputs", drop_inputs), ("warm_start", warm_start)):
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{name}: expected True or False, got {value!r}")


def run(model: Module, data: Dataset, *, epochs: int, lr: float = 1e-3, batch_size: int = 64,
        seed: int = 0, quiet: bool = False, sweeps: int = DEFAULTS["sweeps"],
        restarts: int = DEFAULTS["restarts"], drop_inputs: bool = DEFAULTS["drop_inputs"],
        warm_start: bool = DEFAULTS["warm_start"]) -> SparsifyRun:
    """Train ``model`` (an MLP) with Ising-dropout and leave it with the last state's
    units removed (masks on its layers).

    Parameters
    ----------
    model : Sequential MLP
        Trained in place.
    data : Dataset
        Trained on its training split, evaluated on its test split.
    epochs, lr, batch_size, seed, quiet
        As :func:`tinysparse.fit` (Adam); ``seed`` also seeds the annealer.
    sweeps, restarts : int
        Simulated-annealing sweeps per solve, and independent restarts (the lowest kept).
    drop_inputs : bool
        Drop visible units too (the paper does); else only hidden units.
    warm_start : bool
        Start each solve after the first from the previous state, at a low temperature
        (ours; see the module docstring).

    Returns
    -------
    SparsifyRun
        ``extra`` holds ``kept_units`` and ``units`` per layer, ``parameter_reduction``
        (the fraction of weights and biases removed: the paper's "fewer parameters"),
        ``all_units_test_accuracy`` (the trained weights with every unit on, for
        comparison), ``cycles`` (per solve: the energy found, the energy of keeping every
        unit, the units kept per layer, how many units changed state since the previous
        solve), ``trace`` (the energy after every sweep of the last solve) and ``keep``
        (the last state: per layer, True for the units kept).
    """
    _check_options(sweeps, restarts, drop_inputs, warm_start)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    to_dense(model)
    network, gates = gated_network(model, bool(drop_inputs))
    x_train, _ = training_examples(data)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    cycles: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def solve(cycle: int) -> None:
        """Steps 1-2: the Ising model of the network as it is now, and a low-energy state."""
        ising = network_ising_model(model, bool(drop_inputs))
        anneal_seed = int(np.random.SeedSequence([seed, cycle]).generate_state(1)[0])
        if warm_start and last:  # near the previous state
            result = anneal(ising.model, sweeps=sweeps, restarts=restarts, seed=anneal_seed,
                            t_start=WARM_T_START, initial=last["spins"])
        else:
            result = anneal(ising.model, sweeps=sweeps, restarts=restarts, seed=anneal_seed)
        keep = ising.keep(result.spins)
        changed = (sum(int(np.count_nonzero(kept != last["keep"][name]))
                       for name, kept in keep.items()) if last else None)
        for name, kept in keep.items():
            gates[name].set_keep(kept)
        cycles.append({"epoch": cycle + 1, "energy": result.energy,
                       "energy_all_kept": ising.model.energy(np.ones(ising.model.n)),
                       "kept": {name: int(kept.sum()) for name, kept in keep.items()},
                       "changed": changed})
        last.update(keep=keep, spins=result.spins, trace=result.trace)

    def on_step(step: int) -> None:
        if step % steps_per_epoch == 0 and step < epochs * steps_per_epoch:
            solve(step // steps_per_epoch)  # a new state for the next training cycle

    solve(0)
    optimizer = make_optimizer("adam", network.parameters(), lr)
    history = fit(network, data, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                  lr=lr, seed=seed, quiet=quiet, on_step=on_step, desc="ising-dropout")

    # What the trained weights do with every unit on (for the lesson), then step 4.
    all_units = evaluate(model, *data.test)["accuracy"]
    keep = last["keep"]
    empty = [name for name, kept in keep.items() if not kept.any()]
    if empty:
        raise ValueError(f"the last Ising state drops every unit of {', '.join(empty)}: the "
                         f"network could not pass anything on. Try another seed, or more "
                         f"sweeps")
    apply_masks(model, unit_state_masks(model, keep, x_train.shape[1:]))

    sizes = model.state_shapes()
    masks = dict(model.named_masks())
    total = sum(int(np.prod(shape)) for shape in sizes.values())
    kept_parameters = sum(masks[name].kept if name in masks else int(np.prod(shape))
                          for name, shape in sizes.items())
    sparsity = sparsity_of(model)
    units = {name: len(kept) for name, kept in keep.items()}
    kept_units = {name: int(kept.sum()) for name, kept in keep.items()}
    reduction = 1 - kept_parameters / total
    return SparsifyRun(
        method="ising",
        test_accuracy=evaluate(model, *data.test)["accuracy"],
        sparsity=sparsity,
        compression=1 / (1 - sparsity) if sparsity < 1 else math.inf,
        layers=layer_sparsities(model),
        history=history.epochs,
        extra={"units": units, "kept_units": kept_units, "parameter_reduction": reduction,
               "all_units_test_accuracy": all_units, "cycles": cycles,
               "trace": last["trace"].tolist(),
               "keep": {name: kept.tolist() for name, kept in keep.items()},
               "json": {"kept_units": kept_units, "parameter_reduction": reduction,
                        "all_units_test_accuracy": all_units,
                        "final_energy": cycles[-1]["energy"]}},
    )


__all__ = ["DEFAULTS", "WARM_T_START", "gated_network", "run", "unit_state_masks"]
