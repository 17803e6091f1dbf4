"""The tinysparse command line."""

import json
import subprocess
import sys

import numpy as np
import pytest

import tinysparse as ts
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
    (["train", "--dataset", "cifar"], "choose from 'mnist-5k', 'mnist'"),
    (["train", "--epochs", "-1"], "argument --epochs: expected a positive integer, got '-1'"),
    (["train", "--epochs", "abc"], "argument --epochs: expected a positive integer, got 'abc'"),
    (["train", "--lr", "nan"], "argument --lr: expected a positive number, got 'nan'"),
    (["train", "--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["prune", "--sparsity", "1"], "argument --sparsity: expected a number in [0, 1), got '1'"),
    (["prune", "--output-sparsity", "5"], "argument --output-sparsity: expected a number in"),
    (["prune", "--retrain-epochs", "-2"], "argument --retrain-epochs: expected an integer >= 0"),
    (["lottery", "--controls", "reinit,luck"], "unknown controls ['luck']"),
    (["lottery", "--rate", "0"], "argument --rate: expected a number in (0, 1), got '0'"),
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


@pytest.fixture
def no_training(monkeypatch):
    """Make any training fail loudly: the checks must come first."""
    import tinysparse.cli.common
    import tinysparse.distill
    import tinysparse.prune.lottery

    def refuse(*args, **kwargs):
        raise AssertionError("training started although the arguments were wrong")

    monkeypatch.setattr(tinysparse.cli.common, "fit", refuse)
    monkeypatch.setattr(tinysparse.cli.demo, "fit", refuse)
    monkeypatch.setattr(tinysparse.prune.lottery, "fit", refuse)
    monkeypatch.setattr(tinysparse.distill, "fit", refuse)


@pytest.mark.parametrize("argv,expected", [
    (["prune", "--method", "obs", "--scope", "global", "--schedule", "oneshot"],
     "--method obs: full OBS keeps an n x n inverse Hessian: this model has n = 266,610"),
    (["prune", "--method", "obs", "--scope", "layer"], "--scope: method 'obs' takes scope global"),
    (["prune", "--method", "obs-layerwise", "--schedule", "iterative"],
     "--schedule: method 'obs-layerwise' follows schedule oneshot"),
    (["prune", "--method", "obd", "--hessian", "fisher"],
     "--hessian: method 'obd' takes one of ['gauss-newton', 'lecun', 'exact']"),
    (["prune", "--method", "magnitude", "--hessian", "lecun"], "--hessian: method 'magnitude'"),
    (["prune", "--method", "magnitude", "--damping", "0.1"],
     "--damping: method 'magnitude' has no Hessian"),
    (["prune", "--method", "magnitude", "--calibration", "10"],
     "--calibration feeds a Hessian; --method magnitude needs none"),
    (["prune", "--method", "obs-layerwise", "--schedule", "oneshot", "--output-sparsity", "0.5"],
     "--output-sparsity: method 'obs-layerwise' takes per-layer sparsities at all"),
    (["prune", "--schedule", "gradual", "--retrain-epochs", "0"],
     "--retrain-epochs: the gradual schedule prunes while training"),
    (["prune", "--schedule", "oneshot", "--rounds", "3"], "--rounds counts the rounds"),
    (["train", "--hidden", "5"], "--hidden sets the layers of --model mlp; --model lenet300"),
    (["lottery", "--model", "lenet5", "--hidden", "5"], "--hidden sets the layers"),
    (["train", "--save", ""], "--save: path: expected a file name"),
    (["train", "--save", "/proc/x.npz"], "--save: /proc/x.npz: cannot write in /proc"),
    (["prune", "--save", "/proc/x.npz"], "--save: /proc/x.npz: cannot write in /proc"),
])
def test_arguments_that_do_not_go_together_fail_before_any_training(argv, expected, capsys,
                                                                    no_training):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--quiet"])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2, err
    assert expected in err and len(err.strip().splitlines()) == 1, err


def test_save_to_a_directory_fails_before_training(tmp_path, capsys, no_training):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--save", str(tmp_path / "model.npz"), "--quiet"])
    assert exit_info.value.code == 2
    assert "is a directory" in capsys.readouterr().err


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


def test_a_save_that_fails_after_training_keeps_the_model_and_names_the_path(
        tmp_path, monkeypatch, capsys):
    import tempfile

    import tinysparse.cli.common

    monkeypatch.setattr(tinysparse.cli.common, "check_writable", lambda path: path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, err = run_cli(capsys, "train", "--model", "mlp", "--hidden", "8", "--epochs",
                             "1", "--save", "/proc/lost.npz", "--json")
    result = json.loads(out)  # the result is still printed
    assert code == 1 and "could not write /proc/lost.npz" in err
    kept = result["saved_to"]
    assert kept.startswith(str(tmp_path)) and kept in err and "Traceback" not in err
    model = ts.load(kept)
    assert ts.evaluate(model, *ts.load_dataset("mnist-5k").test)["accuracy"] == pytest.approx(
        result["test_accuracy"])


def test_a_training_that_ends_worse_says_so_in_its_output(capsys):
    argv = ["train", "--model", "mlp", "--hidden", "32", "--epochs", "2", "--optimizer",
            "sgd", "--lr", "30"]
    code, out, err = run_cli(capsys, *argv, "--json")
    result = json.loads(out)
    assert code == 0 and "ended worse than it started" in result["warnings"][0], result
    code, out, err = run_cli(capsys, *argv, "--quiet")
    assert "warning: training ended worse" in out and "TrainingWarning" not in err


def test_sparsify_targeted_dropout_reports_like_prune(capsys):
    code, out, _ = run_cli(capsys, "sparsify", "--method", "targeted-dropout", "--model", "mlp",
                           "--hidden", "32", "--epochs", "1", "--sparsity", "0.8",
                           "--baseline", "--json")
    result = json.loads(out)
    assert code == 0 and result["method"] == "targeted-dropout" and result["gamma"] == 0.8
    for key in ("test_accuracy", "sparsity", "compression", "layers", "unpruned_test_accuracy",
                "pruned_test_accuracy", "baseline_test_accuracy"):
        assert key in result, key
    assert result["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert result["test_accuracy"] == result["pruned_test_accuracy"]


@pytest.mark.parametrize("argv,expected", [
    (["--method", "targeted-dropout", "--alpha", "1.5"], "argument --alpha: alpha: expected"),
    (["--method", "targeted-dropout", "--sparsity", "1"], "argument --sparsity: gamma: expected"),
    (["--method", "targeted-dropout", "--variant", "row"], "invalid choice: 'row'"),
    (["--method", "dropin"], "invalid choice: 'dropin'"),
    (["--method", "group-lasso", "--lambda", "-1"], "argument --lambda: lambda: expected"),
    (["--method", "group-lasso", "--norm-threshold", "1"],
     "argument --norm-threshold: threshold: expected a number in [0, 1), got '1'"),
    (["--method", "group-lasso", "--groups", "rows"], "invalid choice: 'rows'"),
    (["--method", "group-lasso", "--finetune-epochs", "-2"],
     "argument --finetune-epochs: finetune_epochs: expected"),
    (["--method", "group-lasso", "--compare-norm-removal", "perhaps"],
     "compare_norm_removal: expected yes or no"),
    (["--method", "l0", "--norm-threshold", "0.1"],
     "--norm-threshold is an option of group-lasso, not of --method l0"),
])
def test_sparsify_refuses_bad_options_before_training(argv, expected, capsys, no_training):
    with pytest.raises(SystemExit) as exit_info:
        main(["sparsify", *argv, "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_sparsify_refuses_another_methods_option_and_takes_yes_no(capsys, no_training):
    with pytest.raises(SystemExit) as exit_info:
        main(["sparsify", "--method", "ising", "--alpha", "0.3", "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "--alpha is an option of targeted-dropout, not of --method ising" in err
    with pytest.raises(SystemExit):
        main(["sparsify", "--method", "ising", "--drop-inputs", "maybe", "--quiet"])
    assert "drop_inputs: expected yes or no, got 'maybe'" in capsys.readouterr().err


@pytest.mark.parametrize("method,options", [
    ("variational-dropout", ["--kl-weight", "0.5"]),
    ("l0", ["--gates", "weight", "--lambda", "0.1", "--lr", "1e-2"]),
    ("ising", ["--sweeps", "50", "--drop-inputs", "no"]),
    ("group-lasso", ["--lambda", "5", "--groups", "outgoing", "--finetune-epochs", "1"]),
])
def test_sparsify_runs_every_method_of_the_table(method, options, capsys):
    code, out, _ = run_cli(capsys, "sparsify", "--method", method, "--model", "mlp",
                           "--hidden", "32,16", "--epochs", "2", *options, "--json")
    result = json.loads(out)
    assert code == 0 and result["method"] == method
    assert 0 <= result["sparsity"] < 1 and result["compression"] >= 1
    assert set(result["layers"]) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert "lambda_" not in result


# ---------------------------------------------------------------- distill
TINY_DISTILLATION = ["distill", "--teacher", "mlp", "--teacher-hidden", "48",
                     "--teacher-epochs", "2", "--student-hidden", "16", "--epochs", "2"]


def test_distill_json_reports_the_three_accuracies(capsys, tmp_path):
    code, out, _ = run_cli(capsys, *TINY_DISTILLATION, "--json", "--save",
                           str(tmp_path / "student.npz"))
    result = json.loads(out)
    assert code == 0
    for key in ("teacher_test_accuracy", "student_alone_test_accuracy", "test_accuracy"):
        assert 0.5 < result[key] <= 1, key
    assert result["temperature"] == 4.0 and result["alpha"] == 0.9
    assert "omitted_class_accuracy_before_shift" not in result
    student = ts.load(result["saved_to"])
    assert student.num_parameters() == 784 * 16 + 16 + 16 * 10 + 10
    assert ts.evaluate(student, *ts.load_dataset("mnist-5k").test)["accuracy"] == \
        pytest.approx(result["test_accuracy"])


def test_distill_from_a_saved_teacher_with_an_omitted_class(capsys, tmp_path):
    data = ts.load_dataset("mnist-5k")
    teacher = ts.nn.mlp([784, 32, 10], seed=1)
    ts.fit(teacher, data, epochs=2, quiet=True)
    path = ts.save(teacher, tmp_path / "teacher.npz")
    code, out, _ = run_cli(capsys, "distill", "--teacher", str(path), "--student-hidden", "16",
                           "--epochs", "2", "--omit-class", "3", "--bias-shift", "2",
                           "--json")
    result = json.loads(out)
    assert code == 0 and "teacher_epochs" not in result
    assert result["teacher_test_accuracy"] == pytest.approx(
        ts.evaluate(teacher, *data.test)["accuracy"])
    assert result["bias_shift"] == 2.0 and result["omit_class"] == 3
    assert result["student_alone_omitted_class_accuracy"] == 0.0  # it never saw a 3
    assert result["omitted_class_accuracy_after_shift"] >= \
        result["omitted_class_accuracy_before_shift"]
    for key in ("other_classes_accuracy_before_shift", "other_classes_accuracy_after_shift"):
        assert 0 <= result[key] <= 1
    code, out, _ = run_cli(capsys, "distill", "--teacher", str(path), "--student-hidden", "16",
                           "--epochs", "1", "--omit-class", "3", "--quiet")
    assert code == 0 and "bias of 3 + 3.5" in out  # Hinton et al.'s shift by default


@pytest.mark.parametrize("argv,expected", [
    (["--temperature", "0"], "--temperature: expected a positive number, got 0.0"),
    (["--temperature", "-1"], "--temperature: expected a positive number, got -1.0"),
    (["--temperature", "abc"], "argument --temperature: expected a number, got 'abc'"),
    (["--alpha", "1.5"], "--alpha: expected the soft term's weight, a number in [0, 1], got 1.5"),
    (["--alpha", "-0.1"], "--alpha: expected the soft term's weight"),
    (["--omit-class", "10"], "--omit-class: expected a class of the digits, 0 to 9, got 10"),
    (["--omit-class", "-1"], "argument --omit-class: expected an integer >= 0"),
    (["--bias-shift", "2"], "--bias-shift shifts the bias of the omitted class; give --omit-class"),
    (["--omit-class", "3", "--bias-shift", "inf"], "--bias-shift: expected a finite number"),
    (["--jitter", "-2"], "argument --jitter: expected an integer >= 0"),
    (["--teacher-hidden", "100"], "--teacher-hidden sets the layers of --teacher mlp; "
                                  "--teacher lenet5"),
    (["--student", "lenet5", "--student-hidden", "100"], "--student-hidden sets the layers"),
    (["--teacher", "nonsense"], "--teacher: nonsense: no such model file; expected one "
                                "of lenet300, lenet5, mlp or a tinysparse model file"),
    (["--student", "resnet"], "argument --student: invalid choice: 'resnet'"),
    (["--save", "/proc/x.npz"], "--save: /proc/x.npz: cannot write in /proc"),
])
def test_distill_refuses_bad_arguments_before_any_training(argv, expected, capsys,
                                                           no_training):
    with pytest.raises(SystemExit) as exit_info:
        main(["distill", *argv, "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert expected in err and len(err.strip().splitlines()) == 1, err


def test_distill_refuses_a_teacher_file_that_does_not_fit(tmp_path, capsys, no_training):
    import numpy as np

    not_a_model = tmp_path / "weights.npz"
    np.savez(not_a_model, w=np.ones(3))
    text = tmp_path / "notes.npz"
    text.write_text("not a zip archive")
    five = ts.save(ts.nn.mlp([784, 8, 5], seed=0), tmp_path / "five.npz")
    small = ts.save(ts.nn.mlp([100, 8, 10], seed=0, flatten=True), tmp_path / "small.npz")
    trained = ts.save(ts.nn.mlp([784, 8, 10], seed=0), tmp_path / "trained.npz")
    for argv, expected in [
        (["--teacher", str(not_a_model)], "not a tinysparse model"),
        (["--teacher", str(text)], "not a readable .npz file"),
        (["--teacher", str(five)], "gives outputs of shape (5,) per digit, the student "
                                   "scores 10 classes"),
        (["--teacher", str(small)], "does not take 28x28 digits"),
        (["--teacher", str(trained), "--teacher-epochs", "3"],
         f"--teacher-epochs: the teacher from {trained} is already trained"),
        (["--teacher", str(trained), "--teacher-jitter", "1"],
         f"--teacher-jitter: the teacher from {trained} is already trained"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["distill", *argv, "--quiet"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, err
        assert "--teacher" in err and expected in err and len(err.strip().splitlines()) == 1, \
            err


# ---------------------------------------------------------------- compress / decompress
@pytest.fixture(scope="module")
def pruned_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("compress") / "pruned.npz"
    model = ts.nn.lenet300(seed=0)
    ts.prune.prune(model, 0.93)
    ts.save(model, path)
    return path


def test_compress_json_reports_every_stage_and_the_decoded_accuracy(capsys, tmp_path,
                                                                   pruned_model_file):
    import os

    out = tmp_path / "m.tsz"
    code, text, _ = run_cli(capsys, "compress", str(pruned_model_file), str(out), "--bits", "4",
                            "--json")
    result = json.loads(text)
    assert code == 0 and result["command"] == "compress" and result["saved_to"] == str(out)
    assert result["bytes"]["huffman"] == os.path.getsize(out)
    assert set(result["bytes"]) == {"dense", "csr", "quantised", "huffman", "header"}
    assert result["bytes"]["dense"] == 4 * 266_610
    assert result["compression"] == pytest.approx(4 * 266_610 / os.path.getsize(out))
    assert [layer["name"] for layer in result["layers"]] == ["fc1", "fc2", "fc3"]
    assert {"kept", "weights", "bits", "gap_bits", "padding_entries", "bytes",
            "compression"} <= set(result["layers"][0])
    assert result["finetuned_test_accuracy"] is None
    assert result["test_accuracy"] == result["shared_test_accuracy"]  # decoded = shared
    decoded = ts.compress.load_compressed(out)
    data = ts.load_dataset("mnist-5k")
    assert ts.evaluate(decoded, *data.test)["accuracy"] == result["test_accuracy"]
    assert result["uncompressed_test_accuracy"] == ts.evaluate(ts.load(pruned_model_file),
                                                              *data.test)["accuracy"]


def test_compress_fine_tunes_and_prints_a_table(capsys, tmp_path, pruned_model_file):
    code, text, _ = run_cli(capsys, "compress", str(pruned_model_file), str(tmp_path / "m"),
                            "--finetune-epochs", "1", "--lr", "1e-3", "--quiet")
    assert code == 0
    assert "huffman" in text and "total" in text and "header" in text
    assert "after 1 epochs of fine-tuning" in text


def test_decompress_restores_a_model_file(capsys, tmp_path, pruned_model_file):
    run_cli(capsys, "compress", str(pruned_model_file), str(tmp_path / "m.tsz"), "--json")
    code, text, _ = run_cli(capsys, "decompress", str(tmp_path / "m.tsz"),
                            str(tmp_path / "back"), "--json")
    result = json.loads(text)
    assert code == 0 and result["saved_to"] == str(tmp_path / "back.npz")
    restored = ts.load(tmp_path / "back.npz")
    decoded = ts.compress.load_compressed(tmp_path / "m.tsz")
    assert dict(restored.named_masks()) == dict(decoded.named_masks())
    for name, values in decoded.state_dict().items():
        np.testing.assert_array_equal(restored.state_dict()[name], values)


def test_compress_and_decompress_refuse_bad_arguments_before_any_work(capsys, tmp_path,
                                                                      pruned_model_file):
    model = str(pruned_model_file)
    bad = tmp_path / "bad.tsz"
    bad.write_bytes(b"TSCZ\x01" + bytes(20))
    for argv, expected in [
        (["compress", model, "o.tsz", "--bits", "0"], "--bits: expected an integer in [1, 16]"),
        (["compress", model, "o.tsz", "--bits", "17"], "--bits: expected an integer in [1, 16]"),
        (["compress", model, "o.tsz", "--conv-gap-bits", "99"], "expected an integer in"),
        (["compress", str(tmp_path / "none.npz"), "o.tsz"], "MODEL: "),
        (["compress", model, model], "OUT: would replace MODEL"),
        (["compress", model, "o.tsz", "--lr", "0.1"], "--lr sets the centroids' fine-tuning"),
        (["decompress", str(bad), "o.npz"], "IN: "),
        (["decompress", str(bad), "o.npz"], "checksum does not match"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        _, err = capsys.readouterr()
        assert exit_info.value.code == 2, argv
        assert expected in err and len(err.strip().splitlines()) == 1, (argv, err)
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        main(["compress", model, str(tmp_path / "file" / "o.tsz")])
    assert "OUT: " in capsys.readouterr().err


def test_compress_a_dense_model_stores_no_positions(capsys, tmp_path):
    ts.save(ts.nn.mlp([784, 16, 10], seed=0), tmp_path / "dense.npz")
    code, text, _ = run_cli(capsys, "compress", str(tmp_path / "dense.npz"),
                            str(tmp_path / "d.tsz"), "--bits", "3", "--json")
    result = json.loads(text)
    assert code == 0
    assert all(layer["gap_bits"] is None and layer["kept"] == layer["weights"]
               for layer in result["layers"])
    assert dict(ts.compress.load_compressed(tmp_path / "d.tsz").named_masks()) == {}
