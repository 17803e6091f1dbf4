"""Dropout, DropConnect, targeted dropout, MC dropout, scope="unit" and Han's adjustment.

The op's gradient checks and PyTorch comparisons with frozen masks are rows of
``op_cases.py``; here: PyTorch's own dropout, the statistics of the masks (tolerances
derived from their variance), seeds, modes, the sparse path, save/load, the training
recipe, the CLI and bad input.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.autograd import Tensor, dropout
from tinysparse.cli import main
from tinysparse.nn import (
    DropConnect,
    Dropout,
    Linear,
    TargetedDropout,
    mc_dropout,
    predict_mc,
    set_weight_noise,
)
from tinysparse.nn.dropout import lowest_in_each_unit
from tinysparse.nn.layers import weight_in_use
from tinysparse.prune import prune, prune_and_retrain, select_masks
from tinysparse.sparse import Mask
from tinysparse.sparsify import targeted

# A mean of T independent draws with standard deviation σ has standard error σ / √T; the
# statistical tests accept 5 standard errors (a two-sided miss has probability ~6e-7),
# with fixed seeds, so they are deterministic.
Z = 5.0


# ---------------------------------------------------------------- the op and PyTorch
def test_dropout_equals_torch_dropout_given_its_mask(torch):
    """torch.nn.functional.dropout draws its own mask r; our op given that r returns the
    same values and gradients (PyTorch's dropout is x ⊙ r / (1 − p), also inverted)."""
    p = 0.3
    x = np.random.default_rng(0).uniform(0.5, 2.0, (40, 30))  # no zeros: r = (y ≠ 0)
    torch.manual_seed(0)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.dropout(tx, p=p, training=True)
    keep = ty.detach().numpy() != 0
    ours = Tensor(x, requires_grad=True)
    y = dropout(ours, keep, 1 / (1 - p))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    upstream = np.random.default_rng(1).standard_normal(x.shape)
    y.backward(upstream)
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.grad, tx.grad.numpy(), rtol=1e-12)


def test_dropout_op_refuses_a_mask_of_another_shape():
    with pytest.raises(ValueError, match=r"dropout: the mask has shape \(3,\)"):
        dropout(Tensor(np.ones((2, 3))), np.ones(3, dtype=bool))


# ---------------------------------------------------------------- the Dropout layer
def test_inverted_dropout_keeps_the_mean():
    """y = x r / (1 − p), r ~ Bernoulli(1 − p): E[y] = x and Var(y) = x² p / (1 − p), so
    the mean of T draws is within Z·|x|·√(p / ((1 − p) T)) of x; the dropped fraction is
    within Z·√(p (1 − p) / n) of p."""
    p, draws = 0.3, 20_000
    x = np.linspace(-2.0, 3.0, 40)
    layer = Dropout(p, seed=0)
    y = layer(np.broadcast_to(x, (draws, x.size)).astype(np.float64)).data
    tolerance = Z * np.abs(x) * np.sqrt(p / ((1 - p) * draws))
    assert np.all(np.abs(y.mean(axis=0) - x) <= tolerance)
    dropped = np.mean(y == 0)
    assert abs(dropped - p) <= Z * np.sqrt(p * (1 - p) / y.size)
    kept = y[y != 0].reshape(-1)
    assert np.allclose(np.abs(kept), np.abs(np.broadcast_to(x, y.shape)[y != 0]) / (1 - p),
                       rtol=1e-6)


def test_dropout_is_the_identity_in_eval_mode_and_at_p_zero():
    x = np.random.default_rng(0).standard_normal((8, 3, 5, 5)).astype(np.float32)
    layer = Dropout(0.5, seed=0).eval()
    np.testing.assert_array_equal(layer(x).data, x)
    np.testing.assert_array_equal(Dropout(0.0, seed=0)(x).data, x)
    model = ts.nn.lenet300(dropout=0.5, input_dropout=0.2, dropconnect=0.5).eval()
    plain = ts.nn.lenet300().eval()  # the same initial weights (see test_same_seed_...)
    images = np.random.default_rng(1).random((8, 784)).astype(np.float32)
    np.testing.assert_array_equal(model(images).data, plain(images).data)


