"""Lottery tickets (Frankle & Carbin 2019) and the experiments that questioned them.

The hypothesis: a dense, randomly initialised network contains a sparse subnetwork — a
"winning ticket" — that, trained *from the same initial weights* θ₀, matches the dense
network. Found by iterative magnitude pruning with rewinding:

1. initialise θ₀ and keep a copy (:func:`snapshot`);
2. train; prune p% of the remaining weights of each layer by magnitude (the output layer
   at half the rate);
3. reset the surviving weights to their values in θ₀ (:func:`rewind_to`) and train again;
4. repeat 2–3.

The controls that tell a ticket from a merely good architecture:

* ``reinit`` — same mask, fresh random weights (Frankle & Carbin: tickets lose their edge);
* ``random_mask`` — θ₀ with a random mask of the same per-layer sparsity;
* ``sign`` — same mask, fresh random magnitudes but the signs of θ₀ (Zhou et al. 2019: the
  signs are what matters);

(with late rewinding, θ_k stands for θ₀ in the ticket and both controls that use it;)

and Zhou et al.'s *supermasks*: the masked but **untrained** θ₀, with masks chosen by
``large_final`` (largest trained |w|) or ``magnitude_increase`` (largest |w_final| − |w₀|).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tinysparse.data.dataset import Dataset, train_validation_split
from tinysparse.nn.init import get_initializer
from tinysparse.nn.models import build_model
from tinysparse.nn.module import Module, clone
from tinysparse.prune.masks import apply_masks, current_masks, remove_masks
from tinysparse.prune.selection import layer_masks, prunable_parameters
from tinysparse.sparse.mask import Mask
from tinysparse.train import evaluate, fit

CONTROLS = ("reinit", "random_mask", "sign")
SUPERMASK_CRITERIA = ("large_final", "magnitude_increase")


# ---------------------------------------------------------------- snapshots and rewinding
def snapshot(model: Module, label: str = "init") -> dict[str, np.ndarray]:
    """Copy the current weights into ``model.snapshots[label]`` (saved with the model)."""
    state = model.state_dict()
    snapshots = getattr(model, "snapshots", None)
    if snapshots is None:
        snapshots = {}
        model.snapshots = snapshots
    snapshots[label] = state
    return state


def rewind_to(model: Module, state: str | Mapping[str, np.ndarray] = "init") -> None:
    """Reset the weights to a snapshot (by label, or a state dict); masks stay, so pruned
    weights stay zero and kept weights take their snapshot values exactly."""
    if isinstance(state, str):
        snapshots = getattr(model, "snapshots", {})
        if state not in snapshots:
            raise KeyError(f"rewind_to: no snapshot {state!r}; the model has "
                           f"{sorted(snapshots)} (take one with snapshot(model, label))")
        state = snapshots[state]
    model.load_state_dict(dict(state))


# ---------------------------------------------------------------- control initialisations
def random_init_state(model: Module, seed: int, init: str = "glorot_normal") -> dict[str,
                                                                                     np.ndarray]:
    """Fresh weights for ``model``'s shapes: ``init`` for weights, zeros for biases."""
    rng = np.random.default_rng(seed)
    initializer = get_initializer(init)
    return {name: (initializer(shape, rng) if len(shape) > 1 else np.zeros(shape))
            for name, shape in model.state_shapes().items()}


def sign_preserving_state(
    reference: Mapping[str, np.ndarray], seed: int, init: str = "glorot_normal"
) -> dict[str, np.ndarray]:
    """Fresh random magnitudes with the signs of ``reference`` (θ₀): |w_new| · sign(w₀)."""
    fresh = np.random.default_rng(seed)
    initializer = get_initializer(init)
    state = {}
    for name, values in reference.items():
        if values.ndim > 1:
            state[name] = np.abs(initializer(values.shape, fresh)) * np.sign(values)
        else:
            state[name] = np.array(values, copy=True)
    return state


def random_masks_like(masks: Mapping[str, Mask], seed: int) -> dict[str, Mask]:
    """Random masks keeping as many weights per layer as ``masks`` do."""
    rng = np.random.default_rng(seed)
    result = {}
    for name, mask in masks.items():
        keep = np.zeros(mask.size, dtype=bool)
        keep[rng.choice(mask.size, size=mask.kept, replace=False)] = True
        result[name] = Mask(keep.reshape(mask.shape))
    return result


def round_sparsities(names: Sequence[str], round_index: int, rate: float,
                     output_rate: float) -> dict[str, float]:
    """After ``round_index`` rounds of pruning ``rate`` of what remains (the last layer at
    ``output_rate``): sparsity 1 − (1 − rate)^round of each parameter."""
    return {name: 1 - (1 - (output_rate if i == len(names) - 1 else rate)) ** round_index
            for i, name in enumerate(names)}


