"""Sparse variational dropout (Molchanov et al. 2017): the KL approximation against a
Monte-Carlo estimate, the local reparameterisation trick's statistics, the layers, the
conversions and the recipe (seeds, masks that never regrow, bad input)."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.autograd import Tensor, cross_entropy, gradcheck, no_grad
from tinysparse.nn import (
    VariationalConv2d,
    VariationalLinear,
    from_variational,
    to_variational,
    variational_kl,
)
from tinysparse.sparsify import variational

LOG_ALPHAS = [-8.0, -6.0, -4.0, -3.5, -2.0, 0.0, 2.0, 4.0, 8.0]


def negative_kl_per_weight(log_alpha: float) -> float:
    """−KL of one weight with this log α, through a VariationalLinear's own kl()."""
    layer = VariationalLinear(1, 1, bias=False, dtype=np.float64)
    layer.theta.data[:] = 0.5
    layer.log_sigma2.data[:] = log_alpha + np.log(0.25)  # log α = log σ² − log θ²
    return -float(layer.kl().data)


@pytest.mark.parametrize("log_alpha", LOG_ALPHAS)
def test_kl_approximation_matches_a_monte_carlo_estimate(log_alpha):
    # For w = θ(1 + √α ε), ε ~ N(0, 1), and the log-uniform prior p(w) ∝ 1/|w|:
    #   KL(q ‖ p) = E_q[log q(w)] − E_q[log p(w)]
    #             = −½ log(2πe α θ²) + E_ε[log |θ (1 + √α ε)|] + const
    #             = −½ log α + E_ε[log |1 + √α ε|] + const          (θ cancels)
    # The paper's approximation is chosen to vanish as α → ∞, where
    # E log|1 + √α ε| → ½ log α + E log|ε| and E log|ε| = −(γ_Euler + log 2)/2; so
    #   −KL = ½ log α − E_ε[log |1 + √α ε|] − (γ_Euler + log 2)/2.
    # Molchanov et al. fitted k₁, k₂, k₃ so that the approximation is tight for every log α;
    # numerical quadrature of the expectation puts its largest error at 0.0094 (near
    # log α = −3.5) on [−8, 8], so we allow 0.01 plus five Monte-Carlo standard errors.
    samples = np.random.default_rng(0).standard_normal(1_000_000)
    log_terms = np.log(np.abs(1 + np.exp(log_alpha / 2) * samples))
    standard_error = log_terms.std(ddof=1) / np.sqrt(samples.size)
    constant = (np.euler_gamma + np.log(2)) / 2
    monte_carlo = 0.5 * log_alpha - log_terms.mean() - constant
    approximation = negative_kl_per_weight(log_alpha)
    assert abs(approximation - monte_carlo) <= 0.01 + 5 * standard_error, (
        approximation, monte_carlo, standard_error)


def test_kl_approximation_limits():
    # −KL → 0 as α → ∞ (up to the clip at 8) and grows like ½ log α as α → 0
    assert abs(negative_kl_per_weight(8.0)) < 1e-3
    small = [negative_kl_per_weight(a) for a in (-8.0, -7.0)]
    assert small[1] - small[0] == pytest.approx(0.5, abs=0.01)


def test_local_reparameterisation_has_the_mean_and_variance_of_the_weights_it_samples():
    # For w ~ N(θ, σ²) independent, x wᵀ + b has mean x θᵀ + b and variance x² (σ²)ᵀ.
    layer = VariationalLinear(4, 3, seed=0, dtype=np.float64)
    layer.log_sigma2.data[:] = np.log(np.linspace(0.05, 0.6, 12).reshape(3, 4))
    x = np.array([[0.5, -1.0, 2.0, 0.25]])
    n = 200_000
    with no_grad():
        samples = layer(np.repeat(x, n, axis=0)).data
    mean = x @ layer.theta.data.T + layer.bias.data
    variance = (x * x) @ np.exp(layer.log_sigma2.data).T + 1e-8
    # the sample mean's standard error is √(v/n); the sample variance's is about v √(2/n)
    assert np.all(np.abs(samples.mean(axis=0) - mean) <= 5 * np.sqrt(variance / n))
    assert np.all(np.abs(samples.var(axis=0) - variance) <= 5 * variance * np.sqrt(2 / n))


@pytest.mark.parametrize("make, input_shape", [
    (lambda: VariationalLinear(5, 3, seed=1, dtype=np.float64), (4, 5)),
    (lambda: VariationalConv2d(2, 3, 3, padding=1, seed=1, dtype=np.float64), (2, 2, 5, 5)),
], ids=["linear", "conv2d"])
def test_layer_loss_with_kl_gradcheck_with_frozen_noise(make, input_shape):
    # The layer's whole training loss (sampled outputs + KL) against finite differences;
    # the noise is frozen by re-seeding the layer's generator on every call.
    layer = make()
    rng = np.random.default_rng(2)
    x = rng.standard_normal(input_shape)
    log_sigma2 = rng.uniform(-4.0, 1.0, layer.theta.shape)

    def loss(theta, log_sigma2, bias):
        layer.theta, layer.log_sigma2, layer.bias = theta, log_sigma2, bias
        layer.rng = np.random.default_rng(3)
        out = layer(Tensor(x))
        return (out * out).sum() + layer.kl() * 0.1

    assert gradcheck(loss, [layer.theta.data.copy(), log_sigma2, rng.standard_normal(
        layer.bias.shape)])


