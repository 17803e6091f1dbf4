"""The Tensor: a NumPy array that remembers how it was made.

A :class:`Tensor` wraps an ``np.ndarray`` (``.data``). When it is the result of a
differentiable op, ``._ctx`` points at that op (a :class:`Function`), which keeps its
inputs and whatever it saved in the forward pass. :meth:`Tensor.backward` walks this graph
from the output back to the leaves in reverse topological order and hands each node's
gradient to the op that made it.

The ops themselves live in :mod:`tinysparse.autograd.ops` (arithmetic, reductions, shape)
and :mod:`tinysparse.autograd.nn_ops` (activations, losses, convolution, pooling); each
is one class with its ``forward`` and ``backward`` a few lines apart. Those modules also
give ``Tensor`` its operators (``+``, ``*``, ``@``, ...) and methods (``sum``,
``reshape``, ``relu``, ...), where the ops are defined: this module imports neither.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

_DEFAULT_DTYPE: np.dtype = np.dtype(np.float32)
_GRAD_ENABLED: bool = True


def get_default_dtype() -> np.dtype:
    """The floating dtype new tensors and parameters get (float32 unless changed)."""
    return _DEFAULT_DTYPE


def set_default_dtype(dtype: Any) -> None:
    """Set the floating dtype for new tensors and parameters: ``np.float32`` or ``np.float64``.

    Gradient checks and the PyTorch oracle tests run in float64 end to end.
    """
    global _DEFAULT_DTYPE
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    _DEFAULT_DTYPE = dtype


@contextlib.contextmanager
def default_dtype(dtype: Any):
    """Context manager: use ``dtype`` as the default inside the block."""
    previous = get_default_dtype()
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph for :meth:`Tensor.backward`."""
    return _GRAD_ENABLED


