"""Inputs and PyTorch twins for the dropout family's rows of ``op_cases.py`` (kept here so
that those rows stay below their marker)."""

from __future__ import annotations

import numpy as np

from tinysparse.nn.dropout import TargetedDropout
from tinysparse.sparse import Mask, sparse_linear, structure_of


def bernoulli(p, *shape):
    """A frozen keep-mask: True with probability 1 − p (a boolean array: no gradient)."""
    return lambda rng: rng.random(shape) >= p


#: a fixed 4 × 6 sparse structure (about half the weights kept) for the sparse op row
SPARSE_STRUCTURE = structure_of(Mask(np.random.default_rng(3).random((4, 6)) < 0.5))


def sparse_linear_fixed(x, values, bias):
    """The sparse linear op on SPARSE_STRUCTURE."""
    return sparse_linear(x, values, bias, SPARSE_STRUCTURE)


def dense_from_values(torch, values):
    """The dense (4 × 6) weight holding ``values`` at SPARSE_STRUCTURE's non-zeros, built
    differentiably in torch."""
    rows = np.repeat(np.arange(4), np.diff(SPARSE_STRUCTURE.indptr))
    index = (torch.tensor(rows), torch.tensor(SPARSE_STRUCTURE.indices))
    return torch.zeros((4, 6), dtype=values.dtype).index_put(index, values)


def targeted_inputs(variant, alpha, conv=False):
    """x, w, b and targeted dropout's keep-mask for w (γ = 0.5, drop rate ``alpha``), drawn
    once from w and then frozen, so the gradient check sees a fixed mask."""

    def make(rng):
        if conv:
            x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((4, 2, 3, 3))
        else:
            x, w = rng.standard_normal((5, 8)), rng.standard_normal((3, 8))
        keep = TargetedDropout(0.5, alpha, variant, seed=1).keep(w, None)
        return [x, w, rng.standard_normal(len(w)), keep]

    return make
