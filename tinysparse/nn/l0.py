"""L0 regularisation with hard-concrete gates (Louizos, Welling & Kingma 2018): layers
whose weights (or units) are multiplied by learned stochastic gates that can be exactly 0.

The L0 norm (how many weights are non-zero) has no gradient. Louizos et al. multiply each
weight θ_j by a gate z_j ∈ [0, 1] drawn from a *hard-concrete* distribution with a learned
location log α_j, and penalise the expected number of gates that are not zero::

    s = σ((log u − log(1 − u) + log α) / β),  u ~ U(0, 1)     (binary concrete)
    z = min(1, max(0, s (ζ − γ) + γ))                          (stretched, then folded)
    E[L0] = Σ_j P(z_j ≠ 0) = Σ_j σ(log α_j − β log(−γ/ζ))      (β = 2/3, γ = −0.1, ζ = 1.1)

The stretch puts real probability on z = 0 and z = 1, yet z is a differentiable function
of log α for a fixed u, so both the data term and the penalty train log α by SGD. At test
time the gate is deterministic, ``ẑ = min(1, max(0, σ(log α)(ζ − γ) + γ))``, and the
weights with ẑ = 0 are gone.

* :class:`L0Linear`, :class:`L0Conv2d`: an ordinary weight and bias plus ``log_alpha``,
  one gate per weight (``gates="weight"``) or per output unit (``gates="unit"``: a
  neuron, or a convolution filter, together with its bias).
* :func:`to_l0` gates a model's layers (the output layer keeps its units);
  :func:`from_l0` folds the test-time gates into ordinary layers and returns them, so that
  the recipe (:func:`tinysparse.sparsify.l0.run`) can turn the closed gates into masks or
  removed units.

One gate sample is drawn per mini-batch (the authors' default; a sample per example is
their ``local_rep`` option, not offered here).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import (
    Tensor,
    conv2d,
    get_default_dtype,
    hard_concrete,
    linear,
    no_grad,
    sigmoid,
)
from tinysparse.autograd.nn_ops import (
    HARD_CONCRETE_BETA,
    HARD_CONCRETE_GAMMA,
    HARD_CONCRETE_ZETA,
)
from tinysparse.nn.init import as_generator, derived_seed, get_initializer
from tinysparse.nn.layers import Conv2d, Linear
from tinysparse.nn.module import (
    BOOLEAN,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    SEED,
    Module,
    Parameter,
    SpecArgument,
    copy_bias_name_and_mode,
    one_of,
    replace_layers,
)
from tinysparse.nn.sparse_layers import SparseLayer

GATES = ("weight", "unit")
#: the gates start open with probability 1 − p: log α = log((1 − p) / p) (0 for p = 0.5,
#: as in the authors' code)
INITIAL_DROP_RATE = 0.5
#: the uniform noise u is drawn from [floor, 1 − floor], so that log u and log(1 − u) are
#: finite (as in the authors' code)
UNIFORM_FLOOR = 1e-6


def probability_nonzero(log_alpha: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """P(z ≠ 0) = 1 − Q(s ≤ −γ/(ζ − γ)) = σ(log α − β log(−γ/ζ)), for an array or a tensor
    (Louizos et al. 2018)."""
    shift = HARD_CONCRETE_BETA * math.log(-HARD_CONCRETE_GAMMA / HARD_CONCRETE_ZETA)
    if isinstance(log_alpha, Tensor):
        return sigmoid(log_alpha - shift)
    return 0.5 * (np.tanh(0.5 * (np.asarray(log_alpha) - shift)) + 1)


def deterministic_gates(log_alpha: np.ndarray) -> np.ndarray:
    """The deterministic gates ẑ = min(1, max(0, σ(log α)(ζ − γ) + γ))."""
    probability = 0.5 * (np.tanh(0.5 * np.asarray(log_alpha)) + 1)
    return np.clip(probability * (HARD_CONCRETE_ZETA - HARD_CONCRETE_GAMMA)
                   + HARD_CONCRETE_GAMMA, 0.0, 1.0)


def _check_drop_rate(initial_drop_rate: float) -> float:
    if isinstance(initial_drop_rate, bool) or not isinstance(
            initial_drop_rate, int | float | np.floating) or not 0 < initial_drop_rate < 1:
        raise ValueError(f"initial_drop_rate: expected a probability in (0, 1), got "
                         f"{initial_drop_rate!r}")
    return float(initial_drop_rate)


#: what a saved spec may hold for ``gates`` and ``initial_drop_rate``
GATES_ARGUMENT = one_of(*GATES)
DROP_RATE_ARGUMENT = SpecArgument("a number in (0, 1)",
                                  lambda v: type(v) in (int, float) and 0 < v < 1)


def _check_gates(gates: str) -> str:
    if gates not in GATES:
        raise ValueError(f"gates: expected one of {list(GATES)}, got {gates!r}")
    return gates


class L0Layer(Module, abstract=True):
    """What :class:`L0Linear` and :class:`L0Conv2d` share: ``weight``, ``bias``, the gate
    locations ``log_alpha`` (one per weight, or one per output unit) and a noise generator
    seeded by ``seed``."""

    #: the ordinary layer this one gates
    dense_type: type[Module]

    def _init_parameters(self, shape: tuple[int, ...], bias: bool, gates: str,
                         initial_drop_rate: float, seed: int | None, init: str,
                         rng: np.random.Generator | int | None, dtype: Any) -> None:
        self.gates = _check_gates(gates)
        self.initial_drop_rate = _check_drop_rate(initial_drop_rate)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(f"seed: expected an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)  # the noise u; not saved with the model
        dtype = dtype or get_default_dtype()
        self.weight = Parameter(get_initializer(init)(shape, as_generator(rng)), dtype=dtype)
        self.bias = Parameter(np.zeros(shape[0]), dtype=dtype) if bias else None
        gate_shape = shape if gates == "weight" else (shape[0],)
        location = math.log((1 - self.initial_drop_rate) / self.initial_drop_rate)
        self.log_alpha = Parameter(np.full(gate_shape, location), dtype=dtype)

    @property
    def group_size(self) -> int:
        """How many weights one gate controls: 1, or a unit's incoming weights."""
        return 1 if self.gates == "weight" else int(np.prod(self.weight.shape[1:]))

    # ---------------------------------------------------------------- gates
    def sample_gates(self) -> Tensor:
        """Hard-concrete gates z for one mini-batch (a graph op in log α)."""
        noise = self.rng.random(self.log_alpha.shape, dtype=self.log_alpha.dtype)
        noise = noise * (1 - 2 * UNIFORM_FLOOR) + UNIFORM_FLOOR
        return hard_concrete(self.log_alpha, noise)

    def eval_gates(self) -> np.ndarray:
        """The deterministic gates ẑ ∈ [0, 1] of evaluation (0: the weight or unit is gone)."""
        return deterministic_gates(self.log_alpha.data).astype(self.log_alpha.dtype)

    def gates_for_forward(self) -> Tensor:
        """Sampled gates in training, the deterministic ones in evaluation."""
        return self.sample_gates() if self.training else Tensor(self.eval_gates())

    def expected_l0(self) -> Tensor:
        """E[number of non-zero weights] = Σ_gates group size · P(z ≠ 0) (a scalar op)."""
        return probability_nonzero(self.log_alpha).sum() * float(self.group_size)

    # ---------------------------------------------------------------- twins
    @classmethod
    def from_layer(cls, layer: Module, gates: str = "weight",
                   initial_drop_rate: float = INITIAL_DROP_RATE, seed: int | None = None
                   ) -> L0Layer:
        """The gated twin of an ordinary (unpruned) ``layer``: the same weight and bias."""
        if layer._masks:
            raise ValueError(
                f"{layer.describe()} is pruned already (masks on {sorted(layer._masks)}): "
                f"L0 gates learn their own mask. Start from a dense model "
                f"(tinysparse.prune.remove_masks(model) drops the masks)")
        twin = cls(**layer.constructor_args(), gates=gates,
                   initial_drop_rate=initial_drop_rate, seed=seed, dtype=layer.dtype)
        twin.weight.data = layer.weight.data.copy()
        copy_bias_name_and_mode(layer, twin)
        return twin

    def to_layer(self) -> Module:
        """The ordinary layer computing what this one computes in evaluation: the
        deterministic gates folded into the weights (and, for units, the bias)."""
        args = {k: v for k, v in self.constructor_args().items()
                if k not in ("gates", "initial_drop_rate", "seed")}
        layer = self.dense_type(**args, dtype=self.dtype)
        gates = self.eval_gates()
        if self.gates == "weight":
            layer.weight.data = self.weight.data * gates
        else:  # a unit's gate scales its whole row (filter) and its bias
            layer.weight.data = self.weight.data * gates.reshape(-1, *[1] * (self.weight.ndim - 1))
        if self.bias is not None:
            layer.bias.data = self.bias.data * (gates if self.gates == "unit" else 1)
        object.__setattr__(layer, "name", self.name)
        layer.train(self.training)
        return layer


