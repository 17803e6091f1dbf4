"""Weight sharing (Han, Mao & Dally 2016, "trained quantisation"): the kept weights of a
layer take one of a few shared values, the codebook, which is then fine-tuned.

:func:`share_weights` clusters each layer's kept weights with k-means
(:func:`~tinysparse.compress.kmeans.kmeans_1d`, linear initialisation) and replaces the
layer by its weight-shared twin, :class:`SharedLinear` or :class:`SharedConv2d`, which
stores

* ``codebook`` — a parameter of ``2^b`` values; entry 0 is the value **zero**, the
  other ``2^b − 1`` are the centroids;
* ``assignments`` — one integer in ``1 ... 2^b − 1`` per kept weight (in CSR order: the
  flat order of the weight): which centroid it uses. Fixed: fine-tuning moves the
  centroids, never a weight from one centroid to another;
* the layer's mask (unchanged) and its bias (an ordinary parameter).

The b-bit index of a weight is its assignment. Index 0 is zero because that is how Deep
Compression's decoder gives pruned positions and the padding entries of the relative
index their value (see :mod:`tinysparse.compress.relative_index`); the kept weights
therefore share ``2^b − 1`` centroids.

**Fine-tuning.** The forward pass builds the weight as ``take(codebook, index)``
(:func:`tinysparse.autograd.take`) — masked where the layer is pruned — so backpropagation
gives each centroid the **sum of the gradients of the weights that share it**:

    ∂L/∂c_k = Σ_{i : index_i = k} ∂L/∂W_i,

Han et al.'s rule. ``ts.fit(model, data, ...)`` fine-tunes a shared model like any other
(its parameters are the codebooks and the biases). A pruned weight stays pruned: its
gradient is masked, so entry 0 of the codebook gets none and stays exactly zero.

A layer runs the kernels its plain twin ran: the dense product for a ``Linear``/``Conv2d``
(the weight ``codebook[index] ⊙ M``), the sparse kernels for a ``SparseLinear``/
``SparseConv2d`` (the kept values ``codebook[assignments]``). :func:`unshare` turns the
model back into ordinary layers of those types, with the quantised weights and the same
masks. :func:`tinysparse.compress.save_compressed` writes a shared model to a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import Tensor, conv2d, linear, take
from tinysparse.compress.kmeans import INITIALISATIONS, kmeans_1d
from tinysparse.nn.layers import Conv2d, Linear
from tinysparse.nn.module import Module, Parameter, copy_bias_name_and_mode, replace_layers
from tinysparse.nn.sparse_layers import SparseConv2d, SparseLayer, SparseLinear
from tinysparse.sparse import Mask, sparse_conv2d, sparse_linear, structure_of

#: the index widths weight sharing accepts (2^b codebook entries)
MIN_BITS, MAX_BITS = 1, 16


def check_bits(bits: Any, name: str = "bits") -> int:
    """``bits`` as an int in [1, 16], or a ValueError naming ``name``."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or \
            not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"{name}: expected an integer in [{MIN_BITS}, {MAX_BITS}], got "
                         f"{bits!r}")
    return int(bits)


