"""Intrinsic dimension (Li, Farkhoor, Liu & Yosinski, ICLR 2018): how many numbers a task
needs, measured by training a network in a random subspace of its weights.

All D weights of a model are tied to d trainable numbers ``v``:

    θ = θ₀ + P v,      θ₀ the model's initial weights (all of them, biases too),
                       P a fixed random D×d matrix, v ∈ R^d starting at 0,

so training starts exactly at θ₀ and moves only within the d-dimensional affine subspace
through it. By the chain rule the gradient of the loss with respect to ``v`` is

    ∂L/∂v = Pᵀ ∂L/∂θ.

The smallest d at which the subspace-trained network reaches 90% of the ordinarily
trained network's accuracy is ``d_int90``; Li et al. report about 750 for fully
connected networks on MNIST, nearly the same across widths and depths.

**The projection.** A dense P for LeNet-300-100 (D = 266,610) at d = 750 would take
0.8 GB in float32, so P is *sparse*: Li, Hastie & Church's "very sparse random
projection" (KDD 2006), each entry non-zero with probability ``1/√D`` and then ±1 with
equal chance, each column scaled to unit length (the column with k non-zeros holds
±1/√k). About ``d·√D`` non-zeros: 387,000 for LeNet-300-100 at d = 750. Li et al. 2018
use sparse projections of this kind for their larger networks (and the Fastfood
transform, not built here); the exact scheme is *not* recorded in our references, so
treat the match as recalled, not checked. :class:`SparseProjection` stores P in CSR
order (its non-zeros sorted by row, with their row and column indices).

**How the model runs.** :class:`Subspace` is a module whose only parameter is ``v``. Its
forward pass builds each weight of the wrapped model as a graph node,

    W_i = reshape(θ₀_i + P_i v),     P_i the rows of P that belong to W_i,

with :func:`~tinysparse.autograd.sparse_matvec` (whose backward is ``P_iᵀ g_i``), lends
these tensors to the model's layers for that one call (:func:`lent_parameters`), and
puts the model's own parameters back afterwards. Backpropagation then sums the pieces
``P_iᵀ ∂L/∂W_i`` into ``v.grad``, which is ``Pᵀ ∂L/∂θ``; the engine and the layers know
nothing of subspaces, and ``fit`` trains a Subspace like any other model (Adam on v).
:meth:`Subspace.write_weights` copies θ into the wrapped model's parameters, so it can
be evaluated, pruned or saved on its own.

:func:`find_intrinsic_dimension` sweeps d, then bisects between the largest d that
failed and the smallest that reached 90% of the dense accuracy.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, sparse_matvec
from tinysparse.data.dataset import Dataset
from tinysparse.nn.module import Module, Parameter
from tinysparse.train import History, evaluate, fit

#: the fraction of the dense network's accuracy that defines d_int90
THRESHOLD = 0.9


# ---------------------------------------------------------------- the projection
@dataclass(frozen=True)
class SparseProjection:
    """A D×d matrix P by its non-zeros, in CSR order: ``P[rows[k], columns[k]] =
    values[k]``, ``rows`` non-decreasing. ``indptr[i]:indptr[i+1]`` are row i's entries."""

    rows: np.ndarray
    columns: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return len(self.values)

    @property
    def density(self) -> float:
        """The fraction of P's entries that are non-zero."""
        return self.nnz / (self.shape[0] * self.shape[1])

    @property
    def indptr(self) -> np.ndarray:
        return np.searchsorted(self.rows, np.arange(self.shape[0] + 1))

    @classmethod
    def random(cls, D: int, d: int, seed: int = 0, density: float | None = None
               ) -> SparseProjection:
        """The very sparse random projection (Li, Hastie & Church 2006) with unit columns.

        Each of the D·d entries is non-zero with probability ``density`` (default
        ``1/√D``), its sign ±1 with equal chance; column j, with k_j non-zeros, is then
        scaled by ``1/√k_j`` so that ``‖P e_j‖ = 1``. A column that drew no non-zero gets
        one (it would be a direction that does not move θ). Drawn column by column: k_j
        from Binomial(D, density), then k_j distinct rows, which is the same distribution
        as D·d coin flips without making them. The same seed gives the same P.
        """
        D, d = _check_size(D, "D"), _check_size(d, "d")
        if d > D:
            raise ValueError(f"d: a subspace of the {D:,}-dimensional weight space has at "
                             f"most {D:,} dimensions, got d = {d:,}")
        if density is None:
            density = 1 / math.sqrt(D)
        if isinstance(density, bool) or not isinstance(density, int | float) or \
                not 0 < density <= 1:
            raise ValueError(f"density: expected a number in (0, 1], got {density!r}")
        rng = np.random.default_rng(seed)
        counts = np.maximum(rng.binomial(D, density, size=d), 1)
        rows = np.concatenate([np.sort(rng.choice(D, size=k, replace=False)) for k in counts])
        columns = np.repeat(np.arange(d), counts)
        signs = rng.integers(0, 2, size=len(rows)) * 2 - 1
        values = signs / np.sqrt(np.repeat(counts, counts))
        return cls._in_csr_order(rows, columns, values, (D, d))

    @classmethod
    def identity(cls, D: int) -> SparseProjection:
        """P = I (d = D): training in the "subspace" is ordinary training."""
        D = _check_size(D, "D")
        index = np.arange(D)
        return cls(index, index.copy(), np.ones(D), (D, D))

    @classmethod
    def from_dense(cls, matrix: Any) -> SparseProjection:
        """The non-zeros of a dense D×d array (for tests and small examples)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"matrix: expected a 2-D array, got shape {matrix.shape}")
        rows, columns = np.nonzero(matrix)  # row-major: CSR order
        return cls(rows, columns, matrix[rows, columns], matrix.shape)

    @staticmethod
    def _in_csr_order(rows, columns, values, shape) -> SparseProjection:
        order = np.lexsort((columns, rows))
        return SparseProjection(rows[order], columns[order], values[order].astype(np.float64),
                                (int(shape[0]), int(shape[1])))

    def block(self, start: int, stop: int) -> SparseProjection:
        """The rows ``start:stop`` of P (row indices counted from ``start``)."""
        begin, end = np.searchsorted(self.rows, [start, stop])
        return SparseProjection(self.rows[begin:end] - start, self.columns[begin:end],
                                self.values[begin:end], (stop - start, self.shape[1]))

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``P v`` on plain arrays (float64)."""
        return np.bincount(self.rows, weights=self.values * v[self.columns],
                           minlength=self.shape[0])

    def rmatvec(self, g: np.ndarray) -> np.ndarray:
        """``Pᵀ g`` on plain arrays (float64)."""
        return np.bincount(self.columns, weights=self.values * g[self.rows],
                           minlength=self.shape[1])

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape)
        dense[self.rows, self.columns] = self.values
        return dense


