"""A small harness for honest speed comparisons.

Rules the benchmarks in ``benchmarks/`` follow:

* every implementation of a case runs in the same process, **interleaved** (A, B, C, A,
  B, C, ...), so a noisy neighbour or a CPU frequency change hits all of them alike;
  with ``block > 1`` each turn runs ``block`` calls in a row (A×b, B×b, ...), so that the
  cost of waking a library's idle thread pool after another library ran is not charged
  to every single call;
* the statistic is the **median** of many repetitions, after warm-up runs (JIT compile,
  caches);
* results are **records** (one per case and implementation) with ``benchmark``,
  ``implementation``, ``median_seconds`` and the case's parameters; the printed tables show
  ratios against a named baseline.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from tinysparse.tables import format_table


def torch_available() -> bool:
    """Whether PyTorch is installed (the benchmarks compare against it when it is); found
    without importing it, since tinysparse never imports torch."""
    return importlib.util.find_spec("torch") is not None


def time_interleaved(
    implementations: dict[str, Callable[[], Any]],
    repeats: int = 30,
    warmup: int = 3,
    min_seconds: float = 0.0,
    block: int = 1,
) -> dict[str, dict[str, float]]:
    """Time each callable ``repeats`` times, interleaved; return median/min/IQR per name.

    With ``min_seconds`` the rounds continue past ``repeats`` until that much time has
    been spent (handy for very fast cases). With ``block`` each turn makes that many
    timed calls in a row.
    """
    for _ in range(warmup):
        for fn in implementations.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in implementations}
    started = time.perf_counter()
    rounds = 0
    while rounds < repeats or time.perf_counter() - started < min_seconds:
        for name, fn in implementations.items():
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
        rounds += block
        if rounds >= 100 * max(repeats, 1):
            break
    summary = {}
    for name, values in samples.items():
        quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        summary[name] = {
            "median_seconds": statistics.median(values),
            "min_seconds": min(values),
            "iqr_seconds": quartiles[2] - quartiles[0],
            "repeats": len(values),
        }
    return summary


def make_records(
    benchmark: str, case: dict[str, Any], timings: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """One record per implementation: the case's parameters plus its timings."""
    return [
        {"benchmark": benchmark, "implementation": name, **case, **stats}
        for name, stats in timings.items()
    ]


def ratio_table(
    records: Sequence[dict[str, Any]], case_keys: Sequence[str], baseline: str
) -> str:
    """A table with one row per record: case parameters, median in ms, ratio to baseline."""
    baselines = {
        tuple(r.get(k) for k in case_keys): r["median_seconds"]
        for r in records if r["implementation"] == baseline
    }
    rows = []
    for r in records:
        reference = baselines.get(tuple(r.get(k) for k in case_keys))
        ratio = r["median_seconds"] / reference if reference else None
        rows.append([*(r.get(k) for k in case_keys), r["implementation"],
                     r["median_seconds"] * 1e3, ratio])
    return format_table(rows, [*case_keys, "implementation", "median ms",
                               f"x {baseline}"], precision=3)


def machine_description() -> str:
    """One line on where the numbers came from: CPU model, cores, Python, NumPy."""
    import os

    import numpy

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"NumPy {numpy.__version__}")


def print_records(records: list[dict[str, Any]], as_json: bool, text: str) -> None:
    """``--json``: the records as a JSON list; otherwise the text table."""
    if as_json:
        print(json.dumps(records, indent=2))
    else:
        print(text)
