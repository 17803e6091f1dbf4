"""One training step (forward, backward, optimiser update) at batch 128.

Compares, in one process and interleaved, with SGD with momentum:

* ``tinysparse`` — the framework (autograd graph, modules, optimiser);
* ``numpy-handwritten`` — a minimal hand-written NumPy forward/backward for the same
  network: the floor any NumPy framework can hope for;
* ``torch`` — PyTorch on the CPU, when installed;

and, in the same interleaved rounds, the same step with Adam (``fit``'s default), for
``tinysparse`` and ``torch`` (records with ``"optimizer": "adam"``).

Then pruned networks (LeNet-300-100 at 90/95/99% sparsity; LeNets with half or three
quarters of their units removed), against the dense tinysparse step:

* ``tinysparse-sparse`` — pruned layers on the sparse kernels (SparseLinear: what
  pruning gives at high sparsity);
* ``tinysparse-masked-dense`` — the same masks on dense layers, BLAS on W ⊙ M (what most
  libraries do);
* ``tinysparse-structured`` — units removed, a smaller dense network;
* ``tinysparse-dense`` and ``torch`` — the unpruned network.

Usage::

    python benchmarks/train_step.py            # table
    python benchmarks/train_step.py --json     # records (see ../shared/DESIGN.md)
"""

from __future__ import annotations

import argparse

import tinysparse as ts  # first: configures BLAS/OpenMP threads before NumPy loads

# isort: split
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinysparse.benchmarking import (  # noqa: E402
    machine_description,
    make_records,
    print_records,
    ratio_table,
    time_interleaved,
    torch_available,
)
from tinysparse.tables import format_table  # noqa: E402

LR, MOMENTUM = 0.01, 0.9
ADAM_LR = 1e-3


# ---------------------------------------------------------------- tinysparse
def tinysparse_step(model, x, y, optimizer="sgd"):
    optimizer = (ts.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
                 if optimizer == "sgd" else ts.optim.Adam(model.parameters(), lr=ADAM_LR))

    def step():
        loss = ts.autograd.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


# ---------------------------------------------------------------- hand-written NumPy
class HandwrittenMLP:
    """784-300-100-10 ReLU MLP, forward and backward written out by hand."""

    def __init__(self, weights):
        self.params = [w.copy() for w in weights]  # W1, b1, W2, b2, W3, b3
        self.velocity = [np.zeros_like(p) for p in self.params]

    def step(self, x, y):
        grads, _ = relu_mlp_forward_backward(x.reshape(len(x), -1), self.params, y, False)
        sgd_momentum(self.params, self.velocity, grads)


def relu_mlp_forward_backward(x, params, y, need_dx):
    """Three ReLU-separated Linear layers, softmax cross-entropy, and their gradients."""
    w1, b1, w2, b2, w3, b3 = params
    h1 = np.maximum(x @ w1.T + b1, 0)
    h2 = np.maximum(h1 @ w2.T + b2, 0)
    z = h2 @ w3.T + b3
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    dz = p / len(y)
    dh2 = (dz @ w3) * (h2 > 0)
    dh1 = (dh2 @ w2) * (h1 > 0)
    grads = [dh1.T @ x, dh1.sum(0), dh2.T @ h1, dh2.sum(0), dz.T @ h2, dz.sum(0)]
    return grads, (dh1 @ w1 if need_dx else None)


