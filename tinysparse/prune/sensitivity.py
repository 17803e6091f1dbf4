"""Sensitivity analysis: prune one layer at a time and watch the accuracy.

Han et al. (2015) chose each layer's pruning rate from such curves: a layer whose
accuracy holds up to 90% sparsity can be pruned harder than one that breaks at 50%.
Nothing is retrained here: the curve shows how much each layer *alone* can lose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinysparse.nn.module import Module, clone
from tinysparse.prune.pruning import prune
from tinysparse.prune.selection import check_sparsity, prunable_parameters
from tinysparse.tables import format_table
from tinysparse.train import evaluate

DEFAULT_SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def sensitivity(
    model: Module,
    x: np.ndarray,
    y: np.ndarray,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    parameters: Sequence[str] | None = None,
    method: str = "magnitude",
    **score_options: Any,
) -> list[dict[str, Any]]:
    """Accuracy with each parameter pruned alone to each sparsity (the model is untouched).

    Returns
    -------
    list of dict
        One record per (parameter, sparsity): ``parameter``, ``sparsity``, ``accuracy``,
        ``loss``.
    """
    names = list(parameters) if parameters is not None else prunable_parameters(model)
    records = []
    for name in names:
        for sparsity in sparsities:
            check_sparsity(sparsity)
            trial = clone(model)
            prune(trial, sparsity, method=method, parameters=[name], **score_options)
            result = evaluate(trial, x, y)
            records.append({"parameter": name, "sparsity": float(sparsity),
                            "accuracy": result["accuracy"], "loss": result["loss"]})
    return records


def sensitivity_table(records: Sequence[dict[str, Any]]) -> str:
    """Parameters as rows, sparsities as columns, accuracy in the cells."""
    names = list(dict.fromkeys(r["parameter"] for r in records))
    sparsities = list(dict.fromkeys(r["sparsity"] for r in records))
    cell = {(r["parameter"], r["sparsity"]): r["accuracy"] for r in records}
    rows = [[name, *(cell.get((name, s)) for s in sparsities)] for name in names]
    return format_table(rows, ["parameter", *(f"{s:.0%}" for s in sparsities)])
