"""``tinysparse train --validation``, ``tinysparse calibrate`` and ``tinysparse attack``."""

import json

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.cli import main

#: the keys ../shared/DESIGN.md promises for ``calibrate --json``
CALIBRATE_KEYS = {"test_accuracy", "ece", "ece_interval", "mce", "nll", "brier", "temperature",
                  "ece_after", "nll_after", "held_out"}


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, argv):
    """The one-line error of arguments refused before any work (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two small trained models: one with a recorded validation split, one without."""
    folder = tmp_path_factory.mktemp("models")
    base = ["train", "--model", "mlp", "--hidden", "32", "--epochs", "2", "--seed", "1",
            "--quiet"]
    assert main([*base, "--validation", "300", "--save", str(folder / "validated.npz")]) == 0
    assert main([*base, "--save", str(folder / "plain.npz")]) == 0
    return folder / "validated.npz", folder / "plain.npz"


def test_train_validation_holds_out_and_records_the_digits(capsys, tmp_path, mnist5k):
    code, out, _ = run_cli(capsys, "train", "--model", "mlp", "--hidden", "16", "--epochs", "1",
                           "--validation", "250", "--seed", "4", "--json",
                           "--save", str(tmp_path / "m.npz"))
    result = json.loads(out)
    assert code == 0 and result["validation"] == 250
    assert 0.3 < result["validation_accuracy"] <= 1
    indices = ts.load(tmp_path / "m.npz").config["validation"]
    assert indices["dataset"] == "mnist-5k" and len(indices["indices"]) == 250
    expected = ts.data.held_out_indices(len(mnist5k.x_train), 250, seed=4)[1]
    assert indices["indices"] == expected.tolist()
    # the validation accuracy is the model's on exactly those digits
    model = ts.load(tmp_path / "m.npz")
    held_out = mnist5k.x_train[expected], mnist5k.y_train[expected]
    assert ts.evaluate(model, *held_out)["accuracy"] == pytest.approx(
        result["validation_accuracy"])


def test_calibrate_fits_on_the_recorded_validation_digits(capsys, models, tmp_path):
    validated, _ = models
    plot = tmp_path / "reliability.png"
    code, out, _ = run_cli(capsys, "calibrate", str(validated), "--dataset", "mnist-5k",
                           "--bins", "15", "--seed", "0", "--json", "--plot", str(plot))
    result = json.loads(out)
    assert code == 0 and CALIBRATE_KEYS <= set(result)
    assert result["held_out"] == "validation" and result["held_out_examples"] == 300
    assert result["evaluated_on"] == "test" and result["evaluated_examples"] == 1000
    assert result["test_accuracy_after"] == result["test_accuracy"]  # T keeps the argmax
    low, high = result["ece_interval"]
    assert 0 <= low <= high <= 1 and result["temperature"] > 0
    assert 0 <= result["ece"] <= result["mce"] <= 1 and 0 <= result["brier"] <= 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result["plot"] == str(plot)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reliability.png"]  # no leftovers
    # the figures are those of the library on the same logits
    from tinysparse import calibration as cal

    data = ts.load_dataset("mnist-5k")
    probabilities = cal.softmax_probabilities(cal.predict_logits(ts.load(validated),
                                                                 data.x_test))
    assert result["ece"] == pytest.approx(cal.expected_calibration_error(probabilities,
                                                                         data.y_test))
    assert result["nll"] == pytest.approx(cal.negative_log_likelihood(probabilities,
                                                                      data.y_test))
    code, again, _ = run_cli(capsys, "calibrate", str(validated), "--json", "--seed", "0",
                             "--plot", str(plot))
    assert json.loads(again) == result  # same seed, same numbers


def test_calibrate_without_a_validation_split_uses_the_halves_of_the_test_split(capsys, models):
    _, plain = models
    code, out, _ = run_cli(capsys, "calibrate", str(plain), "--json", "--bootstrap", "200")
    result = json.loads(out)
    assert code == 0 and result["held_out"] == "test_first_half"
    assert result["evaluated_on"] == "test_second_half" and result["evaluated_examples"] == 500
    code, out, _ = run_cli(capsys, "calibrate", str(plain), "--quiet", "--bootstrap", "200")
    assert code == 0 and "ECE 95% interval" in out and "first half of the test split" in out


