"""Masks: which weights of a parameter are kept (1) and which are pruned (0).

A :class:`Mask` is an explicit, validated, read-only 0/1 array with the shape of the
parameter it belongs to. The layer that owns the parameter applies it in the forward pass
(``weight * mask``), so the gradient of every pruned weight is exactly zero; the optimizers
re-apply it after each step, so momentum, Adam's moments and weight decay cannot bring a
pruned weight back. A layer on the sparse kernels (:class:`~tinysparse.nn.SparseLinear`)
stores only the weights its mask keeps, so nothing can regrow there at all.

Vocabulary (used everywhere in tinysparse): ``sparsity`` is the fraction of zeros,
``density = 1 - sparsity`` the fraction kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Mask:
    """A 0/1 keep-mask for one parameter.

    Parameters
    ----------
    keep : array_like
        Booleans, or numbers that are exactly 0 or 1. 1 (True) keeps a weight.

    Examples
    --------
    >>> m = Mask([[1, 0], [0, 0]])
    >>> m.sparsity, m.density, m.kept
    (0.75, 0.25, 1)
    """

    __slots__ = ("_keep", "_kept", "_float_cache")

    def __init__(self, keep: Any) -> None:
        array = np.asarray(keep.keep if isinstance(keep, Mask) else keep)
        if array.dtype != np.bool_:
            if array.dtype.kind not in "iuf":
                raise TypeError(f"keep: expected booleans or 0/1 numbers, got dtype {array.dtype}")
            if not np.all((array == 0) | (array == 1)):
                bad = array[(array != 0) & (array != 1)].ravel()[:3]
                raise ValueError(f"keep: a mask holds only 0 and 1, found values such as {bad}")
            array = array == 1
        array = array.copy()
        array.flags.writeable = False
        self._keep = array
        self._kept = int(np.count_nonzero(array))  # masks are immutable: count once
        self._float_cache: dict[np.dtype, np.ndarray] = {}

    @classmethod
    def ones(cls, shape: tuple[int, ...]) -> Mask:
        """A mask that keeps everything."""
        return cls(np.ones(shape, dtype=bool))

    # ---------------------------------------------------------------- views
    @property
    def keep(self) -> np.ndarray:
        """The read-only boolean array (True = kept)."""
        return self._keep

    @property
    def shape(self) -> tuple[int, ...]:
        return self._keep.shape

    @property
    def size(self) -> int:
        return self._keep.size

    @property
    def kept(self) -> int:
        """Number of weights kept (non-zeros allowed)."""
        return self._kept

    @property
    def pruned(self) -> int:
        """Number of weights pruned."""
        return self.size - self.kept

    @property
    def sparsity(self) -> float:
        """Fraction of weights pruned."""
        return self.pruned / self.size if self.size else 0.0

    @property
    def density(self) -> float:
        """Fraction of weights kept: ``1 - sparsity``."""
        return 1.0 - self.sparsity

    def as_float(self, dtype: Any) -> np.ndarray:
        """The mask as 0.0/1.0 in ``dtype`` (cached: it is multiplied in every forward pass)."""
        dtype = np.dtype(dtype)
        if dtype not in self._float_cache:
            values = self._keep.astype(dtype)
            values.flags.writeable = False
            self._float_cache[dtype] = values
        return self._float_cache[dtype]

    def apply(self, array: np.ndarray) -> np.ndarray:
        """``array`` with pruned entries set to zero (a new array)."""
        return array * self.as_float(array.dtype)

    def check_shape(self, shape: tuple[int, ...], what: str = "parameter") -> None:
        """Raise a clear error when this mask does not fit a parameter of ``shape``."""
        if tuple(shape) != self.shape:
            raise ValueError(
                f"mask of shape {self.shape} does not fit {what} of shape {tuple(shape)}"
            )

    def __and__(self, other: Mask) -> Mask:
        """Keep only what both masks keep (successive prunes only ever add zeros)."""
        other = other if isinstance(other, Mask) else Mask(other)
        other.check_shape(self.shape, "the mask")
        return Mask(self._keep & other.keep)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mask) and np.array_equal(self._keep, other.keep)

    __hash__ = None  # masks are compared by value

    def __repr__(self) -> str:
        return f"Mask(shape={self.shape}, kept={self.kept}, sparsity={self.sparsity:.4f})"