class L0Linear(L0Layer):
    """A Linear layer with hard-concrete gates on its weights or on its output units
    (Louizos et al. 2018).

    ``gates="weight"``: ``y = x (θ ⊙ z)ᵀ + b``, z of the weight's shape.
    ``gates="unit"``: ``y = (x θᵀ + b) ⊙ z``, one z per output unit.
    z is sampled once per mini-batch in training and is the deterministic ẑ in evaluation.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    gates : {"weight", "unit"}
    initial_drop_rate : float
        The gates start with log α = log((1 − p)/p) (0 for p = 0.5).
    seed : int, optional
        Seeds this layer's gate noise.
    init, rng, dtype
        As for :class:`~tinysparse.nn.Linear`.
    """

    dense_type = Linear

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 gates: str = "weight", initial_drop_rate: float = INITIAL_DROP_RATE,
                 seed: int | None = None, init: str = "glorot_normal",
                 rng: np.random.Generator | int | None = None, dtype: Any = None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"L0Linear: in_features and out_features must be positive, got "
                             f"{in_features} and {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self._init_parameters((self.out_features, self.in_features), bias, gates,
                              initial_drop_rate, seed, init, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_features}), got {x.shape}")
        z = self.gates_for_forward()
        if self.gates == "weight":
            return linear(x, self.weight * z, self.bias)
        return linear(x, self.weight, self.bias) * z

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {
        "in_features": POSITIVE_INT, "out_features": POSITIVE_INT, "bias": BOOLEAN,
        "gates": GATES_ARGUMENT, "initial_drop_rate": DROP_RATE_ARGUMENT,
        "seed": SEED}

    def constructor_args(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "gates": self.gates,
                "initial_drop_rate": self.initial_drop_rate, "seed": self.seed}

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        return _gated_state_shapes(Linear.spec_state_shapes(args), args["gates"])

    def extra_repr_short(self) -> str:
        return f" ({self.in_features} -> {self.out_features})"


