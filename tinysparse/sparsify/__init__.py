"""Methods that *learn* sparsity while training, each ending in an ordinary pruned model.

Pruning (:mod:`tinysparse.prune`) removes weights from a trained network. The methods here
train the network so that it becomes sparse, or robust to being pruned: targeted dropout
(Gomez et al. 2019), sparse variational dropout (Molchanov et al. 2017), L0 gates (Louizos
et al. 2018) and Ising-dropout (Salehinejad & Valaee 2019). Each ends where every pruning
method ends: masks on ordinary layers (:func:`tinysparse.prune.apply_masks`), so the
sparsity report, the sparse kernels, save/load and the lessons understand the result.

Every method is a row of :data:`METHODS` with one function
``run(model, data, *, epochs, lr, batch_size, seed, quiet, **options) -> SparsifyRun``
that trains ``model`` (built by the caller) in place and returns what it measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SparsifyRun:
    """What a sparsifying method did; accuracies are on the test split, fractions in [0, 1].

    ``unpruned_test_accuracy`` and ``pruned_test_accuracy`` are set by the methods that
    train a dense network and prune it afterwards (the test accuracy before and right after
    that prune); ``test_accuracy`` is the final model's. ``sparsity`` and ``layers`` count
    the prunable weights (as :func:`tinysparse.prune.sparsity_of` and
    :func:`tinysparse.prune.layer_sparsities`), ``compression`` = weights / non-zeros.
    """

    method: str
    test_accuracy: float
    sparsity: float
    compression: float
    layers: dict[str, float] = field(default_factory=dict)
    unpruned_test_accuracy: float | None = None
    pruned_test_accuracy: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific figures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Option:
    """One of a method's own options, as ``run`` takes it and the command line shows it
    (``--<name with dashes>``); ``default`` is the paper's."""

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str


@dataclass(frozen=True)
class SparsifyMethod:
    """One method: its name, a one-line summary (for the CLI's help), its function, and
    the options ``run`` takes beyond the training ones."""

    name: str
    summary: str
    run: Callable[..., SparsifyRun]
    options: tuple[Option, ...] = ()


#: The table of sparsifying methods (filled as they land).
METHODS: dict[str, SparsifyMethod] = {}

__all__ = ["METHODS", "Option", "SparsifyMethod", "SparsifyRun"]
