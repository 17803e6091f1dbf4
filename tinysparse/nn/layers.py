"""Layers: Linear, Conv2d, MaxPool2d, Flatten, Reshape, activations and Sequential.

A masked Linear or Conv2d multiplies ``W ⊙ M`` with the dense kernels (BLAS). When pruning
leaves it sparse enough, it is replaced by its twin on the sparse kernels
(:mod:`tinysparse.nn.sparse_layers`).

A Linear or Conv2d may carry a *weight noise* (``weight_noise=DropConnect(0.5, seed=1)``,
or :class:`~tinysparse.nn.dropout.TargetedDropout`): while training, each step multiplies
the weights the noise keeps, ``W ⊙ M ⊙ keep · scale`` (see :mod:`tinysparse.nn.dropout`).
The Dropout layer itself is in that module too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import (
    Tensor,
    conv2d,
    dropout,
    get_default_dtype,
    linear,
    max_pool2d,
    relu,
    sigmoid,
    tanh,
)
from tinysparse.nn.dropout import WEIGHT_NOISE, WeightNoise, weight_noise_from
from tinysparse.nn.init import as_generator, get_initializer
from tinysparse.nn.module import (
    BOOLEAN,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    POSITIVE_INTS,
    Module,
    Parameter,
    SpecArgument,
    build_from_spec,
    short_repr,
)


def weight_in_use(layer: Module) -> Tensor:
    """The weight a Linear/Conv2d multiplies by in this forward pass: ``W ⊙ M`` (its mask,
    if any), and while training with a weight noise ``W ⊙ M ⊙ keep · scale`` with
    ``keep`` drawn afresh (DropConnect, targeted dropout). A graph op either way, so the
    gradient of a dropped or pruned weight is zero."""
    noise: WeightNoise | None = layer.weight_noise
    if noise is None or not layer.training:
        return layer.masked("weight")
    keep = noise.keep(layer.weight.data, layer._masks.get("weight"))  # pruned: never kept
    return dropout(layer.weight, keep, noise.scale)


def weight_noise_args(layer: Module) -> dict[str, Any]:
    """``{"weight_noise": spec}`` when the layer has a weight noise (else nothing, so the
    spec of a layer without one is what it always was)."""
    return {} if layer.weight_noise is None else {"weight_noise": layer.weight_noise.spec()}


class Linear(Module):
    """Fully connected layer ``y = x Wᵀ + b`` with ``W`` of shape (out_features, in_features).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Whether to learn a bias (initialised to zero).
    init : str
        Weight initialiser: ``"glorot_normal"`` (default), ``"glorot_uniform"``,
        ``"he_normal"`` or ``"he_uniform"``.
    rng : np.random.Generator or int, optional
        Randomness for the initialiser (an int is a seed).
    dtype : numpy dtype, optional
        Defaults to :func:`~tinysparse.autograd.get_default_dtype`.
    weight_noise : WeightNoise or its spec, optional
        What to drop from the weights at each training step:
        :class:`~tinysparse.nn.DropConnect`, :class:`~tinysparse.nn.TargetedDropout`.
    """

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {
        "in_features": POSITIVE_INT, "out_features": POSITIVE_INT, "bias": BOOLEAN,
        "weight_noise": WEIGHT_NOISE}

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "glorot_normal",
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
        weight_noise: WeightNoise | dict | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, got "
                f"{in_features} and {out_features}"
            )
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = dtype or get_default_dtype()
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(get_initializer(init)(shape, as_generator(rng)), dtype=dtype)
        self.bias = Parameter(np.zeros(self.out_features), dtype=dtype) if bias else None
        self.weight_noise = weight_noise_from(weight_noise)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self.describe()}: expected input of shape (N, {self.in_features}), got "
                f"{x.shape}; the weight has shape {self.weight.shape}"
            )
        return linear(x, weight_in_use(self), self.bias)

    def constructor_args(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            **weight_noise_args(self),
        }

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        shapes = {"weight": (args["out_features"], args["in_features"])}
        if args["bias"]:
            shapes["bias"] = (args["out_features"],)
        return shapes

    def extra_repr_short(self) -> str:
        return f" ({self.in_features} -> {self.out_features})"


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) inputs, weight (out, in, k, k), through im2col.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
    stride, padding : int
    bias, init, rng, dtype, weight_noise
        As for :class:`Linear` (fans count the kernel's area; a unit is a filter).
    """

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {
        "in_channels": POSITIVE_INT, "out_channels": POSITIVE_INT,
        "kernel_size": POSITIVE_INT, "stride": POSITIVE_INT, "padding": NON_NEGATIVE_INT,
        "bias": BOOLEAN, "weight_noise": WEIGHT_NOISE}

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        init: str = "glorot_normal",
        rng: np.random.Generator | int | None = None,
        dtype: Any = None,
        weight_noise: WeightNoise | dict | None = None,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, kernel_size, stride) < 1 or padding < 0:
            raise ValueError(
                f"Conv2d: channels, kernel_size and stride must be positive and padding "
                f">= 0, got in={in_channels}, out={out_channels}, k={kernel_size}, "
                f"stride={stride}, padding={padding}"
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        dtype = dtype or get_default_dtype()
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        self.weight = Parameter(get_initializer(init)(shape, as_generator(rng)), dtype=dtype)
        self.bias = Parameter(np.zeros(self.out_channels), dtype=dtype) if bias else None
        self.weight_noise = weight_noise_from(weight_noise)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.describe()}: expected input of shape (N, {self.in_channels}, H, W), "
                f"got {x.shape}; the weight has shape {self.weight.shape}"
            )
        return conv2d(x, weight_in_use(self), self.bias, self.stride, self.padding)

    def constructor_args(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "bias": self.bias is not None,
            **weight_noise_args(self),
        }

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        k = args["kernel_size"]
        shapes = {"weight": (args["out_channels"], args["in_channels"], k, k)}
        if args["bias"]:
            shapes["bias"] = (args["out_channels"],)
        return shapes

    def extra_repr_short(self) -> str:
        k = self.kernel_size
        return f" ({self.in_channels} -> {self.out_channels}, {k}x{k})"


