"""Masks, sparse formats and sparse kernels (the readable NumPy path beside Numba)."""

from tinysparse.sparse.mask import Mask

__all__ = ["Mask"]
