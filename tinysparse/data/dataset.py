"""The Dataset container and a seeded batch iterator."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass
class Dataset:
    """A train/test split: ``x_*`` inputs, ``y_*`` targets (class indices or numbers).

    Attributes
    ----------
    name : str
    x_train, y_train, x_test, y_test : np.ndarray
    num_classes : int or None
        None for regression targets.
    description : str
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None = None
    description: str = ""
    info: dict = field(default_factory=dict)

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_test, self.y_test

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: train {self.x_train.shape}, test {self.x_test.shape}, "
            f"classes={self.num_classes})"
        )


def training_examples(data: Dataset | tuple[np.ndarray, np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) arrays of ``data``: a Dataset's training split, or an (x, y) pair as given.

    Raises a ValueError when there is no example (what would a Hessian or a training run
    be made of?).
    """
    x, y = data.train if isinstance(data, Dataset) else data
    x, y = np.asarray(x), np.asarray(y)
    if len(x) == 0:
        raise ValueError("data: no examples")
    if len(x) != len(y):
        raise ValueError(f"data: {len(x)} inputs but {len(y)} targets")
    return x, y


def train_validation_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out a random ``fraction`` of (x, y) for validation: returns (train, validation)."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction: expected a number in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(fraction * len(x))))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def batch_indices(
    n: int,
    batch_size: int,
    shuffle: bool = True,
    rng: np.random.Generator | int | None = None,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Yield the row indices of each mini-batch of ``n`` examples; with ``shuffle``, in an
    order drawn from ``rng`` (one permutation per call: the same seed, the same order)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if shuffle:
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        order = generator.permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def held_out_indices(examples: int, count: int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Split ``examples`` indices into (kept, held out): ``count`` of them drawn at random
    (seeded), both in increasing order. The same seed always holds out the same examples;
    ``tinysparse train --validation N`` records them in the saved model."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ValueError(f"count: expected a positive integer, got {count!r}")
    if count >= examples:
        raise ValueError(f"count: holding out {count} of {examples} examples would leave none "
                         f"to train on")
    held_out = np.sort(np.random.default_rng(seed).permutation(examples)[:count])
    kept = np.setdiff1d(np.arange(examples), held_out, assume_unique=True)
    return kept, held_out


def split_by_class(data: Dataset, known: Iterable[int]) -> tuple[Dataset, Dataset]:
    """Two datasets from one: the examples of the ``known`` classes, and those of all the
    others (each keeps its train/test split, its labels and ``num_classes``). Train on the
    first and the second's digits are classes the model never saw: out-of-distribution
    inputs, e.g. ``split_by_class(data, range(5))`` (digits 0-4 known, 5-9 not)."""
    known = np.unique(np.asarray(list(known), dtype=np.int64))
    if known.size == 0:
        raise ValueError("known: expected at least one class")
    classes = np.unique(np.concatenate([data.y_train, data.y_test]))
    if not np.isin(known, classes).all():
        raise ValueError(f"known: classes {sorted(set(known.tolist()) - set(classes.tolist()))} "
                         f"do not occur in {data.name}")
    if np.isin(classes, known).all():
        raise ValueError(f"known: {known.tolist()} are all the classes of {data.name}; none "
                         f"would be left out")

    def part(keep_known: bool, label: str) -> Dataset:
        train = np.isin(data.y_train, known) == keep_known
        test = np.isin(data.y_test, known) == keep_known
        return replace(data, name=f"{data.name} ({label})", x_train=data.x_train[train],
                       y_train=data.y_train[train], x_test=data.x_test[test],
                       y_test=data.y_test[test],
                       description=f"{data.description}; {label}", info=dict(data.info))

    names = ",".join(map(str, known.tolist()))
    return part(True, f"classes {names}"), part(False, f"classes other than {names}")


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    rng: np.random.Generator | int | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x, y) mini-batches; with ``shuffle``, in an order drawn from ``rng``.

    The same seed gives the same order, so training is reproducible.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if len(x) != len(y):
        raise ValueError(f"batches: {len(x)} inputs but {len(y)} targets")
    for index in batch_indices(len(x), batch_size, shuffle, rng, drop_last):
        yield x[index], y[index]
