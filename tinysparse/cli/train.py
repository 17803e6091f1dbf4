"""``tinysparse train``: train a model and report its test accuracy."""

from __future__ import annotations

import argparse
from typing import Any

from tinysparse.cli.common import (
    UsageError,
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
    positive_int,
    save_or_keep,
    train,
    warnings_text,
)
from tinysparse.data import TRAINING_EXAMPLES, held_out_indices
from tinysparse.tables import format_table
from tinysparse.train import evaluate, record_validation


def add_parser(commands) -> None:
    parser = commands.add_parser("train", help="train a model and report its test accuracy")
    add_training_arguments(parser)
    add_dropout_arguments(parser)
    parser.add_argument("--validation", type=positive_int, default=None, metavar="N",
                        help="hold out N training digits, drawn with --seed, and validate on "
                             "them after each epoch; the saved model records which, and "
                             "tinysparse calibrate fits its temperature on them")
    add_save_argument(parser, "trained")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    check_model_arguments(args)
    check_dropout_arguments(args)
    available = TRAINING_EXAMPLES.get(args.dataset)
    if args.validation is not None and available is not None and args.validation >= available:
        raise UsageError(f"--validation: holding out {args.validation} of the {available:,} "
                         f"training digits of {args.dataset} would leave none to train on")
    check_save_destination(args)


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    model = model_from_args(args)
    training, validation = data.train, None
    if args.validation is not None:
        kept, held_out = held_out_indices(len(data.x_train), args.validation, args.seed)
        training = data.x_train[kept], data.y_train[kept]
        validation = data.x_train[held_out], data.y_train[held_out]
        record_validation(model, args.dataset, held_out)  # saved with the model
    history = train(model, training, args, desc=f"train {args.model}", validation=validation)
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
        **({"validation": args.validation,
            "validation_loss": history.val_loss[-1],
            "validation_accuracy": history.val_accuracy[-1]} if validation is not None else {}),
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
        + (f"\n\nvalidation accuracy {result['validation_accuracy']:.4f} on "
           f"{args.validation} held-out training digits (recorded in the saved model)"
           if validation is not None else "")
        + f"\n\ntest accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f})"
        + warnings_text(history.warnings)
        + (f"\nsaved to {result['saved_to']}" if args.save else "")
    )
    return finish(args, result, text)
