"""Thread settings: tinysparse adds its defaults before NumPy loads, never overriding yours."""

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
    import os

    for name in threads.settings_for({}):
        assert name in os.environ  # set by `import tinysparse` in conftest.py (or by you)
