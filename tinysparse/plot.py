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
