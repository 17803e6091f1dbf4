"""Thread settings: tinysparse adds its defaults before NumPy loads, never overriding yours,
and warns once, at the user's import line, when NumPy came first."""

import os
import subprocess
import sys

import pytest

from tinysparse import threads


def test_defaults_fill_an_empty_environment():
    assert threads.settings_for({}) == threads.SETTINGS


def test_a_variable_the_user_set_is_kept():
    assert "OPENBLAS_THREAD_TIMEOUT" not in threads.settings_for({"OPENBLAS_THREAD_TIMEOUT": "8"})
    assert "GOMP_SPINCOUNT" not in threads.settings_for({"GOMP_SPINCOUNT": "0"})


def test_a_chosen_openmp_wait_policy_is_left_alone():
    # GOMP_SPINCOUNT would override OMP_WAIT_POLICY inside GNU OpenMP
    added = threads.settings_for({"OMP_WAIT_POLICY": "PASSIVE"})
    assert "GOMP_SPINCOUNT" not in added and "OPENBLAS_THREAD_TIMEOUT" in added


def test_this_process_got_the_settings():
    for name in threads.settings_for({}):
        assert name in os.environ  # set by `import tinysparse` in conftest.py (or by you)


# ---------------------------------------------------------------- the warning when NumPy came first

WARNING = "numpy was imported before tinysparse"
KERNEL_CALL = "tinysparse.kernels.relu(__import__('numpy').ones(3))"


def run_python(code):
    """stderr of ``python -W always -c code`` in an environment without the thread settings
    (this test process has them: conftest.py imported tinysparse)."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in threads.SETTINGS and name != "TINYSPARSE_QUIET_THREADS"}
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("code", ["import numpy; import tinysparse",
                                  f"import numpy; import tinysparse; {KERNEL_CALL}"])
def test_numpy_first_warns_once_at_the_users_import(code):
    stderr = run_python(code)
    assert stderr.count(WARNING) == 1, stderr
    assert stderr.startswith(f"<string>:1: RuntimeWarning: {WARNING}"), stderr


def test_tinysparse_first_does_not_warn():
    assert WARNING not in run_python(f"import tinysparse; import numpy; {KERNEL_CALL}")
