"""The ``tinysparse`` command: one module per subcommand, its parser beside its runner.

Every subcommand prints a human-readable table by default and exactly one JSON object
with ``--json`` (snake_case keys; accuracies are fractions in [0, 1]). Arguments are all
checked before any work starts: a wrong one gets a one-line error naming the option and
exit status 2. Errors while running (missing data, a diverging run) get a one-line error
and exit status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tinysparse import __version__
from tinysparse.cli import (
    attack,
    bench,
    calibrate,
    compress,
    course,
    decompress,
    demo,
    distill,
    intrinsic,
    lottery,
    prune,
    sparsify,
    train,
)
from tinysparse.cli.common import OneLineParser, UsageError
from tinysparse.data import DataError
from tinysparse.io import ModelFileError
from tinysparse.train import TrainingDiverged

#: the subcommands, in the order ``--help`` lists them
SUBCOMMANDS = (demo, train, prune, sparsify, lottery, distill, calibrate, attack, compress,
               decompress, intrinsic, course, bench)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="tinysparse",
        description="Learn and teach neural-network compression, from scratch in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"tinysparse {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tinysparse`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.check(args)
    except UsageError as error:
        parser.exit(2, f"tinysparse {args.command}: error: {error}\n")
    try:
        return args.run(args)
    except (ValueError, KeyError, DataError, ModelFileError, TrainingDiverged, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tinysparse {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tinysparse: interrupted", file=sys.stderr)
        return 130
