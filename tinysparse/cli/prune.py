"""``tinysparse prune``: train, prune by any method of the library's table, retrain."""

from __future__ import annotations

import argparse
from typing import Any

from tinysparse.cli.common import (
    UsageError,
    add_output_arguments,
    add_save_argument,
    add_training_arguments,
    check_model_arguments,
    check_save_destination,
    finish,
    load_data,
    model_from_args,
    non_negative_int,
    positive_float,
    positive_int,
    save_or_keep,
    sparsity,
    train,
)
from tinysparse.metrics import sparsity_report
from tinysparse.prune import (
    METHODS,
    SCHEDULES,
    SCOPES,
    check_method_options,
    get_method,
    prunable_parameters,
    prune_and_retrain,
)
from tinysparse.tables import format_table
from tinysparse.train import evaluate

DEFAULT_ROUNDS = 5
DEFAULT_CALIBRATION = 1000
HESSIANS = tuple(dict.fromkeys(h for m in METHODS.values() for h in m.hessians))
#: the flag of each option check_method_options names
FLAGS = {"scope": "--scope", "schedule": "--schedule", "hessian": "--hessian",
         "damping": "--damping", "overrides": "--output-sparsity"}


def _method_help() -> str:
    return "how weights are scored: " + "; ".join(
        f"{name}: {method.summary}" for name, method in METHODS.items())


def _hessian_help() -> str:
    return "the curvature a second-order method uses: " + "; ".join(
        f"{name}: {', '.join(method.hessians)} (default {method.hessians[0]})"
        for name, method in METHODS.items() if method.hessians)


def _damping_help() -> str:
    return "relative damping of the Hessian: " + ", ".join(
        f"{name} (default {method.default_damping:g})" for name, method in METHODS.items()
        if method.default_damping is not None)


def add_parser(commands) -> None:
    parser = commands.add_parser("prune", help="train, prune and retrain; report accuracy and "
                                               "sparsity")
    add_training_arguments(parser)
    parser.add_argument("--method", default="magnitude", choices=list(METHODS),
                        help=_method_help())
    parser.add_argument("--scope", default="global", choices=SCOPES,
                        help="one sparsity per layer, or one threshold across layers")
    parser.add_argument("--sparsity", type=sparsity, default=0.9,
                        help="fraction of weights to remove, in [0, 1)")
    parser.add_argument("--schedule", default="iterative", choices=SCHEDULES)
    parser.add_argument("--rounds", type=positive_int, default=None,
                        help=f"prune-retrain rounds of the iterative schedule (default "
                             f"{DEFAULT_ROUNDS})")
    parser.add_argument("--retrain-epochs", type=non_negative_int, default=5,
                        help="epochs of retraining per round (gradual: in total)")
    parser.add_argument("--retrain-lr", type=positive_float, default=None,
                        help="learning rate for retraining (default: lr / 3)")
    parser.add_argument("--output-sparsity", type=sparsity, default=None,
                        help="the output layer's own target sparsity (default: as the others)")
    parser.add_argument("--calibration", type=positive_int, default=None,
                        help=f"training examples for the Hessian of "
                             f"{', '.join(n for n, m in METHODS.items() if m.needs_data)} "
                             f"(default {DEFAULT_CALIBRATION})")
    parser.add_argument("--damping", type=positive_float, default=None, help=_damping_help())
    parser.add_argument("--hessian", default=None, choices=HESSIANS, help=_hessian_help())
    add_save_argument(parser, "pruned")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def _overrides(args: argparse.Namespace, model) -> dict[str, float]:
    if args.output_sparsity is None:
        return {}
    return {prunable_parameters(model)[-1]: args.output_sparsity}


def check(args: argparse.Namespace) -> None:
    """Everything the arguments alone decide, before any training."""
    check_model_arguments(args)
    model = model_from_args(args)
    try:
        check_method_options(args.method, args.scope, args.schedule, hessian=args.hessian,
                             damping=args.damping, overrides=_overrides(args, model),
                             model=model)
    except ValueError as error:  # "<option>: <what is wrong>", or the model does not fit
        option, _, message = str(error).partition(": ")
        if option in FLAGS:
            raise UsageError(f"{FLAGS[option]}: {message}") from None
        raise UsageError(f"--method {args.method}: {error}") from None
    if args.rounds is not None and args.schedule != "iterative":
        raise UsageError(f"--rounds counts the rounds of --schedule iterative, not "
                         f"{args.schedule}")
    if args.calibration is not None and not get_method(args.method).needs_data:
        raise UsageError(f"--calibration feeds a Hessian; --method {args.method} needs none")
    if args.schedule == "gradual" and args.retrain_epochs < 1:
        raise UsageError("--retrain-epochs: the gradual schedule prunes while training; give "
                         "it at least one epoch")
    check_save_destination(args)


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    model = model_from_args(args)
    train(model, data, args, desc=f"train {args.model}")
    dense = evaluate(model, *data.test)["accuracy"]
    method = get_method(args.method)
    rounds = DEFAULT_ROUNDS if args.rounds is None else args.rounds
    calibration = DEFAULT_CALIBRATION if args.calibration is None else args.calibration
    method_options = ({"calibration": calibration, "damping": args.damping,
                       "hessian": args.hessian} if method.needs_data else {})
    run_ = prune_and_retrain(
        model, data, args.sparsity, schedule=args.schedule, method=args.method,
        scope=args.scope, rounds=rounds, retrain_epochs=args.retrain_epochs,
        retrain_lr=args.retrain_lr or args.lr / 3, batch_size=args.batch_size,
        optimizer=args.optimizer, overrides=_overrides(args, model), seed=args.seed,
        quiet=args.quiet or args.json, dense_test_accuracy=dense, **method_options,
    )
    report = sparsity_report(model)
    result: dict[str, Any] = {
        "command": "prune", "model": args.model, "dataset": args.dataset, "seed": args.seed,
        "method": args.method, "scope": args.scope, "schedule": args.schedule,
        "calibration": calibration if method.needs_data else None,
        "target_sparsity": args.sparsity, "rounds": rounds if args.schedule == "iterative"
        else (1 if args.schedule == "oneshot" else None),
        "retrain_epochs": args.retrain_epochs,
        "dense_test_accuracy": run_.dense_test_accuracy,
        "pruned_test_accuracy": run_.pruned_test_accuracy,
        "test_accuracy": run_.test_accuracy,
        "sparsity": run_.sparsity,
        "layers": run_.layers,
        "compression": report.total["compression"],
        "history": run_.rounds,
        **run_.extra,
    }
    if args.save:
        result.update(save_or_keep(model, args.save, {"test_accuracy": run_.test_accuracy,
                                                      "sparsity": run_.sparsity}))
    text = (
        f"{args.model} on {args.dataset}: {args.method} pruning ({args.scope}, "
        f"{args.schedule}) to {args.sparsity:.0%} sparsity, seed {args.seed}\n\n"
        + format_table([
            ["dense", run_.dense_test_accuracy],
            ["right after pruning", run_.pruned_test_accuracy],
            ["after retraining", run_.test_accuracy],
        ], ["model", "test accuracy"])
        + "\n\n" + report.table()
        + (f"\nsaved to {result['saved_to']}" if args.save else "")
    )
    return finish(args, result, text)
