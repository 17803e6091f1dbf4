"""What every subcommand shares: the parser that errs in one line, argument types that name
what they expected, the model/data/training options, and printing a table or JSON.

Choices come from the library's own tables (models, datasets, optimisers, pruning
methods, scopes, schedules, ...): the command line never keeps a second list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from tinysparse.calibration import predict_logits
from tinysparse.data import DIGIT_DATASETS, load_dataset
from tinysparse.data.storage import check_writable
from tinysparse.io import ModelFileError, load, model_path, save
from tinysparse.nn import MODELS, build_model
from tinysparse.optim import OPTIMIZERS
from tinysparse.train import TrainingWarning, fit

#: the hidden sizes of ``--model mlp`` when ``--hidden`` is not given (LeNet-300-100's)
DEFAULT_HIDDEN = (300, 100)


class UsageError(ValueError):
    """Arguments that each parse but do not go together (exit status 2, before any work)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump, no traceback)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------- argument types
def _number_type(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str):
    """An argparse type: ``convert`` the text, and refuse it unless ``accept`` — with
    "expected <expected>, got <text>" (argparse adds the option's name)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


number = _number_type(float, lambda v: True, "a number")  # the library checks its range
positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number_type(float, lambda v: v > 0 and v < float("inf"), "a positive number")
sparsity = _number_type(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
probability = _number_type(float, lambda v: 0 <= v < 1, "a probability in [0, 1)")
rate = _number_type(float, lambda v: 0 < v < 1, "a number in (0, 1)")


def integer_in(low: int, high: int):
    """An argparse type for an integer in [low, high]."""
    return _number_type(int, lambda v: low <= v <= high, f"an integer in [{low}, {high}]")


def layer_sizes(text: str) -> list[int]:
    """``300,100`` -> [300, 100]."""
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer sizes, got {text!r}")
    return sizes


def names_from(choices: Sequence[str], what: str):
    """An argparse type for a comma-separated list of names from ``choices``."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from "
                                             f"{', '.join(choices)}")
        return names

    parse.__name__ = f"comma-separated {what}"
    return parse


# ---------------------------------------------------------------- shared options
def add_model_arguments(parser: argparse.ArgumentParser, models: Sequence[str] = tuple(MODELS)
                        ) -> None:
    parser.add_argument("--model", default="lenet300", choices=sorted(models),
                        help="network to train (default: lenet300)")
    parser.add_argument("--hidden", type=layer_sizes, default=None,
                        help=f"hidden layer sizes of --model mlp, e.g. 300,100 (default "
                             f"{','.join(map(str, DEFAULT_HIDDEN))})")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="mnist-5k", choices=DIGIT_DATASETS,
                        help="mnist-5k ships with the package (offline); mnist downloads "
                             "the full 60k/10k set")


def add_training_arguments(parser: argparse.ArgumentParser, epochs: int = 20) -> None:
    """The options every command that trains a model shares."""
    add_model_arguments(parser)
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    add_optimizer_arguments(parser)
    add_seed_argument(parser)


def add_optimizer_arguments(parser: argparse.ArgumentParser) -> None:
    """``--lr``, ``--batch-size``, ``--optimizer`` (fit's defaults)."""
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS))


#: the dropout options: flag, the model factories' keyword, help
DROPOUT_OPTIONS = (
    ("--dropout", "dropout", "drop each hidden activation with probability P while training "
                             "(Srivastava et al.: 0.5)"),
    ("--input-dropout", "input_dropout", "drop each input pixel with probability P while "
                                         "training (Srivastava et al.: 0.2)"),
    ("--dropconnect", "dropconnect", "drop each weight of the hidden fully connected layers "
                                     "with probability P while training (Wan et al.: 0.5)"),
)


def add_dropout_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dropout``, ``--input-dropout``, ``--dropconnect`` (all off unless given)."""
    for flag, _, description in DROPOUT_OPTIONS:
        parser.add_argument(flag, type=probability, default=None, metavar="P",
                            help=f"{description}; P in [0, 1), default none")


def dropout_options(args: argparse.Namespace) -> dict[str, float]:
    """The dropout options given on the command line, by the factories' keywords."""
    given = vars(args)
    return {keyword: given[keyword] for _, keyword, _ in DROPOUT_OPTIONS
            if given.get(keyword) is not None}


def add_seed_argument(parser: argparse.ArgumentParser,
                      help: str = "seeds weights and batch order (same seed, same numbers)"
                      ) -> None:
    parser.add_argument("--seed", type=non_negative_int, default=0, help=help)