class L0Conv2d(L0Layer):
    """A Conv2d layer with hard-concrete gates on its kernel weights (``gates="weight"``)
    or on its filters (``gates="unit"``: ``y = (θ ⋆ x + b) ⊙ z`` per output channel).
    Parameters as for :class:`~tinysparse.nn.Conv2d`, plus ``gates``,
    ``initial_drop_rate`` and ``seed`` as for :class:`L0Linear`."""

    dense_type = Conv2d

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, gates: str = "weight",
                 initial_drop_rate: float = INITIAL_DROP_RATE, seed: int | None = None,
                 init: str = "glorot_normal", rng: np.random.Generator | int | None = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if min(in_channels, out_channels, kernel_size, stride) < 1 or padding < 0:
            raise ValueError(
                f"L0Conv2d: channels, kernel_size and stride must be positive and padding "
                f">= 0, got in={in_channels}, out={out_channels}, k={kernel_size}, "
                f"stride={stride}, padding={padding}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        self._init_parameters(shape, bias, gates, initial_drop_rate, seed, init, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_channels}, H, W), got {x.shape}")
        z = self.gates_for_forward()
        if self.gates == "weight":
            return conv2d(x, self.weight * z, self.bias, self.stride, self.padding)
        out = conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return out * z.reshape(1, self.out_channels, 1, 1)

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {
        "in_channels": POSITIVE_INT, "out_channels": POSITIVE_INT,
        "kernel_size": POSITIVE_INT, "stride": POSITIVE_INT, "padding": NON_NEGATIVE_INT,
        "bias": BOOLEAN, "gates": GATES_ARGUMENT,
        "initial_drop_rate": DROP_RATE_ARGUMENT, "seed": SEED}

    def constructor_args(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "bias": self.bias is not None, "gates": self.gates,
                "initial_drop_rate": self.initial_drop_rate, "seed": self.seed}

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        return _gated_state_shapes(Conv2d.spec_state_shapes(args), args["gates"])

    def extra_repr_short(self) -> str:
        k = self.kernel_size
        return f" ({self.in_channels} -> {self.out_channels}, {k}x{k})"


