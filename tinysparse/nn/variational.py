"""Sparse variational dropout (Molchanov, Ashukha & Vetrov 2017): layers that learn a
dropout rate for every weight, and lose the weights whose rate goes to one.

Each weight has a Gaussian posterior ``q(w) = N(θ, σ²)`` with its own *dropout ratio*
``α = σ² / θ²`` (Gaussian dropout of rate p multiplies a weight by N(1, α) with
α = p / (1 − p), so α → ∞ is p → 1). Training maximises the evidence lower bound

    ELBO = Σ_n E_q[log p(y_n | x_n, w)] − KL(q(w) ‖ p(w))

with the log-uniform prior ``p(|w|) ∝ 1/|w|``, under which the KL of a weight depends on
its α only. The data term pulls the weights that matter towards small α (little noise);
the KL term pushes every α up, and the weights the data do not defend end at log α = 8
(the clip), carrying only noise. After training the weights with ``log α > 3`` (p > 0.95)
are pruned: a :class:`VariationalLinear` in ``eval()`` computes with θ masked there.

* :class:`VariationalLinear`, :class:`VariationalConv2d`: parameters ``theta``,
  ``log_sigma2`` and ``bias``; in training the pre-activations are sampled with the local
  reparameterisation trick (:func:`~tinysparse.autograd.local_reparameterisation_linear`),
  in evaluation they use θ where ``log α ≤ threshold`` and 0 elsewhere; ``kl()`` is the
  layer's KL term (:func:`~tinysparse.autograd.variational_dropout_kl`).
* :func:`to_variational` turns an ordinary model's Linear/Conv2d layers into these (θ from
  the weights), :func:`from_variational` turns them back into ordinary layers with θ as
  the weight and returns the masks ``log α ≤ threshold``; :func:`tinysparse.prune.apply_masks`
  with them makes the model an ordinary pruned model (the recipe,
  :func:`tinysparse.sparsify.variational.run`, does both).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import (
    Tensor,
    conv2d,
    get_default_dtype,
    linear,
    local_reparameterisation_conv2d,
    local_reparameterisation_linear,
    log_alpha,
    no_grad,
    variational_dropout_kl,
)
from tinysparse.nn.init import as_generator, derived_seed, get_initializer
from tinysparse.nn.layers import Conv2d, Linear
from tinysparse.nn.module import (
    BOOLEAN,
    FINITE_NUMBER,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    SEED,
    Module,
    Parameter,
    SpecArgument,
    copy_bias_name_and_mode,
    replace_layers,
)
from tinysparse.nn.sparse_layers import SparseLayer

#: Molchanov et al. prune the weights with log α above this (dropout rate p > 0.95).
PRUNE_THRESHOLD = 3.0
#: log σ² of a layer made from a trained one: a little noise, so that training starts from
#: (nearly) the network it was given (α = σ²/θ² is then tiny for all but the ~0 weights).
INITIAL_LOG_SIGMA2 = -10.0


def _check_finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


class VariationalLayer(Module, abstract=True):
    """What :class:`VariationalLinear` and :class:`VariationalConv2d` share: the parameters
    ``theta`` (the weights' means), ``log_sigma2`` (their log variances) and ``bias``;
    ``threshold`` (prune where log α exceeds it) and a noise generator seeded by ``seed``.
    """

    #: the ordinary layer this one is the variational twin of
    dense_type: type[Module]

    def _init_parameters(self, shape: tuple[int, ...], out: int, bias: bool, threshold: float,
                         seed: int | None, log_sigma2: float, init: str,
                         rng: np.random.Generator | int | None, dtype: Any) -> None:
        self.threshold = _check_finite(threshold, "threshold")
        log_sigma2 = _check_finite(log_sigma2, "log_sigma2")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(f"seed: expected an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)  # the noise ε; not saved with the model
        dtype = dtype or get_default_dtype()
        self.theta = Parameter(get_initializer(init)(shape, as_generator(rng)), dtype=dtype)
        self.log_sigma2 = Parameter(np.full(shape, log_sigma2), dtype=dtype)
        self.bias = Parameter(np.zeros(out), dtype=dtype) if bias else None

    # ---------------------------------------------------------------- the variational view
    def log_alpha(self) -> Tensor:
        """``log α = clip(log σ² − log θ², −8, 8)`` of every weight (a graph op)."""
        return log_alpha(self.theta, self.log_sigma2)

    def kl(self) -> Tensor:
        """This layer's KL(q ‖ p) under the log-uniform prior, summed over its weights
        (Molchanov et al.'s approximation; a scalar graph op)."""
        return variational_dropout_kl(self.log_alpha())

    def keep_mask(self, threshold: float | None = None) -> np.ndarray:
        """Which weights survive: ``log α ≤ threshold`` (default: the layer's own)."""
        threshold = self.threshold if threshold is None else _check_finite(threshold,
                                                                           "threshold")
        with no_grad():
            return self.log_alpha().data <= threshold

    def kept_fraction(self) -> float:
        """The fraction of the weights that :meth:`keep_mask` keeps."""
        return float(np.mean(self.keep_mask()))

    def pruned_theta(self) -> Tensor:
        """θ with the weights of ``log α > threshold`` set to zero: the weights ``eval()``
        uses."""
        return self.theta * self.keep_mask().astype(self.theta.dtype)

    def sample_noise(self, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normal ε of ``shape`` from this layer's own generator."""
        return self.rng.standard_normal(shape, dtype=self.theta.dtype)

    # ---------------------------------------------------------------- twins
    @classmethod
    def from_layer(cls, layer: Module, log_sigma2: float = INITIAL_LOG_SIGMA2,
                   threshold: float = PRUNE_THRESHOLD, seed: int | None = None
                   ) -> VariationalLayer:
        """The variational twin of an ordinary (unpruned) ``layer``: θ = its weights, the
        same bias, ``log σ² = log_sigma2`` everywhere."""
        if layer._masks:
            raise ValueError(
                f"{layer.describe()} is pruned already (masks on {sorted(layer._masks)}): "
                f"sparse variational dropout learns its own mask. Start from a dense model "
                f"(tinysparse.prune.remove_masks(model) drops the masks)")
        twin = cls(**layer.constructor_args(), threshold=threshold, seed=seed,
                   log_sigma2=log_sigma2, dtype=layer.dtype)
        twin.theta.data = layer.weight.data.copy()
        copy_bias_name_and_mode(layer, twin)
        return twin

    def to_layer(self) -> Module:
        """The ordinary layer with weight θ (all of it: masking is the caller's step) and
        the same bias, name and mode."""
        args = {k: v for k, v in self.constructor_args().items()
                if k not in ("threshold", "seed")}
        layer = self.dense_type(**args, dtype=self.dtype)
        layer.weight.data = self.theta.data.copy()
        copy_bias_name_and_mode(self, layer)
        return layer


class VariationalLinear(VariationalLayer):
    """A Linear layer with a Gaussian posterior N(θ, σ²) for every weight (sparse
    variational dropout, Molchanov et al. 2017).

    Training: ``y = x θᵀ + b + √(x² (σ²)ᵀ) ⊙ ε``, ε ~ N(0, 1) drawn per example and unit
    (the local reparameterisation trick). Evaluation: ``y = x (θ ⊙ [log α ≤ threshold])ᵀ + b``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    threshold : float
        Weights with log α above it are pruned (3: dropout rate above 0.95).
    seed : int, optional
        Seeds this layer's noise generator.
    log_sigma2 : float
        Initial log σ² of every weight.
    init, rng, dtype
        As for :class:`~tinysparse.nn.Linear` (θ is initialised like its weight).
    """

    dense_type = Linear

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 threshold: float = PRUNE_THRESHOLD, seed: int | None = None,
                 log_sigma2: float = INITIAL_LOG_SIGMA2, init: str = "glorot_normal",
                 rng: np.random.Generator | int | None = None, dtype: Any = None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"VariationalLinear: in_features and out_features must be "
                             f"positive, got {in_features} and {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self._init_parameters((self.out_features, self.in_features), self.out_features, bias,
                              threshold, seed, log_sigma2, init, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_features}), got {x.shape}")
        if not self.training:
            return linear(x, self.pruned_theta(), self.bias)
        noise = self.sample_noise((x.shape[0], self.out_features))
        return local_reparameterisation_linear(x, self.theta, self.log_sigma2, self.bias,
                                               noise=noise)

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {
        "in_features": POSITIVE_INT, "out_features": POSITIVE_INT, "bias": BOOLEAN,
        "threshold": FINITE_NUMBER, "seed": SEED}

    def constructor_args(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "threshold": self.threshold, "seed": self.seed}

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        return _variational_state_shapes(Linear.spec_state_shapes(args))

    def extra_repr_short(self) -> str:
        return f" ({self.in_features} -> {self.out_features})"


class VariationalConv2d(VariationalLayer):
    """A Conv2d layer with a Gaussian posterior N(θ, σ²) for every kernel weight.

    Training: ``y = θ ⋆ x + b + √(σ² ⋆ x²) ⊙ ε``, one ε per output value. Evaluation: the
    convolution with θ masked where log α > threshold. Parameters as for
    :class:`~tinysparse.nn.Conv2d`, plus ``threshold``, ``seed`` and ``log_sigma2`` as for
    :class:`VariationalLinear`.
    """

    dense_type = Conv2d

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, threshold: float = PRUNE_THRESHOLD,
                 seed: int | None = None, log_sigma2: float = INITIAL_LOG_SIGMA2,
                 init: str = "glorot_normal", rng: np.random.Generator | int | None = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if min(in_channels, out_channels, kernel_size, stride) < 1 or padding < 0:
            raise ValueError(
                f"VariationalConv2d: channels, kernel_size and stride must be positive and "
                f"padding >= 0, got in={in_channels}, out={out_channels}, k={kernel_size}, "
                f"stride={stride}, padding={padding}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        self._init_parameters(shape, self.out_channels, bias, threshold, seed, log_sigma2,
                              init, rng, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_channels}, H, W), got {x.shape}")
        if not self.training:
            return conv2d(x, self.pruned_theta(), self.bias, self.stride, self.padding)
        height, width = ((size + 2 * self.padding - self.kernel_size) // self.stride + 1
                         for size in x.shape[2:])
        noise = self.sample_noise((x.shape[0], self.out_channels, height, width))
        return local_reparameterisation_conv2d(x, self.theta, self.log_sigma2, self.bias,
                                               self.stride, self.padding, noise=noise)

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {
        "in_channels": POSITIVE_INT, "out_channels": POSITIVE_INT,
        "kernel_size": POSITIVE_INT, "stride": POSITIVE_INT, "padding": NON_NEGATIVE_INT,
        "bias": BOOLEAN, "threshold": FINITE_NUMBER, "seed": SEED}

    def constructor_args(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "bias": self.bias is not None,
                "threshold": self.threshold, "seed": self.seed}

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        return _variational_state_shapes(Conv2d.spec_state_shapes(args))

    def extra_repr_short(self) -> str:
        k = self.kernel_size
        return f" ({self.in_channels} -> {self.out_channels}, {k}x{k})"


