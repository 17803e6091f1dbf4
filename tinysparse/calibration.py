"""Softmax is not confidence: calibration, out-of-distribution inputs, fooling images and
adversarial examples.

A classifier's largest softmax probability is often read as its confidence. This module
measures how far that reading goes:

* **Calibration** (Guo et al. 2017). Split the test examples into M bins by confidence;
  a calibrated model is right in each bin as often as it is confident there. The expected
  calibration error (ECE) averages the gap, the maximum calibration error (MCE) takes the
  worst bin; the negative log-likelihood (NLL) and the Brier score (Brier 1950) are proper
  scoring rules that need no bins. A bootstrap interval says how noisy ECE is on 1,000
  digits.
* **Temperature scaling** (Guo et al. 2017): divide the logits by one scalar T fitted on
  held-out data by minimising NLL. The NLL is convex in β = 1/T, so Newton's method,
  kept inside a bracket by bisection, finds the optimum to machine precision. Dividing by
  T > 0 never changes the argmax, hence never the accuracy.
* **Out-of-distribution inputs**: the largest softmax probability on uniform noise,
  inverted digits, rotated digits (Gal & Ghahramani 2016's rotated "1") and classes held
  out from training; the AUROC of that score as a detector of such inputs (Hendrycks &
  Gimpel 2017).
* **Fooling images** (Nguyen, Yosinski & Clune 2015): gradient ascent on the input, from
  noise, until the network gives a chosen class ≥ 99% probability.
* **Adversarial examples**: the fast gradient sign method (FGSM, Goodfellow, Shlens &
  Szegedy 2015) and its iterative, projected version (Kurakin et al. 2017; Madry et al.
  2018).

Inputs are NumPy arrays: ``probabilities`` of shape (N, K) whose rows sum to one,
``labels`` of shape (N,) with integer classes in [0, K), images with pixels in
:data:`PIXEL_RANGE`. Everything is computed in float64.

The papers are listed in ``lessons/REFERENCES.md``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, cross_entropy, log_softmax, no_grad, softmax
from tinysparse.nn.dropout import deterministic
from tinysparse.nn.module import Module, check_finite_inputs

#: M, the number of confidence bins of Guo et al. (2017)
DEFAULT_BINS = 15
#: how confidence bins are drawn: M equal-width intervals of [0, 1] (Guo et al. 2017), or
#: M bins holding equally many examples (the "adaptive" bins of Nixon et al. 2019)
BINNINGS = ("equal-width", "equal-mass")
#: how far a row of probabilities may sum from 1 (a float32 softmax over 10 classes is
#: off by about 1e-7)
SUM_TOLERANCE = 1e-5
#: the pixel values of the digit datasets (``mnist``, ``mnist-5k``)
PIXEL_RANGE = (0.0, 1.0)
#: the iterative attack's default step, α = STEP_FACTOR · ε / K (see :func:`iterative_attack`)
STEP_FACTOR = 2.5


# ---------------------------------------------------------------- checks
def check_probabilities(probabilities: Any, name: str = "probabilities") -> np.ndarray:
    """``probabilities`` as a float64 array of shape (N, K), N ≥ 1, each row a probability
    distribution (entries in [0, 1], summing to 1 within :data:`SUM_TOLERANCE`); else a
    ValueError naming ``name``."""
    p = np.asarray(probabilities)
    if p.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected numbers, got an array of dtype {p.dtype}")
    p = p.astype(np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"{name}: expected an array of shape (examples, classes), got shape "
                         f"{p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: {np.count_nonzero(~np.isfinite(p)):,} values are NaN or "
                         f"infinite")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"{name}: probabilities lie in [0, 1], got values from {p.min():.4g} "
                         f"to {p.max():.4g} (logits? apply a softmax first)")
    error = np.abs(p.sum(axis=1) - 1)
    if error.max() > SUM_TOLERANCE:
        row = int(error.argmax())
        raise ValueError(f"{name}: each row must sum to 1 (within {SUM_TOLERANCE:g}); row {row} "
                         f"sums to {p[row].sum():.6g}")
    return p


def check_labels(labels: Any, examples: int, classes: int, name: str = "labels") -> np.ndarray:
    """``labels`` as an int64 array of shape (``examples``,) with values in
    [0, ``classes``); else a ValueError naming ``name``."""
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer class indices, got dtype {y.dtype}")
    if y.shape != (examples,):
        raise ValueError(f"{name}: expected shape ({examples},), one label per example, got "
                         f"{y.shape}")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"{name}: classes lie in [0, {classes}), got values from {y.min()} "
                         f"to {y.max()}")
    return y.astype(np.int64)


def check_logits(logits: Any, name: str = "logits") -> np.ndarray:
    """``logits`` as a finite float64 array of shape (N, K), N ≥ 1, K ≥ 2."""
    z = np.asarray(logits)
    if z.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected numbers, got an array of dtype {z.dtype}")
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(f"{name}: expected an array of shape (examples, classes ≥ 2), got "
                         f"shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name}: {np.count_nonzero(~np.isfinite(z)):,} values are NaN or "
                         f"infinite")
    return z.astype(np.float64)


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _check_binning(binning: str) -> str:
    if binning not in BINNINGS:
        raise ValueError(f"binning: expected one of {', '.join(BINNINGS)}, got {binning!r}")
    return binning


def _checked(probabilities: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = check_probabilities(probabilities)
    return p, check_labels(labels, *p.shape)


# ---------------------------------------------------------------- calibration metrics
@dataclass(frozen=True)
class ReliabilityBins:
    """The examples grouped by confidence: what a reliability diagram draws.

    Attributes
    ----------
    binning : str
        ``"equal-width"`` or ``"equal-mass"`` (see :data:`BINNINGS`).
    edges : np.ndarray of shape (M + 1,)
        Bin m holds the confidences in (edges[m], edges[m + 1]] (the first bin also holds
        0). Equal-mass bins are split between the sorted confidences, each edge halfway
        between the last confidence of one bin and the first of the next.
    counts : np.ndarray of shape (M,)
        |B_m|, the examples in each bin.
    confidence, accuracy : np.ndarray of shape (M,)
        conf(B_m), the mean confidence, and acc(B_m), the fraction predicted correctly, of
        each bin; NaN where a bin is empty.
    """

    binning: str
    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def examples(self) -> int:
        """n, the number of examples."""
        return int(self.counts.sum())

    @property
    def gaps(self) -> np.ndarray:
        """|acc(B_m) − conf(B_m)| per bin (NaN where empty)."""
        return np.abs(self.accuracy - self.confidence)

    @property
    def ece(self) -> float:
        """ECE = Σ_m (|B_m| / n) |acc(B_m) − conf(B_m)| (Guo et al. 2017)."""
        filled = self.counts > 0
        return float(np.sum(self.counts[filled] / self.examples * self.gaps[filled]))

    @property
    def mce(self) -> float:
        """MCE = max_m |acc(B_m) − conf(B_m)| over the non-empty bins (Guo et al. 2017)."""
        return float(np.max(self.gaps[self.counts > 0]))


def _bin_index(confidence: np.ndarray, bins: int, binning: str) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    """The bin of each confidence, and the M + 1 edges (see :class:`ReliabilityBins`)."""
    if binning == "equal-width":
        # I_m = (m/M, (m+1)/M]: searchsorted(side="left") finds m + 1 for a confidence
        # in it; a confidence of exactly 0 joins the first bin
        edges = np.linspace(0.0, 1.0, bins + 1)
        index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
        return index, edges
    # equal mass: sort, then cut into M runs of ⌊n/M⌋ or ⌈n/M⌉ examples (np.array_split);
    # equal confidences on both sides of a cut stay split (the sort is stable)
    order = np.argsort(confidence, kind="stable")
    runs = np.array_split(np.arange(len(confidence)), bins)
    index = np.empty(len(confidence), dtype=np.int64)
    for m, run in enumerate(runs):
        index[order[run]] = m
    ordered = confidence[order]
    starts = np.array([run[0] if len(run) else len(ordered) for run in runs[1:]])
    inner = [(ordered[s - 1] + ordered[s]) / 2 if s < len(ordered) else 1.0 for s in starts]
    return index, np.array([0.0, *inner, 1.0])


def _bins(confidence: np.ndarray, correct: np.ndarray, bins: int, binning: str
          ) -> ReliabilityBins:
    index, edges = _bin_index(confidence, bins, binning)
    counts = np.bincount(index, minlength=bins)                       # |B_m|
    confidence_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct, minlength=bins)
    filled = counts > 0
    mean_confidence = np.full(bins, np.nan)
    accuracy = np.full(bins, np.nan)
    mean_confidence[filled] = confidence_sum[filled] / counts[filled]  # conf(B_m)
    accuracy[filled] = correct_sum[filled] / counts[filled]            # acc(B_m)
    return ReliabilityBins(binning, edges, counts, mean_confidence, accuracy)


def confidence_and_correct(probabilities: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """p̂_i = max_k p_ik, the confidence, and whether ŷ_i = argmax_k p_ik equals y_i (the
    first class wins a tie)."""
    p, y = _checked(probabilities, labels)
    return p.max(axis=1), p.argmax(axis=1) == y


def reliability_bins(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS,
                     binning: str = "equal-width") -> ReliabilityBins:
    """Group the examples into ``bins`` bins by confidence (see :class:`ReliabilityBins`).

    Parameters
    ----------
    probabilities : array of shape (N, K)
        Predicted class probabilities; each row sums to 1.
    labels : array of shape (N,)
        The true classes.
    bins : int
        M ≥ 1 (Guo et al. use 15).
    binning : {"equal-width", "equal-mass"}
        M intervals of width 1/M (Guo et al. 2017), or M bins of n/M examples each (Nixon
        et al. 2019: no bin is nearly empty, so no bin's accuracy rests on a few examples).
    """
    bins = _check_count(bins, "bins")
    confidence, correct = confidence_and_correct(probabilities, labels)
    return _bins(confidence, correct, bins, _check_binning(binning))


def expected_calibration_error(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS,
                               binning: str = "equal-width") -> float:
    """ECE = Σ_m (|B_m| / n) |acc(B_m) − conf(B_m)| (Guo et al. 2017; Naeini et al. 2015).

    The mean gap between how often the model is right and how confident it is, bin by
    bin, weighted by the bins' sizes: 0 for a calibrated model (up to sampling noise,
    which makes the estimate positive on average), at most 1. Arguments as for
    :func:`reliability_bins`.
    """
    return reliability_bins(probabilities, labels, bins, binning).ece


def maximum_calibration_error(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS,
                              binning: str = "equal-width") -> float:
    """MCE = max_m |acc(B_m) − conf(B_m)| over the non-empty bins (Guo et al. 2017; Naeini
    et al. 2015): the worst bin, however few examples it holds. Arguments as for
    :func:`reliability_bins`."""
    return reliability_bins(probabilities, labels, bins, binning).mce


def negative_log_likelihood(probabilities: Any, labels: Any) -> float:
    """NLL = −(1/n) Σ_i log p_{i, y_i}, the mean cross-entropy (natural log).

    A proper scoring rule: minimised in expectation only by the true probabilities.
    Infinite if some true class gets probability 0.
    """
    p, y = _checked(probabilities, labels)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(p[np.arange(len(y)), y])))   # −(1/n) Σ log p_{i,y_i}


def brier_score(probabilities: Any, labels: Any) -> float:
    """Brier score, Brier's (1950) multiclass definition:
    BS = (1/n) Σ_i Σ_k (p_ik − 1[y_i = k])², from 0 (certain and right) to 2 (certain and
    wrong).

    Some authors divide by the number of classes K as well, or score only the predicted
    class's probability (the binary Brier score of the confidence); this is neither.
    """
    p, y = _checked(probabilities, labels)
    one_hot = np.zeros_like(p)
    one_hot[np.arange(len(y)), y] = 1.0                                  # y_ik = 1[y_i = k]
    return float(np.mean(np.sum((p - one_hot) ** 2, axis=1)))          # (1/n) Σ_i Σ_k (·)²


#: how :func:`ece_interval` turns bootstrap draws into an interval
BOOTSTRAP_METHODS = ("percentile", "basic")


def ece_interval(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS,
                 binning: str = "equal-width", *, samples: int = 1000, level: float = 0.95,
                 method: str = "percentile", seed: int = 0) -> tuple[float, float]:
    """A bootstrap confidence interval for the ECE (Efron & Tibshirani 1993).

    Draw n examples with replacement ``samples`` times (seeded) and compute the ECE of each
    draw, ECE*_b. With q_lo, q_hi the (1 − level)/2 and (1 + level)/2 quantiles of the
    ECE*_b, and ECE the estimate on all n examples:

    * ``"percentile"``: [q_lo, q_hi], the usual bootstrap interval;
    * ``"basic"``: [2 ECE − q_hi, 2 ECE − q_lo], clipped at 0, which also undoes the
      bootstrap's bias to first order.

    The ECE of n examples is biased upwards: with few examples per bin, even a calibrated
    model shows gaps, and a bootstrap draw (which repeats examples) shows larger ones. For
    a nearly calibrated model the percentile interval can then lie entirely above the
    estimate (and far above 0); the basic interval does not. For an overconfident network
    (ECE of several per cent on 1,000 digits) the two agree closely.

    Parameters
    ----------
    probabilities, labels, bins, binning
        As for :func:`reliability_bins`.
    samples : int
        Bootstrap draws (1,000 give the 2.5% and 97.5% quantiles to about ±0.002 on 1,000
        test digits).
    level : float
        In (0, 1): 0.95 gives a 95% interval.
    method : {"percentile", "basic"}
    seed : int
        Seeds the draws: the same seed gives the same interval.

    Returns
    -------
    (low, high) : tuple of float
    """
    bins = _check_count(bins, "bins")
    samples = _check_count(samples, "samples")
    binning = _check_binning(binning)
    if not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"method: expected one of {', '.join(BOOTSTRAP_METHODS)}, got "
                         f"{method!r}")
    confidence, correct = confidence_and_correct(probabilities, labels)
    draws = np.random.default_rng(seed).integers(0, len(confidence),
                                                 size=(samples, len(confidence)))
    values = [_bins(confidence[d], correct[d], bins, binning).ece for d in draws]  # ECE*_b
    q_low, q_high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    if method == "percentile":
        return float(q_low), float(q_high)
    estimate = _bins(confidence, correct, bins, binning).ece
    return max(0.0, float(2 * estimate - q_high)), max(0.0, float(2 * estimate - q_low))


def calibration_metrics(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS, *,
                        samples: int = 1000, level: float = 0.95, seed: int = 0
                        ) -> dict[str, Any]:
    """Every calibration figure of ``probabilities`` at once (what ``tinysparse calibrate``
    reports for one set of probabilities).

    Returns
    -------
    dict
        ``accuracy``, ``mean_confidence``, ``ece`` (equal-width bins), ``ece_interval``
        ([low, high], :func:`ece_interval` at ``level``, seeded), ``ece_equal_mass``,
        ``mce`` (equal-width), ``nll``, ``brier``.
    """
    p, y = _checked(probabilities, labels)
    equal_width = reliability_bins(p, y, bins)
    confidence, correct = confidence_and_correct(p, y)
    return {
        "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()),
        "ece": equal_width.ece,
        "ece_interval": list(ece_interval(p, y, bins, samples=samples, level=level,
                                          seed=seed)),
        "ece_equal_mass": expected_calibration_error(p, y, bins, "equal-mass"),
        "mce": equal_width.mce,
        "nll": negative_log_likelihood(p, y),
        "brier": brier_score(p, y),
    }


# ---------------------------------------------------------------- temperature scaling
def softmax_probabilities(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """softmax(z / T) in float64, row by row: the probabilities after temperature scaling.

    Dividing every logit of a row by the same T > 0 keeps their order, so the argmax (the
    prediction) never changes; T > 1 softens the probabilities, T < 1 sharpens them.
    """
    z = check_logits(logits)
    with no_grad():
        return softmax(Tensor(z), axis=1, temperature=temperature).data


def _nll_derivatives(z: np.ndarray, true_logit: np.ndarray, beta: float
                     ) -> tuple[float, float]:
    """NLL'(β) and NLL''(β) of NLL(β) = (1/n) Σ_i [log Σ_k exp(β z_ik) − β z_{i,y_i}].

    With p = softmax(β z_i): d/dβ log Σ_k exp(β z_ik) = E_p[z_i] and d²/dβ² = Var_p[z_i],
    so NLL'(β) = (1/n) Σ_i (E_p[z_i] − z_{i,y_i}) and NLL''(β) = (1/n) Σ_i Var_p[z_i] ≥ 0:
    the NLL is convex in β.
    """
    with no_grad():
        p = np.exp(log_softmax(Tensor(beta * z), axis=1).data)         # softmax(β z_i)
    mean = np.sum(p * z, axis=1)                                          # E_p[z_i]
    variance = np.sum(p * (z - mean[:, None]) ** 2, axis=1)             # Var_p[z_i]
    return float(np.mean(mean - true_logit)), float(np.mean(variance))


def fit_temperature(logits: Any, labels: Any, *, max_iterations: int = 500) -> float:
    """The temperature T that minimises the NLL of softmax(z / T) on (``logits``,
    ``labels``) (Guo et al. 2017), found to machine precision.

    Method: minimise NLL(β), β = 1/T, which is convex (see :func:`_nll_derivatives`), by
    finding the root of NLL'(β). A bracket [lo, hi] with NLL'(lo) < 0 < NLL'(hi) starts at
    lo = 0 and hi doubling from 1; Newton steps β ← β − NLL'(β) / NLL''(β) are taken when
    they land inside the bracket, bisection steps otherwise, and every step shrinks the
    bracket. It stops when a step moves β by no more than a few units in its last place.

    Parameters
    ----------
    logits : array of shape (N, K)
        The model's logits on held-out data (never the test examples the calibration is
        then measured on).
    labels : array of shape (N,)
    max_iterations : int
        A guard; a handful of Newton steps is usual (six on a LeNet-300-100's 500
        validation digits).

    Returns
    -------
    float
        T > 0. Apply it with :func:`softmax_probabilities` (``temperature=T``).

    Raises
    ------
    ValueError
        When no finite T > 0 minimises the NLL: the true classes' logits are on average no
        higher than the rows' mean logits (the optimum is T = ∞, uniform probabilities), or
        every example is classified correctly (the NLL keeps falling as T → 0).
    """
    z = check_logits(logits)
    y = check_labels(labels, *z.shape)
    true_logit = z[np.arange(len(y)), y]                                  # z_{i, y_i}
    slope_at_zero = float(np.mean(z.mean(axis=1) - true_logit))   # NLL'(0): p uniform
    if slope_at_zero >= 0:
        raise ValueError("logits: the true classes' logits are on average no higher than the "
                         "mean logit, so the NLL is lowest at T = ∞ (uniform probabilities); "
                         "no finite temperature fits")
    # NLL'(β) → (1/n) Σ_i (max_k z_ik − z_{i,y_i}) as β → ∞: positive unless the true
    # class has the largest logit in every row (then NLL falls all the way to T → 0)
    if np.all(true_logit >= z.max(axis=1)):
        raise ValueError("logits: every example is classified correctly, so the NLL keeps "
                         "falling as T → 0 and no temperature minimises it; fit T on "
                         "held-out data the model makes mistakes on")
    lo, hi = 0.0, 1.0
    while _nll_derivatives(z, true_logit, hi)[0] < 0:   # find NLL'(hi) ≥ 0
        lo, hi = hi, 2 * hi
        if hi > 2.0 ** 64:
            raise ValueError("logits: the NLL's minimum lies beyond T = 2^-64; are the "
                             "logits this close together?")
    beta = 1.0 if lo < 1.0 < hi else (lo + hi) / 2
    for _ in range(max_iterations):
        slope, curvature = _nll_derivatives(z, true_logit, beta)
        if slope == 0:
            break
        if slope < 0:                     # the root lies right of β
            lo = beta
        else:
            hi = beta
        newton = beta - slope / curvature if curvature > 0 else math.nan
        step = newton if lo < newton < hi else (lo + hi) / 2       # else bisect
        if abs(step - beta) <= 4 * np.finfo(float).eps * beta or hi - lo <= (
                4 * np.finfo(float).eps * hi):
            beta = step
            break
        beta = step
    return 1.0 / beta


# ---------------------------------------------------------------- model outputs
def predict_logits(model: Module, x: Any, batch_size: int = 1000) -> np.ndarray:
    """The model's outputs (logits) on a NumPy batch, in float64, in evaluation mode (no
    dropout sampled), without a graph."""
    x = check_finite_inputs(x, "x")
    batch_size = _check_count(batch_size, "batch_size")
    with deterministic(model), no_grad():
        chunks = [model(np.asarray(x[i: i + batch_size])).data.astype(np.float64)
                  for i in range(0, len(x), batch_size)]
    if not chunks:
        raise ValueError("x: got no examples")
    return np.concatenate(chunks)


def max_softmax(model: Module, x: Any, batch_size: int = 1000) -> np.ndarray:
    """max_k softmax(f(x))_k for each example: the confidence the softmax claims, and the
    score of Hendrycks & Gimpel's (2017) out-of-distribution baseline."""
    return softmax_probabilities(predict_logits(model, x, batch_size)).max(axis=1)