def add_model_file_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``MODEL``: a model file saved by tinysparse (``train --save``)."""
    parser.add_argument("model_file", metavar="MODEL",
                        help="a model saved by tinysparse (e.g. tinysparse train --save "
                             "MODEL.npz)")


def add_save_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--save", metavar="PATH", help=f"save the {what} model (.npz)")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


# ---------------------------------------------------------------- checks before any work
def check_model_arguments(args: argparse.Namespace) -> None:
    if args.hidden is not None and args.model != "mlp":
        raise UsageError(f"--hidden sets the layers of --model mlp; --model {args.model} "
                         f"has fixed layers")


def check_dropout_arguments(args: argparse.Namespace) -> None:
    """The dropout options fit the model (its factory accepts them), before any training."""
    options = dropout_options(args)
    if not options:
        return
    try:
        model_from_args(args)
    except ValueError as error:  # "<keyword>: <what is wrong>"
        keyword, _, message = str(error).partition(": ")
        flags = {keyword: flag for flag, keyword, _ in DROPOUT_OPTIONS}
        raise UsageError(f"{flags.get(keyword, '--model ' + args.model)}: "
                         f"{message or error}") from None


#: the shape of one input of the digit datasets, and their number of classes
DIGIT_SHAPE, DIGIT_CLASSES = (1, 28, 28), 10


def check_model_file(args: argparse.Namespace) -> None:
    """``MODEL``: a tinysparse model file of a network that takes 28x28 digits and gives 10
    outputs; loaded here, before any work, into ``args.loaded_model``."""
    try:
        model = load(args.model_file)
    except ModelFileError as error:  # names the file and what is wrong
        raise UsageError(f"MODEL: {error}") from None
    try:
        outputs = predict_logits(model, np.zeros((1, *DIGIT_SHAPE), dtype=model.dtype)).shape
    except ValueError as error:
        raise UsageError(f"MODEL: {args.model_file} does not take 28x28 digits ({error})") \
            from None
    if outputs != (1, DIGIT_CLASSES):
        raise UsageError(f"MODEL: {args.model_file} gives {outputs[1:]} outputs per digit, "
                         f"expected {DIGIT_CLASSES} (one per class)")
    args.loaded_model = model


def check_save_destination(args: argparse.Namespace) -> None:
    """``--save``: a file name that can be written, checked before any training."""
    if args.save is None:
        return
    try:
        args.save = str(check_writable(model_path(args.save)))
    except (OSError, ValueError) as error:  # an OSError's message without "[Errno n]"
        raise UsageError(f"--save: {getattr(error, 'strerror', None) or error}") from None


def check_output_file(path: str | None, option: str) -> str | None:
    """A file that an option (``--plot``) will write: checked writable before any work."""
    if path is None:
        return None
    try:
        if not path or Path(path).name in ("", ".", ".."):
            raise ValueError(f"expected a file name, got {path!r}")
        return str(check_writable(path))
    except (OSError, ValueError) as error:
        raise UsageError(f"{option}: {getattr(error, 'strerror', None) or error}") from None


def save_or_keep(model, path: str, metadata: dict[str, Any]) -> dict[str, str]:
    """Save the model to ``path``; if that fails after all (the disk filled up, the
    directory went away), keep it in a file in the temporary directory rather than lose
    the training: returns ``saved_to`` and, then, ``save_error`` naming ``path``."""
    try:
        return {"saved_to": str(save(model, path, metadata=metadata))}
    except OSError as error:
        kept = Path(tempfile.gettempdir()) / f"tinysparse-{os.getpid()}-{Path(path).name}"
        kept = save(model, kept, metadata=metadata)
        return {"saved_to": str(kept),
                "save_error": f"--save: could not write {path} "
                              f"({error.strerror or error}); the model was kept in {kept}"}


def finish(args: argparse.Namespace, result: dict[str, Any], text: str) -> int:
    """Print the result; a save that failed is an error (exit status 1) after it."""
    emit(args, result, text)
    if "save_error" in result:
        print(f"tinysparse {args.command}: error: {result['save_error']}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- the work
def model_from_args(args: argparse.Namespace):
    return digit_model(args.model, args.hidden, args.seed, **dropout_options(args))


def digit_model(name: str, hidden: Sequence[int] | None, seed: int, **options: Any):
    """A model of ``MODELS`` for 28x28 digits and 10 classes; ``hidden`` sizes the layers
    of an ``mlp`` (default :data:`DEFAULT_HIDDEN`)."""
    if name == "mlp":
        return build_model("mlp", sizes=[784, *(hidden or DEFAULT_HIDDEN), 10], seed=seed,
                           **options)
    return build_model(name, seed=seed, **options)


def load_data(name: str, quiet: bool):
    return load_dataset(name, **({"progress": not quiet} if name == "mnist" else {}))


def train(model, data, args: argparse.Namespace, desc: str, epochs: int | None = None,
          trainer: Callable[..., Any] | None = None, **options: Any):
    """Train ``model`` on ``data`` with the training options of ``args`` (``epochs``
    instead of ``args.epochs`` if given), by ``fit`` or by a ``trainer`` that takes fit's
    arguments (and ``options``) and returns its History. A training that ends worse than
    it began is not stopped: ``history.warnings`` says so, and the command prints it
    (:func:`warnings_text`), not Python's warning machinery."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingWarning)
        return (trainer or fit)(
            model, data, epochs=args.epochs if epochs is None else epochs,
            batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, seed=args.seed,
            quiet=args.quiet or args.json, desc=desc, **options)


def warnings_text(messages: Sequence[str]) -> str:
    return "".join(f"\nwarning: {message}" for message in messages)


def emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    """Print the JSON object or the human-readable text."""
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(text)
