"""The shape of a sparsifying method: its row in the table, its options, what it reports."""

from __future__ import annotations

import math
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


def positive_integer(text: Any, name: str = "value") -> int:
    """An option's text as a positive integer, or a ValueError naming the option."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {text!r}")
    return value


def number(text: Any, name: str = "value", low: float = -math.inf, high: float = math.inf,
           closed: bool = True) -> float:
    """An option's text as a finite number in [low, high] (or (low, high) when not
    ``closed``), or a ValueError naming the option."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    inside = low <= value <= high if closed else low < value < high
    if not math.isfinite(value) or not inside:
        interval = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"{name}: expected a number in {interval}, got {text!r}")
    return value


def non_negative_integer(text: Any, name: str = "value") -> int:
    """An option's text as an integer >= 0, or a ValueError naming the option."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {text!r}")
    return value


def yes_no(text: Any, name: str = "value") -> bool:
    """An option's text (``yes``/``no``, ``true``/``false``, ``1``/``0``) as a boolean."""
    answers = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
    answer = answers.get(str(text).strip().lower())
    if answer is None:
        raise ValueError(f"{name}: expected yes or no, got {text!r}")
    return answer


@dataclass(frozen=True)
class Option:
    """One of a method's own options, as ``run`` takes it (``name``) and the command line
    shows it (``--<flag>``, by default the name with dashes); ``type`` turns the text into
    the value (raising a ValueError that names the option), ``default`` is the paper's,
    ``choices`` the values it takes when they are few."""

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    flag: str | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def command_line_flag(self) -> str:
        return "--" + (self.flag or self.name).replace("_", "-")


@dataclass(frozen=True)
class SparsifyMethod:
    """One method: its name, a one-line summary (for the CLI's help), its function, the
    options ``run`` takes beyond the training ones, and the training settings it needs
    (``epochs``, ``batch_size``, ``lr``) where they differ from plain training's."""

    name: str
    summary: str
    run: Callable[..., SparsifyRun]
    options: tuple[Option, ...] = ()
    training: dict[str, Any] = field(default_factory=dict)
