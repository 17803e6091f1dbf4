"""Knowledge distillation: a small student learns from a teacher's softened outputs.

Hinton, Vinyals & Dean 2015, "Distilling the knowledge in a neural network" (Section 2):
raise the softmax temperature T so that the teacher's small probabilities — which wrong
classes it finds alike, its "dark knowledge" — carry information, and train the student on

    loss = α · T² · KL(p_T ‖ q_T) + (1 − α) · CE(softmax(z_s), labels)

where p_T = softmax(z_t / T) are the teacher's soft targets and q_T = softmax(z_s / T) the
student's. The soft term's gradient is (1/T)(q_T − p_T) per logit, and for large T that is
about (1/(K T²))(z_s − z_t) (zero-meaned logits, K classes): it shrinks like 1/T², so the
soft term is multiplied by T² to keep its weight against the hard term as T changes.
In that high-temperature limit distillation becomes Bucilă et al.'s (2006) and Ba &
Caruana's (2014) logit matching, ½‖z_s − z_t‖² (``objective="logit-matching"``). An
ensemble of teachers gives the average of their probabilities (of their zero-meaned
logits for logit matching).

:func:`distill` trains a student with :func:`tinysparse.train.fit`'s loop on a *transfer
set*: the labelled training set, with or without one class (``omit_class``), plus any
unlabelled images, optionally jittered by a few pixels. On a fixed transfer set the
teacher's targets are computed once, in evaluation mode, and looked up per batch; on a
jittered one the teacher sees each jittered batch. :func:`omitted_class_accuracies` is
the paper's omitted-digit experiment: raise the bias of the class the transfer set lacked.

The building blocks are the autograd's: :func:`~tinysparse.autograd.softmax` and
:func:`~tinysparse.autograd.cross_entropy` take a temperature, and the cross-entropy takes
soft targets.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, cross_entropy, no_grad, softmax
from tinysparse.data.dataset import Dataset, training_examples
from tinysparse.nn.dropout import deterministic
from tinysparse.nn.init import derived_seed
from tinysparse.nn.module import Module, Parameter
from tinysparse.train import UNLABELLED, BatchPreparation, History, fit

#: what the student is trained to match: the teacher's probabilities at temperature T
#: (Hinton et al.), or its zero-meaned logits (Bucilă et al., Ba & Caruana: T → ∞)
OBJECTIVES = ("soft-targets", "logit-matching")
#: Hinton et al.'s MNIST experiment: the bias of the omitted class raised by 3.5
PAPER_BIAS_SHIFT = 3.5
#: images per teacher forward pass when the targets of a whole transfer set are computed
TEACHER_BATCH = 1000
#: the position, below the seed, of the generator of the jitter (nn.init.derived_seed)
JITTER_STREAM = 16


# ---------------------------------------------------------------- checks
def check_options(temperature: float = 4.0, alpha: float = 0.9,
                  objective: str = "soft-targets", jitter: int = 0) -> None:
    """Raise a ValueError naming the first option that is out of range: ``temperature``
    must be a positive finite number, ``alpha`` a weight in [0, 1], ``objective`` one of
    :data:`OBJECTIVES`, ``jitter`` a whole number of pixels ≥ 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not (
            0 < temperature < math.inf):
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha: expected the soft term's weight, a number in [0, 1], got "
                         f"{alpha!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: unknown {objective!r}; choose one of {list(OBJECTIVES)}")
    if isinstance(jitter, bool) or not isinstance(jitter, numbers.Integral) or jitter < 0:
        raise ValueError(f"jitter: expected a whole number of pixels >= 0, got {jitter!r}")


def output_classes(model: Module) -> int | None:
    """The number of classes ``model`` scores: the width of its last fully connected layer
    (None when it has none, e.g. a network that ends in a convolution)."""
    widths = [module.out_features for module in model.modules()
              if isinstance(getattr(module, "out_features", None), int)]
    return widths[-1] if widths else None


