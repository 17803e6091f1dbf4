"""Shared fixtures.

* The datasets are cached in a per-run temporary directory (``$TINYSPARSE_DATA``) so the
  tests never touch the user's cache and never need the network.
* ``torch`` is an oracle only: tests that need it use the ``torch`` fixture, which skips
  cleanly where PyTorch is not installed (CI installs it).
"""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("TINYSPARSE_DATA", tempfile.mkdtemp(prefix="tinysparse-test-data-"))

import tinysparse  # noqa: E402,F401  (configures threads before NumPy loads)


@pytest.fixture(scope="session")
def torch():
    """The torch module, or a skip where it is not installed."""
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
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
