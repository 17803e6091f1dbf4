"""Soft weight-sharing (Ullrich, Meeds & Welling 2017): retrain the weights under a
Gaussian-mixture prior that is learned with them, then quantise each weight to the mean
of its component.

The prior over every weight ``w`` of the network is a mixture of ``J`` Gaussians,

    p(w) = Σ_j π_j N(w | μ_j, 1/λ_j),

whose component 0 is pinned at ``μ_0 = 0`` with a large fixed mixing proportion ``π_0``
(0.99): weights drawn into it are pruned. The other means, all precisions ``λ_j`` (as
``γ_j = log λ_j``) and the other proportions (``π_j = (1 − π_0) softmax(ρ)_j``) are
learned together with the weights by minimising

    L = cross-entropy (mean over the batch) + τ/N · ( −Σ_i log p(w_i) − log p(λ) ),

``N`` the number of training examples and ``p(λ)`` a Gamma hyper-prior on each precision,
``−log p(λ_j) = (1 − α) γ_j + β λ_j`` up to a constant. Pulled towards the components
while the components move towards the weights, the weights gather into a few tight
clusters (soft weight-sharing), and most into the one at zero (pruning). Afterwards,
components that have become the same are merged, and every weight is set to the mean of
the component with the largest responsibility ``π_j √λ_j exp(−λ_j (w − μ_j)² / 2)``.

Defaults follow the authors' tutorial (github.com/KarenUllrich/
Tutorial-SoftWeightSharingForNNCompression, ``empirical_priors.py``, ``helpers.py``,
``tutorial.ipynb``; checked): 16 components, π_0 = 0.99, initial standard deviations 0.25,
Gamma hyper-priors (α, β) = (5000, 2) for the zero component and (250, 0.1) for the others
(both with their mode at σ ≈ 0.02), τ = 0.003, Adam, 5e-4 for the weights and 3e-3 for the
mixing proportions, components merged when their KL divergence is below 1e-10. The
tutorial spaces the initial means over ±0.6 and puts the prior on biases too; here the
means start evenly between the smallest and the largest weight, and
the prior acts on the weight matrices and kernels only (biases stay floats in the
compressed file).

**Where we differ, and why.** The tutorial trains 30 epochs of 60,000 digits at batch 256,
about 7,000 steps; ``mnist-5k`` has 4,000 training digits, and a few minutes buy about
2,500 steps at batch 64 (the default here: 40 epochs). Adam moves a parameter by about its
learning rate per step, whatever the size of its gradient, so the tutorial's rates set how
far the prior can travel: taking the components from σ = 0.25 to the hyper-priors' 0.02,
a change of 2 ln 12.5 ≈ 5 in γ, needs some 1,700 steps at its 3e-3, and its means move at
most 0.1 in 1,000 steps at 1e-4. In a run of 2,000 steps the weights never get the narrow
zero component that pulls them in: the zero component, with π_0 = 0.99 and σ ≈ 0.02,
still claims every weight within a few hundredths of zero when training stops, and
quantising to it took the weights the network needed (0.458 after 1,900 steps, measured
before this change; 0.10 after 630). With 3e-2 for the log precisions and 1e-3 for the
means (:data:`LEARNING_RATES`) the components reach their width within a few hundred
steps, and the rest of the run gathers the weights: the zero component narrows to
σ ≈ 0.004 around weights that have collapsed onto it. Measured on ``mnist-5k`` from the
dense LeNet-300-100 of ``ts.fit`` (20 epochs), seeds 0, 1, 2: dense 0.953, 0.949, 0.948;
retrained 0.941, 0.937, 0.942; quantised 0.940, 0.927, 0.924, with 93.4% of the weights
pruned onto 12, 12, 10 values and files of 19,142, 19,031, 18,834 bytes (56×, 56×, 57×);
about 100 s of CPU time per run. Quantising still costs seeds 1 and 2 one to two points:
their weights are not yet as tight as seed 0's when the run stops. Lesson 10 shows the run.

:func:`soft_weight_sharing` runs the retraining with ``ts.fit``; :func:`quantise_to_prior`
turns the model into weight-shared layers (:mod:`.sharing`) whose masks prune what the
zero component took, ready for :func:`~tinysparse.compress.save_compressed`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysparse.autograd import (
    Tensor,
    cross_entropy,
    log_softmax,
    mixture_neg_log_prob,
    reshape,
    take,
)
from tinysparse.compress.sharing import SHARED_TWINS, check_shareable
from tinysparse.nn.module import Module, Parameter, copy_bias_name_and_mode, replace_layers
from tinysparse.nn.sparse_layers import SparseLayer
from tinysparse.optim import Adam
from tinysparse.sparse import Mask, density_threshold
from tinysparse.train import History, fit

# ---------------------------------------------------------------- the defaults, in one place
#: J (the zero component included), π_0, and every component's initial σ (the tutorial's)
COMPONENTS, PI_ZERO, INITIAL_STD = 16, 0.99, 0.25
#: the Gamma hyper-priors (α, β) on the precisions, the zero component's and the others'
#: (the tutorial's; modes (α − 1)/β ≈ 2,500, σ ≈ 0.02)
ZERO_HYPER_PRIOR, HYPER_PRIOR = (5e3, 2.0), (2.5e2, 0.1)
#: τ, the prior's weight against the summed cross-entropy (the tutorial's)
TAU = 3e-3
#: Adam's learning rates: weights and mixing proportions as the tutorial's; means and log
#: precisions 10x the tutorial's (1e-4, 3e-3), for a run of ~2,500 steps instead of ~7,000
LEARNING_RATES = {"weights": 5e-4, "means": 1e-3, "log_precisions": 3e-2, "mixing": 3e-3}
#: epochs and batch size of a run on mnist-5k's 4,000 digits: 2,520 steps
EPOCHS, BATCH_SIZE = 40, 64
#: components closer than this KL divergence are merged before quantising (the tutorial's)
MERGE_THRESHOLD = 1e-10


def _with_fixed_first(tensor: Tensor, first: float) -> Tensor:
    """``[first, tensor_0, tensor_1, ...]`` as a graph op of ``tensor`` (no gradient to
    ``first``): gather ``tensor`` with its entry 0 twice, zero the first copy, add ``first``."""
    size = tensor.shape[0]
    gathered = take(tensor, np.concatenate([[0], np.arange(size)]))
    keep = np.concatenate([[0.0], np.ones(size)]).astype(tensor.dtype)
    shift = np.concatenate([[first], np.zeros(size)]).astype(tensor.dtype)
    return gathered * keep + shift


class MixturePrior(Module, abstract=True):
    """A Gaussian mixture over weights with a fixed component at zero. (A Module for its
    parameters; not a layer, so not in the registry of layer types a model file holds.)

    Parameters
    ----------
    components : int >= 2
        J, the zero component included.
    pi_zero : float in (0, 1)
        The zero component's fixed mixing proportion.
    low, high : float
        The other means start evenly spaced over [low, high].
    initial_std : float
        Every component's initial standard deviation.
    dtype : numpy dtype, optional

    Parameters trained: ``means`` (J − 1), ``log_precisions`` γ (J, the zero component's
    first), ``mixing_logits`` ρ (J − 1).
    """

    def __init__(self, components: int = COMPONENTS, pi_zero: float = PI_ZERO,
                 low: float = -0.6, high: float = 0.6, initial_std: float = INITIAL_STD,
                 dtype: Any = None) -> None:
        super().__init__()
        if int(components) != components or components < 2:
            raise ValueError(f"components: expected an integer >= 2, got {components!r}")
        if not 0 < pi_zero < 1:
            raise ValueError(f"pi_zero: expected a number in (0, 1), got {pi_zero!r}")
        if not initial_std > 0 or not low < high:
            raise ValueError(f"expected initial_std > 0 and low < high, got {initial_std}, "
                             f"{low}, {high}")
        self.components, self.pi_zero = int(components), float(pi_zero)
        others = self.components - 1
        self.means = Parameter(np.linspace(low, high, others), dtype=dtype)
        self.log_precisions = Parameter(np.full(self.components, -2 * math.log(initial_std)),
                                        dtype=dtype)
        self.mixing_logits = Parameter(np.zeros(others), dtype=dtype)

    # ---------------------------------------------------------------- the density
    def all_means(self) -> Tensor:
        """μ (J): 0, then the learned means."""
        return _with_fixed_first(self.means, 0.0)

    def log_mixing(self) -> Tensor:
        """log π (J): log π_0, then log(1 − π_0) + log softmax(ρ)."""
        rest = log_softmax(self.mixing_logits) + math.log(1 - self.pi_zero)
        return _with_fixed_first(rest, math.log(self.pi_zero))

    def neg_log_prob(self, weights: Tensor) -> Tensor:
        """``−Σ_i log p(w_i)`` for a 1-D tensor of weights (see
        :func:`mixture_neg_log_prob`)."""
        return mixture_neg_log_prob(weights, self.all_means(), self.log_precisions,
                                    self.log_mixing())

    def hyper_prior(self) -> Tensor:
        """``−log p(λ)`` up to a constant: Gamma(α, β) on each precision, ``(1 − α) γ_j +
        β exp(γ_j)``, with the zero component's stronger (α, β)."""
        alpha = np.array([ZERO_HYPER_PRIOR[0]] + [HYPER_PRIOR[0]] * (self.components - 1))
        beta = np.array([ZERO_HYPER_PRIOR[1]] + [HYPER_PRIOR[1]] * (self.components - 1))
        gamma = self.log_precisions
        dtype = gamma.dtype
        return ((1 - alpha).astype(dtype) * gamma + beta.astype(dtype) * gamma.exp()).sum()

    # ---------------------------------------------------------------- after training
    def merged(self, threshold: float = MERGE_THRESHOLD
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Means, log precisions and log proportions after merging every pair of
        components whose KL divergence ``KL(N_i ‖ N_j)`` is below ``threshold`` (each merged
        group: its total proportion, and its means and precisions weighted by proportion);
        the merged mean nearest zero is then set to exactly zero (the tutorial's
        ``discretesize``). Float64 arrays; the zero component first."""
        means = self.all_means().data.astype(np.float64)
        gamma = self.log_precisions.data.astype(np.float64)
        log_pi = self.log_mixing().data.astype(np.float64)
        precision = np.exp(gamma)
        # KL(N(μ_i, 1/λ_i) ‖ N(μ_j, 1/λ_j)) = ½ (γ_i − γ_j) + λ_j / 2 (1/λ_i + (μ_i − μ_j)²) − ½
        kl = (0.5 * (gamma[:, None] - gamma[None, :])
              + precision[None, :] / 2 * (1 / precision[:, None]
                                          + (means[:, None] - means[None, :]) ** 2) - 0.5)
        group = np.arange(self.components)  # union-find over the close pairs
        for i, j in zip(*np.nonzero(kl < threshold)):
            a, b = group[i], group[j]
            group[group == max(a, b)] = min(a, b)
        merged = [np.flatnonzero(group == g) for g in np.unique(group)]
        weights = [np.exp(log_pi[m] - log_pi[m].max()) for m in merged]
        new_means = np.array([np.sum(means[m] * w) / w.sum() for m, w in zip(merged, weights)])
        new_gamma = np.array([np.log(np.sum(precision[m] * w) / w.sum())
                              for m, w in zip(merged, weights)])
        new_log_pi = np.array([log_pi[m].max() + np.log(w.sum())
                               for m, w in zip(merged, weights)])
        new_means[np.argmin(np.abs(new_means))] = 0.0
        return new_means, new_gamma, new_log_pi


def responsibilities(values: np.ndarray, means: np.ndarray, log_precisions: np.ndarray,
                     log_mixing: np.ndarray) -> np.ndarray:
    """The component with the largest responsibility for each value: the argmax over j of
    ``log π_j + γ_j / 2 − exp(γ_j) (w − μ_j)² / 2``."""
    values = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    scores = (log_mixing + 0.5 * log_precisions
              - 0.5 * np.exp(log_precisions) * (values - means) ** 2)
    return scores.argmax(axis=1)


# ---------------------------------------------------------------- training
def prior_weights(model: Module) -> list[tuple[str, Module]]:
    """The layers whose weights the prior acts on (every Linear/Conv2d, dense or sparse)."""
    return [(name, module) for name, module in model.named_modules()
            if type(module) in SHARED_TWINS]


def kept_weights(layer: Module) -> Tensor:
    """A layer's kept weights as a 1-D graph op (all of them without a mask)."""
    if isinstance(layer, SparseLayer):
        return layer.values
    flat = reshape(layer.weight, (-1,))
    mask = layer._masks.get("weight")
    return flat if mask is None else take(flat, np.flatnonzero(mask.keep))


class _Optimisers:
    """Several Adam optimisers stepped together (one learning rate per group of
    parameters, as the tutorial's); what ``fit`` needs of an optimiser."""

    def __init__(self, groups: Iterable[tuple[list[Parameter], float]]) -> None:
        self.optimisers = [Adam(params, lr=lr) for params, lr in groups]
        self.lr = self.optimisers[0].lr

    def zero_grad(self) -> None:
        for optimiser in self.optimisers:
            optimiser.zero_grad()

    def step(self) -> None:
        for optimiser in self.optimisers:
            optimiser.step()


@dataclass
class SoftSharingRun:
    """What :func:`soft_weight_sharing` did: the learned ``prior`` and fit's ``history``."""

    prior: MixturePrior
    history: History


def soft_weight_sharing(model: Module, data: Any, epochs: int = EPOCHS, tau: float = TAU,
                        components: int = COMPONENTS, pi_zero: float = PI_ZERO,
                        batch_size: int = BATCH_SIZE,
                        learning_rates: dict[str, float] | None = None, seed: int = 0,
                        quiet: bool = False, **fit_options: Any) -> SoftSharingRun:
    """Retrain ``model`` (in place) under a learned Gaussian-mixture prior.

    Parameters
    ----------
    model : Module
        A trained network of Linear/Conv2d layers (masked or not; a mask's pruned weights
        are left out of the prior and stay pruned).
    data : Dataset or (x, y)
        Its training split is used; ``N`` is its size.
    epochs, batch_size : int
        Default :data:`EPOCHS`, :data:`BATCH_SIZE`: 2,520 steps on ``mnist-5k``. Fewer
        steps leave the weights short of the tight clusters quantising needs (see the
        module docstring).
    tau : float
        Weight of the prior, τ (the loss adds τ/N times the prior's negative log; N is
        the number of training examples, so a smaller data set weighs the prior more).
    components, pi_zero : int, float
        J (with the zero component) and its fixed proportion π_0.
    learning_rates : dict, optional
        Keys ``weights``, ``means``, ``log_precisions``, ``mixing`` (default
        :data:`LEARNING_RATES`).
    seed : int
        Batch order.
    **fit_options
        Passed to :func:`tinysparse.fit` (``max_steps``, ``validation``, ``desc`` ...).

    Returns
    -------
    SoftSharingRun
    """
    check_shareable(model)  # only layers the compressed format stores
    rates = {**LEARNING_RATES, **(learning_rates or {})}
    unknown = set(rates) - set(LEARNING_RATES)
    if unknown:
        raise ValueError(f"learning_rates: unknown {sorted(unknown)}; expected "
                         f"{sorted(LEARNING_RATES)}")
    layers = prior_weights(model)
    initial = np.concatenate([kept_weights(layer).data for _, layer in layers])
    prior = MixturePrior(components, pi_zero, float(initial.min()), float(initial.max()),
                         dtype=model.dtype)
    examples = len(data.train[0]) if hasattr(data, "train") else len(data[0])

    def loss(output: Tensor, target: np.ndarray) -> Tensor:
        # the paper's L = −Σ_n log p(t_n | x_n, w) − τ log p(w, μ, σ, π), divided by N:
        # the batch's mean cross-entropy + τ/N (−Σ_i log p(w_i) − log p(λ))
        weights = [kept_weights(layer) for _, layer in layers]
        complexity = sum((prior.neg_log_prob(w) for w in weights), prior.hyper_prior())
        return cross_entropy(output, target) + (tau / examples) * complexity

    optimiser = _Optimisers([(list(model.parameters()), rates["weights"]),
                             ([prior.means], rates["means"]),
                             ([prior.log_precisions], rates["log_precisions"]),
                             ([prior.mixing_logits], rates["mixing"])])
    history = fit(model, data, epochs=epochs, batch_size=batch_size, optimizer=optimiser,
                  loss=loss, seed=seed, quiet=quiet,
                  **{"desc": "soft weight-sharing", **fit_options})
    return SoftSharingRun(prior, history)


def quantise_to_prior(model: Module, prior: MixturePrior,
                      merge_threshold: float = MERGE_THRESHOLD) -> Module:
    """Replace every Linear/Conv2d of ``model`` by a weight-shared layer (in place): each
    kept weight takes the mean of the merged component most responsible for it, and the
    weights the zero component takes are pruned (added to the layer's mask).

    All layers share one codebook: the zero, then the merged non-zero means, in
    ``2^b`` entries with b the fewest bits that hold them. A layer whose mask keeps at
    most :func:`~tinysparse.sparse.density_threshold` of its weights runs the sparse
    kernels. Returns ``model`` (shared; :func:`~tinysparse.compress.unshare` gives
    ordinary layers).
    """
    means, gamma, log_pi = prior.merged(merge_threshold)
    zero = int(np.argmin(np.abs(means)))  # the merged zero component (its mean is 0.0)
    others = [j for j in range(means.size) if j != zero]
    bits = max(1, math.ceil(math.log2(len(others) + 1)))
    codebook = np.zeros(2**bits)
    codebook[1:len(others) + 1] = means[others]
    code_of = np.zeros(means.size, dtype=np.int64)  # component -> codebook index (0: zero)
    code_of[others] = np.arange(1, len(others) + 1)
    names = dict(prior_weights(model))
    ids = {id(layer): name for name, layer in names.items()}

    def twin(layer: Module) -> Module | None:
        if id(layer) not in ids:
            return None
        if isinstance(layer, SparseLayer):
            weight, mask = layer.dense_weight(), layer.mask
        else:
            weight, mask = layer.weight.data, layer._masks.get("weight")
        keep = np.ones(weight.size, dtype=bool) if mask is None else mask.keep.reshape(-1).copy()
        codes = np.zeros(weight.size, dtype=np.int64)
        codes[keep] = code_of[responsibilities(weight.reshape(-1)[keep], means, gamma, log_pi)]
        keep &= codes != 0
        new_mask = Mask(keep.reshape(weight.shape))
        shared = SHARED_TWINS[type(layer)](
            **layer.constructor_args(), codebook=codebook.astype(layer.dtype),
            assignments=codes[keep], mask=new_mask,
            sparse_kernels=new_mask.density <= density_threshold(), dtype=layer.dtype)
        copy_bias_name_and_mode(layer, shared)
        return shared

    return replace_layers(model, twin)
