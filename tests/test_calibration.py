"""Calibration metrics, temperature scaling, out-of-distribution scores, fooling images and
adversarial examples (tinysparse.calibration)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinysparse as ts
from tinysparse import calibration as cal
from tinysparse.data import held_out_indices, split_by_class
from tinysparse.train import record_validation, recorded_validation

# ---------------------------------------------------------------- tiny hand-computed cases
#: four examples, two classes. Confidences .95 .65 .70 .80; predictions 0 0 1 1; correct
#: 1 0 1 0; the true classes' probabilities .95 .35 .70 .20.
TINY_P = np.array([[0.95, 0.05], [0.65, 0.35], [0.30, 0.70], [0.20, 0.80]])
TINY_Y = np.array([0, 1, 1, 0])


def test_ece_and_mce_by_hand():
    # M = 2, bins (0, .5] and (.5, 1]: all four in the second, accuracy 1/2, mean confidence
    # (.95 + .65 + .70 + .80) / 4 = .775: ECE = MCE = .275
    assert cal.expected_calibration_error(TINY_P, TINY_Y, bins=2) == pytest.approx(0.275)
    assert cal.maximum_calibration_error(TINY_P, TINY_Y, bins=2) == pytest.approx(0.275)
    # M = 4: (.5, .75] holds .65 (wrong) and .70 (right): accuracy .5, confidence .675,
    # gap .175; (.75, 1] holds .80 (wrong) and .95 (right): .5 against .875, gap .375.
    # ECE = ½ .175 + ½ .375 = .275, MCE = .375
    bins = cal.reliability_bins(TINY_P, TINY_Y, bins=4)
    np.testing.assert_array_equal(bins.counts, [0, 0, 2, 2])
    np.testing.assert_allclose(bins.accuracy[2:], [0.5, 0.5])
    np.testing.assert_allclose(bins.confidence[2:], [0.675, 0.875])
    assert np.isnan(bins.accuracy[:2]).all()
    assert bins.ece == pytest.approx(0.275) and bins.mce == pytest.approx(0.375)
    # equal mass, M = 2: {.65, .70} and {.80, .95}, the same two groups here
    equal_mass = cal.reliability_bins(TINY_P, TINY_Y, bins=2, binning="equal-mass")
    np.testing.assert_array_equal(equal_mass.counts, [2, 2])
    assert equal_mass.ece == pytest.approx(0.275) and equal_mass.mce == pytest.approx(0.375)
    np.testing.assert_allclose(equal_mass.edges, [0, 0.75, 1])  # halfway between .70, .80


def test_nll_and_brier_by_hand():
    expected_nll = -(math.log(0.95) + math.log(0.35) + math.log(0.70) + math.log(0.20)) / 4
    assert cal.negative_log_likelihood(TINY_P, TINY_Y) == pytest.approx(expected_nll)
    # Σ_k (p_k − y_k)² per row: .0025 + .0025, .4225 + .4225, .09 + .09, .64 + .64
    assert cal.brier_score(TINY_P, TINY_Y) == pytest.approx((0.005 + 0.845 + 0.18 + 1.28) / 4)
    perfect = np.eye(3)
    assert cal.brier_score(perfect, [0, 1, 2]) == 0
    assert cal.brier_score(perfect, [1, 2, 0]) == 2  # certain and wrong: the maximum
    assert cal.negative_log_likelihood(perfect, [1, 2, 0]) == math.inf


# ---------------------------------------------------------------- against direct loops
def direct_bins(probabilities, labels, bins, binning):
    """An independent, loop-by-loop reading of the definitions: lists of (confidence,
    correct) per bin."""
    n = len(labels)
    pairs = []
    for row, label in zip(probabilities, labels):
        best = 0
        for k in range(len(row)):
            if row[k] > row[best]:
                best = k
        pairs.append((row[best], 1.0 if best == label else 0.0))
    groups = [[] for _ in range(bins)]
    if binning == "equal-width":
        for confidence, correct in pairs:
            for m in range(bins):
                if m / bins < confidence <= (m + 1) / bins or (m == 0 and confidence == 0):
                    groups[m].append((confidence, correct))
                    break
    else:
        ordered = sorted(pairs, key=lambda pair: pair[0])
        start = 0
        for m in range(bins):  # the first n mod M groups hold one more
            size = n // bins + (1 if m < n % bins else 0)
            groups[m] = ordered[start:start + size]
            start += size
    return groups


def direct_metrics(probabilities, labels, bins, binning):
    n = len(labels)
    ece, mce = 0.0, 0.0
    for group in direct_bins(probabilities, labels, bins, binning):
        if not group:
            continue
        accuracy = sum(correct for _, correct in group) / len(group)
        confidence = sum(c for c, _ in group) / len(group)
        ece += len(group) / n * abs(accuracy - confidence)
        mce = max(mce, abs(accuracy - confidence))
    nll = brier = 0.0
    for row, label in zip(probabilities, labels):
        nll -= math.log(row[label]) / n
        for k in range(len(row)):
            brier += (row[k] - (1.0 if k == label else 0.0)) ** 2 / n
    return ece, mce, nll, brier


@pytest.mark.parametrize("binning", cal.BINNINGS)
@pytest.mark.parametrize("n, classes, bins", [(1, 2, 15), (37, 3, 15), (500, 10, 15),
                                              (200, 4, 7), (10, 5, 40), (300, 2, 1)])
def test_metrics_equal_a_direct_loop_on_random_inputs(n, classes, bins, binning):
    rng = np.random.default_rng(n * 100 + classes)
    probabilities = cal.softmax_probabilities(rng.standard_normal((n, classes)) * 3)
    labels = rng.integers(0, classes, n)
    ece, mce, nll, brier = direct_metrics(probabilities, labels, bins, binning)
    assert cal.expected_calibration_error(probabilities, labels, bins, binning) == \
        pytest.approx(ece, abs=1e-12)
    assert cal.maximum_calibration_error(probabilities, labels, bins, binning) == \
        pytest.approx(mce, abs=1e-12)
    assert cal.negative_log_likelihood(probabilities, labels) == pytest.approx(nll, rel=1e-12)
    assert cal.brier_score(probabilities, labels) == pytest.approx(brier, rel=1e-12)


def sample_labels(probabilities, rng):
    """One label per row, drawn from that row's probabilities (inverse CDF)."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((draws > cumulative).sum(axis=1), probabilities.shape[1] - 1)


