"""The latency of one prediction (batch 1) and of a batch of 128, on every inference path.

For LeNet-300-100 and LeNet-5, each case times, in one process and interleaved (see
:mod:`tinysparse.benchmarking`), the logits of a batch of mnist-5k test digits from:

* ``tinysparse-dense``, ``tinysparse-sparse`` (per-layer magnitude pruning, 95% of
  LeNet-300-100's weights, 90% of LeNet-5's: every layer on the sparse kernels) and
  ``tinysparse-structured-50%``/``-75%`` (that fraction of every hidden layer's units
  removed, a smaller dense network), each twice: ``-forward`` is the model's ordinary
  forward pass (``model(x)`` in evaluation mode under ``no_grad``), ``-plan`` the inference
  path (:func:`tinysparse.inference.compile_inference`, built once before timing);
* ``torch-dense``: the same dense network in PyTorch (``inference_mode``, evaluation mode);
* ``torch-csr``: the pruned network with ``torch.sparse_csr`` weights (``addmm`` on
  feature-major activations; LeNet-5's convolutions stay dense, masked: PyTorch has no
  CSR convolution);

when PyTorch is installed. The weights are the untrained initial ones (seed 0): latency
does not depend on their values, only on how many there are.

Every case runs twice: with the libraries' default threads, and with one thread (NumPy's
BLAS through threadpoolctl, Numba, PyTorch). On a 2-core machine that other processes keep
busy, a two-thread library waits for its slower half, and the one-thread figures are the
comparison to trust (see DEVELOPERS.md on timing against PyTorch in one process). Each turn
makes ``--block`` calls in a row (10): a stream of predictions, one after another, with
each library's threads and caches as they are in such a stream.

The issue's target (batch 1, LeNet-300-100): the sparse plan at most 0.25× the dense plan
(each its fastest path), and faster than ``torch-dense`` with one thread and by default.

Usage::

    python benchmarks/inference.py                  # tables
    python benchmarks/inference.py --json           # records (see ../shared/DESIGN.md)
    python benchmarks/inference.py --threads 1      # only the one-thread section
"""

from __future__ import annotations

import argparse
import contextlib

import tinysparse as ts  # first: configures BLAS/OpenMP threads before NumPy loads

# isort: split
import numpy as np

from tinysparse.benchmarking import (  # noqa: E402
    machine_description,
    make_records,
    print_records,
    time_interleaved,
    torch_available,
)
from tinysparse.inference import compile_inference  # noqa: E402
from tinysparse.prune import prune, shrink, structured_prune  # noqa: E402
from tinysparse.tables import format_table  # noqa: E402

SPARSITY = {"lenet300": 0.95, "lenet5": 0.9}
STRUCTURED = (0.5, 0.75)  # fraction of each hidden layer's units removed
BATCHES = (1, 128)


# ---------------------------------------------------------------- tinysparse
def tinysparse_models(name: str, seed: int = 0) -> dict[str, ts.nn.Module]:
    """The dense, pruned and structurally shrunk networks, in evaluation mode."""
    dense = ts.build_model(name, seed=seed)
    sparse = ts.build_model(name, seed=seed)
    prune(sparse, SPARSITY[name])  # per layer; every layer moves to the sparse kernels
    models = {"dense": dense, "sparse": sparse}
    for fraction in STRUCTURED:
        masked = ts.build_model(name, seed=seed)
        structured_prune(masked, fraction)
        models[f"structured-{fraction:.0%}"] = shrink(masked)
    return {variant: model.eval() for variant, model in models.items()}


def forward(model, x):
    """The model's ordinary forward pass: logits as an array."""
    def run():
        with ts.no_grad():
            return model(x).data
    return run


def planned(model, x):
    """The inference path: the plan is built here, once; the callable only runs it."""
    plan = compile_inference(model)
    return lambda: plan(x)


# ---------------------------------------------------------------- PyTorch
def torch_dense(name: str, model, x):
    """The dense network in PyTorch with ``model``'s weights."""
    import torch

    nn = torch.nn
    if name == "lenet300":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                            nn.ReLU(), nn.Linear(100, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                            nn.Linear(84, 10))
    state = model.state_dict()
    with torch.no_grad():
        for (_, p), w in zip(net.named_parameters(), state.values(), strict=True):
            p.copy_(torch.from_numpy(w))
    net.eval()
    tx = torch.from_numpy(x.reshape(len(x), 1, 28, 28))

    def run():
        with torch.inference_mode():
            return net(tx)
    return run


def torch_csr(name: str, model, x):
    """The pruned network with CSR weights: Y_fm = W X_fm + b, feature-major, layer by layer
    (LeNet-5's convolutions dense, with the pruned weights at zero)."""
    import warnings

    import torch
    import torch.nn.functional as F

    state = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    linear = ("fc1", "fc2", "fc3")
    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        csr = {n: state[f"{n}.weight"].to_sparse_csr() for n in linear}
    bias = {n: state[f"{n}.bias"][:, None] for n in linear}
    tx = torch.from_numpy(x.reshape(len(x), 1, 28, 28))

    def features(images):
        if name == "lenet300":
            return images.reshape(len(images), -1)
        h = F.max_pool2d(F.relu(F.conv2d(images, state["conv1.weight"], state["conv1.bias"],
                                         padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, state["conv2.weight"], state["conv2.bias"])), 2)
        return h.reshape(len(images), -1)

    def run():
        with torch.inference_mode():
            h = features(tx).T  # feature-major: (in, batch)
            for n in linear:
                h = torch.addmm(bias[n], csr[n], h)
                if n != "fc3":
                    h = torch.relu(h)
            return h.T
    return run


