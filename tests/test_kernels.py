"""Kernels: the Numba twins equal the NumPy references and the dense masked computation."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysparse as ts
from tinysparse import kernels
from tinysparse.prune import clone, prune
from tinysparse.sparse import build_structure, set_density_threshold, structure_of

JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT") == "1"
EXAMPLES = 15 if JIT_OFF else 60


def random_sparse(rng, rows, cols, sparsity, empty_row=False, empty_col=False):
    keep = rng.random((rows, cols)) >= sparsity
    if empty_row:
        keep[rng.integers(rows)] = False
    if empty_col:
        keep[:, rng.integers(cols)] = False
    weight = rng.standard_normal((rows, cols)).astype(np.float32) * keep
    return weight, keep


def both(name):
    """The NumPy reference first, then every compiled version: kernels compiled twice
    (parallel, and one thread for small inputs) contribute both."""
    compiled = kernels.compiled(name)
    twins = [compiled.serial, compiled.parallel] if hasattr(compiled, "serial") else [compiled]
    return [kernels.reference(name), *twins]


sparse_case = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "rows": st.integers(1, 40),
    "cols": st.integers(1, 40),
    "batch": st.integers(1, 33),
    "sparsity": st.sampled_from([0.0, 0.3, 0.8, 0.95, 1.0]),
    "empty_row": st.booleans(),
    "empty_col": st.booleans(),
})


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=sparse_case)
def test_sparse_kernels_equal_each_other_and_the_dense_masked_products(case):
    rng = np.random.default_rng(case["seed"])
    w, keep = random_sparse(rng, case["rows"], case["cols"], case["sparsity"],
                            case["empty_row"], case["empty_col"])
    s = build_structure(keep)
    values = s.gather(w)
    x = rng.standard_normal((case["cols"], case["batch"])).astype(np.float32)
    dy = rng.standard_normal((case["rows"], case["batch"])).astype(np.float32)
    tolerance = dict(rtol=1e-5, atol=1e-5)
    bias = rng.standard_normal(case["rows"]).astype(np.float32)
    for kernel in both("spmm"):
        np.testing.assert_allclose(kernel(s.indptr, s.indices, values, x), w @ x, **tolerance)
        np.testing.assert_allclose(kernel(s.indptr, s.indices, values, x, bias),
                                   w @ x + bias[:, None], **tolerance)
    for kernel in both("spmm_transposed"):
        np.testing.assert_allclose(kernel(s.t_indptr, s.t_indices, s.t_order, values, dy),
                                   w.T @ dy, **tolerance)
    for kernel in both("sddmm"):
        np.testing.assert_allclose(s.scatter(kernel(s.indptr, s.indices, dy, x), w.shape),
                                   (dy @ x.T) * keep, **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_twins_agree_and_keep_the_memory_layout(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((33, 17)).astype(dtype).T  # a feature-major activation
    x[0, :4] = [np.nan, -0.0, 0.0, -np.inf]
    grad = rng.standard_normal((33, 17)).astype(dtype).T
    out, grad_x = kernels.reference("relu")(x), kernels.reference("relu_backward")(grad, x)
    assert np.isnan(out[0, 0]) and out[0, 3] == 0 and (out >= 0).sum() == x.size - 1
    for relu, relu_backward in zip(both("relu")[1:], both("relu_backward")[1:]):
        np.testing.assert_array_equal(relu(x), out)
        np.testing.assert_array_equal(relu_backward(grad, x), grad_x)
        assert relu(x).dtype == dtype and relu(x).flags.f_contiguous
        assert relu_backward(grad, x).flags.f_contiguous
        # layouts that differ, and a strided view
        np.testing.assert_array_equal(relu_backward(np.ascontiguousarray(grad), x), grad_x)
        np.testing.assert_array_equal(relu(x[::2, 1:]), out[::2, 1:])
    np.testing.assert_array_equal(grad_x, np.where(x > 0, grad, 0))


def test_structure_round_trip():
    rng = np.random.default_rng(0)
    w, keep = random_sparse(rng, 7, 5, 0.6, empty_row=True, empty_col=True)
    s = build_structure(keep)
    np.testing.assert_array_equal(s.to_dense(s.gather(w)), w)
    assert s.nnz == keep.sum() and s.density == keep.mean()
    mask = ts.sparse.Mask(keep)
    assert structure_of(mask) is structure_of(mask)  # built once per mask


conv_case = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000), "n": st.integers(1, 3), "c": st.integers(1, 3),
    "h": st.integers(3, 9), "w": st.integers(3, 9), "k": st.integers(1, 3),
    "stride": st.integers(1, 2), "padding": st.integers(0, 2),
})


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=conv_case)
def test_im2col_col2im_and_pooling_twins_agree(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(np.float32)
    k, s, p = case["k"], case["stride"], case["padding"]
    (ref_cols, ref_size), (jit_cols, jit_size) = [f(x, k, k, s, p) for f in both("im2col")]
    np.testing.assert_array_equal(jit_cols, ref_cols)
    assert tuple(jit_size) == tuple(ref_size)
    cols = rng.standard_normal(ref_cols.shape).astype(np.float32)
    reference, compiled = [f(cols, x.shape, k, k, s, p) for f in both("col2im")]
    np.testing.assert_allclose(compiled, reference, rtol=1e-5, atol=1e-5)
    if k <= min(case["h"], case["w"]):
        (ref_out, ref_win), (jit_out, jit_win) = [f(x, k, s) for f in both("max_pool_forward")]
        np.testing.assert_array_equal(jit_out, ref_out)
        np.testing.assert_array_equal(jit_win, ref_win)
        grad = rng.standard_normal(ref_out.shape).astype(np.float32)
        reference, compiled = [f(grad, ref_win, x.shape, k, s)
                               for f in both("max_pool_backward")]
        np.testing.assert_allclose(compiled, reference, rtol=1e-6, atol=1e-6)


def test_max_pool_twins_break_ties_the_same_way():
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    for f in both("max_pool_forward"):
        _, winner = f(x, 2, 2)
        assert np.all(winner == 0)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("first_step", [True, False])
def test_kept_update_twins_agree(optimizer, first_step):
    results = []
    for kernel in both(f"{optimizer}_update_kept"):
        rng = np.random.default_rng(1)
        # compact: one weight, one gradient and one state entry per kept weight
        kept, g = rng.standard_normal((2, 37)).astype(np.float32)
        buffers = [np.abs(rng.standard_normal(37)).astype(np.float32) for _ in range(2)]
        f32 = np.float32
        if optimizer == "sgd":
            kernel(kept, g, buffers[0], f32(0.1), f32(0.9), f32(0.01), True, first_step)
        else:
            kernel(kept, g, buffers[0], buffers[1], f32(0.01), f32(0.9), f32(0.1),
                   f32(0.999), f32(0.001), f32(0.05), f32(1e-8), f32(0.01))
        assert kept.dtype == np.float32
        results.append((kept, *buffers))
    for reference, *compiled in zip(*results):
        for array in compiled:
            np.testing.assert_allclose(array, reference, rtol=1e-6)


def test_layerwise_obs_twins_agree():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 200))
    w = rng.standard_normal((5, 12))
    inverse = np.linalg.inv(2 * x @ x.T / 200 + 0.01 * np.eye(12))
    (ref_order, ref_inc), (jit_order, jit_inc) = [f(w, inverse, 9)
                                                  for f in both("obs_rows_greedy")]
    np.testing.assert_array_equal(jit_order, ref_order)
    np.testing.assert_allclose(jit_inc, ref_inc, rtol=1e-9)


# ---------------------------------------------------------------- layers and training
@pytest.fixture
def threshold():
    yield set_density_threshold
    set_density_threshold(None)


def test_sparse_layers_equal_masked_dense_layers(threshold, mnist5k):
    x = mnist5k.x_train[:16]
    for build in (ts.nn.lenet300, ts.nn.lenet5):
        dense = build(seed=0)
        prune(dense, 0.9)
        sparse = clone(dense)
        threshold(0.0)
        out_dense = dense(x)
        loss = ts.autograd.cross_entropy(out_dense, mnist5k.y_train[:16])
        loss.backward()
        threshold(1.0)
        assert sparse.fc1.compute_path() == "sparse"
        out_sparse = sparse(x)
        ts.autograd.cross_entropy(out_sparse, mnist5k.y_train[:16]).backward()
        np.testing.assert_allclose(out_sparse.data, out_dense.data, rtol=1e-4, atol=1e-5)
        for (name, p), q in zip(dense.named_parameters(), sparse.parameters()):
            np.testing.assert_allclose(q.grad, p.grad, rtol=1e-3, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_on_the_sparse_path_follows_the_masked_dense_path(threshold, optimizer,
                                                                   mnist5k):
    base = ts.nn.lenet300(seed=0)
    ts.fit(base, (mnist5k.x_train[:256], mnist5k.y_train[:256]), epochs=1, quiet=True)
    prune(base, 0.95)
    losses = {}
    for density in (0.0, 1.0):  # 0: masked dense everywhere; 1: sparse everywhere
        threshold(density)
        model = clone(base)
        make = {"sgd": lambda p: ts.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
                "adam": lambda p: ts.optim.Adam(p, lr=1e-3)}[optimizer]
        history = ts.fit(model, (mnist5k.x_train[:3200], mnist5k.y_train[:3200]), epochs=1,
                         batch_size=64, optimizer=make(model.parameters()), quiet=True,
                         max_steps=50)
        assert history.steps == 50
        losses[density] = history.train_loss[-1]
        for name, mask in model.named_masks():  # masks never regrow
            assert np.all(model.get_parameter(name).data[~mask.keep] == 0)
    assert losses[1.0] == pytest.approx(losses[0.0], rel=1e-4)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimizer_state_survives_switching_paths_and_masks(threshold, optimizer, mnist5k):
    """Momentum / moments move between the dense layout and the compact one (one entry per
    kept weight) when the path or the mask changes, and the run equals an all-dense run."""
    x, y = mnist5k.x_train[:64], mnist5k.y_train[:64]
    base = ts.nn.lenet300(seed=0)
    prune(base, 0.9)
    runs = {}
    for schedule in ("dense", "switching"):
        model = clone(base)
        make = {"sgd": lambda p: ts.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
                "adam": lambda p: ts.optim.Adam(p, lr=1e-3, weight_decay=1e-3)}[optimizer]
        opt = make(model.parameters())
        losses = []
        for step in range(12):
            if step == 8:  # a new mask with more zeros, while on the sparse path
                prune(model, 0.95)
            sparse = schedule == "switching" and step % 6 < 3
            threshold(1.0 if sparse else 0.0)
            loss = ts.autograd.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        threshold(0.0)
        for name, mask in model.named_masks():
            assert np.all(model.get_parameter(name).data[~mask.keep] == 0)
        runs[schedule] = (losses, [p.data.copy() for p in model.parameters()])
    np.testing.assert_allclose(runs["switching"][0], runs["dense"][0], rtol=1e-4)
    for switched, dense in zip(runs["switching"][1], runs["dense"][1]):
        np.testing.assert_allclose(switched, dense, rtol=1e-3, atol=1e-5)


def test_sparse_path_weights_stay_compact_until_data_is_read(threshold):
    """On the sparse path the kept weights are the master copy; ``.data`` is always current
    and anything written into it (in place or by assignment) reaches the next step."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 784)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    base = ts.nn.lenet300(seed=0)
    prune(base, 0.9)
    models = {"dense": clone(base), "sparse": clone(base)}
    optimizers = {k: ts.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
                  for k, m in models.items()}

    def step(path):
        threshold(0.0 if path == "dense" else 1.0)
        loss = ts.autograd.cross_entropy(models[path](x), y)
        optimizers[path].zero_grad()
        loss.backward()
        optimizers[path].step()
        return loss.item()

    def check_equal():
        threshold(0.0)
        for p, q in zip(models["dense"].parameters(), models["sparse"].parameters()):
            np.testing.assert_allclose(q.data, p.data, rtol=1e-4, atol=1e-6)

    weight = models["sparse"].fc1.weight
    for _ in range(3):
        assert step("sparse") == pytest.approx(step("dense"), rel=1e-4)
    assert weight._kept is not None  # compact master: the dense array is stale here...
    stale = weight._dense.copy()
    check_equal()  # ...until .data is read
    assert weight._kept is None and not np.array_equal(weight.data, stale)
    kept_at = np.flatnonzero(weight.mask.keep)[:5]
    for model in models.values():  # an in-place write after a step reaches the next one
        step_path = "sparse" if model is models["sparse"] else "dense"
        model.fc1.weight.data.reshape(-1)[kept_at] = 0.25
        step(step_path)
    check_equal()
    for model in models.values():  # so does an assignment
        model.fc2.weight.data = model.fc2.weight.data * 0.5
        step("sparse" if model is models["sparse"] else "dense")
    check_equal()
    step("sparse")
    step("dense")
    state = models["sparse"].state_dict()  # saving reads the current weights
    np.testing.assert_allclose(state["fc1.weight"], models["dense"].fc1.weight.data,
                               rtol=1e-4, atol=1e-6)
    for model in models.values():  # a new mask while compact: the old values written back
        prune(model, 0.95)
    for _ in range(2):
        assert step("sparse") == pytest.approx(step("dense"), rel=1e-4)
    check_equal()
    for name, mask in models["sparse"].named_masks():
        assert np.all(models["sparse"].get_parameter(name).data[~mask.keep] == 0)


