"""Training in a random subspace (Li et al. 2018): θ = θ₀ + P v, the gradient Pᵀ g, the
sparse projection, and the search for d_int90."""

import numpy as np
import pytest

from tinysparse import intrinsic, nn
from tinysparse.autograd import cross_entropy
from tinysparse.intrinsic import (
    SparseProjection,
    Subspace,
    find_intrinsic_dimension,
    lent_parameters,
)
from tinysparse.train import History, fit


def tiny_model(seed=0):
    """4 -> 5 -> 3 with tanh, float64: D = 4·5 + 5 + 5·3 + 3 = 43."""
    return nn.build_model("mlp", sizes=[4, 5, 3], activation="tanh", seed=seed).double()


def tiny_data(seed=0, n=12):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)


def flat_gradient(model, x, y):
    """∂L/∂θ of the model's own parameters, in named_parameters order."""
    model.zero_grad()
    loss = cross_entropy(model(x), y)
    loss.backward()
    return np.concatenate([p.grad.ravel() for p in model.parameters()])


@pytest.mark.parametrize("kind", ["dense gaussian", "very sparse"])
def test_the_gradient_of_v_is_P_transposed_times_the_full_gradient(kind):
    model = tiny_model()
    D = model.num_parameters()
    rng = np.random.default_rng(1)
    projection = (SparseProjection.from_dense(rng.standard_normal((D, 7))) if kind ==
                  "dense gaussian" else SparseProjection.random(D, 7, seed=3, density=0.3))
    subspace = Subspace(model, projection=projection)
    subspace.v.data = rng.standard_normal(7)  # away from θ₀, so the test is not special
    x, y = tiny_data()
    loss = cross_entropy(subspace(x), y)
    loss.backward()
    # the same θ written into the model, differentiated the ordinary way
    g = flat_gradient(subspace.write_weights(), x, y)
    expected = projection.to_dense().T @ g
    np.testing.assert_allclose(subspace.v.grad, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(projection.rmatvec(g), expected, rtol=1e-10, atol=1e-12)


def test_with_the_identity_projection_subspace_training_is_ordinary_training():
    x, y = tiny_data(n=16)
    ordinary, wrapped = tiny_model(), tiny_model()
    D = ordinary.num_parameters()
    subspace = Subspace(wrapped, projection=SparseProjection.identity(D))
    assert subspace.dimension == D
    for model in (ordinary, subspace):
        fit(model, (x, y), epochs=1, batch_size=8, lr=0.01, max_steps=1, quiet=True, seed=0)
    theta = subspace.write_weights().state_dict()
    for name, values in ordinary.state_dict().items():
        np.testing.assert_allclose(theta[name], values, rtol=1e-12, atol=1e-15)
    assert not np.array_equal(theta["fc1.weight"], tiny_model().state_dict()["fc1.weight"])


def test_v_starts_at_zero_so_the_model_starts_at_theta0_exactly():
    model = tiny_model()
    before = model.state_dict()
    subspace = Subspace(model, 5, seed=0)
    assert np.array_equal(subspace.v.data, np.zeros(5))
    x, _ = tiny_data()
    assert np.array_equal(subspace(x).data, model(x).data)
    for name, tensor in subspace.weights().items():
        assert np.array_equal(tensor.data, before[name])


def test_only_v_is_trained_and_the_model_keeps_its_own_parameters():
    model = tiny_model()
    before = model.state_dict()
    subspace = Subspace(model, 6, seed=0)
    assert [name for name, _ in subspace.named_parameters()] == ["v"]
    x, y = tiny_data()
    fit(subspace, (x, y), epochs=2, batch_size=4, lr=0.05, quiet=True)
    assert np.abs(subspace.v.data).max() > 0
    for name, values in model.state_dict().items():  # θ₀ untouched until write_weights
        assert np.array_equal(values, before[name])
    after = subspace.write_weights().state_dict()
    theta = np.concatenate([before[n].ravel() for n, _ in model.named_parameters()])
    moved = np.concatenate([after[n].ravel() for n, _ in model.named_parameters()])
    np.testing.assert_allclose(moved, theta + subspace.projection.matvec(subspace.v.data))


def test_lent_parameters_are_given_back_even_after_an_error():
    model = tiny_model()
    own = dict(model.named_parameters())
    with pytest.raises(ValueError), lent_parameters(model, {"fc1.weight": own["fc2.weight"]}):
        model(np.zeros((1, 4)))  # the lent weight has the wrong shape
    assert dict(model.named_parameters()) == own
    assert model.fc1.weight is own["fc1.weight"]


def test_the_sparse_projection_has_unit_columns_density_one_over_root_D_and_a_seed():
    D, d = 40_000, 60
    P = SparseProjection.random(D, d, seed=0)
    dense = P.to_dense()
    np.testing.assert_allclose(np.linalg.norm(dense, axis=0), 1.0)
    counts = (dense != 0).sum(axis=0)
    # each column: Binomial(D, 1/√D), mean √D = 200, standard deviation ≈ 14
    assert abs(counts.mean() - 200) < 3 * 14 / np.sqrt(d)
    assert np.allclose(np.abs(P.values), 1 / np.sqrt(np.repeat(counts, counts)[
        np.argsort(P.columns, kind="stable").argsort()]))
    assert set(np.sign(P.values)) == {-1.0, 1.0}
    assert np.all(np.diff(P.rows) >= 0)  # CSR order
    assert np.array_equal(P.indptr[-1], P.nnz)
    same = SparseProjection.random(D, d, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(
        (P.rows, P.columns, P.values), (same.rows, same.columns, same.values)))
    other = SparseProjection.random(D, d, seed=1)
    assert not np.array_equal(other.to_dense(), dense)
    v = np.random.default_rng(0).standard_normal(d)
    np.testing.assert_allclose(P.matvec(v), dense @ v)


def test_a_block_of_rows_is_those_rows():
    P = SparseProjection.random(50, 4, seed=2, density=0.2)
    np.testing.assert_array_equal(P.block(10, 30).to_dense(), P.to_dense()[10:30])


def test_bad_input_names_the_argument():
    model = tiny_model()
    D = model.num_parameters()
    for bad in (0, -3, 2.5, True, None):
        with pytest.raises(ValueError, match="dimension"):
            Subspace(model, bad)
    with pytest.raises(ValueError, match=f"dimension: .*D = {D}"):
        Subspace(model, D + 1)
    with pytest.raises(TypeError, match="model"):
        Subspace(np.zeros(3), 2)
    with pytest.raises(ValueError, match="model: .* no parameters"):
        Subspace(nn.ReLU(), 1)
    with pytest.raises(ValueError, match="dimension/projection"):
        Subspace(model, 3, projection=SparseProjection.identity(D))
    with pytest.raises(ValueError, match=f"projection: .*{D} rows"):
        Subspace(model, projection=SparseProjection.identity(D - 1))
    with pytest.raises(ValueError, match="density"):
        SparseProjection.random(10, 2, density=0)
    with pytest.raises(ValueError, match="d: .* at most 10"):
        SparseProjection.random(10, 11)
    with pytest.raises(ValueError, match="dimensions: .*exceeds D"):
        find_intrinsic_dimension(tiny_model, None, [10, D + 1])
    with pytest.raises(ValueError, match="threshold"):
        find_intrinsic_dimension(tiny_model, None, [10], threshold=1.5)
    with pytest.raises(TypeError, match="make_model"):
        find_intrinsic_dimension(lambda: "not a model", None, [10])


def test_the_search_sweeps_then_bisects_to_the_smallest_d_that_reaches_the_target(
        monkeypatch):
    def accuracy_of(d):  # reaches 0.9 · 0.95 = 0.855 from d = 37 on
        return 0.95 if d >= 37 else 0.5

    tried = []

    def fake_run(make_model, data, dimension, **options):
        tried.append(dimension)
        history = History(epochs=[{"train_accuracy": accuracy_of(dimension)}])
        return {"accuracy": accuracy_of(dimension)}, history

    monkeypatch.setattr(intrinsic, "subspace_accuracy", fake_run)
    found = find_intrinsic_dimension(tiny_model, (None, None), [10, 20, 40],
                                     dense_test_accuracy=0.95, bisections=10)
    assert found.d_int == 37
    assert tried[:3] == [10, 20, 40] and tried[3:] == [30, 35, 37, 36]
    assert [r.stage for r in found.runs] == ["sweep"] * 3 + ["bisection"] * 4
    assert found.target_accuracy == pytest.approx(0.855)
    none = find_intrinsic_dimension(tiny_model, (None, None), [5], dense_test_accuracy=0.95)
    assert none.d_int is None and len(none.runs) == 1


# ---------------------------------------------------------------- tinysparse intrinsic
def test_the_command_prints_every_d_tried_and_d_int_as_json(capsys):
    import json

    from tinysparse.cli import main
    code = main(["intrinsic", "--dims", "20,300", "--epochs", "1", "--lr", "0.03",
                 "--threshold", "0.5", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    result = json.loads(out)
    assert result["num_weights"] == 266_610
    assert [r["dimension"] for r in result["runs"]][0] == 20
    assert result["target_accuracy"] == pytest.approx(0.5 * result["dense_test_accuracy"])
    reached = [r["dimension"] for r in result["runs"] if r["reached"]]
    assert result["d_int"] == (min(reached) if reached else None)


@pytest.mark.parametrize("argv, option", [
    (["--dims", "0,5"], "--dims"), (["--dims", "300000"], "--dims"),
    (["--threshold", "1.5"], "--threshold"), (["--subspace-lr", "-1"], "--subspace-lr"),
    (["--model", "lenet5", "--hidden", "3"], "--hidden")])
def test_the_command_refuses_bad_arguments_before_any_work(capsys, argv, option):
    from tinysparse.cli import main
    with pytest.raises(SystemExit) as exit_info:
        main(["intrinsic", *argv])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err