def _teachers(teacher: Module | Sequence[Module], student: Module) -> list[Module]:
    """The teacher, or the ensemble's members, checked against the student."""
    teachers = [teacher] if isinstance(teacher, Module) else list(teacher)
    if not teachers or not all(isinstance(t, Module) for t in teachers):
        raise ValueError(f"teacher: expected a model or a list of models, got "
                         f"{type(teacher).__name__}")
    classes = output_classes(student)
    for number, member in enumerate(teachers):
        name = "teacher" if len(teachers) == 1 else f"teacher {number}"
        if member is student:
            raise ValueError(f"{name}: is the student itself; distil from another model")
        width = output_classes(member)
        if None not in (width, classes) and width != classes:
            raise ValueError(f"{name}: scores {width} classes but the student scores "
                             f"{classes}; a teacher and its student need the same classes")
    return teachers


# ---------------------------------------------------------------- soft targets
def soft_targets(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Hinton et al.'s soft targets ``q = softmax(z / T)``, row by row.

    Parameters
    ----------
    logits : array of shape (N, K)
    temperature : float
        T > 1 softens the distribution (T → ∞: uniform), T = 1 is the ordinary softmax.

    Returns
    -------
    np.ndarray of shape (N, K)
        Rows of probabilities, ``exp(z_i / T) / Σ_j exp(z_j / T)``.
    """
    with no_grad():
        return softmax(Tensor(np.asarray(logits)), axis=-1, temperature=temperature).data


def zero_meaned(logits: Any) -> np.ndarray:
    """``z − mean_k z`` row by row: the logits as logit matching compares them (adding a
    constant to a row of logits changes no probability)."""
    logits = np.asarray(logits)
    return logits - logits.mean(axis=-1, keepdims=True)


def teacher_targets(teacher: Module | Sequence[Module], images: np.ndarray,
                    temperature: float = 4.0, objective: str = "soft-targets",
                    batch_size: int = TEACHER_BATCH) -> np.ndarray:
    """What the student learns from: the teacher's soft targets on ``images``.

    Each teacher runs in evaluation mode (no dropout, no noise drawn, see
    :func:`tinysparse.nn.deterministic`) and without a graph, ``batch_size`` images at a
    time; its weights are only read.

    Parameters
    ----------
    teacher : Module or list of Modules
        One model, or an ensemble.
    images : np.ndarray
    temperature : float
    objective : {"soft-targets", "logit-matching"}

    Returns
    -------
    np.ndarray of shape (N, K)
        ``"soft-targets"``: ``p_T = (1/M) Σ_m softmax(z_m / T)``, the ensemble's average
        probabilities; ``"logit-matching"``: the average of the M zero-meaned logits.
    """
    check_options(temperature, objective=objective)
    teachers = [teacher] if isinstance(teacher, Module) else list(teacher)
    rows = []
    with contextlib.ExitStack() as stack, no_grad():
        for member in teachers:
            stack.enter_context(deterministic(member))
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            logits = [member(chunk).data for member in teachers]
            if objective == "soft-targets":
                targets = [soft_targets(z, temperature) for z in logits]
            else:
                targets = [zero_meaned(z) for z in logits]
            rows.append(sum(targets[1:], targets[0]) / len(targets))
    return np.concatenate(rows)


# ---------------------------------------------------------------- the losses
def soft_target_loss(student_logits: Tensor, teacher_probabilities: Any,
                     temperature: float) -> Tensor:
    """Hinton et al.'s soft term ``T² · KL(p_T ‖ q_T)``, averaged over the N rows.

    Parameters
    ----------
    student_logits : Tensor of shape (N, K)
        z_s; q_T = softmax(z_s / T).
    teacher_probabilities : array of shape (N, K)
        p_T, rows that sum to 1 (:func:`soft_targets` of the teacher's logits).
    temperature : float

    Returns
    -------
    Tensor
        ``T² · (1/N) Σ_n Σ_k p_nk (log p_nk − log q_nk)``. Its gradient is
        ``T (q_T − p_T) / N``: for large T about ``(z̃_s − z̃_t) / (N K)``, the gradient of
        :func:`logit_matching_loss` (z̃: zero-meaned logits).
    """
    p = _probabilities(teacher_probabilities, student_logits)
    # KL(p ‖ q) = Σ p log p − Σ p log q: the cross-entropy of q_T against p_T, less p_T's
    # entropy, which does not depend on the student (0 log 0 = 0).
    p_log_p = np.sum(p * np.log(np.where(p > 0, p, 1)), axis=1).mean()
    kl = cross_entropy(student_logits, p, temperature=temperature) + p_log_p
    # ∂KL/∂z_s = (1/T)(q_T − p_T) for each row (÷ N for the mean): cross_entropy's fused
    # backward. For large T that is ≈ (1/(K T²))(z̃_s − z̃_t), so the soft gradients shrink
    # like 1/T²; the factor T² (Hinton et al., Section 2) keeps their scale, and their
    # weight against the hard term, the same whatever T.
    return kl * (temperature * temperature)


def logit_matching_loss(student_logits: Tensor, teacher_logits: Any) -> Tensor:
    """Logit matching (Bucilă et al. 2006; Ba & Caruana 2014): ``(1/2K)‖z̃_s − z̃_t‖²``.

    The squared distance between the zero-meaned logits of student and teacher, averaged
    over the N rows and divided by the number of classes K: so scaled, it is the T → ∞
    limit of :func:`soft_target_loss` (Hinton et al., Section 2.1): its gradient
    ``(z̃_s − z̃_t) / (N K)`` is the soft term's for large T. Ba & Caruana's ½‖·‖² is K
    times this.

    Parameters
    ----------
    student_logits : Tensor of shape (N, K)
    teacher_logits : array of shape (N, K)
        Zero-meaned or not: each row is zero-meaned here.

    Returns
    -------
    Tensor
        ``(1/(2 N K)) Σ_n ‖z̃_s,n − z̃_t,n‖²``.
    """
    n, k = student_logits.shape
    target = zero_meaned(np.asarray(teacher_logits, dtype=student_logits.dtype))
    if target.shape != (n, k):
        raise ValueError(f"teacher_logits: expected the student's shape {(n, k)}, got "
                         f"{target.shape}")
    centred = student_logits - student_logits.mean(axis=1, keepdims=True)
    difference = centred - target
    # ∂/∂z_s = (z̃_s − z̃_t) / (N K): the centring's Jacobian (I − 11ᵀ/K) leaves the already
    # zero-meaned difference as it is
    return (difference * difference).sum() / (2 * n * k)


def distillation_loss(
    student_logits: Tensor,
    targets: Any,
    labels: Any = None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    objective: str = "soft-targets",
) -> Tensor:
    """The knowledge-distillation loss ``α · soft term + (1 − α) · CE(z_s, labels)``.

    Parameters
    ----------
    student_logits : Tensor of shape (N, K)
    targets : array of shape (N, K)
        The teacher's: probabilities p_T for ``"soft-targets"`` (the soft term is then
        :func:`soft_target_loss`, ``T² · KL(p_T ‖ q_T)``), logits for ``"logit-matching"``
        (:func:`logit_matching_loss`). :func:`teacher_targets` computes either.
    labels : array of shape (N,), optional
        Class indices; rows labelled ``UNLABELLED`` (-1) have none. The hard term is the
        ordinary cross-entropy (T = 1) averaged over the labelled rows, 0 when there are
        none (then the loss is α times the soft term).
    temperature : float
        T > 0 (not used by logit matching).
    alpha : float in [0, 1]
        The soft term's weight; Hinton et al. weigh the hard term much less (α near 1).
    objective : {"soft-targets", "logit-matching"}

    Returns
    -------
    Tensor
        A scalar.
    """
    check_options(temperature, alpha, objective)
    if objective == "soft-targets":
        soft = soft_target_loss(student_logits, targets, temperature)
    else:
        soft = logit_matching_loss(student_logits, targets)
    labelled = _labelled_rows(labels, student_logits.shape[0])
    if alpha == 1 or labelled is None or len(labelled) == 0:
        return soft * alpha
    if len(labelled) == student_logits.shape[0]:
        hard = cross_entropy(student_logits, labels)
    else:
        hard = cross_entropy(student_logits[labelled], np.asarray(labels)[labelled])
    return soft * alpha + hard * (1 - alpha)


def _probabilities(values: Any, logits: Tensor) -> np.ndarray:
    """Soft targets as an array of the logits' dtype, checked to be rows of probabilities."""
    p = np.asarray(values.data if isinstance(values, Tensor) else values, dtype=logits.dtype)
    if p.shape != tuple(logits.shape):
        raise ValueError(f"teacher_probabilities: expected the student's shape "
                         f"{tuple(logits.shape)}, got {p.shape}")
    tolerance = 1e-3 if p.dtype == np.float32 else 1e-9
    if p.size and (p.min() < 0 or np.abs(p.sum(axis=1) - 1).max() > tolerance):
        raise ValueError("teacher_probabilities: expected rows of probabilities (>= 0, "
                         "summing to 1); pass soft_targets(teacher_logits, T), not logits")
    return p


def _labelled_rows(labels: Any, n: int) -> np.ndarray | None:
    """Indices of the rows that have a label (None without labels)."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected {n} class indices (-1 for none), got an array "
                         f"of shape {labels.shape} and dtype {labels.dtype}")
    return np.flatnonzero(labels != UNLABELLED)


# ---------------------------------------------------------------- the transfer set
def jitter_images(images: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by its own random offset of up to ``pixels`` pixels along each
    axis (uniform over [−pixels, pixels]²), filling the uncovered border with zeros.

    ``images`` are (N, ..., H, W), or (N, H·W) for square images stored flat; the result
    has their shape. The offsets come from ``rng``: the same generator state, the same
    shifts.
    """
    if pixels == 0:
        return images
    square = images
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"jitter: images of {images.shape[1]} values are not square; "
                             f"pass them as (N, ..., H, W)")
        square = images.reshape(len(images), side, side)
    height, width = square.shape[-2:]
    padding = [(0, 0)] * (square.ndim - 2) + [(pixels, pixels), (pixels, pixels)]
    padded = np.pad(square, padding)
    shifts = rng.integers(-pixels, pixels + 1, size=(len(images), 2))
    shifted = np.empty_like(square)
    for i, (down, right) in enumerate(shifts):
        # out[y, x] = image[y − down, x − right]: the window of the padded image that starts
        # at (pixels − down, pixels − right)
        top, left = pixels - down, pixels - right
        shifted[i] = padded[i, ..., top:top + height, left:left + width]
    return shifted.reshape(images.shape)