class SharedLayer(Module, abstract=True):
    """What :class:`SharedLinear` and :class:`SharedConv2d` share. Not listed in the
    registry of layer types (``abstract``): a model file never holds one, the compressed
    format does (:mod:`tinysparse.compress.format`)."""

    #: the dense layer type whose arguments this one takes
    dense_type: ClassVar[type[Module]]
    #: its twin on the sparse kernels
    sparse_type: ClassVar[type[SparseLayer]]

    def __init__(self, weight_shape: tuple[int, ...], codebook: Any, assignments: Any,
                 mask: Mask | None, bias: bool, sparse_kernels: bool, dtype: Any) -> None:
        super().__init__()
        codebook = np.asarray(codebook)
        size = int(np.prod(weight_shape))
        bits = int(np.log2(max(codebook.size, 1)))
        if codebook.ndim != 1 or codebook.size != 2**bits or not MIN_BITS <= bits <= MAX_BITS:
            raise ValueError(f"codebook: expected 2^b values, b in [{MIN_BITS}, {MAX_BITS}], "
                             f"got shape {codebook.shape}")
        if codebook[0] != 0:
            raise ValueError(f"codebook: entry 0 must be zero (it is the pruned weights' "
                             f"value), got {codebook[0]}")
        if mask is not None:
            mask = Mask(mask)
            mask.check_shape(weight_shape, f"the weight of {type(self).__name__}")
        if sparse_kernels and mask is None:
            raise ValueError("sparse_kernels: a layer on the sparse kernels needs a mask")
        positions = np.arange(size) if mask is None else np.flatnonzero(mask.keep)
        assignments = np.asarray(assignments)
        if assignments.shape != positions.shape or assignments.dtype.kind not in "iu" or \
                (assignments.size and not (1 <= assignments.min() and
                                           assignments.max() < codebook.size)):
            raise ValueError(f"assignments: expected {positions.size} integers in [1, "
                             f"{codebook.size}) (one per kept weight), got "
                             f"{assignments.shape} of {assignments.dtype}")
        self.weight_shape = tuple(int(n) for n in weight_shape)
        self.bits = bits
        self.codebook = Parameter(codebook, dtype=dtype or codebook.dtype)
        self.assignments = assignments.astype(np.int64)
        self.assignments.flags.writeable = False
        self.positions = positions
        if mask is not None:
            self._masks["weight"] = mask
        self.sparse_kernels = bool(sparse_kernels)
        # the forward pass's index: a kept weight's centroid, 0 where pruned
        index = np.zeros(size, dtype=np.int64)
        index[positions] = self.assignments
        self.index = index.reshape(self.weight_shape)
        self.index.flags.writeable = False
        self.structure = structure_of(mask) if sparse_kernels else None
        self.bias = Parameter(np.zeros(weight_shape[0]), dtype=self.codebook.dtype) \
            if bias else None
        self.weight_noise = None

    # ---------------------------------------------------------------- the weight
    @property
    def mask(self) -> Mask | None:
        """Which weights exist (None: all of them)."""
        return self._masks.get("weight")

    @property
    def kept(self) -> int:
        """How many weights are stored (kept)."""
        return self.positions.size

    @property
    def weight(self) -> Parameter:
        raise AttributeError(
            f"{self.describe()} shares its weights: it stores .codebook and one index per "
            f"kept weight (.assignments); .dense_weight() gives the matrix, "
            f"tinysparse.compress.unshare(model) the ordinary layer")

    def weight_in_use(self) -> Tensor:
        """The weight this forward pass multiplies by, as a graph op of the codebook: the
        kept values ``codebook[assignments]`` on the sparse kernels, else the dense
        ``codebook[index] ⊙ M`` (the mask keeps pruned positions out of entry 0's
        gradient)."""
        if self.sparse_kernels:
            return take(self.codebook, self.assignments)
        weight = take(self.codebook, self.index)
        return weight if self.mask is None else weight * self.mask.as_float(self.codebook.dtype)

    def dense_weight(self) -> np.ndarray:
        """The quantised weight as a dense array (``codebook[index]``: zero where pruned).
        A new array each time."""
        return self.codebook.data[self.index]

    def centroid_gradients(self, weight_gradient: np.ndarray) -> np.ndarray:
        """Han et al.'s rule written out: the gradient each centroid would get from a
        dense weight gradient, ``Σ_{i : index_i = k} ∂L/∂W_i`` over the kept weights (for
        tests and lessons; training gets the same from backpropagation)."""
        kept = np.asarray(weight_gradient).reshape(-1)[self.positions]
        return np.bincount(self.assignments, weights=kept, minlength=self.codebook.size)

    def set_mask(self, parameter_name: str, mask: Any) -> Mask:
        if parameter_name == "weight":
            raise TypeError(f"{self.describe()}: the mask of a shared weight is fixed (the "
                            f"assignments follow it); unshare the model first")
        return super().set_mask(parameter_name, mask)

    def remove_mask(self, parameter_name: str) -> None:
        if parameter_name == "weight":
            raise TypeError(f"{self.describe()}: the mask of a shared weight is fixed; "
                            f"unshare the model first")
        super().remove_mask(parameter_name)

    # ---------------------------------------------------------------- state: the dense view
    def local_state_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"weight": self.weight_shape}
        if self.bias is not None:
            shapes["bias"] = self.bias.shape
        return shapes

    def local_state(self) -> dict[str, np.ndarray]:
        state = {"weight": self.dense_weight()}
        if self.bias is not None:
            state["bias"] = self.bias.data.copy()
        return state

    def load_local_state(self, name: str, values: np.ndarray) -> None:
        """Loading a dense weight sets the centroids it shows: every kept weight with
        the same index must hold the same value (a weight this layer gave, e.g. the best
        epoch's that ``fit(restore_best=True)`` puts back); pruned entries are ignored."""
        if name != "weight":
            return super().load_local_state(name, values)
        kept = np.asarray(values, dtype=self.codebook.dtype).reshape(-1)[self.positions]
        codebook = self.codebook.data.copy()
        codebook[self.assignments] = kept
        if not np.array_equal(codebook[self.assignments], kept):
            raise ValueError(f"{self.describe()}: the weight loaded does not share values "
                             f"as this layer's assignments do (kept weights with one index "
                             f"hold different values); unshare the model to load any weight")
        self.codebook.data = codebook

    def spec(self) -> dict[str, Any]:
        raise TypeError(
            f"{self.describe()} shares its weights and has no model-file spec: write the "
            f"model with tinysparse.compress.save_compressed(model, path), or turn it back "
            f"into ordinary layers with tinysparse.compress.unshare(model) and save that")

    # ---------------------------------------------------------------- conversions
    @classmethod
    def from_layer(cls, layer: Module, bits: int, init: str = "linear",
                   max_iterations: int = 100, seed: int | None = 0) -> SharedLayer:
        """The shared twin of a Linear/Conv2d (masked or not) or of its sparse twin: its
        kept weights clustered by k-means into ``2^bits − 1`` centroids."""
        bits = check_bits(bits)
        check_no_weight_noise(layer)
        if isinstance(layer, SparseLayer):
            weight, mask = layer.dense_weight(), layer.mask
        else:
            weight, mask = layer.weight.data, layer._masks.get("weight")
        kept = weight.reshape(-1) if mask is None else weight.reshape(-1)[mask.keep.reshape(-1)]
        codebook = np.zeros(2**bits, dtype=np.float64)
        assignments = np.ones(kept.size, dtype=np.int64)
        if kept.size:
            clustering = kmeans_1d(kept, 2**bits - 1, init, max_iterations, seed)
            codebook[1:] = clustering.centroids
            assignments = clustering.assignments + 1
        shared = cls(**layer.constructor_args(), codebook=codebook.astype(layer.dtype),
                     assignments=assignments, mask=mask,
                     sparse_kernels=isinstance(layer, SparseLayer), dtype=layer.dtype)
        copy_bias_name_and_mode(layer, shared)
        return shared

    def to_plain(self) -> Module:
        """The ordinary layer with this layer's quantised weights and masks: the type it
        was made from (Linear/Conv2d, or its twin on the sparse kernels)."""
        layer = self.dense_type(**self.constructor_args(), dtype=self.codebook.dtype)
        layer.weight.data = self.dense_weight()
        if self.mask is not None:
            layer.set_mask("weight", self.mask)
        copy_bias_name_and_mode(self, layer)
        if self.sparse_kernels:
            layer = self.sparse_type.from_dense(layer)
        return layer

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, {self.bits}-bit codebook"
                f"{', sparse kernels' if self.sparse_kernels else ''}")


