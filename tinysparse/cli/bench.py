"""``tinysparse bench``: a short speed check of the sparse kernels on this machine."""

from __future__ import annotations

import argparse

from tinysparse.cli.common import add_output_arguments, emit, sparsity


def add_parser(commands) -> None:
    parser = commands.add_parser("bench", help="a short speed check: sparse vs dense")
    parser.add_argument("--sparsity", type=sparsity, default=0.95)
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=lambda args: None)


def run(args: argparse.Namespace) -> int:
    from tinysparse.bench import run_bench as measure
    from tinysparse.benchmarking import machine_description, ratio_table

    result = measure(args.sparsity)
    records = result["records"]
    text = (
        f"tinysparse bench — {machine_description()}, compiled kernels: "
        f"{'yes' if result['compiled_kernels'] else 'no (NumPy reference)'}\n\n"
        + ratio_table([r for r in records if r["benchmark"] == "sparse_kernels"],
                      ["op", "shape", "sparsity"], baseline="numpy-dense")
        + "\n\n"
        + ratio_table([r for r in records if r["benchmark"] == "train_step"],
                      ["model", "batch", "sparsity"], baseline="dense")
        + "\n\nfull versions: python benchmarks/sparse_kernels.py, "
          "python benchmarks/train_step.py"
    )
    emit(args, {"command": "bench", **result}, text)
    return 0