def _gated_state_shapes(dense: dict[str, tuple[int, ...]], gates: str
                        ) -> dict[str, tuple[int, ...]]:
    """A gated layer's state from its dense twin's: the weight, the bias, and log α per
    weight or per unit."""
    weight = dense["weight"]
    return {**dense, "log_alpha": weight if gates == "weight" else (weight[0],)}


#: each ordinary layer type and its gated twin
L0_TWINS: dict[type[Module], type[L0Layer]] = {Linear: L0Linear, Conv2d: L0Conv2d}


def l0_layers(model: Module) -> dict[str, L0Layer]:
    """The gated layers of ``model`` by name, in order."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, L0Layer)}


def to_l0(model: Module, gates: str = "weight", initial_drop_rate: float = INITIAL_DROP_RATE,
          seed: int | None = 0) -> Module:
    """Replace Linear and Conv2d layers of ``model`` by their gated twins, in place.

    With ``gates="weight"`` every such layer is gated; with ``gates="unit"`` every one but
    the last (the output units stay). The k-th gated layer's noise is seeded with
    :func:`~tinysparse.nn.init.derived_seed` ``(seed, k)``.

    Returns
    -------
    Module
        ``model`` (or, when ``model`` is itself a Linear/Conv2d and ``gates="weight"``,
        its twin).

    Raises
    ------
    ValueError
        For an unknown ``gates``, an ``initial_drop_rate`` outside (0, 1), a layer pruned
        already, or a model with nothing to gate.
    """
    _check_gates(gates)
    _check_drop_rate(initial_drop_rate)
    pruned = [module.describe() for module in model.modules() if isinstance(module, SparseLayer)]
    if pruned:
        raise ValueError(f"{', '.join(pruned)} {'is' if len(pruned) == 1 else 'are'} pruned "
                         f"already (on the sparse kernels): L0 gates learn their own mask. "
                         f"Start from a dense model (tinysparse.prune.remove_masks(model) "
                         f"drops the masks)")
    candidates = [module for module in model.modules() if type(module) in L0_TWINS]
    if gates == "unit":
        candidates = candidates[:-1]  # the output layer keeps its units
    if not candidates:
        raise ValueError(f"{model.describe()} has no {'hidden ' if gates == 'unit' else ''}"
                         f"Linear or Conv2d layer for L0 gates on {gates}s")
    chosen = {id(module): index for index, module in enumerate(candidates)}

    def twin(layer: Module) -> Module | None:
        if id(layer) not in chosen:
            return None
        return L0_TWINS[type(layer)].from_layer(layer, gates, initial_drop_rate,
                                               derived_seed(seed, chosen[id(layer)]))

    return replace_layers(model, twin)


def from_l0(model: Module) -> tuple[Module, dict[str, np.ndarray]]:
    """Replace every gated layer by the ordinary layer it computes in evaluation (the
    deterministic gates folded into the weights), in place, and return those gates.

    Returns
    -------
    (Module, dict layer name -> gates)
        ``model`` (or its ordinary twin) and each gated layer's ẑ: of the weight's shape
        (weight gates) or one per unit (unit gates). ẑ = 0 marks what is gone; the model
        is not masked yet (:func:`tinysparse.sparsify.l0.run` does that).
    """
    gates = {name: layer.eval_gates() for name, layer in l0_layers(model).items()}
    model = replace_layers(model, lambda layer: layer.to_layer()
                            if isinstance(layer, L0Layer) else None)
    return model, gates


def expected_l0(model: Module) -> Tensor:
    """The expected number of non-zero weights the gates leave: Σ over gated layers of
    ``expected_l0()`` (a scalar op)."""
    layers = list(l0_layers(model).values())
    if not layers:
        raise ValueError(f"{model.describe()} has no L0-gated layer (use to_l0)")
    total = layers[0].expected_l0()
    for layer in layers[1:]:
        total = total + layer.expected_l0()
    return total


def open_gate_fractions(model: Module) -> dict[str, float]:
    """Per gated layer, the fraction of its deterministic gates that are not 0."""
    with no_grad():
        return {name: float(np.mean(layer.eval_gates() > 0))
                for name, layer in l0_layers(model).items()}