def _check_size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------- lending weights to layers
@contextlib.contextmanager
def lent_parameters(model: Module, tensors: dict[str, Tensor]) -> Iterator[None]:
    """Within the block, the layers of ``model`` use ``tensors`` (by dotted name, as
    ``named_parameters``) in place of their own parameters; afterwards, even after an
    error, they have their own back. The tensors may be graph nodes, so that gradients
    flow past the layers into whatever built them."""
    lent = []
    try:
        for name, tensor in tensors.items():
            module_name, _, local = name.rpartition(".")
            module = model.get_submodule(module_name)
            lent.append((module, local, module._parameters[local]))
            module._parameters[local] = tensor  # what masked() reads
            object.__setattr__(module, local, tensor)  # what self.bias reads
        yield
    finally:
        for module, local, own in reversed(lent):
            module._parameters[local] = own
            object.__setattr__(module, local, own)


# ---------------------------------------------------------------- the subspace model
class Subspace(Module, abstract=True):
    """``model`` trained in a random d-dimensional subspace: θ = θ₀ + P v.

    Parameters
    ----------
    model : Module
        The network; its current weights are θ₀ (all its parameters, in
        ``named_parameters`` order). Its parameters are not trained: ``v`` is the only
        parameter of the Subspace.
    dimension : int, optional
        d, in [1, D]; P is :meth:`SparseProjection.random` (D×d, density ``1/√D``,
        unit columns) drawn with ``seed``. Give either ``dimension`` or ``projection``.
    seed : int
        Seeds P. ``v`` starts at 0, so the Subspace starts at θ₀ exactly.
    projection : SparseProjection, optional
        A D×d projection of your own (e.g. :meth:`SparseProjection.identity`).
    density : float, optional
        The fraction of P's entries that are non-zero (default ``1/√D``).

    ``subspace(x)`` runs the model at θ₀ + P v with a graph back to ``v``; ``fit`` and
    ``evaluate`` take a Subspace like any model.
    """

    def __init__(self, model: Module, dimension: int | None = None, *, seed: int = 0,
                 projection: SparseProjection | None = None, density: float | None = None
                 ) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model: expected a tinysparse Module, got {type(model).__name__}")
        named = list(model.named_parameters())
        if not named:
            raise ValueError(f"model: {model.describe()} has no parameters to project")
        super().__init__()
        D = sum(p.size for _, p in named)
        if (dimension is None) == (projection is None):
            raise ValueError("dimension/projection: give exactly one (d, or a D×d projection)")
        if projection is None:
            dimension = _check_size(dimension, "dimension")
            if dimension > D:
                raise ValueError(f"dimension: {model.describe()} has D = {D:,} parameters, so "
                                 f"a subspace has at most {D:,} dimensions; got {dimension:,}")
            projection = SparseProjection.random(D, dimension, seed, density)
        elif not isinstance(projection, SparseProjection) or projection.shape[0] != D:
            shape = getattr(projection, "shape", type(projection).__name__)
            raise ValueError(f"projection: expected a SparseProjection with {D:,} rows (one per "
                             f"parameter of the model), got {shape}")
        self.model = model  # a child (its modes follow ours) whose parameters are not ours
        self.projection = projection
        self.v = Parameter(np.zeros(projection.shape[1], dtype=model.dtype))
        self.dimension, self.seed = projection.shape[1], seed
        # θ₀ and P cut into one piece per parameter, in named_parameters order
        self.pieces: list[tuple[str, tuple[int, ...], np.ndarray, SparseProjection]] = []
        start = 0
        for name, p in named:
            self.pieces.append((name, p.shape, p.data.ravel().copy(),
                                projection.block(start, start + p.size)))
            start += p.size

    @property
    def num_weights(self) -> int:
        """D, the number of weights of the model (of θ)."""
        return self.projection.shape[0]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Only ``v``: the model's own parameters are fixed by θ = θ₀ + P v."""
        yield (f"{prefix}.v" if prefix else "v"), self.v

    def weights(self) -> dict[str, Tensor]:
        """θ₀ + P v, one tensor per parameter of the model (a graph back to ``v``)."""
        out = {}
        for name, shape, start, block in self.pieces:
            moved = sparse_matvec(self.v, block.rows, block.columns, block.values,
                                  block.shape[0])
            out[name] = (moved + start).reshape(shape)
        return out

    def forward(self, x: Tensor) -> Tensor:
        with lent_parameters(self.model, self.weights()):
            return self.model(x)

    def write_weights(self) -> Module:
        """Copy θ₀ + P v into the model's own parameters; returns the model."""
        named = dict(self.model.named_parameters())
        for name, values in self.weights().items():
            parameter = named[name]
            parameter.data = values.data.astype(parameter.dtype, copy=True)
            if parameter.mask is not None:  # a pruned weight stays pruned
                parameter.data *= parameter.mask.as_float(parameter.dtype)
        return self.model

    def extra_repr_short(self) -> str:
        return f" (d = {self.dimension:,} of D = {self.num_weights:,})"


