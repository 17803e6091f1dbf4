"""One distillation epoch of a 2×800 student against one plain training epoch of it.

Compares, in one process and interleaved (see :mod:`tinysparse.benchmarking`), one epoch
over mnist-5k's 4,000 training digits of a 784-800-800-10 ReLU student (Hinton et al.'s
small MNIST net), batch 64, Adam (``fit``'s defaults):

* ``fit`` — ``ts.fit`` on the labels;
* ``distill-cached`` — ``ts.distill.distill`` with the LeNet-5 teacher's soft targets
  (T = 4, α = 0.9) computed beforehand, as they are after the first epoch of a run on a
  fixed transfer set: the epoch's extra work is the soft term (a softmax and a
  cross-entropy per batch);
* ``distill-first-epoch`` — the same, with the teacher labelling the 4,000 digits at the
  start of the epoch (what the first epoch of a run costs).

The teacher is an untrained LeNet-5: its speed does not depend on its weights. The target
(issue 16) is ``distill-cached`` at most 1.2× ``fit``. Each epoch shuffles its batches and
builds its optimiser, in each. ``--threads 1`` runs NumPy's BLAS on one thread
(threadpoolctl); on a 2-core machine that other processes keep busy, that is the
comparison to trust (see benchmarks/dropout_epoch.py).

Usage::

    python benchmarks/distill_epoch.py               # table
    python benchmarks/distill_epoch.py --threads 1   # one BLAS thread
    python benchmarks/distill_epoch.py --json        # records (see ../shared/DESIGN.md)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools

import tinysparse as ts  # first: configures BLAS/OpenMP threads before NumPy loads

# isort: split
from tinysparse.benchmarking import (  # noqa: E402
    machine_description,
    make_records,
    print_records,
    ratio_table,
    time_interleaved,
)

BATCH, LR = 64, 1e-3
SIZES = [784, 800, 800, 10]
TEMPERATURE, ALPHA = 4.0, 0.9


def epochs(x, y, seed: int = 0) -> tuple[dict, dict]:
    """One epoch of each kind, and the students they train: each call goes on training
    its own student, with a new batch order (the same sequence of orders for each)."""
    teacher = ts.nn.lenet5(seed=seed)
    targets = ts.distill.teacher_targets(teacher, x, TEMPERATURE)
    names = ("fit", "distill-cached", "distill-first-epoch")
    students = {name: ts.nn.mlp(SIZES, seed=seed) for name in names}
    calls = {name: itertools.count() for name in names}
    options = dict(epochs=1, batch_size=BATCH, lr=LR, quiet=True)
    kd = dict(temperature=TEMPERATURE, alpha=ALPHA)

    def plain():
        ts.fit(students["fit"], (x, y), seed=next(calls["fit"]), **options)

    def cached():
        ts.distill.distill(students["distill-cached"], teacher, (x, y), targets=targets,
                           seed=next(calls["distill-cached"]), **kd, **options)

    def first_epoch():
        ts.distill.distill(students["distill-first-epoch"], teacher, (x, y),
                           seed=next(calls["distill-first-epoch"]), **kd, **options)

    return {"fit": plain, "distill-cached": cached, "distill-first-epoch": first_epoch}, students


@contextlib.contextmanager
def threads_limited(threads: int | None):
    """NumPy's BLAS on ``threads`` threads inside the block (None: as it is)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        yield


def run(repeats: int = 9, seed: int = 0, threads: int | None = None) -> list[dict]:
    data = ts.load_dataset("mnist-5k")
    x, y = data.x_train, data.y_train
    implementations, _ = epochs(x, y, seed)
    with threads_limited(threads):
        timings = time_interleaved(implementations, repeats=repeats, warmup=1)
    case = {"model": "mlp-800-800", "teacher": "lenet5", "examples": len(x), "batch": BATCH,
            "temperature": TEMPERATURE, "alpha": ALPHA, "dtype": "float32",
            "threads": threads or "default"}
    return make_records("distill_epoch", case, timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None,
                        help="run NumPy's BLAS on this many threads (default: as configured)")
    args = parser.parse_args()
    records = run(repeats=args.repeats, threads=args.threads)
    threads = f", {args.threads} thread(s)" if args.threads else ""
    text = (f"one epoch of a 784-800-800-10 student on mnist-5k (4,000 digits, batch {BATCH}, "
            f"Adam{threads}), plain vs distilled from LeNet-5 (T = {TEMPERATURE:g}, "
            f"alpha = {ALPHA:g}) — {machine_description()}\n\n"
            + ratio_table(records, ["model"], baseline="fit"))
    print_records(records, args.json, text)


if __name__ == "__main__":
    main()