def test_sparse_path_weight_gradients_stay_compact_until_read(threshold):
    from tinysparse.sparse import SparseGradient

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 784)).astype(np.float32)
    model = ts.nn.lenet300(seed=0)
    prune(model, 0.9)
    dense = clone(model)
    threshold(1.0)
    for _ in range(2):  # two backward passes accumulate, still compact
        model(x).sum().backward()
    threshold(0.0)
    for _ in range(2):
        dense(x).sum().backward()
    weight = model.fc1.weight
    threshold(1.0)
    ts.optim.SGD(model.parameters(), lr=0.1).step()  # reads the compact values only
    assert isinstance(weight._grad, SparseGradient)
    structure = structure_of(weight.mask)
    np.testing.assert_allclose(weight.kept_gradient(structure),
                               structure.gather(dense.fc1.weight.grad), rtol=1e-4, atol=1e-6)
    grad = weight.grad  # reading .grad gives the dense array (zeros where pruned), once
    assert isinstance(grad, np.ndarray) and grad.shape == weight.shape
    assert weight.grad is grad and np.all(grad[~weight.mask.keep] == 0)
    np.testing.assert_allclose(grad, dense.fc1.weight.grad, rtol=1e-4, atol=1e-6)
    model(x).sum().backward()  # dense + compact: dense
    assert isinstance(weight.grad, np.ndarray)