# ---------------------------------------------------------------- the search for d_int90
@dataclass
class SubspaceRun:
    """One training in a d-dimensional subspace."""

    dimension: int
    test_accuracy: float
    train_accuracy: float | None
    seconds: float
    reached: bool  # test_accuracy >= threshold · dense accuracy
    stage: str  # "sweep" or "bisection"


@dataclass
class IntrinsicDimension:
    """What :func:`find_intrinsic_dimension` found. ``d_int`` is None when no d tried
    reached ``threshold`` · ``dense_test_accuracy`` (then try larger d or more epochs)."""

    num_weights: int
    dense_test_accuracy: float
    dense_seconds: float
    threshold: float
    target_accuracy: float
    d_int: int | None
    runs: list[SubspaceRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ModelFactory = Callable[[], Module]


def subspace_accuracy(make_model: ModelFactory, data: Dataset, dimension: int, *,
                      seed: int = 0, **fit_options: Any) -> tuple[dict[str, float], History]:
    """Train ``make_model()`` in a random ``dimension``-dimensional subspace (P drawn with
    ``seed``) by :func:`~tinysparse.train.fit` (``fit_options``: epochs, lr, ...); returns
    the test ``evaluate`` result and fit's History."""
    subspace = Subspace(make_model(), dimension, seed=seed)
    history = fit(subspace, data, seed=seed, **fit_options)
    return evaluate(subspace, *data.test), history


def find_intrinsic_dimension(
    make_model: ModelFactory, data: Dataset, dimensions: Sequence[int], *,
    threshold: float = THRESHOLD, bisections: int = 0, seed: int = 0,
    dense_test_accuracy: float | None = None,
    on_run: Callable[[SubspaceRun], None] | None = None, **fit_options: Any,
) -> IntrinsicDimension:
    """d_int90 (Li et al. 2018): the smallest d whose subspace-trained test accuracy
    reaches ``threshold`` (0.9) times the dense network's.

    The dense network (``make_model()`` trained ordinarily with the same ``fit_options``)
    is trained first, unless its accuracy is given. Then every d of ``dimensions`` is
    tried, in increasing order; the smallest d that reaches the target is the answer of
    the sweep. With ``bisections`` > 0 the search then halves the interval between the
    largest d below it that failed and it, that many times (or until it is one wide).
    Accuracy need not grow monotonically with d (each d draws its own P): the answer is
    the smallest d *tried* that reached the target, as in a sweep.

    Parameters
    ----------
    make_model : callable() -> Module
        A fresh, untrained model each call (the same θ₀ each time: seed it).
    data : Dataset
        Trained on its training split, scored on its test split.
    dimensions : sequence of int
        The sweep, each in [1, D].
    """
    if not callable(make_model):
        raise TypeError("make_model: expected a function that returns a fresh model")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or \
            not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a number in (0, 1], got {threshold!r}")
    if isinstance(bisections, bool) or not isinstance(bisections, int) or bisections < 0:
        raise ValueError(f"bisections: expected an integer >= 0, got {bisections!r}")
    probe = make_model()
    if not isinstance(probe, Module):
        raise TypeError(f"make_model: returned {type(probe).__name__}, not a Module")
    D = probe.num_parameters()
    dimensions = sorted({_check_size(d, "dimensions") for d in dimensions})
    if not dimensions:
        raise ValueError("dimensions: expected at least one d")
    if dimensions[-1] > D:
        raise ValueError(f"dimensions: {dimensions[-1]:,} exceeds D = {D:,}, the number of "
                         f"weights of {probe.describe()}")
    dense_seconds = 0.0
    if dense_test_accuracy is None:
        started = time.perf_counter()
        fit(probe, data, seed=seed, **fit_options)
        dense_test_accuracy = evaluate(probe, *data.test)["accuracy"]
        dense_seconds = time.perf_counter() - started
    target = threshold * dense_test_accuracy
    result = IntrinsicDimension(D, dense_test_accuracy, dense_seconds, threshold, target, None)

    def attempt(d: int, stage: str) -> bool:
        started = time.perf_counter()
        test, history = subspace_accuracy(make_model, data, d, seed=seed, **fit_options)
        run = SubspaceRun(d, test["accuracy"], history.train_accuracy[-1],
                          time.perf_counter() - started, test["accuracy"] >= target, stage)
        result.runs.append(run)
        if on_run is not None:
            on_run(run)
        return run.reached

    failed = 0  # the largest d known to fail (0: none tried below the answer)
    for d in dimensions:
        if attempt(d, "sweep"):
            result.d_int = d
            break
        failed = d
    if result.d_int is None:
        return result
    for _ in range(bisections):
        if result.d_int - failed <= 1:
            break
        middle = (failed + result.d_int) // 2
        if attempt(middle, "bisection"):
            result.d_int = middle
        else:
            failed = middle
    return result
