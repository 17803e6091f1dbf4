"""Second-order pruning speed: inverse Fisher, full OBS, layer-wise OBS.

Cases (each timed in this process; the inverse-Fisher variants interleaved):

* ``inverse_fisher`` — (GᵀG/P + λI)⁻¹ for n weights and P examples: rank-one Woodbury
  recursion (readable), blocked Woodbury (block 100; and all P rows in one block, the
  Woodbury identity), Cholesky of the formed matrix;
* ``full_obs`` — OBS of a 784-12-10 MLP (9,550 weights) to 90% sparsity, groups of ~1%;
* ``layerwise_obs`` — layer-wise OBS of all of LeNet-300-100 to 90% sparsity.

Usage::

    python benchmarks/obs.py            # table
    python benchmarks/obs.py --json     # records (see ../shared/DESIGN.md)
    python benchmarks/obs.py --quick    # smaller sizes, for a smoke test
"""

from __future__ import annotations

import argparse
import time

import tinysparse as ts  # first: configures BLAS/OpenMP threads before NumPy loads

# isort: split
import numpy as np

from tinysparse.benchmarking import (  # noqa: E402
    machine_description,
    make_records,
    print_records,
    time_interleaved,
)
from tinysparse.prune import hessian as hs  # noqa: E402
from tinysparse.prune import obs_layerwise_prune, obs_prune  # noqa: E402
from tinysparse.tables import format_table  # noqa: E402


def inverse_fisher_case(n: int, examples: int, repeats: int, rank_one: bool) -> list[dict]:
    rows = np.random.default_rng(0).standard_normal((examples, n))
    damping = 1e-3
    implementations = {
        "woodbury-blocked-100": lambda: hs.inverse_fisher(rows, examples, damping, block=100),
        "woodbury-one-block": lambda: hs.inverse_fisher(rows, examples, damping,
                                                        block=examples),
        "cholesky": lambda: hs.inverse_fisher_cholesky(rows, examples, damping),
    }
    if rank_one:
        implementations["woodbury-rank-one"] = lambda: hs.inverse_fisher_rank_one(
            rows, examples, damping)
    timings = time_interleaved(implementations, repeats=repeats, warmup=0)
    return make_records("obs", {"op": "inverse_fisher", "n": n, "examples": examples},
                        timings)


def once(function) -> dict[str, float]:
    started = time.perf_counter()
    function()
    seconds = time.perf_counter() - started
    return {"median_seconds": seconds, "min_seconds": seconds, "iqr_seconds": 0.0,
            "repeats": 1}


def full_obs_case(hidden: int, calibration: int) -> list[dict]:
    data = ts.load_dataset("mnist-5k")
    model = ts.nn.mlp([784, hidden, 10], seed=0)
    ts.fit(model, data, epochs=5, quiet=True)
    weights = model.num_parameters()
    result: dict = {}

    def run():
        result["report"] = obs_prune(model, 0.9, (data.x_train[:calibration],
                                                  data.y_train[:calibration]),
                                     group_size=None)

    timing = once(run)
    accuracy = ts.evaluate(model, *data.test)["accuracy"]
    return make_records("obs", {"op": "full_obs", "model": f"mlp-784-{hidden}-10",
                                "n": weights, "examples": calibration, "sparsity": 0.9,
                                "test_accuracy": accuracy}, {"tinysparse": timing})


def layerwise_case(calibration: int, group_size: int) -> list[dict]:
    data = ts.load_dataset("mnist-5k")
    model = ts.nn.lenet300(seed=0)
    ts.fit(model, data, epochs=5, quiet=True)
    timing = once(lambda: obs_layerwise_prune(model, 0.9, data, calibration=calibration,
                                              group_size=group_size))
    accuracy = ts.evaluate(model, *data.test)["accuracy"]
    return make_records("obs", {"op": "layerwise_obs", "model": "lenet300", "sparsity": 0.9,
                                "examples": calibration, "group_size": group_size,
                                "test_accuracy": accuracy}, {"tinysparse": timing})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args()
    n, examples = (2000, 200) if args.quick else (10_000, 1000)
    records = inverse_fisher_case(n, examples, repeats=1, rank_one=True)
    records += full_obs_case(hidden=2 if args.quick else 12, calibration=examples)
    records += layerwise_case(calibration=200 if args.quick else 1000, group_size=1)
    rows = [[r["op"], r.get("n", r.get("model")), r.get("examples"), r["implementation"],
             r["median_seconds"], r.get("test_accuracy")] for r in records]
    text = (f"second-order pruning — {machine_description()}\n\n"
            + format_table(rows, ["op", "n / model", "examples", "implementation", "seconds",
                                  "test accuracy"], precision=3))
    print_records(records, args.json, text)


if __name__ == "__main__":
    main()