def test_attack_reports_each_epsilon(capsys, models):
    _, plain = models
    code, out, _ = run_cli(capsys, "attack", str(plain), "--eps", "0.05,0.1,0.25", "--json")
    result = json.loads(out)
    assert code == 0 and result["method"] == "fgsm"
    attacks = result["attacks"]
    assert [a["epsilon"] for a in attacks] == [0.05, 0.1, 0.25]
    for attack in attacks:
        assert {"epsilon", "error", "mean_confidence"} <= set(attack)
        assert 0 <= attack["error"] <= 1 and 0.1 <= attack["mean_confidence"] <= 1
    assert attacks[0]["error"] <= attacks[-1]["error"]
    code, out, _ = run_cli(capsys, "attack", str(plain), "--eps", "0.1", "--steps", "3",
                           "--random-start", "--seed", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["method"] == "iterative" and result["steps"] == 3
    assert result["attacks"][0]["step_size"] == pytest.approx(2.5 * 0.1 / 3)
    code, out, _ = run_cli(capsys, "attack", str(plain), "--eps", "0.1", "--quiet")
    assert code == 0 and "FGSM" in out and "mean confidence" in out


def test_bad_model_files_are_refused_naming_the_argument(capsys, tmp_path, no_work):
    not_a_model = tmp_path / "weights.npz"
    np.savez(not_a_model, w=np.zeros(3))
    err = refused(capsys, ["calibrate", str(not_a_model)])
    assert f"MODEL: {not_a_model}: not a tinysparse model" in err
    err = refused(capsys, ["attack", str(tmp_path / "missing.npz")])
    assert "MODEL:" in err and "no such model file" in err
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    assert "MODEL:" in refused(capsys, ["calibrate", str(text)])
    small = ts.save(ts.nn.mlp([4, 3, 2]), tmp_path / "small.npz")
    assert "does not take 28x28 digits" in refused(capsys, ["calibrate", str(small)])
    five = ts.save(ts.nn.mlp([784, 3, 5]), tmp_path / "five.npz")
    assert "expected 10 (one per class)" in refused(capsys, ["attack", str(five)])


@pytest.fixture
def no_work(monkeypatch):
    """Make loading data fail loudly: the checks must come first."""
    import tinysparse.cli.attack
    import tinysparse.cli.calibrate

    def refuse(*args, **kwargs):
        raise AssertionError("work started although the arguments were wrong")

    monkeypatch.setattr(tinysparse.cli.calibrate, "load_data", refuse)
    monkeypatch.setattr(tinysparse.cli.attack, "load_data", refuse)


@pytest.mark.parametrize("argv, expected", [
    (["calibrate", "{plain}", "--bins", "0"], "argument --bins: expected a positive integer"),
    (["calibrate", "{plain}", "--bootstrap", "-5"], "argument --bootstrap: expected a positive"),
    (["calibrate", "{plain}", "--plot", "/proc/x.png"], "--plot: /proc/x.png: cannot write"),
    (["calibrate", "{plain}", "--plot", "{folder}"], "--plot:"),
    (["attack", "{plain}", "--eps", "0.1,-0.05"], "argument --eps: each ε must lie in [0, 1]"),
    (["attack", "{plain}", "--eps", "2"], "each ε must lie in [0, 1] (pixels lie in [0, 1])"),
    (["attack", "{plain}", "--eps", "a,b"], "argument --eps: expected comma-separated numbers"),
    (["attack", "{plain}", "--steps", "0"], "argument --steps: expected a positive integer"),
    (["attack", "{plain}", "--step-factor", "2"], "--step-factor sets the steps of --steps K"),
    (["attack", "{plain}", "--steps", "3", "--step-factor", "-1"],
     "--step-factor: expected a positive number"),
    (["attack", "{plain}", "--random-start"], "--random-start needs --steps K > 1"),
    (["train", "--validation", "4000"], "--validation: holding out 4000 of the 4,000"),
    (["train", "--validation", "0"], "argument --validation: expected a positive integer"),
])
def test_wrong_arguments_are_refused_before_any_work(argv, expected, capsys, models, tmp_path,
                                                     no_work):
    _, plain = models
    argv = [a.format(plain=plain, folder=tmp_path) for a in argv]
    assert expected in refused(capsys, argv)
