"""The compressed sparse row (CSR) layout of a masked weight, and its column (CSC) view.

Only the *structure* — where the non-zeros are — is built from the mask, once, when a
layer moves to the sparse kernels (:class:`~tinysparse.nn.SparseLinear`). The *values*
are gathered from the dense weight then (``structure.gather(weight)``) and from that
moment they are the layer's parameter: a vector of the kept weights, in CSR order, which
the optimiser updates like any other.

For a weight viewed as a (rows × cols) matrix (a convolution kernel (O, C, KH, KW) is the
(O × C·KH·KW) matrix that multiplies the im2col columns):

* ``indptr`` (rows + 1), ``indices`` (nnz): row i's non-zeros are in columns
  ``indices[indptr[i]:indptr[i+1]]``;
* ``positions`` (nnz): where each non-zero lives in the flat dense weight;
* ``t_indptr`` (cols + 1), ``t_indices`` (nnz), ``t_order`` (nnz): the same entries column
  by column — ``t_indices`` their rows, ``t_order`` their CSR position — for Wᵀ products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinysparse.sparse.mask import Mask


@dataclass(frozen=True)
class SparseStructure:
    """Where the non-zeros of a (rows × cols) masked matrix are, row- and column-wise."""

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    positions: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray
    t_order: np.ndarray

    @property
    def nnz(self) -> int:
        return len(self.indices)

    @property
    def density(self) -> float:
        return self.nnz / (self.shape[0] * self.shape[1])

    def gather(self, weight: np.ndarray) -> np.ndarray:
        """The current values of the non-zeros, in CSR order."""
        return weight.reshape(-1)[self.positions]

    def scatter(self, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A dense array of ``shape`` holding ``values`` at the non-zeros, zeros elsewhere."""
        dense = np.zeros(int(np.prod(shape)), dtype=values.dtype)
        dense[self.positions] = values
        return dense.reshape(shape)

    def to_dense(self, values: np.ndarray) -> np.ndarray:
        """The (rows × cols) matrix with these values (for checks and lessons)."""
        return self.scatter(values, self.shape)


def build_structure(keep: np.ndarray) -> SparseStructure:
    """CSR and CSC index arrays of a 2-D boolean keep-matrix."""
    rows, cols = keep.shape
    row_of, col_of = np.nonzero(keep)  # row-major order = CSR order
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=rows), out=indptr[1:])
    order = np.lexsort((row_of, col_of))  # by column, then row = CSC order
    t_indptr = np.zeros(cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(col_of, minlength=cols), out=t_indptr[1:])
    return SparseStructure(
        shape=(rows, cols),
        indptr=indptr,
        indices=col_of.astype(np.int64),
        positions=(row_of * cols + col_of).astype(np.int64),
        t_indptr=t_indptr,
        t_indices=row_of[order].astype(np.int64),
        t_order=order.astype(np.int64),
    )


def structure_of(mask: Mask) -> SparseStructure:
    """The sparse structure of a mask, viewed as a (shape[0] × rest) matrix: a
    convolution kernel (O, C, KH, KW) is the (O × C·KH·KW) matrix of its im2col product."""
    return build_structure(mask.keep.reshape(mask.shape[0], math.prod(mask.shape[1:])))