def test_a_compact_gradient_adds_like_an_array():
    from tinysparse.sparse import SparseGradient

    keep = np.array([[True, False, True], [False, True, False]])
    s = build_structure(keep)
    a = SparseGradient(s, np.array([1.0, 2.0, 3.0]), keep.shape)
    b = SparseGradient(s, np.array([10.0, 20.0, 30.0]), keep.shape)
    np.testing.assert_array_equal((a + b).values, [11.0, 22.0, 33.0])
    np.testing.assert_array_equal(np.ones(keep.shape) + a, 1 + np.asarray(a))
    np.testing.assert_array_equal(a + np.ones(keep.shape), [[2, 1, 3], [1, 4, 1]])
    tensor = ts.Tensor(np.zeros(keep.shape), requires_grad=True)  # not a Parameter
    tensor.accumulate_grad(a)
    assert isinstance(tensor.grad, np.ndarray)


def test_sparsity_report_shows_the_compute_path(threshold):
    model = ts.nn.lenet300()
    prune(model, 0.95, overrides={"fc3.weight": 0.5})
    threshold(0.2)
    paths = {r["layer"]: r["path"] for r in ts.metrics.sparsity_report(model).rows}
    assert paths == {"fc1.weight": "sparse", "fc2.weight": "sparse",
                     "fc3.weight": "masked-dense"}