# ---------------------------------------------------------------- out-of-distribution inputs
def uniform_noise(count: int, shape: Sequence[int] = (1, 28, 28), seed: int = 0,
                  dtype: Any = np.float32) -> np.ndarray:
    """``count`` images of independent uniform pixels over :data:`PIXEL_RANGE` (seeded)."""
    count = _check_count(count, "count")
    low, high = PIXEL_RANGE
    return np.random.default_rng(seed).uniform(low, high, (count, *shape)).astype(dtype)


def invert(images: Any) -> np.ndarray:
    """Negative images: x ↦ (low + high) − x over :data:`PIXEL_RANGE` (white digits on
    black become black digits on white)."""
    low, high = PIXEL_RANGE
    images = check_finite_inputs(images, "images")
    return ((low + high) - images).astype(images.dtype if images.dtype.kind == "f"
                                          else np.float32)


def rotate(images: Any, degrees: float) -> np.ndarray:
    """Rotate each image (the last two axes) by ``degrees`` counter-clockwise about its
    centre, with bilinear interpolation; pixels that come from outside the image are 0.

    The output pixel at (row r, column c) takes the input's value at the point that the
    rotation carries onto it: with x = c − c₀ and y = r₀ − r (y upwards, (r₀, c₀) the
    centre), the source is R(−θ)(x, y) = (x cos θ + y sin θ, −x sin θ + y cos θ). That
    point lies between four pixels; their values are mixed with the weights
    (1 − f_r)(1 − f_c), (1 − f_r) f_c, f_r (1 − f_c), f_r f_c, where f_r, f_c are its
    fractional row and column offsets (bilinear interpolation).

    Parameters
    ----------
    images : array of shape (..., H, W)
    degrees : float
        The angle; 90 turns an upright "1" on its side.

    Returns
    -------
    np.ndarray
        Of the shape and floating dtype of ``images``.
    """
    images = check_finite_inputs(images, "images")
    if images.ndim < 2:
        raise ValueError(f"images: expected an array of shape (..., height, width), got "
                         f"shape {images.shape}")
    if not math.isfinite(degrees):
        raise ValueError(f"degrees: expected a finite angle, got {degrees!r}")
    height, width = images.shape[-2:]
    theta = math.radians(degrees)
    r0, c0 = (height - 1) / 2, (width - 1) / 2
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    x, y = columns - c0, r0 - rows                                   # y points up
    source_x = x * math.cos(theta) + y * math.sin(theta)             # R(−θ) (x, y)
    source_y = -x * math.sin(theta) + y * math.cos(theta)
    source_row, source_column = r0 - source_y, source_x + c0
    top, left = np.floor(source_row), np.floor(source_column)
    f_r, f_c = source_row - top, source_column - left
    # one pixel of zeros around each image; any index outside it also lands on a zero
    flat = images.reshape(-1, height, width).astype(np.float64)
    padded = np.pad(flat, ((0, 0), (1, 1), (1, 1)))

    def pixel(row: np.ndarray, column: np.ndarray) -> np.ndarray:
        return padded[:, np.clip(row.astype(np.int64) + 1, 0, height + 1),
                      np.clip(column.astype(np.int64) + 1, 0, width + 1)]

    out = ((1 - f_r) * (1 - f_c) * pixel(top, left) + (1 - f_r) * f_c * pixel(top, left + 1)
           + f_r * (1 - f_c) * pixel(top + 1, left) + f_r * f_c * pixel(top + 1, left + 1))
    dtype = images.dtype if images.dtype.kind == "f" else np.float32
    return out.reshape(images.shape).astype(dtype)