def test_dropout_on_convolutional_activations_is_elementwise():
    layer = Dropout(0.5, seed=1)
    y = layer(np.ones((4, 3, 6, 6), dtype=np.float32)).data
    assert y.shape == (4, 3, 6, 6)
    assert set(np.unique(y)) == {0.0, 2.0}
    per_channel = (y == 0).reshape(4, 3, -1)
    assert np.any(per_channel.any(axis=2) & ~per_channel.all(axis=2))  # not whole maps


def test_same_seed_same_masks_and_weights_and_dropout_leaves_the_weights_alone():
    options = dict(dropout=0.5, input_dropout=0.2, dropconnect=0.5)
    a, b = ts.nn.lenet300(seed=4, **options), ts.nn.lenet300(seed=4, **options)
    x = np.random.default_rng(0).random((16, 784)).astype(np.float32)
    for _ in range(3):  # the same sequence of masks, pass after pass
        np.testing.assert_array_equal(a(x).data, b(x).data)
    state, plain = a.state_dict(), ts.nn.lenet300(seed=4).state_dict()
    assert state.keys() == plain.keys()
    for name in state:  # adding dropout does not change the initial weights
        np.testing.assert_array_equal(state[name], plain[name])
    other = ts.nn.lenet300(seed=5, **options)
    other.load_state_dict(state)
    assert not np.array_equal(a(x).data, other(x).data)  # another seed, other masks


def test_different_layers_draw_different_masks():
    model = ts.nn.mlp([20, 50, 50, 50, 5], dropout=0.5, seed=0)
    layers = [model.drop1, model.drop2, model.drop3]
    assert len({layer.seed for layer in layers}) == 3
    ones = np.ones((10, 50), dtype=np.float32)
    masks = [layer(ones).data != 0 for layer in layers]
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    dropconnect = ts.nn.mlp([20, 50, 50, 5], dropconnect=0.5, seed=0)
    assert dropconnect.fc1.weight_noise.seed != dropconnect.fc2.weight_noise.seed
    assert dropconnect.fc3.weight_noise is None  # not on the output layer