def test_ece_of_a_calibrated_predictor_is_within_its_sampling_noise():
    """Labels drawn from the predicted probabilities: the predictor is calibrated, and its
    ECE is sampling noise only.

    Derivation of the tolerance. Given the probabilities (which fix the bins), example i is
    correct with probability p̂_i, its confidence, independently of the others (the true
    class is drawn from p_i, and the prediction is right when the draw is the argmax). In
    bin m, S_m = Σ_{i∈m} (correct_i − p̂_i) has mean 0 and variance V_m = Σ_{i∈m} p̂_i (1 −
    p̂_i), and ECE = (1/n) Σ_m |S_m|. So E[ECE] ≤ (1/n) Σ_m √V_m (Jensen: E|S| ≤ √E[S²]),
    and, the bins being independent, Var[ECE] ≤ (1/n²) Σ_m V_m. By Chebyshev's inequality
    ECE exceeds E[ECE] + 10 √Var[ECE] with probability at most 1%:
        tolerance = (1/n) (Σ_m √V_m + 10 √(Σ_m V_m)).
    """
    rng = np.random.default_rng(0)
    n, classes, bins = 400_000, 5, 15
    probabilities = cal.softmax_probabilities(rng.standard_normal((n, classes)) * 2)
    labels = sample_labels(probabilities, rng)
    confidence = probabilities.max(axis=1)
    index = np.clip(np.searchsorted(np.linspace(0, 1, bins + 1), confidence) - 1, 0, bins - 1)
    variance = np.bincount(index, weights=confidence * (1 - confidence), minlength=bins)
    tolerance = (np.sqrt(variance).sum() + 10 * np.sqrt(variance.sum())) / n
    ece = cal.expected_calibration_error(probabilities, labels, bins)
    assert ece <= tolerance, (ece, tolerance)
    assert tolerance < 0.01  # small enough to mean something:
    # the same predictor whose labels come from sharper probabilities is overconfident
    sharper = cal.softmax_probabilities(np.log(probabilities), temperature=0.5)
    assert cal.expected_calibration_error(probabilities, sample_labels(sharper, rng),
                                          bins) > 5 * tolerance


