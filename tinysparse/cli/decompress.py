"""``tinysparse decompress IN OUT``: a compressed model back into an ordinary model file."""

from __future__ import annotations

import argparse
from typing import Any

from tinysparse.cli.common import UsageError, add_output_arguments, finish
from tinysparse.compress import CompressedFileError, load_compressed
from tinysparse.data.storage import check_writable
from tinysparse.io import model_path, save
from tinysparse.metrics import sparsity_report


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "decompress", help="turn a compressed model (tinysparse compress) into a model "
                           "file (.npz) that tinysparse.load reads")
    parser.add_argument("input", metavar="IN", help="a compressed model file")
    parser.add_argument("output", metavar="OUT", help="the model file to write (.npz is "
                        "appended if missing)")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    """IN decodes (it is read whole: a damaged file is refused here), OUT can be written."""
    try:
        args.decoded_model = load_compressed(args.input)
    except CompressedFileError as error:
        raise UsageError(f"IN: {error}") from None
    try:
        args.output = str(check_writable(model_path(args.output)))
    except (OSError, ValueError) as error:
        raise UsageError(f"OUT: {getattr(error, 'strerror', None) or error}") from None


def run(args: argparse.Namespace) -> int:
    model = args.decoded_model
    saved_to = save(model, args.output, metadata={"decompressed_from": args.input})
    report = sparsity_report(model)
    result: dict[str, Any] = {"command": "decompress", "input": args.input,
                              "saved_to": str(saved_to), "weights": report.total["weights"],
                              "nonzero": report.total["nonzero"],
                              "sparsity": report.total["sparsity"]}
    text = (f"{args.input}: decoded\n\n{report.table()}\nsaved to {saved_to}")
    return finish(args, result, text)
