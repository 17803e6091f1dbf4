"""Modules, layers, models, initialisers, state dicts."""

import json

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.nn import Conv2d, Linear, ReLU, Sequential, build_from_spec, init
from tinysparse.nn.module import Module, spec_state_entries


def test_lenet_parameter_counts_and_names():
    lenet300 = ts.nn.lenet300()
    assert lenet300.num_parameters() == 266_610
    assert [n for n, _ in lenet300.named_parameters()] == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    lenet5 = ts.nn.lenet5()
    assert lenet5.num_parameters() == 61_706
    assert lenet5.conv1.weight.shape == (6, 1, 5, 5)


@pytest.mark.parametrize("shape", [(7, 784), (7, 28, 28), (7, 1, 28, 28)])
def test_models_accept_flat_or_image_batches(shape):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    for model in (ts.nn.lenet300(), ts.nn.lenet5()):
        assert model(x).shape == (7, 10)


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, c = ts.nn.lenet5(seed=3), ts.nn.lenet5(seed=3), ts.nn.lenet5(seed=4)
    for (_, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(),
                                      c.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        if p.ndim > 1:
            assert not np.array_equal(p.data, r.data)


@pytest.mark.parametrize("name,expected_std", [
    ("glorot_normal", np.sqrt(2 / (400 + 300))),
    ("he_normal", np.sqrt(2 / 400)),
    ("glorot_uniform", np.sqrt(6 / (400 + 300)) / np.sqrt(3)),
    ("he_uniform", np.sqrt(6 / 400) / np.sqrt(3)),
])
def test_initialiser_scales(name, expected_std):
    w = init.get_initializer(name)((300, 400), np.random.default_rng(0))
    assert abs(w.std() / expected_std - 1) < 0.02
    assert abs(w.mean()) < 0.01 * expected_std * 10


def test_conv_fans_count_the_kernel_area():
    assert init.fans((16, 6, 5, 5)) == (150, 400)


def test_linear_shape_error_names_the_layer_and_shapes():
    model = ts.nn.lenet300()
    with pytest.raises(ValueError, match=r"Linear 'fc2' \(300 -> 100\).*\(N, 300\).*\(4, 7\)"):
        model.fc2(ts.Tensor(np.ones((4, 7))))


def test_conv_shape_error_names_the_layer_and_shapes():
    model = ts.nn.lenet5()
    with pytest.raises(ValueError, match=r"Conv2d 'conv2'.*\(N, 6, H, W\).*\(2, 3, 14, 14\)"):
        model.conv2(ts.Tensor(np.ones((2, 3, 14, 14))))
    with pytest.raises(ValueError, match="784 values each"):
        model(np.ones((2, 100)))


def test_state_dict_round_trip_and_errors():
    a, b = ts.nn.lenet300(seed=0), ts.nn.lenet300(seed=1)
    b.load_state_dict(a.state_dict())
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    state = a.state_dict()
    state["fc1.weight"][0, 0] = 123.0  # a copy: the model is untouched
    assert a.fc1.weight.data[0, 0] != 123.0
    with pytest.raises(KeyError, match="missing keys"):
        b.load_state_dict({"fc1.weight": state["fc1.weight"]})
    state["fc2.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"fc2.weight has shape \(100, 300\)"):
        b.load_state_dict(state)


def test_spec_rebuilds_the_same_architecture():
    for model in (ts.nn.lenet5(), ts.nn.mlp([4, 8, 3], activation="tanh")):
        rebuilt = build_from_spec(model.spec())
        assert rebuilt.spec() == model.spec()
        assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == [
            (n, p.shape) for n, p in model.named_parameters()]


def test_train_eval_modes_propagate():
    model = ts.nn.lenet5()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_predict_and_predict_proba():
    model = ts.nn.mlp([4, 5, 3])
    x = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    proba = model.predict_proba(x, batch_size=4)
    assert proba.shape == (6, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), proba.argmax(axis=1))
    assert model.training  # restored


def test_double_converts_parameters():
    model = ts.nn.lenet300().double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model(np.ones((1, 784))).dtype == np.float64


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 3)
    with pytest.raises(ValueError, match="padding"):
        Conv2d(1, 1, 3, padding=-1)
    with pytest.raises(ValueError, match="unknown initialiser 'xavier'"):
        Linear(2, 3, init="xavier")
    with pytest.raises(ValueError, match="choose one of"):
        ts.build_model("resnet")
    with pytest.raises(ValueError, match="two layers are called"):
        Sequential(("a", ReLU()), ("a", ReLU()))


def test_module_must_call_super_init():
    class Broken(ts.nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_spec_state_entries_agree_with_every_layer_type():
    """What a spec declares, computed without building (what load checks a file against),
    is what the layer holds: for every layer type of tinysparse."""
    mask = np.random.default_rng(0).random((4, 3, 2, 2)) < 0.5
    layers = [ts.nn.Linear(3, 4), ts.nn.Linear(3, 4, bias=False), ts.nn.Conv2d(3, 4, 2),
              ts.nn.Conv2d(3, 4, 2, stride=2, padding=1, bias=False), ts.nn.MaxPool2d(2),
              ts.nn.Flatten(), ts.nn.Reshape(1, 2), ts.nn.ReLU(), ts.nn.Tanh(),
              ts.nn.Sigmoid(), ts.nn.SparseLinear(3, 4, mask[:, :, 0, 0]),
              ts.nn.SparseConv2d(3, 4, 2, mask), ts.nn.lenet5(), ts.nn.Dropout(0.3, seed=2),
              ts.nn.Linear(3, 4, weight_noise=ts.nn.DropConnect(0.5, seed=1)),
              ts.nn.Conv2d(3, 4, 2, weight_noise=ts.nn.TargetedDropout(0.5, 0.5, seed=3)),
              ts.nn.lenet300(dropout=0.5, input_dropout=0.2, dropconnect=0.5),
              ts.nn.ising.UnitGate(5), ts.nn.VariationalLinear(3, 4, seed=1),
              ts.nn.VariationalConv2d(3, 4, 2, padding=1, bias=False, seed=2),
              ts.nn.L0Linear(3, 4, gates="unit", seed=3), ts.nn.L0Conv2d(3, 4, 2, seed=4)]
    built = {type(m).__name__ for m in layers}
    assert built >= {name for name, cls in Module.registry.items()
                     if cls.__module__.startswith("tinysparse.")}
    for module in layers:
        declared = type(module).spec_arguments
        required = {name for name, kind in declared.items() if not kind.optional}
        assert required <= set(module.constructor_args()) <= set(declared)
        entries = spec_state_entries(json.loads(json.dumps(module.spec())))
        assert {name: entry.shape for name, entry in entries.items()} == module.state_shapes()
        assert {name for name, entry in entries.items() if entry.needs_mask} == (
            {"weight"} if isinstance(module, ts.nn.SparseLayer) else set())


def test_sequential_refuses_names_that_would_replace_attributes():
    """A layer called "eval" or "config" would replace the model's method or attribute;
    "a.b" could not be found by its dotted name."""
    for name in ("eval", "forward", "training", "config", "snapshots", "a.b", "", 3):
        with pytest.raises(ValueError, match="layer"):
            Sequential((name, ReLU()))
