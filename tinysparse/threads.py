"""Keep idle worker threads from stealing the CPU on small machines.

OpenBLAS (behind NumPy), OpenMP (behind Numba's parallel kernels and PyTorch) each keep a
pool of worker threads. By default an idle worker *spins* for a while, waiting for more
work. On a 2-core machine, when a NumPy matrix product is followed by a Numba kernel, the
BLAS workers spin on the cores the kernel needs: an alternating pair was measured 10x
slower (8.0 ms instead of 0.81 ms). Telling the workers to sleep when idle fixes it:

* ``OMP_WAIT_POLICY=PASSIVE`` for OpenMP pools;
* ``OPENBLAS_THREAD_TIMEOUT=4`` for OpenBLAS's own pthreads: idle workers sleep after
  2**4 cycles, the shortest timeout OpenBLAS allows.

Both are read once, when the libraries load, so they must be set *before* NumPy is
imported. ``import tinysparse`` does this (unless you set them yourself); if NumPy was
imported first, a warning says so when the compiled kernels first load. Results do not
change: only how idle threads wait.
"""

from __future__ import annotations

import os
import sys
import warnings

SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}


_too_late = False  # True when NumPy loaded before we could set the variables


def configure() -> None:
    """Set the thread variables (keeping any the user set) before NumPy loads, and remember
    whether it was too late for that (NumPy already imported, variables not set)."""
    global _too_late
    already_set = all(name in os.environ for name in SETTINGS)
    _too_late = "numpy" in sys.modules and not already_set
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)


def check_before_numba() -> None:
    """Warn (once, when the compiled kernels load) if the settings came too late."""
    if _too_late and os.environ.get("TINYSPARSE_QUIET_THREADS") != "1":
        warnings.warn(
            "numpy was imported before tinysparse, so idle BLAS threads may spin and slow "
            "the compiled kernels down on small machines. Import tinysparse first, or set "
            "OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 in the environment "
            "(set TINYSPARSE_QUIET_THREADS=1 to silence this).",
            RuntimeWarning,
            stacklevel=4,
        )
