"""``tinysparse sparsify``: train a network with a method that learns sparsity
(``tinysparse.sparsify.METHODS``), and report it as ``prune`` does.

Each method's own options come from its row of the table, with the papers' defaults; an
option of another method is refused before any training.
"""

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
    save_or_keep,
    train,
)
from tinysparse.metrics import sparsity_report
from tinysparse.sparsify import METHODS, Option
from tinysparse.tables import format_table
from tinysparse.train import evaluate


def _options() -> dict[str, tuple[Option, list[str]]]:
    """Every method option by its flag, with the methods that take it."""
    options: dict[str, tuple[Option, list[str]]] = {}
    for method in METHODS.values():
        for option in method.options:
            options.setdefault(option.command_line_flag, (option, []))[1].append(method.name)
    return options


def _defaults(flag: str, methods: list[str]) -> str:
    """Which methods take the flag, each with its own default."""
    return "; ".join(f"{name}: default {option.default}" for name in methods
                     for option in METHODS[name].options if option.command_line_flag == flag)


def _dest(flag: str) -> str:
    return "option_" + flag[2:].replace("-", "_")


def _argument_type(option: Option):
    """The option's converter, with its ValueError turned into argparse's one-line error."""

    def parse(text: str):
        try:
            return option.type(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = option.name
    return parse


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "sparsify", help="train with a method that learns sparsity (variational dropout, "
                         "L0, targeted dropout, Ising-dropout); report it like prune")
    add_training_arguments(parser)
    parser.add_argument("--method", required=True, choices=list(METHODS),
                        help="; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()))
    for flag, (option, methods) in _options().items():
        parser.add_argument(flag, dest=_dest(flag), type=_argument_type(option), default=None,
                            choices=option.choices,
                            help=f"{option.help} ({_defaults(flag, methods)})")
    parser.add_argument("--baseline", action="store_true",
                        help="also train the same network plainly for the same epochs")
    add_save_argument(parser, "sparsified")
    add_output_arguments(parser)
    # None: the method's own training settings (its row's ``training``), else train's
    parser.set_defaults(run=run, check=check, epochs=None, batch_size=None, lr=None)


TRAINING_DEFAULTS = {"epochs": 20, "batch_size": 64, "lr": 1e-3}


def check(args: argparse.Namespace) -> None:
    """Options of another method, the model options and the destination, before training;
    fills in the training settings the method needs where none were given."""
    for name, default in TRAINING_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, METHODS[args.method].training.get(name, default))
    check_model_arguments(args)
    own = {option.command_line_flag for option in METHODS[args.method].options}
    for flag, (_, methods) in _options().items():
        if getattr(args, _dest(flag)) is not None and flag not in own:
            raise UsageError(f"{flag} is an option of {', '.join(methods)}, not of "
                             f"--method {args.method}")
    check_save_destination(args)


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    method = METHODS[args.method]
    given = {option.name: getattr(args, _dest(option.command_line_flag))
             for option in method.options}
    options = {name: option.default if given[name] is None else given[name]
               for name, option in zip(given, method.options)}
    result: dict[str, Any] = {"command": "sparsify", "model": args.model,
                              "dataset": args.dataset, "seed": args.seed,
                              "method": args.method, "epochs": args.epochs,
                              **{name.rstrip("_"): value for name, value in options.items()}}
    if args.baseline:
        plain = model_from_args(args)
        train(plain, data, args, desc=f"baseline {args.model}")
        result["baseline_test_accuracy"] = evaluate(plain, *data.test)["accuracy"]
    model = model_from_args(args)
    outcome = method.run(model, data, epochs=args.epochs, lr=args.lr,
                         batch_size=args.batch_size, seed=args.seed,
                         quiet=args.quiet or args.json, **options)
    report = sparsity_report(model)
    result.update({"test_accuracy": outcome.test_accuracy, "sparsity": outcome.sparsity,
                   "compression": outcome.compression, "layers": outcome.layers})
    for key in ("unpruned_test_accuracy", "pruned_test_accuracy"):
        if getattr(outcome, key) is not None:
            result[key] = getattr(outcome, key)
    result.update(outcome.extra.get("json", {}))
    if args.save:
        result.update(save_or_keep(model, args.save, {"test_accuracy": outcome.test_accuracy,
                                                      "sparsity": outcome.sparsity,
                                                      "method": args.method}))
    rows = [[key.replace("_", " "), result[key]] for key in
            ("baseline_test_accuracy", "unpruned_test_accuracy", "pruned_test_accuracy",
             "test_accuracy") if key in result]
    text = (f"{args.model} on {args.dataset}: {args.method}, {args.epochs} epochs, seed "
            f"{args.seed}\n\n" + format_table(rows, ["", "accuracy"]) + "\n\n" + report.table()
            + f"\n\ncompression {outcome.compression:.1f}x"
            + (f"\nsaved to {result['saved_to']}" if args.save else ""))
    return finish(args, result, text)