def test_model_layouts():
    names = [name for name, _ in ts.nn.lenet300(dropout=0.5, input_dropout=0.2).named_modules()]
    assert names[1:] == ["flatten", "drop0", "fc1", "act1", "drop1", "fc2", "act2", "drop2",
                         "fc3"]
    lenet5 = ts.nn.lenet5(dropout=0.5, input_dropout=0.2, dropconnect=0.5)
    assert [n for n, m in lenet5.named_modules() if isinstance(m, Dropout)] == [
        "drop0", "drop3", "drop4"]
    assert [n for n, m in lenet5.named_modules()
            if getattr(m, "weight_noise", None) is not None] == ["fc1", "fc2"]
    assert lenet5(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape == (2, 10)
    assert [n for n, _ in ts.nn.lenet300().named_modules()][1:] == [
        "flatten", "fc1", "act1", "fc2", "act2", "fc3"]  # no dropout: the model of old
    assert ts.nn.lenet300().config == {"name": "lenet300", "kwargs": {
        "seed": 0, "init": "glorot_normal", "activation": "relu"}}
    assert ts.nn.lenet300(dropout=0.5).config["kwargs"]["dropout"] == 0.5


def test_saved_models_rebuild_their_dropout_layers_and_weight_noise(tmp_path):
    model = ts.nn.lenet300(seed=2, dropout=0.5, input_dropout=0.2, dropconnect=0.3)
    prune(model, 0.9)  # fc1 and fc2 on the sparse kernels, with their DropConnect
    loaded = ts.load(ts.save(model, tmp_path / "m.npz"))
    assert loaded.spec() == model.spec()
    assert isinstance(loaded.fc1, ts.nn.SparseLinear)
    assert loaded.fc1.weight_noise.p == 0.3 and loaded.drop1.p == 0.5
    x = np.random.default_rng(0).random((4, 784)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(x).data, model.eval()(x).data)
    # a fresh copy draws what the original drew from the start (the seeds are saved)
    fresh = ts.nn.lenet300(seed=2, dropout=0.5, input_dropout=0.2, dropconnect=0.3)
    prune(fresh, 0.9)
    rebuilt = ts.load(ts.save(fresh, tmp_path / "f.npz"))
    np.testing.assert_array_equal(rebuilt.train()(x).data, fresh.train()(x).data)


# ---------------------------------------------------------------- DropConnect
def test_dropconnect_expected_weight_is_the_weight_and_pruned_weights_stay_pruned():
    """Each weight in use is W_ij m_ij / (1 − p), m ~ Bernoulli(1 − p): mean W_ij, standard
    deviation |W_ij| √(p / (1 − p)); the mean of T draws is within Z·|W_ij|·√(p/((1−p)T))."""
    p, draws = 0.4, 5_000
    layer = Linear(12, 7, rng=0, weight_noise=DropConnect(p, seed=0))
    keep = np.random.default_rng(1).random((7, 12)) >= 0.3
    layer.set_mask("weight", keep)
    weight = layer.weight.data.astype(np.float64)
    samples = np.stack([weight_in_use(layer).data for _ in range(draws)])
    tolerance = Z * np.abs(weight) * np.sqrt(p / ((1 - p) * draws)) + 1e-6
    assert np.all(np.abs(samples.mean(axis=0) - weight) <= tolerance)
    assert np.all(samples[:, ~keep] == 0)  # a pruned weight is never used
    dropped = np.mean(samples[:, keep] == 0)
    assert abs(dropped - p) <= Z * np.sqrt(p * (1 - p) / samples[:, keep].size)
    layer.eval()  # "scaled inference": the weights as they are
    np.testing.assert_array_equal(weight_in_use(layer).data, weight)


def test_dropconnect_on_a_sparse_layer_drops_values_without_rebuilding_the_structure():
    """Mean of the values in use within Z standard errors, as for the dense layer; the
    structure is the same object through training steps; gradients of dropped values are
    zero."""
    p, draws = 0.5, 4_000
    model = ts.nn.mlp([30, 20, 5], dropconnect=p, seed=0)
    prune(model, 0.85)
    layer = model.fc1
    assert isinstance(layer, ts.nn.SparseLinear) and layer.weight_noise.p == p
    structure = layer.structure
    values = layer.values.data.astype(np.float64)
    samples = np.stack([layer.values_in_use().data for _ in range(draws)])
    tolerance = Z * np.abs(values) * np.sqrt(p / ((1 - p) * draws)) + 1e-6
    assert np.all(np.abs(samples.mean(axis=0) - values) <= tolerance)
    x, y = np.random.default_rng(0).random((64, 30)), np.arange(64) % 5
    ts.fit(model, (x, y), epochs=2, batch_size=16, quiet=True)
    assert model.fc1 is layer and layer.structure is structure
    in_use = layer.values_in_use()
    keep = in_use.data != 0
    layer.zero_grad()
    ts.sparse.sparse_linear(Tensor(x, dtype=np.float32), in_use, layer.bias,
                            layer.structure).sum().backward()
    assert np.all(layer.values.grad[~keep] == 0) and np.any(layer.values.grad[keep] != 0)


def test_to_sparse_and_to_dense_carry_the_weight_noise_and_its_generator():
    model = ts.nn.mlp([30, 20, 5], dropconnect=0.5, seed=0)
    noise = model.fc1.weight_noise
    prune(model, 0.9)
    assert model.fc1.weight_noise is noise
    ts.nn.to_dense(model)
    assert isinstance(model.fc1, Linear) and model.fc1.weight_noise is noise


def test_dropconnect_layers_and_bad_layers():
    conv = ts.nn.Conv2d(2, 3, 3, weight_noise=DropConnect(0.5, seed=0))
    assert conv(np.ones((1, 2, 5, 5), dtype=np.float32)).shape == (1, 3, 3, 3)
    model = ts.nn.lenet5()
    set_weight_noise(model, {"conv1": DropConnect(0.2, seed=1)})
    assert model.conv1.weight_noise.p == 0.2
    with pytest.raises(ValueError, match=r"weight_noise: MaxPool2d 'pool1' has no weight"):
        set_weight_noise(model, {"pool1": DropConnect(0.2)})
    with pytest.raises(ValueError, match="weight_noise: expected None, a WeightNoise"):
        Linear(3, 2, weight_noise="dropconnect")


# ---------------------------------------------------------------- targeted dropout
def test_targeted_weight_dropout_drops_only_candidates_each_with_rate_alpha():
    """With the weights fixed the candidates are fixed: round(γ n) smallest |w| per unit.
    Each is dropped with probability α: over T steps its dropped fraction is within
    Z·√(α(1 − α)/T) of α; the other weights are never dropped."""
    gamma, alpha, draws = 0.3, 0.4, 3_000
    weight = np.random.default_rng(0).standard_normal((20, 40))
    noise = TargetedDropout(gamma, alpha, seed=0)
    candidates = noise.candidates(weight, None)
    assert np.all(candidates.sum(axis=1) == round(gamma * 40))
    for row in range(20):  # the candidates are the row's smallest |w|
        assert np.abs(weight[row, candidates[row]]).max() <= \
            np.abs(weight[row, ~candidates[row]]).min()
    dropped = np.mean([~noise.keep(weight, None) for _ in range(draws)], axis=0)
    assert np.all(dropped[~candidates] == 0)
    assert np.all(np.abs(dropped[candidates] - alpha) <= Z * np.sqrt(alpha * (1 - alpha) / draws))


def test_targeted_unit_dropout_drops_whole_low_norm_units():
    gamma, alpha, draws = 0.5, 0.25, 3_000
    weight = np.random.default_rng(1).standard_normal((8, 3, 3, 3))
    weight[[1, 4, 6]] *= 0.1  # the weakest filters
    noise = TargetedDropout(gamma, alpha, "unit", seed=0)
    targeted = noise.candidates(weight, None).reshape(8, -1).all(axis=1)
    norms = np.linalg.norm(weight.reshape(8, -1), axis=1)
    np.testing.assert_array_equal(np.flatnonzero(targeted), np.sort(np.argsort(norms)[:4]))
    drops = np.array([~noise.keep(weight, None).reshape(8, -1) for _ in range(draws)])
    assert np.all(drops.all(axis=2) == drops.any(axis=2))  # a unit goes whole or not at all
    rate = drops[:, :, 0].mean(axis=0)
    assert np.all(rate[~targeted] == 0)
    assert np.all(np.abs(rate[targeted] - alpha) <= Z * np.sqrt(alpha * (1 - alpha) / draws))


@pytest.mark.parametrize("variant", ["weight", "unit"])
def test_targeted_dropout_on_the_sparse_path_targets_what_the_dense_layer_targets(variant):
    """With α = 1 every candidate is dropped: the stored weights a sparse layer drops are
    the kept weights its dense twin drops (pruned weights count as the smallest)."""
    layer = Linear(30, 12, rng=3)
    mask = Mask(np.random.default_rng(2).random((12, 30)) >= 0.6)
    layer.set_mask("weight", mask)
    sparse = ts.nn.SparseLinear.from_dense(layer)
    noise = TargetedDropout(0.7, 1.0, variant, seed=0)
    dense_dropped = ~noise.keep(layer.weight.data, mask) & mask.keep
    sparse_dropped = ~noise.keep_values(sparse.values.data, sparse.structure)
    np.testing.assert_array_equal(sparse.structure.gather(dense_dropped), sparse_dropped)
    assert sparse_dropped.any() and not sparse_dropped.all()


def test_lowest_in_each_unit_is_a_stable_sort_per_row():
    """The partial sort (threshold, then the earliest ties) marks what a stable argsort of
    each row marks, ties and -inf (pruned) scores included."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        units, width = rng.integers(1, 8), rng.integers(1, 12)
        scores = rng.integers(0, 4, (units, width)).astype(float)  # many ties
        scores[rng.random((units, width)) < 0.2] = -np.inf
        counts = (rng.integers(0, width + 2, units) if rng.random() < 0.5
                  else int(rng.integers(0, width + 1)))
        order = np.argsort(scores, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(width)[None, :], axis=1)
        expected = rank < np.broadcast_to(counts, (units,))[:, None]
        np.testing.assert_array_equal(lowest_in_each_unit(scores, counts), expected)


# ---------------------------------------------------------------- MC dropout
def test_predict_mc_is_the_mean_and_spread_of_sampled_passes():
    x = np.random.default_rng(0).random((6, 784)).astype(np.float32)
    a, b = ts.nn.lenet300(seed=3, dropout=0.5), ts.nn.lenet300(seed=3, dropout=0.5)
    a.eval()
    mean, std = predict_mc(a, x, samples=7)
    assert not a.training and not a.drop1.training  # modes restored
    with mc_dropout(b):
        assert not b.fc1.training and b.drop1.training
        passes = np.stack([ts.autograd.softmax(b(x), axis=1).data for _ in range(7)])
    np.testing.assert_allclose(mean, passes.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(std, passes.std(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(std > 0)
    assert b.training  # the mode it had before
    with pytest.raises(ValueError, match="predict_mc: the model has no Dropout layer"):
        predict_mc(ts.nn.lenet300(), x)
    with pytest.raises(ValueError, match="samples: expected a positive integer"):
        predict_mc(a, x, samples=0)


def test_mc_dropout_keeps_weight_noise_off():
    model = ts.nn.lenet300(dropout=0.5, dropconnect=0.5)
    with mc_dropout(model):
        assert not model.fc1.training  # DropConnect does not sample inside MC dropout


def test_looking_at_a_dropout_model_draws_no_masks():
    """The sparsity report and the curvature tools run the network in evaluation mode
    (tinysparse.nn.deterministic): they draw nothing, so training after them draws the
    masks it would have drawn anyway, and each module keeps its mode."""
    options = dict(seed=1, dropout=0.5, input_dropout=0.2, dropconnect=0.5)
    looked_at, untouched = ts.nn.lenet300(**options), ts.nn.lenet300(**options)
    x = np.random.default_rng(0).random((4, 784)).astype(np.float32)
    ts.metrics.sparsity_report(looked_at)
    ts.prune.hessian.per_example_gradients(looked_at, (x, np.arange(4)))
    noisy = ts.nn.lenet300(seed=1, dropconnect=0.5)  # OBD's curvature: the weights as they are
    diagonal = ts.prune.hessian.hessian_diagonal(noisy, (x, np.arange(4)))
    np.testing.assert_array_equal(
        diagonal["fc1.weight"],
        ts.prune.hessian.hessian_diagonal(noisy.eval(), (x, np.arange(4)))["fc1.weight"])
    assert looked_at.training and looked_at.drop1.training and looked_at.fc1.training
    np.testing.assert_array_equal(looked_at(x).data, untouched(x).data)
    with ts.nn.deterministic(looked_at):
        np.testing.assert_array_equal(looked_at(x).data, looked_at(x).data)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("make,message", [
    (lambda: Dropout(1.0), r"p: expected a probability in \[0, 1\), got 1.0"),
    (lambda: Dropout(-0.1), r"p: expected a probability in \[0, 1\)"),
    (lambda: Dropout("half"), r"p: expected a probability in \[0, 1\), got 'half'"),
    (lambda: Dropout(0.5, seed=-1), "seed: expected an integer >= 0"),
    (lambda: DropConnect(1.0), r"p: expected a probability in \[0, 1\)"),
    (lambda: ts.nn.lenet300(dropout=1.0), r"dropout: expected a probability in \[0, 1\)"),
    (lambda: ts.nn.lenet5(input_dropout=2), r"input_dropout: expected a probability"),
    (lambda: ts.nn.mlp([784, 10], dropconnect=0.5), "dropconnect: the network"),
    (lambda: TargetedDropout(0.5, 0.5, "channel"), "variant: expected one of"),
])
def test_bad_input_names_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---------------------------------------------------------------- scope="unit"
@pytest.mark.parametrize("seed", range(5))
def test_unit_scope_prunes_every_row_exactly_and_respects_earlier_masks(seed):
    rng = np.random.default_rng(seed)
    scores = {"a": rng.standard_normal((7, 13)), "b": rng.standard_normal((4, 3, 2, 2))}
    sparsity = rng.uniform(0, 0.95)
    masks = select_masks(scores, sparsity, "unit")
    for name, mask in masks.items():
        rows, keep = scores[name].reshape(len(mask.keep), -1), mask.keep.reshape(
            len(mask.keep), -1)
        assert np.all((~keep).sum(axis=1) == round(sparsity * rows.shape[1]))
        for row, kept in zip(rows, keep):
            if kept.any() and not kept.all():
                assert row[kept].min() >= row[~kept].max()
    later = select_masks({n: rng.standard_normal(s.shape) for n, s in scores.items()},
                         min(0.99, sparsity + 0.02), "unit", previous=masks)
    for name in masks:  # pruned weights stay pruned
        assert not np.any(later[name].keep & ~masks[name].keep)


def test_prune_with_unit_scope_and_overrides():
    model = ts.nn.lenet5()
    masks = prune(model, 0.8, scope="unit", overrides={"fc3.weight": 0.5})
    for name, mask in masks.items():
        target = 0.5 if name == "fc3.weight" else 0.8
        per_unit = (~mask.keep).reshape(len(mask.keep), -1).sum(axis=1)
        assert np.all(per_unit == round(target * mask.keep[0].size))
    with pytest.raises(ValueError, match="scope: method 'obs-layerwise' takes scope"):
        ts.prune.check_method_options("obs-layerwise", "unit")


# ---------------------------------------------------------------- Han's adjustment
def test_han_dropout_adjustment_follows_each_pruned_layer(mnist5k):
    """D_r = D_o √(C_r / C_o): at 75% sparsity √0.25 = 0.5, so 0.5 → 0.25; the input
    dropout follows no layer and keeps its rate."""
    model = ts.nn.lenet300(dropout=0.5, input_dropout=0.2)
    run = prune_and_retrain(model, mnist5k, 0.75, schedule="iterative", rounds=2,
                            retrain_epochs=0, adjust_dropout=True,
                            dense_test_accuracy=0.0)
    assert model.drop1.p == pytest.approx(0.25) and model.drop2.p == pytest.approx(0.25)
    assert model.drop0.p == 0.2
    first = run.rounds[0]["dropout"]["drop1"]
    assert first == pytest.approx(0.5 * np.sqrt(0.5), rel=1e-4)  # round 1 of 2: density √0.25
    assert run.extra["dropout"] == {"drop1": pytest.approx(0.25), "drop2": pytest.approx(0.25)}
    with pytest.raises(ValueError, match="adjust_dropout: the model has no Dropout layer"):
        prune_and_retrain(ts.nn.lenet300(), mnist5k, 0.5, adjust_dropout=True,
                          retrain_epochs=0, dense_test_accuracy=0.0)


# ---------------------------------------------------------------- targeted dropout: the recipe
def test_targeted_dropout_run_prunes_each_unit_at_gamma_and_masks_never_regrow(mnist5k):
    data = mnist5k
    model = ts.nn.mlp([784, 40, 10], seed=0)
    run = targeted.run(model, data, epochs=1, seed=0, gamma=0.75, alpha=0.5)
    assert run.method == "targeted-dropout"
    assert 0 < run.pruned_test_accuracy == run.test_accuracy and run.unpruned_test_accuracy > 0.5
    masks = dict(model.named_masks())
    for name in ("fc1.weight", "fc2.weight"):
        pruned_per_unit = (~masks[name].keep).sum(axis=1)
        assert np.all(pruned_per_unit == round(0.75 * masks[name].shape[1]))
    assert run.sparsity == pytest.approx(0.75, abs=1e-3)
    assert run.compression == pytest.approx(1 / (1 - run.sparsity))
    assert all(getattr(m, "weight_noise", None) is None for m in model.modules())
    before = model.state_dict()
    ts.fit(model, data, epochs=1, seed=1, quiet=True)  # later training: nothing regrows
    after = model.state_dict()
    for name, mask in masks.items():
        assert dict(model.named_masks())[name].keep.tolist() == mask.keep.tolist()
        assert np.all(after[name][~mask.keep] == 0)
        assert not np.array_equal(after[name], before[name])


def test_targeted_unit_dropout_run_removes_whole_hidden_units(mnist5k):
    model = ts.nn.mlp([784, 40, 20, 10], seed=0)
    run = targeted.run(model, mnist5k, epochs=1, seed=0, gamma=0.5, alpha=0.5, variant="unit")
    assert run.extra["targeted_layers"] == ["fc1", "fc2"]  # never the output layer
    counts = ts.prune.unit_counts(ts.prune.shrink(model))
    assert counts == {"fc1": 20, "fc2": 10, "fc3": 10}


def test_targeted_dropout_bad_input(mnist5k):
    model = ts.nn.mlp([784, 8, 10])
    for options, message in [({"gamma": 1.0}, r"gamma: expected a number in \[0, 1\)"),
                             ({"gamma": -0.1}, r"gamma: expected a number in \[0, 1\]"),
                             ({"alpha": 1.5}, r"alpha: expected a number in \[0, 1\]"),
                             ({"variant": "filter"}, "variant: expected one of")]:
        with pytest.raises(ValueError, match=message):
            targeted.run(model, mnist5k, epochs=1, **options)
    with pytest.raises(ValueError, match="gamma"):
        TargetedDropout(gamma=2.0)
    with pytest.raises(ValueError, match="alpha"):
        TargetedDropout(alpha=-0.5)
    noisy = ts.nn.mlp([784, 8, 10], dropconnect=0.5)
    with pytest.raises(ValueError, match="weight_noise: layer 'fc1' already drops"):
        targeted.run(noisy, mnist5k, epochs=1)


# ---------------------------------------------------------------- the command line
def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_with_dropout_reports_the_options_and_only_then(capsys):
    base = ["train", "--model", "mlp", "--hidden", "16", "--epochs", "1", "--json", "--quiet"]
    code, out, _ = run_cli(capsys, *base, "--dropout", "0.5", "--input-dropout", "0.2",
                           "--dropconnect", "0.25")
    result = json.loads(out)
    assert code == 0 and result["dropout"] == 0.5 and result["input_dropout"] == 0.2
    assert result["dropconnect"] == 0.25
    code, out, _ = run_cli(capsys, *base)
    assert code == 0 and not {"dropout", "input_dropout", "dropconnect"} & set(json.loads(out))


@pytest.mark.parametrize("flag,value", [("--dropout", "1"), ("--input-dropout", "-0.1"),
                                        ("--dropconnect", "1.5")])
def test_train_refuses_bad_probabilities_before_any_training(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", flag, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: expected a probability in [0, 1), got '{value}'" in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- the benchmark
def test_the_dropout_benchmark_times_the_same_network_in_torch(torch):
    """In evaluation mode (no masks to differ) the PyTorch twin of the benchmark computes
    what tinysparse's dropout LeNet-300-100 computes."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "dropout_epoch.py"
    spec = importlib.util.spec_from_file_location("dropout_epoch", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ours = ts.nn.lenet300(seed=0, dropout=bench.DROPOUT, input_dropout=bench.INPUT_DROPOUT)
    theirs = bench.torch_model([p.data.astype(np.float64) for p in ours.parameters()], True)
    assert sum(isinstance(m, torch.nn.Dropout) for m in theirs) == 3
    x = np.random.default_rng(0).random((5, 1, 28, 28))
    expected = theirs.eval()(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours.double().eval()(x).data, expected, rtol=1e-10)