# ---------------------------------------------------------------- cases
def case_functions(name: str, x: np.ndarray, use_torch: bool = True, seed: int = 0):
    """{implementation: callable returning the logits} for one model and batch, and the
    names of the tinysparse variants."""
    implementations = {}
    models = tinysparse_models(name, seed)
    for variant, model in models.items():
        implementations[f"tinysparse-{variant}-forward"] = forward(model, x)
        implementations[f"tinysparse-{variant}-plan"] = planned(model, x)
    if use_torch and torch_available():
        implementations["torch-dense"] = torch_dense(name, models["dense"], x)
        implementations["torch-csr"] = torch_csr(name, models["sparse"], x)
    return implementations


@contextlib.contextmanager
def threads_limited(threads: int | None):
    """NumPy's BLAS, Numba and PyTorch on ``threads`` threads inside the block (None: as
    they are)."""
    if threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    torch = __import__("torch") if torch_available() else None
    previous = (numba.get_num_threads(), torch.get_num_threads() if torch else None)
    numba.set_num_threads(threads)
    if torch:
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        numba.set_num_threads(previous[0])
        if torch:
            torch.set_num_threads(previous[1])


def run(models=("lenet300", "lenet5"), batches=BATCHES, repeats: int = 200, block: int = 10,
        threads_sections=(None, 1), use_torch: bool = True, seed: int = 0,
        min_seconds: float = 0.0) -> list[dict]:
    """Records for every model, batch and thread setting (None: the default threads); each
    case takes at least ``repeats`` calls per implementation, and goes on until
    ``min_seconds`` have passed."""
    data = ts.load_dataset("mnist-5k")
    records = []
    for threads in threads_sections:
        for name in models:
            for batch in batches:
                x = np.ascontiguousarray(data.x_test[:batch], dtype=np.float32)
                implementations = case_functions(name, x, use_torch, seed)
                with threads_limited(threads):
                    timings = time_interleaved(implementations, repeats=repeats, warmup=5,
                                               block=block, min_seconds=min_seconds)
                case = {"model": name, "batch": batch, "threads": threads or "default",
                        "dtype": "float32", "sparsity": SPARSITY[name],
                        "structured_fractions": list(STRUCTURED), "block": block}
                records += make_records("inference", case, timings)
    return records


# ---------------------------------------------------------------- tables
def latency_table(records: list[dict]) -> str:
    """Medians in µs, the ratio to the dense plan and to torch-dense of the same case."""
    def case(r):
        return r["model"], r["batch"], r["threads"]

    medians = {(case(r), r["implementation"]): r["median_seconds"] for r in records}
    rows = []
    for r in records:
        dense_plan = medians.get((case(r), "tinysparse-dense-plan"))
        torch_dense = medians.get((case(r), "torch-dense"))
        rows.append([*case(r), r["implementation"], r["median_seconds"] * 1e6,
                     r["iqr_seconds"] * 1e6, r["median_seconds"] / dense_plan,
                     r["median_seconds"] / torch_dense if torch_dense else None])
    return format_table(rows, ["model", "batch", "threads", "implementation", "median µs",
                               "IQR µs", "x dense plan", "x torch-dense"], precision=3)


def target_lines(records: list[dict]) -> list[str]:
    """The issue's target, batch 1, LeNet-300-100: sparse plan / dense plan <= 0.25, and the
    sparse plan faster than torch-dense (one line per thread setting)."""
    lines = []
    for threads in dict.fromkeys(r["threads"] for r in records):
        chosen = {r["implementation"]: r["median_seconds"] for r in records
                  if r["model"] == "lenet300" and r["batch"] == 1 and r["threads"] == threads}
        if "tinysparse-sparse-plan" not in chosen:
            continue
        sparse = chosen["tinysparse-sparse-plan"]
        line = (f"threads {threads}: sparse plan {sparse * 1e6:.1f} µs = "
                f"{sparse / chosen['tinysparse-dense-plan']:.3f}x the dense plan "
                f"({chosen['tinysparse-dense-plan'] * 1e6:.1f} µs)")
        if "torch-dense" in chosen:
            line += (f", {sparse / chosen['torch-dense']:.3f}x torch-dense "
                     f"({chosen['torch-dense'] * 1e6:.1f} µs)")
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per implementation")
    parser.add_argument("--block", type=int, default=10, help="calls in a row per turn")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="time each case for at least this long (more calls when fast)")
    parser.add_argument("--threads", type=int, default=None,
                        help="only this many threads (default: the default threads, then one)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--models", default="lenet300,lenet5")
    args = parser.parse_args()
    records = run(models=args.models.split(","), repeats=args.repeats, block=args.block,
                  threads_sections=(None, 1) if args.threads is None else (args.threads,),
                  use_torch=not args.no_torch, min_seconds=args.min_seconds)
    text = (f"inference latency, float32 — {machine_description()}\n\n"
            + latency_table(records) + "\n\nbatch 1, LeNet-300-100 at 95% sparsity:\n"
            + "\n".join(target_lines(records)))
    print_records(records, args.json, text)


if __name__ == "__main__":
    main()
