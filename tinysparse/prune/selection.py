"""Choosing which weights to drop, given their scores — shared by every pruning method.

Every method (magnitude, random, OBD, OBS, ...) only says how *important* each weight is:
a score per weight, higher = more important. This module turns scores into masks:

* ``scope="layer"``: each parameter is pruned to its own target sparsity (one number for
  all, or one per parameter);
* ``scope="global"``: one threshold across all parameters, so layers with many
  unimportant weights lose more of them;
* ``scope="unit"``: every output unit — a row of a Linear weight, a filter of a conv
  kernel — is pruned to the sparsity on its own, so no unit keeps more of its inputs than
  another (what targeted dropout, Gomez et al. 2019, trains a network to survive);
* already-pruned weights count as pruned and stay pruned (their score is treated as −∞):
  successive prunes only ever add zeros;
* the k lowest scores are dropped with k = round(sparsity · n), ties broken by position, so
  the achieved sparsity is exact to one weight (with ``scope="unit"``: in every unit,
  n being the unit's number of weights).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tinysparse.nn.dropout import lowest_in_each_unit
from tinysparse.nn.module import Module
from tinysparse.sparse.mask import Mask

SCOPES = ("layer", "global", "unit")


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """A sparsity must lie in [0, 1): pruning *every* weight leaves no network."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {sparsity}")
    return value


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope: unknown {scope!r}; choose one of {list(SCOPES)}")
    return scope


def prunable_parameters(model: Module, include_bias: bool = False) -> list[str]:
    """Names of the weights pruning acts on: the weight matrices and kernels, as
    ``model.state_dict()`` names them (``"fc1.weight"``, whichever kernels fc1 runs).

    Biases (1-D) are excluded unless ``include_bias``: they are few, and pruning them
    saves nothing.
    """
    return [name for name, shape in model.state_shapes().items()
            if include_bias or len(shape) > 1]


def lowest(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean array marking the ``k`` lowest scores (ties: the earlier position goes first)."""
    drop = np.zeros(scores.size, dtype=bool)
    if k > 0:
        drop[np.argsort(scores, axis=None, kind="stable")[:k]] = True
    return drop.reshape(scores.shape)


def _masked_scores(scores: np.ndarray, previous: Mask | None) -> np.ndarray:
    """Scores with already-pruned weights at −∞, so they are the first to go (again)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores[previous.keep] if previous is not None else scores)):
        raise ValueError("scores: got NaN or infinite scores for weights that are still kept")
    if previous is None:
        return scores
    return np.where(previous.keep, scores, -np.inf)


def layer_masks(
    scores: Mapping[str, np.ndarray],
    sparsity: float | Mapping[str, float],
    previous: Mapping[str, Mask] | None = None,
) -> dict[str, Mask]:
    """Prune each parameter to its own sparsity: drop its ``round(s · n)`` lowest scores."""
    previous = previous or {}
    masks = {}
    for name, score in scores.items():
        target = sparsity[name] if isinstance(sparsity, Mapping) else sparsity
        target = check_sparsity(target, f"sparsity of {name}")
        score = _masked_scores(score, previous.get(name))
        k = int(round(target * score.size))
        already = 0 if name not in previous else previous[name].pruned
        masks[name] = Mask(~lowest(score, max(k, already)))
    return masks


def unit_masks(
    scores: Mapping[str, np.ndarray],
    sparsity: float | Mapping[str, float],
    previous: Mapping[str, Mask] | None = None,
) -> dict[str, Mask]:
    """Prune each output unit (row of the parameter viewed as (units, rest)) to the
    parameter's sparsity: drop the ``round(s · n)`` lowest scores of every unit of n
    weights (more where an earlier mask already pruned more). A 1-D parameter (a bias)
    is one unit."""
    previous = previous or {}
    masks = {}
    for name, score in scores.items():
        target = sparsity[name] if isinstance(sparsity, Mapping) else sparsity
        target = check_sparsity(target, f"sparsity of {name}")
        score = _masked_scores(score, previous.get(name))
        units = score.reshape(len(score), -1) if score.ndim > 1 else score.reshape(1, -1)
        k = int(round(target * units.shape[1]))
        already = (np.zeros(len(units), dtype=int) if name not in previous else
                   (~previous[name].keep.reshape(units.shape)).sum(axis=1))
        drop = lowest_in_each_unit(units, np.maximum(k, already))
        masks[name] = Mask(~drop.reshape(score.shape))
    return masks


def global_masks(
    scores: Mapping[str, np.ndarray],
    sparsity: float,
    previous: Mapping[str, Mask] | None = None,
) -> dict[str, Mask]:
    """Prune all parameters together: one threshold, ``round(s · N)`` lowest scores overall."""
    sparsity = check_sparsity(sparsity)
    previous = previous or {}
    names = list(scores)
    flat = np.concatenate([_masked_scores(scores[n], previous.get(n)).ravel() for n in names])
    already = sum(previous[n].pruned for n in names if n in previous)
    drop = lowest(flat, max(int(round(sparsity * flat.size)), already))
    masks, start = {}, 0
    for name in names:
        size = np.size(scores[name])
        masks[name] = Mask(~drop[start : start + size].reshape(np.shape(scores[name])))
        start += size
    return masks


def select_masks(
    scores: Mapping[str, np.ndarray],
    sparsity: float | Mapping[str, float],
    scope: str = "layer",
    previous: Mapping[str, Mask] | None = None,
    overrides: Mapping[str, float] | None = None,
) -> dict[str, Mask]:
    """Masks from scores: the one selection step every pruning method shares.

    Parameters
    ----------
    scores : dict name -> array
        Importance of each weight (higher = keep).
    sparsity : float or dict name -> float
        Target fraction of zeros, in [0, 1). A dict gives each parameter its own
        (layer and unit scopes).
    scope : {"layer", "global", "unit"}
        ``"unit"``: each output unit of each parameter pruned to the sparsity.
    previous : dict name -> Mask, optional
        Current masks: their zeros are kept.
    overrides : dict name -> float, optional
        Parameters pruned to their own sparsity whatever the scope (e.g. the output layer
        at half the rate; each of its units, with scope ``"unit"``); the others follow
        ``sparsity`` and ``scope``.

    Returns
    -------
    dict name -> Mask
    """
    check_scope(scope)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(scores))
    if unknown:
        raise ValueError(f"overrides: {unknown} are not among the pruned parameters "
                         f"{sorted(scores)}")
    rest = {n: s for n, s in scores.items() if n not in overrides}
    own_sparsity = unit_masks if scope == "unit" else layer_masks
    masks = own_sparsity({n: scores[n] for n in overrides}, overrides, previous)
    if scope == "global":
        if isinstance(sparsity, Mapping):
            raise ValueError("sparsity: global scope takes one number (use overrides for "
                             "per-layer exceptions)")
        if rest:
            masks.update(global_masks(rest, sparsity, previous))
    else:
        masks.update(own_sparsity(rest, sparsity, previous))
    return {name: masks[name] for name in scores}


def threshold(scores: Mapping[str, np.ndarray], masks: Mapping[str, Mask]) -> float:
    """The largest pruned score (every kept score is at least this): handy for lessons."""
    pruned = [np.max(np.asarray(scores[n])[~masks[n].keep]) for n in scores
              if masks[n].pruned]
    return float(max(pruned)) if pruned else -np.inf
