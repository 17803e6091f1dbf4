"""How important is each weight? One scoring function per pruning method.

A score function takes the model and the names of the parameters to prune and returns
one array per name, shaped like the parameter, where **higher means keep**. Everything
else — layer-wise or global thresholds, respecting earlier masks — is shared code in
:mod:`tinysparse.prune.selection`. Second-order methods (OBD, OBS) register their scores
here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinysparse.nn.module import Module

ScoreFunction = Callable[..., dict[str, np.ndarray]]


def magnitude_scores(model: Module, names: Sequence[str], **_: Any) -> dict[str, np.ndarray]:
    """|w|: small weights matter least (Han et al. 2015; Janowsky 1989)."""
    return {name: np.abs(model.get_parameter(name).data) for name in names}


def random_scores(
    model: Module, names: Sequence[str], seed: int = 0, **_: Any
) -> dict[str, np.ndarray]:
    """Uniform random scores: the baseline every real criterion must beat."""
    rng = np.random.default_rng(seed)
    return {name: rng.random(model.get_parameter(name).shape) for name in names}


def obd_scores(model: Module, names: Sequence[str], **options: Any) -> dict[str, np.ndarray]:
    """OBD saliency h_kk w_k² / 2 (LeCun et al. 1990); needs ``data=(x, y)``.

    See :mod:`tinysparse.prune.obd`.
    """
    from tinysparse.prune.obd import obd_scores as saliency_scores

    return saliency_scores(model, names, **options)


SCORES: dict[str, ScoreFunction] = {
    "magnitude": magnitude_scores,
    "random": random_scores,
    "obd": obd_scores,
}


def get_score_function(method: str) -> ScoreFunction:
    """The score function of ``method`` (one of :data:`SCORES`)."""
    try:
        return SCORES[method]
    except KeyError:
        raise ValueError(f"method: unknown {method!r}; choose one of {sorted(SCORES)}") from None
