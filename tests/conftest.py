"""Shared fixtures.

* The datasets are cached in a per-run temporary directory (``$TINYSPARSE_DATA``) so the
  tests never touch the user's cache and never need the network.
* Under pytest-xdist every worker uses one BLAS/OpenMP thread.
* ``torch`` is an oracle only: tests that need it use the ``torch`` fixture, which skips
  cleanly where PyTorch is not installed (CI installs it).
* Tests marked ``full`` (every lesson in its default, full mode: hours on 2 cores) or
  ``site`` (a built course website opened in headless Chromium) run only when the ``-m``
  expression names their marker (``python -m pytest -m full``); any other run, the
  README's included, deselects them. CI runs ``-m site`` after building the site.
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

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


# ---------------------------------------------------------------- opt-in markers
#: markers whose tests run only when the ``-m`` expression names them
OPT_IN_MARKERS = ("full", "site")


def _named_in_markexpr(config: pytest.Config, marker: str) -> bool:
    """Whether the ``-m`` expression names ``marker`` (``-m full``, ``-m "full and not
    slow"``, ...): only then do that marker's tests run."""
    return re.search(rf"\b{marker}\b", config.getoption("markexpr") or "") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a marker -m names selects (or, with "not full", deselects) its tests itself
    left_out = [m for m in OPT_IN_MARKERS if not _named_in_markexpr(config, m)]
    deselected = [item for item in items if any(item.get_closest_marker(m) for m in left_out)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        dropped = set(deselected)
        items[:] = [item for item in items if item not in dropped]


FULL_MODE_TIMES = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def full_mode_times(request, tmp_path_factory):
    """``record(lesson, seconds, passed)``: keeps a full-mode lesson's wall time in a JSON
    file, rewritten after each lesson (``$TINYSPARSE_FULL_TIMES``, else
    ``full-mode-times.json`` in pytest's temporary directory); the summary at the end of
    the run lists the times and the file."""
    given = os.environ.get("TINYSPARSE_FULL_TIMES")
    path = Path(given) if given else tmp_path_factory.mktemp("full-mode") / "full-mode-times.json"
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "lessons": {}}
    request.config.stash[FULL_MODE_TIMES] = {"path": path, "report": report}

    def record(lesson: str, seconds: float, passed: bool) -> None:
        report["lessons"][lesson] = {"seconds": round(seconds, 1), "passed": passed}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"{lesson}: {seconds:.1f} s in full mode ({'passed' if passed else 'failed'})")

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    times = config.stash.get(FULL_MODE_TIMES, None)
    if not times or not times["report"]["lessons"]:
        return
    terminalreporter.section("full-mode lesson times")
    for lesson, entry in times["report"]["lessons"].items():
        terminalreporter.write_line(f"{lesson:40} {entry['seconds']:9.1f} s  "
                                    f"{'passed' if entry['passed'] else 'FAILED'}")
    terminalreporter.write_line(f"written to {times['path']}")