class HandwrittenLeNet5:
    """conv(6,5x5,pad 2)-pool-conv(16,5x5)-pool-120-84-10 with im2col, by hand."""

    def __init__(self, weights):
        self.params = [w.copy() for w in weights]  # c1w c1b c2w c2b f1w f1b f2w f2b f3w f3b
        self.velocity = [np.zeros_like(p) for p in self.params]

    @staticmethod
    def conv_forward(x, w, b, pad):
        n, c, h, wd = x.shape
        o, _, k, _ = w.shape
        if pad:
            x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        oh, ow = x.shape[2] - k + 1, x.shape[3] - k + 1
        cols = sliding_window_view(x, (k, k), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5)
        cols = cols.reshape(n * oh * ow, c * k * k)
        out = cols @ w.reshape(o, -1).T + b
        return out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2), cols

    @staticmethod
    def conv_backward(grad, cols, x_shape, w, pad, need_dx):
        n, c, h, wd = x_shape
        o, _, k, _ = w.shape
        g = grad.transpose(0, 2, 3, 1).reshape(-1, o)
        dw = (g.T @ cols).reshape(w.shape)
        db = g.sum(0)
        if not need_dx:
            return None, dw, db
        dcols = (g @ w.reshape(o, -1)).reshape(n, h + 2 * pad - k + 1, wd + 2 * pad - k + 1,
                                               c, k, k)
        oh, ow = dcols.shape[1:3]
        dx = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=grad.dtype)
        for u in range(k):
            for v in range(k):
                dx[:, :, u:u + oh, v:v + ow] += dcols[:, :, :, :, u, v].transpose(0, 3, 1, 2)
        return dx[:, :, pad:pad + h, pad:pad + wd], dw, db

    @staticmethod
    def pool_forward(x):
        n, c, h, w = x.shape
        windows = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        windows = windows.reshape(n, c, h // 2, w // 2, 4)
        arg = windows.argmax(-1)
        return np.take_along_axis(windows, arg[..., None], -1)[..., 0], arg

    @staticmethod
    def pool_backward(grad, arg, x_shape):
        n, c, h, w = x_shape
        onehot = (arg[..., None] == np.arange(4)) * grad[..., None]
        return onehot.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
            x_shape)

    def step(self, x, y):
        c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b = self.params
        x = x.reshape(len(x), 1, 28, 28)
        a1, cols1 = self.conv_forward(x, c1w, c1b, 2)
        r1 = np.maximum(a1, 0)
        p1, arg1 = self.pool_forward(r1)
        a2, cols2 = self.conv_forward(p1, c2w, c2b, 0)
        r2 = np.maximum(a2, 0)
        p2, arg2 = self.pool_forward(r2)
        flat = p2.reshape(len(x), -1)
        grads = [None] * 4
        head, dflat = relu_mlp_forward_backward(flat, (f1w, f1b, f2w, f2b, f3w, f3b), y, True)
        grads += head
        dp2 = dflat.reshape(p2.shape)
        dr2 = self.pool_backward(dp2, arg2, r2.shape) * (r2 > 0)
        dp1, grads[2], grads[3] = self.conv_backward(dr2, cols2, p1.shape, c2w, 0, True)
        dr1 = self.pool_backward(dp1, arg1, r1.shape) * (r1 > 0)
        _, grads[0], grads[1] = self.conv_backward(dr1, cols1, x.shape, c1w, 2, False)
        sgd_momentum(self.params, self.velocity, grads)


def sgd_momentum(params, velocity, grads):
    for p, v, g in zip(params, velocity, grads):
        v *= MOMENTUM
        v += g
        p -= LR * v


# ---------------------------------------------------------------- PyTorch
def torch_step(model_name, weights, x, y, optimizer="sgd"):
    import torch

    layers = {
        "lenet300": lambda: torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 300), torch.nn.ReLU(),
            torch.nn.Linear(300, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)),
        "lenet5": lambda: torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
            torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10)),
    }
    model = layers[model_name]()
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(w))
    optimizer = (torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
                 if optimizer == "sgd" else torch.optim.Adam(model.parameters(), lr=ADAM_LR))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(tx), ty)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


