"""One pruning step by any method: the dispatch the schedules and the CLI use.

Score-based methods (magnitude, random, OBD) go through :func:`~tinysparse.prune.prune`;
Optimal Brain Surgeon also moves the surviving weights, so it has its own functions.
OBD and OBS also report the loss increase they predicted beside the one measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tinysparse.data.dataset import Dataset
from tinysparse.nn.module import Module
from tinysparse.prune.obd import obd_prune
from tinysparse.prune.obs import obs_prune
from tinysparse.prune.obs_layerwise import obs_layerwise_prune
from tinysparse.prune.pruning import prune

METHODS = ("magnitude", "random", "obd", "obs", "obs-layerwise")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method: unknown {method!r}; choose one of {list(METHODS)}")
    return method


def prune_step(
    model: Module,
    sparsity: float,
    method: str = "magnitude",
    scope: str = "layer",
    overrides: Mapping[str, float] | None = None,
    data: Dataset | None = None,
    calibration: int = 1000,
    damping: float | None = None,
    hessian: str | None = None,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Prune ``model`` in place to ``sparsity`` with ``method``; return what it measured.

    ``data``'s first ``calibration`` training examples feed the second-order methods;
    ``damping`` and ``hessian`` are passed to them (their defaults when None). The result
    holds ``predicted_increase`` and ``actual_increase`` of the mean training loss on
    those examples (OBD, OBS) — empty for magnitude and random.
    """
    check_method(method)
    if method in ("magnitude", "random"):
        prune(model, sparsity, method=method, scope=scope, overrides=overrides, seed=seed)
        return {}
    if data is None:
        raise ValueError(f"method {method!r} needs data for its Hessian")
    if calibration < 1:
        raise ValueError(f"calibration: expected a positive number of examples, got "
                         f"{calibration}")
    calibration_data = (data.x_train[:calibration], data.y_train[:calibration])
    if method == "obd":
        if overrides:
            sparsity = {**{n: sparsity for n in _prunable(model)}, **overrides}
            if scope == "global":
                raise ValueError("overrides: use scope='layer' with per-layer OBD rates")
        report = obd_prune(model, sparsity, calibration_data, scope=scope,
                           kind=hessian or "gauss-newton", **options)
        return {"predicted_increase": report.predicted_increase,
                "actual_increase": report.actual_increase}
    if overrides:
        raise ValueError(f"overrides: not supported by {method!r}")
    if method == "obs":
        if scope != "global":
            raise ValueError("method 'obs' chooses weights with one inverse Hessian over the "
                             "whole network: use scope='global'")
        report = obs_prune(model, sparsity, calibration_data, hessian=hessian or "fisher",
                           damping=1e-2 if damping is None else damping, **options)
        return {"predicted_increase": report.predicted_increase,
                "actual_increase": report.actual_increase}
    report = obs_layerwise_prune(model, sparsity, calibration_data, scope=scope,
                                 calibration=calibration,
                                 damping=1e-2 if damping is None else damping, **options)
    return {"layer_relative_error": {n: r["relative_error"] for n, r in report.layers.items()},
            "loss_before": report.loss_before, "loss_after": report.loss_after}


def _prunable(model: Module) -> list[str]:
    from tinysparse.prune.selection import prunable_parameters

    return prunable_parameters(model)