def test_density_threshold_is_validated():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        set_density_threshold(1.5)


@pytest.mark.skipif(JIT_OFF, reason="already running with the JIT off")
def test_kernel_tests_pass_with_the_jit_off():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "twins or sparse_kernels", "-x"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


PARALLEL_TWINS_SCRIPT = """
import numpy as np, numba
import tinysparse
from tinysparse import kernels
from tinysparse.sparse import build_structure
assert numba.get_num_threads() == 2, numba.get_num_threads()
rng = np.random.default_rng(0)
for rows, cols, batch, sparsity in [(300, 784, 64, 0.9), (97, 61, 33, 0.5), (64, 500, 7, 0.99)]:
    keep = rng.random((rows, cols)) >= sparsity
    w = (rng.standard_normal((rows, cols)) * keep).astype(np.float32)
    x = rng.standard_normal((cols, batch)).astype(np.float32)
    dy = rng.standard_normal((rows, batch)).astype(np.float32)
    s = build_structure(keep)
    v = s.gather(w)
    for name, args in [("spmm", (s.indptr, s.indices, v, x)),
                       ("spmm", (s.indptr, s.indices, v, x, dy[:, 0].copy())),
                       ("spmm_transposed", (s.t_indptr, s.t_indices, s.t_order, v, dy)),
                       ("sddmm", (s.indptr, s.indices, dy, x))]:
        np.testing.assert_allclose(kernels.compiled(name).parallel(*args),
                                   kernels.reference(name)(*args), rtol=1e-5, atol=1e-5)
    g = rng.standard_normal(s.nnz).astype(np.float32)
    for name in ("sgd_update_kept", "adam_update_kept"):
        results = []
        for kernel in (kernels.reference(name), kernels.compiled(name).parallel):
            weight, state = s.gather(w), [np.ones(s.nnz, np.float32) for _ in range(2)]
            f = np.float32
            if name == "sgd_update_kept":
                kernel(weight, g, state[0], f(0.1), f(0.9), f(0.01), False, False)
            else:
                kernel(weight, g, *state, f(0.01), f(0.9), f(0.1), f(0.999),
                       f(0.001), f(0.05), f(1e-8), f(0.01))
            results.append((weight, *state))
        for a, b in zip(*results):
            np.testing.assert_allclose(b, a, rtol=1e-6)
print("ok")
"""


@pytest.mark.skipif(JIT_OFF, reason="needs the compiled kernels")
def test_parallel_twins_agree_on_two_threads():
    """The test processes run with one thread each; the parallel twins get two here."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2", OMP_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-c", PARALLEL_TWINS_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_a_bad_density_threshold_in_the_environment_is_named(monkeypatch):
    from tinysparse.sparse import dispatch

    monkeypatch.setenv("TINYSPARSE_DENSITY_THRESHOLD", "lots")
    dispatch._default_threshold.cache_clear()
    try:
        with pytest.raises(ValueError, match="TINYSPARSE_DENSITY_THRESHOLD.*'lots'"):
            dispatch.density_threshold()
        monkeypatch.setenv("TINYSPARSE_DENSITY_THRESHOLD", "0.5")
        dispatch._default_threshold.cache_clear()
        assert dispatch.density_threshold() == 0.5
    finally:
        monkeypatch.delenv("TINYSPARSE_DENSITY_THRESHOLD")
        dispatch._default_threshold.cache_clear()