def auroc(in_distribution: Any, out_of_distribution: Any) -> float:
    """The area under the ROC curve of a score that should be higher in distribution.

    AUROC = P(s_in > s_out) + ½ P(s_in = s_out) for a random in-distribution example and a
    random out-of-distribution one: 1 separates them perfectly, 0.5 is chance (Hendrycks &
    Gimpel 2017 score max-softmax this way). Computed from ranks, as the Mann–Whitney U
    statistic: rank all n_in + n_out scores together (tied scores share their mean rank),
    then U = Σ ranks of the in-distribution scores − n_in (n_in + 1) / 2 counts the pairs
    in which the in-distribution score is higher (ties counting ½), and AUROC = U / (n_in
    n_out). O(n log n), where counting the pairs is O(n_in n_out).
    """
    positive = np.asarray(in_distribution, dtype=np.float64).ravel()
    negative = np.asarray(out_of_distribution, dtype=np.float64).ravel()
    for name, scores in (("in_distribution", positive), ("out_of_distribution", negative)):
        if scores.size == 0:
            raise ValueError(f"{name}: got no scores")
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{name}: scores must be finite")
    scores = np.concatenate([positive, negative])
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # each run of ties
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)  # mean of ranks s+1..e
    n_in, n_out = len(positive), len(negative)
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2                    # Mann–Whitney U
    return float(u / (n_in * n_out))


