"""Elementwise activations in NumPy: the readable reference of the compiled twins.

ReLU runs on every hidden activation twice per training step (forward, and the gradient
mask in the backward pass), so its cost is memory traffic: NumPy needs a temporary
boolean array for the mask and runs ``maximum`` against a scalar through a general loop.
The compiled twins read their inputs once and write one output, keeping the input's
memory layout (a feature-major activation stays feature-major).
"""

from __future__ import annotations

import numpy as np


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) elementwise."""
    return np.maximum(x, 0)


def relu_backward(grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The gradient through ReLU: ``grad`` where the output ``out`` is positive, else 0."""
    return grad * (out > 0)
