"""L0 regularisation with hard-concrete gates (Louizos et al. 2018): the gates'
statistics against their closed forms, the layers, the conversions, the recipe (seeds,
masks and removed units that never regrow, bad input), and remove_units."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.autograd import Tensor, gradcheck, no_grad
from tinysparse.autograd.nn_ops import (
    HARD_CONCRETE_BETA,
    HARD_CONCRETE_GAMMA,
    HARD_CONCRETE_ZETA,
)
from tinysparse.nn import L0Conv2d, L0Linear, expected_l0, from_l0, to_l0
from tinysparse.nn.l0 import deterministic_gates, probability_nonzero
from tinysparse.sparsify import l0


def sampled_gates(log_alpha: float, n: int, seed: int = 0) -> np.ndarray:
    layer = L0Linear(n, 1, seed=seed, dtype=np.float64)
    layer.log_alpha.data[:] = log_alpha
    with no_grad():
        return layer.sample_gates().data.ravel()


@pytest.mark.parametrize("log_alpha", [-4.0, -2.0, -1.0, 0.0, 1.0, 3.0])
def test_probability_of_a_nonzero_gate_matches_its_closed_form(log_alpha):
    # z = 0 exactly when the stretched sample s(ζ − γ) + γ ≤ 0, i.e. s ≤ t = −γ/(ζ − γ).
    # s = σ((L + log α)/β) with L ~ Logistic(0, 1), so Q(s ≤ t) = σ(β logit(t) − log α)
    # and logit(t) = log(−γ/ζ):  P(z ≠ 0) = σ(log α − β log(−γ/ζ)), the quantity the
    # expected-L0 penalty sums. Likewise z = 1 when s ≥ (1 − γ)/(ζ − γ):
    # P(z = 1) = σ(log α − β log((1 − γ)/(ζ − 1))).
    n = 200_000
    z = sampled_gates(log_alpha, n)
    assert z.min() >= 0 and z.max() <= 1
    nonzero = float(probability_nonzero(np.array(log_alpha)))
    one = 1 / (1 + np.exp(-(log_alpha - HARD_CONCRETE_BETA * np.log(
        (1 - HARD_CONCRETE_GAMMA) / (HARD_CONCRETE_ZETA - 1)))))
    # a fraction of n Bernoulli(p) draws: standard error √(p(1 − p)/n)
    for observed, p in ((np.mean(z != 0), nonzero), (np.mean(z == 1), one)):
        assert abs(observed - p) <= 5 * np.sqrt(p * (1 - p) / n), (observed, p)


def test_test_time_gates_and_the_penalty():
    log_alpha = np.array([-5.0, -2.4, -2.3, 0.0, 2.3, 2.4, 5.0])
    gates = deterministic_gates(log_alpha)
    expected = np.clip(1 / (1 + np.exp(-log_alpha)) * 1.2 - 0.1, 0, 1)
    np.testing.assert_allclose(gates, expected)
    assert gates[0] == gates[1] == 0 and gates[2] > 0 and gates[-2] == gates[-1] == 1
    layer = L0Conv2d(3, 4, 3, gates="unit", dtype=np.float64)
    layer.log_alpha.data[:] = [-3.0, 0.0, 1.0, 4.0]
    penalty = float(layer.expected_l0().data)
    assert penalty == pytest.approx(27 * probability_nonzero(layer.log_alpha.data).sum())


@pytest.mark.parametrize("make, input_shape", [
    (lambda: L0Linear(5, 3, gates="weight", seed=1, dtype=np.float64), (4, 5)),
    (lambda: L0Linear(5, 3, gates="unit", seed=1, dtype=np.float64), (4, 5)),
    (lambda: L0Conv2d(2, 3, 3, padding=1, gates="weight", seed=1, dtype=np.float64),
     (2, 2, 5, 5)),
    (lambda: L0Conv2d(2, 3, 3, padding=1, gates="unit", seed=1, dtype=np.float64),
     (2, 2, 5, 5)),
], ids=["linear-weight", "linear-unit", "conv2d-weight", "conv2d-unit"])
def test_layer_loss_with_penalty_gradcheck_with_frozen_noise(make, input_shape):
    layer = make()
    rng = np.random.default_rng(2)
    x = rng.standard_normal(input_shape)
    log_alpha = rng.uniform(-1.0, 1.5, layer.log_alpha.shape)

    def loss(weight, log_alpha, bias):
        layer.weight, layer.log_alpha, layer.bias = weight, log_alpha, bias
        layer.rng = np.random.default_rng(3)  # the same gate noise every call
        out = layer(Tensor(x))
        return (out * out).sum() + layer.expected_l0() * 0.1

    assert gradcheck(loss, [layer.weight.data.copy(), log_alpha,
                            rng.standard_normal(layer.bias.shape)])


@pytest.mark.parametrize("gates", ["weight", "unit"])
def test_from_l0_computes_what_the_gated_model_computes_in_eval(gates, mnist5k):
    model = to_l0(ts.nn.lenet5(seed=0), gates=gates, seed=0)
    gated = [m for m in model.modules() if isinstance(m, ts.nn.L0Layer)]
    assert len(gated) == (5 if gates == "weight" else 4)  # the output units stay
    assert len({layer.seed for layer in gated}) == len(gated)
    rng = np.random.default_rng(1)
    for layer in gated:
        layer.log_alpha.data[:] = rng.uniform(-4, 4, layer.log_alpha.shape)
    x = mnist5k.x_test[:16]
    model.eval()
    expected = model(x).data
    np.testing.assert_array_equal(model(x).data, expected)  # no noise in eval
    _, final = from_l0(model)
    assert not any(isinstance(m, ts.nn.L0Layer) for m in model.modules())
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-5, atol=1e-5)
    closed = final["conv2"] == 0
    assert closed.any() and not closed.all()


def small_dataset(mnist5k, n_train=300, n_test=200):
    return ts.data.Dataset("mnist-5k-small", mnist5k.x_train[:n_train],
                           mnist5k.y_train[:n_train], mnist5k.x_test[:n_test],
                           mnist5k.y_test[:n_test], num_classes=10)


# The gates start barely open (p = 0.91: ẑ = 0.008), so that a short run closes some of
# them and exercises the whole recipe.
# A unit's gate carries the penalty of its 784 or 300 incoming weights: a smaller λ.
QUICK = {"epochs": 2, "batch_size": 50, "lr": 1e-2, "initial_drop_rate": 0.91, "quiet": True}
QUICK_LAMBDA = {"weight": 0.1, "unit": 0.002}


@pytest.mark.parametrize("gates", ["weight", "unit"])
def test_run_same_seed_same_result_and_nothing_regrows(gates, mnist5k, tmp_path):
    data = small_dataset(mnist5k)
    runs, models = [], []
    for _ in range(2):
        model = ts.nn.lenet300(seed=0)
        runs.append(l0.run(model, data, seed=3, gates=gates, lambda_=QUICK_LAMBDA[gates],
                           **QUICK))
        models.append(model)
    first, second = runs
    assert first.to_dict() == {**second.to_dict(), "extra": {
        **second.extra, "seconds": first.extra["seconds"]}, "history": [
        {**b, "seconds": a["seconds"]} for a, b in zip(first.history, second.history)]}
    for (name, a), (_, b) in zip(models[0].state_dict().items(),
                                 models[1].state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    model = models[0]
    assert 0 < first.sparsity < 1
    assert first.test_accuracy == pytest.approx(first.extra["gated_test_accuracy"], abs=0.006)
    masks = {name: mask.keep.copy() for name, mask in model.named_masks()}
    if gates == "unit":
        units = first.extra["units"]
        assert set(units) == {"fc1", "fc2"} and units["fc1"]["kept"] < 300
        removed = ~masks["fc1.weight"].any(axis=1)
        assert removed.sum() == 300 - units["fc1"]["kept"]
        assert not masks["fc2.weight"][:, removed].any()  # the readers' columns go too
        assert not masks["fc1.bias"][removed].any()
        small = ts.prune.shrink(model)
        assert ts.prune.unit_counts(small)["fc1"] == units["fc1"]["kept"]
        x = mnist5k.x_test[:10]
        np.testing.assert_allclose(small(x).data, model(x).data, rtol=1e-4, atol=1e-5)
    ts.fit(model, data, epochs=2, lr=1e-2, quiet=True)
    ts.io.save(model, tmp_path / "pruned.npz")
    for state in (model.state_dict(), ts.io.load(tmp_path / "pruned.npz").state_dict()):
        for name, keep in masks.items():
            assert not state[name][~keep].any(), name


def test_remove_units_masks_rows_biases_and_readers():
    model = ts.nn.lenet5(seed=0)
    masks = ts.prune.remove_units(model, {"conv2": [0, 5], "fc1": np.array([3])})
    assert not masks["conv2.weight"].keep[[0, 5]].any()
    assert not masks["conv2.bias"].keep[[0, 5]].any()
    # conv2's channels reach fc1 through a Flatten: 5·5 = 25 columns per channel
    assert not masks["fc1.weight"].keep[:, 0:25].any()
    assert np.delete(masks["fc1.weight"].keep, 3, axis=0)[:, 25:125].all()
    assert not masks["fc1.weight"].keep[3].any() and not masks["fc2.weight"].keep[:, 3].any()
    with pytest.raises(ValueError, match=r"removed: \['fc3'\] is not"):
        ts.prune.remove_units(ts.nn.lenet5(), {"fc3": [0]})
    with pytest.raises(ValueError, match=r"removed\['fc1'\]"):
        ts.prune.remove_units(ts.nn.lenet5(), {"fc1": [120]})


def test_expected_l0_of_a_model():
    model = to_l0(ts.nn.mlp([4, 3, 2], flatten=False), gates="unit")
    layer = model.get_submodule("fc1")
    assert float(expected_l0(model).data) == pytest.approx(
        4 * probability_nonzero(layer.log_alpha.data).sum())


def test_bad_input(mnist5k):
    data = small_dataset(mnist5k, 20, 10)
    for option, value in [("gates", "neuron"), ("lambda_", -1.0),
                          ("initial_drop_rate", 1.0), ("initial_drop_rate", 0),
                          ("pretrain_epochs", 1.5)]:
        with pytest.raises(ValueError, match=option):
            l0.run(ts.nn.lenet300(), data, epochs=1, quiet=True, **{option: value})
    with pytest.raises(ValueError, match="data"):
        l0.run(ts.nn.lenet300(), data.train, epochs=1, quiet=True)
    with pytest.raises(ValueError, match="model"):
        l0.run(ts.nn.Linear(784, 10), data, epochs=1, quiet=True)
    pruned = ts.nn.lenet300()
    ts.prune.prune(pruned, 0.5)
    with pytest.raises(ValueError, match="pruned already"):
        to_l0(pruned)
    with pytest.raises(ValueError, match="no hidden Linear or Conv2d"):
        to_l0(ts.nn.mlp([4, 2], flatten=False), gates="unit")
    with pytest.raises(ValueError, match="gates"):
        L0Linear(3, 2, gates="row")
    with pytest.raises(ValueError, match="initial_drop_rate"):
        L0Conv2d(1, 2, 3, initial_drop_rate=-0.1)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ts.autograd.hard_concrete(Tensor(np.zeros(3)), np.array([0.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match="noise must have the output's shape"):
        ts.autograd.hard_concrete(Tensor(np.zeros(3)), np.full(4, 0.5))


@pytest.mark.parametrize("gates", ["weight", "unit"])
def test_reading_any_attribute_changes_nothing_a_training_step_computes(gates):
    from test_architecture import read_everything

    def train(read):
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((16, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 16)
        model = to_l0(ts.nn.lenet5(seed=0), gates=gates, seed=0)
        optimizer = ts.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(3):
            if read:
                read_everything(model)
            loss = ts.autograd.cross_entropy(model(x), y) + expected_l0(model) * 1e-4
            optimizer.zero_grad()
            loss.backward()
            if read:
                read_everything(model)
            optimizer.step()
            losses.append(loss.item())
        return losses

    assert train(read=True) == train(read=False)


def test_closed_unit_gates_of_a_convolutional_network_become_a_shrinkable_model(mnist5k):
    model = to_l0(ts.nn.lenet5(seed=0), gates="unit", seed=0)
    closed = {"conv1": [1], "conv2": [0, 7, 8], "fc1": list(range(0, 120, 3)), "fc2": [5]}
    for name, units in closed.items():
        model.get_submodule(name).log_alpha.data[units] = -5.0  # ẑ = 0
    x = mnist5k.x_test[:10]
    expected = model.eval()(x).data
    units = l0.prune_closed_gates(model)
    assert units == {name: {"kept": len(model.get_submodule(name).bias.data) - len(removed),
                            "of": len(model.get_submodule(name).bias.data)}
                     for name, removed in closed.items()}
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-5, atol=1e-5)
    small = ts.prune.shrink(model)
    for name, counts in units.items():
        assert ts.prune.unit_counts(small)[name] == counts["kept"]
    np.testing.assert_allclose(small(x).data, expected, rtol=1e-4, atol=1e-5)
