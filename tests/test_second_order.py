"""Second-order pruning: Hessian tools, Woodbury, OBD, OBS (full and layer-wise)."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.prune import hessian as hs
from tinysparse.prune import obd_prune, obs_layerwise_prune, obs_prune, prune
from tinysparse.prune.obs import obs_delete, obs_saliency
from tinysparse.prune.obs_layerwise import greedy_row_deletions, layer_hessian, reconstruct
from tinysparse.prune.small_problems import prune_one_at_a_time, trained_tiny_net


# ---------------------------------------------------------------- a quadratic problem
@pytest.fixture
def least_squares():
    """Linear model at its least-squares optimum: the loss mean((Xw − y)²) is exactly
    quadratic with Hessian 2 XᵀX / n."""
    rng = np.random.default_rng(0)
    n, d = 200, 8
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d)
    y = x @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
    w_star = np.linalg.lstsq(x, y, rcond=None)[0]
    with ts.autograd.default_dtype(np.float64):
        model = ts.nn.Linear(d, 1, bias=False)
    model.weight.data = w_star[None].copy()
    return model, x, y[:, None], w_star


def loss_of(x, y, w):
    return float(np.mean((x @ w - y[:, 0]) ** 2))


@pytest.mark.parametrize("kind", ["gauss-newton", "lecun", "exact"])
def test_diagonal_of_a_quadratic_is_exact(least_squares, kind):
    model, x, y, _ = least_squares
    diagonal = hs.hessian_diagonal(model, (x, y), loss="mse", kind=kind, batch_size=64)
    # our mse is mean((y − t)²), so H = 2 XᵀX / n (diag(XᵀX)/n for the ½-scaled loss)
    np.testing.assert_allclose(diagonal["weight"][0], 2 * np.diag(x.T @ x) / len(x),
                               rtol=1e-12)


def test_obs_prediction_is_exact_on_a_quadratic_and_picks_the_cheapest(least_squares):
    model, x, y, w_star = least_squares
    d = len(w_star)
    report = obs_prune(model, 1 / d, (x, y), hessian="exact", loss="mse", damping=1e-14)
    assert report.actual_increase == pytest.approx(report.predicted_increase, rel=1e-8)
    # brute force: the best least-squares fit with each weight removed in turn
    costs = []
    for q in range(d):
        kept = [i for i in range(d) if i != q]
        w = np.zeros(d)
        w[kept] = np.linalg.lstsq(x[:, kept], y[:, 0], rcond=None)[0]
        costs.append(loss_of(x, y, w) - loss_of(x, y, w_star))
    assert report.steps[0].weights == [int(np.argmin(costs))]
    assert report.actual_increase == pytest.approx(min(costs), rel=1e-8)


def test_obs_group_deletion_equals_one_after_another():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((12, 12))
    inverse = np.linalg.inv(a @ a.T + np.eye(12))
    w = rng.standard_normal(12)
    w1, inv1 = w.copy(), inverse.copy()
    total = obs_delete(w1, inv1, [3]) + obs_delete(w1, inv1, [7])
    w2, inv2 = w.copy(), inverse.copy()
    np.testing.assert_allclose(obs_delete(w2, inv2, [3, 7]), total, rtol=1e-10)
    np.testing.assert_allclose(w1, w2, atol=1e-12)
    np.testing.assert_allclose(inv1, inv2, atol=1e-12)


def test_obs_saliency_reduces_to_obd_and_magnitude():
    w = np.array([0.5, -2.0, 1.0])
    h = np.array([4.0, 0.25, 1.0])
    # diagonal H: [H⁻¹]_qq = 1/h_qq, so L_q = h_qq w_q² / 2 (OBD's saliency)
    np.testing.assert_allclose(obs_saliency(w, 1 / h), h * w * w / 2)
    # isotropic H: the order is the order of |w| (magnitude pruning)
    assert list(np.argsort(obs_saliency(w, np.ones(3)))) == list(np.argsort(np.abs(w)))


# ---------------------------------------------------------------- the oracle
def small_tanh_mlp():
    return ts.nn.mlp([4, 5, 3], activation="tanh", flatten=False, seed=1).double()


def torch_loss_of_flat_weights(torch, model, x, y, loss):
    shapes = [p.shape for p in model.parameters()]

    def f(flat):
        parts, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            parts.append(flat[start:start + size].reshape(shape))
            start += size
        w1, b1, w2, b2 = parts
        z = torch.tanh(torch.tensor(x) @ w1.T + b1) @ w2.T + b2
        if loss == "mse":
            return ((z - torch.tensor(y)) ** 2).mean()
        return torch.nn.functional.cross_entropy(z, torch.tensor(y))

    return f


@pytest.mark.torch
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_exact_hessian_and_diagonal_equal_torch(torch, loss):
    rng = np.random.default_rng(0)
    model = small_tanh_mlp()
    x = rng.standard_normal((9, 4))
    y = rng.integers(0, 3, 9) if loss == "cross_entropy" else rng.standard_normal((9, 3))
    names = [n for n, _ in model.named_parameters()]
    flat = hs.flatten_parameters(model, names)
    f = torch_loss_of_flat_weights(torch, model, x, y, loss)
    reference = torch.autograd.functional.hessian(f, torch.tensor(flat)).numpy()
    ours = hs.exact_hessian(model, (x, y), loss, chunk=7)
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)
    diagonal = hs.hessian_diagonal(model, (x, y), loss, kind="exact", batch_size=4)
    np.testing.assert_allclose(np.concatenate([diagonal[n].ravel() for n in names]),
                               np.diag(reference), rtol=1e-10, atol=1e-12)


def test_lecun_and_gauss_newton_diagonals_by_their_definitions():
    # MSE, one hidden layer: LeCun's recursion keeping f'' is exact (no cross terms);
    # Gauss–Newton equals the diagonal of Jᵀ(2/K)J computed from per-output Jacobian rows.
    rng = np.random.default_rng(3)
    model = small_tanh_mlp()
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    names = [n for n, _ in model.named_parameters()]
    exact = np.diag(hs.exact_hessian(model, (x, y), "mse"))
    lecun = hs.hessian_diagonal(model, (x, y), "mse", kind="lecun")
    np.testing.assert_allclose(np.concatenate([lecun[n].ravel() for n in names]), exact,
                               rtol=1e-10)
    rows = hs.gauss_newton_rows(model, (x, y), "mse", parameters=names)
    gn = hs.hessian_diagonal(model, (x, y), "mse", kind="gauss-newton")
    gn_flat = np.concatenate([gn[n].ravel() for n in names])
    # output layer: GN diagonal is exact; hidden layer: the diagonal approximation
    fc2 = slice(4 * 5 + 5, None)
    np.testing.assert_allclose(gn_flat[fc2], np.sum(rows * rows, axis=0)[fc2] / len(x),
                               rtol=1e-10)
    assert np.all(gn_flat >= 0)


def test_conv_gauss_newton_diagonal_matches_per_example_jacobians_on_linear_output():
    # LeNet-5 without hidden nonlinearity issues: check the first conv's diagonal against
    # brute force on a model whose output layer makes GN exact per weight: compare with
    # the squared-gradient identity for one example and one output (MSE, K = 1).
    model = ts.nn.Sequential(("conv", ts.nn.Conv2d(1, 2, 3, padding=1, rng=0)),
                             ("flatten", ts.nn.Flatten()),
                             ("fc", ts.nn.Linear(2 * 5 * 5, 1, rng=1))).double()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1))
    # with one example, one output and linear layers, H = J ᵀ(2) J exactly, diag = 2 g_z²
    diagonal = hs.hessian_diagonal(model, (x, y), "mse", kind="gauss-newton")
    rows = hs.gauss_newton_rows(model, (x, y), "mse", parameters=["fc.weight", "fc.bias"])
    np.testing.assert_allclose(np.concatenate([diagonal["fc.weight"].ravel(),
                                               diagonal["fc.bias"]]), rows[0] ** 2, rtol=1e-10)
    exact = hs.hessian_diagonal(model, (x, y), "mse", kind="lecun")
    np.testing.assert_allclose(exact["conv.weight"], diagonal["conv.weight"])  # no f''


# ---------------------------------------------------------------- Woodbury
@pytest.mark.parametrize("block", [1, 7, 100])
def test_woodbury_inverse_equals_direct_inverse(block):
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((23, 15))
    reference = np.linalg.inv(rows.T @ rows / 23 + 0.1 * np.eye(15))
    np.testing.assert_allclose(hs.inverse_fisher(rows, 23, 0.1, block=block), reference,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hs.inverse_fisher_rank_one(rows, 23, 0.1), reference,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hs.inverse_fisher_cholesky(rows, 23, 0.1), reference,
                               rtol=1e-9, atol=1e-12)


def test_removing_q_from_the_inverse_equals_inverting_without_q():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((9, 9))
    h = a @ a.T + np.eye(9)
    inverse = hs.remove_from_inverse(np.linalg.inv(h), 4)
    kept = [i for i in range(9) if i != 4]
    np.testing.assert_allclose(inverse[np.ix_(kept, kept)],
                               np.linalg.inv(h[np.ix_(kept, kept)]), rtol=1e-10)
    assert np.all(inverse[4] == 0) and np.all(inverse[:, 4] == 0)


def test_per_example_gradients_sum_to_the_batch_gradient(mnist5k):
    model = ts.nn.mlp([784, 8, 10], seed=0).double()
    x, y = mnist5k.x_train[:10].astype(np.float64), mnist5k.y_train[:10]
    rows = hs.per_example_gradients(model, (x, y))
    model.zero_grad()
    ts.autograd.cross_entropy(model(x), y).backward()
    batch = np.concatenate([model.fc1.weight.grad.ravel(), model.fc2.weight.grad.ravel()])
    np.testing.assert_allclose(rows.mean(axis=0), batch, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------- layer-wise OBS
def test_layerwise_obs_reconstructs_better_than_magnitude():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 400)) * rng.uniform(0.1, 3.0, (30, 1))  # uneven inputs
    w = rng.standard_normal((12, 30))
    hessian = layer_hessian(x, damping=1e-8)
    for sparsity in (0.3, 0.6, 0.9):
        k = int(round(sparsity * 30))
        trajectories = greedy_row_deletions(w, np.linalg.inv(hessian), k, group_size=1)
        keep_obs = np.ones_like(w, dtype=bool)
        for row in range(12):
            keep_obs[row, trajectories.order[row, :k]] = False
        ours = reconstruct(w, hessian, keep_obs)
        keep_mag = np.ones_like(w, dtype=bool)
        for row in range(12):
            keep_mag[row, np.argsort(np.abs(w[row]))[:k]] = False
        error_obs = np.sum(((w - ours) @ x) ** 2)
        error_magnitude = np.sum(((w - w * keep_mag) @ x) ** 2)
        assert error_obs <= error_magnitude
        assert np.all(ours[~keep_obs] == 0)


def test_layerwise_obs_on_a_small_mlp_reaches_the_sparsity(mnist5k):
    model = ts.nn.mlp([784, 16, 10], seed=0)
    ts.fit(model, (mnist5k.x_train[:500], mnist5k.y_train[:500]), epochs=2, quiet=True)
    magnitude = ts.prune.clone(model)
    prune(magnitude, 0.9)
    report = obs_layerwise_prune(model, 0.9, mnist5k, calibration=300, group_size=4)
    for name, mask in report.masks.items():
        assert mask.sparsity == pytest.approx(0.9, abs=1 / mask.size)
        assert report.layers[name]["relative_error"] < 1
    x, y = mnist5k.x_test[:300], mnist5k.y_test[:300]
    assert ts.evaluate(model, x, y)["accuracy"] >= ts.evaluate(magnitude, x, y)["accuracy"]


# ---------------------------------------------------------------- the small problems
def test_obs_beats_obd_and_magnitude_on_monk1():
    data = ts.load_dataset("monk1")
    net = trained_tiny_net(data, hidden=3, activation="tanh")
    left = {method: prune_one_at_a_time(net, data, method).weights_at_full_accuracy
            for method in ("obs", "obd", "magnitude")}
    assert left["obs"] < left["obd"] and left["obs"] < left["magnitude"]


def test_obd_predicts_the_loss_increase_near_a_minimum():
    # LeCun's assumptions: a trained (extremal) quadratic-ish minimum, MSE, small deletions
    data = ts.load_dataset("teacher", n=400, inputs=6, noise=0.1)
    with ts.autograd.default_dtype(np.float64):
        model = ts.nn.mlp([6, 12, 1], activation="tanh", seed=0, flatten=False)
    ts.fit(model, data, epochs=3000, batch_size=300, loss="mse", lr=0.01, quiet=True)
    for kind in ("gauss-newton", "exact"):
        report = obd_prune(ts.prune.clone(model), 0.2, data.train, scope="global",
                           loss="mse", kind=kind)
        assert report.predicted_increase > 0
        assert report.actual_increase == pytest.approx(report.predicted_increase, rel=0.25)


# ---------------------------------------------------------------- bad input
def test_bad_input():
    model = ts.nn.lenet300()
    data = (np.zeros((2, 784), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="266,610 weights.*obs-layerwise"):
        obs_prune(model, 0.5, data)
    with pytest.raises(ValueError, match="damping: expected a positive number"):
        hs.inverse_fisher(np.ones((2, 2)), 2, 0.0)
    with pytest.raises(ValueError, match="damping"):
        layer_hessian(np.ones((3, 4)), -1.0)
    with pytest.raises(ValueError, match="no examples"):
        hs.hessian_diagonal(model, (np.zeros((0, 784)), np.zeros(0, dtype=int)))
    with pytest.raises(ValueError, match="needs data"):
        prune(model, 0.5, method="obd")
    with pytest.raises(ValueError, match="fully connected"):
        hs.hessian_diagonal(ts.nn.lenet5(), data, kind="exact")
    with pytest.raises(ValueError, match="calibration"):
        obs_layerwise_prune(ts.nn.mlp([4, 3]), 0.5, (np.ones((5, 4)), np.zeros(5, int)),
                            calibration=0)


def test_compacting_the_inverse_keeps_what_is_alive():
    from tinysparse.prune.obs import compact

    rng = np.random.default_rng(4)
    a = rng.standard_normal((10, 10))
    h = a @ a.T + np.eye(10)
    inverse, w = np.linalg.inv(h), rng.standard_normal(10)
    obs_delete(w, inverse, [2, 5])
    alive = np.ones(10, dtype=bool)
    alive[[2, 5]] = False
    smaller, survivors, index = compact(inverse, w, np.arange(10), alive)
    kept = [i for i in range(10) if i not in (2, 5)]
    assert list(index) == kept
    np.testing.assert_allclose(smaller, np.linalg.inv(h[np.ix_(kept, kept)]), rtol=1e-10)
    np.testing.assert_array_equal(survivors, w[kept])


def test_layerwise_obs_prunes_convolutions_through_im2col(mnist5k):
    model = ts.nn.lenet5(seed=0)
    report = obs_layerwise_prune(model, 0.7, mnist5k, calibration=32)
    assert set(report.masks) == {"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight",
                                 "fc3.weight"}
    for name, mask in report.masks.items():
        assert mask.sparsity == pytest.approx(0.7, abs=1 / mask.size)
        assert np.all(model.get_parameter(name).data[~mask.keep] == 0)
    assert report.layers["conv2.weight"]["relative_error"] < 0.5