def out_of_distribution_sets(images: Any, seed: int = 0, degrees: float = 90.0
                             ) -> dict[str, np.ndarray]:
    """Out-of-distribution versions of ``images`` (e.g. the test digits), as many of each:
    ``uniform_noise`` (seeded), ``inverted`` and ``rotated`` (by ``degrees``)."""
    images = check_finite_inputs(images, "images")
    return {"uniform_noise": uniform_noise(len(images), images.shape[1:], seed,
                                           images.dtype if images.dtype.kind == "f"
                                           else np.float32),
            "inverted": invert(images),
            "rotated": rotate(images, degrees)}


#: what :func:`out_of_distribution_report` scores: a model, or any function from a batch
#: of inputs to class probabilities (an ensemble's mean, MC dropout's ``predict_mc(...)[0]``)
Predictor = Module | Callable[[np.ndarray], np.ndarray]


def _max_probability(predictor: Predictor, x: Any) -> np.ndarray:
    if isinstance(predictor, Module):
        return max_softmax(predictor, x)
    return check_probabilities(predictor(x), "the predictor's probabilities").max(axis=1)


def out_of_distribution_report(predictor: Predictor, in_distribution: Any,
                               out_of_distribution: Mapping[str, Any]
                               ) -> dict[str, dict[str, float]]:
    """Mean max-softmax on in-distribution inputs and on each out-of-distribution set, and
    the AUROC of max-softmax as a detector of each set (Hendrycks & Gimpel 2017).

    Parameters
    ----------
    predictor : Module or callable
        A model (scored by :func:`max_softmax`), or a function from a batch of inputs to
        class probabilities, e.g. ``lambda x: predict_mc(model, x)[0]`` for MC dropout or
        the mean of an ensemble's :func:`softmax_probabilities`: its largest probability
        is then the score.
    in_distribution : array
        Inputs like the training data (e.g. the test digits).
    out_of_distribution : mapping of name to array
        E.g. :func:`out_of_distribution_sets`, or the digits of classes held out from
        training (``tinysparse.data.split_by_class``).

    Returns
    -------
    dict
        ``{"in_distribution": {"mean_max_softmax": ...}, name: {"mean_max_softmax": ...,
        "auroc": ...}, ...}`` for each ``name`` of ``out_of_distribution``.
    """
    inside = _max_probability(predictor, in_distribution)
    report = {"in_distribution": {"mean_max_softmax": float(inside.mean())}}
    for name, images in out_of_distribution.items():
        outside = _max_probability(predictor, images)
        report[name] = {"mean_max_softmax": float(outside.mean()),
                        "auroc": auroc(inside, outside)}
    return report


