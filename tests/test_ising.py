"""Ising-dropout (Salehinejad & Valaee 2019): the energy, the solver, the network's Ising
model, the gates that apply a state, and the recipe that ends in a pruned model."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.nn.ising import (
    IsingModel,
    UnitGate,
    anneal,
    brute_force_ground_state,
    ising_energy,
    mlp_layers,
    network_ising_model,
)
from tinysparse.prune import shrink
from tinysparse.sparsify import SparsifyRun
from tinysparse.sparsify import ising as ising_dropout
from tinysparse.sparsify.ising import gated_network, unit_state_masks


def random_model(rng, n, groups=()):
    a = rng.standard_normal((n, n))
    couplings = (a + a.T) / 2
    np.fill_diagonal(couplings, 0.0)
    return IsingModel(couplings, rng.standard_normal(n), groups)


# ---------------------------------------------------------------- the energy


def test_energy_matches_a_hand_computation():
    couplings = np.array([[0.0, 1.0, -2.0], [1.0, 0.0, 0.5], [-2.0, 0.5, 0.0]])
    fields = np.array([0.5, -1.0, 0.0])
    spins = np.array([1, -1, 1])
    # pairs: J01 s0 s1 = -1, J02 s0 s2 = -2, J12 s1 s2 = -0.5  -> -Σ J s s = 3.5
    # fields: h·s = 0.5 + 1 + 0 = 1.5                          -> E = 3.5 - 1.5 = 2
    assert ising_energy(spins, couplings, fields) == pytest.approx(2.0)
    every_state = np.array([[1, 1, 1], [1, -1, 1], [-1, -1, -1]])
    # all up: -(1 - 2 + 0.5) - (0.5 - 1) = 1;  all down: -(-0.5) - (-(0.5 - 1)) = 0
    np.testing.assert_allclose(ising_energy(every_state, couplings, fields), [1.0, 2.0, 0.0])


def test_a_flip_costs_twice_the_spin_times_its_local_field():
    rng = np.random.default_rng(0)
    model = random_model(rng, 7)
    spins = rng.choice([-1, 1], size=7)
    delta = 2 * spins * model.local_fields(spins)  # ΔE_i = 2 s_i f_i
    for i in range(7):
        flipped = spins.copy()
        flipped[i] *= -1
        assert model.energy(flipped) - model.energy(spins) == pytest.approx(delta[i])


# ---------------------------------------------------------------- the solver


@pytest.mark.parametrize("seed", range(8))
def test_annealing_finds_the_brute_force_minimum(seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, int(rng.integers(4, 13)))
    spins, energy = brute_force_ground_state(model)
    result = anneal(model, sweeps=300, restarts=2, seed=seed)
    assert result.energy == pytest.approx(energy)
    assert model.energy(result.spins) == pytest.approx(energy)
    assert result.trace[-1] == pytest.approx(result.energy)  # the running sum did not drift


def test_annealing_a_network_layer_by_layer_finds_the_brute_force_minimum():
    # 5 visible + 4 + 3 hidden units = 12 spins, updated a layer at a time
    for seed in range(4):
        model = ts.nn.mlp([5, 4, 3, 2], flatten=False, seed=seed)
        for _, layer in mlp_layers(model):
            layer.bias.data[:] = np.random.default_rng(seed).normal(0, 0.3, layer.bias.shape)
        network = network_ising_model(model)
        assert [len(g) for g in network.model.groups] == [5, 4, 3]
        _, energy = brute_force_ground_state(network.model)
        assert anneal(network.model, sweeps=200, seed=seed).energy == pytest.approx(energy)


def test_same_seed_same_state_and_the_state_is_a_local_minimum():
    model = random_model(np.random.default_rng(1), 30)
    first, second = anneal(model, sweeps=50, seed=3), anneal(model, sweeps=50, seed=3)
    np.testing.assert_array_equal(first.spins, second.spins)
    np.testing.assert_array_equal(first.trace, second.trace)
    delta = 2 * first.spins * model.local_fields(first.spins)
    assert np.all(delta >= 0)  # no single flip lowers the energy


def test_a_warm_start_at_a_low_temperature_stays_near_its_initial_state():
    model = random_model(np.random.default_rng(2), 10)
    ground, energy = brute_force_ground_state(model)
    result = anneal(model, sweeps=20, t_start=0.01, initial=ground, seed=0)
    np.testing.assert_array_equal(result.spins, ground)
    assert result.energy == pytest.approx(energy)


# ---------------------------------------------------------------- the network's model


def test_network_model_couples_units_by_their_weights_and_fields_by_biases():
    model = ts.nn.mlp([3, 4, 2, 2], flatten=False, seed=0)
    fc1, fc2, fc3 = (layer for _, layer in mlp_layers(model))
    for layer in (fc1, fc2, fc3):
        layer.bias.data[:] = np.arange(layer.bias.size) * 0.1 - 0.05
    network = network_ising_model(model)
    w1, w2, w3 = (layer.weight.data.astype(np.float64) for layer in (fc1, fc2, fc3))
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = rng.choice([-1, 1], size=network.model.n)
        visible, hidden1, hidden2 = (s[network.units[name]] for name in ("input", "fc1", "fc2"))
        outputs = np.ones(2)  # held on
        expected = -(hidden1 @ w1 @ visible + hidden2 @ w2 @ hidden1 + outputs @ w3 @ hidden2
                     + fc1.bias.data @ hidden1 + fc2.bias.data @ hidden2)
        assert network.model.energy(s) == pytest.approx(expected, rel=1e-6)
    keep = network.keep(np.r_[np.ones(3), -np.ones(4), [1, -1]])
    assert keep["input"].all() and not keep["fc1"].any() and list(keep["fc2"]) == [True, False]


def test_without_visible_units_the_inputs_are_held_on():
    model = ts.nn.mlp([3, 4, 2], flatten=False, seed=0)
    network = network_ising_model(model, drop_inputs=False)
    assert list(network.units) == ["fc1"]
    w1, w2 = (layer.weight.data.astype(np.float64) for _, layer in mlp_layers(model))
    np.testing.assert_allclose(network.model.fields, w1.sum(axis=1) + w2.sum(axis=0),
                               rtol=1e-6)


# ---------------------------------------------------------------- applying a state


def test_gates_drop_units_in_train_and_eval_and_stop_their_gradients():
    gate = UnitGate(3)
    gate.set_keep(np.array([True, False, True]))
    x = ts.Tensor(np.ones((2, 3)), requires_grad=True)
    for mode in (gate.train, gate.eval):
        mode()
        np.testing.assert_array_equal(gate(x).data, [[1, 0, 1], [1, 0, 1]])
    gate(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 0, 1], [1, 0, 1]])


def test_the_gated_network_trains_the_models_own_weights():
    model = ts.nn.lenet300(seed=0)
    network, gates = gated_network(model)
    assert list(gates) == ["input", "fc1", "fc2"]
    assert [id(p) for p in network.parameters()] == [id(p) for p in model.parameters()]
    names = list(network._modules)
    assert names.index("ising_input") == names.index("flatten") + 1
    assert names.index("ising_fc1") == names.index("act1") + 1


def test_the_compressed_model_computes_what_the_gated_network_computes(mnist5k):
    model = ts.nn.mlp([784, 40, 30, 10], activation="sigmoid", seed=0)
    ts.fit(model, (mnist5k.x_train[:200], mnist5k.y_train[:200]), epochs=1, quiet=True)
    network, gates = gated_network(model)
    rng = np.random.default_rng(0)
    keep = {name: rng.random(gate.units) < 0.6 for name, gate in gates.items()}
    for name, kept in keep.items():
        gates[name].set_keep(kept)
    x = mnist5k.x_test[:64]
    expected = network(x).data
    compressed = ts.nn.clone(model)
    ts.prune.apply_masks(compressed, unit_state_masks(compressed, keep))
    np.testing.assert_allclose(compressed(x).data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shrink(compressed)(x).data, expected, rtol=1e-5, atol=1e-6)
    assert ts.nn.clone(compressed).state_dict().keys() == model.state_dict().keys()


# ---------------------------------------------------------------- the recipe


def run_small(mnist5k, seed=0, **options):
    data = ts.data.Dataset("small", mnist5k.x_train[:256], mnist5k.y_train[:256],
                           mnist5k.x_test[:200], mnist5k.y_test[:200], num_classes=10)
    model = ts.nn.mlp([784, 32, 16, 10], seed=seed)
    run = ising_dropout.run(model, data, epochs=2, lr=3e-3, batch_size=32, seed=seed,
                            quiet=True, sweeps=60, **options)
    return model, run, data


def test_recipe_ends_in_a_pruned_model_that_drops_the_last_state(mnist5k):
    model, run, data = run_small(mnist5k)
    assert isinstance(run, SparsifyRun) and run.method == "ising"
    assert len(run.extra["cycles"]) == 2 and run.extra["cycles"][0]["changed"] is None
    keep = {name: np.array(kept) for name, kept in run.extra["keep"].items()}
    assert run.extra["kept_units"] == {name: int(k.sum()) for name, k in keep.items()}
    masks = dict(ts.nn.as_dense(model).named_masks())
    # a dropped hidden unit: no incoming weight, no bias, no reader; a dropped pixel: no column
    assert not masks["fc1.weight"].keep[~keep["fc1"]].any()
    assert not masks["fc1.bias"].keep[~keep["fc1"]].any()
    assert not masks["fc2.weight"].keep[:, ~keep["fc1"]].any()
    assert not masks["fc1.weight"].keep[:, ~keep["input"]].any()
    assert masks["fc1.weight"].keep[np.ix_(keep["fc1"], keep["input"])].all()
    assert run.test_accuracy == ts.evaluate(model, *data.test)["accuracy"]
    assert run.compression == pytest.approx(1 / (1 - run.sparsity))
    assert 0 < run.extra["parameter_reduction"] < 1


def test_same_seed_same_dropout_states_and_weights(mnist5k):
    first_model, first, _ = run_small(mnist5k, seed=3)
    second_model, second, _ = run_small(mnist5k, seed=3)
    assert first.extra["cycles"] == second.extra["cycles"]
    assert first.extra["keep"] == second.extra["keep"]
    for name, values in first_model.state_dict().items():
        np.testing.assert_array_equal(values, second_model.state_dict()[name])
    _, other, _ = run_small(mnist5k, seed=4)
    assert other.extra["keep"] != first.extra["keep"]


def test_hidden_units_only(mnist5k):
    _, run, _ = run_small(mnist5k, drop_inputs=False)
    assert "input" not in run.extra["keep"]


def test_warm_start_is_seeded_too(mnist5k):
    first = run_small(mnist5k, seed=1, warm_start=True)[1]
    assert first.extra["cycles"] == run_small(mnist5k, seed=1, warm_start=True)[1].extra["cycles"]


# ---------------------------------------------------------------- bad input


def test_bad_input_names_the_argument():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="couplings: J must be symmetric"):
        IsingModel(rng.standard_normal((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="couplings: the diagonal"):
        IsingModel(np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"fields: expected shape \(3,\)"):
        IsingModel(np.zeros((3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="groups: expected a partition"):
        IsingModel(np.zeros((3, 3)), np.zeros(3), groups=[[0, 1]])
    with pytest.raises(ValueError, match="groups: group 0 has coupled spins"):
        random_model(rng, 3, groups=[[0, 1], [2]])
    model = random_model(rng, 3)
    with pytest.raises(ValueError, match="spins: every spin must be -1"):
        model.energy([1, 0, -1])
    with pytest.raises(ValueError, match="spins: expected 3 spins"):
        model.energy([1, 1])
    with pytest.raises(ValueError, match="sweeps: expected a positive integer"):
        anneal(model, sweeps=0)
    with pytest.raises(ValueError, match="t_start, t_end"):
        anneal(model, t_start=0.1, t_end=1.0)
    with pytest.raises(ValueError, match="initial: expected one state of 3 spins"):
        anneal(model, initial=np.ones((2, 3)))
    with pytest.raises(ValueError, match="2\\^3 states; max_spins=2"):
        brute_force_ground_state(model, max_spins=2)
    with pytest.raises(ValueError, match="model: Ising-dropout works on MLPs.*'reshape'"):
        mlp_layers(ts.nn.lenet5())
    with pytest.raises(ValueError, match="model: Ising-dropout works on an MLP"):
        mlp_layers(ts.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="units: expected a positive integer"):
        UnitGate(0)
    with pytest.raises(ValueError, match="keep must be a boolean vector of 3 units"):
        UnitGate(3).set_keep(np.ones(4, dtype=bool))
    data = ts.data.xor()
    for options, message in (({"sweeps": 0}, "sweeps"), ({"restarts": 1.5}, "restarts"),
                             ({"drop_inputs": "yes"}, "drop_inputs"),
                             ({"warm_start": 1}, "warm_start"),
                             ({"epochs": 0}, "epochs")):
        arguments = {"epochs": 1, "lr": 1e-3, "batch_size": 4, "seed": 0, "quiet": True,
                     **options}
        with pytest.raises(ValueError, match=message):
            ising_dropout.run(ts.nn.mlp([2, 4, 2], flatten=False), data, **arguments)
