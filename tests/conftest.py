"""Shared fixtures.

* The datasets are cached in a per-run temporary directory (``$TINYSPARSE_DATA``) so the
  tests never touch the user's cache and never need the network.
* Under pytest-xdist every worker uses one BLAS/OpenMP thread.
* ``torch`` is an oracle only: tests that need it use the ``torch`` fixture, which skips
  cleanly where PyTorch is not installed (CI installs it).
"""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("TINYSPARSE_DATA", tempfile.mkdtemp(prefix="tinysparse-test-data-"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes share the cores: one thread each, or BLAS thread pools
    # oversubscribe the machine (notebook kernels inherit these variables too).
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "NUMBA_NUM_THREADS"):
        os.environ[variable] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # in case NumPy was loaded before this file
    except ImportError:
        pass

import tinysparse  # noqa: E402,F401  (configures threads before NumPy loads)


@pytest.fixture(scope="session")
def torch():
    """The torch module, or a skip where it is not installed."""
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    return torch


@pytest.fixture
def float64():
    """Run the test with float64 as the default dtype."""
    from tinysparse.autograd import default_dtype

    with default_dtype("float64"):
        yield


@pytest.fixture(scope="session")
def mnist5k():
    from tinysparse.data import mnist_5k

    return mnist_5k()
