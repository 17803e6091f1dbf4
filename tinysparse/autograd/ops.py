"""Arithmetic, reductions and shape ops: each forward beside its backward.

Every op is a :class:`~tinysparse.autograd.tensor.Function` subclass followed by a
lowercase function that calls it. Binary ops broadcast like NumPy; their backward passes
"unbroadcast" the incoming gradient (sum over the axes that were stretched) so that each
input receives a gradient of its own shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysparse.autograd.tensor import Function, Tensor


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: undo NumPy broadcasting in the backward pass.

    If ``x`` of shape ``(3, 1)`` was broadcast to ``(2, 3, 4)``, every element of ``x`` was
    used 2 * 4 times, so its gradient is the sum over the leading axis and the stretched
    last axis.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


# ---------------------------------------------------------------- arithmetic
class Add(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad):
        # d(a + b)/da = 1, d(a + b)/db = 1
        return unbroadcast(grad, self.a_shape), unbroadcast(grad, self.b_shape)


class Sub(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad):
        grad_b = -unbroadcast(grad, self.b_shape) if self.needs_grad[1] else None
        return unbroadcast(grad, self.a_shape), grad_b


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        # d(a * b)/da = b, d(a * b)/db = a
        grad_a = unbroadcast(grad * self.b, self.a.shape) if self.needs_grad[0] else None
        grad_b = unbroadcast(grad * self.a, self.b.shape) if self.needs_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        # d(a / b)/da = 1 / b, d(a / b)/db = -a / b²
        grad_a = unbroadcast(grad / self.b, self.a.shape) if self.needs_grad[0] else None
        grad_b = None
        if self.needs_grad[1]:
            grad_b = unbroadcast(-grad * self.a / (self.b * self.b), self.b.shape)
        return grad_a, grad_b


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)


class Pow(Function):
    def forward(self, base, exponent):
        self.base, self.exponent = base, exponent
        self.out = base**exponent
        return self.out

    def backward(self, grad):
        base, exponent = self.base, self.exponent
        grad_base = grad_exponent = None
        if self.needs_grad[0]:
            # d(b^e)/db = e * b^(e-1)
            grad_base = unbroadcast(grad * exponent * base ** (exponent - 1), base.shape)
        if self.needs_grad[1]:
            # d(b^e)/de = b^e * log(b)   (defined for b > 0)
            grad_exponent = unbroadcast(grad * self.out * np.log(base), exponent.shape)
        return grad_base, grad_exponent


class MatMul(Function):
    """``a @ b`` for 2-D matrices and stacks of them (leading axes broadcast)."""

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(
                f"matmul: expected arrays with at least 2 dimensions, got shapes "
                f"{a.shape} and {b.shape} (reshape vectors to (1, n) or (n, 1))"
            )
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not fit: the last axis of the "
                f"first ({a.shape[-1]}) must equal the second-to-last of the second "
                f"({b.shape[-2]})"
            )
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        # C = A B  =>  dA = dC Bᵀ,  dB = Aᵀ dC
        a, b = self.a, self.b
        grad_a = grad_b = None
        if self.needs_grad[0]:
            grad_a = unbroadcast(grad @ np.swapaxes(b, -1, -2), a.shape)
        if self.needs_grad[1]:
            grad_b = unbroadcast(np.swapaxes(a, -1, -2) @ grad, b.shape)
        return grad_a, grad_b


# ---------------------------------------------------------------- elementwise
class Exp(Function):
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)  # d(e^a)/da = e^a


class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, grad):
        return (grad / self.a,)  # d(log a)/da = 1/a


# ---------------------------------------------------------------- reductions
def _normalize_axis(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim for a in axis)


def _expand_reduced(grad: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Put back the reduced axes (as length 1) so the gradient broadcasts to the input."""
    if keepdims:
        return grad
    return np.expand_dims(grad, axes)


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape = a.shape
        self.axes = _normalize_axis(axis, a.ndim)
        self.keepdims = keepdims
        return np.sum(a, axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        # each input element contributed once to its sum
        grad = _expand_reduced(grad, self.axes, self.keepdims)
        return (np.broadcast_to(grad, self.shape).copy(),)


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape = a.shape
        self.axes = _normalize_axis(axis, a.ndim)
        self.keepdims = keepdims
        self.count = int(np.prod([a.shape[i] for i in self.axes]))
        return np.mean(a, axis=self.axes, keepdims=keepdims)

    def backward(self, grad):
        grad = _expand_reduced(grad, self.axes, self.keepdims) / self.count
        return (np.broadcast_to(grad, self.shape).astype(grad.dtype, copy=True),)


class Max(Function):
    """Maximum over axes. Where several elements tie for the maximum, the gradient is
    shared equally among them (as ``torch.amax`` does)."""

    def forward(self, a, axis=None, keepdims=False):
        self.a = a
        self.axes = _normalize_axis(axis, a.ndim)
        self.keepdims = keepdims
        self.out = np.max(a, axis=self.axes, keepdims=True)
        return self.out if keepdims else np.squeeze(self.out, axis=self.axes)

    def backward(self, grad):
        grad = _expand_reduced(grad, self.axes, self.keepdims)
        winners = self.a == self.out
        share = winners / winners.sum(axis=self.axes, keepdims=True)
        return ((grad * share).astype(self.a.dtype, copy=False),)


# ---------------------------------------------------------------- shape
class Reshape(Function):
    def forward(self, a, shape=()):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape an array of shape {a.shape} ({a.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None

    def backward(self, grad):
        return (grad.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, axes=None):
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, grad):
        # the inverse permutation undoes the transpose
        inverse = None if self.axes is None else tuple(np.argsort(self.axes))
        return (np.transpose(grad, inverse),)


class GetItem(Function):
    """``a[index]`` for any NumPy index (slices, integers, integer or boolean arrays)."""

    def forward(self, a, index=None):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, grad):
        full = np.zeros(self.shape, dtype=self.dtype)
        # add.at, not assignment: an element picked twice gets both gradients
        np.add.at(full, self.index, grad)
        return (full,)


class Take(Function):
    """``table[indices]``: entries of a 1-D table picked by an integer array of any shape.

    An entry picked by several indices receives the sum of their gradients, and an entry
    picked by none receives zero: the backward pass is one ``np.bincount`` (a scatter-add),

        d table[k] = Σ_{i : indices[i] = k} d out[i].

    Weight sharing (:mod:`tinysparse.compress`) builds a layer's weights as
    ``take(codebook, index)``; the engine knows nothing of codebooks.
    """

    def forward(self, table, indices=None):
        if table.ndim != 1:
            raise ValueError(f"take: the table must be 1-D, got shape {table.shape}")
        self.size, self.indices = table.shape[0], indices
        return table[indices]

    def backward(self, grad):
        summed = np.bincount(self.indices.ravel(), weights=grad.ravel(), minlength=self.size)
        return (summed.astype(grad.dtype, copy=False),)


class SparseMatVec(Function):
    """``A x`` for a sparse matrix ``A`` of shape (m, n), given by its non-zeros
    ``values[k] = A[rows[k], columns[k]]`` (any order; CSR order is the usual one), and a
    1-D ``x`` of length n. Both directions are one ``np.bincount`` (a scatter-add):

        (A x)_i     = Σ_{k : rows[k] = i}    values[k] · x[columns[k]],
        d x_j       = Σ_{k : columns[k] = j} values[k] · d out[rows[k]]     (Aᵀ d out).

    Training in a random subspace (:mod:`tinysparse.intrinsic`) builds the weights as
    ``θ₀ + P v`` with a sparse random ``P``; the engine knows nothing of subspaces.
    """

    def forward(self, x, rows=None, columns=None, values=None, n_rows=0):
        if x.ndim != 1:
            raise ValueError(f"sparse_matvec: x must be 1-D, got shape {x.shape}")
        self.rows, self.columns, self.values, self.n = rows, columns, values, x.shape[0]
        out = np.bincount(rows, weights=values * x[columns], minlength=n_rows)
        return out.astype(x.dtype, copy=False)

    def backward(self, grad):
        summed = np.bincount(self.columns, weights=self.values * grad[self.rows],
                             minlength=self.n)
        return (summed.astype(grad.dtype, copy=False),)


# ---------------------------------------------------------------- functions
def add(a, b) -> Tensor:
    """Elementwise ``a + b`` with broadcasting."""
    return Add.apply(a, b)


def sub(a, b) -> Tensor:
    """Elementwise ``a - b`` with broadcasting."""
    return Sub.apply(a, b)


def mul(a, b) -> Tensor:
    """Elementwise ``a * b`` with broadcasting."""
    return Mul.apply(a, b)


def div(a, b) -> Tensor:
    """Elementwise ``a / b`` with broadcasting."""
    return Div.apply(a, b)


def neg(a) -> Tensor:
    """Elementwise ``-a``."""
    return Neg.apply(a)


def pow(base, exponent) -> Tensor:  # noqa: A001 - the op is called pow
    """Elementwise ``base ** exponent``; either may be a tensor."""
    return Pow.apply(base, exponent)


def matmul(a, b) -> Tensor:
    """Matrix product ``a @ b`` (2-D, or stacks of matrices with broadcasting)."""
    return MatMul.apply(a, b)


def exp(a) -> Tensor:
    """Elementwise ``e ** a``."""
    return Exp.apply(a)


def log(a) -> Tensor:
    """Elementwise natural logarithm."""
    return Log.apply(a)


def sum(a, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes when None)."""
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes when None)."""
    return Mean.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    return Max.apply(a, axis=axis, keepdims=keepdims)


def reshape(a, shape) -> Tensor:
    """A tensor with the same data in a new shape (one axis may be -1)."""
    return Reshape.apply(a, shape=tuple(shape))


def transpose(a, axes=None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None)."""
    return Transpose.apply(a, axes=None if axes is None else tuple(axes))


def getitem(a, index) -> Tensor:
    """``a[index]`` with a gradient that flows back into the picked elements."""
    if isinstance(index, Tensor):
        index = index.data
    return GetItem.apply(a, index=index)


def take(table, indices) -> Tensor:
    """``table[indices]`` for a 1-D ``table`` and integer ``indices`` of any shape (the
    output has the shape of ``indices``); an entry's gradient is the sum of the gradients
    of the outputs that picked it."""
    indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got dtype {indices.dtype}")
    size = np.shape(table.data if isinstance(table, Tensor) else table)
    if indices.size and len(size) == 1 and (indices.min() < 0 or indices.max() >= size[0]):
        raise IndexError(f"take: indices must lie in [0, {size[0]}), found "
                         f"{indices.min()}..{indices.max()}")
    return Take.apply(table, indices=indices)


def sparse_matvec(x, rows, columns, values, n_rows: int) -> Tensor:
    """``A x`` for the sparse (n_rows, len(x)) matrix with non-zeros ``values`` at
    (``rows``, ``columns``); the gradient of ``x`` is ``Aᵀ`` times the output's."""
    rows, columns = np.asarray(rows), np.asarray(columns)
    values = np.asarray(values)
    if not rows.shape == columns.shape == values.shape or rows.ndim != 1:
        raise ValueError(f"sparse_matvec: rows, columns and values must be 1-D and of one "
                         f"length, got shapes {rows.shape}, {columns.shape}, {values.shape}")
    if rows.dtype.kind not in "iu" or columns.dtype.kind not in "iu":
        raise TypeError("sparse_matvec: rows and columns must be integers")
    n = np.shape(x.data if isinstance(x, Tensor) else x)[-1]
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows or columns.min() < 0
                      or columns.max() >= n):
        raise IndexError(f"sparse_matvec: an index lies outside the ({n_rows}, {n}) matrix")
    return SparseMatVec.apply(x, rows=rows, columns=columns, values=values, n_rows=n_rows)


