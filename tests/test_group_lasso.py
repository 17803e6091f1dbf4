"""Group lasso (Wen et al. 2016): the penalty and its gradient, the block soft-thresholding
solution of a single group, removal of the collapsed units, seeds and bad input.

The op's finite-difference and PyTorch checks are rows of ``op_cases.py``
(``group_lasso_*``)."""

import math

import numpy as np
import pytest

import tinysparse as ts
import tinysparse.autograd as A
from tinysparse.autograd import Tensor, gradcheck
from tinysparse.nn.layers import Linear, ReLU, Sequential
from tinysparse.sparsify import METHODS
from tinysparse.sparsify import group_lasso as gl


def numpy_group_lasso(w, axis, group_weights=None):
    """Σ_g λ_g ‖w_g‖₂ and its gradient, written directly."""
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    norms = np.sqrt((moved ** 2).sum(axis=1))
    lam = np.ones_like(norms) if group_weights is None else group_weights
    grad = np.zeros_like(moved)
    alive = norms > 0
    grad[alive] = lam[alive, None] * moved[alive] / norms[alive, None]
    grad = np.moveaxis(grad.reshape(np.moveaxis(w, axis, 0).shape), 0, axis)
    return (lam * norms).sum(), grad


@pytest.mark.parametrize("shape,axis", [((5, 7), 0), ((5, 7), 1), ((4, 3, 2, 2), 0),
                                        ((4, 3, 2, 2), 1), ((3, 4, 5), -1)])
def test_penalty_and_gradient_equal_a_direct_numpy_computation(shape, axis):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(shape)
    lam = rng.uniform(0.1, 2.0, shape[axis])
    x = Tensor(w, requires_grad=True)
    value = A.group_lasso(x, axis=axis, group_weights=lam)
    value.backward()
    expected, expected_grad = numpy_group_lasso(w, axis % len(shape), lam)
    assert float(value.data) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-12, atol=1e-15)


def test_gradcheck_through_the_reshape_a_flatten_reader_uses():
    # a reader (out, C·H·W) after a Flatten: unit c's outgoing weights are the H·W columns
    # of channel c, grouped as (out, C, H·W) along axis 1
    rng = np.random.default_rng(1)
    assert gradcheck(lambda w: A.group_lasso(w.reshape(3, 4, 6), axis=1),
                     [rng.standard_normal((3, 24))])