def check_no_weight_noise(layer: Module) -> None:
    """A ValueError when ``layer`` drops weights while training (DropConnect, targeted
    dropout): a shared layer trains its centroids without a weight noise."""
    if getattr(layer, "weight_noise", None) is not None:
        raise ValueError(f"{layer.describe()}: has a weight noise "
                         f"({type(layer.weight_noise).__name__}); weight sharing fine-tunes "
                         f"without one: remove it first "
                         f"(tinysparse.nn.set_weight_noise(model, {{name: None}}))")


class SharedLinear(SharedLayer, abstract=True):
    """A :class:`~tinysparse.nn.Linear` whose kept weights share a codebook.

    Parameters
    ----------
    in_features, out_features : int
    codebook : array_like, shape (2^b,)
        Entry 0 must be zero; b in [1, 16].
    assignments : array_like of int, one per kept weight in CSR (flat) order
        Each in [1, 2^b).
    mask : Mask, optional
        Which weights are kept (None: all).
    bias : bool
    sparse_kernels : bool
        Run the sparse kernels (as a :class:`~tinysparse.nn.SparseLinear`); needs a mask.
    dtype : numpy dtype, optional

    Usually made by :func:`share_weights`.
    """

    dense_type = Linear
    sparse_type = SparseLinear

    def __init__(self, in_features: int, out_features: int, codebook: Any, assignments: Any,
                 mask: Mask | None = None, bias: bool = True, sparse_kernels: bool = False,
                 dtype: Any = None) -> None:
        super().__init__((int(out_features), int(in_features)), codebook, assignments, mask,
                         bias, sparse_kernels, dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_features}), got {x.shape}")
        if self.sparse_kernels:
            return sparse_linear(x, self.weight_in_use(), self.bias, self.structure)
        return linear(x, self.weight_in_use(), self.bias)

    def constructor_args(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None}

    def extra_repr_short(self) -> str:
        return f" ({self.in_features} -> {self.out_features})"


