"""Measuring a (pruned) model: accuracy, and the sparsity/compression/FLOPs report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, no_grad
from tinysparse.nn.layers import Conv2d, Linear, Sequential
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import SparseConv2d, SparseLayer, SparseLinear
from tinysparse.tables import format_table


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``predictions`` (class indices, or rows of scores) equal to ``labels``."""
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=1)
    if predictions.shape != np.shape(labels):
        raise ValueError(f"accuracy: {predictions.shape} predictions for "
                         f"{np.shape(labels)} labels")
    return float(np.mean(predictions == labels))


def _output_positions(model: Module, input_shape: Sequence[int]) -> dict[str, int]:
    """For each Linear/Conv2d layer: output positions per example (1 for Linear, OH·OW for
    a convolution), found by running one zero example through a Sequential model."""
    positions: dict[str, int] = {}
    if not isinstance(model, Sequential):
        return positions

    def walk(module: Module, prefix: str, x: Tensor) -> Tensor:
        if isinstance(module, Sequential):
            for name, child in module._modules.items():
                x = walk(child, f"{prefix}.{name}" if prefix else name, x)
            return x
        out = module(x)
        if isinstance(module, Conv2d | SparseConv2d):
            positions[prefix] = out.shape[2] * out.shape[3]
        elif isinstance(module, Linear | SparseLinear):
            positions[prefix] = 1
        return out

    # In evaluation mode: a stochastic layer (dropout, sparse variational dropout, L0
    # gates) draws noise only in training, and reading a report must not advance it.
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with no_grad():
            walk(model, "", Tensor(np.zeros((1, *input_shape)), dtype=model.dtype))
    finally:
        for module, training in modes.items():
            object.__setattr__(module, "training", training)
    return positions


@dataclass
class SparsityReport:
    """Per layer and in total: weights, non-zeros, sparsity, compression, multiply-adds.

    ``rows`` holds one dict per prunable weight (``layer``, ``weights``, ``nonzero``,
    ``sparsity``, ``compression``, ``dense_macs``, ``sparse_macs``, ``dead_units``,
    ``path``) and ``total`` the sums. ``dead_units`` counts the layer's units (rows,
    filters) left with no non-zero incoming weight: they pass on a constant.
    Multiply-adds (MACs) are per example: a Linear weight is used once, a convolution
    kernel once per output position; a pruned weight costs nothing only if
    the kernel skips it. ``path`` says which kernels the layer runs: ``"dense"`` (no mask),
    ``"masked-dense"`` (W ⊙ M through BLAS) or ``"sparse"`` (a
    :class:`~tinysparse.nn.SparseLinear` / :class:`~tinysparse.nn.SparseConv2d`, which
    stores and multiplies the kept weights only).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)
    biases: int = 0

    def table(self) -> str:
        headers = ["layer", "weights", "nonzero", "sparsity", "compression", "dense_macs",
                   "sparse_macs", "dead_units", "path"]
        rows = [{**r, "compression": f"{r['compression']:.1f}x"} for r in self.rows]
        total = {**self.total, "compression": f"{self.total['compression']:.1f}x"}
        return format_table([*rows, total], headers, precision=4) + (
            f"\n(plus {self.biases:,} bias parameters, not pruned)" if self.biases else "")

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.rows, "total": self.total, "biases": self.biases}


def sparsity_report(model: Module, input_shape: Sequence[int] = (1, 28, 28)) -> SparsityReport:
    """Count what pruning removed from ``model`` (see :class:`SparsityReport`)."""
    positions = _output_positions(model, input_shape)
    report = SparsityReport()
    for module_name, module in model.named_modules():
        if isinstance(module, SparseLayer):
            weight, path = module.dense_weight(), "sparse"
        elif isinstance(module, Linear | Conv2d):
            weight = module.weight.data
            path = "masked-dense" if "weight" in module._masks else "dense"
        else:
            continue
        size, nonzero = weight.size, int(np.count_nonzero(weight))
        dead = int(np.count_nonzero(~weight.reshape(len(weight), -1).any(axis=1)))
        uses = positions.get(module_name)
        report.rows.append({
            "layer": f"{module_name}.weight" if module_name else "weight",
            "weights": size,
            "nonzero": nonzero,
            "sparsity": 1 - nonzero / size,
            "compression": size / max(nonzero, 1),
            "dense_macs": None if uses is None else size * uses,
            "sparse_macs": None if uses is None else nonzero * uses,
            "dead_units": dead,
            "path": path,
        })
        if module.bias is not None:
            report.biases += module.bias.size
    weights = sum(r["weights"] for r in report.rows)
    nonzero = sum(r["nonzero"] for r in report.rows)
    known = all(r["dense_macs"] is not None for r in report.rows)
    report.total = {
        "layer": "total",
        "weights": weights,
        "nonzero": nonzero,
        "sparsity": 1 - nonzero / weights if weights else 0.0,
        "compression": weights / max(nonzero, 1),
        "dense_macs": sum(r["dense_macs"] for r in report.rows) if known else None,
        "sparse_macs": sum(r["sparse_macs"] for r in report.rows) if known else None,
        "dead_units": sum(r["dead_units"] for r in report.rows),
        "path": "",
    }
    return report