def test_ece_interval_is_seeded_and_brackets_an_overconfident_models_ece():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((1000, 10)) * 4
    labels = sample_labels(cal.softmax_probabilities(logits, temperature=2.0), rng)
    probabilities = cal.softmax_probabilities(logits)  # overconfident: T = 2 is the truth
    ece = cal.expected_calibration_error(probabilities, labels)
    first = cal.ece_interval(probabilities, labels, samples=300, seed=5)
    assert first == cal.ece_interval(probabilities, labels, samples=300, seed=5)
    assert first != cal.ece_interval(probabilities, labels, samples=300, seed=6)
    assert first[0] < ece < first[1] and first[1] - first[0] < 0.1
    basic = cal.ece_interval(probabilities, labels, samples=300, seed=5, method="basic")
    # the basic interval reflects the percentile one about the estimate
    assert basic == pytest.approx((2 * ece - first[1], 2 * ece - first[0]))


# ---------------------------------------------------------------- temperature scaling
@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_the_temperature_the_logits_were_made_with(
        true_temperature):
    """Labels drawn from softmax(z); the model reports T·z, so softmax(model / T) is the
    truth. The maximum-likelihood β̂ = 1/T̂ is within 5 standard errors of 1/T, the standard
    error being 1/√(n I(β)), with I(β) = mean Var_p(z) the Fisher information of one
    example (the NLL's second derivative)."""
    rng = np.random.default_rng(2)
    n = 20_000
    z = rng.standard_normal((n, 10)) * 3
    labels = sample_labels(cal.softmax_probabilities(z), rng)
    logits = true_temperature * z
    fitted = cal.fit_temperature(logits, labels)
    true_beta = 1 / true_temperature
    p = cal.softmax_probabilities(logits, true_temperature)
    mean = (p * logits).sum(axis=1, keepdims=True)
    information = np.mean((p * (logits - mean) ** 2).sum(axis=1))
    assert abs(1 / fitted - true_beta) < 5 / math.sqrt(n * information)
    # to machine precision: the NLL's slope in β vanishes, and T̂ beats its neighbours
    slope, curvature = cal._nll_derivatives(logits, logits[np.arange(n), labels], 1 / fitted)
    assert abs(slope) < 1e-12 * np.abs(logits).mean()
    nll = cal.negative_log_likelihood(cal.softmax_probabilities(logits, fitted), labels)
    for nearby in (fitted * (1 - 1e-6), fitted * (1 + 1e-6)):
        assert nll <= cal.negative_log_likelihood(
            cal.softmax_probabilities(logits, nearby), labels)


def test_temperature_scaling_never_changes_the_argmax():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2000, 10)) * rng.uniform(0.1, 20, (2000, 1))
    labels = rng.integers(0, 10, 2000)
    labels[:1200] = logits[:1200].argmax(axis=1)  # a model that is right 60% of the time
    fitted = cal.fit_temperature(logits, labels)
    for temperature in (fitted, 1e-3, 0.3, 1.0, 7.0, 1e3):
        scaled = cal.softmax_probabilities(logits, temperature)
        np.testing.assert_array_equal(scaled.argmax(axis=1), logits.argmax(axis=1))