class SharedConv2d(SharedLayer, abstract=True):
    """A :class:`~tinysparse.nn.Conv2d` whose kept weights share a codebook (parameters as
    :class:`SharedLinear`, with the convolution's ``in_channels, out_channels,
    kernel_size, stride, padding``)."""

    dense_type = Conv2d
    sparse_type = SparseConv2d

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, codebook: Any,
                 assignments: Any, mask: Mask | None = None, stride: int = 1,
                 padding: int = 0, bias: bool = True, sparse_kernels: bool = False,
                 dtype: Any = None) -> None:
        k = int(kernel_size)
        super().__init__((int(out_channels), int(in_channels), k, k), codebook, assignments,
                         mask, bias, sparse_kernels, dtype)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = k, int(stride), int(padding)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"(N, {self.in_channels}, H, W), got {x.shape}")
        if self.sparse_kernels:
            return sparse_conv2d(x, self.weight_in_use(), self.bias, self.structure,
                                 self.kernel_size, self.stride, self.padding)
        return conv2d(x, self.weight_in_use(), self.bias, self.stride, self.padding)

    def constructor_args(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "bias": self.bias is not None}

    def extra_repr_short(self) -> str:
        k = self.kernel_size
        return f" ({self.in_channels} -> {self.out_channels}, {k}x{k})"


#: each layer type weight sharing converts, and its shared twin
SHARED_TWINS: dict[type[Module], type[SharedLayer]] = {
    Linear: SharedLinear, SparseLinear: SharedLinear,
    Conv2d: SharedConv2d, SparseConv2d: SharedConv2d}


def check_shareable(model: Module, bits: int | Mapping[str, int] = 5,
                    init: str = "linear") -> dict[str, int]:
    """What :func:`share_weights` checks before it changes anything: the index width of
    every layer it would share, by name; a ValueError for anything it would refuse."""
    if init not in INITIALISATIONS:
        raise ValueError(f"init: unknown {init!r}; choose one of {list(INITIALISATIONS)}")
    layers = {name: module for name, module in model.named_modules()
              if type(module) in SHARED_TWINS}
    for module in model.modules():
        if isinstance(module, SharedLayer):
            raise ValueError(f"{module.describe()} is already shared")
        check_no_weight_noise(module)
        if type(module) not in SHARED_TWINS and module._parameters:
            raise ValueError(f"{module.describe()}: weight sharing handles "
                             f"{', '.join(t.__name__ for t in SHARED_TWINS)}; this layer has "
                             f"parameters of its own (convert it to one of those first)")
    if isinstance(bits, Mapping):
        missing = sorted(set(layers) - set(bits))
        unknown = sorted(set(bits) - set(layers))
        if missing or unknown:
            raise ValueError(f"bits: expected one entry per shared layer ({', '.join(layers)}); "
                             f"missing {missing}, unknown {unknown}")
        widths = {name: check_bits(bits[name], f"bits[{name!r}]") for name in layers}
    else:
        widths = dict.fromkeys(layers, check_bits(bits))
    return widths


def share_weights(model: Module, bits: int | Mapping[str, int] = 5, init: str = "linear",
                  max_iterations: int = 100, seed: int | None = 0) -> Module:
    """Cluster the kept weights of every Linear and Conv2d (dense, masked or on the sparse
    kernels) and replace the layer by its weight-shared twin, in place.

    Parameters
    ----------
    model : Module
        Its other layers must have no parameters (activations, pooling, dropout, ...).
    bits : int in [1, 16], or a mapping layer name -> bits
        Width of the codebook indices: ``2^bits`` codebook entries, entry 0 the zero and
        ``2^bits − 1`` centroids. A mapping must name every layer.
    init : "linear", "density" or "random"
        Where k-means starts (linear: Han et al.'s recommendation).
    max_iterations : int
    seed : int, optional
        For ``init="random"``.

    Returns
    -------
    Module
        ``model`` (or the twin, when ``model`` is itself one layer). Build optimisers
        afterwards (``ts.fit`` does): the layers are new.

    Raises
    ------
    ValueError
        For bits outside [1, 16], a layer type that cannot be shared, or a layer that
        is already shared — before anything changes.
    """
    widths = check_shareable(model, bits, init)
    layers = {name: module for name, module in model.named_modules() if name in widths}
    names = {id(module): name for name, module in layers.items()}

    def twin(layer: Module) -> Module | None:
        if id(layer) not in names:
            return None
        return SHARED_TWINS[type(layer)].from_layer(layer, widths[names[id(layer)]], init,
                                                    max_iterations, seed)

    return replace_layers(model, twin)


def unshare(model: Module) -> Module:
    """Turn every weight-shared layer back into an ordinary one (the type it was made
    from) holding its quantised weights and the same masks, in place."""
    return replace_layers(model, lambda layer: layer.to_plain()
                          if isinstance(layer, SharedLayer) else None)


def shared_layers(model: Module) -> list[tuple[str, SharedLayer]]:
    """The weight-shared layers of ``model``, by name, in order."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, SharedLayer)]