# ---------------------------------------------------------------- input gradients
@contextlib.contextmanager
def _parameters_frozen(model: Module) -> Iterator[Module]:
    """Inside the block, no parameter of ``model`` requires a gradient: backward() then
    computes only the input's, and leaves every ``.grad`` of the model as it was."""
    parameters = list(model.parameters())
    flags = [p.requires_grad for p in parameters]
    try:
        for p in parameters:
            p.requires_grad = False
        yield model
    finally:
        for p, flag in zip(parameters, flags):
            p.requires_grad = flag


def input_gradient(model: Module, x: Any, labels: Any, batch_size: int = 1000) -> np.ndarray:
    """∇_x L(f(x_i), y_i) for each example: the gradient of its cross-entropy loss with
    respect to its own input, through the autograd engine.

    The model runs in evaluation mode (no dropout sampled); its parameters' gradients are
    neither computed nor changed. The losses are summed, not averaged, so row i is the
    gradient of example i's loss alone.

    Returns
    -------
    np.ndarray
        Of the shape of ``x``, in the model's dtype.
    """
    x = check_finite_inputs(x, "x")
    if len(x) == 0:
        raise ValueError("x: got no examples")
    batch_size = _check_count(batch_size, "batch_size")
    labels = np.asarray(labels)
    if labels.shape != (len(x),):
        raise ValueError(f"labels: expected shape ({len(x)},), one label per input, got "
                         f"{labels.shape}")
    chunks = []
    with deterministic(model), _parameters_frozen(model):
        for start in range(0, len(x), batch_size):
            inputs = Tensor(x[start: start + batch_size], requires_grad=True, dtype=model.dtype)
            loss = cross_entropy(model(inputs), labels[start: start + batch_size],
                                 reduction="sum")                 # Σ_i L(f(x_i), y_i)
            loss.backward()
            chunks.append(inputs.grad)
    return np.concatenate(chunks)


