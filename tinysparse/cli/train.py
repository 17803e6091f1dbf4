"""``tinysparse train``: train a model and report its test accuracy."""

from __future__ import annotations

import argparse
from typing import Any

from tinysparse.cli.common import (
    add_dropout_arguments,
    add_output_arguments,
    add_save_argument,
    add_training_arguments,
    check_dropout_arguments,
    check_model_arguments,
    check_save_destination,
    dropout_options,
    finish,
    load_data,
    model_from_args,
    save_or_keep,
    train,
    warnings_text,
)
from tinysparse.tables import format_table
from tinysparse.train import evaluate


def add_parser(commands) -> None:
    parser = commands.add_parser("train", help="train a model and report its test accuracy")
    add_training_arguments(parser)
    add_dropout_arguments(parser)
    add_save_argument(parser, "trained")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    check_model_arguments(args)
    check_dropout_arguments(args)
    check_save_destination(args)


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    model = model_from_args(args)
    history = train(model, data, args, desc=f"train {args.model}")
    test = evaluate(model, *data.test)
    result: dict[str, Any] = {
        "command": "train",
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        **dropout_options(args),  # only the options given
        "parameters": model.num_parameters(),
        "train_loss": history.train_loss[-1],
        "train_accuracy": history.train_accuracy[-1],
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "history": [{k: r[k] for k in ("epoch", "train_loss", "train_accuracy")}
                    for r in history.epochs],
    }
    if history.warnings:
        result["warnings"] = history.warnings
    if args.save:
        result.update(save_or_keep(model, args.save, {"test_accuracy": test["accuracy"],
                                                      "dataset": args.dataset}))
    rows = [[r["epoch"], r["train_loss"], r["train_accuracy"]] for r in history.epochs]
    regularised = "".join(f", {keyword.replace('_', ' ')} {p:g}"
                          for keyword, p in dropout_options(args).items())
    text = (
        f"{args.model} on {args.dataset}: {result['parameters']:,} parameters, "
        f"{args.optimizer} lr={args.lr}, batch {args.batch_size}, seed {args.seed}"
        f"{regularised}\n\n"
        + format_table(rows, ["epoch", "train loss", "train accuracy"])
        + f"\n\ntest accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f})"
        + warnings_text(history.warnings)
        + (f"\nsaved to {result['saved_to']}" if args.save else "")
    )
    return finish(args, result, text)
