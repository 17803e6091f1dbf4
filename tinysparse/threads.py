"""Keep idle worker threads from stealing the CPU on small machines — without putting
them to sleep so deeply that every parallel kernel pays to wake them.

OpenBLAS (behind NumPy) and OpenMP (behind Numba's parallel kernels, and PyTorch) each keep
a pool of worker threads. What an idle worker does decides the speed of mixed code:

* it **spins** (busy-waits) by default. OpenBLAS's workers spin for about 0.1 s after each
  product: on a 2-core machine they then sit on the core a Numba kernel needs, and an
  alternating NumPy product + Numba kernel was measured 10x slower (8.0 ms instead of
  0.81 ms per pair). ``OPENBLAS_THREAD_TIMEOUT=4``, the shortest timeout OpenBLAS allows,
  sends them to sleep almost at once.
* it **sleeps**. Waking a sleeping thread is slow on virtual machines: a parallel Numba
  kernel that finds its worker asleep was measured 50-150 µs slower (on a 2-vCPU cloud
  VM), more than a whole small sparse kernel takes. With ``OMP_WAIT_POLICY=PASSIVE``
  (sleep at once) and every kernel parallel, a pruned LeNet-300-100 training step was 2x
  slower than with the settings below.
* so OpenMP workers get a **short spin**: ``GOMP_SPINCOUNT=10000`` (GNU OpenMP, which Numba
  and PyTorch use on Linux) keeps them awake for a fraction of a millisecond — long
  enough for the next kernel, short enough not to hold a core for long while NumPy's BLAS
  needs it — and kernels too small to be worth a second core run in one thread
  (``PARALLEL_FROM`` in ``kernels/numba_kernels.py``). Measured: the dense LeNet-5 step
  (Numba im2col and pooling between BLAS products) 13.7 ms vs 14.9 ms with
  ``OMP_WAIT_POLICY=PASSIVE``; the pruned LeNet-300-100 step the same either way.

These variables are read once, when the libraries load, so they must be set *before*
NumPy is imported. ``import tinysparse`` does this, keeping any value you set yourself
(and if you set ``OMP_WAIT_POLICY``, tinysparse leaves OpenMP's spinning to you). If
NumPy was imported first, ``import tinysparse`` warns once, pointing at your import line.
Results do not change: only how idle threads wait.
"""

from __future__ import annotations

import os
import sys
import warnings

SETTINGS = {"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "10000"}


def settings_for(environment: dict[str, str]) -> dict[str, str]:
    """The variables tinysparse would add to ``environment`` (never one already set; no
    spin count when the user chose an OpenMP wait policy)."""
    wanted = dict(SETTINGS)
    if "OMP_WAIT_POLICY" in environment:
        del wanted["GOMP_SPINCOUNT"]
    return {name: value for name, value in wanted.items() if name not in environment}


def configure() -> None:
    """Set the thread variables (keeping any the user set) before NumPy loads.

    ``tinysparse/__init__.py`` calls this first thing, so it runs once, at ``import
    tinysparse``. If NumPy is already imported and a variable is missing, it is too late for
    OpenBLAS to see it: warn, attributed to the line that imported tinysparse
    (``stacklevel=3``: this function, ``tinysparse/__init__.py``, then the importer; the
    warnings module skips the frames of Python's import machinery).
    """
    missing = settings_for(dict(os.environ))
    too_late = "numpy" in sys.modules and bool(missing)
    os.environ.update(missing)
    if too_late and os.environ.get("TINYSPARSE_QUIET_THREADS") != "1":
        settings = " and ".join(f"{name}={value}" for name, value in SETTINGS.items())
        warnings.warn(
            "numpy was imported before tinysparse, so idle BLAS/OpenMP threads may spin "
            "or sleep at the wrong moments and slow the compiled kernels down on small "
            f"machines. Import tinysparse first, or set {settings} in the environment "
            "(set TINYSPARSE_QUIET_THREADS=1 to silence this).",
            RuntimeWarning,
            stacklevel=3,
        )