def _check_images(x: Any) -> np.ndarray:
    x = check_finite_inputs(x, "x")
    low, high = PIXEL_RANGE
    if x.size and (x.min() < low or x.max() > high):
        raise ValueError(f"x: pixels lie in [{low:g}, {high:g}], got values from "
                         f"{x.min():.4g} to {x.max():.4g}")
    return x


def _check_epsilon(epsilon: Any) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float | np.number) or not (
            0 <= epsilon < math.inf):
        raise ValueError(f"epsilon: expected a number >= 0, got {epsilon!r}")
    return float(epsilon)


# ---------------------------------------------------------------- fooling images
@dataclass
class FoolingImages:
    """What :func:`fooling_images` made.

    Attributes
    ----------
    images : np.ndarray
        One image per target, pixels in :data:`PIXEL_RANGE`.
    targets : np.ndarray
        The class each image was pushed towards.
    confidence : np.ndarray
        softmax(f(image))[target] at the end.
    steps : np.ndarray
        The gradient steps each image took.
    reached : np.ndarray of bool
        Whether the target's probability reached the requested confidence.
    """

    images: np.ndarray
    targets: np.ndarray
    confidence: np.ndarray
    steps: np.ndarray
    reached: np.ndarray


def fooling_images(model: Module, targets: Sequence[int], shape: Sequence[int] = (1, 28, 28),
                   *, confidence: float = 0.99, step_size: float = 0.1,
                   max_steps: int = 1000, seed: int = 0) -> FoolingImages:
    """Images of noise that the model classifies as ``targets`` with at least
    ``confidence`` (Nguyen, Yosinski & Clune 2015, whose gradient-ascent images follow
    Simonyan et al. 2014).

    Each image starts as uniform noise (seeded) and climbs the log-probability of its
    target class:

        x ← clip(x + η ∇_x log softmax(f(x))_t, low, high)

    (∇_x log p_t = −∇_x L(f(x), t), the input gradient of the cross-entropy towards t),
    until p_t ≥ ``confidence`` or ``max_steps`` steps. An image stops as soon as it gets
    there.

    Parameters
    ----------
    model : Module
    targets : sequence of int
        One image per entry.
    shape : sequence of int
        One input's shape (default: a 28×28 digit).
    confidence : float
        In (0, 1).
    step_size : float
        η > 0.
    max_steps : int
    seed : int
        Seeds the starting noise.

    Returns
    -------
    FoolingImages
    """
    targets = np.asarray(targets)
    if targets.ndim != 1 or targets.size == 0:
        raise ValueError(f"targets: expected a non-empty list of classes, got shape "
                         f"{targets.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    if not 0 < step_size < math.inf:
        raise ValueError(f"step_size: expected a positive number, got {step_size!r}")
    max_steps = _check_count(max_steps, "max_steps")
    images = uniform_noise(len(targets), shape, seed, model.dtype)
    classes = predict_logits(model, images[:1]).shape[1]
    targets = check_labels(targets, len(targets), classes, "targets")
    low, high = PIXEL_RANGE
    steps = np.zeros(len(targets), dtype=np.int64)
    rows = np.arange(len(targets))
    probability = softmax_probabilities(predict_logits(model, images))[rows, targets]
    for _ in range(max_steps):
        climbing = probability < confidence
        if not climbing.any():
            break
        gradient = input_gradient(model, images[climbing], targets[climbing])  # −∇ log p_t
        images[climbing] = np.clip(images[climbing] - step_size * gradient, low, high)
        steps[climbing] += 1
        logits = predict_logits(model, images[climbing])
        probability[climbing] = softmax_probabilities(logits)[np.arange(len(logits)),
                                                               targets[climbing]]
    return FoolingImages(images, targets, probability, steps, probability >= confidence)


# ---------------------------------------------------------------- adversarial examples
def fgsm(model: Module, x: Any, labels: Any, epsilon: float) -> np.ndarray:
    """The fast gradient sign method (Goodfellow, Shlens & Szegedy 2015):

        x̃ = clip(x + ε sign(∇_x L(f(x), y)), low, high)

    one step of size ε on every pixel, in the direction that raises the loss of the true
    class ``labels`` most under a max-norm budget, then back into :data:`PIXEL_RANGE`.
    A pixel whose gradient is exactly 0 does not move.

    Parameters
    ----------
    model : Module
    x : array of images, pixels in :data:`PIXEL_RANGE`
    labels : array of shape (N,)
        The true classes (Goodfellow et al. attack the true label, not the prediction).
    epsilon : float
        ε ≥ 0, the largest change of any pixel.

    Returns
    -------
    np.ndarray
        The perturbed images, with ‖x̃ − x‖_∞ ≤ ε.
    """
    return iterative_attack(model, x, labels, epsilon, steps=1, step_size=epsilon)


def iterative_attack(model: Module, x: Any, labels: Any, epsilon: float, steps: int = 10,
                     step_size: float | None = None, *, random_start: bool = False,
                     seed: int = 0) -> np.ndarray:
    """K steps of projected gradient ascent on the loss (the basic iterative method of
    Kurakin, Goodfellow & Bengio 2017; with a random start, the PGD attack of Madry et al.
    2018):

        x⁰ = x  (or x + U(−ε, ε), clipped, with ``random_start``)
        x^{k+1} = Π(x^k + α sign(∇_x L(f(x^k), y)))

    where Π clips to the ε-ball around x, [x − ε, x + ε], and to :data:`PIXEL_RANGE`. Both
    are boxes, so clipping to one and then the other is the exact projection onto their
    intersection. With K = 1 and α ≥ ε this is :func:`fgsm`.

    Parameters
    ----------
    model, x, labels, epsilon
        As for :func:`fgsm`.
    steps : int
        K ≥ 1.
    step_size : float, optional
        α ≥ 0; by default :data:`STEP_FACTOR` · ε / K = 2.5 ε / K, the rule of thumb of
        Madry's group's ``robustness`` library (as recalled: not checked against it), so
        that K steps can cross the ball and still move along its boundary.
    random_start : bool
        Start from a uniform point of the ε-ball (Madry et al.), seeded by ``seed``.

    Returns
    -------
    np.ndarray
        The perturbed images, with ‖x̃ − x‖_∞ ≤ ε and pixels in :data:`PIXEL_RANGE`.
    """
    x = _check_images(x)
    epsilon = _check_epsilon(epsilon)
    steps = _check_count(steps, "steps")
    step_size = STEP_FACTOR * epsilon / steps if step_size is None else step_size
    if not 0 <= step_size < math.inf:
        raise ValueError(f"step_size: expected a number >= 0, got {step_size!r}")
    low, high = PIXEL_RANGE
    original = x.astype(model.dtype)
    ball_low = np.maximum(original - epsilon, low)     # the ε-ball ∩ the pixel range,
    ball_high = np.minimum(original + epsilon, high)   # a box: [max(x−ε, 0), min(x+ε, 1)]
    adversarial = original.copy()
    if random_start:
        noise = np.random.default_rng(seed).uniform(-epsilon, epsilon, original.shape)
        adversarial = np.clip(original + noise, ball_low, ball_high).astype(model.dtype)
    for _ in range(steps):
        gradient = input_gradient(model, adversarial, labels)
        adversarial = adversarial + step_size * np.sign(gradient)          # ascend the loss
        adversarial = np.clip(adversarial, ball_low, ball_high)            # project: Π
    return adversarial.astype(model.dtype)


def adversarial_sweep(model: Module, x: Any, labels: Any, epsilons: Sequence[float],
                      steps: int = 1, step_factor: float = STEP_FACTOR, *,
                      random_start: bool = False, seed: int = 0) -> list[dict[str, Any]]:
    """Error and confidence on ``x`` perturbed at each ε of ``epsilons``: :func:`fgsm` when
    ``steps`` is 1, else :func:`iterative_attack` with K = ``steps`` steps of size
    α = ``step_factor`` · ε / K.

    Returns
    -------
    list of dict
        One per ε, in order: ``epsilon``; ``step_size`` (α; ε for FGSM); ``error``, the
        fraction of the perturbed examples classified wrongly; ``mean_confidence``, the
        mean max-softmax on them, whatever class it picks; and
        ``mean_confidence_when_wrong``, the same over the misclassified ones (None when
        there are none).
    """
    x = _check_images(x)
    epsilons = [_check_epsilon(epsilon) for epsilon in epsilons]
    steps = _check_count(steps, "steps")
    if not 0 < step_factor < math.inf:
        raise ValueError(f"step_factor: expected a positive number, got {step_factor!r}")
    if random_start and steps == 1:
        raise ValueError("random_start: FGSM (steps=1) starts at the input; a random start "
                         "needs steps > 1")
    labels = np.asarray(labels)
    records = []
    for epsilon in epsilons:
        if steps == 1:
            step_size, perturbed = epsilon, fgsm(model, x, labels, epsilon)
        else:
            step_size = step_factor * epsilon / steps
            perturbed = iterative_attack(model, x, labels, epsilon, steps, step_size,
                                         random_start=random_start, seed=seed)
        probabilities = softmax_probabilities(predict_logits(model, perturbed))
        confidence = probabilities.max(axis=1)
        wrong = probabilities.argmax(axis=1) != labels
        records.append({
            "epsilon": epsilon,
            "step_size": step_size,
            "error": float(wrong.mean()),
            "mean_confidence": float(confidence.mean()),
            "mean_confidence_when_wrong": float(confidence[wrong].mean()) if wrong.any()
            else None,
        })
    return records
