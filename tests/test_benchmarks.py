"""The benchmarks time the same computation in every implementation (checked here; their
speed is measured by running them, not by tests)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import tinysparse as ts

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model_name", ["lenet300", "lenet5"])
def test_handwritten_numpy_step_equals_the_tinysparse_step(model_name, mnist5k):
    train_step = load("train_step")
    x, y = mnist5k.x_train[:16].astype(np.float64), mnist5k.y_train[:16]
    model = ts.build_model(model_name, seed=0).double()
    floor = {"lenet300": train_step.HandwrittenMLP,
             "lenet5": train_step.HandwrittenLeNet5}[model_name](
        [p.data.copy() for p in model.parameters()])
    optimizer = ts.optim.SGD(model.parameters(), lr=train_step.LR, momentum=train_step.MOMENTUM)
    for _ in range(2):
        loss = ts.autograd.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        floor.step(x, y)
    for ours, theirs in zip(model.parameters(), floor.params):
        np.testing.assert_allclose(ours.data, theirs, rtol=1e-10, atol=1e-12)


def as_array(result):
    """NumPy, scipy.sparse or torch (dense or sparse) results as one NumPy array."""
    if hasattr(result, "to_dense"):
        result = result.to_dense()
    if hasattr(result, "numpy"):
        result = result.numpy()
    if hasattr(result, "toarray"):
        result = result.toarray()
    return np.asarray(result)


def test_sparse_kernel_benchmark_cases_compute_the_same_products():
    bench = load("sparse_kernels")
    rng = np.random.default_rng(0)
    keep = rng.random((30, 40)) >= 0.9
    w = (rng.standard_normal((30, 40)) * keep).astype(np.float32)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    dy = rng.standard_normal((30, 8)).astype(np.float32)
    expected = {"forward": w @ x, "dX": w.T @ dy, "dW": dy @ x.T}
    for op, implementations in bench.case_functions(w, keep, x, dy, True).items():
        for name, fn in implementations.items():
            result = as_array(fn())
            reference = expected[op]
            if op == "dW" and name != "numpy-dense":  # only the non-zeros are computed
                reference = (reference * keep)[keep] if result.ndim == 1 else reference * keep
            np.testing.assert_allclose(result, reference, rtol=1e-4, atol=1e-4,
                                       err_msg=f"{op} {name}")


def test_distill_epoch_benchmark_trains_the_same_student_cached_or_not(mnist5k):
    bench = load("distill_epoch")
    implementations, students = bench.epochs(mnist5k.x_train[:128], mnist5k.y_train[:128])
    for epoch in implementations.values():
        epoch()
    cached = students["distill-cached"].state_dict()
    for name, values in students["distill-first-epoch"].state_dict().items():
        np.testing.assert_array_equal(cached[name], values, err_msg=name)
    assert not np.array_equal(students["fit"].state_dict()["fc1.weight"], cached["fc1.weight"])


def test_inference_benchmark_times_the_same_logits_and_writes_its_records(mnist5k):
    bench = load("inference")
    x = np.ascontiguousarray(mnist5k.x_test[:2], dtype=np.float32)
    for name in ("lenet300", "lenet5"):
        implementations = bench.case_functions(name, x)
        logits = {implementation: as_array(fn()) for implementation, fn in
                  implementations.items()}
        for implementation, values in logits.items():
            variant = {"torch-dense": "dense", "torch-csr": "sparse"}.get(
                implementation, implementation.removeprefix("tinysparse-").rsplit("-", 1)[0])
            np.testing.assert_allclose(values, logits[f"tinysparse-{variant}-forward"],
                                       rtol=1e-4, atol=1e-5, err_msg=f"{name} {implementation}")
    records = bench.run(models=("lenet300",), batches=(1,), repeats=2, block=1,
                        threads_sections=(None, 1))
    implementations = {r["implementation"] for r in records}
    assert {"tinysparse-dense-forward", "tinysparse-dense-plan", "tinysparse-sparse-plan",
            "tinysparse-structured-75%-plan"} <= implementations
    assert {r["threads"] for r in records} == {"default", 1}
    for record in records:
        assert {"benchmark", "implementation", "median_seconds", "model", "batch",
                "threads", "sparsity", "dtype"} <= set(record)
        assert record["benchmark"] == "inference" and record["median_seconds"] > 0
    assert len(bench.target_lines(records)) == 2
    assert "x dense plan" in bench.latency_table(records)
