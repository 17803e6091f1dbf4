"""Array kernels, each twice: a readable NumPy reference and a compiled Numba twin.

The functions exported here dispatch to the Numba versions when Numba is available and
``TINYSPARSE_DISABLE_NUMBA`` is not ``1``; otherwise (and always for the tests that hold
the two equal) the NumPy references in :mod:`.activations`, :mod:`.im2col`,
:mod:`.sparse_reference` and :mod:`.optimizers` run.
``NUMBA_DISABLE_JIT=1`` runs the Numba versions as plain Python — slow, but it lets the
test suite check their loop logic without a compiler.

This package imports nothing else of tinysparse: autograd (convolutions), sparse (formats,
sparse ops), optim (update rules) and prune (layer-wise OBS) sit on top of it.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

from tinysparse.kernels import activations as _activations_reference
from tinysparse.kernels import im2col as _im2col_reference
from tinysparse.kernels import optimizers as _optimizers_reference
from tinysparse.kernels import sparse_reference as _sparse_reference

KERNELS = (
    "relu", "relu_backward", "im2col", "col2im", "max_pool_forward", "max_pool_backward",
    "spmm", "spmm_transposed", "sddmm", "spmv", "spmv_layers",
    "sgd_update", "adam_update",
    "obs_rows_greedy",
)


@functools.cache
def numba_enabled() -> bool:
    """Whether the compiled kernels are used (Numba installed, and not disabled by
    ``TINYSPARSE_DISABLE_NUMBA=1`` in the environment when the first kernel ran)."""
    if os.environ.get("TINYSPARSE_DISABLE_NUMBA") == "1":
        return False
    return _numba_module() is not None


@functools.cache
def _numba_module() -> ModuleType | None:
    try:
        return importlib.import_module("tinysparse.kernels.numba_kernels")
    except ImportError:
        return None


def reference(name: str):
    """The NumPy reference implementation of kernel ``name``."""
    for module in (_activations_reference, _im2col_reference, _sparse_reference,
                   _optimizers_reference):
        if hasattr(module, name):
            return getattr(module, name)
    raise KeyError(f"no kernel {name!r}; kernels are {list(KERNELS)}")


def compiled(name: str):
    """The Numba implementation of kernel ``name`` (ImportError without Numba)."""
    module = _numba_module()
    if module is None:
        raise ImportError("numba is not installed")
    return getattr(module, name)


def implementation(name: str):
    """The implementation of ``name`` that runs now (compiled if enabled, else reference)."""
    return compiled(name) if numba_enabled() else reference(name)


def one_thread(name: str):
    """The implementation of ``name`` that runs in one thread: the compiled kernel's
    one-thread twin where it has one (``.serial``), else :func:`implementation`. For
    callers that know their inputs are small (one prediction: :mod:`tinysparse.inference`),
    where waking a second thread costs more than the kernel."""
    kernel = implementation(name)
    return getattr(kernel, "serial", kernel)


def _dispatcher(name: str):
    def kernel(*args):
        return implementation(name)(*args)

    kernel.__name__ = name
    kernel.__doc__ = reference(name).__doc__
    return kernel


relu = _dispatcher("relu")
relu_backward = _dispatcher("relu_backward")
im2col = _dispatcher("im2col")
col2im = _dispatcher("col2im")
max_pool_forward = _dispatcher("max_pool_forward")
max_pool_backward = _dispatcher("max_pool_backward")
spmm = _dispatcher("spmm")
spmm_transposed = _dispatcher("spmm_transposed")
sddmm = _dispatcher("sddmm")
spmv = _dispatcher("spmv")
spmv_layers = _dispatcher("spmv_layers")
sgd_update = _dispatcher("sgd_update")
adam_update = _dispatcher("adam_update")
obs_rows_greedy = _dispatcher("obs_rows_greedy")
output_size = _im2col_reference.output_size

__all__ = [*KERNELS, "compiled", "implementation", "numba_enabled", "one_thread",
           "output_size", "reference"]
