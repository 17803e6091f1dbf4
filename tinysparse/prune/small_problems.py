"""Hassibi & Stork's small problems: which method removes the most weights from XOR and
MONK-1 networks while the training set stays 100% correct?

Each method deletes one weight at a time from a trained net — biases count as weights, as
in the paper (the 17-3-1 MONK net has 58) — without retraining: OBS moves the other
weights to compensate, OBD and magnitude pruning do not. After every deletion the
curvature is recomputed at the new weights (the paper's "go to step 2").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinysparse.autograd import default_dtype
from tinysparse.data.dataset import Dataset
from tinysparse.nn.layers import ACTIVATIONS, Linear, Sequential, Sigmoid
from tinysparse.nn.module import Module, clone
from tinysparse.prune.masks import sparsity_of
from tinysparse.prune.obd import obd_prune
from tinysparse.prune.obs import obs_prune
from tinysparse.prune.pruning import prune
from tinysparse.train import fit

SMALL_METHODS = ("obs", "obd", "magnitude")


def tiny_net(inputs: int, hidden: int, seed: int = 0, activation: str = "tanh") -> Sequential:
    """inputs-hidden-1 with a sigmoid output, in float64 (for MSE on 0/1 targets)."""
    rng = np.random.default_rng(seed)
    with default_dtype(np.float64):
        return Sequential(
            ("fc1", Linear(inputs, hidden, init="glorot_uniform", rng=rng)),
            ("act1", ACTIVATIONS[activation]()),
            ("fc2", Linear(hidden, 1, init="glorot_uniform", rng=rng)),
            ("out", Sigmoid()),
        )


def targets(labels: np.ndarray) -> np.ndarray:
    """0/1 labels as a column of float targets for the sigmoid output."""
    return labels.astype(np.float64)[:, None]


def binary_accuracy(model: Module, x: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose output is on the right side of 0.5."""
    return float(np.mean((model(x).data[:, 0] > 0.5) == labels))


def train_tiny(model: Module, data: Dataset, epochs: int = 3000, lr: float = 0.05,
               seed: int = 0) -> float:
    """Full-batch Adam on the mean squared error; returns the training accuracy."""
    fit(model, (data.x_train, targets(data.y_train)), epochs=epochs,
        batch_size=len(data.x_train), loss="mse", lr=lr, seed=seed, quiet=True)
    return binary_accuracy(model, data.x_train, data.y_train)


def trained_tiny_net(data: Dataset, hidden: int, seed: int = 0, activation: str = "tanh",
                     epochs: int = 3000, lr: float = 0.05, attempts: int = 20) -> Sequential:
    """A net trained to 100% training accuracy (trying seeds seed, seed+1, … if one gets
    stuck in a local minimum, as XOR nets sometimes do)."""
    for attempt in range(attempts):
        model = tiny_net(data.x_train.shape[1], hidden, seed + attempt, activation)
        if train_tiny(model, data, epochs, lr, seed + attempt) == 1.0:
            return model
    raise RuntimeError(f"no {data.name} net reached 100% training accuracy in {attempts} "
                       f"attempts")


@dataclass
class OneAtATime:
    """The trajectory of one method: accuracy and loss after each deletion."""

    method: str
    total: int
    remaining: list[int] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def weights_at_full_accuracy(self) -> int:
        """Fewest weights left while the training set was still 100% correct."""
        best = self.total
        for remaining, accuracy in zip(self.remaining, self.train_accuracy):
            if accuracy < 1.0:
                break
            best = remaining
        return best


def _names(model: Module) -> list[str]:
    return [n for n, _ in model.named_parameters()]


def _removed(before: Module, after: Module) -> list[str]:
    """Names like ``fc1.weight[2, 0]`` of the weights newly masked in ``after``."""
    old = dict(before.named_masks())
    result = []
    for name, mask in after.named_masks():
        newly = ~mask.keep if name not in old else old[name].keep & ~mask.keep
        result += [f"{name}[{', '.join(map(str, idx))}]" for idx in np.argwhere(newly)]
    return result


def prune_one_at_a_time(model: Module, data: Dataset, method: str,
                        hessian: str = "gauss-newton", damping: float = 1e-6,
                        stop_below: float = 1.0) -> OneAtATime:
    """Delete weights one by one with ``method`` until training accuracy < ``stop_below``."""
    if method not in SMALL_METHODS:
        raise ValueError(f"method: unknown {method!r}; choose one of {list(SMALL_METHODS)}")
    model = clone(model)
    names = _names(model)
    total = sum(model.get_parameter(n).size for n in names)
    x, y = data.x_train, data.y_train
    train = (x, targets(y))
    trajectory = OneAtATime(method, total)
    for deleted in range(1, total):
        sparsity = deleted / total
        before = clone(model)
        if method == "obs":
            obs_prune(model, sparsity, train, parameters=names, prunable=names, hessian=hessian,
                      loss="mse", damping=damping, allow_empty_layers=True)
        elif method == "obd":
            obd_prune(model, sparsity, train, scope="global", loss="mse", parameters=names,
                      kind="gauss-newton" if hessian == "gauss-newton" else "exact",
                      allow_empty_layers=True)
        else:
            prune(model, sparsity, scope="global", parameters=names, allow_empty_layers=True)
        trajectory.remaining.append(total - round(sparsity_of(model, names) * total))
        trajectory.train_accuracy.append(binary_accuracy(model, x, y))
        trajectory.removed += _removed(before, model)
        if trajectory.train_accuracy[-1] < stop_below:
            break
    return trajectory