def test_temperature_scaling_refuses_when_no_finite_temperature_is_best():
    logits = np.array([[3.0, 0.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match="every example is classified correctly"):
        cal.fit_temperature(logits, [0, 1])
    with pytest.raises(ValueError, match="no finite temperature"):
        cal.fit_temperature(logits, [1, 0])  # always wrong: T = ∞ is best


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, message", [
    (lambda: cal.expected_calibration_error([[0.5, 0.6]], [0]),
     "probabilities: each row must sum to 1"),
    (lambda: cal.brier_score([[2.0, -1.0]], [0]), "probabilities: probabilities lie in [0, 1]"),
    (lambda: cal.negative_log_likelihood([[0.5, np.nan]], [0]), "probabilities: 1 values"),
    (lambda: cal.expected_calibration_error([0.5, 0.5], [0]), "probabilities: expected an "
                                                              "array of shape"),
    (lambda: cal.expected_calibration_error(TINY_P, [0, 1, 2, 0]),
     "labels: classes lie in [0, 2), got values from 0 to 2"),
    (lambda: cal.brier_score(TINY_P, [0, -1, 1, 0]), "labels: classes lie in [0, 2)"),
    (lambda: cal.negative_log_likelihood(TINY_P, [0.0, 1.0, 1.0, 0.0]),
     "labels: expected integer class indices"),
    (lambda: cal.maximum_calibration_error(TINY_P, [0, 1]), "labels: expected shape (4,)"),
    (lambda: cal.expected_calibration_error(TINY_P, TINY_Y, bins=0),
     "bins: expected a positive integer, got 0"),
    (lambda: cal.reliability_bins(TINY_P, TINY_Y, bins=2.5), "bins: expected a positive"),
    (lambda: cal.ece_interval(TINY_P, TINY_Y, bins=-1), "bins: expected a positive integer"),
    (lambda: cal.expected_calibration_error(TINY_P, TINY_Y, binning="adaptive"),
     "binning: expected one of equal-width, equal-mass"),
    (lambda: cal.ece_interval(TINY_P, TINY_Y, level=95), "level: expected a number in (0, 1)"),
    (lambda: cal.fit_temperature([[1.0], [2.0]], [0, 0]), "logits: expected an array of shape"),
    (lambda: cal.auroc([], [1.0]), "in_distribution: got no scores"),
    (lambda: cal.rotate(np.zeros((2, 2)), math.nan), "degrees: expected a finite angle"),
])
def test_bad_input_gets_an_error_naming_the_argument(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


# ---------------------------------------------------------------- out of distribution
def pairwise_auroc(positive, negative):
    """The definition, pair by pair: P(s_in > s_out) + ½ P(s_in = s_out)."""
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in positive for q in negative)
    return wins / (len(positive) * len(negative))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_the_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    positive = rng.integers(0, 8, rng.integers(1, 60)) + 0.5 * (seed % 2)  # many ties
    negative = rng.integers(-2, 6, rng.integers(1, 60)).astype(float)
    assert cal.auroc(positive, negative) == pytest.approx(pairwise_auroc(positive, negative),
                                                          abs=1e-12)


def test_auroc_extremes():
    assert cal.auroc([2, 3], [0, 1]) == 1.0
    assert cal.auroc([0, 1], [2, 3]) == 0.0
    assert cal.auroc([1, 1, 1], [1, 1]) == 0.5


