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
from tinysparse.nn import clone, to_dense, to_sparse
from tinysparse.prune import prune
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


def stacked_layers(structures):
    """The stacked CSR arrays of several layers (as ``spmv_layers`` takes them): one
    ``indptr`` over all their rows, pointing into the concatenated entries."""
    starts = np.cumsum([0] + [s.nnz for s in structures])
    indptr = np.concatenate([[0]] + [s.indptr[1:] + start
                                     for s, start in zip(structures, starts)])
    layer_rows = np.cumsum([0] + [s.shape[0] for s in structures])
    return indptr.astype(np.uint32), np.concatenate([s.indices for s in structures]), layer_rows


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=sparse_case, relu=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       index_type=st.sampled_from([np.uint16, np.uint32, np.int64]))
def test_spmv_twins_equal_the_dense_product(case, relu, dtype, index_type):
    """y_n = max(W x_n + b, 0) for batch-major X, with the index types the inference path
    uses (and signed ones, which are only slower)."""
    rng = np.random.default_rng(case["seed"])
    w, keep = random_sparse(rng, case["rows"], case["cols"], case["sparsity"],
                            case["empty_row"], case["empty_col"])
    w = w.astype(dtype)
    s = build_structure(keep)
    x = rng.standard_normal((case["batch"], case["cols"])).astype(dtype)
    bias = rng.standard_normal(case["rows"]).astype(dtype)
    expected = x @ w.T + bias
    if relu:
        expected = np.maximum(expected, 0)
    arrays = (s.indptr.astype(np.uint32), s.indices.astype(index_type), s.gather(w))
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12,
                                                                             atol=1e-12)
    for kernel in both("spmv"):
        y = kernel(*arrays, x, bias, relu)
        assert y.dtype == dtype and y.shape == expected.shape
        np.testing.assert_allclose(y, expected, **tolerance)


@settings(max_examples=EXAMPLES, deadline=None)
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 30), min_size=2, max_size=5),
       batch=st.integers(1, 5), sparsity=st.sampled_from([0.0, 0.5, 0.95, 1.0]))
def test_spmv_layers_twins_equal_the_layers_one_after_the_other(seed, sizes, batch, sparsity):
    rng = np.random.default_rng(seed)
    layers = [random_sparse(rng, rows, cols, sparsity) for cols, rows in zip(sizes, sizes[1:])]
    structures = [build_structure(keep) for _, keep in layers]
    indptr, indices, layer_rows = stacked_layers(structures)
    values = np.concatenate([s.gather(w) for (w, _), s in zip(layers, structures)])
    bias = rng.standard_normal(layer_rows[-1]).astype(np.float32)
    relu = rng.random(len(layers)) < 0.5
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    expected, start = x, 0
    for (w, _), apply_relu in zip(layers, relu):
        expected = expected @ w.T + bias[start : start + len(w)]
        expected = np.maximum(expected, 0) if apply_relu else expected
        start += len(w)
    for kernel in both("spmv_layers"):
        y = kernel(indptr, indices.astype(np.uint16), values, bias, layer_rows, relu, x)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


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
    for name in ("indptr", "indices", "positions", "t_indptr", "t_indices", "t_order"):
        np.testing.assert_array_equal(getattr(structure_of(mask), name), getattr(s, name))


conv_case = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000), "n": st.integers(1, 3), "c": st.integers(1, 3),
    "h": st.integers(3, 9), "w": st.integers(3, 9), "k": st.integers(1, 3),
    "stride": st.integers(1, 2), "padding": st.integers(0, 2),
})


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=conv_case)
def test_im2col_col2im_and_pooling_twins_agree(case):
    """Every compiled twin (im2col and pooling have a one-thread one too) equals the
    reference, also on a channel-major view (what the inference path hands them)."""
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(np.float32)
    channel_major = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    k, s, p = case["k"], case["stride"], case["padding"]
    reference, *twins = both("im2col")
    ref_cols, ref_size = reference(x, k, k, s, p)
    for twin in twins:
        for images in (x, channel_major):
            jit_cols, jit_size = twin(images, k, k, s, p)
            np.testing.assert_array_equal(jit_cols, ref_cols)
            assert tuple(jit_size) == tuple(ref_size)
    cols = rng.standard_normal(ref_cols.shape).astype(np.float32)
    reference, compiled = [f(cols, x.shape, k, k, s, p) for f in both("col2im")]
    np.testing.assert_allclose(compiled, reference, rtol=1e-5, atol=1e-5)
    if k <= min(case["h"], case["w"]):
        reference, *twins = both("max_pool_forward")
        ref_out, ref_win = reference(x, k, s)
        for twin in twins:
            for images in (x, channel_major):
                jit_out, jit_win = twin(images, k, s)
                np.testing.assert_array_equal(jit_out, ref_out)
                np.testing.assert_array_equal(jit_win, ref_win)
        grad = rng.standard_normal(ref_out.shape).astype(np.float32)
        reference, compiled = [f(grad, ref_win, x.shape, k, s)
                               for f in both("max_pool_backward")]
        np.testing.assert_allclose(compiled, reference, rtol=1e-6, atol=1e-6)


