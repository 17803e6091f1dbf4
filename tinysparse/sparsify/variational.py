"""Sparse variational dropout as a recipe (Molchanov, Ashukha & Vetrov 2017): train a
network whose every weight has its own dropout rate, then prune the weights whose rate
went to one. The result is an ordinary pruned model.

1. (Optionally train the network plainly first, ``pretrain_epochs``.)
2. Replace its Linear/Conv2d layers by their variational twins
   (:func:`tinysparse.nn.to_variational`: θ = the weights, log σ² = −10).
3. Train on the ELBO per training example, with a KL weight that rises linearly from 0
   over the first ``warmup`` fraction of the steps (the paper's warm-up)::

       loss = cross-entropy(batch) + kl_weight · warm-up(step) · KL(q ‖ p) / N

   where N is the number of training examples (``kl_weight = 1`` is the paper's ELBO;
   smaller values trade sparsity for accuracy).
4. Turn the layers back into ordinary ones with weight θ and mask ``log α ≤ threshold``
   (:func:`tinysparse.nn.from_variational`, :func:`tinysparse.prune.apply_masks`).

Measured here (LeNet-300-100 on mnist-5k from a fresh Glorot-initialised network, 100
epochs, batch 100, Adam 1e-3, warm-up over 30%; seeds 0, 1, 2): ``kl_weight=1`` (the
paper's ELBO) keeps 0.5% of the weights (185-201x) at test accuracy 0.925, 0.915, 0.925;
``kl_weight=0.3`` keeps 1.5-1.8% (55-65x; fc1 1.3-1.6%, fc2 2.4-2.6%, fc3 40-44%, near
Molchanov et al.'s 1.1% / 2.8% / 38% on the full MNIST) at 0.934, 0.932, 0.937;
``kl_weight=0.1`` (seed 0) 27x at 0.945. Twenty epochs of plain training first
(``pretrain_epochs=20``) with ``kl_weight=1``: 142-169x at 0.925, 0.922, 0.929.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, cross_entropy
from tinysparse.autograd.nn_ops import LOG_ALPHA_RANGE
from tinysparse.data.dataset import Dataset, training_examples
from tinysparse.nn.module import Module
from tinysparse.nn.variational import (
    INITIAL_LOG_SIGMA2,
    PRUNE_THRESHOLD,
    VariationalLayer,
    from_variational,
    log_alphas,
    to_variational,
    variational_kl,
    variational_layers,
)
from tinysparse.prune.masks import apply_masks, layer_sparsities, sparsity_of
from tinysparse.sparsify.method import SparsifyRun
from tinysparse.train import TrainingWarning, evaluate, fit

#: bins of the log α histograms in ``extra`` (over the clip range [−8, 8])
HISTOGRAM_BINS = 32


def check_options(kl_weight: float, warmup: float, threshold: float, log_sigma2: float,
                  pretrain_epochs: int) -> None:
    """A ValueError naming the first option out of its range."""
    if not (isinstance(kl_weight, int | float) and math.isfinite(kl_weight) and kl_weight >= 0):
        raise ValueError(f"kl_weight: expected a finite number >= 0 (1 is the paper's ELBO), "
                         f"got {kl_weight!r}")
    if not (isinstance(warmup, int | float) and 0 <= warmup <= 1):
        raise ValueError(f"warmup: expected the fraction of training over which the KL "
                         f"weight rises, in [0, 1], got {warmup!r}")
    for name, value in (("threshold", threshold), ("log_sigma2", log_sigma2)):
        if not (isinstance(value, int | float) and math.isfinite(value)):
            raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if isinstance(pretrain_epochs, bool) or not isinstance(pretrain_epochs, int) or \
            pretrain_epochs < 0:
        raise ValueError(f"pretrain_epochs: expected an integer >= 0, got {pretrain_epochs!r}")


def kl_warmup(step: int, total_steps: int, warmup: float) -> float:
    """The KL term's share at ``step``: rises linearly from 0 to 1 over the first
    ``warmup`` fraction of ``total_steps``, then stays at 1."""
    warmup_steps = warmup * total_steps
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def log_alpha_histograms(model: Module, bins: int = HISTOGRAM_BINS) -> dict[str, dict]:
    """Per variational layer, the histogram of log α over [−8, 8]: ``edges`` and ``counts``."""
    edges = np.linspace(*LOG_ALPHA_RANGE, bins + 1)
    return {name: {"edges": edges.tolist(),
                   "counts": np.histogram(values, bins=edges)[0].tolist()}
            for name, values in log_alphas(model).items()}


def run(model: Module, data: Dataset, *, epochs: int = 100, lr: float = 1e-3,
        batch_size: int = 100, seed: int = 0, quiet: bool = False, kl_weight: float = 1.0,
        warmup: float = 0.3, threshold: float = PRUNE_THRESHOLD,
        log_sigma2: float = INITIAL_LOG_SIGMA2, pretrain_epochs: int = 0) -> SparsifyRun:
    """Train ``model`` with sparse variational dropout and prune it where log α > threshold.

    Parameters
    ----------
    model : Module
        A dense network (Linear/Conv2d layers, no masks), trained in place; it ends as an
        ordinary pruned model (masks on its Linear/Conv2d, sparse kernels where sparse).
    data : Dataset
        Trains on the training split, reports accuracies on the test split.
    epochs, lr, batch_size, seed, quiet
        For the variational training (Adam); ``seed`` also seeds the layers' noise.
    kl_weight : float
        Multiplies KL / N in the per-example loss (1: the ELBO of the paper).
    warmup : float
        Fraction of the variational training over which the KL weight rises from 0.
    threshold : float
        Prune the weights with log α above it (3 in the paper).
    log_sigma2 : float
        Initial log σ² of every weight.
    pretrain_epochs : int
        Train the dense network plainly for this many epochs first (0: start from the
        model as given).

    Returns
    -------
    SparsifyRun
        ``unpruned_test_accuracy``: the trained θ without masks; ``pruned_test_accuracy``
        and ``test_accuracy``: after masking log α > threshold. ``extra`` holds the log α
        histograms, each layer's kept fraction and the settings.
    """
    check_options(kl_weight, warmup, threshold, log_sigma2, pretrain_epochs)
    if not isinstance(data, Dataset):
        raise ValueError("data: expected a Dataset (the test split gives the accuracies)")
    if isinstance(model, VariationalLayer) or not list(model.children()):
        raise ValueError(f"model: expected a network of layers (e.g. a Sequential), got "
                         f"{model.describe()}; wrap a single layer in a Sequential")
    started = time.perf_counter()
    n_train = len(training_examples(data)[0])
    extra: dict[str, Any] = {"kl_weight": kl_weight, "kl_weight_per_example": kl_weight / n_train,
                             "n_train": n_train, "warmup": warmup, "threshold": threshold,
                             "log_sigma2": log_sigma2, "pretrain_epochs": pretrain_epochs}
    if pretrain_epochs:
        fit(model, data, epochs=pretrain_epochs, lr=lr, batch_size=batch_size, seed=seed,
            quiet=quiet, desc="pretrain")
        extra["pretrained_test_accuracy"] = evaluate(model, *data.test)["accuracy"]

    to_variational(model, log_sigma2=log_sigma2, threshold=threshold, seed=seed)
    steps_per_epoch = math.ceil(n_train / batch_size)
    total_steps = epochs * steps_per_epoch
    progress = {"step": 0}
    per_epoch: list[dict[str, Any]] = []

    def elbo_per_example(output: Tensor, target: np.ndarray) -> Tensor:
        # −ELBO / N = cross-entropy of the batch + KL / N (the KL weighed during warm-up)
        share = kl_weight * kl_warmup(progress["step"], total_steps, warmup)
        data_term = cross_entropy(output, target)
        return data_term + variational_kl(model) * (share / n_train) if share else data_term

    def after_step(step: int) -> None:
        progress["step"] = step
        if step % steps_per_epoch == 0:
            layers = variational_layers(model).values()
            per_epoch.append({
                "kl_share": kl_warmup(step, total_steps, warmup),
                "kl": float(variational_kl(model).data),
                "kept_fraction": (sum(int(layer.keep_mask().sum()) for layer in layers)
                                  / sum(layer.theta.size for layer in layers)),
            })

    with warnings.catch_warnings():
        # The objective changes while the KL weight rises, so the last epoch's loss is not
        # comparable with the first batch's (fit's "ended worse than it started" check).
        warnings.simplefilter("ignore", TrainingWarning)
        history = fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                      quiet=quiet, loss=elbo_per_example, on_step=after_step,
                      desc="variational dropout")
    extra["log_alpha_histograms"] = log_alpha_histograms(model)
    extra["kept_fractions"] = {name: layer.kept_fraction()
                               for name, layer in variational_layers(model).items()}
    extra["variational_test_accuracy"] = evaluate(model, *data.test)["accuracy"]

    _, masks = from_variational(model)
    unpruned = evaluate(model, *data.test)["accuracy"]
    apply_masks(model, masks, allow_empty_layers=True)
    pruned = evaluate(model, *data.test)["accuracy"]
    sparsity = sparsity_of(model)
    extra["seconds"] = time.perf_counter() - started
    records = [{**record, **stats} for record, stats in zip(history.epochs, per_epoch)]
    return SparsifyRun(
        method="variational-dropout", test_accuracy=pruned, sparsity=sparsity,
        compression=1.0 / max(1.0 - sparsity, 1e-12), layers=layer_sparsities(model),
        unpruned_test_accuracy=unpruned, pruned_test_accuracy=pruned, history=records,
        extra=extra)
