"""The ``tinysparse`` command: ``demo``, ``train`` (more subcommands as features land).

Every subcommand prints a human-readable table by default and exactly one JSON object
with ``--json`` (snake_case keys; accuracies are fractions in [0, 1]). Wrong arguments
get a one-line error and exit status 2; errors while running (missing data, a diverging
run) a one-line error and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import tinysparse as ts
from tinysparse.data import DataError
from tinysparse.io import ModelFileError
from tinysparse.nn import MODELS
from tinysparse.optim import OPTIMIZERS
from tinysparse.tables import format_table
from tinysparse.train import TrainingDiverged

IMAGE_DATASETS = ("mnist", "mnist-5k")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump, no traceback)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _sparsity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _controls(text: str) -> list[str]:
    from tinysparse.prune import CONTROLS

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTROLS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown control(s) {unknown}; choose from "
                                         f"{', '.join(CONTROLS)}")
    return names


def pruning_methods() -> list[str]:
    from tinysparse.prune import METHODS

    return list(METHODS)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer sizes, got {text!r}")
    return sizes


def add_training_arguments(parser: argparse.ArgumentParser, epochs: int = 20) -> None:
    """The options every command that trains a model shares."""
    parser.add_argument("--model", default="lenet300", choices=sorted(MODELS),
                        help="network to train (default: lenet300)")
    parser.add_argument("--hidden", type=_sizes, default=[300, 100],
                        help="hidden layer sizes for --model mlp, e.g. 300,100")
    parser.add_argument("--dataset", default="mnist-5k", choices=IMAGE_DATASETS,
                        help="mnist-5k ships with the package (offline); mnist downloads "
                             "the full 60k/10k set")
    parser.add_argument("--epochs", type=_positive_int, default=epochs)
    parser.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate")
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    parser.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS))
    parser.add_argument("--seed", type=int, default=0, help="seeds weights and batch order")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_model_from_args(args: argparse.Namespace) -> ts.nn.Sequential:
    if args.model == "mlp":
        return ts.nn.mlp([784, *args.hidden, 10], seed=args.seed)
    return ts.build_model(args.model, seed=args.seed)


def train_from_args(args: argparse.Namespace, model=None, data=None) -> tuple[Any, Any, Any]:
    """Build (or take) the model and data, train, return (model, data, history)."""
    data = data or ts.load_dataset(args.dataset, **(
        {"progress": not args.quiet} if args.dataset == "mnist" else {}))
    model = model or build_model_from_args(args)
    history = ts.fit(
        model, data, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, lr=args.lr, seed=args.seed, quiet=args.quiet or args.json,
        desc=f"train {args.model}",
    )
    return model, data, history


def emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    """Print the JSON object or the human-readable text."""
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(text)


# ---------------------------------------------------------------- train
def run_train(args: argparse.Namespace) -> int:
    model, data, history = train_from_args(args)
    test = ts.evaluate(model, *data.test)
    result: dict[str, Any] = {
        "command": "train",
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "parameters": model.num_parameters(),
        "train_loss": history.train_loss[-1],
        "train_accuracy": history.train_accuracy[-1],
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "history": [{k: r[k] for k in ("epoch", "train_loss", "train_accuracy")}
                    for r in history.epochs],
    }
    if args.save:
        path = ts.save(model, args.save, metadata={"test_accuracy": test["accuracy"],
                                                   "dataset": args.dataset})
        result["saved_to"] = str(path)
    rows = [[r["epoch"], r["train_loss"], r["train_accuracy"]] for r in history.epochs]
    text = (
        f"{args.model} on {args.dataset}: {result['parameters']:,} parameters, "
        f"{args.optimizer} lr={args.lr}, batch {args.batch_size}, seed {args.seed}\n\n"
        + format_table(rows, ["epoch", "train loss", "train accuracy"])
        + f"\n\ntest accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f})"
        + (f"\nsaved to {result['saved_to']}" if args.save else "")
    )
    emit(args, result, text)
    return 0


# ---------------------------------------------------------------- demo
def run_demo(args: argparse.Namespace) -> int:
    from tinysparse.bench import training_records
    from tinysparse.metrics import sparsity_report
    from tinysparse.prune import clone, prune_and_retrain, prune_step

    started = time.perf_counter()
    args.model, args.hidden, args.dataset = "lenet300", [300, 100], "mnist-5k"
    args.batch_size, args.optimizer, args.lr = 64, "adam", 1e-3
    model, data, _ = train_from_args(args)
    say = (lambda m: None) if (args.quiet or args.json) else (
        lambda m: print(m, file=sys.stderr))

    def row(step: str, net, seconds: float) -> dict[str, Any]:
        report = sparsity_report(net)
        return {"step": step, "test_accuracy": ts.evaluate(net, *data.test)["accuracy"],
                "sparsity": report.total["sparsity"],
                "compression": report.total["compression"], "seconds": seconds}

    steps = [row("train dense LeNet-300-100", model, time.perf_counter() - started)]
    for method, label in (("magnitude", "magnitude"), ("obd", "OBD (LeCun et al.)"),
                          ("obs-layerwise", "layer-wise OBS (OBC)")):
        say(f"one-shot 90% pruning by {label} ...")
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
                      rounds=3, retrain_epochs=2, retrain_lr=args.lr / 3, seed=args.seed,
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


# ---------------------------------------------------------------- bench
def run_bench(args: argparse.Namespace) -> int:
    from tinysparse.bench import run_bench as measure
    from tinysparse.benchmarking import machine_description, ratio_table

    result = measure(args.sparsity)
    records = result["records"]
    text = (
        f"tinysparse bench — {machine_description()}, compiled kernels: "
        f"{'yes' if result['compiled_kernels'] else 'no (NumPy reference)'}\n\n"
        + ratio_table([r for r in records if r["benchmark"] == "sparse_kernels"],
                      ["op", "shape", "sparsity"], baseline="numpy-dense")
        + "\n\n"
        + ratio_table([r for r in records if r["benchmark"] == "train_step"],
                      ["model", "batch", "sparsity"], baseline="dense")
        + "\n\nfull versions: python benchmarks/sparse_kernels.py, "
          "python benchmarks/train_step.py"
    )
    emit(args, {"command": "bench", **result}, text)
    return 0


# ---------------------------------------------------------------- prune
def run_prune(args: argparse.Namespace) -> int:
    from tinysparse.metrics import sparsity_report
    from tinysparse.prune import prunable_parameters, prune_and_retrain

    model, data, _ = train_from_args(args)
    dense = ts.evaluate(model, *data.test)["accuracy"]
    overrides = {}
    if args.output_rate is not None:
        overrides[prunable_parameters(model)[-1]] = args.output_rate * args.sparsity
    score_options = method_options(args, data)
    run = prune_and_retrain(
        model, data, args.sparsity, schedule=args.schedule, method=args.method,
        scope=args.scope, rounds=args.rounds, retrain_epochs=args.retrain_epochs,
        retrain_lr=args.retrain_lr or args.lr / 3, batch_size=args.batch_size,
        optimizer=args.optimizer, overrides=overrides, seed=args.seed,
        quiet=args.quiet or args.json, dense_test_accuracy=dense, **score_options,
    )
    report = sparsity_report(model)
    result: dict[str, Any] = {
        "command": "prune", "model": args.model, "dataset": args.dataset, "seed": args.seed,
        "method": args.method, "scope": args.scope, "schedule": args.schedule,
        "calibration": args.calibration if score_options else None,
        "target_sparsity": args.sparsity, "rounds": args.rounds if args.schedule == "iterative"
        else (1 if args.schedule == "oneshot" else None),
        "retrain_epochs": args.retrain_epochs,
        "dense_test_accuracy": run.dense_test_accuracy,
        "pruned_test_accuracy": run.pruned_test_accuracy,
        "test_accuracy": run.test_accuracy,
        "sparsity": run.sparsity,
        "layers": run.layers,
        "compression": report.total["compression"],
        "history": run.rounds,
        **run.extra,
    }
    if args.save:
        result["saved_to"] = str(ts.save(model, args.save, metadata={
            "test_accuracy": run.test_accuracy, "sparsity": run.sparsity}))
    text = (
        f"{args.model} on {args.dataset}: {args.method} pruning ({args.scope}, "
        f"{args.schedule}) to {args.sparsity:.0%} sparsity, seed {args.seed}\n\n"
        + format_table([
            ["dense", run.dense_test_accuracy],
            ["right after pruning", run.pruned_test_accuracy],
            ["after retraining", run.test_accuracy],
        ], ["model", "test accuracy"])
        + "\n\n" + report.table()
        + (f"\nsaved to {result['saved_to']}" if args.save else "")
    )
    emit(args, result, text)
    return 0


def method_options(args: argparse.Namespace, data) -> dict[str, Any]:
    """Extra inputs the second-order methods take (none for magnitude and random)."""
    if args.method in ("magnitude", "random"):
        return {}
    return {"calibration": args.calibration, "damping": args.damping, "hessian": args.hessian}


# ---------------------------------------------------------------- lottery
def run_lottery(args: argparse.Namespace) -> int:
    from tinysparse.prune import lottery_ticket_experiment, summarize

    started = time.perf_counter()
    data = ts.load_dataset(args.dataset)
    quiet = args.quiet or args.json
    runs = [
        lottery_ticket_experiment(
            data, model_name=args.model, rounds=args.rounds, rate=args.rate,
            output_rate=args.output_rate, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, seed=args.seed + k, controls=args.controls,
            eval_every=args.eval_every, rewind_iteration=args.rewind_iteration,
            progress=None if quiet else (lambda m: print(m, file=sys.stderr)),
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
    variants = ["ticket", *args.controls, "supermask_large_final",
                "supermask_magnitude_increase"]
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


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tinysparse",
        description="Learn and teach neural-network compression, from scratch in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"tinysparse {ts.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True

    demo = commands.add_parser("demo", help="train, prune (magnitude, OBD, OBS) and time "
                                            "LeNet-300-100 on the offline digits")
    demo.add_argument("--epochs", type=_positive_int, default=10)
    demo.add_argument("--sparsity", type=_sparsity, default=0.9)
    demo.add_argument("--seed", type=int, default=0)
    add_output_arguments(demo)
    demo.set_defaults(handler=run_demo)

    bench = commands.add_parser("bench", help="a short speed check: sparse vs dense")
    bench.add_argument("--sparsity", type=_sparsity, default=0.95)
    add_output_arguments(bench)
    bench.set_defaults(handler=run_bench)

    train = commands.add_parser("train", help="train a model and report its test accuracy")
    add_training_arguments(train)
    train.add_argument("--save", metavar="PATH", help="save the trained model (.npz)")
    add_output_arguments(train)
    train.set_defaults(handler=run_train)

    prune = commands.add_parser("prune", help="train, prune and retrain; report accuracy and "
                                              "sparsity")
    add_training_arguments(prune)
    prune.add_argument("--method", default="magnitude", choices=sorted(pruning_methods()),
                       help="how weights are scored")
    prune.add_argument("--scope", default="global", choices=["layer", "global"],
                       help="one sparsity per layer, or one threshold across layers")
    prune.add_argument("--sparsity", type=_sparsity, default=0.9,
                       help="fraction of weights to remove, in [0, 1)")
    prune.add_argument("--schedule", default="iterative", choices=["oneshot", "iterative",
                                                                   "gradual"])
    prune.add_argument("--rounds", type=_positive_int, default=5,
                       help="prune-retrain rounds (iterative)")
    prune.add_argument("--retrain-epochs", type=_non_negative_int, default=5,
                       help="epochs of retraining per round (gradual: in total)")
    prune.add_argument("--retrain-lr", type=_positive_float, default=None,
                       help="learning rate for retraining (default: lr / 3)")
    prune.add_argument("--output-rate", type=_positive_float, default=None,
                       help="prune the output layer at this multiple of the sparsity "
                            "(e.g. 0.5)")
    prune.add_argument("--calibration", type=_positive_int, default=1000,
                       help="training examples for the Hessian (obd, obs, obs-layerwise)")
    prune.add_argument("--damping", type=_positive_float, default=None,
                       help="relative damping of the Hessian (default 1e-2)")
    prune.add_argument("--hessian", default=None,
                       choices=["gauss-newton", "lecun", "exact", "fisher"],
                       help="curvature: obd diagonal (gauss-newton, lecun, exact) or obs "
                            "matrix (fisher, gauss-newton, exact)")
    prune.add_argument("--save", metavar="PATH", help="save the pruned model (.npz)")
    add_output_arguments(prune)
    prune.set_defaults(handler=run_prune)

    lottery = commands.add_parser("lottery", help="lottery tickets: rewinding vs controls")
    lottery.add_argument("--model", default="lenet300", choices=["lenet300", "lenet5"])
    lottery.add_argument("--dataset", default="mnist-5k", choices=IMAGE_DATASETS)
    lottery.add_argument("--rounds", type=_positive_int, default=14)
    lottery.add_argument("--rate", type=_sparsity, default=0.2,
                         help="fraction of the remaining weights pruned per round")
    lottery.add_argument("--output-rate", type=_sparsity, default=0.1,
                         help="the same for the output layer")
    lottery.add_argument("--seeds", type=_positive_int, default=1,
                         help="repeat with seeds seed, seed+1, ...")
    lottery.add_argument("--epochs", type=_positive_int, default=10, help="per round")
    lottery.add_argument("--lr", type=_positive_float, default=1.2e-3)
    lottery.add_argument("--batch-size", type=_positive_int, default=60)
    lottery.add_argument("--eval-every", type=_positive_int, default=50,
                         help="validate every N iterations (early-stopping iteration)")
    lottery.add_argument("--rewind-iteration", type=_non_negative_int, default=0,
                         help="0 rewinds to the initial weights; k to those after k steps")
    lottery.add_argument("--controls", type=_controls, default=["reinit", "random_mask", "sign"],
                         help="comma-separated: reinit, random_mask, sign")
    lottery.add_argument("--seed", type=int, default=0)
    add_output_arguments(lottery)
    lottery.set_defaults(handler=run_lottery)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tinysparse`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, KeyError, DataError, ModelFileError, TrainingDiverged, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tinysparse {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tinysparse: interrupted", file=sys.stderr)
        return 130



if __name__ == "__main__":
    sys.exit(main())
