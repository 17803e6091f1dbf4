"""Figures the lessons use (matplotlib). Each function draws on an Axes and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinysparse.nn.module import Module


def _axes(ax=None, figsize=(6, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def accuracy_vs_sparsity(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    ax=None,
    reference: float | None = None,
    title: str = "accuracy vs sparsity",
):
    """One line per method: ``curves[label] = [(sparsity, accuracy), ...]``.

    ``reference`` draws the dense accuracy as a dashed line.
    """
    ax = _axes(ax)
    for label, points in curves.items():
        s, a = zip(*sorted(points))
        ax.plot(s, a, marker="o", label=label)
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", label="dense")
    ax.set_xlabel("sparsity (fraction of weights removed)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def layer_sparsity_bars(layers: Mapping[str, float], ax=None, title: str = "sparsity per layer"):
    """Bars of each layer's sparsity (e.g. ``PruneRun.layers`` or ``layer_sparsities(model)``)."""
    ax = _axes(ax)
    names = list(layers)
    values = [layers[n] for n in names]
    bars = ax.bar(range(len(names)), values, color="tab:blue")
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value, f"{value:.0%}", ha="center",
                va="bottom")
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("sparsity")
    ax.set_title(title)
    return ax


def first_layer_masks(
    model: Module, parameter: str = "fc1.weight", units: int = 16, image_shape=(28, 28),
    seed: int = 0, fig=None,
):
    """Which input pixels each of ``units`` random hidden units still sees (white = kept)."""
    import matplotlib.pyplot as plt

    mask = dict(model.named_masks()).get(parameter)
    keep = mask.keep if mask is not None else model.state_dict()[parameter] != 0
    chosen = np.random.default_rng(seed).choice(keep.shape[0], size=units, replace=False)
    columns = int(np.ceil(np.sqrt(units)))
    rows = int(np.ceil(units / columns))
    fig = fig or plt.figure(figsize=(1.6 * columns, 1.6 * rows))
    for i, unit in enumerate(chosen):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(keep[unit].reshape(image_shape), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"unit {unit}: {keep[unit].mean():.0%}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{parameter}: input pixels each hidden unit still sees")
    return fig


def weight_histograms(
    before: Mapping[str, np.ndarray] | Module, after: Mapping[str, np.ndarray] | Module,
    parameter: str, ax=None, bins: int = 100,
):
    """Histogram of one parameter's non-zero values before and after pruning/retraining."""
    ax = _axes(ax)

    def values(source: Any) -> np.ndarray:
        array = (source.state_dict() if isinstance(source, Module) else source)[parameter]
        array = np.asarray(array).ravel()
        return array[array != 0]

    ax.hist(values(before), bins=bins, alpha=0.5, label="before", density=True)
    ax.hist(values(after), bins=bins, alpha=0.5, label="after", density=True)
    ax.set_xlabel(f"{parameter}: non-zero values")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def sensitivity_curves(records: Sequence[Mapping[str, Any]], ax=None,
                       reference: float | None = None):
    """Accuracy vs sparsity, one line per parameter (from :func:`prune.sensitivity`)."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        curves.setdefault(r["parameter"], []).append((r["sparsity"], r["accuracy"]))
    return accuracy_vs_sparsity(curves, ax=ax, reference=reference,
                                title="sensitivity: each layer pruned alone")


# ---------------------------------------------------------------- calibration (lesson 08)
def reliability_diagram(bins, ax=None, title: str = "reliability diagram",
                        label: str = "accuracy"):
    """Guo et al.'s (2017) reliability diagram of a :class:`~tinysparse.calibration.
    ReliabilityBins`: one bar per bin, as high as the bin's accuracy, beside the diagonal
    a calibrated model would follow; the red part of each bar is its gap to its mean
    confidence. Empty bins have no bar. The title gives the ECE."""
    ax = _axes(ax, figsize=(4, 4))
    left, width = bins.edges[:-1], np.diff(bins.edges)
    filled = bins.counts > 0
    accuracy = np.where(filled, bins.accuracy, 0.0)
    confidence = np.where(filled, bins.confidence, 0.0)
    ax.bar(left[filled], accuracy[filled], width=width[filled], align="edge",
           color="tab:blue", edgecolor="black", linewidth=0.5, label=label)
    low, high = np.minimum(accuracy, confidence), np.maximum(accuracy, confidence)
    ax.bar(left[filled], (high - low)[filled], bottom=low[filled], width=width[filled],
           align="edge", color="tab:red", alpha=0.35, edgecolor="tab:red", hatch="//",
           label="gap to confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"confidence ({bins.binning} bins)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {bins.ece:.2%}, MCE {bins.mce:.2%}")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def confidence_histogram(confidence, ax=None, accuracy: float | None = None, bins: int = 15,
                         title: str = "confidence"):
    """Histogram of the confidences (max-softmax) as fractions of the examples, with the
    mean confidence and, if given, the accuracy as vertical lines (Guo et al. 2017, top row
    of their Figure 1): a confident model's mean lies to the right of its accuracy."""
    ax = _axes(ax, figsize=(4, 2.5))
    confidence = np.asarray(confidence)
    ax.hist(confidence, bins=np.linspace(0, 1, bins + 1), color="tab:blue", edgecolor="black",
            linewidth=0.5, weights=np.full(len(confidence), 1 / max(len(confidence), 1)))
    ax.axvline(confidence.mean(), color="tab:red", linestyle="--",
               label=f"mean confidence {confidence.mean():.3f}")
    if accuracy is not None:
        ax.axvline(accuracy, color="black", linestyle=":", label=f"accuracy {accuracy:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence (max softmax)")
    ax.set_ylabel("fraction of examples")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return ax


def calibration_figure(panels: Mapping[str, tuple[Any, Any, Any]], fig=None):
    """Confidence histograms above reliability diagrams, one column per entry of
    ``panels``: ``{title: (probabilities, labels, bins)}``, e.g. before and after
    temperature scaling (what ``tinysparse calibrate --plot`` draws). ``bins`` is the
    number of equal-width bins. Pass ``fig`` (e.g. a ``matplotlib.figure.Figure``) to draw
    without pyplot."""
    from tinysparse.calibration import confidence_and_correct, reliability_bins

    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(4.2 * len(panels), 6.5))
    grid = fig.add_gridspec(2, len(panels), height_ratios=[1, 2])
    for column, (title, (probabilities, labels, count)) in enumerate(panels.items()):
        confidence, correct = confidence_and_correct(probabilities, labels)
        confidence_histogram(confidence, fig.add_subplot(grid[0, column]),
                             accuracy=float(correct.mean()), bins=count, title=title)
        reliability_diagram(reliability_bins(probabilities, labels, count),
                            fig.add_subplot(grid[1, column]), title=title)
    fig.tight_layout()
    return fig


def image_grid(images, titles: Sequence[str] | None = None, columns: int = 10, fig=None,
               image_shape=(28, 28), suptitle: str | None = None):
    """Images (e.g. fooling images, or clean beside adversarial digits) in a grid, in gray
    over [0, 1], each with an optional title."""
    images = np.asarray(images).reshape(-1, *image_shape)
    columns = min(columns, len(images))
    rows = int(np.ceil(len(images) / columns))
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(1.5 * columns, 1.7 * rows))
    for i, image in enumerate(images):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    return fig
