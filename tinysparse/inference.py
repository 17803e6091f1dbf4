"""One prediction at a time: a trained model compiled once into steps on plain arrays.

``model(x)`` is built for training. Every call wraps ``x`` in a Tensor, makes one graph node
per op and saves its inputs for a backward pass that inference never runs, multiplies a
masked weight by its mask (``W ⊙ M``, every weight, every call), and moves a sparse layer's
activations to the feature-major layout its training kernels want. At batch 128 that cost
hides behind the arithmetic; for one image it *is* the cost: LeNet-300-100 at 95% sparsity
was slower on the sparse kernels than dense, because the products themselves are tiny.

:func:`compile_inference` does that work once. It walks the model's layers and builds an
:class:`InferenceModel`: a list of steps, each holding its arrays laid out for its product
(a ReLU right after a Linear or Conv2d is fused into that layer's step: max(·, 0) written
over the product's own output).

===================  ===================================================  ===============
layer                its step computes                                    with
===================  ===================================================  ===============
Linear               Y = X Wᵀ + b; Wᵀ = (W ⊙ M)ᵀ stored (in × out), once  BLAS
SparseLinear         y_n = W x_n + b, example by example, consecutive     ``spmv_layers``
                     layers in one call; from :data:`SPMV_BELOW` examples
                     on, Y = W X + b on the feature-major batch           ``spmm``
Conv2d               Y = W · im2col(X) + b; W stored (out × in·k·k)       im2col, BLAS
SparseConv2d         the same with W in CSR                               im2col, ``spmm``
MaxPool2d            the max over each window                             Numba
Flatten, Reshape     a reshape (a view where the memory allows)           NumPy
ReLU, Tanh, Sigmoid  elementwise (when not fused)                         NumPy
Dropout              nothing: evaluation mode keeps every activation
===================  ===================================================  ===============

Running the plan is plain NumPy and compiled kernels on arrays: no Tensor, no graph, no
mask multiplication, no copy of a weight. Small batches run in one thread (a parallel
kernel spends more waking its second thread than computing one image:
:data:`ONE_THREAD_BELOW`). The sparse steps take unsigned CSR index arrays, so that the
compiled loops vectorise (:func:`column_index_type`).

A plan is a **snapshot**: it copies the weights when it is built, and never looks at the
model again. Train or prune the model afterwards and the plan still computes what the model
computed then; compile again to follow. It computes what ``model(x)`` computes in
evaluation mode (no dropout, no weight noise), to float rounding, in the model's dtype.

Examples
--------
>>> import numpy as np, tinysparse as ts
>>> model = ts.nn.lenet300(seed=0)
>>> plan = compile_inference(model)
>>> plan(np.zeros((1, 784), dtype=np.float32)).shape
(1, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinysparse import kernels
from tinysparse.autograd.nn_ops import PER_IMAGE_BELOW
from tinysparse.nn.dropout import Dropout
from tinysparse.nn.layers import (
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    Tanh,
)
from tinysparse.nn.module import Module, as_numbers, check_finite_inputs
from tinysparse.nn.sparse_layers import SparseConv2d, SparseLinear

#: Batches of fewer examples than this run a stack of sparse fully connected layers with
#: ``spmv_layers`` (each example on its own, batch-major), larger ones with ``spmm`` (the
#: whole batch per non-zero, feature-major). Measured, LeNet-300-100 at 95% sparsity on a
#: loaded 2-core machine: 6 vs 23 µs for one example, 41 vs 46 µs for 12, 54 vs 44 µs for
#: 16, 111 vs 54 µs for 32.
SPMV_BELOW = 16

#: Batches of fewer examples than this run im2col and max-pooling in one thread (their
#: parallel versions spend more waking the second thread than they save). Measured, the
#: whole plan of LeNet-5 at 90% sparsity on a loaded 2-core machine: 44 µs vs 1.1 ms for
#: one image, 0.9 vs 1.9 ms for 32, 2.2 vs 3.0 ms for 64, but 4.4 vs 3.0 ms for 128.
ONE_THREAD_BELOW = 64


# ---------------------------------------------------------------- the steps
class Step:
    """One layer's work on arrays. ``name`` is the layer's name in the model (for errors
    and ``repr``)."""

    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"({self.name}): {self.describe()}"


def _relu_in_place(y: np.ndarray) -> np.ndarray:
    """max(y, 0) written into y (NaN stays NaN): no new array, the same memory layout."""
    return np.maximum(y, 0, out=y)


def _wrong_input(step: Step, expected: str, x: np.ndarray) -> ValueError:
    return ValueError(f"{step.name}: expected input of shape {expected}, got {x.shape}")


class DenseLinearStep(Step):
    """Y = X Wᵀ + b (then max(Y, 0) with ``relu``), one BLAS product.

    ``weight_t`` is Wᵀ (in × out), row-major, with the mask already applied: the product
    ``X @ weight_t`` then reads both operands in their stored order, for any batch size.
    """

    def __init__(self, name: str, weight: np.ndarray, bias: np.ndarray | None, relu: bool):
        self.name, self.relu = name, relu
        self.weight_t = weight.T.copy()  # C order, and a copy even when Wᵀ is one already
        self.bias = None if bias is None else bias.copy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.weight_t.shape[0]:
            raise _wrong_input(self, f"(N, {self.weight_t.shape[0]})", x)
        y = x @ self.weight_t
        if self.bias is not None:
            y += self.bias
        return _relu_in_place(y) if self.relu else y

    def describe(self) -> str:
        n_in, n_out = self.weight_t.shape
        return f"dense {n_in} -> {n_out}" + (", ReLU" if self.relu else "")


class SparseLinearStack(Step):
    """One or more SparseLinear layers in a row: X ← X Wₗᵀ + bₗ, each W in CSR (then
    max(X, 0) where a ReLU was fused).

    The layers' matrices are stacked into one CSR matrix (layer l owns the rows
    ``layer_rows[l]:layer_rows[l + 1]``; ``indptr`` points into the shared ``indices`` and
    ``values``), so that

    * fewer than :data:`SPMV_BELOW` examples run the whole stack in **one** compiled call,
      ``spmv_layers``: for each example n and each row i of a layer,
      ``y[n, i] = b_i + Σ_k values[k] · x[n, indices[k]]`` (ReLU inside the kernel);
    * larger batches run ``spmm`` layer by layer on the feature-major batch,
      ``Y_fm = W X_fm + b``: one transpose on the way in, one (a view) on the way out.
    """

    def __init__(self, layers: list[tuple[str, SparseLinear, bool]]):
        self.name = "+".join(name for name, _, _ in layers)
        self.in_features = layers[0][1].in_features
        self.shapes = [layer.structure.shape for _, layer, _ in layers]  # (out, in) each
        structures = [layer.structure for _, layer, _ in layers]
        self.layer_rows = np.cumsum([0] + [s.shape[0] for s in structures])
        ends = np.cumsum([0] + [s.nnz for s in structures])  # where each layer's entries start
        if ends[-1] >= 2**32:
            raise ValueError(f"{self.name}: {ends[-1]:,} weights do not fit uint32 indices")
        self.indptr = np.concatenate(
            [[0]] + [s.indptr[1:] + offset for s, offset in zip(structures, ends)]
        ).astype(np.uint32)
        self.indices = np.concatenate([s.indices for s in structures]).astype(
            column_index_type(max(s.shape[1] for s in structures)))
        self.values = np.concatenate([layer.values.data for _, layer, _ in layers])  # copies
        self.bias = np.concatenate([_bias_or_zeros(layer, layer.out_features)
                                    for _, layer, _ in layers])
        self.relu = np.array([relu for _, _, relu in layers])
        self.spmv_layers = kernels.implementation("spmv_layers")
        self.spmm = kernels.implementation("spmm")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise _wrong_input(self, f"(N, {self.in_features})", x)
        if len(x) < SPMV_BELOW:
            return self.spmv_layers(self.indptr, self.indices, self.values, self.bias,
                                    self.layer_rows, self.relu, np.ascontiguousarray(x))
        x_fm = np.ascontiguousarray(x.T)  # free when x is the transposed view of a step
        for layer, relu in enumerate(self.relu):
            start, stop = self.layer_rows[layer], self.layer_rows[layer + 1]
            x_fm = self.spmm(self.indptr[start : stop + 1], self.indices, self.values, x_fm,
                             self.bias[start:stop])
            if relu:
                _relu_in_place(x_fm)
        return x_fm.T

    def describe(self) -> str:
        layers = [f"{n_in} -> {n_out}" + (" ReLU" if relu else "")
                  for (n_out, n_in), relu in zip(self.shapes, self.relu)]
        return f"sparse {', '.join(layers)}, {len(self.indices):,} weights"


class ConvolutionStep(Step):
    """Y = W · cols + b (then max(Y, 0) with ``relu``), ``cols = im2col(X)``:
    ``Y[o, (n, i, j)] = b_o + Σ_{c,u,v} W[o, (c, u, v)] · X_pad[n, c, i·s + u, j·s + v]``.

    The product is BLAS on the (out × in·k·k) weight, or ``spmm`` on its CSR form; its
    (out × N·OH·OW) result is returned as an (N, out, OH, OW) *view*, channel-major in
    memory: no transpose is copied, and im2col and pooling read either layout. A dense
    kernel with short columns (in·k·k below ``PER_IMAGE_BELOW``, as in autograd's conv2d:
    LeNet-5's first layer) multiplies image by image instead, straight into (N, out, OH, OW).
    """

    def __init__(self, name: str, layer: Conv2d | SparseConv2d, relu: bool):
        self.name, self.relu = name, relu
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self.kernel_size, self.stride, self.padding = (layer.kernel_size, layer.stride,
                                                       layer.padding)
        self.bias = _bias_or_zeros(layer, self.out_channels)
        self.im2col = kernels.implementation("im2col")
        self.im2col_one_thread = kernels.one_thread("im2col")
        self.per_image = False
        if isinstance(layer, SparseConv2d):
            structure = layer.structure
            self.csr = (structure.indptr.astype(np.uint32),
                        structure.indices.astype(column_index_type(structure.shape[1])),
                        layer.values.data.copy())
            self.spmm = kernels.implementation("spmm")
            self.kind, self.weights = "sparse", structure.nnz
        else:
            self.weight = _masked_weight(layer).reshape(self.out_channels, -1).copy()
            self.per_image = self.weight.shape[1] < PER_IMAGE_BELOW
            self.kind, self.weights = "dense", self.weight.size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        k, p = self.kernel_size, self.padding
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) + 2 * p < k:
            raise _wrong_input(self, f"(N, {self.in_channels}, H, W) with H, W >= {k - 2 * p}",
                               x)
        n = len(x)
        im2col = self.im2col_one_thread if n < ONE_THREAD_BELOW else self.im2col
        cols, (oh, ow) = im2col(x, k, k, self.stride, p)  # (C·k·k, N·OH·OW)
        if self.per_image:  # Y_n = W · cols_n + b, each (out × OH·OW)
            y = np.matmul(self.weight, cols.reshape(len(cols), n, -1).transpose(1, 0, 2))
            y += self.bias[:, None]
        elif self.kind == "dense":
            y = self.weight @ cols
            y += self.bias[:, None]
        else:
            y = self.spmm(*self.csr, cols, self.bias)
        if self.relu:
            _relu_in_place(y)
        if self.per_image:
            return y.reshape(n, self.out_channels, oh, ow)
        return y.reshape(self.out_channels, n, oh, ow).transpose(1, 0, 2, 3)

    def describe(self) -> str:
        k = self.kernel_size
        return (f"{self.kind} conv {self.in_channels} -> {self.out_channels}, {k}x{k}, "
                f"{self.weights:,} weights" + (", ReLU" if self.relu else ""))


class MaxPoolStep(Step):
    """The max over each ``kernel_size`` window (the pooling kernel, without using the
    positions it also returns)."""

    def __init__(self, name: str, layer: MaxPool2d):
        self.name, self.kernel_size, self.stride = name, layer.kernel_size, layer.stride
        self.pool = kernels.implementation("max_pool_forward")
        self.pool_one_thread = kernels.one_thread("max_pool_forward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or min(x.shape[2:]) < self.kernel_size:
            raise _wrong_input(self, f"(N, C, H, W) with H, W >= {self.kernel_size}", x)
        pool = self.pool_one_thread if len(x) < ONE_THREAD_BELOW else self.pool
        return pool(x, self.kernel_size, self.stride)[0]

    def describe(self) -> str:
        return f"max-pool {self.kernel_size}x{self.kernel_size}"


class ReshapeStep(Step):
    """Each example to ``shape`` (Flatten: to one vector)."""

    def __init__(self, name: str, shape: tuple[int, ...] | None):
        self.name, self.shape = name, shape  # None: flatten
        self.per_example = None if shape is None else int(np.prod(shape))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.shape is None:
            return x.reshape(len(x), -1)
        if x.ndim == 0 or x.size != len(x) * self.per_example:
            raise _wrong_input(self, f"(N, {', '.join(map(str, self.shape))}) or "
                                     f"(N, {self.per_example})", x)
        return x.reshape(len(x), *self.shape)

    def describe(self) -> str:
        return "flatten" if self.shape is None else f"reshape to {self.shape}"


class ActivationStep(Step):
    """An activation on its own (one not fused into the product before it)."""

    FUNCTIONS: dict[type[Module], Callable[[np.ndarray], np.ndarray]] = {
        ReLU: lambda x: np.maximum(x, 0),
        Tanh: np.tanh,
        Sigmoid: lambda x: 0.5 * (np.tanh(0.5 * x) + 1),  # as autograd's sigmoid computes it
    }

    def __init__(self, name: str, layer: Module):
        self.name, self.kind = name, type(layer).__name__
        self.function = self.FUNCTIONS[type(layer)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.function(x)

    def describe(self) -> str:
        return self.kind


def column_index_type(columns: int) -> type[np.unsignedinteger]:
    """The smallest unsigned integer type that numbers ``columns`` columns: ``uint16`` up to
    65,536, else ``uint32``. Unsigned, so that the compiled loops vectorise; 16 bits, so
    that they gather with 32-bit offsets (``vgatherdps`` on x86) instead of 64-bit ones, and
    read half the index bytes: ``spmv`` on LeNet-300-100's first layer, 3.6 instead of
    3.9 µs."""
    return np.uint16 if columns <= 2**16 else np.uint32


def _bias_or_zeros(layer: Module, size: int) -> np.ndarray:
    """A copy of the layer's bias, or zeros (the kernels take one; adding 0 changes nothing)."""
    if layer.bias is None:
        return np.zeros(size, dtype=layer.dtype)
    return layer.bias.data.copy()


def _masked_weight(layer: Linear | Conv2d) -> np.ndarray:
    """W ⊙ M, what the layer multiplies by in evaluation mode (W itself without a mask)."""
    mask = layer._masks.get("weight")
    return layer.weight.data if mask is None else mask.apply(layer.weight.data)


# ---------------------------------------------------------------- compiling a model
#: Layers with nothing to do in evaluation mode.
IDENTITY_LAYERS: tuple[type[Module], ...] = (Dropout,)

#: The layers a plan knows (exact types: a subclass may compute something else).
KNOWN_LAYERS: tuple[type[Module], ...] = (
    Linear, SparseLinear, Conv2d, SparseConv2d, MaxPool2d, Flatten, Reshape,
    *ActivationStep.FUNCTIONS, *IDENTITY_LAYERS)


def _layers_in_order(model: Module, prefix: str = "") -> list[tuple[str, Module]]:
    """The model's layers in the order they run (nested Sequentials opened), named as in
    ``named_modules``; a layer type the plan does not know raises a TypeError."""
    if isinstance(model, Sequential):
        return [pair for name, child in model._modules.items()
                for pair in _layers_in_order(child, f"{prefix}{name}.")]
    name = prefix.rstrip(".") or type(model).__name__
    if type(model) not in KNOWN_LAYERS:
        known = ", ".join(sorted(t.__name__ for t in KNOWN_LAYERS))
        raise TypeError(
            f"compile_inference: layer {name!r} is a {type(model).__name__}, which the "
            f"inference path does not know; it knows {known} (and Sequential). Convert the "
            f"layer first (e.g. tinysparse.nn.from_variational, from_l0), or run model(x).")
    return [(name, model)]


def _step(name: str, layer: Module, relu: bool) -> Step:
    """The step that computes ``layer`` (``relu``: a ReLU after it is fused in); runs of
    SparseLinear layers are stacked apart (:func:`_sparse_linear_runs`)."""
    if type(layer) is Linear:
        return DenseLinearStep(name, _masked_weight(layer),
                               None if layer.bias is None else layer.bias.data, relu)
    if type(layer) in (Conv2d, SparseConv2d):
        return ConvolutionStep(name, layer, relu)
    if type(layer) is MaxPool2d:
        return MaxPoolStep(name, layer)
    if type(layer) is Flatten:
        return ReshapeStep(name, None)
    if type(layer) is Reshape:
        return ReshapeStep(name, layer.shape)
    return ActivationStep(name, layer)


#: layers whose step applies a ReLU that follows them
FUSES_RELU = (Linear, SparseLinear, Conv2d, SparseConv2d)


def _with_relus_fused(layers: list[tuple[str, Module]]) -> list[tuple[str, Module, bool]]:
    """(name, layer, relu) for each layer, a ReLU that follows a layer of
    :data:`FUSES_RELU` folded into it (``relu`` True) instead of listed."""
    fused: list[tuple[str, Module, bool]] = []
    for name, layer in layers:
        if type(layer) is ReLU and fused and type(fused[-1][1]) in FUSES_RELU \
                and not fused[-1][2]:
            fused[-1] = (*fused[-1][:2], True)
        else:
            fused.append((name, layer, False))
    return fused


def _sparse_linear_runs(layers: list[tuple[str, Module, bool]]
                        ) -> list[tuple[str, Module, bool] | list]:
    """The layers, with each run of consecutive SparseLinear layers gathered in a list
    (one :class:`SparseLinearStack`); a ValueError when a layer of a run does not take
    the previous one's outputs."""
    grouped: list = []
    for item in layers:
        if type(item[1]) is SparseLinear and grouped and isinstance(grouped[-1], list):
            previous_name, previous, _ = grouped[-1][-1]
            if item[1].in_features != previous.out_features:
                raise ValueError(
                    f"compile_inference: {item[0]!r} takes {item[1].in_features} inputs, "
                    f"but {previous_name!r} before it gives {previous.out_features}")
            grouped[-1].append(item)
        else:
            grouped.append([item] if type(item[1]) is SparseLinear else item)
    return grouped


def compile_inference(model: Module) -> InferenceModel:
    """Build the inference plan of a trained ``model``, once: see the module's docstring.

    Parameters
    ----------
    model : Module
        A Sequential (nested ones are opened) of the layers listed in
        :data:`KNOWN_LAYERS`, or one such layer: dense, masked, sparse or structurally
        shrunk LeNet-300-100 and LeNet-5, and MLPs.

    Returns
    -------
    InferenceModel
        Callable on NumPy batches; a snapshot of the weights as they are now.

    Raises
    ------
    TypeError
        For a layer type the plan does not know (the error names the layer and its type).
    """
    layers = [(name, layer) for name, layer in _layers_in_order(model)
              if not isinstance(layer, IDENTITY_LAYERS)]
    steps = [SparseLinearStack(item) if isinstance(item, list) else _step(*item)
             for item in _sparse_linear_runs(_with_relus_fused(layers))]
    return InferenceModel(steps, model.dtype, type(model).__name__)


# ---------------------------------------------------------------- the plan
class InferenceModel:
    """A trained model's forward pass in evaluation mode, as steps on plain arrays.

    Built by :func:`compile_inference`. ``plan(x)`` gives the logits (an ndarray), what
    ``model(x).data`` gives in evaluation mode, to float rounding; ``predict`` and
    ``predict_proba`` answer as the model's do. A snapshot: later changes to the model's
    weights do not reach it.
    """

    def __init__(self, steps: list[Step], dtype: Any, source: str = "model") -> None:
        self.steps = steps
        self.dtype = np.dtype(dtype)
        self.source = source

    def __call__(self, x: Any) -> np.ndarray:
        """Logits for a batch ``x`` (any shape the model takes; cast to the plan's dtype).

        A ValueError names ``x`` when it is not a batch of numbers (strings, complex
        numbers, ragged lists, a single number), or the step whose input shape it does not
        fit."""
        if type(x) is not np.ndarray or x.dtype is not self.dtype or x.ndim == 0:
            x = self._batch(x)  # an array of the plan's dtype already: nothing to check
        for step in self.steps:
            x = step(x)
        return x

    def _batch(self, x: Any) -> np.ndarray:
        """``x`` as an array of at least one dimension in the plan's dtype, or a ValueError
        naming ``x``."""
        x = as_numbers(x, "x")
        if x.ndim == 0:
            raise ValueError(f"x: expected a batch of examples, (N, ...), got the single "
                             f"number {x}")
        return x.astype(self.dtype, copy=False)

    def predict_proba(self, x: Any, batch_size: int = 1000) -> np.ndarray:
        """``softmax(logits)`` per example, ``batch_size`` examples at a time (a ValueError
        for inputs that are not all finite, as :meth:`Module.predict_proba`)."""
        x = check_finite_inputs(x, "x")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        chunks = [_softmax(self(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=self.dtype)

    def predict(self, x: Any, batch_size: int = 1000) -> np.ndarray:
        """The class with the largest logit, per example (the largest probability too:
        softmax keeps the order)."""
        x = check_finite_inputs(x, "x")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        chunks = [self(x[i : i + batch_size]).argmax(axis=1)
                  for i in range(0, len(x), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)

    def __repr__(self) -> str:
        lines = [f"InferenceModel of a {self.source}, {self.dtype} (a snapshot)"]
        lines += [f"  {step!r}" for step in self.steps]
        return "\n".join(lines)


def _softmax(z: np.ndarray) -> np.ndarray:
    """exp(z − max z − log Σ exp(z − max z)) along each row, as autograd's softmax."""
    shifted = z - z.max(axis=1, keepdims=True)
    return np.exp(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))