def supermask_masks(
    final_state: Mapping[str, np.ndarray], init_state: Mapping[str, np.ndarray],
    sparsities: Mapping[str, float], criterion: str,
) -> dict[str, Mask]:
    """Zhou et al.'s mask criteria: keep the weights with the largest ``large_final`` =
    |w_final| or ``magnitude_increase`` = |w_final| − |w_init|."""
    if criterion == "large_final":
        scores = {n: np.abs(final_state[n]) for n in sparsities}
    elif criterion == "magnitude_increase":
        scores = {n: np.abs(final_state[n]) - np.abs(init_state[n]) for n in sparsities}
    else:
        raise ValueError(f"criterion: unknown {criterion!r}; choose one of "
                         f"{list(SUPERMASK_CRITERIA)}")
    return layer_masks(scores, dict(sparsities))


# ---------------------------------------------------------------- the experiment
@dataclass
class TrainingOutcome:
    """Test accuracy at the early-stopping iteration (lowest validation loss)."""

    test_accuracy: float
    early_stop_iteration: int
    final_test_accuracy: float


def train_with_early_stop_record(
    model: Module, train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray], epochs: int, lr: float, batch_size: int, seed: int,
    eval_every: int, on_step: Callable[[int], None] | None = None,
) -> TrainingOutcome:
    """Train with Adam, validating every ``eval_every`` steps; report the test accuracy at
    the step with the lowest validation loss (Frankle & Carbin's early-stopping
    iteration) and at the end. The model keeps its weights from the end of training."""
    total_steps = epochs * math.ceil(len(train[0]) / batch_size)
    final_state: dict[str, np.ndarray] = {}

    def record(step: int) -> None:
        if on_step is not None:
            on_step(step)
        if step == total_steps:
            final_state.update(model.state_dict())

    history = fit(model, train, epochs=epochs, batch_size=batch_size, optimizer="adam", lr=lr,
                  validation=validation, eval_every=eval_every, restore_best=True,
                  on_step=record, seed=seed, quiet=True)
    at_early_stop = evaluate(model, *test)["accuracy"]  # restore_best put those weights back
    model.load_state_dict(final_state)
    final = evaluate(model, *test)["accuracy"]
    return TrainingOutcome(at_early_stop, int(history.best_step), final)


@dataclass
class LotteryRound:
    """One round for one seed: how much is left, and how each variant did."""

    round: int
    remaining: float
    layer_remaining: dict[str, float]
    results: dict[str, dict[str, float]] = field(default_factory=dict)


