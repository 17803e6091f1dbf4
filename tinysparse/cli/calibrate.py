"""``tinysparse calibrate``: how far a saved model's softmax can be read as confidence (ECE
with a bootstrap interval, MCE, NLL, Brier), before and after temperature scaling.

The temperature is fitted on held-out digits: the validation digits that ``tinysparse
train --validation N`` recorded in the model file, if it holds some of ``--dataset``;
otherwise the first half of the test split, and then every figure is measured on the
second half (``held_out`` and ``evaluated_on`` say which).
"""

from __future__ import annotations

import argparse
from typing import Any

from tinysparse.calibration import (
    DEFAULT_BINS,
    calibration_metrics,
    fit_temperature,
    predict_logits,
    softmax_probabilities,
)
from tinysparse.cli.common import (
    add_data_arguments,
    add_model_file_argument,
    add_output_arguments,
    add_seed_argument,
    check_model_file,
    check_output_file,
    emit,
    load_data,
    positive_int,
)
from tinysparse.data.storage import atomic_path
from tinysparse.tables import format_table
from tinysparse.train import recorded_validation

#: the level of the bootstrap interval of ECE
LEVEL = 0.95
#: the figures measured before and after temperature scaling: key, row label
ROWS = (("accuracy", "accuracy"), ("mean_confidence", "mean confidence"), ("ece", "ECE"),
        ("ece_interval", "ECE 95% interval"), ("ece_equal_mass", "ECE, equal-mass bins"),
        ("mce", "MCE"), ("nll", "NLL"), ("brier", "Brier"))


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "calibrate", help="calibration of a saved model: ECE (bootstrap interval), MCE, NLL, "
                          "Brier, before and after temperature scaling")
    add_model_file_argument(parser)
    add_data_arguments(parser)
    parser.add_argument("--bins", type=positive_int, default=DEFAULT_BINS, metavar="M",
                        help=f"confidence bins of ECE and MCE (default {DEFAULT_BINS}, as Guo "
                             f"et al.)")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, metavar="B",
                        help="bootstrap draws for the 95%% interval of ECE (default 1000)")
    parser.add_argument("--plot", metavar="PATH",
                        help="write the reliability diagrams and confidence histograms, "
                             "before and after temperature scaling, as a PNG")
    add_seed_argument(parser, help="seeds the bootstrap draws (same seed, same interval)")
    add_output_arguments(parser)
    parser.set_defaults(run=run, check=check)


def check(args: argparse.Namespace) -> None:
    check_model_file(args)
    args.plot = check_output_file(args.plot, "--plot")


def _held_out(model, data, dataset: str) -> dict[str, Any]:
    """Where T is fitted and where everything is measured (see the module docstring)."""
    indices = recorded_validation(model, dataset)
    if indices is not None:
        if indices.max() >= len(data.x_train):
            raise ValueError(f"MODEL: its recorded validation digits go up to index "
                             f"{indices.max()}, beyond the {len(data.x_train):,} training "
                             f"digits of {dataset}")
        return {"held_out": "validation", "evaluated_on": "test",
                "fit": (data.x_train[indices], data.y_train[indices]), "evaluate": data.test}
    half = len(data.x_test) // 2
    return {"held_out": "test_first_half", "evaluated_on": "test_second_half",
            "fit": (data.x_test[:half], data.y_test[:half]),
            "evaluate": (data.x_test[half:], data.y_test[half:])}


def run(args: argparse.Namespace) -> int:
    data = load_data(args.dataset, args.quiet)
    model = args.loaded_model
    split = _held_out(model, data, args.dataset)
    (fit_x, fit_y), (x, y) = split["fit"], split["evaluate"]
    temperature = fit_temperature(predict_logits(model, fit_x), fit_y)
    logits = predict_logits(model, x)
    before, after = (
        calibration_metrics(softmax_probabilities(logits, t), y, args.bins,
                            samples=args.bootstrap, level=LEVEL, seed=args.seed)
        for t in (1.0, temperature))
    result: dict[str, Any] = {
        "command": "calibrate", "model": args.model_file, "dataset": args.dataset,
        "seed": args.seed, "bins": args.bins, "bootstrap": args.bootstrap,
        "test_accuracy": before["accuracy"], "ece": before["ece"],
        "ece_interval": before["ece_interval"], "mce": before["mce"], "nll": before["nll"],
        "brier": before["brier"], "temperature": temperature, "ece_after": after["ece"],
        "nll_after": after["nll"], "held_out": split["held_out"],
        "held_out_examples": len(fit_y), "evaluated_on": split["evaluated_on"],
        "evaluated_examples": len(y),
        "mean_confidence": before["mean_confidence"],
        "ece_equal_mass": before["ece_equal_mass"],
        "test_accuracy_after": after["accuracy"],
        "mean_confidence_after": after["mean_confidence"],
        "ece_interval_after": after["ece_interval"],
        "ece_equal_mass_after": after["ece_equal_mass"],
        "mce_after": after["mce"], "brier_after": after["brier"],
    }
    if args.plot:
        result["plot"] = _plot(args.plot, {
            "before (T = 1)": (softmax_probabilities(logits), y, args.bins),
            f"after (T = {temperature:.3f})": (softmax_probabilities(logits, temperature), y,
                                               args.bins)})
    fitted_on = (f"the {len(fit_y):,} validation digits recorded in the model"
                 if split["held_out"] == "validation" else
                 f"the first half of the test split ({len(fit_y):,} digits)")

    def cell(value: Any) -> Any:
        return f"[{value[0]:.4f}, {value[1]:.4f}]" if isinstance(value, list) else value

    rows = [[label, cell(before[key]), cell(after[key])] for key, label in ROWS]
    text = (f"{args.model_file} on {args.dataset}, {split['evaluated_on'].replace('_', ' ')} "
            f"({len(y):,} digits), {args.bins} bins\n\n"
            + format_table(rows, ["", "before", f"after T = {temperature:.4f}"])
            + f"\n\ntemperature fitted on {fitted_on}"
            + (f"\nreliability diagram written to {result['plot']}" if args.plot else ""))
    emit(args, result, text)
    return 0


def _plot(path: str, panels: dict[str, Any]) -> str:
    """Draw :func:`tinysparse.plot.calibration_figure` without pyplot (no display needed)
    and write it as a PNG: to a temporary file first, moved into place when complete."""
    from matplotlib.figure import Figure

    from tinysparse.plot import calibration_figure

    figure = calibration_figure(panels, fig=Figure(figsize=(4.2 * len(panels), 6.5)))
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        figure.savefig(file, format="png", dpi=110)
    return path
