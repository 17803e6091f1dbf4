"""Prune a model by any method: the one table of methods, and the two entry points.

::

    prune(model, 0.9)                                  # 90% of each layer, by magnitude
    prune(model, 0.9, scope="global")                  # one threshold for all layers
    prune(model, 0.9, overrides={"fc3.weight": 0.45})  # output layer at half the rate
    prune(model, 0.5, method="random", seed=1)         # the baseline to beat
    prune_step(model, 0.9, method="obs-layerwise", data=data)   # any method, with a report

Every method is one row of :data:`METHODS`. Most methods only *score* the weights (higher
= keep) and leave the choice to the shared selection step
(:func:`~tinysparse.prune.selection.select_masks`): magnitude, random, OBD. Optimal Brain
Surgeon also moves the surviving weights, so its row names its own procedure; OBD has
one too, to report the loss increase it predicted beside the one measured. The row also
says which scopes, curvatures and schedules a method takes: the checks, the CLI's choices
and its help all read them here.

Every method ends in :func:`~tinysparse.prune.masks.apply_masks`: the masks go onto the
layers, and a layer that keeps at most :func:`tinysparse.sparse.density_threshold` of its
weights moves to the sparse kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysparse.data.dataset import Dataset, training_examples
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import to_dense
from tinysparse.prune.hessian import DIAGONAL_KINDS
from tinysparse.prune.masks import apply_masks, current_masks
from tinysparse.prune.obd import obd_prune, obd_scores
from tinysparse.prune.obs import HESSIANS as OBS_HESSIANS
from tinysparse.prune.obs import check_size as check_obs_size
from tinysparse.prune.obs import obs_prune
from tinysparse.prune.obs_layerwise import obs_layerwise_prune
from tinysparse.prune.scores import magnitude_scores, random_scores
from tinysparse.prune.selection import SCOPES, check_scope, prunable_parameters, select_masks
from tinysparse.sparse.mask import Mask

#: When to prune (see :mod:`tinysparse.prune.schedules`).
SCHEDULES = ("oneshot", "iterative", "gradual")

ScoreFunction = Callable[..., dict[str, np.ndarray]]


@dataclass(frozen=True)
class PruningMethod:
    """One pruning method: how it prunes, and which options it takes.

    Attributes
    ----------
    name, summary : str
    scores : callable(model, names, **options) -> {name: array}, optional
        For methods that only rank weights (higher = keep); :func:`prune` runs them.
    procedure : callable, optional
        For methods that do more than rank (move weights, report predictions): one step,
        ``procedure(model, sparsity, scope, overrides, data, hessian, damping,
        calibration, **options) -> dict`` of measurements. :func:`prune_step` runs it.
    needs_data : bool
        Whether it needs training examples (for a Hessian).
    scopes : tuple of str
        The scopes it takes (``"layer"``, ``"global"``).
    override_scopes : tuple of str
        The scopes in which per-layer sparsity overrides work.
    hessians : tuple of str
        The curvatures it can use; the first is the default.
    default_damping : float or None
        Relative damping of its Hessian (None: it takes no damping).
    schedules : tuple of str
        The schedules it can follow.
    check_model : callable(model), optional
        Raises when the method cannot work on this model (full OBS: too many weights).
    """

    name: str
    summary: str
    scores: ScoreFunction | None = None
    procedure: Callable[..., dict[str, Any]] | None = None
    needs_data: bool = False
    scopes: tuple[str, ...] = SCOPES
    override_scopes: tuple[str, ...] = SCOPES
    hessians: tuple[str, ...] = ()
    default_damping: float | None = None
    schedules: tuple[str, ...] = SCHEDULES
    check_model: Callable[[Module], Any] | None = None


# ---------------------------------------------------------------- the methods' own steps
def _obd_step(model, sparsity, scope, overrides, data, hessian, damping, calibration,
              **options) -> dict[str, Any]:
    if overrides:
        sparsity = {**{n: sparsity for n in prunable_parameters(model)}, **overrides}
    report = obd_prune(model, sparsity, data, scope=scope, kind=hessian, **options)
    return {"predicted_increase": report.predicted_increase,
            "actual_increase": report.actual_increase}


def _obs_step(model, sparsity, scope, overrides, data, hessian, damping, calibration,
              **options) -> dict[str, Any]:
    report = obs_prune(model, sparsity, data, hessian=hessian, damping=damping, **options)
    return {"predicted_increase": report.predicted_increase,
            "actual_increase": report.actual_increase}


def _obs_layerwise_step(model, sparsity, scope, overrides, data, hessian, damping,
                        calibration, **options) -> dict[str, Any]:
    report = obs_layerwise_prune(model, sparsity, data, scope=scope, calibration=calibration,
                                 damping=damping, **options)
    return {"layer_relative_error": {n: r["relative_error"] for n, r in report.layers.items()},
            "loss_before": report.loss_before, "loss_after": report.loss_after}


#: The one table of pruning methods.
METHODS: dict[str, PruningMethod] = {method.name: method for method in (
    PruningMethod("magnitude", "|w|: small weights go first (Han et al. 2015)",
                  scores=magnitude_scores),
    PruningMethod("random", "random scores: the baseline every criterion must beat",
                  scores=random_scores),
    PruningMethod("obd", "Optimal Brain Damage: saliency h_kk w_k^2 / 2 (LeCun et al. 1990)",
                  scores=obd_scores, procedure=_obd_step, needs_data=True,
                  override_scopes=("layer",), hessians=DIAGONAL_KINDS),
    PruningMethod("obs", "Optimal Brain Surgeon over the whole network, survivors "
                  "compensated (Hassibi & Stork 1993)", procedure=_obs_step, needs_data=True,
                  scopes=("global",), override_scopes=(), hessians=OBS_HESSIANS,
                  default_damping=1e-2, check_model=check_obs_size),
    PruningMethod("obs-layerwise", "OBS layer by layer on each layer's inputs (Frantar et "
                  "al. 2022)", procedure=_obs_layerwise_step, needs_data=True,
                  scopes=("layer", "global"), override_scopes=(), hessians=(),
                  default_damping=1e-2, schedules=("oneshot",)),
)}


def get_method(name: str) -> PruningMethod:
    """The row of :data:`METHODS` called ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"method: unknown {name!r}; choose one of {list(METHODS)}") from None