def test_subgradient_at_a_zero_group_is_zero_and_others_are_unit_vectors():
    w = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0], [0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    x = Tensor(w, requires_grad=True)
    value = A.group_lasso(x, axis=0, group_weights=[1.0, 2.0, 5.0, 1.0])
    value.backward()
    assert float(value.data) == pytest.approx(2 * 5 + 3)
    assert np.isfinite(x.grad).all()
    np.testing.assert_array_equal(x.grad[[0, 2]], 0.0)  # zero groups: subgradient 0
    np.testing.assert_allclose(x.grad[1], 2 * np.array([0.6, 0.0, 0.8]))
    np.testing.assert_allclose(x.grad[3], np.array([1, 2, 2]) / 3)


def block_soft_threshold(target, lam):
    """argmin_w ½‖w − t‖² + λ‖w‖₂ = max(0, 1 − λ/‖t‖) t (block soft thresholding)."""
    return max(0.0, 1.0 - lam / np.linalg.norm(target)) * target


def descend(target, lam, step, steps):
    """Gradient steps on ½‖w − t‖² + λ‖w‖₂ through the library's op, from w = t."""
    w = target.copy()
    for _ in range(steps):
        x = Tensor(w, requires_grad=True)
        loss = ((x - target) * (x - target)).sum() * 0.5 + A.group_lasso(x.reshape(1, -1)) * lam
        loss.backward()
        w = w - step * x.grad
    return w


def test_a_group_shrinks_to_the_block_soft_thresholding_solution():
    target = np.array([0.6, -1.2, 0.4, 2.0])  # ‖t‖ = 2.4495
    lam, step, steps = 0.9, 0.1, 200
    w = descend(target, lam, step, steps)
    # From w = t every step stays on the ray of t, and the distance to ‖w*‖ = ‖t‖ − λ
    # shrinks exactly by (1 − η) a step: ‖w_k − w*‖ = λ (1 − η)^k.
    tolerance = lam * (1 - step) ** steps + 1e-12
    np.testing.assert_allclose(w, block_soft_threshold(target, lam), rtol=0, atol=tolerance)
    assert np.linalg.norm(w) < np.linalg.norm(target)


def test_a_group_dies_when_lambda_reaches_its_targets_norm():
    target = np.array([0.3, -0.4, 1.2])  # ‖t‖ = 1.3
    for lam in (1.3, 2.0):
        assert np.all(block_soft_threshold(target, lam) == 0)
        step = 0.01
        w = descend(target, lam, step, 2000)
        # With λ ≥ ‖t‖, r = ‖w‖ shrinks by (1 − η) a step while (1 − η) r ≥ ηλ, and after
        # that never exceeds B = max(η(λ + ‖t‖), ηλ/(1 − η)): plain (sub)gradient steps
        # circle the zero inside B instead of landing on it (hence the removal threshold).
        bound = max(step * (lam + np.linalg.norm(target)), step * lam / (1 - step))
        assert np.linalg.norm(w) <= bound


# ---------------------------------------------------------------- removal


def tiny_mlp(seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(("fc1", Linear(6, 8, rng=rng)), ("relu1", ReLU()),
                      ("fc2", Linear(8, 5, rng=rng)), ("relu2", ReLU()),
                      ("fc3", Linear(5, 3, rng=rng)))


def test_collapsed_units_are_found_removed_and_really_disappear(tmp_path):
    model = tiny_mlp()
    model.fc1.weight.data[[1, 4]] *= 1e-3       # fc1 units 1, 4: incoming groups collapsed
    model.fc3.weight.data[:, 2] *= 1e-3         # fc2 unit 2: outgoing group collapsed
    norms = gl.group_norms(model, "both", input_shape=(6,))
    assert set(norms) == {"fc1", "fc2"} and set(norms["fc1"]) == {"incoming", "outgoing"}
    np.testing.assert_allclose(norms["fc2"]["outgoing"],
                               np.linalg.norm(model.fc3.weight.data, axis=0))
    removed = gl.units_below(norms, threshold=0.05)
    assert list(removed["fc1"]) == [1, 4] and list(removed["fc2"]) == [2]
    assert list(gl.units_below(gl.group_norms(model, "outgoing", (6,)), 0.05)["fc1"]) == []

    x = np.random.default_rng(5).standard_normal((7, 6))
    ts.prune.remove_units(model, removed, input_shape=(6,))
    masked = model(x).data
    ts.prune.shrink_in_place(model, input_shape=(6,))
    assert ts.prune.unit_counts(model) == {"fc1": 6, "fc2": 4, "fc3": 3}
    assert model.fc1.weight.shape == (6, 6) and model.fc2.weight.shape == (4, 6)
    assert model.fc3.weight.shape == (3, 4) and not model.fc1._masks
    np.testing.assert_allclose(model(x).data, masked, rtol=1e-12, atol=1e-12)
    path = ts.save(model, tmp_path / "small.npz")
    np.testing.assert_allclose(ts.load(path)(x).data, masked, rtol=1e-12, atol=1e-12)


def test_filters_and_channels_of_lenet5_are_grouped_through_the_flatten():
    model = ts.build_model("lenet5", seed=0)
    readers = ts.prune.unit_readers(model)
    reader, per_unit = readers["conv2"]
    assert per_unit > 1 and reader.startswith("fc")
    model.conv2.weight.data[3] = 0.0                         # a filter: incoming group
    getattr(model, reader).weight.data[:, 5 * per_unit:6 * per_unit] = 0.0  # channel 5 unread
    norms = gl.group_norms(model, "both")
    assert norms["conv2"]["incoming"][3] == 0 and norms["conv2"]["outgoing"][5] == 0
    assert list(gl.units_below(norms, 0.01)["conv2"]) == [3, 5]
    value = gl.penalty(model, "outgoing")
    value.backward()
    assert np.all(getattr(model, reader).weight.grad[:, 5 * per_unit:6 * per_unit] == 0)


def test_never_every_unit_of_a_layer():
    norms = {"fc1": {"incoming": np.array([1.0, 0.01, 0.5]),
                     "outgoing": np.array([0.01, 1.0, 0.02])}}
    assert list(gl.units_below(norms, 0.05)["fc1"]) == [0, 1]


# ---------------------------------------------------------------- the whole recipe


def small_dataset(mnist5k, n_train=400, n_test=200):
    return ts.data.Dataset("mnist-5k-small", mnist5k.x_train[:n_train],
                           mnist5k.y_train[:n_train], mnist5k.x_test[:n_test],
                           mnist5k.y_test[:n_test], num_classes=10)


QUICK = {"epochs": 10, "batch_size": 50, "lr": 3e-3, "quiet": True}


def test_run_shrinks_the_model_and_same_seed_same_result(mnist5k, tmp_path):
    data = small_dataset(mnist5k)
    runs, models = [], []
    for _ in range(2):
        model = ts.build_model("mlp", sizes=[784, 64, 32, 10], seed=3)
        runs.append(gl.run(model, data, seed=4, lambda_=10.0, threshold=0.1, **QUICK))
        models.append(model)
    first, second = runs
    units = first.extra["units"]
    assert units == second.extra["units"]
    assert 0 < units["fc1"]["kept"] < 64 and units["fc1"]["of"] == 64
    assert ts.prune.unit_counts(models[0])["fc1"] == units["fc1"]["kept"]
    for (name, a), (_, b) in zip(models[0].state_dict().items(),
                                 models[1].state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert first.test_accuracy == first.extra["shrunk_test_accuracy"]
    assert first.test_accuracy == pytest.approx(first.pruned_test_accuracy, abs=0.011)
    assert 0 < first.sparsity < 1 and first.compression > 1
    path = ts.save(models[0], tmp_path / "gl.npz")
    x = data.x_test[:5]
    np.testing.assert_array_equal(ts.load(path)(x).data, models[0](x).data)


def test_comparison_removes_the_same_number_of_units_by_norm(mnist5k):
    data = small_dataset(mnist5k)
    model = ts.build_model("mlp", sizes=[784, 64, 32, 10], seed=3)
    run = gl.run(model, data, seed=4, lambda_=10.0, threshold=0.1, finetune_epochs=1,
                 compare_norm_removal=True, **QUICK)
    comparison = run.extra["norm_removal"]
    assert comparison["units"] == {name: u["kept"] for name, u in run.extra["units"].items()}
    for key in ("unpruned_test_accuracy", "pruned_test_accuracy", "finetuned_test_accuracy"):
        assert 0 <= comparison[key] <= 1
    assert run.extra["json"]["norm_removal"] is comparison


def test_the_row_of_the_table_has_the_options_run_takes():
    row = METHODS["group-lasso"]
    assert row.run is gl.run
    assert [option.name for option in row.options] == [
        "lambda_", "threshold", "groups", "finetune_epochs", "compare_norm_removal"]
    assert row.options[2].choices == gl.GROUP_KINDS


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("options,expected", [
    ({"lambda_": -0.1}, "lambda_: expected a finite number >= 0"),
    ({"lambda_": math.inf}, "lambda_: expected a finite number >= 0"),
    ({"threshold": 1.0}, "threshold: expected a number in [0, 1)"),
    ({"threshold": -0.01}, "threshold: expected a number in [0, 1)"),
    ({"groups": "rows"}, "groups: expected one of ['incoming', 'outgoing', 'both']"),
    ({"finetune_epochs": 1.5}, "finetune_epochs: expected an integer >= 0"),
])
def test_bad_options_are_refused_naming_the_argument(options, expected, mnist5k):
    arguments = {"lambda_": 1.0, "threshold": 0.05, "groups": "both", **options}
    with pytest.raises(ValueError) as error:
        gl.run(tiny_mlp(), small_dataset(mnist5k), **arguments)
    assert expected in str(error.value)


def test_bad_op_arguments_are_refused():
    w = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(ValueError, match="axis must be an axis of the weight's 2 axes"):
        A.group_lasso(w, axis=2)
    with pytest.raises(ValueError, match=r"one entry per group \(3,\)"):
        A.group_lasso(w, axis=0, group_weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        A.group_lasso(w, axis=0, group_weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"threshold: expected a number in \[0, 1\)"):
        gl.threshold_option("1.5")
    with pytest.raises(ValueError, match="groups: expected one of"):
        gl.penalty(tiny_mlp(), "neurons", input_shape=(6,))