def _variational_state_shapes(dense: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """A variational layer's state from its dense twin's: θ and log σ² in the weight's
    shape, and the bias."""
    shapes = {"theta": dense["weight"], "log_sigma2": dense["weight"]}
    if "bias" in dense:
        shapes["bias"] = dense["bias"]
    return shapes


#: each ordinary layer type and its variational twin
VARIATIONAL_TWINS: dict[type[Module], type[VariationalLayer]] = {
    Linear: VariationalLinear, Conv2d: VariationalConv2d}


def variational_layers(model: Module) -> dict[str, VariationalLayer]:
    """The variational layers of ``model`` by name, in order."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, VariationalLayer)}


def to_variational(model: Module, log_sigma2: float = INITIAL_LOG_SIGMA2,
                   threshold: float = PRUNE_THRESHOLD, seed: int | None = 0) -> Module:
    """Replace every Linear and Conv2d of ``model`` by its variational twin, in place.

    θ starts at the layer's weights and ``log σ² = log_sigma2`` (−10 by default: the model
    starts as the network it was, with a little noise). The k-th replaced layer's noise is
    seeded with :func:`~tinysparse.nn.init.derived_seed` ``(seed, k)``.

    Returns
    -------
    Module
        ``model`` — or, when ``model`` is itself a Linear/Conv2d, its twin.

    Raises
    ------
    ValueError
        When a layer is pruned already (masks, or on the sparse kernels), or when the model
        has no Linear/Conv2d layer.
    """
    log_sigma2 = _check_finite(log_sigma2, "log_sigma2")
    threshold = _check_finite(threshold, "threshold")
    pruned = [module.describe() for module in model.modules() if isinstance(module, SparseLayer)]
    if pruned:
        raise ValueError(f"{', '.join(pruned)} {'is' if len(pruned) == 1 else 'are'} pruned "
                         f"already (on the sparse kernels): sparse variational dropout "
                         f"learns its own mask. Start from a dense model "
                         f"(tinysparse.prune.remove_masks(model) drops the masks)")
    if not any(type(module) in VARIATIONAL_TWINS for module in model.modules()):
        raise ValueError(f"{model.describe()} has no Linear or Conv2d layer: sparse "
                         f"variational dropout has no weight to act on")
    count = 0

    def twin(layer: Module) -> Module | None:
        nonlocal count
        if type(layer) not in VARIATIONAL_TWINS:
            return None
        count += 1
        return VARIATIONAL_TWINS[type(layer)].from_layer(
            layer, log_sigma2, threshold, derived_seed(seed, count - 1))

    return replace_layers(model, twin)


def from_variational(model: Module, threshold: float | None = None
                     ) -> tuple[Module, dict[str, np.ndarray]]:
    """Replace every variational layer by the ordinary layer with weight θ, in place, and
    return the masks that sparse variational dropout learned.

    Parameters
    ----------
    threshold : float, optional
        Keep the weights with ``log α ≤ threshold`` (default: each layer's own, 3).

    Returns
    -------
    (Module, dict name -> boolean array)
        ``model`` (or the ordinary twin when ``model`` is itself a variational layer) and
        the keep-masks by weight name (``"fc1.weight"``), for
        :func:`tinysparse.prune.apply_masks`. The model is not masked yet: until then it
        computes with every θ (the "unpruned" network).
    """
    masks = {(f"{name}.weight" if name else "weight"): layer.keep_mask(threshold)
             for name, layer in variational_layers(model).items()}
    model = replace_layers(model, lambda layer: layer.to_layer()
                            if isinstance(layer, VariationalLayer) else None)
    return model, masks


def variational_kl(model: Module) -> Tensor:
    """The KL term of the whole model: the sum of its variational layers' ``kl()``."""
    layers = list(variational_layers(model).values())
    if not layers:
        raise ValueError(f"{model.describe()} has no variational layer (use to_variational)")
    total = layers[0].kl()
    for layer in layers[1:]:
        total = total + layer.kl()
    return total


def log_alphas(model: Module) -> dict[str, np.ndarray]:
    """Every variational layer's log α (a copy), by layer name."""
    with no_grad():
        return {name: layer.log_alpha().data.copy()
                for name, layer in variational_layers(model).items()}