def test_eval_uses_theta_masked_where_log_alpha_exceeds_the_threshold():
    layer = VariationalLinear(6, 4, seed=0, dtype=np.float64)
    layer.log_sigma2.data[:] = np.random.default_rng(1).uniform(-12, 4, (4, 6))
    keep = layer.keep_mask()
    assert 0 < keep.sum() < keep.size
    with no_grad():
        log_alpha = layer.log_alpha().data
    np.testing.assert_array_equal(keep, log_alpha <= 3.0)
    x = np.random.default_rng(2).standard_normal((3, 6))
    layer.eval()
    expected = x @ (layer.theta.data * keep).T + layer.bias.data
    np.testing.assert_allclose(layer(x).data, expected)
    np.testing.assert_array_equal(layer(x).data, layer(x).data)  # no noise in eval


def test_conversions_keep_the_network_and_return_the_learned_masks(mnist5k):
    model = ts.nn.lenet300(seed=0)
    x = mnist5k.x_test[:20]
    before = model(x).data
    variational_model = to_variational(model, seed=0)
    assert variational_model is model
    layers = [m for m in model.modules() if isinstance(m, VariationalLinear)]
    assert len(layers) == 3 and len({layer.seed for layer in layers}) == 3
    # θ is the old weights; with log σ² = −10 almost nothing has log α > 3
    layers[0].log_sigma2.data[:5] = 10.0  # five rows pruned by hand
    model.eval()
    pruned_output = model(x).data
    _, masks = from_variational(model)
    assert sorted(masks) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert not masks["fc1.weight"][:5].any()
    np.testing.assert_allclose(model(x).data, before, rtol=1e-6)  # unmasked: the old model
    ts.prune.apply_masks(model, masks)
    np.testing.assert_allclose(model(x).data, pruned_output, rtol=1e-5, atol=1e-6)


def test_variational_model_saves_and_loads(tmp_path, mnist5k):
    model = to_variational(ts.nn.lenet5(seed=0), seed=4)
    model.get_submodule("conv1").log_sigma2.data[0] = 5.0
    ts.io.save(model, tmp_path / "vd.npz")
    loaded = ts.io.load(tmp_path / "vd.npz")
    x = mnist5k.x_test[:8]
    np.testing.assert_array_equal(loaded.eval()(x).data, model.eval()(x).data)
    assert loaded.get_submodule("fc2").seed == model.get_submodule("fc2").seed


def small_dataset(mnist5k, n_train=300, n_test=200):
    return ts.data.Dataset("mnist-5k-small", mnist5k.x_train[:n_train],
                           mnist5k.y_train[:n_train], mnist5k.x_test[:n_test],
                           mnist5k.y_test[:n_test], num_classes=10)