def test_rotation_by_quarter_turns_and_against_scipy():
    rng = np.random.default_rng(4)
    images = rng.random((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(cal.rotate(images, 0), images, atol=1e-6)
    np.testing.assert_allclose(cal.rotate(images, 90), np.rot90(images, 1, axes=(2, 3)),
                               atol=1e-6)  # counter-clockwise
    np.testing.assert_allclose(cal.rotate(images, -90), np.rot90(images, -1, axes=(2, 3)),
                               atol=1e-6)
    assert cal.rotate(images, 33).dtype == np.float32
    ndimage = pytest.importorskip("scipy.ndimage")
    for angle in (17.0, 45.0, 120.0, -60.0):
        theirs = ndimage.rotate(images.astype(np.float64), angle, axes=(3, 2), reshape=False,
                                order=1, mode="grid-constant", cval=0.0)
        np.testing.assert_allclose(cal.rotate(images.astype(np.float64), angle), theirs,
                                   atol=1e-12)


def test_out_of_distribution_sets_and_report(trained):
    model, data = trained
    x = data.x_test[:200]
    sets = cal.out_of_distribution_sets(x, seed=0)
    assert set(sets) == {"uniform_noise", "inverted", "rotated"}
    for images in sets.values():
        assert images.shape == x.shape and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(sets["inverted"], 1 - x)
    report = cal.out_of_distribution_report(model, x, sets)
    inside = cal.max_softmax(model, x)
    assert report["in_distribution"]["mean_max_softmax"] == pytest.approx(inside.mean())
    for name in sets:
        outside = cal.max_softmax(model, sets[name])
        assert report[name]["auroc"] == pytest.approx(cal.auroc(inside, outside))
        assert 0 <= report[name]["auroc"] <= 1
    # any function from inputs to probabilities is scored the same way (ensembles, MC)
    as_function = cal.out_of_distribution_report(
        lambda images: cal.softmax_probabilities(cal.predict_logits(model, images)), x, sets)
    for name, figures in report.items():
        assert as_function[name] == pytest.approx(figures)


def test_split_by_class_and_held_out_indices(mnist5k):
    known, unknown = split_by_class(mnist5k, range(5))
    assert set(np.unique(known.y_train)) == set(range(5)) == set(np.unique(known.y_test))
    assert set(np.unique(unknown.y_test)) == set(range(5, 10))
    assert len(known.x_train) + len(unknown.x_train) == len(mnist5k.x_train)
    assert known.num_classes == 10
    with pytest.raises(ValueError, match="known: classes \\[12\\] do not occur"):
        split_by_class(mnist5k, [0, 12])
    with pytest.raises(ValueError, match="none would be left out"):
        split_by_class(mnist5k, range(10))
    kept, held_out = held_out_indices(100, 30, seed=7)
    assert len(held_out) == 30 and len(kept) == 70
    assert sorted([*kept, *held_out]) == list(range(100))
    np.testing.assert_array_equal(held_out, held_out_indices(100, 30, seed=7)[1])
    assert not np.array_equal(held_out, held_out_indices(100, 30, seed=8)[1])
    with pytest.raises(ValueError, match="count: holding out 100 of 100"):
        held_out_indices(100, 100)


def test_a_recorded_validation_split_is_saved_and_loaded(tmp_path):
    model = ts.nn.mlp([784, 8, 10])
    assert recorded_validation(model) is None
    record_validation(model, "mnist-5k", np.array([9, 2, 5]))
    assert model.config["name"] == "mlp"  # the factory's config is kept
    loaded = ts.load(ts.save(model, tmp_path / "m.npz"))
    np.testing.assert_array_equal(recorded_validation(loaded, "mnist-5k"), [2, 5, 9])
    assert recorded_validation(loaded, "mnist") is None  # recorded for another dataset
    loaded.config["validation"]["indices"] = [1, 1]
    with pytest.raises(ValueError, match="config.validation.indices"):
        recorded_validation(loaded)


# ---------------------------------------------------------------- gradients and attacks
@pytest.fixture(scope="module")
def trained(mnist5k):
    model = ts.nn.lenet300(seed=0)
    ts.fit(model, mnist5k, epochs=2, seed=0, quiet=True)
    return model, mnist5k


@pytest.mark.parametrize("model_name", ["lenet300", "lenet5"])
def test_input_gradients_and_fgsm_equal_pytorchs(model_name, torch, mnist5k):
    from test_torch_oracle import torch_twin

    ours = ts.build_model(model_name, seed=0).double()
    theirs = torch_twin(model_name, torch)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            q.copy_(torch.tensor(p.data))
    x = mnist5k.x_test[:16].astype(np.float64)
    y = mnist5k.y_test[:16]
    gradient = cal.input_gradient(ours, x, y)
    inputs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(theirs(inputs), torch.tensor(y),
                                      reduction="sum").backward()
    reference = inputs.grad.numpy()
    np.testing.assert_allclose(gradient, reference, rtol=1e-10,
                               atol=1e-12 * np.abs(reference).max())
    assert all(p.grad is None for p in ours.parameters())  # only the input's gradient
    epsilon = 0.1
    expected = np.clip(x + epsilon * np.sign(reference), 0, 1)
    clear = np.abs(reference) > 1e-9 * np.abs(reference).max()  # signs beyond rounding
    np.testing.assert_array_equal(cal.fgsm(ours, x, y, epsilon)[clear], expected[clear])


def test_input_gradient_leaves_the_model_as_it_was():
    model = ts.nn.lenet300(seed=0, dropout=0.5)
    model.train()
    x = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32)
    first = cal.input_gradient(model, x, [0, 1, 2, 3])
    np.testing.assert_array_equal(first, cal.input_gradient(model, x, [0, 1, 2, 3]))
    assert model.training and all(p.requires_grad and p.grad is None
                                  for p in model.parameters())


def test_iterative_attack_stays_in_the_ball_and_the_pixel_range(trained):
    model, data = trained
    x, y = data.x_test[:100], data.y_test[:100]
    for epsilon, random_start in ((0.1, False), (0.3, True)):
        adversarial = cal.iterative_attack(model, x, y, epsilon, steps=5,
                                           random_start=random_start, seed=1)
        assert np.abs(adversarial - x).max() <= epsilon + 1e-6
        assert adversarial.min() >= 0 and adversarial.max() <= 1
    # one step of size ε is FGSM; ten steps find more adversarial digits here
    np.testing.assert_array_equal(cal.iterative_attack(model, x, y, 0.1, steps=1,
                                                       step_size=0.1),
                                  cal.fgsm(model, x, y, 0.1))
    clean = cal.adversarial_sweep(model, x, y, [0.0])[0]
    assert clean["error"] == pytest.approx(1 - ts.evaluate(model, x, y)["accuracy"])
    fgsm, iterative = (cal.adversarial_sweep(model, x, y, [0.1], steps=k)[0] for k in (1, 10))
    assert iterative["error"] >= fgsm["error"] > clean["error"]
    assert iterative["step_size"] == pytest.approx(0.025) and fgsm["step_size"] == 0.1


def test_attacks_refuse_a_negative_epsilon_and_pixels_out_of_range(trained):
    model, data = trained
    x, y = data.x_test[:4], data.y_test[:4]
    with pytest.raises(ValueError, match="epsilon: expected a number >= 0, got -0.1"):
        cal.fgsm(model, x, y, -0.1)
    with pytest.raises(ValueError, match="epsilon: expected a number >= 0"):
        cal.adversarial_sweep(model, x, y, [0.1, -1])
    with pytest.raises(ValueError, match="x: pixels lie in \\[0, 1\\]"):
        cal.fgsm(model, x * 255, y, 0.1)
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        cal.iterative_attack(model, x, y, 0.1, steps=0)


def test_fooling_images_reach_the_target_confidence(trained):
    model, _ = trained
    fooled = cal.fooling_images(model, range(10), seed=0, max_steps=2000)
    assert fooled.reached.all(), fooled.confidence
    probabilities = cal.softmax_probabilities(cal.predict_logits(model, fooled.images))
    np.testing.assert_array_equal(probabilities.argmax(axis=1), np.arange(10))
    assert (probabilities[np.arange(10), np.arange(10)] >= 0.99).all()
    assert fooled.images.min() >= 0 and fooled.images.max() <= 1
    assert fooled.images.shape == (10, 1, 28, 28)


# ---------------------------------------------------------------- figures
def test_reliability_figures_draw_without_pyplot():
    from matplotlib.figure import Figure

    from tinysparse import plot

    figure = plot.calibration_figure({"before": (TINY_P, TINY_Y, 4),
                                      "after": (TINY_P, TINY_Y, 4)}, fig=Figure())
    assert len(figure.axes) == 4
    assert "ECE 27.50%" in figure.axes[1].get_title()
    ax = plot.reliability_diagram(cal.reliability_bins(TINY_P, TINY_Y, 2, "equal-mass"),
                                  ax=Figure().add_subplot())
    assert "MCE 37.50%" in ax.get_title()
    plot.image_grid(np.zeros((3, 784)), titles=["a", "b", "c"], fig=Figure())
