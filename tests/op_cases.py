"""Every differentiable op, with inputs and its PyTorch twin.

The same table drives the finite-difference gradient checks (``test_gradcheck.py``) and
the PyTorch oracle (``test_torch_oracle.py``), so no op can be added to one and forgotten
in the other. ``ours`` takes tinysparse tensors; ``theirs`` takes torch tensors and the
``torch`` module; ``inputs`` builds float64 NumPy arrays from a Generator (integer arrays
such as labels are passed through without gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dropout_cases
import numpy as np

import tinysparse.autograd as A
from tinysparse import distill


@dataclass
class OpCase:
    name: str
    ours: Callable[..., Any]
    theirs: Callable[..., Any]
    inputs: Callable[[np.random.Generator], list[np.ndarray]]


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def distinct(*shape):
    """Values with no ties (max and max-pool are not differentiable at ties)."""
    return lambda rng: (rng.permutation(np.prod(shape)).reshape(shape) + 0.5) / 7.0 - 1.0


def both(*makers):
    return lambda rng: [make(rng) for make in makers]


LABELS = np.array([0, 2, 1, 4, 3, 2])
TAKE_INDICES = np.array([[0, 2, 2], [5, 2, 0]])  # entries 1, 3, 4 unused
SHARED_INDEX = np.array([[1, 0, 3, 1], [2, 2, 0, 1], [0, 3, 3, 1]])  # 0 where pruned
SHARED_MASK = (SHARED_INDEX != 0).astype(np.float64)
# a sparse (5, 4) matrix by its non-zeros: row 3 empty, column 1 used three times
SPARSE_ROWS = np.array([0, 0, 1, 2, 2, 4, 4])
SPARSE_COLUMNS = np.array([1, 3, 1, 0, 2, 1, 3])
SPARSE_VALUES = np.array([0.5, -1.0, 2.0, 1.5, -0.25, 0.75, 1.0])
SPARSE_DENSE = np.zeros((5, 4))
SPARSE_DENSE[SPARSE_ROWS, SPARSE_COLUMNS] = SPARSE_VALUES
PARTLY_LABELLED = np.array([0, -1, 1, 4, -1, 2])  # -1: tinysparse.train.UNLABELLED
SOFT_TARGETS_SEED = 7
GROUP_WEIGHTS = np.array([0.5, 2.0, 1.0])  # λ_g of the weighted group-lasso row


def soft_targets(rng):
    return np.random.default_rng(SOFT_TARGETS_SEED).dirichlet(np.ones(5), size=6)


CASES = [
    # arithmetic, with broadcasting in both directions
    OpCase("add", lambda a, b: a + b, lambda t, a, b: a + b,
           both(normal(3, 1, 4), normal(2, 1))),
    OpCase("sub", lambda a, b: a - b, lambda t, a, b: a - b,
           both(normal(3, 4), normal(1, 4))),
    OpCase("mul", lambda a, b: a * b, lambda t, a, b: a * b,
           both(normal(2, 3, 1), normal(3, 5))),
    OpCase("div", lambda a, b: a / b, lambda t, a, b: a / b,
           both(normal(4, 3), positive(3))),
    OpCase("neg", lambda a: -a, lambda t, a: -a, both(normal(3, 4))),
    OpCase("pow_scalar", lambda a: a**3, lambda t, a: a**3, both(normal(3, 4))),
    OpCase("pow_tensor", lambda a, b: a**b, lambda t, a, b: a**b,
           both(positive(3, 4), normal(3, 4))),
    OpCase("matmul", lambda a, b: a @ b, lambda t, a, b: a @ b,
           both(normal(3, 4), normal(4, 5))),
    OpCase("matmul_batched", lambda a, b: a @ b, lambda t, a, b: a @ b,
           both(normal(2, 3, 4), normal(4, 5))),
    # reductions
    OpCase("sum_all", lambda a: a.sum(), lambda t, a: a.sum(), both(normal(3, 4))),
    OpCase("sum_axis", lambda a: a.sum(axis=1, keepdims=True),
           lambda t, a: a.sum(dim=1, keepdim=True), both(normal(3, 4, 2))),
    OpCase("mean", lambda a: a.mean(axis=(0, 2)), lambda t, a: a.mean(dim=(0, 2)),
           both(normal(3, 4, 2))),
    OpCase("max", lambda a: a.max(axis=1), lambda t, a: t.amax(a, dim=1),
           both(distinct(3, 5))),
    # shapes and indexing
    OpCase("reshape", lambda a: a.reshape(6, 2) * 1.5, lambda t, a: a.reshape(6, 2) * 1.5,
           both(normal(3, 4))),
    OpCase("transpose", lambda a: a.transpose(2, 0, 1), lambda t, a: a.permute(2, 0, 1),
           both(normal(2, 3, 4))),
    OpCase("getitem_slice", lambda a: a[1:, ::2], lambda t, a: a[1:, ::2],
           both(normal(4, 5))),
    OpCase("getitem_repeated", lambda a: a[np.array([0, 2, 0])],
           lambda t, a: a[t.tensor([0, 2, 0])], both(normal(4, 3))),
    # entries of a table picked by index (repeated, and some never): gradient = scatter-add
    OpCase("take", lambda a: A.take(a, TAKE_INDICES) * 1.5,
           lambda t, a: t.take(a, t.tensor(TAKE_INDICES)) * 1.5, both(normal(6))),
    # a sparse matrix times a vector (tinysparse.intrinsic: θ₀ + P v), against a dense product
    OpCase("sparse_matvec",
           lambda x: A.sparse_matvec(x, SPARSE_ROWS, SPARSE_COLUMNS, SPARSE_VALUES, 5) * 1.5,
           lambda t, x: (t.tensor(SPARSE_DENSE) @ x) * 1.5, both(normal(4))),
    # weight sharing (tinysparse.compress): W = codebook[index] ⊙ M, entry 0 the zero
    OpCase("take_shared_weight_linear",
           lambda x, c, b: A.linear(x, A.take(c, SHARED_INDEX) * SHARED_MASK, b),
           lambda t, x, c, b: t.nn.functional.linear(
               x, t.take(c, t.tensor(SHARED_INDEX)) * t.tensor(SHARED_MASK), b),
           both(normal(5, 4), normal(4), normal(3))),
    # elementwise functions
    OpCase("exp", lambda a: a.exp(), lambda t, a: a.exp(), both(normal(3, 4))),
    OpCase("log", lambda a: a.log(), lambda t, a: a.log(), both(positive(3, 4))),
    OpCase("relu", A.relu, lambda t, a: t.relu(a), both(distinct(3, 4))),
    OpCase("tanh", A.tanh, lambda t, a: t.tanh(a), both(normal(3, 4))),
    OpCase("sigmoid", A.sigmoid, lambda t, a: t.sigmoid(a), both(normal(3, 4))),
    # softmax family, with temperature
    OpCase("softmax", lambda a: A.softmax(a, axis=1, temperature=2.0),
           lambda t, a: t.softmax(a / 2.0, dim=1), both(normal(4, 5))),
    OpCase("log_softmax", lambda a: A.log_softmax(a, axis=-1, temperature=0.5),
           lambda t, a: t.log_softmax(a / 0.5, dim=-1), both(normal(4, 5))),
    OpCase("cross_entropy", lambda a: A.cross_entropy(a, LABELS),
           lambda t, a: t.nn.functional.cross_entropy(a, t.tensor(LABELS)),
           both(normal(6, 5))),
    OpCase("cross_entropy_temperature", lambda a: A.cross_entropy(a, LABELS, temperature=3.0),
           lambda t, a: t.nn.functional.cross_entropy(a / 3.0, t.tensor(LABELS)),
           both(normal(6, 5))),
    OpCase("cross_entropy_soft", lambda a: A.cross_entropy(a, soft_targets(None), 2.0),
           lambda t, a: t.nn.functional.cross_entropy(
               a / 2.0, t.tensor(soft_targets(None))),
           both(normal(6, 5))),
    OpCase("cross_entropy_none", lambda a: A.cross_entropy(a, LABELS, reduction="none"),
           lambda t, a: t.nn.functional.cross_entropy(a, t.tensor(LABELS), reduction="none"),
           both(normal(6, 5))),
    OpCase("mse_loss", A.mse_loss, lambda t, a, b: t.nn.functional.mse_loss(a, b),
           both(normal(4, 3), normal(4, 3))),
    # layers
    OpCase("linear", A.linear, lambda t, x, w, b: t.nn.functional.linear(x, w, b),
           both(normal(5, 4), normal(3, 4), normal(3))),
    OpCase("conv2d", lambda x, w, b: A.conv2d(x, w, b, stride=1, padding=0),
           lambda t, x, w, b: t.nn.functional.conv2d(x, w, b),
           both(normal(2, 3, 6, 6), normal(4, 3, 3, 3), normal(4))),
    OpCase("conv2d_stride_padding", lambda x, w, b: A.conv2d(x, w, b, stride=2, padding=1),
           lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, stride=2, padding=1),
           both(normal(2, 2, 7, 7), normal(3, 2, 3, 3), normal(3))),
    # C·KH·KW ≥ 100: one product for the whole batch (shorter columns: one per image)
    OpCase("conv2d_long_columns", lambda x, w, b: A.conv2d(x, w, b, stride=2, padding=1),
           lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, stride=2, padding=1),
           both(normal(2, 12, 5, 5), normal(3, 12, 3, 3), normal(3))),
    OpCase("conv2d_no_bias", lambda x, w: A.conv2d(x, w, padding=2),
           lambda t, x, w: t.nn.functional.conv2d(x, w, padding=2),
           both(normal(1, 1, 5, 5), normal(2, 1, 5, 5))),
    OpCase("max_pool2d", lambda x: A.max_pool2d(x, 2),
           lambda t, x: t.nn.functional.max_pool2d(x, 2), both(distinct(2, 3, 6, 6))),
    OpCase("max_pool2d_overlapping", lambda x: A.max_pool2d(x, 3, stride=2),
           lambda t, x: t.nn.functional.max_pool2d(x, 3, stride=2),
           both(distinct(2, 2, 7, 7))),
    OpCase("flatten", lambda x: A.flatten(x) * 2.0, lambda t, x: t.flatten(x, 1) * 2.0,
           both(normal(2, 3, 2, 2))),
    # ---- dropout, DropConnect, targeted dropout (frozen masks)
    # The mask is a boolean input (no gradient); PyTorch's dropout given its mask r is
    # x ⊙ r / (1 − p), which is what ``theirs`` computes (inputs: tests/dropout_cases.py).
    OpCase("dropout", lambda x, keep: A.dropout(x, keep, 1 / (1 - 0.5)),
           lambda t, x, keep: x * keep / (1 - 0.5),
           both(normal(6, 5), dropout_cases.bernoulli(0.5, 6, 5))),
    OpCase("dropout_conv_activations", lambda x, keep: A.dropout(x, keep, 1 / (1 - 0.2)),
           lambda t, x, keep: x * keep / (1 - 0.2),
           both(normal(2, 3, 4, 4), dropout_cases.bernoulli(0.2, 2, 3, 4, 4))),
    OpCase("dropout_reused_input", lambda x, keep: A.dropout(x, keep, 2.0) * x + x,
           lambda t, x, keep: x * keep * 2.0 * x + x,
           both(normal(4, 3), dropout_cases.bernoulli(0.5, 4, 3))),
    OpCase("dropconnect_linear",
           lambda x, w, b, keep: A.linear(x, A.dropout(w, keep, 1 / (1 - 0.5)), b),
           lambda t, x, w, b, keep: t.nn.functional.linear(x, w * keep / (1 - 0.5), b),
           both(normal(5, 4), normal(3, 4), normal(3), dropout_cases.bernoulli(0.5, 3, 4))),
    OpCase("dropconnect_conv2d",
           lambda x, w, b, keep: A.conv2d(x, A.dropout(w, keep, 1 / (1 - 0.3)), b, padding=1),
           lambda t, x, w, b, keep: t.nn.functional.conv2d(x, w * keep / (1 - 0.3), b,
                                                           padding=1),
           both(normal(2, 2, 5, 5), normal(3, 2, 3, 3), normal(3),
                dropout_cases.bernoulli(0.3, 3, 2, 3, 3))),
    OpCase("dropconnect_sparse_linear",
           lambda x, values, b, keep: dropout_cases.sparse_linear_fixed(
               x, A.dropout(values, keep, 2.0), b),
           lambda t, x, values, b, keep: t.nn.functional.linear(
               x, dropout_cases.dense_from_values(t, values * keep * 2.0), b),
           both(normal(5, 6), normal(dropout_cases.SPARSE_STRUCTURE.nnz), normal(4),
                dropout_cases.bernoulli(0.5, dropout_cases.SPARSE_STRUCTURE.nnz))),
    OpCase("targeted_weight_dropout_linear",
           lambda x, w, b, keep: A.linear(x, A.dropout(w, keep), b),
           lambda t, x, w, b, keep: t.nn.functional.linear(x, w * keep, b),
           dropout_cases.targeted_inputs("weight", alpha=0.5)),
    OpCase("targeted_unit_dropout_conv2d",
           lambda x, w, b, keep: A.conv2d(x, A.dropout(w, keep), b),
           lambda t, x, w, b, keep: t.nn.functional.conv2d(x, w * keep, b),
           dropout_cases.targeted_inputs("unit", alpha=1.0, conv=True)),  # 2 of 4 filters
    # ---- sparse variational dropout (frozen noise) and L0 gates
    # log α = clip(log σ² − log θ², −8, 8): some entries beyond the clip (no gradient there)
    OpCase("log_alpha", A.log_alpha,
           lambda t, th, s: t.clamp(s - t.log(th * th + 1e-16), -8.0, 8.0),
           lambda rng: [rng.standard_normal((4, 5)), rng.uniform(-14.0, 10.0, (4, 5))]),
    OpCase("variational_dropout_kl", A.variational_dropout_kl,
           lambda t, a: -(0.63576 * t.sigmoid(1.87320 + 1.48695 * a)
                          - 0.5 * t.log1p(t.exp(-a)) - 0.63576).sum(),
           lambda rng: [rng.uniform(-8.0, 8.0, (4, 5))]),
    # −Σ_i log Σ_j π_j N(w_i | μ_j, 1/λ_j): weights near and far from every component
    # (the far ones have responsibilities of one component only), all four inputs free
    OpCase("mixture_neg_log_prob", A.mixture_neg_log_prob,
           lambda t, w, mu, g, lp: -t.logsumexp(
               lp + 0.5 * g - 0.5 * np.log(2 * np.pi)
               - 0.5 * t.exp(g) * (w[:, None] - mu) ** 2, dim=1).sum(),
           lambda rng: [np.concatenate([rng.normal(0, 0.5, 9), [-3.0, 4.0]]),
                        np.array([-0.6, 0.0, 0.2, 0.7]), rng.normal(1.0, 0.5, 4),
                        rng.normal(-1.5, 0.5, 4)]),
    # a reused weight: a data term and the prior both reach w (as in training)
    OpCase("mixture_neg_log_prob_reused",
           lambda w, mu, g: (w * w).sum() + 0.1 * A.mixture_neg_log_prob(
               w, mu, g, np.log([0.5, 0.3, 0.2])),
           lambda t, w, mu, g: (w * w).sum() - 0.1 * t.logsumexp(
               t.log(t.tensor([0.5, 0.3, 0.2], dtype=t.float64)) + 0.5 * g
               - 0.5 * np.log(2 * np.pi) - 0.5 * t.exp(g) * (w[:, None] - mu) ** 2,
               dim=1).sum(),
           lambda rng: [rng.normal(0, 0.5, 7), np.array([-0.4, 0.0, 0.5]),
                        rng.normal(2.0, 0.3, 3)]),
    # the noise ε is an input without gradient, the same fixed draws for both sides
    OpCase("local_reparameterisation_linear",
           lambda x, th, s, b: A.local_reparameterisation_linear(
               x, th, s, b, noise=frozen_normal(5, 3)),
           lambda t, x, th, s, b: t.nn.functional.linear(x, th, b) + t.sqrt(
               t.nn.functional.linear(x * x, t.exp(s)) + 1e-8) * t.tensor(frozen_normal(5, 3)),
           lambda rng: [rng.standard_normal((5, 4)), rng.standard_normal((3, 4)),
                        rng.uniform(-3.0, 0.5, (3, 4)), rng.standard_normal(3)]),
    OpCase("local_reparameterisation_conv2d",
           lambda x, th, s, b: A.local_reparameterisation_conv2d(
               x, th, s, b, padding=1, noise=frozen_normal(2, 4, 6, 6)),
           lambda t, x, th, s, b: t.nn.functional.conv2d(x, th, b, padding=1) + t.sqrt(
               t.nn.functional.conv2d(x * x, t.exp(s), padding=1) + 1e-8)
           * t.tensor(frozen_normal(2, 4, 6, 6)),
           lambda rng: [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)),
                        rng.uniform(-3.0, 0.5, (4, 3, 3, 3)), rng.standard_normal(4)]),
    # C·KH·KW ≥ 100 (one product for the whole batch), stride 2, no bias
    OpCase("local_reparameterisation_conv2d_long_columns",
           lambda x, th, s: A.local_reparameterisation_conv2d(
               x, th, s, stride=2, padding=1, noise=frozen_normal(2, 3, 3, 3)),
           lambda t, x, th, s: t.nn.functional.conv2d(x, th, stride=2, padding=1) + t.sqrt(
               t.nn.functional.conv2d(x * x, t.exp(s), stride=2, padding=1) + 1e-8)
           * t.tensor(frozen_normal(2, 3, 3, 3)),
           lambda rng: [rng.standard_normal((2, 12, 5, 5)), rng.standard_normal((3, 12, 3, 3)),
                        rng.uniform(-3.0, 0.5, (3, 12, 3, 3))]),
    # z = min(1, max(0, σ((log u − log(1 − u) + log α)/β)(ζ − γ) + γ)): some gates at 0 or 1
    OpCase("hard_concrete", lambda a: A.hard_concrete(a, frozen_uniform(4, 5)),
           lambda t, a: t.clamp(t.sigmoid((t.log(t.tensor(frozen_uniform(4, 5)))
                                           - t.log1p(-t.tensor(frozen_uniform(4, 5))) + a)
                                          / (2 / 3)) * 1.2 - 0.1, 0.0, 1.0),
           lambda rng: [2.0 * rng.standard_normal((4, 5))]),
    # ---- group lasso (Wen et al. 2016): Σ_g λ_g ‖w_g‖₂, groups along one axis
    OpCase("group_lasso_rows", lambda w: A.group_lasso(w, axis=0),
           lambda t, w: t.linalg.vector_norm(w, dim=1).sum(), both(normal(4, 6))),
    OpCase("group_lasso_columns_weighted",
           lambda w: A.group_lasso(w, axis=1, group_weights=GROUP_WEIGHTS),
           lambda t, w: (t.tensor(GROUP_WEIGHTS) * t.linalg.vector_norm(w, dim=0)).sum(),
           both(normal(4, 3))),
    OpCase("group_lasso_filters", lambda w: A.group_lasso(w, axis=0),
           lambda t, w: t.linalg.vector_norm(w, dim=(1, 2, 3)).sum(),
           both(normal(4, 2, 3, 3))),
    OpCase("group_lasso_input_channels", lambda w: A.group_lasso(w, axis=1) * 0.5,
           lambda t, w: 0.5 * t.linalg.vector_norm(w, dim=(0, 2, 3)).sum(),
           both(normal(4, 3, 2, 2))),
    # a reused weight: the data term and the penalty both reach w
    OpCase("group_lasso_reused", lambda w: (w * w).sum() + A.group_lasso(w, axis=0) * 0.1,
           lambda t, w: (w * w).sum() + 0.1 * t.linalg.vector_norm(w, dim=1).sum(),
           both(normal(3, 5))),
    # ---- Ising-dropout
    # ---- knowledge distillation: the teacher's logits are frozen inputs (no gradient)
    # T² · KL(p_T ‖ q_T), p_T = softmax(z_t / T): PyTorch's kl_div takes log q_T and p_T
    OpCase("distillation_soft_target_loss",
           lambda z: distill.soft_target_loss(z, distill.soft_targets(frozen_logits(6, 5), 3.0),
                                              3.0),
           lambda t, z: 3.0**2 * t.nn.functional.kl_div(
               t.log_softmax(z / 3.0, dim=1), t.softmax(t.tensor(frozen_logits(6, 5)) / 3.0,
                                                        dim=1), reduction="batchmean"),
           both(normal(6, 5))),
    # α · T² · KL + (1 − α) · CE(z, labels)
    OpCase("distillation_loss",
           lambda z: distill.distillation_loss(
               z, distill.soft_targets(frozen_logits(6, 5), 2.5), LABELS, temperature=2.5,
               alpha=0.7),
           lambda t, z: 0.7 * 2.5**2 * t.nn.functional.kl_div(
               t.log_softmax(z / 2.5, dim=1), t.softmax(t.tensor(frozen_logits(6, 5)) / 2.5,
                                                        dim=1), reduction="batchmean")
           + 0.3 * t.nn.functional.cross_entropy(z, t.tensor(LABELS)),
           both(normal(6, 5))),
    # rows labelled -1 (unlabelled transfer examples) have no hard term
    OpCase("distillation_loss_unlabelled_rows",
           lambda z: distill.distillation_loss(
               z, distill.soft_targets(frozen_logits(6, 5), 4.0), PARTLY_LABELLED,
               temperature=4.0, alpha=0.6),
           lambda t, z: 0.6 * 4.0**2 * t.nn.functional.kl_div(
               t.log_softmax(z / 4.0, dim=1), t.softmax(t.tensor(frozen_logits(6, 5)) / 4.0,
                                                        dim=1), reduction="batchmean")
           + 0.4 * t.nn.functional.cross_entropy(z[PARTLY_LABELLED >= 0],
                                                 t.tensor(PARTLY_LABELLED[PARTLY_LABELLED >= 0])),
           both(normal(6, 5))),
    # the T → ∞ limit: (1/2K) · mean over rows of ‖z̃_s − z̃_t‖², z̃ zero-meaned by row
    OpCase("logit_matching_loss",
           lambda z: distill.logit_matching_loss(z, frozen_logits(6, 5)),
           lambda t, z: 0.5 * t.nn.functional.mse_loss(
               z - z.mean(dim=1, keepdim=True),
               t.tensor(frozen_logits(6, 5)) - t.tensor(frozen_logits(6, 5)).mean(
                   dim=1, keepdim=True)),
           both(normal(6, 5))),
]

CASE_IDS = [case.name for case in CASES]


# Frozen noise for the sparse variational dropout and L0 rows: the same draws on both sides.
FROZEN_NOISE_SEED = 11


def frozen_normal(*shape):
    return np.random.default_rng(FROZEN_NOISE_SEED).standard_normal(shape)


def frozen_uniform(*shape):
    return np.random.default_rng(FROZEN_NOISE_SEED).uniform(0.0, 1.0, shape)


# A teacher's logits for the distillation rows: frozen, spread like a trained network's.
TEACHER_LOGITS_SEED = 13


def frozen_logits(*shape):
    return 3.0 * np.random.default_rng(TEACHER_LOGITS_SEED).standard_normal(shape)
