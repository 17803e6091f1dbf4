"""How important is each weight? The scores of the simplest methods.

A score function takes the model and the names of the weights to prune and returns one
array per name, shaped like the weight, where **higher means keep**. Everything else —
layer-wise or global thresholds, respecting earlier masks — is shared code in
:mod:`tinysparse.prune.selection`; the table of methods is in
:mod:`tinysparse.prune.pruning` (OBD's saliency is in :mod:`tinysparse.prune.obd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinysparse.nn.module import Module


def magnitude_scores(model: Module, names: Sequence[str], **_: Any) -> dict[str, np.ndarray]:
    """|w|: small weights matter least (Han et al. 2015; Janowsky 1989)."""
    weights = model.state_dict()
    return {name: np.abs(weights[name]) for name in names}


def random_scores(
    model: Module, names: Sequence[str], seed: int = 0, **_: Any
) -> dict[str, np.ndarray]:
    """Uniform random scores: the baseline every real criterion must beat."""
    rng = np.random.default_rng(seed)
    shapes = model.state_shapes()
    return {name: rng.random(shapes[name]) for name in names}
