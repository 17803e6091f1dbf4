"""Masks, the CSR layout, sparse ops and the dense/sparse dispatch.

The kernels themselves (NumPy references and Numba twins) are in :mod:`tinysparse.kernels`.
"""

from tinysparse.sparse.csr import (
    SparseGradient,
    SparseStructure,
    build_structure,
    structure_of,
)
from tinysparse.sparse.dispatch import (
    DEFAULT_DENSITY_THRESHOLD,
    density_threshold,
    density_threshold_set,
    set_density_threshold,
    use_sparse_path,
)
from tinysparse.sparse.mask import Mask
from tinysparse.sparse.ops import SparseConv2d, SparseLinear, sparse_conv2d, sparse_linear

__all__ = [
    "DEFAULT_DENSITY_THRESHOLD", "Mask", "SparseConv2d", "SparseGradient", "SparseLinear",
    "SparseStructure", "build_structure", "density_threshold", "density_threshold_set",
    "set_density_threshold", "sparse_conv2d", "sparse_linear", "structure_of",
    "use_sparse_path",
]
