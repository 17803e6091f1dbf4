"""Small synthetic problems whose answers are known: XOR, spirals, a linear teacher."""

from __future__ import annotations

import numpy as np

from tinysparse.data.dataset import Dataset


def xor(bipolar: bool = False) -> Dataset:
    """The four XOR points; label 1 when exactly one input is on.

    With ``bipolar`` the inputs are ±1 instead of 0/1. Train and test are the same four
    points: the question is only whether a network can represent the function.
    """
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    if bipolar:
        x = 2 * x - 1
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return Dataset("xor", x, y, x.copy(), y.copy(), num_classes=2,
                   description="XOR of two inputs (4 points)")


MONK_VALUES = (3, 3, 2, 3, 4, 2)  # values of the attributes a1 … a6


def monk1(train_size: int = 124, seed: int = 0) -> Dataset:
    """A MONK-1-style problem (Thrun et al. 1991): six discrete attributes, one-hot encoded
    into 17 inputs; the class is 1 when ``a1 == a2`` or ``a5 == 1``.

    All 432 attribute combinations exist; ``train_size`` of them (drawn with ``seed``) form
    the training set — 124, as in the original benchmark — and all 432 the test set. The
    17-3-1 network of Hassibi & Stork has 58 weights (biases included).
    """
    grids = np.meshgrid(*[np.arange(1, v + 1) for v in MONK_VALUES], indexing="ij")
    attributes = np.stack([g.ravel() for g in grids], axis=1)  # (432, 6), values from 1
    labels = ((attributes[:, 0] == attributes[:, 1]) | (attributes[:, 4] == 1)).astype(np.int64)
    one_hot = np.concatenate([np.eye(v)[attributes[:, i] - 1]
                              for i, v in enumerate(MONK_VALUES)], axis=1)
    if not 0 < train_size <= len(one_hot):
        raise ValueError(f"train_size: expected 1 … {len(one_hot)}, got {train_size}")
    train = np.sort(np.random.default_rng(seed).choice(len(one_hot), train_size, replace=False))
    return Dataset("monk1", one_hot[train], labels[train], one_hot, labels, num_classes=2,
                   description="MONK-1-style rule (a1 == a2 or a5 == 1), 17 one-hot inputs",
                   info={"attributes": attributes})


def spirals(n_per_class: int = 200, classes: int = 2, noise: float = 0.2, seed: int = 0,
            test_fraction: float = 0.25) -> Dataset:
    """Interleaved spiral arms in 2-D, one per class (a classic non-linear toy problem)."""
    if n_per_class < 2 or classes < 2:
        raise ValueError(f"spirals: need n_per_class >= 2 and classes >= 2, got "
                         f"{n_per_class}, {classes}")
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.05, 1.0, n_per_class)
    xs, ys = [], []
    for c in range(classes):
        angle = np.linspace(0, 3 * np.pi, n_per_class) + 2 * np.pi * c / classes
        angle = angle + noise * rng.standard_normal(n_per_class)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        ys.append(np.full(n_per_class, c))
    x = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys).astype(np.int64)
    order = rng.permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return Dataset("spirals", x[train], y[train], x[test], y[test], num_classes=classes,
                   description=f"{classes} interleaved spirals, {n_per_class} points each")


def linear_teacher(n: int = 512, inputs: int = 10, outputs: int = 1, noise: float = 0.1,
                   seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """Regression targets y = x W*ᵀ + noise from a random linear "teacher" W*.

    A linear model trained on it with mean squared error has the Hessian
    ``2 XᵀX / N`` exactly, which is what the second-order tests compare against. The
    teacher's weight is in ``dataset.info["teacher_weight"]`` (shape (outputs, inputs)).
    """
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((outputs, inputs))
    x = rng.standard_normal((n, inputs))
    y = x @ teacher.T + noise * rng.standard_normal((n, outputs))
    n_test = int(round(test_fraction * n))
    return Dataset("teacher", x[n_test:], y[n_test:], x[:n_test], y[:n_test],
                   num_classes=None, description=f"linear teacher {inputs} -> {outputs}",
                   info={"teacher_weight": teacher})
