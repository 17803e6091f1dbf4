"""When does a pruned layer move to the sparse kernels instead of the masked dense path?

Unstructured sparsity only pays at high sparsity: below the *break-even* point, a dense
BLAS product that multiplies the zeros too is faster than any sparse kernel. Pruning
(:func:`tinysparse.prune.apply_masks`, which every pruning method ends with) replaces a
masked Linear or Conv2d by its sparse twin when the mask's **density** (fraction kept) is
at most :func:`density_threshold` — by default 0.2 (80% sparsity), from the break-even
measured by ``benchmarks/sparse_kernels.py`` on a 2-core machine. Both paths give the
same results (the tests hold them equal); only the speed differs.

Change it with :func:`set_density_threshold` (0 keeps every layer dense, 1 sends every
masked layer to the sparse kernels), for a block of code with
``with density_threshold_set(0.0): ...``, or with the environment variable
``TINYSPARSE_DENSITY_THRESHOLD``; it applies from the next pruning step on.
:func:`tinysparse.nn.to_sparse` and :func:`tinysparse.nn.to_dense` move layers by hand.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

DEFAULT_DENSITY_THRESHOLD = 0.2
_threshold: float | None = None


def density_threshold() -> float:
    """Masks at or below this density use the sparse kernels."""
    return _default_threshold() if _threshold is None else _threshold


@functools.cache
def _default_threshold() -> float:
    """The default switch point, or ``TINYSPARSE_DENSITY_THRESHOLD`` (read once)."""
    value = os.environ.get("TINYSPARSE_DENSITY_THRESHOLD")
    if value is None:
        return DEFAULT_DENSITY_THRESHOLD
    try:
        density = float(value)
    except ValueError:
        density = -1.0
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"TINYSPARSE_DENSITY_THRESHOLD: expected a number in [0, 1], got "
                         f"{value!r}")
    return density


def set_density_threshold(density: float | None) -> None:
    """Set the switch point (a density in [0, 1]); None restores the default."""
    global _threshold
    if density is not None and not 0.0 <= density <= 1.0:
        raise ValueError(f"density threshold: expected a number in [0, 1], got {density}")
    _threshold = density


@contextlib.contextmanager
def density_threshold_set(density: float | None) -> Iterator[None]:
    """Use ``density`` as the switch point inside a ``with`` block, then restore the
    previous setting."""
    global _threshold
    previous = _threshold
    set_density_threshold(density)
    try:
        yield
    finally:
        _threshold = previous