# ---------------------------------------------------------------- Tensor's operators
# A Tensor's operators and methods are the ops above. They are attached here, where the
# ops are defined, so that tensor.py imports no op module (no import circle).
def _swapped(op):
    """``other ∘ self`` for the reflected operators (``2 - x`` calls ``x.__rsub__(2)``)."""

    def method(self, other):
        return op(other, self)

    method.__name__ = f"r{op.__name__}"
    return method


def _reshape_method(self, *shape) -> Tensor:
    """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    return reshape(self, shape)


def _transpose_method(self, *axes) -> Tensor:
    """``x.transpose()``, ``x.transpose(1, 0, 2)`` or ``x.transpose((1, 0, 2))``."""
    if len(axes) == 1 and isinstance(axes[0], tuple | list):
        axes = tuple(axes[0])
    return transpose(self, axes or None)


for _name, _method in {
    "__add__": add, "__radd__": _swapped(add), "__sub__": sub, "__rsub__": _swapped(sub),
    "__mul__": mul, "__rmul__": _swapped(mul), "__truediv__": div,
    "__rtruediv__": _swapped(div), "__neg__": neg, "__pow__": pow, "__rpow__": _swapped(pow),
    "__matmul__": matmul, "__rmatmul__": _swapped(matmul), "__getitem__": getitem,
    "sum": sum, "mean": mean, "max": max, "exp": exp, "log": log,
    "reshape": _reshape_method, "transpose": _transpose_method,
    "T": property(lambda self: transpose(self, None), doc="The transpose (axes reversed)."),
}.items():
    setattr(Tensor, _name, _method)
del _name, _method
