"""Layers on the sparse kernels: a pruned Linear or Conv2d that stores only its kept weights.

A masked Linear still stores all its weights and multiplies ``W ⊙ M`` with the dense
kernels — the pruned ones too. When pruning leaves a layer with few enough weights (its
mask's density at most :func:`tinysparse.sparse.density_threshold`, 0.2 by default: the
measured break-even), the pruning step replaces it by its **sparse twin**, which
``print(model)`` and the sparsity report show::

    (fc1): Linear(in_features=784, out_features=300, bias=True, weight: 11,760 of 235,200 kept)
    becomes
    (fc1): SparseLinear(in_features=784, out_features=300, bias=True, weight: 11,760 of ...)

The twin's trainable weight parameter is ``values``: the kept weights in CSR order, one per
non-zero of ``structure`` (built from the mask once, when the layer is made). It is the
only copy of the weights. The sparse kernels read it, the optimiser updates it like any
other parameter, and a pruned weight is not stored at all, so nothing can make it regrow.
The dense matrix is computed when asked for (:meth:`SparseLayer.dense_weight`,
``model.state_dict()``) and never written back: it is a picture, not a second copy.

A weight noise (DropConnect, targeted dropout: :mod:`tinysparse.nn.dropout`) comes along
with the layer; here it drops entries of ``values`` at each training step, so the
structure is never rebuilt.

:func:`to_sparse` and :func:`to_dense` make the replacement by hand. Pruning calls them
itself (:func:`tinysparse.prune.apply_masks`): a user prunes and trains as before.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import Tensor, dropout, get_default_dtype
from tinysparse.nn.dropout import WeightNoise, weight_noise_from
from tinysparse.nn.layers import Conv2d, Linear, weight_noise_args
from tinysparse.nn.module import Module, Parameter, clone, copy_bias_name_and_mode, replace_layers
from tinysparse.sparse import (
    Mask,
    density_threshold,
    sparse_conv2d,
    sparse_linear,
    structure_of,
)


class SparseLayer(Module, abstract=True):
    """What :class:`SparseLinear` and :class:`SparseConv2d` share: the weight's mask, its
    CSR ``structure`` and the kept weights ``values``; ``bias`` and ``weight_noise`` as in
    the dense layer."""

    #: the dense layer this one is the twin of (the same arguments and state shapes)
    dense_type: ClassVar[type[Module]]
    spec_masks = ("weight",)  # the mask is part of the architecture

    def __init__(self, mask: Mask, weight_shape: tuple[int, ...], bias: bool, dtype: Any,
                 weight_noise: WeightNoise | dict | None = None) -> None:
        super().__init__()
        mask = Mask(mask)  # its own (the dense twin's keeps a float copy for W ⊙ M)
        mask.check_shape(weight_shape, f"the weight of {type(self).__name__}")
        dtype = dtype or get_default_dtype()
        self._masks["weight"] = mask
        self.structure = structure_of(mask)
        self.values = Parameter(np.zeros(mask.kept), dtype=dtype)
        self.bias = Parameter(np.zeros(weight_shape[0]), dtype=dtype) if bias else None
        self.weight_noise = weight_noise_from(weight_noise)

    # ---------------------------------------------------------------- the weight
    @property
    def mask(self) -> Mask:
        """Which weights exist (the structure was built from it)."""
        return self._masks["weight"]

    @property
    def weight(self) -> Parameter:
        raise AttributeError(
            f"{self.describe()} stores only the weights its mask keeps, in .values (CSR "
            f"order, see .structure); .dense_weight() gives the matrix, "
            f"tinysparse.nn.to_dense(model) the dense layer")

    def values_in_use(self) -> Tensor:
        """The stored weights this forward pass multiplies by: ``values``, and while
        training with a weight noise ``values ⊙ keep · scale`` (the structure stays)."""
        noise = self.weight_noise
        if noise is None or not self.training:
            return self.values
        keep = noise.keep_values(self.values.data, self.structure)
        return dropout(self.values, keep, noise.scale)

    def dense_weight(self) -> np.ndarray:
        """The weight as a dense array: the kept values in their places, zeros elsewhere.
        A new array each time (writing into it changes nothing)."""
        return self.structure.scatter(self.values.data, self.mask.shape)

    def set_mask(self, parameter_name: str, mask: Any) -> Mask:
        if parameter_name == "weight":
            raise TypeError(
                f"{self.describe()} stores only the weights its mask keeps: give the model "
                f"new masks with tinysparse.prune.apply_masks(model, masks), or move the "
                f"layer back with tinysparse.nn.to_dense(model) first")
        return super().set_mask(parameter_name, mask)

    def remove_mask(self, parameter_name: str) -> None:
        if parameter_name == "weight":
            raise TypeError(f"{self.describe()} cannot drop its weight's mask: move it back "
                            f"with tinysparse.nn.to_dense(model) first")
        super().remove_mask(parameter_name)

    # ---------------------------------------------------------------- state: the dense view
    def local_state_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"weight": self.mask.shape}
        if self.bias is not None:
            shapes["bias"] = self.bias.shape
        return shapes

    def local_state(self) -> dict[str, np.ndarray]:
        state = {"weight": self.dense_weight()}
        if self.bias is not None:
            state["bias"] = self.bias.data.copy()
        return state

    def load_local_state(self, name: str, values: np.ndarray) -> None:
        if name == "weight":  # only the kept entries exist
            kept = self.structure.gather(np.ascontiguousarray(values))
            self.values.data = kept.astype(self.values.dtype)
        else:
            super().load_local_state(name, values)

    # ---------------------------------------------------------------- twins
    @classmethod
    def from_dense(cls, layer: Module) -> SparseLayer:
        """The sparse twin of a masked ``layer`` (its kept weights gathered, nothing shared)."""
        mask = layer._masks.get("weight")
        if mask is None:
            raise ValueError(f"{layer.describe()} has no mask: prune it first")
        twin = cls(**layer.constructor_args(), mask=mask, dtype=layer.dtype)
        twin.values.data = twin.structure.gather(np.ascontiguousarray(layer.weight.data))
        _copy_bias_and_mode(layer, twin)
        return twin

    def to_dense(self) -> Module:
        """The masked dense twin of this layer (the same weights, nothing shared)."""
        layer = self.dense_type(**self.constructor_args(), dtype=self.dtype)
        layer.weight.data = self.dense_weight()
        layer.set_mask("weight", self.mask)
        _copy_bias_and_mode(self, layer)
        return layer

    @classmethod
    def from_spec(cls, spec: dict[str, Any], masks: dict[str, Mask], prefix: str
                  ) -> SparseLayer:
        """Rebuild from :meth:`spec`: the mask is part of the architecture here."""
        name = f"{prefix}weight"
        if name not in masks:
            raise ValueError(f"{name}: a {cls.__name__} needs its mask to be rebuilt, and "
                             f"there is none")
        return cls(**spec.get("args", {}), mask=masks[name])

    @classmethod
    def spec_state_shapes(cls, args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        return cls.dense_type.spec_state_shapes(args)

def _copy_bias_and_mode(source: Module, target: Module) -> None:
    """Give ``target`` the bias (and its mask), name, training mode and weight noise of
    ``source`` (the noise object itself: its generator goes on where it was)."""
    target.weight_noise = source.weight_noise
    copy_bias_name_and_mode(source, target)


class SparseLinear(SparseLayer):
    """A pruned :class:`~tinysparse.nn.Linear` on the sparse kernels: ``y = x Wᵀ + b``
    computed with the kept weights only.

    Parameters
    ----------
    in_features, out_features : int
    mask : Mask or array_like of 0/1, shape (out_features, in_features)
        Which weights exist; fixed for the life of the layer.
    bias : bool
    dtype : numpy dtype, optional
    weight_noise : WeightNoise or its spec, optional
        As for :class:`~tinysparse.nn.Linear`; it drops stored weights.

    The weights start at zero; :meth:`from_dense` (what pruning uses) takes them from a
    dense layer.
    """

    dense_type = Linear
    spec_arguments = Linear.spec_arguments

    def __init__(self, in_features: int, out_features: int, mask: Any, bias: bool = True,
                 dtype: Any = None, weight_noise: WeightNoise | dict | None = None) -> None:
        super().__init__(mask, (int(out_features), int(in_features)), bias, dtype,
                         weight_noise)
        self.in_features, self.out_features = int(in_features), int(out_features)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_features}), got {x.shape}")
        return sparse_linear(x, self.values_in_use(), self.bias, self.structure)

    def constructor_args(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, **weight_noise_args(self)}

    def extra_repr_short(self) -> str:
        return f" ({self.in_features} -> {self.out_features})"


class SparseConv2d(SparseLayer):
    """A pruned :class:`~tinysparse.nn.Conv2d` on the sparse kernels: the kernel, viewed as
    the (out × in·k·k) matrix that multiplies the im2col columns, is stored as CSR.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding : int
    mask : Mask or array_like of 0/1, shape (out_channels, in_channels, k, k)
    bias : bool
    dtype : numpy dtype, optional
    weight_noise : WeightNoise or its spec, optional
    """

    dense_type = Conv2d
    spec_arguments = Conv2d.spec_arguments

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: Any,
                 stride: int = 1, padding: int = 0, bias: bool = True, dtype: Any = None,
                 weight_noise: WeightNoise | dict | None = None) -> None:
        k = int(kernel_size)
        super().__init__(mask, (int(out_channels), int(in_channels), k, k), bias, dtype,
                         weight_noise)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = k, int(stride), int(padding)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_channels}, H, W), got {x.shape}")
        return sparse_conv2d(x, self.values_in_use(), self.bias, self.structure,
                             self.kernel_size, self.stride, self.padding)

    def constructor_args(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "bias": self.bias is not None, **weight_noise_args(self)}

    def extra_repr_short(self) -> str:
        k = self.kernel_size
        return f" ({self.in_channels} -> {self.out_channels}, {k}x{k})"


#: each dense layer type and its twin on the sparse kernels
SPARSE_TWINS: dict[type[Module], type[SparseLayer]] = {Linear: SparseLinear,
                                                      Conv2d: SparseConv2d}


def to_sparse(model: Module, max_density: float | None = None) -> Module:
    """Move every masked Linear/Conv2d that keeps at most ``max_density`` of its weights to
    the sparse kernels (its :class:`SparseLinear`/:class:`SparseConv2d` twin), in place.

    Parameters
    ----------
    model : Module
    max_density : float, optional
        Default :func:`tinysparse.sparse.density_threshold` (what pruning uses); 0 moves
        nothing.

    Returns
    -------
    Module
        ``model`` — or, when ``model`` is itself one such layer, its twin.
    """
    limit = density_threshold() if max_density is None else float(max_density)

    def twin(layer: Module) -> Module | None:
        mask = layer._masks.get("weight")
        if type(layer) in SPARSE_TWINS and mask is not None and 0 < limit and \
                mask.density <= limit:
            return SPARSE_TWINS[type(layer)].from_dense(layer)
        return None

    return replace_layers(model, twin)


def to_dense(model: Module) -> Module:
    """Move every layer on the sparse kernels back to its masked dense twin, in place
    (returns ``model``, or the twin when ``model`` is itself a sparse layer)."""
    return replace_layers(model, lambda layer: layer.to_dense()
                           if isinstance(layer, SparseLayer) else None)


def has_sparse_layers(model: Module) -> bool:
    """Whether any layer of ``model`` runs on the sparse kernels."""
    return any(isinstance(m, SparseLayer) for m in model.modules())


def as_dense(model: Module) -> Module:
    """``model`` itself when no layer runs on the sparse kernels, else a dense copy: for
    code that reads dense weights and must not change the model it was given."""
    return to_dense(clone(model)) if has_sparse_layers(model) else model


#: the layers a weight noise (DropConnect, targeted dropout) can act on
NOISY_LAYERS: tuple[type[Module], ...] = (Linear, Conv2d, SparseLinear, SparseConv2d)


def set_weight_noise(model: Module, noises: dict[str, WeightNoise | None]) -> None:
    """Give the named layers of ``model`` a weight noise (None takes it away), in place.

    Parameters
    ----------
    model : Module
    noises : dict layer name -> WeightNoise or None
        e.g. ``{"fc1": DropConnect(0.5, seed=1), "fc2": DropConnect(0.5, seed=2)}``. Give
        each layer its own object (its own generator): layers sharing one would draw
        from one stream.

    Raises
    ------
    ValueError
        When a named layer has no weight to drop (an activation, a pooling layer).
    """
    for name, noise in noises.items():
        layer = model.get_submodule(name)
        if not isinstance(layer, NOISY_LAYERS):
            raise ValueError(
                f"weight_noise: {layer.describe()} has no weight to drop; DropConnect and "
                f"targeted dropout act on {', '.join(t.__name__ for t in NOISY_LAYERS)}"
                f" (put a Dropout layer after it to drop its outputs)")
        layer.weight_noise = weight_noise_from(noise)
