"""Training and evaluation loops: ``fit`` and ``evaluate``.

``fit`` runs mini-batch training with a seeded batch order, a tqdm progress bar (off with
``quiet=True``), a history of loss and accuracy, optional validation every epoch (and
every ``eval_every`` steps, which is how the lottery-ticket experiments find their
early-stopping iteration) and early stopping with a patience.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tinysparse.autograd import Tensor, cross_entropy, mse_loss, no_grad
from tinysparse.data.dataset import (
    Dataset,
    batch_indices,
    batches,
    train_validation_split,
    training_examples,
)
from tinysparse.nn.module import Module, check_finite_inputs
from tinysparse.optim import Optimizer, make_optimizer

LossFunction = Callable[[Tensor, np.ndarray], Tensor]
#: ``prepare_batch(x, y, index) -> (inputs, target)``: see :func:`fit`
BatchPreparation = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, Any]]
#: the label of a training example that has none (a distillation transfer set may hold some)
UNLABELLED = -1

LOSSES: dict[str, LossFunction] = {
    "cross_entropy": lambda output, target: cross_entropy(output, target),
    "mse": lambda output, target: mse_loss(output, Tensor(target, dtype=output.dtype)),
}


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


class TrainingWarning(UserWarning):
    """Training ended worse than it started: the last epoch's mean loss is above the loss
    of the very first batch, before any update, by more than twice the spread of the last
    epoch's batch losses."""


@dataclass
class History:
    """What happened during :func:`fit`.

    ``epochs`` holds one record per epoch (``epoch``, ``step``, ``train_loss``,
    ``train_accuracy`` (None when no example had a label), ``val_loss``, ``val_accuracy``,
    ``seconds``); ``evaluations`` one per validation pass (``step``, ``val_loss``,
    ``val_accuracy``). ``best_step`` is the step with the lowest validation loss (the
    early-stopping iteration).
    ``initial_loss`` is the loss of the first batch, before any update; ``warnings`` says
    what went wrong without stopping the run (the loss ending above where it began).
    """

    epochs: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    best_step: int | None = None
    best_val_loss: float = math.inf
    best_val_accuracy: float | None = None
    stopped_early: bool = False
    steps: int = 0
    initial_loss: float | None = None
    warnings: list[str] = field(default_factory=list)

    def column(self, key: str) -> list[Any]:
        """One value per epoch, e.g. ``history.column("train_loss")``."""
        return [record.get(key) for record in self.epochs]

    @property
    def train_loss(self) -> list[float]:
        return self.column("train_loss")

    @property
    def train_accuracy(self) -> list[float]:
        return self.column("train_accuracy")

    @property
    def val_loss(self) -> list[float]:
        return self.column("val_loss")

    @property
    def val_accuracy(self) -> list[float]:
        return self.column("val_accuracy")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _loss_function(loss: str | LossFunction) -> LossFunction:
    if callable(loss):
        return loss
    try:
        return LOSSES[loss]
    except KeyError:
        raise ValueError(f"loss: unknown {loss!r}; choose one of {sorted(LOSSES)}") from None


