"""``tinysparse intrinsic``: d_int90 of a network (Li et al. 2018) — train it in random
d-dimensional subspaces θ = θ₀ + P v, a sweep of d then a bisection, and report the
smallest d that reaches 90% of the ordinarily trained network's test accuracy."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tinysparse.cli.common import (
    UsageError,
    add_output_arguments,
    add_training_arguments,
    check_model_arguments,
    finish,
    load_data,
    non_negative_int,
    positive_float,
    rate,
)
from tinysparse.cli.common import digit_model as build_digit_model
from tinysparse.intrinsic import THRESHOLD, find_intrinsic_dimension
from tinysparse.tables import format_table
from tinysparse.train import evaluate, fit

DEFAULT_DIMENSIONS = "100,200,400,800,1600"


def dimensions(text: str) -> list[int]:
    """``100,200,400`` -> [100, 200, 400] (each d >= 1)."""
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got "
                                         f"{text!r}")
    return values


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "intrinsic", help="find d_int90: the smallest random subspace a network trains in "
                          "to 90%% of its accuracy (Li et al. 2018)")
    add_training_arguments(parser, epochs=10)
    parser.add_argument("--dims", type=dimensions, default=dimensions(DEFAULT_DIMENSIONS),
                        metavar="D1,D2,...",
                        help=f"the subspace dimensions d of the sweep (default "
                             f"{DEFAULT_DIMENSIONS})")
    parser.add_argument("--bisections", type=non_negative_int, default=0, metavar="N",
                        help="after the sweep, halve the interval between the last d that "
                             "failed and the first that reached the target N times")
    parser.add_argument("--threshold", type=rate, default=THRESHOLD,
                        help="the fraction of the dense accuracy to reach (default 0.9)")
    parser.add_argument("--subspace-lr", type=positive_float, default=None, metavar="LR",
                        help="the learning rate of v (default: --lr)")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    check_model_arguments(args)
    D = model_of(args).num_parameters()
    if max(args.dims) > D:
        raise UsageError(f"--dims: {max(args.dims):,} exceeds D = {D:,}, the number of "
                         f"weights of {args.model}")


def model_of(args: argparse.Namespace):
    return build_digit_model(args.model, args.hidden, args.seed)


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    fit_options: dict[str, Any] = {"epochs": args.epochs, "batch_size": args.batch_size,
                                   "optimizer": args.optimizer, "quiet": True}

    def progress(run) -> None:
        if not (args.quiet or args.json):
            print(f"  d = {run.dimension:>6,}: test accuracy {run.test_accuracy:.4f} "
                  f"({run.seconds:.1f} s)", file=sys.stderr)

    dense, dense_seconds = None, None
    if args.subspace_lr is not None:  # the dense network at --lr, the subspaces at theirs
        started = time.perf_counter()
        model = model_of(args)
        fit(model, data, lr=args.lr, seed=args.seed, **fit_options)
        dense = evaluate(model, *data.test)["accuracy"]
        dense_seconds = time.perf_counter() - started
    found = find_intrinsic_dimension(
        lambda: model_of(args), data, args.dims, threshold=args.threshold,
        bisections=args.bisections, seed=args.seed, dense_test_accuracy=dense,
        on_run=progress, lr=args.subspace_lr or args.lr, **fit_options)
    if dense_seconds is not None:
        found.dense_seconds = dense_seconds
    result = {"command": "intrinsic", "model": args.model, "dataset": args.dataset,
              "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size,
              "optimizer": args.optimizer, "lr": args.lr,
              "subspace_lr": args.subspace_lr or args.lr, **found.to_dict()}
    rows = [[r.dimension, r.stage, r.test_accuracy, "yes" if r.reached else "no",
             f"{r.seconds:.1f}"] for r in found.runs]
    answer = (f"d_int{round(100 * args.threshold)} = {found.d_int:,}" if found.d_int else
              f"no d tried reached the target: try larger --dims (up to {found.num_weights:,})"
              " or more --epochs")
    text = (f"{args.model} on {args.dataset}: D = {found.num_weights:,} weights, seed "
            f"{args.seed}, {args.epochs} epochs per run\n"
            f"dense test accuracy {found.dense_test_accuracy:.4f}; target "
            f"{args.threshold:g} x that = {found.target_accuracy:.4f}\n\n"
            + format_table(rows, ["d", "stage", "test accuracy", "reached", "seconds"])
            + f"\n\n{answer}")
    return finish(args, result, text)
