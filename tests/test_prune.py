"""Masks and magnitude pruning: invariants, the PyTorch oracle, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysparse as ts
from tinysparse.metrics import sparsity_report
from tinysparse.optim import SGD, Adam
from tinysparse.prune import (
    cubic_sparsity,
    iterative_targets,
    layer_sparsities,
    prunable_parameters,
    prune,
    prune_and_retrain,
    select_masks,
    sensitivity,
    sparsity_of,
    threshold,
)
from tinysparse.sparse import Mask


def random_scores(seed, shapes):
    rng = np.random.default_rng(seed)
    return {f"p{i}": rng.standard_normal(shape) for i, shape in enumerate(shapes)}


shapes_strategy = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1,
                           max_size=4)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shapes=shapes_strategy,
       sparsity=st.floats(0, 0.999), scope=st.sampled_from(["layer", "global"]))
def test_achieved_sparsity_is_exact_and_a_threshold_separates(seed, shapes, sparsity, scope):
    scores = random_scores(seed, shapes)
    masks = select_masks(scores, sparsity, scope)
    assert list(masks) == list(scores)
    for name, mask in masks.items():
        assert mask.shape == scores[name].shape
    if scope == "layer":
        for mask in masks.values():
            assert abs(mask.pruned - sparsity * mask.size) <= 0.5 + 1e-9  # exact to one weight
    else:
        total = sum(m.size for m in masks.values())
        assert abs(sum(m.pruned for m in masks.values()) - sparsity * total) <= 0.5 + 1e-9
        cut = threshold(scores, masks)
        for name, mask in masks.items():  # every kept score is above every pruned one
            assert np.all(scores[name][mask.keep] >= cut)
    if scope == "layer":
        for name, mask in masks.items():
            if mask.pruned and mask.kept:
                assert scores[name][mask.keep].min() >= scores[name][~mask.keep].max()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), shapes=shapes_strategy,
       first=st.floats(0, 0.9), second=st.floats(0, 0.99),
       scope=st.sampled_from(["layer", "global"]))
def test_successive_masks_only_add_zeros(seed, shapes, first, second, scope):
    scores = random_scores(seed, shapes)
    before = select_masks(scores, first, scope)
    rescored = random_scores(seed + 1, shapes)  # new scores, e.g. after retraining
    after = select_masks(rescored, second, scope, previous=before)
    for name in scores:
        assert not np.any(after[name].keep & ~before[name].keep)
        assert after[name].pruned >= before[name].pruned


def test_overrides_prune_a_layer_at_its_own_rate():
    scores = random_scores(0, [(10, 10), (10, 10)])
    masks = select_masks(scores, 0.8, "global", overrides={"p1": 0.4})
    assert masks["p1"].pruned == 40
    masks = select_masks(scores, {"p0": 0.5, "p1": 0.1})
    assert (masks["p0"].pruned, masks["p1"].pruned) == (50, 10)


def test_all_ones_mask_changes_nothing(mnist5k):
    model = ts.nn.lenet5(seed=0)
    x = mnist5k.x_test[:8]
    before = model(x).data
    for name in prunable_parameters(model):
        module_name, _, param = name.rpartition(".")
        model.get_submodule(module_name).set_mask(param, Mask.ones(model.get_parameter(name).shape))
    np.testing.assert_array_equal(model(x).data, before)


@pytest.mark.parametrize("make_optimizer", [
    lambda p: SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
    lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda p: Adam(p, lr=1e-2, weight_decay=1e-2),
], ids=["sgd_momentum_wd", "nesterov", "adam"])
def test_pruned_weights_stay_exactly_zero_for_100_steps(make_optimizer, mnist5k):
    model = ts.nn.lenet5(seed=0)
    optimizer = make_optimizer(model.parameters())
    x, y = mnist5k.x_train[:64], mnist5k.y_train[:64]
    with ts.sparse.density_threshold_set(0.0):  # the layers stay dense, masked
        for step in range(100):
            if step == 10:  # prune mid-training: momentum and moments are already non-zero
                masks = prune(model, 0.8)
            loss = ts.autograd.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for name, mask in masks.items():
        assert np.all(model.get_parameter(name).data[~mask.keep] == 0), name
        assert np.all(model.get_parameter(name).data[mask.keep] != 0), name
    for key, buffer in optimizer.state[id(model.conv2.weight)].items():
        if isinstance(buffer, np.ndarray):  # momentum, moments: zero where pruned too
            assert np.all(buffer[~masks["conv2.weight"].keep] == 0), key


def test_an_optimiser_built_before_pruning_moved_its_layers_refuses(mnist5k):
    model = ts.nn.lenet300(seed=0)
    optimizer = ts.optim.Adam(model.parameters())
    prune(model, 0.9)  # fc1, fc2 and fc3 move to the sparse kernels: new parameters
    ts.autograd.cross_entropy(model(mnist5k.x_train[:8]), mnist5k.y_train[:8]).backward()
    with pytest.raises(RuntimeError, match="SparseLinear 'fc1'.*after pruning"):
        optimizer.step()


def test_load_state_dict_cannot_revive_pruned_weights():
    model = ts.nn.lenet300(seed=0)
    dense_state = model.state_dict()
    masks = prune(model, 0.5)
    model.load_state_dict(dense_state)
    assert np.all(model.fc1.weight.data[~masks["fc1.weight"].keep] == 0)


def test_save_load_keeps_masks_and_initial_weights(tmp_path):
    model = ts.nn.lenet300(seed=0)
    theta_0 = ts.prune.snapshot(model, "init")
    masks = prune(model, 0.7, scope="global")
    loaded = ts.load(ts.save(model, tmp_path / "pruned.npz"))
    for name, mask in masks.items():
        assert dict(loaded.named_masks())[name] == mask
    for name, values in theta_0.items():
        np.testing.assert_array_equal(loaded.snapshots["init"][name], values)


def test_rewinding_restores_theta0_exactly_on_kept_weights(mnist5k):
    model = ts.nn.lenet300(seed=0)
    theta_0 = ts.prune.snapshot(model)
    ts.fit(model, (mnist5k.x_train[:256], mnist5k.y_train[:256]), epochs=1, quiet=True)
    masks = prune(model, 0.8)
    ts.prune.rewind_to(model, "init")
    state = model.state_dict()
    for name, mask in masks.items():
        values = state[name]
        np.testing.assert_array_equal(values[mask.keep], theta_0[name][mask.keep])
        assert np.all(values[~mask.keep] == 0)
    with pytest.raises(KeyError, match="no snapshot 'late'"):
        ts.prune.rewind_to(model, "late")


def test_prune_reports_and_sparsity_helpers():
    model = ts.nn.lenet5(seed=0)
    prune(model, 0.9, overrides={"fc3.weight": 0.45})
    layers = layer_sparsities(model)
    assert layers["conv1.weight"] == pytest.approx(0.9, abs=1 / 150)
    assert layers["fc3.weight"] == pytest.approx(0.45, abs=1 / 840)
    report = sparsity_report(model)
    rows = {r["layer"]: r for r in report.rows}
    assert rows["conv1.weight"]["dense_macs"] == 150 * 28 * 28  # every kernel weight, OH·OW
    assert rows["conv2.weight"]["dense_macs"] == 2400 * 10 * 10
    assert rows["fc1.weight"]["sparse_macs"] == rows["fc1.weight"]["nonzero"]
    assert report.total["weights"] == sum(r["weights"] for r in report.rows)
    assert report.total["sparsity"] == pytest.approx(sparsity_of(model))
    assert "total" in report.table()


def test_schedules():
    assert iterative_targets(0.9, 2) == pytest.approx([1 - 0.1**0.5, 0.9])
    assert cubic_sparsity(0, 0.9, end=100) == 0
    assert cubic_sparsity(100, 0.9, end=100) == 0.9
    assert cubic_sparsity(50, 0.8, end=100) == pytest.approx(0.8 * (1 - 0.5**3))
    values = [cubic_sparsity(t, 0.9, end=100) for t in range(101)]
    assert all(b >= a for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("schedule", ["oneshot", "iterative", "gradual"])
def test_prune_and_retrain_reaches_the_target(schedule, mnist5k):
    small = ts.data.Dataset("small", mnist5k.x_train[:600], mnist5k.y_train[:600],
                            mnist5k.x_test[:200], mnist5k.y_test[:200], 10)
    model = ts.nn.mlp([784, 64, 10], seed=0)
    ts.fit(model, small, epochs=2, quiet=True)
    run = prune_and_retrain(model, small, 0.8, schedule=schedule, rounds=2, retrain_epochs=2,
                            overrides={"fc2.weight": 0.4})
    assert run.layers["fc2.weight"] == pytest.approx(0.4, abs=1e-3)
    assert run.layers["fc1.weight"] == pytest.approx(0.8, abs=1e-3)
    assert run.pruned_test_accuracy is not None and run.test_accuracy > 0.5
    assert len(run.rounds) >= (1 if schedule == "oneshot" else 2)


def test_sensitivity_leaves_the_model_alone(mnist5k):
    model = ts.nn.mlp([784, 32, 10], seed=0)
    ts.fit(model, (mnist5k.x_train[:500], mnist5k.y_train[:500]), epochs=2, quiet=True)
    before = model.state_dict()
    records = sensitivity(model, mnist5k.x_test[:200], mnist5k.y_test[:200],
                          sparsities=[0.0, 0.9])
    assert len(records) == 4 and not list(model.named_masks())
    for name, values in before.items():
        np.testing.assert_array_equal(model.state_dict()[name], values)
    zero = [r for r in records if r["sparsity"] == 0.0]
    full = ts.evaluate(model, mnist5k.x_test[:200], mnist5k.y_test[:200])["accuracy"]
    assert all(r["accuracy"] == full for r in zero)


def test_random_pruning_is_worse_than_magnitude(mnist5k):
    model = ts.nn.lenet300(seed=0)
    ts.fit(model, mnist5k, epochs=2, quiet=True)
    magnitude, random = ts.prune.clone(model), ts.prune.clone(model)
    prune(magnitude, 0.9)
    prune(random, 0.9, method="random", seed=0)
    assert ts.evaluate(magnitude, *mnist5k.test)["accuracy"] > \
        ts.evaluate(random, *mnist5k.test)["accuracy"] + 0.2


def test_bad_input_is_rejected_clearly():
    model = ts.nn.lenet300()
    for bad in (-0.1, 1.0, 1.5, "a lot"):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            prune(model, bad)
    with pytest.raises(ValueError, match="unknown 'taylor'.*magnitude"):
        prune(model, 0.5, method="taylor")
    with pytest.raises(ValueError, match="unknown 'channel'.*global"):
        prune(model, 0.5, scope="channel")
    with pytest.raises(ValueError, match=r"mask of shape \(2, 2\) does not fit"):
        model.fc1.set_mask("weight", np.ones((2, 2)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        Mask([0, 0.5, 1])
    with pytest.raises(ValueError, match="not weights of the model"):
        prune(model, 0.5, parameters=["fc9.weight"])
    with pytest.raises(ValueError, match="overrides"):
        prune(model, 0.5, overrides={"fc9.weight": 0.1})


def test_mask_object():
    mask = Mask([[True, False], [False, False]])
    assert (mask.kept, mask.pruned, mask.sparsity, mask.density) == (1, 3, 0.75, 0.25)
    assert not mask.keep.flags.writeable
    np.testing.assert_array_equal(mask.apply(np.full((2, 2), 3.0)), [[3.0, 0.0], [0.0, 0.0]])
    assert (mask & Mask([[1, 1], [1, 0]])) == mask


@pytest.mark.torch
def test_global_magnitude_matches_torch_global_unstructured(torch):
    import torch.nn.utils.prune as torch_prune

    model = ts.nn.lenet300(seed=3).double()
    twin = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.Linear(300, 100),
                               torch.nn.Linear(100, 10))
    with torch.no_grad():
        for layer, name in zip(twin, ["fc1", "fc2", "fc3"]):
            layer.weight.copy_(torch.tensor(model.get_parameter(f"{name}.weight").data))
    masks = prune(model, 0.83, scope="global")
    torch_prune.global_unstructured([(layer, "weight") for layer in twin],
                                    pruning_method=torch_prune.L1Unstructured, amount=0.83)
    for layer, name in zip(twin, ["fc1", "fc2", "fc3"]):
        np.testing.assert_array_equal(masks[f"{name}.weight"].keep,
                                      layer.weight_mask.numpy().astype(bool))


def test_pruning_refuses_to_empty_a_whole_layer_unless_allowed():
    model = ts.nn.mlp([6, 5, 3], seed=0, flatten=False)
    with pytest.raises(ValueError, match=r"every weight of fc1\.weight, fc2\.weight.*"
                                         r"allow_empty_layers=True"):
        prune(model, 0.999)
    assert not dict(model.named_masks())  # nothing was applied
    prune(model, 0.999, allow_empty_layers=True)
    rows = {r["layer"]: r for r in sparsity_report(model, input_shape=(6,)).rows}
    assert rows["fc1.weight"]["nonzero"] == 0 and rows["fc1.weight"]["dead_units"] == 5
    with pytest.raises(ValueError, match="allow_empty_layers"):
        ts.prune.apply_masks(ts.nn.mlp([6, 5, 3], seed=0, flatten=False),
                             {"fc2.weight": np.zeros((3, 5), dtype=bool)})


def test_the_sparsity_report_counts_units_left_with_no_input():
    model = ts.nn.lenet300(seed=0)
    ts.prune.structured_prune(model, 0.5)  # half the hidden units lose every input weight
    rows = {r["layer"]: r for r in sparsity_report(model).rows}
    assert rows["fc1.weight"]["dead_units"] == 150 and rows["fc2.weight"]["dead_units"] == 50
    assert rows["fc3.weight"]["dead_units"] == 0
    assert sparsity_report(model).total["dead_units"] == 200
