"""``tinysparse lottery``: lottery tickets (Frankle & Carbin) against their controls."""

from __future__ import annotations

import argparse
import sys
import time

from tinysparse.cli.common import (
    add_data_arguments,
    add_model_arguments,
    add_output_arguments,
    add_seed_argument,
    check_model_arguments,
    emit,
    load_data,
    names_from,
    non_negative_int,
    positive_float,
    positive_int,
    rate,
)
from tinysparse.prune import CONTROLS, SUPERMASK_CRITERIA, lottery_ticket_experiment, summarize
from tinysparse.tables import format_table


def add_parser(commands) -> None:
    parser = commands.add_parser("lottery", help="lottery tickets: rewinding vs controls")
    add_model_arguments(parser)
    add_data_arguments(parser)
    parser.add_argument("--rounds", type=positive_int, default=14)
    parser.add_argument("--rate", type=rate, default=0.2,
                        help="fraction of the remaining weights pruned per round")
    parser.add_argument("--output-rate", type=rate, default=0.1,
                        help="the same for the output layer")
    parser.add_argument("--seeds", type=positive_int, default=1,
                        help="repeat with seeds seed, seed+1, ...")
    parser.add_argument("--epochs", type=positive_int, default=10, help="per round")
    parser.add_argument("--lr", type=positive_float, default=1.2e-3)
    parser.add_argument("--batch-size", type=positive_int, default=60)
    parser.add_argument("--eval-every", type=positive_int, default=50,
                        help="validate every N iterations (early-stopping iteration)")
    parser.add_argument("--rewind-iteration", type=non_negative_int, default=0,
                        help="0 rewinds to the initial weights; k to those after k steps")
    parser.add_argument("--controls", type=names_from(CONTROLS, "controls"),
                        default=list(CONTROLS),
                        help=f"comma-separated, from: {', '.join(CONTROLS)}")
    parser.add_argument("--supermasks", type=names_from(SUPERMASK_CRITERIA, "criteria"),
                        default=list(SUPERMASK_CRITERIA),
                        help=f"supermask criteria, comma-separated, from: "
                             f"{', '.join(SUPERMASK_CRITERIA)}")
    add_seed_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check_model_arguments)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    data = load_data(args.dataset, args.quiet)
    quiet = args.quiet or args.json
    model_options = ({"sizes": [784, *args.hidden, 10]} if args.model == "mlp" and args.hidden
                     else {})
    runs = [
        lottery_ticket_experiment(
            data, model_name=args.model, model_options=model_options, rounds=args.rounds,
            rate=args.rate, output_rate=args.output_rate, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, seed=args.seed + k, controls=args.controls,
            supermasks=args.supermasks, eval_every=args.eval_every,
            rewind_iteration=args.rewind_iteration,
            progress=None if quiet else (lambda message: print(message, file=sys.stderr)),
        )
        for k in range(args.seeds)
    ]
    summary = summarize(runs)
    result = {
        "command": "lottery", "model": args.model, "dataset": args.dataset,
        "seed": args.seed, "seeds": args.seeds, "rounds": args.rounds, "rate": args.rate,
        "output_rate": args.output_rate, "epochs": args.epochs, "lr": args.lr,
        "batch_size": args.batch_size, "rewind_iteration": args.rewind_iteration,
        "per_round": summary,
    }
    variants = ["ticket", *args.controls, *(f"supermask_{c}" for c in args.supermasks)]
    rows = []
    for row in summary:
        cells = [row["round"], f"{row['remaining']:.1%}"]
        for variant in variants:
            stats = row.get(variant)
            if stats is None:
                cells.append("")
                continue
            cell = f"{stats['test_accuracy_mean']:.4f}±{stats['test_accuracy_std']:.4f}"
            if "early_stop_iteration_mean" in stats:
                cell += f" @{stats['early_stop_iteration_mean']:.0f}"
            cells.append(cell)
        rows.append(cells)
    text = (
        f"lottery tickets: {args.model} on {args.dataset}, {args.seeds} seed(s), "
        f"{args.rate:.0%} per round (output {args.output_rate:.0%}), {args.epochs} epochs per "
        f"round\ntest accuracy at the early-stopping iteration, mean±std (@ iteration)\n\n"
        + format_table(rows, ["round", "remaining", *variants])
        + f"\n\nfinished in {time.perf_counter() - started:.0f} s"
    )
    emit(args, result, text)
    return 0
