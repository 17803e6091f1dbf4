"""The inference path computes what the model computes in evaluation mode, on every kind of
network (dense, masked, sparse, structurally shrunk; batch 1 and 128; float32 and float64),
refuses layers it does not know, and is a snapshot of the weights."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse import inference, kernels
from tinysparse.inference import InferenceModel, compile_inference
from tinysparse.prune import prune, shrink, structured_prune

VARIANTS = ("dense", "masked", "sparse", "mixed", "shrunk")


def build(name: str, variant: str, dtype=np.float32):
    """A network of the given kind, with trained-looking (non-zero) biases."""
    model = ts.build_model(name, seed=0).to(dtype)
    rng = np.random.default_rng(1)
    for layer in model:
        if getattr(layer, "bias", None) is not None:
            layer.bias.data = (0.1 * rng.standard_normal(layer.bias.shape)).astype(dtype)
    if variant == "masked":  # 50% per layer: above the threshold, the layers stay dense
        prune(model, 0.5)
    elif variant == "sparse":  # every layer on the sparse kernels
        prune(model, 0.9)
    elif variant == "mixed":  # sparse layers around a masked dense one
        prune(model, 0.9, overrides={ts.prune.prunable_parameters(model)[-2]: 0.5})
    elif variant == "shrunk":
        structured_prune(model, 0.5)
        model = shrink(model)
    return model


def eval_logits(model, x):
    was_training = model.training
    model.eval()
    with ts.no_grad():
        logits = model(x).data
    model.train(was_training)
    return logits


def layer_kinds(model):
    return {type(layer).__name__ for layer in model}


def test_the_variants_are_what_they_say():
    assert "SparseLinear" in layer_kinds(build("lenet300", "sparse"))
    assert "SparseLinear" not in layer_kinds(build("lenet300", "masked"))
    assert {"SparseLinear", "Linear"} <= layer_kinds(build("lenet300", "mixed"))
    assert {"SparseConv2d", "SparseLinear"} <= layer_kinds(build("lenet5", "sparse"))
    assert build("lenet300", "shrunk").fc1.out_features == 150


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 128])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_the_plan_computes_what_the_model_computes(name, variant, batch, dtype, mnist5k):
    model = build(name, variant, dtype)
    x = mnist5k.x_test[:batch]
    plan = compile_inference(model)
    logits = plan(x)
    expected = eval_logits(model, x)
    assert logits.dtype == dtype and logits.shape == (batch, 10)
    # The plan and the model add the same products in different orders (BLAS blocks, the
    # kernels' vector lanes), so they differ by rounding: per sum of n products of order
    # sqrt(n)·u·Σ|products| (u = 6e-8 in float32, 1.1e-16 in float64; n <= 784). The logits
    # here are O(0.1-1); measured on 15 digits, float32, the plan and the model differ by
    # at most 2.4e-7, as much as the model's float32 logits differ from its float64 ones.
    # The tolerances leave a factor ~40 over that (float64: ~1e4 over u), and are far
    # below a real mistake: a lost output bias moves a logit by ~0.13.
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10,
                                                                             atol=1e-12)
    np.testing.assert_allclose(logits, expected, **tolerance)
    np.testing.assert_allclose(plan.predict_proba(x), model.predict_proba(x), **tolerance)
    np.testing.assert_array_equal(plan.predict(x), expected.argmax(axis=1))


@pytest.mark.parametrize("batch", [inference.SPMV_BELOW - 1, inference.SPMV_BELOW,
                                   inference.ONE_THREAD_BELOW])
def test_both_sides_of_each_batch_threshold_agree(batch, mnist5k):
    for name in ("lenet300", "lenet5"):
        model = build(name, "sparse")
        x = mnist5k.x_test[:batch]
        np.testing.assert_allclose(compile_inference(model)(x), eval_logits(model, x),
                                   rtol=1e-4, atol=1e-5)


def test_the_readable_kernels_give_the_same_plan(monkeypatch, mnist5k):
    """A plan built with the NumPy references (what TINYSPARSE_DISABLE_NUMBA=1 runs)."""
    x = mnist5k.x_test[:3]
    for name in ("lenet300", "lenet5"):
        model = build(name, "mixed")
        compiled = compile_inference(model)(x)
        with monkeypatch.context() as patch:
            patch.setattr(kernels, "numba_enabled", lambda: False)
            readable = compile_inference(model)
        assert readable.steps[-1].spmv_layers is kernels.reference("spmv_layers")
        assert compile_inference(model).steps[-1].spmv_layers is not \
            kernels.reference("spmv_layers") or not kernels.numba_enabled()
        np.testing.assert_allclose(readable(x), compiled, rtol=1e-5, atol=1e-6)


def test_the_plan_takes_what_the_model_takes(mnist5k):
    """Image batches (N, 1, 28, 28), (N, 28, 28) or flat (N, 784); lists; float64 inputs
    to a float32 model are cast, as the model casts them."""
    model = build("lenet5", "sparse")
    plan = compile_inference(model)
    images = mnist5k.x_test[:2]
    expected = plan(images)
    for x in (images.reshape(2, 28, 28), images.reshape(2, 784), images.astype(np.float64),
              images.tolist()):
        np.testing.assert_allclose(plan(x), expected, rtol=1e-6)


def test_a_fused_relu_a_standalone_activation_and_dropout_in_evaluation_mode(mnist5k):
    x = mnist5k.x_test[:5]
    net = ts.nn.Sequential(
        ("flatten", ts.nn.Flatten()), ("drop0", ts.nn.Dropout(0.2, seed=1)),
        ("fc1", ts.nn.Linear(784, 20, rng=0)), ("act1", ts.nn.Tanh()),
        ("fc2", ts.nn.Linear(20, 20, rng=1)), ("act2", ts.nn.ReLU()), ("act3", ts.nn.ReLU()),
        ("inner", ts.nn.Sequential(("fc3", ts.nn.Linear(20, 10, rng=2)),
                                   ("act4", ts.nn.Sigmoid()))),
    )
    net.train()  # the plan computes evaluation mode whatever mode the model is in
    plan = compile_inference(net)
    assert [step.name for step in plan.steps] == ["flatten", "fc1", "act1", "fc2", "act3",
                                                  "inner.fc3", "inner.act4"]
    assert plan.steps[3].relu and not plan.steps[1].relu
    np.testing.assert_allclose(plan(x), eval_logits(net, x), rtol=1e-5, atol=1e-6)
    assert net.training


def test_a_run_of_sparse_layers_is_one_step_and_repr_shows_the_steps():
    plan = compile_inference(build("lenet300", "sparse"))
    assert [step.name for step in plan.steps] == ["flatten", "fc1+fc2+fc3"]
    text = repr(plan)
    assert "snapshot" in text and "784 -> 300 ReLU" in text and "100 -> 10," in text
    mixed = compile_inference(build("lenet300", "mixed"))
    assert [type(step).__name__ for step in mixed.steps] == [
        "ReshapeStep", "SparseLinearStack", "DenseLinearStep", "SparseLinearStack"]


def test_layers_without_bias_and_a_bare_layer():
    layer = ts.nn.Linear(6, 4, bias=False, rng=0)
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(compile_inference(layer)(x), eval_logits(layer, x), rtol=1e-6)
    layer.set_mask("weight", np.random.default_rng(1).random((4, 6)) < 0.2)
    sparse = ts.nn.to_sparse(layer, max_density=1.0)
    assert isinstance(sparse, ts.nn.SparseLinear)
    np.testing.assert_allclose(compile_inference(sparse)(x), eval_logits(sparse, x),
                               rtol=1e-6, atol=1e-7)


def test_the_plan_is_a_snapshot(mnist5k):
    """Training the model after compiling changes the model, not the plan; compiling again
    follows the model."""
    x, y = mnist5k.x_train[:64], mnist5k.y_train[:64]
    for variant in ("dense", "sparse", "masked"):
        model = build("lenet5", variant)
        plan = compile_inference(model)
        before = eval_logits(model, x)
        ts.fit(model, (x, y), epochs=1, lr=1e-2, batch_size=16, seed=0, quiet=True)
        after = eval_logits(model, x)
        assert not np.allclose(after, before, rtol=1e-3)  # the model moved ...
        np.testing.assert_allclose(plan(x), before, rtol=1e-4, atol=1e-5)  # ... the plan not
        np.testing.assert_allclose(compile_inference(model)(x), after, rtol=1e-4, atol=1e-5)


def test_the_plan_shares_no_array_with_the_model():
    model = build("lenet300", "mixed")
    plan = compile_inference(model)
    model_arrays = [p.data for p in model.parameters()]
    plan_arrays = [value for step in plan.steps for value in vars(step).values()
                   if isinstance(value, np.ndarray)]
    assert plan_arrays
    for ours in plan_arrays:
        assert not any(np.shares_memory(ours, theirs) for theirs in model_arrays)


@pytest.mark.parametrize("layer", [
    ts.nn.VariationalLinear(784, 10),
    ts.nn.L0Linear(784, 10),
])
def test_unknown_layers_are_refused_by_name_and_type(layer):
    model = ts.nn.Sequential(("flatten", ts.nn.Flatten()), ("gate", layer))
    kind = type(layer).__name__
    with pytest.raises(TypeError, match=rf"layer 'gate' is a {kind}.*knows .*SparseLinear"):
        compile_inference(model)


def test_a_subclass_of_a_known_layer_is_refused_too():
    class Scaled(ts.nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    with pytest.raises(TypeError, match="'Scaled' is a Scaled"):
        compile_inference(Scaled(3, 2))


def test_wrong_inputs_are_named(mnist5k):
    plan = compile_inference(build("lenet300", "sparse"))
    with pytest.raises(ValueError, match=r"fc1\+fc2\+fc3: expected input of shape \(N, 784\)"):
        plan(np.zeros((2, 780), dtype=np.float32))
    dense = compile_inference(build("lenet300", "dense"))
    with pytest.raises(ValueError, match=r"fc1: expected input of shape \(N, 784\)"):
        dense(np.zeros((2, 3), dtype=np.float32))
    lenet5 = compile_inference(build("lenet5", "sparse"))
    with pytest.raises(ValueError, match=r"reshape: expected input of shape \(N, 1, 28, 28\)"):
        lenet5(np.zeros((2, 700), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        plan.predict(np.full((1, 784), np.nan))


@pytest.mark.parametrize("bad, message", [
    ("seven", "x: expected numbers, got an array of dtype <U5"),
    ([[1.0, "a"]], "x: expected numbers, got an array of dtype <U"),
    (None, "x: expected numbers, got an array of dtype object"),
    (np.zeros((1, 784), dtype=complex), "x: expected numbers, got an array of dtype complex128"),
    ([[0.0] * 784, [0.0] * 3], "x: expected an array of numbers; .*inhomogeneous"),
    (3.0, r"x: expected a batch of examples, \(N, ...\), got the single number 3.0"),
    (np.float32(3.0), r"x: expected a batch of examples, \(N, ...\), got the single number"),
])
def test_inputs_that_are_not_a_batch_of_numbers_are_refused_naming_x(bad, message):
    for variant in ("dense", "sparse"):
        with pytest.raises(ValueError, match=message):
            compile_inference(build("lenet300", variant))(bad)


def test_any_real_array_of_examples_is_cast_to_the_plan_dtype(mnist5k):
    """The fast path (an array of the plan's dtype) and the cast give the same logits: other
    float types, byte order, booleans and lists."""
    plan = compile_inference(build("lenet300", "sparse"))
    x = np.ascontiguousarray(mnist5k.x_test[:3].reshape(3, 784), dtype=np.float32)
    expected = plan(x)
    for other in (x.astype(np.float64), x.astype(x.dtype.newbyteorder()), x.tolist(),
                  np.asfortranarray(x)):
        np.testing.assert_array_equal(plan(other), expected)
    assert plan(x > 0.5).dtype == np.float32


def test_sparse_layers_that_do_not_chain_are_refused_when_compiling():
    net = ts.nn.Sequential(("fc1", ts.nn.Linear(8, 6, rng=0)), ("fc2", ts.nn.Linear(5, 3, rng=1)))
    for layer in net:
        layer.set_mask("weight", np.ones(layer.weight.shape, dtype=bool))
    ts.nn.to_sparse(net, max_density=1.0)
    with pytest.raises(ValueError, match="'fc2' takes 5 inputs, but 'fc1' before it gives 6"):
        compile_inference(net)


def test_an_empty_batch_and_chunked_predictions(mnist5k):
    plan = compile_inference(build("lenet300", "sparse"))
    assert isinstance(plan, InferenceModel)
    x = mnist5k.x_test[:25]
    np.testing.assert_array_equal(plan.predict(x, batch_size=7), plan.predict(x))
    assert plan.predict(x[:0]).shape == (0,)
    with pytest.raises(ValueError, match="batch_size"):
        plan.predict(x, batch_size=0)