def jittered_batches(pixels: int, seed: int = 0) -> BatchPreparation:
    """A ``prepare_batch`` for :func:`~tinysparse.train.fit` that trains on labelled
    images shifted by up to ``pixels`` pixels, anew in every batch (the augmentation of
    Hinton et al.'s MNIST teacher, whose training images were jittered by up to 2 pixels).

    The shifts come from a generator seeded by ``seed`` (its own stream, so the batch order
    is the same with or without jitter): the same seed, the same shifts.

    Examples
    --------
    >>> fit(teacher, data, epochs=20, seed=0,
    ...     prepare_batch=jittered_batches(2, seed=0))  # doctest: +SKIP
    """
    check_options(jitter=pixels)
    rng = np.random.default_rng(derived_seed(seed, JITTER_STREAM))
    return lambda x, y, index: (jitter_images(x, pixels, rng), y)


def transfer_set(data: Dataset | tuple[np.ndarray, np.ndarray] | None,
                 omit_class: int | None = None, unlabelled: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The images the student is distilled on, with their labels (``UNLABELLED`` where
    there are none): ``data``'s training examples without those of class ``omit_class``
    (no labelled example when ``data`` is None), then the ``unlabelled`` images."""
    if data is None and unlabelled is None:
        raise ValueError("data: no transfer set; give labelled data, unlabelled images or "
                         "both")
    parts_x, parts_y = [], []
    if data is not None:
        x, y = training_examples(data)
        if omit_class is not None:
            kept = y != omit_class
            x, y = x[kept], y[kept]
        parts_x.append(x)
        parts_y.append(y)
    if unlabelled is not None:
        unlabelled = np.asarray(unlabelled)
        if parts_x and unlabelled.shape[1:] != parts_x[0].shape[1:]:
            raise ValueError(f"unlabelled: images of shape {unlabelled.shape[1:]}, but the "
                             f"labelled ones are {parts_x[0].shape[1:]}")
        parts_x.append(unlabelled.astype(parts_x[0].dtype if parts_x else unlabelled.dtype,
                                         copy=False))
        parts_y.append(np.full(len(unlabelled), UNLABELLED,
                               dtype=parts_y[0].dtype if parts_y else np.int64))
    x, y = np.concatenate(parts_x), np.concatenate(parts_y)
    if len(x) == 0:
        raise ValueError(f"transfer set: no example left (omit_class={omit_class})")
    return x, y


# ---------------------------------------------------------------- training
def distill(
    student: Module,
    teacher: Module | Sequence[Module],
    data: Dataset | tuple[np.ndarray, np.ndarray] | None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    objective: str = "soft-targets",
    jitter: int = 0,
    omit_class: int | None = None,
    unlabelled: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    seed: int = 0,
    desc: str = "distill",
    **fit_options: Any,
) -> History:
    """Train ``student`` on the teacher's soft targets and the labels (Hinton et al. 2015).

    The loop is :func:`tinysparse.train.fit`'s (seeded batch order, progress bar, History,
    validation, early stopping), with the loss :func:`distillation_loss`. The transfer set
    (:func:`transfer_set`) is ``data``'s training examples, without class ``omit_class``,
    plus the ``unlabelled`` images. Without ``jitter`` the teacher's targets are computed
    once for the whole transfer set and looked up batch by batch; with it, every batch is
    shifted by up to ``jitter`` pixels (a generator seeded from ``seed``) and the teacher
    labels the shifted images. The teacher runs in evaluation mode without a graph: its
    weights never change.

    Parameters
    ----------
    student : Module
        Trained in place.
    teacher : Module or list of Modules
        With several, the student learns their average probabilities (their average
        zero-meaned logits for logit matching).
    data : Dataset, (x, y) or None
        The labelled examples (a Dataset's training split); None to distil on
        ``unlabelled`` images alone.
    temperature : float
        T > 0 of both softmaxes of the soft term (Hinton et al.: 20 for their 2×800
        student, 2.5–4 for small ones).
    alpha : float in [0, 1]
        Weight of the soft term; the labels get 1 − α.
    objective : {"soft-targets", "logit-matching"}
        Match the probabilities at temperature T, or the zero-meaned logits (T → ∞).
    jitter : int
        Shift each transfer image by up to this many pixels, anew every epoch.
    omit_class : int, optional
        Leave this class out of the transfer set (the omitted-digit experiment; see
        :func:`omitted_class_accuracies`).
    unlabelled : np.ndarray, optional
        More transfer images, without labels: only the soft term learns from them.
    targets : np.ndarray, optional
        The teacher's targets on the transfer set, if they are known already
        (``teacher_targets(teacher, transfer_set(data, omit_class, unlabelled)[0],
        temperature, objective)``): a sweep over α, or a benchmark, labels the transfer
        set once. Not with ``jitter`` (jittered images are labelled as they are made).
    seed : int
        Seeds the batch order and the jitter.
    desc : str
        The progress bar's label.
    **fit_options
        Passed to :func:`~tinysparse.train.fit`: ``epochs``, ``batch_size``,
        ``optimizer``, ``lr``, ``validation``, ``patience``, ``quiet``, ... (not
        ``validation_split``: hold out data before, and pass ``validation``).

    Returns
    -------
    History
        As :func:`~tinysparse.train.fit`'s: ``train_loss`` is the distillation loss,
        ``train_accuracy`` the accuracy on the transfer set's labelled examples.

    Raises
    ------
    ValueError
        For a temperature ≤ 0, α outside [0, 1], a teacher that scores other classes than
        the student, ``omit_class`` outside the student's classes, ...
    """
    check_options(temperature, alpha, objective, jitter)
    teachers = _teachers(teacher, student)
    classes = output_classes(student)
    if omit_class is not None and (isinstance(omit_class, bool) or not isinstance(
            omit_class, numbers.Integral) or omit_class < 0 or (
            classes is not None and omit_class >= classes)):
        raise ValueError(f"omit_class: expected a class of the student, 0 to "
                         f"{'K' if classes is None else classes} - 1, got {omit_class!r}")
    x, y = transfer_set(data, omit_class, unlabelled)
    if targets is not None:
        if jitter:
            raise ValueError("targets: the teacher labels jittered images as they are made; "
                             "give jitter=0 with targets computed beforehand")
        targets = np.asarray(targets)
        if targets.ndim != 2 or len(targets) != len(x) or (
                classes is not None and targets.shape[1] != classes):
            raise ValueError(f"targets: expected one row of {classes or 'K'} per transfer "
                             f"example, {len(x)} rows, got shape {targets.shape}")

    if jitter == 0:
        # filled at the first batch, after fit's own checks
        cached: list[np.ndarray] = [] if targets is None else [targets]

        def prepare_batch(xb, yb, index):
            if not cached:  # the teacher labels the whole transfer set once, for all epochs
                cached.append(teacher_targets(teachers, x, temperature, objective))
            return xb, (cached[0][index], yb)
    else:
        jitter_rng = np.random.default_rng(derived_seed(seed, JITTER_STREAM))

        def prepare_batch(xb, yb, index):
            shifted = jitter_images(xb, jitter, jitter_rng)
            return shifted, (teacher_targets(teachers, shifted, temperature, objective), yb)

    def loss(output: Tensor, target: tuple[np.ndarray, np.ndarray]) -> Tensor:
        targets, labels = target
        return distillation_loss(output, targets, labels, temperature=temperature,
                                 alpha=alpha, objective=objective)

    return fit(student, (x, y), loss=loss, prepare_batch=prepare_batch, seed=seed, desc=desc,
               **fit_options)


# ---------------------------------------------------------------- the omitted class
def output_bias(model: Module) -> Parameter:
    """The bias of ``model``'s output layer (the last layer that has a bias)."""
    biases = [module.bias for module in model.modules()
              if isinstance(getattr(module, "bias", None), Parameter)]
    if not biases:
        raise ValueError(f"model: {model.describe()} has no layer with a bias to shift")
    return biases[-1]


def shift_class_bias(model: Module, class_index: int, shift: float) -> None:
    """Add ``shift`` to the output bias of class ``class_index``, in place: every logit of
    that class grows by ``shift``, so the model predicts it more often."""
    bias = output_bias(model)
    if not 0 <= class_index < bias.shape[0]:
        raise ValueError(f"class_index: expected a class in [0, {bias.shape[0]}), got "
                         f"{class_index}")
    bias.data[class_index] += shift


def omitted_class_accuracies(model: Module, x: np.ndarray, y: np.ndarray, omitted_class: int,
                             bias_shift: float = PAPER_BIAS_SHIFT) -> dict[str, float]:
    """Hinton et al.'s omitted-digit experiment: accuracy on one class and on the others,
    before and after raising that class's output bias by ``bias_shift``.

    A student distilled on a transfer set without class K learns its logit only from the
    teacher's soft targets on the other classes; it often ranks K second when it should
    rank it first, and a shift of its bias recovers it (the paper: no 3s in the transfer
    set, 133 of the 1,010 test threes wrong; + 3.5 to the bias of 3: 14 wrong). The model
    is left as it was.

    Returns
    -------
    dict
        ``omitted_class_accuracy_before_shift``, ``omitted_class_accuracy_after_shift``,
        ``other_classes_accuracy_before_shift``, ``other_classes_accuracy_after_shift``
        (fractions in [0, 1]) and ``bias_shift``.
    """
    y = np.asarray(y)
    is_omitted = y == omitted_class
    if not is_omitted.any() or is_omitted.all():
        raise ValueError(f"omitted_class: the data need examples of class {omitted_class} "
                         f"and of other classes")

    def accuracies() -> tuple[float, float]:
        right = model.predict(x) == y
        return float(right[is_omitted].mean()), float(right[~is_omitted].mean())

    before = accuracies()
    bias = output_bias(model)
    original = bias.data[omitted_class].copy()
    try:
        shift_class_bias(model, omitted_class, bias_shift)
        after = accuracies()
    finally:
        bias.data[omitted_class] = original  # exactly as it was
    return {"omitted_class_accuracy_before_shift": before[0],
            "omitted_class_accuracy_after_shift": after[0],
            "other_classes_accuracy_before_shift": before[1],
            "other_classes_accuracy_after_shift": after[1],
            "bias_shift": float(bias_shift)}