def check_method_options(
    method: str, scope: str = "layer", schedule: str | None = None,
    hessian: str | None = None, damping: float | None = None,
    overrides: Mapping[str, float] | None = None, model: Module | None = None,
) -> PruningMethod:
    """Check that ``method`` takes these options (and can work on ``model``, if given),
    before any work is done; return its row.

    Raises a ValueError naming the option and what the method accepts.
    """
    entry = get_method(method)
    check_scope(scope)
    if scope not in entry.scopes:
        raise ValueError(f"scope: method {method!r} takes scope {' or '.join(entry.scopes)}, "
                         f"not {scope!r}")
    if schedule is not None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule: unknown {schedule!r}; choose one of {list(SCHEDULES)}")
        if schedule not in entry.schedules:
            raise ValueError(f"schedule: method {method!r} follows schedule "
                             f"{' or '.join(entry.schedules)}, not {schedule!r}")
    if hessian is not None and hessian not in entry.hessians:
        takes = (f"one of {list(entry.hessians)}" if entry.hessians else "none")
        raise ValueError(f"hessian: method {method!r} takes {takes}, not {hessian!r}")
    if damping is not None:
        if entry.default_damping is None:
            raise ValueError(f"damping: method {method!r} has no Hessian to damp")
        if not damping > 0:
            raise ValueError(f"damping: expected a positive number, got {damping}")
    if overrides and scope not in entry.override_scopes:
        where = (f"with scope {' or '.join(entry.override_scopes)}" if entry.override_scopes
                 else "at all")
        raise ValueError(f"overrides: method {method!r} takes per-layer sparsities {where}")
    if model is not None and entry.check_model is not None:
        entry.check_model(model)
    return entry