class no_grad(contextlib.ContextDecorator):
    """Turn graph recording off inside a ``with`` block (or a decorated function).

    Use it for evaluation and for in-place parameter updates: ops inside return tensors
    with ``requires_grad=False`` and keep no references to their inputs.
    """

    def __enter__(self) -> no_grad:
        global _GRAD_ENABLED
        self._previous = _GRAD_ENABLED
        _GRAD_ENABLED = False
        return self

    def __exit__(self, *exc: object) -> None:
        global _GRAD_ENABLED
        _GRAD_ENABLED = self._previous


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert ``data`` to an ndarray; floating NumPy arrays keep their dtype unless one is
    given. Python numbers, lists and integer/boolean arrays become the default float dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray | np.floating) and data.dtype.kind == "f":
        return np.asarray(data)
    return np.asarray(data, dtype=_DEFAULT_DTYPE)


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    Parameters
    ----------
    data : array_like
        The values. Floating NumPy arrays keep their dtype; everything else becomes the
        default dtype (float32, see :func:`set_default_dtype`) unless ``dtype`` is given.
    requires_grad : bool
        Whether :meth:`backward` should compute a gradient for this tensor.
    dtype : numpy dtype, optional
        Convert the data to this dtype.
    name : str, optional
        A label shown in ``repr`` (handy in lessons).

    Examples
    --------
    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "__weakref__")
    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        self.data: np.ndarray = as_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.requires_grad: bool = bool(requires_grad)
        self._ctx = None  # the Function that produced this tensor, if any
        self.name = name

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (inputs, parameters), not by an op."""
        return self._ctx is None

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        return self.data.item()

    def detach(self) -> Tensor:
        """A new leaf tensor sharing this tensor's data, cut off from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (sets ``.grad`` to None)."""
        self.grad = None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={type(self._ctx).__name__}" if self._ctx is not None else ""
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        return f"Tensor({body}{grad}{op}{label})"

    # --------------------------------------------------------------- backward
    def backward(self, grad: Any = None) -> None:
        """Compute the gradient of this tensor with respect to every leaf that needs one.

        The graph is sorted topologically (every node after all nodes that use it), then
        walked from this tensor back to the leaves. A node used several times receives
        the *sum* of the gradients from each use. Leaves accumulate into ``.grad`` across
        calls, as in PyTorch, so call ``zero_grad`` between training steps; intermediate
        tensors get this call's gradient in ``.grad`` for inspection.

        Parameters
        ----------
        grad : array_like, optional
            The gradient of some scalar with respect to this tensor. May be omitted when
            this tensor has one element (a loss); it is then 1.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input of the "
                "ops that made it has requires_grad=True (or it was made under no_grad)"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element tensor; this one "
                    f"has shape {self.shape}. Pass grad= of the same shape."
                )
            grad = np.ones_like(self.data)
        else:
            grad = as_array(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(grad): expected shape {self.shape}, got {grad.shape}"
                )

        grads: dict[int, np.ndarray] = {id(self): grad}
        for node in reversed(topological_order(self)):
            node_grad = grads.pop(id(node), None)
            if node_grad is None:
                continue
            if node._ctx is None:  # a leaf: accumulate across backward() calls
                node.grad = node_grad if node.grad is None else node.grad + node_grad
                continue
            node.grad = node_grad
            fn = node._ctx
            input_grads = fn.backward(node_grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, parent_grad in zip(fn.inputs, input_grads):
                if parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                if key in grads:  # the parent is used more than once: sum the uses
                    grads[key] = grads[key] + parent_grad
                else:
                    grads[key] = parent_grad

    # The arithmetic operators (+, -, *, /, **, @, [ ]) and the methods sum, mean, max,
    # reshape, transpose, T, exp, log, relu, tanh and sigmoid are the ops of ops.py and
    # nn_ops.py, attached to Tensor at the end of those modules.

    # Comparisons return plain boolean arrays: they have no gradient.
    def __lt__(self, other):
        return self.data < as_array(other)

    def __le__(self, other):
        return self.data <= as_array(other)

    def __gt__(self, other):
        return self.data > as_array(other)

    def __ge__(self, other):
        return self.data >= as_array(other)

    __hash__ = object.__hash__


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on (that requires grad), inputs before their users.

    An iterative depth-first search, so deep graphs do not hit Python's recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


class Function:
    """One differentiable op: ``forward`` on arrays, ``backward`` from the output's gradient.

    Subclasses implement

    * ``forward(self, *arrays, **options) -> np.ndarray``: compute the output; save on
      ``self`` whatever the backward pass needs;
    * ``backward(self, grad) -> tuple``: given dLoss/dOutput, return dLoss/dInput for each
      input, in order (``None`` for an input that needs no gradient; check
      ``self.needs_grad[i]`` to skip the work).

    Call an op with :meth:`apply`, which wraps arrays in tensors and records the graph.
    """

    inputs: tuple[Tensor, ...] = ()
    needs_grad: tuple[bool, ...] = ()

    def forward(self, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        """Run the op on tensors (or arrays/numbers) and, if needed, record it in the graph."""
        fn = cls()
        tensors = tuple(x if isinstance(x, Tensor) else _to_tensor(x, inputs) for x in inputs)
        out = Tensor.__new__(Tensor)
        try:
            out.data = fn.forward(*[t.data for t in tensors], **options)
        except ValueError as error:  # e.g. NumPy's broadcasting error: say which op
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"{cls.__name__} of shapes {shapes}: {error}") from error
        out.grad = out.name = out._ctx = None
        out.requires_grad = False
        if _GRAD_ENABLED:
            needs_grad = tuple([t.requires_grad for t in tensors])
            if True in needs_grad:
                fn.inputs = tensors
                fn.needs_grad = needs_grad
                out.requires_grad = True
                out._ctx = fn
        return out


def _to_tensor(x: Any, siblings: tuple) -> Tensor:
    """Wrap a number or array so it can enter an op; numbers take a sibling tensor's dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return Tensor(x)
    dtype = next((s.dtype for s in siblings if isinstance(s, Tensor)), None)
    return Tensor(x, dtype=dtype)