class MaxPool2d(Module):
    """Max pooling over ``kernel_size`` windows (stride defaults to the kernel size)."""

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {
        "kernel_size": POSITIVE_INT, "stride": POSITIVE_INT}

    def __init__(self, kernel_size: int = 2, stride: int | None = None) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = self.kernel_size if stride is None else int(stride)

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride)

    def constructor_args(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride}


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1·d2·...)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


class Reshape(Module):
    """Reshape each example to ``shape``: e.g. (N, 784) or (N, 28, 28) -> (N, 1, 28, 28)."""

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {"shape": POSITIVE_INTS}

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: Tensor) -> Tensor:
        per_example = int(np.prod(self.shape))
        if x.ndim == 0 or x.size != x.shape[0] * per_example:
            raise ValueError(
                f"{self.describe()}: expected N examples of {per_example} values each "
                f"(shape (N, {', '.join(map(str, self.shape))}) or (N, {per_example})), "
                f"got shape {x.shape}"
            )
        if x.shape[1:] == self.shape:
            return x
        return x.reshape((x.shape[0], *self.shape))

    def constructor_args(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], masks: dict, prefix: str) -> Reshape:
        return cls(*spec["args"]["shape"])


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return relu(x)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class Sigmoid(Module):
    """Logistic sigmoid."""

    def forward(self, x: Tensor) -> Tensor:
        return sigmoid(x)


ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


class Sequential(Module):
    """Apply layers in order.

    Layers are given positionally; each may be a module (named ``"0"``, ``"1"``, ...) or a
    ``(name, module)`` pair, so that parameters get readable names such as ``fc1.weight``.

    Examples
    --------
    >>> net = Sequential(("fc1", Linear(4, 8)), ("relu", ReLU()), ("fc2", Linear(8, 2)))
    >>> [name for name, _ in net.named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']

    A name is a non-empty string without ``.`` (it joins names: ``fc1.weight``) that is
    not already an attribute of a model (``eval``, ``training``, ``config``, ...).
    """

    spec_keys: ClassVar[tuple[str, ...]] = ("type", "layers")
    #: attributes a model gets after it is made, which a layer's name must not replace
    RESERVED_NAMES: ClassVar[frozenset[str]] = frozenset(
        {"_parameters", "_modules", "_masks", "training", "name", "config", "snapshots"})

    def __init__(self, *layers: Module | tuple[str, Module]) -> None:
        super().__init__()
        for index, layer in enumerate(layers):
            name, module = layer if isinstance(layer, tuple) else (str(index), layer)
            self.check_layer_name(name, "Sequential")
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: layer {name!r} is not a Module: {module!r}")
            if name in self._modules:
                raise ValueError(f"Sequential: two layers are called {name!r}")
            setattr(self, name, module)

    @classmethod
    def check_layer_name(cls, name: Any, where: str) -> None:
        """Raise ValueError unless ``name`` can name a layer (see the class docstring)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{where}: a layer's name must be a non-empty string without "
                             f"'.', found {short_repr(name)}")
        if hasattr(cls, name) or name in cls.RESERVED_NAMES:
            raise ValueError(f"{where}: a layer cannot be called {name!r}, which is already "
                             f"an attribute of a {cls.__name__}")

    def forward(self, x: Tensor) -> Tensor:
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index: int | str) -> Module:
        if isinstance(index, str):
            return self._modules[index]
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def spec(self) -> dict[str, Any]:
        return {
            "type": "Sequential",
            "layers": [[name, module.spec()] for name, module in self._modules.items()],
        }

    @classmethod
    def spec_children(cls, spec: dict[str, Any], where: str) -> list[tuple[str, Any]]:
        layers = spec["layers"]
        if not isinstance(layers, list) or not all(
                isinstance(pair, list) and len(pair) == 2 for pair in layers):
            raise ValueError(f"{where}: layers must be a list of [name, spec] pairs")
        names = set()
        for name, _ in layers:
            cls.check_layer_name(name, where)
            if name in names:
                raise ValueError(f"{where}: two layers are called {name!r}")
            names.add(name)
        return [(name, child) for name, child in layers]

    @classmethod
    def from_spec(cls, spec: dict[str, Any], masks: dict, prefix: str) -> Sequential:
        return cls(*[(name, build_from_spec(sub, masks, f"{prefix}{name}."))
                     for name, sub in spec["layers"]])
