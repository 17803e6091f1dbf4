"""``tinysparse demo``: train LeNet-300-100, prune it three ways, time the sparse step."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tinysparse.cli.common import (
    add_output_arguments,
    add_seed_argument,
    emit,
    positive_int,
    sparsity,
)
from tinysparse.data import load_dataset
from tinysparse.metrics import sparsity_report
from tinysparse.nn import clone, lenet300
from tinysparse.prune import prune_and_retrain, prune_step
from tinysparse.tables import format_table
from tinysparse.train import evaluate, fit

#: the one-shot prunes the demo compares, with how it names them
ONE_SHOT = (("magnitude", "magnitude"), ("obd", "OBD (LeCun et al.)"),
            ("obs-layerwise", "layer-wise OBS (OBC)"))
LR = 1e-3


def add_parser(commands) -> None:
    parser = commands.add_parser("demo", help="train, prune (magnitude, OBD, OBS) and time "
                                              "LeNet-300-100 on the offline digits")
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument("--sparsity", type=sparsity, default=0.9)
    add_seed_argument(parser)
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=lambda args: None)


def run(args: argparse.Namespace) -> int:
    from tinysparse.bench import training_records

    started = time.perf_counter()
    quiet = args.quiet or args.json
    say = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr))
    data = load_dataset("mnist-5k")
    model = lenet300(seed=args.seed)
    fit(model, data, epochs=args.epochs, batch_size=64, optimizer="adam", lr=LR,
        seed=args.seed, quiet=quiet, desc="train lenet300")

    def row(step: str, net, seconds: float) -> dict[str, Any]:
        report = sparsity_report(net)
        return {"step": step, "test_accuracy": evaluate(net, *data.test)["accuracy"],
                "sparsity": report.total["sparsity"],
                "compression": report.total["compression"], "seconds": seconds}

    steps = [row("train dense LeNet-300-100", model, time.perf_counter() - started)]
    for method, label in ONE_SHOT:
        say(f"one-shot {args.sparsity:.0%} pruning by {label} ...")
        t0 = time.perf_counter()
        pruned = clone(model)
        prune_step(pruned, args.sparsity, method=method, scope="layer", data=data,
                   calibration=500, seed=args.seed)
        steps.append(row(f"one-shot {args.sparsity:.0%}, no retraining: {label}", pruned,
                         time.perf_counter() - t0))
    say("iterative magnitude pruning with retraining ...")
    t0 = time.perf_counter()
    final = clone(model)
    prune_and_retrain(final, data, args.sparsity, schedule="iterative", scope="global",
                      rounds=3, retrain_epochs=2, retrain_lr=LR / 3, seed=args.seed,
                      quiet=True)
    steps.append(row(f"iterative prune-retrain to {args.sparsity:.0%} (magnitude, global)",
                     final, time.perf_counter() - t0))
    say("timing a training step, dense vs sparse ...")
    speed = {r["implementation"]: r["median_seconds"] * 1e3
             for r in training_records(sparsity=0.95, repeats=20, seed=args.seed)}
    result = {
        "command": "demo", "model": "lenet300", "dataset": "mnist-5k", "seed": args.seed,
        "epochs": args.epochs, "test_accuracy": steps[-1]["test_accuracy"],
        "dense_test_accuracy": steps[0]["test_accuracy"], "steps": steps,
        "train_step_ms_at_95_percent_sparsity": speed,
        "sparsity_report": sparsity_report(final).to_dict(),
    }
    table = format_table(
        [[s["step"], s["test_accuracy"], f"{s['sparsity']:.1%}", f"{s['compression']:.1f}x",
          f"{s['seconds']:.1f}"] for s in steps],
        ["step", "test accuracy", "sparsity", "compression", "seconds"])
    text = (
        "tinysparse demo: LeNet-300-100 on mnist-5k (4,000 train / 1,000 test real MNIST "
        "digits)\n\n" + table
        + "\n\nthe pruned network, layer by layer:\n" + sparsity_report(final).table()
        + "\n\none training step (batch 128) at 95% sparsity: "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in speed.items())
        + f"\n\nfinished in {time.perf_counter() - started:.1f} s"
    )
    emit(args, result, text)
    return 0
