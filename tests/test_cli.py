"""The tinysparse command line."""

import json
import subprocess
import sys

import pytest

from tinysparse.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_is_deterministic_and_saves(capsys, tmp_path):
    args = ["train", "--model", "mlp", "--hidden", "32", "--epochs", "1", "--seed", "3",
            "--json"]
    code, first, _ = run_cli(capsys, *args)
    assert code == 0
    code, second, _ = run_cli(capsys, *args, "--save", str(tmp_path / "m.npz"))
    result = json.loads(first)
    assert 0.5 < result["test_accuracy"] <= 1.0
    assert {"model", "dataset", "seed", "test_accuracy", "train_loss"} <= set(result)
    saved = json.loads(second)
    assert saved.pop("saved_to").endswith("m.npz")
    assert saved == result  # same seed, same numbers


def test_train_table(capsys):
    code, out, _ = run_cli(capsys, "train", "--model", "mlp", "--hidden", "16", "--epochs",
                           "2", "--quiet")
    assert code == 0 and "train loss" in out and "test accuracy" in out


def test_demo_json(capsys):
    code, out, _ = run_cli(capsys, "demo", "--epochs", "1", "--json")
    result = json.loads(out)
    assert code == 0 and result["command"] == "demo" and result["test_accuracy"] > 0.8


@pytest.mark.parametrize("argv,expected", [
    (["train", "--model", "resnet"], "choose from 'lenet300', 'lenet5', 'mlp'"),
    (["train", "--dataset", "cifar"], "choose from 'mnist', 'mnist-5k'"),
    (["train", "--epochs", "-1"], "expected a positive integer"),
    (["train", "--hidden", "a,b"], "comma-separated integers"),
    (["frobnicate"], "invalid choice"),
])
def test_wrong_arguments_get_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert expected in err and len(err.strip().splitlines()) == 1


def test_runtime_errors_are_one_line_without_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSPARSE_DATA", str(tmp_path))
    monkeypatch.setenv("TINYSPARSE_MNIST_MIRRORS", "http://127.0.0.1:9/")
    result = subprocess.run(
        [sys.executable, "-m", "tinysparse", "train", "--dataset", "mnist", "--quiet"],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "--dataset mnist-5k" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_prune_json_reports_the_interface_keys(capsys):
    code, out, _ = run_cli(capsys, "prune", "--model", "mlp", "--hidden", "32", "--epochs", "1",
                           "--sparsity", "0.8", "--rounds", "2", "--retrain-epochs", "1",
                           "--json")
    result = json.loads(out)
    assert code == 0
    for key in ("dense_test_accuracy", "pruned_test_accuracy", "test_accuracy", "sparsity",
                "layers"):
        assert key in result
    assert result["sparsity"] == pytest.approx(0.8, abs=1e-4)
    assert set(result["layers"]) == {"fc1.weight", "fc2.weight"}


def test_prune_second_order_methods(capsys):
    base = ["prune", "--model", "mlp", "--hidden", "8", "--epochs", "1", "--json",
            "--calibration", "100", "--retrain-epochs", "0", "--schedule", "oneshot"]
    code, out, _ = run_cli(capsys, *base, "--method", "obd", "--scope", "layer")
    result = json.loads(out)
    assert code == 0 and "predicted_increase" in result and "actual_increase" in result
    code, out, _ = run_cli(capsys, *base, "--method", "obs", "--scope", "global",
                           "--sparsity", "0.5")
    result = json.loads(out)
    assert code == 0 and result["predicted_increase"] >= 0
    code, out, _ = run_cli(capsys, *base, "--method", "obs-layerwise", "--scope", "layer")
    assert code == 0 and "layer_relative_error" in json.loads(out)


def test_prune_refuses_full_obs_on_lenet300(capsys):
    code, _, err = run_cli(capsys, "prune", "--method", "obs", "--scope", "global",
                           "--epochs", "1", "--schedule", "oneshot", "--quiet")
    assert code == 1 and "obs-layerwise" in err and "Traceback" not in err


def test_lottery_json(capsys):
    code, out, _ = run_cli(capsys, "lottery", "--rounds", "1", "--epochs", "1",
                           "--controls", "reinit", "--json")
    result = json.loads(out)
    assert code == 0 and len(result["per_round"]) == 2
    last = result["per_round"][-1]
    assert last["remaining"] == pytest.approx(0.8, abs=0.01)
    assert {"ticket", "reinit", "supermask_large_final"} <= set(last)
    assert "early_stop_iteration_mean" in last["ticket"]


def test_bench_json(capsys):
    code, out, _ = run_cli(capsys, "bench", "--json")
    result = json.loads(out)
    assert code == 0 and result["records"]
    assert {"benchmark", "implementation", "median_seconds"} <= set(result["records"][0])
    assert "train_step_sparse_over_dense" in result["ratios"]