def test_one_thread_gives_the_serial_twin_where_there_is_one():
    if not kernels.numba_enabled():
        assert kernels.one_thread("im2col") is kernels.reference("im2col")
        return
    for name in ("im2col", "max_pool_forward", "spmm"):
        assert kernels.one_thread(name) is kernels.compiled(name).serial
    assert kernels.one_thread("spmv") is kernels.compiled("spmv")  # one thread already


def test_max_pool_twins_break_ties_the_same_way():
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    for f in both("max_pool_forward"):
        _, winner = f(x, 2, 2)
        assert np.all(winner == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("first_step", [True, False])
def test_update_rule_twins_agree_bit_for_bit(optimizer, first_step, nesterov, dtype):
    """One rule per optimiser: the compiled twin does the reference's arithmetic in the
    same order, so the two agree exactly (what keeps training reproducible)."""
    results = []
    for kernel in both(f"{optimizer}_update"):
        rng = np.random.default_rng(1)
        w, g = rng.standard_normal((2, 37)).astype(dtype)
        buffers = [np.abs(rng.standard_normal(37)).astype(dtype) for _ in range(2)]
        c = np.dtype(dtype).type
        if optimizer == "sgd":
            kernel(w, g, buffers[0], c(0.1), c(0.9), c(0.01), nesterov, first_step)
        else:
            kernel(w, g, buffers[0], buffers[1], c(0.01), c(0.9), c(0.1), c(0.999),
                   c(0.001), c(0.05), c(1e-8), c(0.01 * nesterov))
        assert w.dtype == dtype
        results.append((w, *buffers))
    for reference, *compiled in zip(*results):
        for array in compiled:
            np.testing.assert_array_equal(array, reference)


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


def pruned_twins(build, sparsity=0.9):
    """The same pruned model twice: every masked layer dense, and every one sparse."""
    model = build(seed=0)
    prune(model, sparsity)
    return to_dense(clone(model)), to_sparse(clone(model), max_density=1.0)


def test_sparse_layers_equal_masked_dense_layers(mnist5k):
    x, y = mnist5k.x_train[:16], mnist5k.y_train[:16]
    for build in (ts.nn.lenet300, ts.nn.lenet5):
        masked, sparse = pruned_twins(build)
        assert isinstance(sparse.fc1, ts.nn.SparseLinear)
        assert isinstance(masked.fc1, ts.nn.Linear) and "weight" in masked.fc1._masks
        out_masked, out_sparse = masked(x), sparse(x)
        ts.autograd.cross_entropy(out_masked, y).backward()
        ts.autograd.cross_entropy(out_sparse, y).backward()
        np.testing.assert_allclose(out_sparse.data, out_masked.data, rtol=1e-4, atol=1e-5)
        for name, layer in sparse.named_modules():
            dense_layer = masked.get_submodule(name)
            if isinstance(layer, ts.nn.SparseLayer):  # the gradient of the kept weights only
                expected = layer.structure.gather(dense_layer.weight.grad)
                np.testing.assert_allclose(layer.values.grad, expected, rtol=1e-3,
                                           atol=1e-6, err_msg=name)
                np.testing.assert_allclose(layer.bias.grad, dense_layer.bias.grad,
                                           rtol=1e-3, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_on_the_sparse_path_follows_the_masked_dense_path(optimizer, mnist5k):
    base = ts.nn.lenet300(seed=0)
    ts.fit(base, (mnist5k.x_train[:256], mnist5k.y_train[:256]), epochs=1, quiet=True)
    prune(base, 0.95)
    losses, states = {}, {}
    for path, model in zip(("masked", "sparse"), (to_dense(clone(base)),
                                                  to_sparse(clone(base), max_density=1.0))):
        make = {"sgd": lambda p: ts.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
                "adam": lambda p: ts.optim.Adam(p, lr=1e-3, weight_decay=1e-4)}[optimizer]
        history = ts.fit(model, (mnist5k.x_train[:3200], mnist5k.y_train[:3200]), epochs=1,
                         batch_size=64, optimizer=make(model.parameters()), quiet=True,
                         max_steps=50)
        assert history.steps == 50
        losses[path], states[path] = history.train_loss[-1], model.state_dict()
        for name, mask in model.named_masks():  # masks never regrow
            assert np.all(states[path][name][~mask.keep] == 0)
    assert losses["sparse"] == pytest.approx(losses["masked"], rel=1e-4)
    for name in states["masked"]:
        np.testing.assert_allclose(states["sparse"][name], states["masked"][name],
                                   rtol=1e-3, atol=1e-5, err_msg=name)


def test_pruning_moves_sparse_enough_layers_to_the_sparse_kernels(threshold):
    model = ts.nn.lenet300(seed=0)
    prune(model, 0.5)  # density 0.5: above the switch point, the dense kernels
    assert all(type(m) is not ts.nn.SparseLinear for m in model.modules())
    prune(model, 0.95, overrides={"fc3.weight": 0.5})
    kinds = {name: type(m).__name__ for name, m in model.named_modules() if name}
    assert kinds["fc1"] == kinds["fc2"] == "SparseLinear" and kinds["fc3"] == "Linear"
    assert [name for name, _ in model.named_modules()] == [  # same places, same names
        "", "flatten", "fc1", "act1", "fc2", "act2", "fc3"]
    assert model.fc1.name == "fc1" and "SparseLinear(" in repr(model)
    threshold(0.0)  # from now on pruning keeps every layer dense
    prune(model, 0.96)
    assert not ts.nn.has_sparse_layers(model)


def test_converting_between_the_twins_keeps_every_weight_exactly():
    model = ts.nn.lenet5(seed=0)
    prune(model, 0.9, overrides={"conv1.weight": 0.5})
    before = model.state_dict()
    masks = dict(model.named_masks())
    to_sparse(model, max_density=1.0)
    assert isinstance(model.conv1, ts.nn.SparseConv2d)
    after = model.state_dict()
    assert after.keys() == before.keys() and dict(model.named_masks()).keys() == masks.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    to_dense(model)
    assert isinstance(model.conv1, ts.nn.Conv2d)
    for name, values in model.state_dict().items():
        np.testing.assert_array_equal(values, before[name])


def test_a_sparse_layer_stores_each_kept_weight_once():
    model = ts.nn.lenet300(seed=0)
    prune(model, 0.95)
    layer = model.fc1
    assert [n for n, _ in layer.named_parameters()] == ["values", "bias"]
    assert layer.values.shape == (layer.mask.kept,) and layer.values.mask is None
    picture = layer.dense_weight()
    picture[:] = 7.0  # a new array each time: writing into it changes nothing
    assert not np.any(layer.dense_weight() == 7.0)
    x = np.random.default_rng(0).standard_normal((4, 784)).astype(np.float32)
    before = model(x).data
    layer.values.data *= 2  # the values are the weights: the output follows
    assert not np.allclose(model(x).data, before)
    with pytest.raises(AttributeError, match="values"):
        layer.weight  # noqa: B018
    with pytest.raises(KeyError, match="to_dense"):
        model.get_parameter("fc1.weight")
    with pytest.raises(TypeError, match="apply_masks"):
        layer.set_mask("weight", layer.mask)


def test_further_pruning_and_masks_of_a_sparse_model():
    model = ts.nn.lenet300(seed=0)
    prune(model, 0.9)
    first = dict(model.named_masks())
    prune(model, 0.95)  # scores come from the dense weights, old zeros stay zeros
    for name, mask in model.named_masks():
        assert not np.any(mask.keep & ~first[name].keep)
        assert mask.sparsity == pytest.approx(0.95, abs=1e-3)
    ts.prune.remove_masks(model)
    assert not ts.nn.has_sparse_layers(model) and not dict(model.named_masks())


def test_sparsity_report_shows_the_compute_path(threshold):
    model = ts.nn.lenet300()
    threshold(0.2)
    prune(model, 0.95, overrides={"fc3.weight": 0.5})
    paths = {r["layer"]: r["path"] for r in ts.metrics.sparsity_report(model).rows}
    assert paths == {"fc1.weight": "sparse", "fc2.weight": "sparse",
                     "fc3.weight": "masked-dense"}
    unpruned = {r["path"] for r in ts.metrics.sparsity_report(ts.nn.lenet300()).rows}
    assert unpruned == {"dense"}


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
    for name in ("sgd_update", "adam_update"):
        results = []
        for kernel in (kernels.reference(name), kernels.compiled(name).parallel):
            weight, state = s.gather(w), [np.ones(s.nnz, np.float32) for _ in range(2)]
            f = np.float32
            if name == "sgd_update":
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