def _correct(output: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    """Correct predictions, and the rows that have a label to be right about: every row of
    class-index targets but those marked :data:`UNLABELLED`; for regression targets none
    is correct, out of every row."""
    if target.ndim != 1 or target.dtype.kind not in "iu":
        return 0, len(target)
    labelled = target != UNLABELLED
    return (int(np.count_nonzero(output.argmax(axis=1)[labelled] == target[labelled])),
            int(np.count_nonzero(labelled)))


def evaluate(
    model: Module, x: np.ndarray, y: np.ndarray, batch_size: int = 1000,
    loss: str | LossFunction = "cross_entropy",
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on (x, y), in evaluation mode, without a graph.

    Returns
    -------
    dict
        ``{"loss": ..., "accuracy": ...}`` (accuracy is a fraction in [0, 1]; 0 for
        regression targets).
    """
    loss_fn = _loss_function(loss)
    if len(x) == 0:
        raise ValueError("evaluate: got an empty dataset")
    if len(x) != len(y):
        raise ValueError(f"evaluate: {len(x)} inputs but {len(y)} targets")
    x = check_finite_inputs(x, "x")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        with no_grad():
            for xb, yb in batches(x, y, batch_size, shuffle=False):
                output = model(xb)
                total_loss += float(loss_fn(output, yb).data) * len(xb)
                correct += _correct(output.data, yb)[0]
    finally:
        model.train(was_training)
    return {"loss": total_loss / len(x), "accuracy": correct / len(x)}


def fit(
    model: Module,
    data: Dataset | tuple[np.ndarray, np.ndarray],
    *,
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str | Optimizer = "adam",
    lr: float = 1e-3,
    loss: str | LossFunction = "cross_entropy",
    prepare_batch: BatchPreparation | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    validation_split: float = 0.0,
    patience: int | None = None,
    restore_best: bool = False,
    eval_every: int | None = None,
    max_steps: int | None = None,
    on_step: Callable[[int], None] | None = None,
    seed: int = 0,
    quiet: bool = False,
    desc: str = "train",
) -> History:
    """Train ``model`` with mini-batches and return its :class:`History`.

    Parameters
    ----------
    model : Module
    data : Dataset or (x, y)
        Training data (a Dataset's training split; its test split is never used here).
    epochs, batch_size : int
    optimizer : "adam", "sgd" or an Optimizer
        A name builds that optimiser with learning rate ``lr``.
    lr : float
    loss : "cross_entropy", "mse" or callable(output, target) -> scalar Tensor
    prepare_batch : callable(x, y, index) -> (inputs, target), optional
        Turns each mini-batch (the rows ``index`` of the training data, ``x[index]`` and
        ``y[index]``) into what the model is given and what the loss compares its output
        with; by default ``(x[index], y[index])``. Distillation uses it to jitter the
        images and to pair them with the teacher's soft targets (:mod:`tinysparse.distill`).
        The training accuracy is still counted against ``y`` (rows labelled
        :data:`UNLABELLED` do not count; with none labelled it is None).
    validation : (x, y), optional
        Data to validate on after every epoch.
    validation_split : float
        Alternatively, hold out this fraction of the training data (seeded).
    patience : int, optional
        Early stopping: stop when the validation loss has not improved for this many
        epochs.
    restore_best : bool
        At the end, put back the weights that had the lowest validation loss (the
        early-stopping iteration's weights). Needs validation data.
    eval_every : int, optional
        Also validate every this many steps (records go to ``history.evaluations``).
    max_steps : int, optional
        Stop after this many optimiser steps.
    on_step : callable(step), optional
        Called after every optimiser step (gradual pruning uses it).
    seed : int
        Seeds the batch order (and the validation split).
    quiet : bool
        No progress bar.

    Raises
    ------
    TrainingDiverged
        When the loss becomes NaN or infinite.
    """
    x, y = training_examples(data)
    if prepare_batch is not None and validation_split:
        raise ValueError("validation_split: prepare_batch is given each batch's rows of the "
                         "data as passed, which the split would reorder; hold out the "
                         "validation data first and pass validation=(x, y)")
    if validation_split:
        (x, y), validation = train_validation_split(x, y, validation_split, seed)
    if (patience is not None or restore_best) and validation is None:
        raise ValueError("patience/restore_best: early stopping needs validation data "
                         "(pass validation= or validation_split=)")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, model.parameters(), lr)
    loss_fn = _loss_function(loss)
    rng = np.random.default_rng(seed)
    history = History()
    best_state: dict[str, np.ndarray] | None = None
    epochs_without_improvement = 0
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(
        max_steps, epochs * steps_per_epoch)

    def validate() -> dict[str, float]:
        nonlocal best_state
        result = evaluate(model, *validation, loss=loss)
        if result["loss"] < history.best_val_loss:
            history.best_val_loss, history.best_step = result["loss"], history.steps
            history.best_val_accuracy = result["accuracy"]
            if restore_best:
                best_state = model.state_dict()
        return result

    model.train()
    with tqdm(total=total_steps, disable=quiet, desc=desc, unit="step", leave=False) as bar:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            loss_sum, correct, labelled, seen = 0.0, 0, 0, 0
            batch_losses: list[float] = []
            improved_before = history.best_val_loss
            for index in batch_indices(len(x), batch_size, shuffle=True, rng=rng):
                xb, yb = x[index], y[index]
                inputs, target = (xb, yb) if prepare_batch is None else prepare_batch(
                    xb, yb, index)
                output = model(inputs)
                batch_loss = loss_fn(output, target)
                value = float(batch_loss.data)
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"training diverged: the loss became {value} at epoch {epoch}, step "
                        f"{history.steps + 1} (learning rate {optimizer.lr}). Try a smaller "
                        f"learning rate, or check the inputs for NaN/inf values."
                    )
                if history.initial_loss is None:
                    history.initial_loss = value
                optimizer.zero_grad()
                batch_loss.backward()
                optimizer.step()
                history.steps += 1
                loss_sum += value * len(xb)
                batch_losses.append(value)
                right, counted = _correct(output.data, yb)
                correct, labelled = correct + right, labelled + counted
                seen += len(xb)
                bar.update(1)
                if on_step is not None:
                    on_step(history.steps)
                if validation is not None and eval_every and history.steps % eval_every == 0:
                    result = validate()
                    history.evaluations.append({"step": history.steps,
                                                "val_loss": result["loss"],
                                                "val_accuracy": result["accuracy"]})
                if max_steps is not None and history.steps >= max_steps:
                    break
            record: dict[str, Any] = {
                "epoch": epoch, "step": history.steps,
                "train_loss": loss_sum / seen,
                "train_accuracy": correct / labelled if labelled else None,
            }
            if validation is not None:
                result = validate()
                record["val_loss"], record["val_accuracy"] = result["loss"], result["accuracy"]
                if not eval_every or history.steps % eval_every:
                    history.evaluations.append({"step": history.steps,
                                                "val_loss": result["loss"],
                                                "val_accuracy": result["accuracy"]})
            record["seconds"] = time.perf_counter() - started
            history.epochs.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items()
                             if k in ("train_loss", "val_loss", "val_accuracy")})
            if max_steps is not None and history.steps >= max_steps:
                break
            if patience is not None:
                if history.best_val_loss < improved_before:
                    epochs_without_improvement = 0
                else:
                    epochs_without_improvement += 1
                    if epochs_without_improvement >= patience:
                        history.stopped_early = True
                        break
    if best_state is not None:  # the weights of the early-stopping iteration
        model.load_state_dict(best_state)
    last = history.epochs[-1]["train_loss"]
    # One batch's loss scatters around the epoch's mean by about the spread of the batch
    # losses, so only a rise of more than twice that spread is a rise.
    spread = float(np.std(batch_losses, ddof=1)) if len(batch_losses) > 1 else 0.0
    if last > history.initial_loss + 2 * spread:
        message = (f"training ended worse than it started: the last epoch's mean loss "
                   f"{last:.4g} is above the first batch's {history.initial_loss:.4g}, before "
                   f"any update (learning rate {optimizer.lr}: too large? too few steps?)")
        history.warnings.append(message)
        warnings.warn(message, TrainingWarning, stacklevel=2)
    return history


# ---------------------------------------------------------------- a recorded validation split
#: the entry of ``model.config`` that records which training examples were held out
VALIDATION_CONFIG_KEY = "validation"


def record_validation(model: Module, dataset: str, indices: np.ndarray) -> None:
    """Write into ``model.config`` (so :func:`tinysparse.save` keeps it) which training
    examples of ``dataset`` were held out from training: ``config["validation"] =
    {"dataset": ..., "indices": [...]}``, the indices into ``data.x_train``, increasing.
    Older files have no such entry; :func:`recorded_validation` then returns None."""
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.dtype.kind not in "iu" or len(np.unique(indices)) != len(
            indices) or (indices.size and indices.min() < 0):
        raise ValueError("indices: expected distinct non-negative integers")
    config = dict(getattr(model, "config", None) or {})
    config[VALIDATION_CONFIG_KEY] = {"dataset": dataset,
                                     "indices": sorted(int(i) for i in indices)}
    model.config = config


def recorded_validation(model: Module, dataset: str | None = None) -> np.ndarray | None:
    """The held-out training indices that :func:`record_validation` wrote into the model's
    config, or None when it has none (or, with ``dataset``, none of that dataset).

    Raises
    ------
    ValueError
        When the entry is there but malformed (saying what is wrong).
    """
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or VALIDATION_CONFIG_KEY not in config:
        return None
    entry = config[VALIDATION_CONFIG_KEY]
    if not isinstance(entry, dict) or not isinstance(entry.get("dataset"), str) or \
            not isinstance(entry.get("indices"), list):
        raise ValueError("config.validation: expected {\"dataset\": name, \"indices\": "
                         "[...]}")
    if dataset is not None and entry["dataset"] != dataset:
        return None
    indices = entry["indices"]
    if not indices or not all(type(i) is int and i >= 0 for i in indices) or \
            len(set(indices)) != len(indices):
        raise ValueError("config.validation.indices: expected distinct non-negative integers")
    return np.array(indices, dtype=np.int64)
