"""One training epoch of sparse variational dropout on LeNet-300-100, against PyTorch.

The epoch of :func:`tinysparse.sparsify.variational.run` on mnist-5k's 4,000 training
digits, batch 100, Adam (lr 1e-3): for every mini-batch the local reparameterisation
forward pass (mean x θᵀ + b and variance x² (σ²)ᵀ, one ε per example and unit), the loss
cross-entropy + KL / N (Molchanov et al.'s approximation, log α clipped to [−8, 8]), the
backward pass and the Adam step. Compared, in one process and interleaved:

* ``tinysparse`` — the VariationalLinear layers and the autograd ops;
* ``torch`` — PyTorch on the CPU computing the same formulas with its own ops;

and, timed in the same rounds, one epoch of the plain network (cross-entropy only) for
both, to show what the variational layers cost. The ratio to PyTorch is per method.

Usage::

    python benchmarks/variational_epoch.py              # table
    python benchmarks/variational_epoch.py --json       # records (see ../shared/DESIGN.md)
    python benchmarks/variational_epoch.py --threads 1  # both libraries on one thread

With ``--threads N`` both libraries are limited to N threads (threadpoolctl for NumPy's
BLAS, ``torch.set_num_threads`` for PyTorch); records carry ``threads`` (None: each
library's default). On a shared 2-core machine the two-thread timings of a process that
also runs PyTorch are bimodal (see DEVELOPERS.md): measure more than once, and with one
thread too.
"""

from __future__ import annotations

import argparse

import tinysparse as ts  # first: configures BLAS/OpenMP threads before NumPy loads

# isort: split
import numpy as np

from tinysparse.autograd import cross_entropy  # noqa: E402
from tinysparse.autograd.nn_ops import (  # noqa: E402
    KL_K1,
    KL_K2,
    KL_K3,
    LOG_ALPHA_RANGE,
    THETA_SQUARED_FLOOR,
    VARIANCE_FLOOR,
)
from tinysparse.benchmarking import (  # noqa: E402
    machine_description,
    make_records,
    print_records,
    ratio_table,
    time_interleaved,
    torch_available,
)
from tinysparse.nn import to_variational, variational_kl  # noqa: E402

BATCH, LR, KL_WEIGHT = 100, 1e-3, 1.0


# ---------------------------------------------------------------- tinysparse
def tinysparse_epoch(model, x, y, variational: bool, seed: int = 0):
    """One epoch of mini-batch Adam over (x, y): the loop of ``fit``, without its extras."""
    optimizer = ts.optim.Adam(model.parameters(), lr=LR)
    order = np.random.default_rng(seed)
    n = len(x)

    def epoch():
        for xb, yb in ts.data.batches(x, y, BATCH, rng=order):
            loss = cross_entropy(model(xb), yb)
            if variational:
                loss = loss + variational_kl(model) * (KL_WEIGHT / n)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


# ---------------------------------------------------------------- PyTorch
def torch_lenet300(model, variational: bool):
    """The PyTorch twin of a (variational) tinysparse LeNet-300-100, with its weights."""
    import torch

    class LRTLinear(torch.nn.Module):
        """Sparse variational dropout's Linear layer, the same formulas as ours."""

        def __init__(self, theta, log_sigma2, bias):
            super().__init__()
            self.theta = torch.nn.Parameter(torch.tensor(theta))
            self.log_sigma2 = torch.nn.Parameter(torch.tensor(log_sigma2))
            self.bias = torch.nn.Parameter(torch.tensor(bias))
            self.noise = None  # fixed ε for the tests; None draws it

        def forward(self, x):
            mean = torch.nn.functional.linear(x, self.theta, self.bias)
            std = torch.sqrt(torch.nn.functional.linear(x * x, torch.exp(self.log_sigma2))
                             + VARIANCE_FLOOR)
            noise = torch.randn_like(mean) if self.noise is None else self.noise
            return mean + std * noise

        def kl(self):
            log_alpha = torch.clamp(
                self.log_sigma2 - torch.log(self.theta * self.theta + THETA_SQUARED_FLOOR),
                *LOG_ALPHA_RANGE)
            negative_kl = (KL_K1 * torch.sigmoid(KL_K2 + KL_K3 * log_alpha)
                           - 0.5 * torch.log1p(torch.exp(-log_alpha)) - KL_K1)
            return -negative_kl.sum()

    layers = [model.get_submodule(name) for name in ("fc1", "fc2", "fc3")]
    if variational:
        linears = [LRTLinear(layer.theta.data, layer.log_sigma2.data, layer.bias.data)
                   for layer in layers]
    else:
        linears = []
        for layer in layers:
            linear = torch.nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(layer.weight.data))
                linear.bias.copy_(torch.tensor(layer.bias.data))
            linears.append(linear)
    return torch.nn.Sequential(torch.nn.Flatten(), linears[0], torch.nn.ReLU(), linears[1],
                               torch.nn.ReLU(), linears[2])


def torch_kl(net):
    return sum(module.kl() for module in net if hasattr(module, "kl"))


def torch_epoch(model, x, y, variational: bool, seed: int = 0):
    import torch

    net = torch_lenet300(model, variational)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    n = len(x)

    def epoch():
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, BATCH):
            index = order[start:start + BATCH]
            loss = torch.nn.functional.cross_entropy(net(tx[index]), ty[index])
            if variational:
                loss = loss + torch_kl(net) * (KL_WEIGHT / n)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


# ---------------------------------------------------------------- main
def run(repeats: int = 15, use_torch: bool = True, seed: int = 0, threads: int | None = None):
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
        if use_torch and torch_available():
            import torch

            torch.set_num_threads(threads)
    data = ts.load_dataset("mnist-5k")
    x, y = data.x_train, data.y_train
    implementations = {}
    for method, variational in (("variational-dropout", True), ("plain", False)):
        model = ts.build_model("lenet300", seed=seed)
        if variational:
            to_variational(model, seed=seed)
        implementations[f"tinysparse|{method}"] = tinysparse_epoch(model, x, y, variational,
                                                                   seed)
        if use_torch and torch_available():
            implementations[f"torch|{method}"] = torch_epoch(model, x, y, variational, seed)
    timings = time_interleaved(implementations, repeats=repeats, warmup=2)
    records = []
    for method in ("variational-dropout", "plain"):
        chosen = {name.split("|")[0]: stats for name, stats in timings.items()
                  if name.endswith(f"|{method}")}
        records += make_records("variational_epoch", {
            "model": "lenet300", "method": method, "examples": len(x), "batch": BATCH,
            "optimizer": "adam", "dtype": "float32", "threads": threads}, chosen)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit both libraries to this many threads")
    args = parser.parse_args()
    records = run(repeats=args.repeats, use_torch=not args.no_torch, threads=args.threads)
    baseline = "tinysparse" if args.no_torch else "torch"
    text = (f"one training epoch of LeNet-300-100 on mnist-5k (4,000 digits, batch {BATCH}, "
            f"Adam, threads: {args.threads or 'default'}) — {machine_description()}\n\n"
            + ratio_table(records, ["method"], baseline=baseline))
    print_records(records, args.json, text)


if __name__ == "__main__":
    main()