def lottery_ticket_experiment(
    data: Dataset,
    model_name: str = "lenet300",
    model_options: Mapping[str, Any] | None = None,
    rounds: int = 14,
    rate: float = 0.2,
    output_rate: float = 0.1,
    epochs: int = 10,
    lr: float = 1.2e-3,
    batch_size: int = 60,
    seed: int = 0,
    controls: Sequence[str] = CONTROLS,
    supermasks: Sequence[str] = SUPERMASK_CRITERIA,
    validation_fraction: float = 0.1,
    eval_every: int = 50,
    rewind_iteration: int = 0,
    init: str = "glorot_normal",
    progress: Callable[[str], None] | None = None,
) -> list[LotteryRound]:
    """Iterative magnitude pruning with rewinding, and its controls, for one seed.

    Parameters
    ----------
    data : Dataset
        Training split (a ``validation_fraction`` is held out for early stopping) and test.
    model_name : str
        A model of :func:`~tinysparse.nn.build_model` (default LeNet-300-100).
    model_options : dict, optional
        More arguments for it (``sizes`` for an ``"mlp"``).
    rounds : int
        Pruning rounds after the dense round 0.
    rate, output_rate : float
        Fraction of the remaining weights pruned per round (hidden layers, output layer).
    epochs, lr, batch_size :
        Training of every round and control (Adam; F&C: 1.2e-3, batch 60).
    rewind_iteration : int
        0 rewinds to θ₀; k > 0 to the weights after k steps of the dense run ("late
        rewinding"); early-stopping iterations then count from that point.
    controls, supermasks : sequences of names
        Which of :data:`CONTROLS` to train and :data:`SUPERMASK_CRITERIA` to evaluate.

    Returns
    -------
    list of LotteryRound
        Round 0 is the dense network; results per variant hold ``test_accuracy`` (at the
        early-stopping iteration), ``early_stop_iteration`` and ``final_test_accuracy``.
    """
    for name in controls:
        if name not in CONTROLS:
            raise ValueError(f"controls: unknown {name!r}; choose from {list(CONTROLS)}")
    for name in supermasks:
        if name not in SUPERMASK_CRITERIA:
            raise ValueError(f"supermasks: unknown {name!r}; choose from "
                             f"{list(SUPERMASK_CRITERIA)}")
    if not 0 < rate < 1 or not 0 < output_rate < 1:
        raise ValueError(f"rate/output_rate: expected numbers in (0, 1), got {rate}, "
                         f"{output_rate}")
    train, validation = train_validation_split(*data.train, validation_fraction, seed)
    test = data.test
    say = progress or (lambda message: None)

    def run(model: Module, run_seed: int, on_step=None) -> dict[str, float]:
        outcome = train_with_early_stop_record(model, train, validation, test, epochs, lr,
                                               batch_size, run_seed, eval_every, on_step)
        return asdict(outcome)

    ticket = build_model(model_name, seed=seed, init=init, **(model_options or {}))
    names = prunable_parameters(ticket)
    theta_0 = snapshot(ticket, "init")
    rewind_label = "init"

    def capture_rewind_point(step: int) -> None:
        if step == rewind_iteration:
            snapshot(ticket, "rewind")

    results: list[LotteryRound] = []
    started = time.perf_counter()
    dense = LotteryRound(0, 1.0, {n: 1.0 for n in names})
    dense.results["ticket"] = run(ticket, seed, capture_rewind_point if rewind_iteration else None)
    if rewind_iteration:
        if "rewind" not in ticket.snapshots:
            raise ValueError(f"rewind_iteration: {rewind_iteration} is beyond the dense run's "
                             f"steps")
        rewind_label = "rewind"
    dense_final = ticket.state_dict()
    results.append(dense)
    say(f"seed {seed} round 0: dense {dense.results['ticket']['test_accuracy']:.4f}")

    for r in range(1, rounds + 1):
        sparsities = round_sparsities(names, r, rate, output_rate)
        trained = ticket.state_dict()
        masks = layer_masks({n: np.abs(trained[n]) for n in names}, sparsities,
                            current_masks(ticket, names))
        apply_masks(ticket, masks)
        kept = sum(m.kept for m in masks.values())
        total = sum(m.size for m in masks.values())
        record = LotteryRound(r, kept / total, {n: m.density for n, m in masks.items()})
        round_seed = seed + 1000 * r

        rewind_to(ticket, rewind_label)
        record.results["ticket"] = run(ticket, seed)
        for control in controls:
            model = clone(ticket)
            rewind_state = ticket.snapshots[rewind_label]  # θ₀, or θ_k with late rewinding
            if control == "reinit":
                model.load_state_dict(random_init_state(model, round_seed + 1, init))
            elif control == "sign":
                model.load_state_dict(sign_preserving_state(rewind_state, round_seed + 2,
                                                            init))
            else:  # random_mask: the rewind weights with randomly placed survivors
                remove_masks(model)
                model.load_state_dict(rewind_state)
                apply_masks(model, random_masks_like(masks, round_seed + 3))
            record.results[control] = run(model, seed)
        for criterion in supermasks:
            model = clone(ticket)
            remove_masks(model)
            model.load_state_dict(theta_0)
            apply_masks(model, supermask_masks(dense_final, theta_0, sparsities, criterion))
            accuracy = evaluate(model, *test)["accuracy"]
            record.results[f"supermask_{criterion}"] = {"test_accuracy": accuracy}
        results.append(record)
        say(f"seed {seed} round {r}: {record.remaining:.3%} left, ticket "
            f"{record.results['ticket']['test_accuracy']:.4f}, "
            + ", ".join(f"{c} {record.results[c]['test_accuracy']:.4f}" for c in controls)
            + f" ({time.perf_counter() - started:.0f} s)")
    return results


def summarize(runs: Sequence[Sequence[LotteryRound]]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation over seeds, per round and variant."""
    summary = []
    for rounds in zip(*runs):
        first = rounds[0]
        row: dict[str, Any] = {"round": first.round, "remaining": first.remaining,
                               "layer_remaining": first.layer_remaining}
        for variant in first.results:
            stats: dict[str, float] = {}
            for key in first.results[variant]:
                values = np.array([r.results[variant][key] for r in rounds], dtype=float)
                stats[f"{key}_mean"] = float(values.mean())
                # the sample standard deviation (n − 1): the cautious one for a few seeds
                stats[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row[variant] = stats
        summary.append(row)
    return summary