def test_run_same_seed_same_result_and_the_masks_never_regrow(mnist5k, tmp_path):
    data = small_dataset(mnist5k)
    results, models = [], []
    for _ in range(2):
        model = ts.nn.lenet300(seed=0)
        results.append(variational.run(model, data, epochs=3, batch_size=50, seed=5,
                                       quiet=True, kl_weight=5.0, warmup=0.5))
        models.append(model)
    first, second = results
    assert first.sparsity == second.sparsity and first.test_accuracy == second.test_accuracy
    for (name, a), (_, b) in zip(models[0].state_dict().items(),
                                 models[1].state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    model = models[0]
    assert 0.1 < first.sparsity < 1 and first.compression == pytest.approx(
        1 / (1 - first.sparsity))
    assert first.pruned_test_accuracy == first.test_accuracy
    assert first.extra["variational_test_accuracy"] == first.pruned_test_accuracy
    assert set(first.extra["log_alpha_histograms"]) == {"fc1", "fc2", "fc3"}
    assert len(first.history) == 3 and first.history[-1]["kl_share"] == 1.0
    # an ordinary pruned model now; later training, and save/load, never regrow a weight
    masks = {name: mask.keep.copy() for name, mask in model.named_masks()}
    assert set(masks) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    ts.fit(model, data, epochs=2, lr=1e-2, quiet=True)
    ts.io.save(model, tmp_path / "pruned.npz")
    for state in (model.state_dict(), ts.io.load(tmp_path / "pruned.npz").state_dict()):
        for name, keep in masks.items():
            assert not state[name][~keep].any(), name


def test_run_on_a_convolutional_network(mnist5k):
    model = ts.nn.lenet5(seed=0)
    result = variational.run(model, small_dataset(mnist5k, 100, 50), epochs=1,
                             batch_size=50, seed=0, quiet=True)
    assert set(result.layers) == {"conv1.weight", "conv2.weight", "fc1.weight",
                                  "fc2.weight", "fc3.weight"}
    assert not any(isinstance(m, ts.nn.VariationalLayer) for m in model.modules())


def test_different_layers_draw_different_noise():
    first, second = (VariationalLinear(3, 4, seed=s) for s in (ts.nn.init.derived_seed(0, 0),
                                                                ts.nn.init.derived_seed(0, 1)))
    assert not np.array_equal(first.sample_noise((2, 4)), second.sample_noise((2, 4)))
    again = VariationalLinear(3, 4, seed=ts.nn.init.derived_seed(0, 0))
    np.testing.assert_array_equal(again.sample_noise((2, 4)),
                                  VariationalLinear(3, 4, seed=first.seed).sample_noise((2, 4)))


def test_kl_warmup_rises_linearly():
    assert [variational.kl_warmup(step, 100, 0.3) for step in (0, 15, 30, 90)] == \
        [0.0, 0.5, 1.0, 1.0]
    assert variational.kl_warmup(0, 100, 0.0) == 1.0


def test_bad_input(mnist5k):
    data = small_dataset(mnist5k, 20, 10)
    for option, value in [("kl_weight", -1.0), ("warmup", 1.5), ("threshold", float("nan")),
                          ("log_sigma2", float("inf")), ("pretrain_epochs", -1)]:
        with pytest.raises(ValueError, match=option):
            variational.run(ts.nn.lenet300(), data, epochs=1, quiet=True, **{option: value})
    with pytest.raises(ValueError, match="data"):
        variational.run(ts.nn.lenet300(), data.train, epochs=1, quiet=True)
    with pytest.raises(ValueError, match="model"):
        variational.run(ts.nn.Linear(784, 10), data, epochs=1, quiet=True)
    pruned = ts.nn.lenet300()
    ts.prune.prune(pruned, 0.5)
    with pytest.raises(ValueError, match="pruned already"):
        to_variational(pruned)
    ts.prune.prune(pruned, 0.9)  # on the sparse kernels
    with pytest.raises(ValueError, match="pruned already"):
        to_variational(pruned)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        to_variational(ts.nn.Sequential(ts.nn.ReLU()))
    with pytest.raises(ValueError, match="no variational layer"):
        variational_kl(ts.nn.lenet300())
    with pytest.raises(ValueError, match="threshold"):
        VariationalLinear(3, 2, threshold=float("inf"))
    with pytest.raises(ValueError, match="seed"):
        VariationalLinear(3, 2, seed=1.5)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\)"):
        VariationalLinear(3, 2)(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="noise must have the output's shape"):
        ts.autograd.local_reparameterisation_linear(
            Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 3))), Tensor(np.zeros((4, 3))),
            noise=np.zeros((2, 3)))


@pytest.mark.torch
def test_benchmark_twin_computes_the_same_loss_and_gradients(torch, mnist5k):
    # benchmarks/variational_epoch.py times PyTorch doing what we do: check that it does.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "variational_epoch.py"
    spec = importlib.util.spec_from_file_location("variational_epoch", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = to_variational(ts.nn.lenet300(seed=0).double(), seed=0)
    for layer in model.modules():
        if isinstance(layer, VariationalLinear):
            layer.log_sigma2.data[:] = np.random.default_rng(1).uniform(-12, 2, layer.theta.shape)
    twin = bench.torch_lenet300(model, variational=True)
    x, y = mnist5k.x_train[:16].astype(np.float64), mnist5k.y_train[:16]
    for index, (ours, theirs) in enumerate(zip(
            [m for m in model.modules() if isinstance(m, VariationalLinear)],
            [m for m in twin if hasattr(m, "kl")])):
        noise = np.random.default_rng(10 + index).standard_normal((16, ours.out_features))
        ours.rng = np.random.default_rng(10 + index)  # draws the same ε
        theirs.noise = torch.tensor(noise)
    loss = cross_entropy(model(x), y) + variational_kl(model) * (1 / 4000)
    loss.backward()
    their_loss = (torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(y))
                  + bench.torch_kl(twin) * (1 / 4000))
    their_loss.backward()
    assert float(loss.data) == pytest.approx(their_loss.item(), rel=1e-10)
    theirs = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        layer, parameter = name.split(".")
        index = {"fc1": "1", "fc2": "3", "fc3": "5"}[layer]
        np.testing.assert_allclose(p.grad, theirs[f"{index}.{parameter}"].grad.numpy(),
                                   rtol=1e-8, atol=1e-12, err_msg=name)


def test_reading_any_attribute_changes_nothing_a_training_step_computes():
    from test_architecture import read_everything

    def train(read):
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((16, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 16)
        model = to_variational(ts.nn.lenet5(seed=0), seed=0)
        optimizer = ts.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(3):
            if read:
                read_everything(model)
            loss = cross_entropy(model(x), y) + variational_kl(model) * 1e-3
            optimizer.zero_grad()
            loss.backward()
            if read:
                read_everything(model)
            optimizer.step()
            losses.append(loss.item())
        return losses

    assert train(read=True) == train(read=False)
