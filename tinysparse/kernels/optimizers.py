"""The optimisers' update rules in plain NumPy: the readable specification of the Numba twins.

Each rule updates one parameter in place, as flat arrays of the same length: the weights
``w``, their gradient ``g`` and the optimiser's per-weight state (SGD's velocity, Adam's
two moments). It knows nothing of layers or sparsity — a sparse layer's parameter is
simply the vector of its kept weights. The forms are PyTorch's (``torch.optim.SGD`` and
``torch.optim.Adam``), operation for operation, so one step from the same numbers gives
the same result; :mod:`tinysparse.optim` computes the step's scalars (in the weights'
dtype) and calls the rule. The compiled twins (``numba_kernels.py``) do the same
arithmetic in the same order in one pass, without temporaries; the tests hold them equal
bit for bit.
"""

from __future__ import annotations

import numpy as np


def sgd_update(w: np.ndarray, g: np.ndarray, velocity: np.ndarray, lr: float,
               momentum: float, weight_decay: float, nesterov: bool, first_step: bool) -> None:
    """SGD with momentum μ, weight decay λ and learning rate η, in place::

        g ← g + λ w
        v ← μ v + g                (v ← g on the first step)
        w ← w − η (g + μ v)        with Nesterov momentum, else  w ← w − η v
    """
    if weight_decay:
        g = g + weight_decay * w                        # g ← g + λ w
    if momentum:
        if first_step:
            velocity[:] = g                             # v ← g
        else:
            velocity *= momentum                        # v ← μ v + g
            velocity += g
        g = g + momentum * velocity if nesterov else velocity
    w -= lr * g                                         # w ← w − η g


def adam_update(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray,
                lr_corrected: float, beta1: float, one_minus_beta1: float, beta2: float,
                one_minus_beta2: float, sqrt_correction2: float, eps: float,
                weight_decay: float) -> None:
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, in place::

        g ← g + λ w
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        w ← w − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)

    The caller passes the step's scalars ready-made: ``lr_corrected = η / (1 − β₁ᵗ)`` and
    ``sqrt_correction2 = √(1 − β₂ᵗ)``. The last line is m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ),
    v̂ = v / (1 − β₂ᵗ), in the order of operations ``torch.optim.Adam`` uses.
    """
    if weight_decay:
        g = g + weight_decay * w                        # g ← g + λ w
    m *= beta1                                          # m ← β₁ m + (1 − β₁) g
    m += one_minus_beta1 * g
    v *= beta2                                          # v ← β₂ v + (1 − β₂) g²
    v += one_minus_beta2 * g * g
    denominator = np.sqrt(v) / sqrt_correction2 + eps   # √v̂ + ε, scaled by √(1 − β₂ᵗ)
    w -= lr_corrected * (m / denominator)               # w ← w − η m̂ / (√v̂ + ε)
