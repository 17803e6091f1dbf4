"""``tinysparse attack``: the error and confidence of a saved model on adversarial test
digits, at each ε of a sweep: FGSM (Goodfellow et al. 2015) with ``--steps 1``, K steps of
projected gradient (Kurakin et al. 2017; Madry et al. 2018) with ``--steps K``."""

from __future__ import annotations

import argparse
from typing import Any

from tinysparse.calibration import STEP_FACTOR, adversarial_sweep
from tinysparse.cli.common import (
    UsageError,
    add_data_arguments,
    add_model_file_argument,
    add_output_arguments,
    add_seed_argument,
    check_model_file,
    emit,
    load_data,
    positive_int,
)
from tinysparse.tables import format_table

DEFAULT_EPSILONS = (0.05, 0.1, 0.25)


def epsilons(text: str) -> list[float]:
    """``0.05,0.1,0.25`` -> [0.05, 0.1, 0.25]; each ε in [0, 1] (pixels lie in [0, 1])."""
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") \
            from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one ε, got {text!r}")
    bad = [v for v in values if not 0 <= v <= 1]
    if bad:
        raise argparse.ArgumentTypeError(f"each ε must lie in [0, 1] (pixels lie in [0, 1]), "
                                         f"got {bad[0]:g}")
    return values


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "attack", help="adversarial test digits (FGSM, or K projected-gradient steps): error "
                       "and mean confidence at each ε")
    add_model_file_argument(parser)
    add_data_arguments(parser)
    parser.add_argument("--eps", type=epsilons, default=list(DEFAULT_EPSILONS),
                        metavar="E1,E2,...",
                        help="the largest change of any pixel, one attack per value "
                             f"(default {','.join(map(str, DEFAULT_EPSILONS))})")
    parser.add_argument("--steps", type=positive_int, default=1, metavar="K",
                        help="1: FGSM (default); K > 1: K projected sign-gradient steps of "
                             "size --step-size")
    parser.add_argument("--step-factor", type=float, default=None, metavar="C",
                        help=f"with --steps K > 1, each step moves every pixel by "
                             f"α = C ε / K (default C = {STEP_FACTOR:g})")
    parser.add_argument("--random-start", action="store_true",
                        help="start each attack at a random point of the ε-ball (PGD, Madry "
                             "et al.); --seed seeds it")
    add_seed_argument(parser, help="seeds the random start (same seed, same numbers)")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    if args.step_factor is not None:
        if args.steps == 1:
            raise UsageError("--step-factor sets the steps of --steps K > 1; --steps 1 is "
                             "FGSM, one step of size ε")
        if not 0 < args.step_factor < float("inf"):
            raise UsageError(f"--step-factor: expected a positive number, got "
                             f"{args.step_factor:g}")
    if args.random_start and args.steps == 1:
        raise UsageError("--random-start needs --steps K > 1 (FGSM starts at the digit)")
    check_model_file(args)


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    x, y = data.test
    factor = STEP_FACTOR if args.step_factor is None else args.step_factor
    attacks = adversarial_sweep(args.loaded_model, x, y, args.eps, steps=args.steps,
                                step_factor=factor, random_start=args.random_start,
                                seed=args.seed)
    iterative = args.steps > 1
    result: dict[str, Any] = {
        "command": "attack", "model": args.model_file, "dataset": args.dataset,
        "seed": args.seed, "method": "iterative" if iterative else "fgsm",
        "steps": args.steps, "step_factor": factor if iterative else None,
        "random_start": args.random_start, "examples": len(y), "attacks": attacks,
    }
    described = (f"{args.steps} projected sign-gradient steps of {factor:g} ε / {args.steps}"
                 + (", random start" if args.random_start else "")) if iterative else "FGSM"
    text = (f"{args.model_file} on the {len(y):,} test digits of {args.dataset}: {described}"
            f"\n\n"
            + format_table([[a["epsilon"], a["error"], a["mean_confidence"],
                             a["mean_confidence_when_wrong"]] for a in attacks],
                           ["epsilon", "error", "mean confidence", "confidence when wrong"]))
    emit(args, result, text)
    return 0
