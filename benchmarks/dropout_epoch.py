"""One training epoch of a dropout LeNet-300-100 (0.2 on the input, 0.5 on the hidden units).

Compares, in one process and interleaved (see :mod:`tinysparse.benchmarking`), one epoch
over mnist-5k's 4,000 training digits, batch 64, Adam (``fit``'s defaults):

* ``tinysparse`` — ``ts.fit`` on ``lenet300(dropout=0.5, input_dropout=0.2)``;
* ``torch`` — the same network with ``torch.nn.Dropout``, the same batches, when PyTorch
  is installed;

and the same two without dropout (``-no-dropout``), so that the cost of dropout itself
can be read off. Each epoch shuffles its batches and builds its optimiser, in both.

``--threads 1`` runs both on one thread (NumPy's BLAS through threadpoolctl, PyTorch's
``set_num_threads``). On a 2-core machine that other processes keep busy, a two-thread
BLAS product waits for its slower half: there the two-thread figures measure the
neighbours more than the code, and the one-thread ones are the comparison to trust.
Run it more than once (see DEVELOPERS.md on timing against PyTorch in one process).

Usage::

    python benchmarks/dropout_epoch.py               # table
    python benchmarks/dropout_epoch.py --threads 1   # both on one thread
    python benchmarks/dropout_epoch.py --json        # records (see ../shared/DESIGN.md)
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
    ratio_table,
    time_interleaved,
    torch_available,
)

BATCH, LR = 64, 1e-3
DROPOUT, INPUT_DROPOUT = 0.5, 0.2


def tinysparse_epoch(x, y, dropout: bool, seed: int = 0):
    """One ``fit`` epoch of a LeNet-300-100 (with or without dropout); each call goes on
    training the same model, with a new batch order."""
    options = dict(dropout=DROPOUT, input_dropout=INPUT_DROPOUT) if dropout else {}
    model = ts.nn.lenet300(seed=seed, **options)
    calls = iter(range(1_000_000))

    def epoch():
        ts.fit(model, (x, y), epochs=1, batch_size=BATCH, lr=LR, seed=next(calls), quiet=True)

    return epoch, model


def torch_model(weights, dropout: bool):
    """LeNet-300-100 in PyTorch with ``weights`` (tinysparse's, in parameter order)."""
    import torch

    nn = torch.nn
    layers = [nn.Flatten()]
    layers += [nn.Dropout(INPUT_DROPOUT)] if dropout else []
    layers += [nn.Linear(784, 300), nn.ReLU()] + ([nn.Dropout(DROPOUT)] if dropout else [])
    layers += [nn.Linear(300, 100), nn.ReLU()] + ([nn.Dropout(DROPOUT)] if dropout else [])
    layers += [nn.Linear(100, 10)]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights, strict=True):
            p.copy_(torch.from_numpy(w))
    return model


def torch_epoch(x, y, weights, dropout: bool):
    """The same epoch in PyTorch: shuffled batches of 64, Adam, cross-entropy."""
    import torch

    nn = torch.nn
    model = torch_model(weights, dropout)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)

    def epoch():
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), BATCH):
            index = order[start : start + BATCH]
            loss = loss_fn(model(tx[index]), ty[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch



@contextlib.contextmanager
def threads_limited(threads: int | None, use_torch: bool):
    """NumPy's BLAS and PyTorch on ``threads`` threads inside the block (None: as they are)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = None
    if use_torch and torch_available():
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        if previous is not None:
            torch.set_num_threads(previous)


def run(repeats: int = 15, use_torch: bool = True, seed: int = 0,
        threads: int | None = None) -> list[dict]:
    data = ts.load_dataset("mnist-5k")
    x, y = data.x_train, data.y_train
    implementations = {}
    for dropout in (True, False):
        suffix = "" if dropout else "-no-dropout"
        epoch, model = tinysparse_epoch(x, y, dropout, seed)
        implementations[f"tinysparse{suffix}"] = epoch
        if use_torch and torch_available():
            weights = [p.data.copy() for p in model.parameters()]
            implementations[f"torch{suffix}"] = torch_epoch(x, y, weights, dropout)
    with threads_limited(threads, use_torch):
        timings = time_interleaved(implementations, repeats=repeats, warmup=2)
    case = {"model": "lenet300", "examples": len(x), "batch": BATCH, "dtype": "float32",
            "threads": threads or "default"}
    records = []
    for dropout in (True, False):
        chosen = {name.removesuffix("-no-dropout"): stats for name, stats in timings.items()
                  if name.endswith("-no-dropout") != dropout}
        options = ({"dropout": DROPOUT, "input_dropout": INPUT_DROPOUT} if dropout
                   else {"dropout": 0.0, "input_dropout": 0.0})
        records += make_records("dropout_epoch", {**case, **options}, chosen)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="run both on this many threads (default: as configured)")
    args = parser.parse_args()
    records = run(repeats=args.repeats, use_torch=not args.no_torch, threads=args.threads)
    baseline = "torch" if any(r["implementation"] == "torch" for r in records) else "tinysparse"
    threads = f", {args.threads} thread(s)" if args.threads else ""
    text = (f"one training epoch of LeNet-300-100 on mnist-5k (4,000 digits, batch {BATCH}, "
            f"Adam{threads}) — {machine_description()}\n\n"
            + ratio_table(records, ["dropout", "input_dropout"], baseline=baseline))
    print_records(records, args.json, text)


if __name__ == "__main__":
    main()
