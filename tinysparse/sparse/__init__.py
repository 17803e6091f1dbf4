"""Masks, the CSR layout, the sparse ops and when a layer moves to them.

The kernels themselves (NumPy references and Numba twins) are in :mod:`tinysparse.kernels`;
the layers that run them (:class:`~tinysparse.nn.SparseLinear`,
:class:`~tinysparse.nn.SparseConv2d`) and the conversions :func:`~tinysparse.nn.to_sparse`
and :func:`~tinysparse.nn.to_dense` are in :mod:`tinysparse.nn`.
"""

from tinysparse.sparse.csr import SparseStructure, build_structure, structure_of
from tinysparse.sparse.dispatch import (
    DEFAULT_DENSITY_THRESHOLD,
    density_threshold,
    density_threshold_set,
    set_density_threshold,
)
from tinysparse.sparse.mask import Mask
from tinysparse.sparse.ops import sparse_conv2d, sparse_linear

__all__ = [
    "DEFAULT_DENSITY_THRESHOLD", "Mask", "SparseStructure", "build_structure",
    "density_threshold", "density_threshold_set", "set_density_threshold", "sparse_conv2d",
    "sparse_linear", "structure_of",
]
