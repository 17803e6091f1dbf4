"""Ising-dropout's model of a network: spins, couplings, fields, the energy and its solver.

Salehinejad & Valaee 2019 ("Ising-Dropout", ICASSP) decide which units of a multilayer
perceptron to drop by minimising the Ising energy of the network's graph. A state gives
every unit a spin, s_i = +1 (keep the unit) or s_i = −1 (drop it), and costs

    E(s) = −Σ_{i<j} J_ij s_i s_j − Σ_i h_i s_i,      s ∈ {−1, +1}ⁿ                  (1)

with couplings J_ij between connected units and a field h_i on each unit. Written with a
symmetric J whose diagonal is zero, E(s) = −½ sᵀJs − hᵀs. Flipping spin i changes the
energy by

    ΔE_i = 2 s_i f_i,      f_i = Σ_j J_ij s_j + h_i   (the local field on spin i)       (2)

which is all a single-spin annealer needs.

This module has three parts, each usable alone:

* :class:`IsingModel`, :func:`ising_energy`: equation (1) for any J and h.
* :func:`anneal`: a seeded simulated-annealing minimiser of (1) (Kirkpatrick et al. 1983),
  ending in a greedy descent, and :func:`brute_force_ground_state` to check it on small n.
  The paper hands (1) to an annealing solver; it does not describe a software one we
  could copy, so we use the classical one.
* :func:`network_ising_model`: the Ising model of an MLP, and :class:`UnitGate`, the layer
  that applies a state to a layer's activations.

The network's Ising model (our reading of the paper; the choices are marked)
-----------------------------------------------------------------------------
What the paper's abstract and its follow-up (Salehinejad, Wang & Valaee 2019, "Ising
dropout with node grouping") state: the network is a graph whose visible and hidden units
are dropped by the Ising energy of that graph, solved in every training cycle, and the
last state can be applied to the inference model. The copy of the paper we could read
while writing this stops before its equations, so the mapping below (couplings from the
weights, fields from the biases) is our reading of "the Ising energy of the network":
check it against the paper's section 3 before quoting it as the paper's.

* Spins: every *visible* unit (an input feature) and every *hidden* unit; the paper drops
  both. The output units (the classes) are never dropped (choice): their spins are held
  at +1, which turns their couplings into fields on the last hidden layer (3 below).
* Couplings: J between unit i of one layer and unit j of the next is the weight w_ji that
  connects them (the current, masked weight); units of the same layer, and of layers that
  are not adjacent, are not coupled. A positive weight favours keeping or dropping both
  ends together, a negative one favours keeping one of them.
* Fields: h_j = b_j, the bias of hidden unit j; a visible unit has no bias, h = 0. The
  last hidden layer also feels the clamped outputs:

      h_j = b_j + Σ_k w_kj · (+1)    for the units j that feed the output units k        (3)

  Without the clamped outputs and with zero biases (as at initialisation), (1) would not
  change when every spin flips, and "keep" and "drop" would be the same state.
* Weights enter as they are (choice): no normalisation, so the balance between the
  couplings and the biases is the network's own.

Because units of one layer are not coupled to each other, all spins of a layer can be
updated at once given the others (each layer is an independent set of the graph): the
annealer takes such ``groups`` and runs one vectorised Metropolis step per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import Tensor, dropout
from tinysparse.nn.layers import ACTIVATIONS, Flatten, Linear, Sequential
from tinysparse.nn.module import POSITIVE_INT, Module, SpecArgument

# ---------------------------------------------------------------- the energy


def _check_spins(spins: Any, n: int, name: str = "spins") -> np.ndarray:
    spins = np.asarray(spins)
    if spins.shape[-1:] != (n,) or spins.ndim > 2:
        raise ValueError(f"{name}: expected {n} spins (shape ({n},) or (k, {n})), got shape "
                         f"{spins.shape}")
    if not np.all((spins == 1) | (spins == -1)):
        raise ValueError(f"{name}: every spin must be -1 (drop) or +1 (keep)")
    return spins.astype(np.float64)


def ising_energy(spins: Any, couplings: np.ndarray, fields: np.ndarray) -> float | np.ndarray:
    """The Ising energy (1) of one state (shape (n,)) or of k states (shape (k, n)).

    E(s) = −Σ_{i<j} J_ij s_i s_j − Σ_i h_i s_i = −½ sᵀJs − hᵀs for a symmetric J with a
    zero diagonal (``couplings``); ``fields`` is h.
    """
    model = IsingModel(couplings, fields)
    return model.energy(spins)


@dataclass(frozen=True)
class IsingModel:
    """Couplings J (symmetric, zero diagonal), fields h, and the groups of spins that are
    not coupled to each other (so an annealer may update each group at once).

    Parameters
    ----------
    couplings : (n, n) array
    fields : (n,) array
    groups : sequence of index arrays, optional
        A partition of range(n) into independent sets (J is zero inside each group).
        By default every spin is its own group: the classical one-spin-at-a-time sweep.
    """

    couplings: np.ndarray
    fields: np.ndarray
    groups: tuple[np.ndarray, ...] = field(default=())

    def __post_init__(self) -> None:
        couplings = np.asarray(self.couplings, dtype=np.float64)
        fields = np.asarray(self.fields, dtype=np.float64)
        if couplings.ndim != 2 or couplings.shape[0] != couplings.shape[1]:
            raise ValueError(f"couplings: expected a square matrix, got shape {couplings.shape}")
        n = couplings.shape[0]
        if fields.shape != (n,):
            raise ValueError(f"fields: expected shape ({n},) to match the couplings, got "
                             f"{fields.shape}")
        if not (np.all(np.isfinite(couplings)) and np.all(np.isfinite(fields))):
            raise ValueError("couplings/fields: got NaN or infinite values")
        if not np.array_equal(couplings, couplings.T):
            raise ValueError("couplings: J must be symmetric (J_ij = J_ji)")
        if np.any(np.diag(couplings)):
            raise ValueError("couplings: the diagonal must be zero (a spin is not coupled "
                             "to itself; s_i² = 1 would only shift the energy)")
        groups = (tuple(np.arange(n)[:, None]) if not len(self.groups)
                  else tuple(np.asarray(g, dtype=np.intp).ravel() for g in self.groups))
        covered = np.sort(np.concatenate(groups)) if groups else np.arange(0)
        if not np.array_equal(covered, np.arange(n)):
            raise ValueError(f"groups: expected a partition of the {n} spins (each spin in "
                             f"exactly one group)")
        for index, group in enumerate(groups):
            if np.any(couplings[np.ix_(group, group)]):
                raise ValueError(f"groups: group {index} has coupled spins; a group must be "
                                 f"an independent set to be updated at once")
        object.__setattr__(self, "couplings", couplings)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "groups", groups)

    @property
    def n(self) -> int:
        """Number of spins."""
        return self.fields.shape[0]

    def energy(self, spins: Any) -> float | np.ndarray:
        """Equation (1) for one state (a float) or for each row of a (k, n) array."""
        s = _check_spins(spins, self.n)
        energies = -0.5 * np.einsum("...i,ij,...j->...", s, self.couplings, s) - s @ self.fields
        return float(energies) if s.ndim == 1 else energies

    def local_fields(self, spins: Any) -> np.ndarray:
        """f_i = Σ_j J_ij s_j + h_i (equation 2): flipping spin i costs ΔE_i = 2 s_i f_i."""
        s = _check_spins(spins, self.n)
        return s @ self.couplings + self.fields

    def field_scale(self) -> float:
        """The typical size of a local field on a random state, √(mean_i Σ_j J_ij² + h_i²):
        the unit of the annealing temperatures."""
        scale = math.sqrt(float(np.mean((self.couplings**2).sum(axis=1) + self.fields**2)))
        return scale if scale > 0 else 1.0


# ---------------------------------------------------------------- the solver


@dataclass
class AnnealResult:
    """The lowest-energy state :func:`anneal` found.

    ``spins`` (int8, ±1) and its ``energy``; ``trace`` the energy after every sweep of the
    restart that found it (last: after the greedy descent); ``energies`` the final energy of
    every restart; ``temperatures`` the schedule, in absolute units.
    """

    spins: np.ndarray
    energy: float
    trace: np.ndarray
    energies: list[float]
    temperatures: np.ndarray


def temperature_schedule(sweeps: int, t_start: float, t_end: float) -> np.ndarray:
    """Geometric cooling T_k = T_start (T_end / T_start)^(k / (K − 1)), k = 0 … K − 1."""
    if sweeps == 1:
        return np.array([t_end])
    return t_start * (t_end / t_start) ** (np.arange(sweeps) / (sweeps - 1))


def _check_anneal_arguments(sweeps: int, restarts: int, t_start: float, t_end: float) -> None:
    for name, value in (("sweeps", sweeps), ("restarts", restarts)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if not (math.isfinite(t_start) and math.isfinite(t_end) and 0 < t_end <= t_start):
        raise ValueError(f"t_start, t_end: expected 0 < t_end <= t_start, got t_start="
                         f"{t_start}, t_end={t_end}")


def _sweep(model: IsingModel, rows: list[np.ndarray], s: np.ndarray, temperature: float,
           rng: np.random.Generator) -> float:
    """One Metropolis sweep at ``temperature`` (0: flip only what lowers the energy), group
    by group; changes ``s`` in place and returns the energy change."""
    change = 0.0
    for group, row in zip(model.groups, rows):
        local = row @ s + model.fields[group]           # f_i = Σ_j J_ij s_j + h_i     (2)
        delta = 2.0 * s[group] * local                  # ΔE_i = 2 s_i f_i             (2)
        if temperature > 0:                             # Metropolis: accept with
            accept = rng.random(len(group)) < np.exp(   # probability min(1, e^(−ΔE/T))
                -np.maximum(delta, 0.0) / temperature)
        else:
            accept = delta < 0
        # spins of a group are not coupled, so their changes add up exactly
        change += float(delta[accept].sum())
        s[group[accept]] *= -1.0
    return change


def _descend(model: IsingModel, rows: list[np.ndarray], s: np.ndarray, energy: float,
             rng: np.random.Generator) -> float:
    """Zero-temperature sweeps until no single flip lowers the energy (a local minimum)."""
    while True:
        change = _sweep(model, rows, s, 0.0, rng)
        if change >= 0:
            return energy
        energy += change


def anneal(model: IsingModel, *, sweeps: int = 1000, restarts: int = 1,
           t_start: float = 3.0, t_end: float = 0.01, seed: int | None = 0,
           initial: Any = None) -> AnnealResult:
    """Minimise the Ising energy (1) by simulated annealing (Kirkpatrick et al. 1983).

    Each restart starts from a random state and runs ``sweeps`` Metropolis sweeps while the
    temperature falls geometrically from ``t_start`` to ``t_end`` (both in units of
    :meth:`IsingModel.field_scale`, so the same defaults suit small and large models); in a
    sweep every group of uncoupled spins proposes to flip each of its spins at once, and a
    flip that raises the energy by ΔE is accepted with probability e^(−ΔE/T). A greedy
    descent then makes the state a local minimum (no single flip lowers E). The lowest of
    the restarts is returned. Same seed, same result.

    ``initial`` (±1 spins) starts every restart from that state instead of a random one:
    with a low ``t_start`` the annealer then looks for a low state *near* it.

    Returns
    -------
    AnnealResult
    """
    _check_anneal_arguments(sweeps, restarts, t_start, t_end)
    start = None if initial is None else _check_spins(initial, model.n, "initial")
    if start is not None and start.ndim != 1:
        raise ValueError(f"initial: expected one state of {model.n} spins, got shape "
                         f"{start.shape}")
    rng = np.random.default_rng(seed)
    scale = model.field_scale()
    temperatures = temperature_schedule(sweeps, t_start * scale, t_end * scale)
    rows = [model.couplings[group] for group in model.groups]  # J_i· for each group
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    energies = []
    for _ in range(restarts):
        s = rng.choice([-1.0, 1.0], size=model.n) if start is None else start.copy()
        energy = model.energy(s)
        lowest, lowest_s = energy, s.copy()  # the lowest state visited on the way
        trace = np.empty(sweeps + 1)
        for k, temperature in enumerate(temperatures):
            energy += _sweep(model, rows, s, temperature, rng)
            trace[k] = energy
            if energy < lowest:
                lowest, lowest_s = energy, s.copy()
        # both the last state and the lowest visited descend to a local minimum
        energy = _descend(model, rows, s, energy, rng)
        lowest = _descend(model, rows, lowest_s, lowest, rng)
        if lowest < energy:
            energy, s = lowest, lowest_s
        trace[-1] = energy
        energy = model.energy(s)  # recomputed: no drift from summing the changes
        energies.append(energy)
        if best is None or energy < best[0]:
            best = (energy, s.copy(), trace)
    energy, s, trace = best
    return AnnealResult(s.astype(np.int8), energy, trace, energies, temperatures)


def brute_force_ground_state(model: IsingModel, max_spins: int = 20
                             ) -> tuple[np.ndarray, float]:
    """The exact minimum of (1) by trying all 2ⁿ states (for checking :func:`anneal`).

    Returns ``(spins, energy)``; among equal minima, the first in binary counting order
    (spin 0 the most significant, −1 before +1).
    """
    n = model.n
    if n > max_spins:
        raise ValueError(f"brute_force_ground_state: {n} spins means 2^{n} states; "
                         f"max_spins={max_spins}. Use anneal for large models")
    best_energy, best_state = math.inf, None
    chunk = 1 << min(n, 14)
    for start in range(0, 1 << n, chunk):
        codes = np.arange(start, min(start + chunk, 1 << n))
        bits = (codes[:, None] >> np.arange(n - 1, -1, -1)) & 1
        states = 2.0 * bits - 1.0
        energies = np.atleast_1d(model.energy(states))
        i = int(np.argmin(energies))
        if energies[i] < best_energy:
            best_energy, best_state = float(energies[i]), states[i]
    return best_state.astype(np.int8), best_energy


# ---------------------------------------------------------------- the network's model


def mlp_layers(model: Module) -> list[tuple[str, Linear]]:
    """The Linear layers of an MLP, in order: a flat Sequential of an optional leading
    Flatten, then Linear layers with one activation (ReLU, tanh, sigmoid) between them.

    Ising-dropout is defined on the graph of a fully connected network (the paper and its
    follow-up treat MLPs only); anything else raises a ValueError naming the layer.
    """
    if not isinstance(model, Sequential):
        raise ValueError(f"model: Ising-dropout works on an MLP given as a Sequential, got "
                         f"{type(model).__name__}")
    activations = tuple(ACTIVATIONS.values())
    layers = list(model._modules.items())
    if layers and isinstance(layers[0][1], Flatten):
        layers = layers[1:]
    linears: list[tuple[str, Linear]] = []
    expect_linear = True
    for name, layer in layers:
        if expect_linear and isinstance(layer, Linear):
            linears.append((name, layer))
        elif not expect_linear and isinstance(layer, activations):
            pass
        else:
            wanted = "a Linear layer" if expect_linear else "an activation"
            raise ValueError(f"model: Ising-dropout works on MLPs (Flatten, then Linear layers "
                             f"with one activation between them); layer {name!r} is a "
                             f"{type(layer).__name__} where {wanted} was expected")
        expect_linear = not expect_linear
    if not linears or expect_linear:
        raise ValueError("model: an MLP must end in a Linear layer (the outputs)")
    return linears


@dataclass
class NetworkIsing:
    """The Ising model of an MLP and which spins are which units.

    ``units`` maps a layer of units to its spins: ``"input"`` (the visible units, when they
    may be dropped) and the name of every hidden Linear layer (its output units). The
    output layer ``clamped`` has no spins: it is always kept.
    """

    model: IsingModel
    units: dict[str, slice]
    clamped: str

    def keep(self, spins: Any) -> dict[str, np.ndarray]:
        """Per layer of units, a boolean keep vector (True where s = +1)."""
        spins = np.asarray(spins)
        return {name: spins[where] > 0 for name, where in self.units.items()}


def network_ising_model(model: Module, drop_inputs: bool = True) -> NetworkIsing:
    """Build the Ising model (1) of an MLP from its current weights and biases.

    Spins: the visible units (if ``drop_inputs``) and the hidden units, layer by layer.
    J couples unit i of one layer with unit j of the next by the weight w_ji; h_j = b_j on
    hidden units (0 on visible ones), plus Σ_k w_kj on the last hidden layer from the
    output units held at +1 (3). With ``drop_inputs=False`` the visible units are held at
    +1 too, which adds Σ_i w_ji to the first hidden layer's fields the same way.
    """
    linears = mlp_layers(model)
    weights = []
    for _name, layer in linears:
        w = layer.weight.data
        mask = layer._masks.get("weight")
        weights.append(np.asarray(w * mask.keep if mask is not None else w, dtype=np.float64))
    biases = []
    for _name, layer in linears:
        bias = (np.zeros(layer.out_features) if layer.bias is None
                else np.asarray(layer.bias.data, dtype=np.float64))
        mask = layer._masks.get("bias")
        biases.append(bias * mask.keep if mask is not None else bias)
    # layers of units: the visible layer, then each hidden layer (the outputs are clamped)
    sizes = [linears[0][1].in_features] + [layer.out_features for _, layer in linears[:-1]]
    names = ["input"] + [name for name, _ in linears[:-1]]
    fields_by_layer = [np.zeros(sizes[0])] + biases[:-1]                     # h_j = b_j
    fields_by_layer[-1] = fields_by_layer[-1] + weights[-1].sum(axis=0)      # (3)
    first = 0 if drop_inputs else 1
    if not drop_inputs:
        if len(sizes) == 1:
            raise ValueError("drop_inputs: with drop_inputs=False a network without hidden "
                             "layers has no unit to drop")
        fields_by_layer[1] = fields_by_layer[1] + weights[0].sum(axis=1)  # inputs held at +1
    offsets = np.cumsum([0] + sizes[first:])
    n = int(offsets[-1])
    couplings = np.zeros((n, n))
    for layer in range(first, len(sizes) - 1):
        # units of layer `layer` feed the units of layer `layer + 1` through weights[layer]
        a = slice(offsets[layer - first], offsets[layer - first + 1])
        b = slice(offsets[layer - first + 1], offsets[layer - first + 2])
        couplings[b, a] = weights[layer]          # J_ji = w_ji (row: the reading unit)
        couplings[a, b] = weights[layer].T        # J symmetric
    units = {names[layer]: slice(int(offsets[layer - first]), int(offsets[layer - first + 1]))
             for layer in range(first, len(sizes))}
    groups = tuple(np.arange(where.start, where.stop) for where in units.values())
    return NetworkIsing(IsingModel(couplings, np.concatenate(fields_by_layer[first:]), groups),
                        units, linears[-1][0])


# ---------------------------------------------------------------- applying a state


def drop_units(x: Tensor, keep: np.ndarray) -> Tensor:
    """x with the dropped units' activations set to zero: x · keep, keep ∈ {0, 1} per unit
    (the dropout op with the state as its mask). No 1/(1 − p) scaling: the state is not
    random, and the same state is applied at inference (the compressed model), so training
    and inference see the same sub-network.
    """
    return dropout(x, np.broadcast_to(keep, x.shape), scale=1.0)


class UnitGate(Module):
    """Applies an Ising-dropout state to the activations of one layer of ``units`` units.

    Not random: the state changes only when :meth:`set_keep` is called (once per training
    cycle), and it applies in ``train()`` and ``eval()`` alike.
    """

    def __init__(self, units: int) -> None:
        super().__init__()
        if isinstance(units, bool) or not isinstance(units, int | np.integer) or units < 1:
            raise ValueError(f"units: expected a positive integer, got {units!r}")
        self.units = int(units)
        self.keep = np.ones(self.units, dtype=bool)

    def set_keep(self, keep: Any) -> None:
        keep = np.asarray(keep)
        if keep.shape != (self.units,) or keep.dtype != bool:
            raise ValueError(f"{self.describe()}: keep must be a boolean vector of "
                             f"{self.units} units, got dtype {keep.dtype} shape {keep.shape}")
        self.keep = keep.copy()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.units:
            raise ValueError(f"{self.describe()}: expected input of shape (N, {self.units}), "
                             f"got {x.shape}")
        return x if self.keep.all() else drop_units(x, self.keep)

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {"units": POSITIVE_INT}

    def constructor_args(self) -> dict[str, Any]:
        return {"units": self.units}

    def extra_repr_short(self) -> str:
        return f" ({int(self.keep.sum())} of {self.units} kept)"


__all__ = [
    "AnnealResult", "IsingModel", "NetworkIsing", "UnitGate", "anneal",
    "brute_force_ground_state", "drop_units", "ising_energy", "mlp_layers",
    "network_ising_model", "temperature_schedule",
]