# ---------------------------------------------------------------- pruned networks
def pruned_cases(batch, repeats, use_torch, seed=0):
    from tinysparse.prune import prune, shrink, structured_prune

    data = ts.load_dataset("mnist-5k")
    x, y = data.x_train[:batch], data.y_train[:batch]
    records = []
    dense = ts.build_model("lenet300", seed=seed)
    for sparsity in (0.9, 0.95, 0.99):
        sparse = ts.build_model("lenet300", seed=seed)
        prune(sparse, sparsity)
        masked = ts.nn.to_dense(ts.nn.clone(sparse))  # the same masks, dense kernels
        ts.nn.to_sparse(sparse, max_density=1.0)
        implementations = {
            "tinysparse-dense": tinysparse_step(dense, x, y),
            "tinysparse-sparse": tinysparse_step(sparse, x, y),
            "tinysparse-masked-dense": tinysparse_step(masked, x, y),
        }
        if use_torch and torch_available():
            implementations["torch"] = torch_step(
                "lenet300", [p.data.copy() for p in dense.parameters()], x, y)
        timings = time_interleaved(implementations, repeats=repeats, warmup=5, block=10)
        records += make_records("train_step", {"model": "lenet300", "batch": batch,
                                               "sparsity": sparsity, "dtype": "float32"},
                                timings)
    for name in ("lenet300", "lenet5"):
        base = ts.build_model(name, seed=seed)
        implementations = {"tinysparse-dense": tinysparse_step(base, x, y)}
        for fraction in (0.5, 0.75):
            model = ts.build_model(name, seed=seed)
            structured_prune(model, fraction)
            small = shrink(model)
            implementations[f"tinysparse-structured-{fraction:.0%}-units"] = tinysparse_step(
                small, x, y)
        timings = time_interleaved(implementations, repeats=repeats, warmup=5, block=10)
        records += make_records("train_step", {"model": name, "batch": batch,
                                               "sparsity": None, "dtype": "float32",
                                               "structured": True}, timings)
    return records


# ---------------------------------------------------------------- main
def run(models=("lenet300", "lenet5"), batch=128, repeats=50, use_torch=True, seed=0):
    data = ts.load_dataset("mnist-5k")
    x, y = data.x_train[:batch], data.y_train[:batch]
    records = []
    for name in models:
        model = ts.build_model(name, seed=seed)
        weights = [p.data.copy() for p in model.parameters()]
        handwritten = (HandwrittenMLP if name == "lenet300" else HandwrittenLeNet5)(weights)
        implementations = {
            "tinysparse": tinysparse_step(model, x, y),
            "numpy-handwritten": lambda h=handwritten: h.step(x, y),
            "tinysparse-adam": tinysparse_step(ts.build_model(name, seed=seed), x, y, "adam"),
        }
        if use_torch and torch_available():
            implementations["torch"] = torch_step(name, weights, x, y)
            implementations["torch-adam"] = torch_step(name, weights, x, y, "adam")
        timings = time_interleaved(implementations, repeats=repeats, warmup=5, block=10)
        case = {"model": name, "batch": batch, "sparsity": 0.0, "dtype": "float32"}
        for optimizer in ("sgd-momentum", "adam"):  # one case per optimiser, timed together
            chosen = {implementation.removesuffix("-adam"): stats
                      for implementation, stats in timings.items()
                      if implementation.endswith("-adam") == (optimizer == "adam")}
            records += make_records("train_step", {**case, "optimizer": optimizer}, chosen)
    return records


def adam_table(records) -> str:
    """The Adam step beside tinysparse's SGD step (timed in the same rounds)."""
    rows = []
    for name in dict.fromkeys(r["model"] for r in records):
        sgd = next(r["median_seconds"] for r in records if r["model"] == name
                   and r["optimizer"] == "sgd-momentum" and r["implementation"] == "tinysparse")
        for r in records:
            if r["model"] == name and r["optimizer"] == "adam":
                rows.append([name, r["implementation"], r["median_seconds"] * 1e3,
                             r["median_seconds"] / sgd])
    return format_table(rows, ["model", "implementation", "Adam step ms",
                               "x tinysparse SGD step"], precision=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--dense-only", action="store_true", help="skip the pruned networks")
    args = parser.parse_args()
    records = run(batch=args.batch, repeats=args.repeats, use_torch=not args.no_torch)
    sgd = [r for r in records if r["optimizer"] == "sgd-momentum"]
    text = (f"training step, batch {args.batch}, SGD with momentum — {machine_description()}\n\n"
            + ratio_table(sgd, ["model", "batch"], baseline="numpy-handwritten")
            + "\n\nthe same step with Adam (timed in the same rounds)\n\n" + adam_table(records))
    if not args.dense_only:
        pruned = pruned_cases(args.batch, args.repeats, not args.no_torch)
        records += pruned
        text += ("\n\npruned networks (ratio to the dense tinysparse step)\n\n"
                 + ratio_table(pruned, ["model", "batch", "sparsity"],
                               baseline="tinysparse-dense"))
    print_records(records, args.json, text)


if __name__ == "__main__":
    main()