# ---------------------------------------------------------------- the entry points
def prune(
    model: Module,
    sparsity: float | Mapping[str, float],
    method: str = "magnitude",
    scope: str = "layer",
    parameters: Sequence[str] | None = None,
    overrides: Mapping[str, float] | None = None,
    include_bias: bool = False,
    allow_empty_layers: bool = False,
    **score_options: Any,
) -> dict[str, Mask]:
    """Prune ``model`` in place to ``sparsity`` by a scoring method; return the new masks.

    Parameters
    ----------
    model : Module
    sparsity : float or dict name -> float
        Target fraction of zeros in [0, 1), of each weight (``scope="layer"``) or of all
        of them together (``scope="global"``). Existing zeros count and are kept.
    method : str
        How weights are scored: a method of :data:`METHODS` with a score function
        (``"magnitude"``, ``"random"``, ``"obd"`` with ``data=``).
    scope : {"layer", "global", "unit"}
        ``"unit"``: every output unit (row, filter) pruned to ``sparsity`` on its own.
    parameters : list of str, optional
        Which weights to prune (default: every weight matrix/kernel, no biases).
    overrides : dict name -> float, optional
        Per-weight sparsities that take precedence (e.g. ``{"fc3.weight": 0.45}``).
    include_bias : bool
        Also prune biases (when ``parameters`` is not given).
    allow_empty_layers : bool
        Allow a weight to lose every entry (refused by default: see
        :func:`~tinysparse.prune.masks.apply_masks`).
    **score_options
        Passed to the score function (``seed`` for random, ``data`` for OBD, ...).
    """
    entry = get_method(method)
    if entry.scores is None:
        raise ValueError(f"method: {method!r} does more than score weights (it moves the "
                         f"survivors): use prune_step(model, sparsity, method={method!r}, "
                         f"data=...)")
    check_scope(scope)
    to_dense(model)  # scores read dense weights; apply_masks moves layers back
    names = list(parameters) if parameters is not None else prunable_parameters(
        model, include_bias)
    if not names:
        raise ValueError("parameters: nothing to prune")
    own = set(model.state_shapes())
    unknown = [n for n in names if n not in own]
    if unknown:
        raise ValueError(f"parameters: {unknown} are not weights of the model; it has "
                         f"{sorted(own)}")
    scores = entry.scores(model, names, **score_options)
    masks = select_masks(scores, sparsity, scope, current_masks(model, names), overrides)
    apply_masks(model, masks, allow_empty_layers)
    return masks


def prune_step(
    model: Module,
    sparsity: float,
    method: str = "magnitude",
    scope: str = "layer",
    overrides: Mapping[str, float] | None = None,
    data: Dataset | tuple[np.ndarray, np.ndarray] | None = None,
    calibration: int = 1000,
    damping: float | None = None,
    hessian: str | None = None,
    seed: int = 0,
    allow_empty_layers: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Prune ``model`` in place to ``sparsity`` with any method; return what it measured.

    ``data``'s first ``calibration`` training examples feed the second-order methods;
    ``damping`` and ``hessian`` are passed to them (their defaults from :data:`METHODS`
    when None). The result holds ``predicted_increase`` and ``actual_increase`` of the
    mean training loss on those examples (OBD, OBS), the per-layer errors of layer-wise
    OBS — and nothing for magnitude and random. ``allow_empty_layers`` as for
    :func:`prune`.
    """
    entry = check_method_options(method, scope, hessian=hessian, damping=damping,
                                 overrides=overrides)
    if entry.procedure is None:
        prune(model, sparsity, method=method, scope=scope, overrides=overrides, seed=seed,
              allow_empty_layers=allow_empty_layers)
        return {}
    if data is None:
        raise ValueError(f"data: method {method!r} needs training examples for its Hessian")
    if calibration < 1:
        raise ValueError(f"calibration: expected a positive number of examples, got "
                         f"{calibration}")
    x, y = training_examples(data)
    return entry.procedure(
        model, sparsity, scope, overrides, (x[:calibration], y[:calibration]),
        hessian or (entry.hessians[0] if entry.hessians else None),
        entry.default_damping if damping is None else damping, calibration,
        allow_empty_layers=allow_empty_layers, **options)
