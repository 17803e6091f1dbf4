"""Datasets: MNIST (downloaded and verified), the offline mnist-5k, synthetic problems."""

from __future__ import annotations

from collections.abc import Callable

from tinysparse.data.dataset import (
    Dataset,
    batch_indices,
    batches,
    held_out_indices,
    split_by_class,
    train_validation_split,
    training_examples,
)
from tinysparse.data.idx import parse_idx, read_idx
from tinysparse.data.mnist import MNIST_FILES, MNIST_MIRRORS, download, fetch_mnist, mnist
from tinysparse.data.mnist5k import TRAIN_PER_CLASS, mnist_5k
from tinysparse.data.storage import DataError, check_writable, data_dir
from tinysparse.data.synthetic import linear_teacher, monk1, spirals, xor

#: the datasets of 28x28 digits, which the LeNets and the command line take
DIGIT_DATASETS = ("mnist-5k", "mnist")
#: their training examples, known before loading them (to check ``--validation N`` first)
TRAINING_EXAMPLES = {"mnist-5k": 10 * TRAIN_PER_CLASS, "mnist": 60_000}

DATASETS: dict[str, Callable[..., Dataset]] = {
    "mnist": mnist,
    "mnist-5k": mnist_5k,
    "xor": xor,
    "spirals": spirals,
    "teacher": linear_teacher,
    "monk1": monk1,
}


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load a dataset by name: one of :data:`DATASETS`."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(f"dataset: unknown {name!r}; choose one of {sorted(DATASETS)}") from None
    return loader(**kwargs)


__all__ = [
    "DATASETS", "DIGIT_DATASETS", "MNIST_FILES", "MNIST_MIRRORS", "TRAINING_EXAMPLES",
    "DataError", "Dataset", "batch_indices", "batches", "check_writable", "data_dir",
    "download", "fetch_mnist", "held_out_indices", "linear_teacher", "load_dataset", "mnist",
    "mnist_5k", "monk1", "parse_idx", "read_idx", "split_by_class", "spirals",
    "train_validation_split", "training_examples", "xor",
]
