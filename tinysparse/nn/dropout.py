"""Dropout and the weight noises that descend from it: DropConnect, targeted dropout.

* :class:`Dropout` (Hinton et al. 2012; Srivastava et al. 2014) zeroes each activation
  with probability ``p`` while training and scales the others by ``1 / (1 − p)``
  ("inverted" dropout), so that ``E[y] = x`` and inference uses the network as it is::

      r ~ Bernoulli(1 − p)   (one draw per activation and per step)
      y = x ⊙ r / (1 − p)    while training;   y = x   in eval()

  Training samples one of the 2ⁿ sub-networks that share the weights at every step; the
  network used at test time approximates the average of that ensemble (Srivastava et
  al. 2014, section 7.5, "weight scaling").
* A **weight noise** is a small object attached to a Linear or Conv2d layer (its
  ``weight_noise``) that draws, at every training step, which *weights* that step uses:

  - :class:`DropConnect` (Wan et al. 2013): ``r = a((M ⋆ W) v)`` with
    ``M ~ Bernoulli(1 − p)`` per weight, here scaled by ``1 / (1 − p)`` like inverted
    dropout, so inference uses ``W`` itself ("scaled inference"; the paper's own
    inference matches a Gaussian's moments instead);
  - :class:`TargetedDropout` (Gomez et al. 2019): per output unit the ``γ`` fraction of
    its weights with the smallest ``|w|`` are *candidates*, each dropped with
    probability ``α`` (unit variant: the ``γ`` fraction of units with the smallest weight
    L2 norm, each dropped whole). The network learns to do without exactly the weights
    that magnitude pruning at ``γ`` removes afterwards
    (:mod:`tinysparse.sparsify.targeted`).

  A pruned weight stays pruned: the noise only ever drops weights the mask keeps. On a
  layer on the sparse kernels the noise drops entries of ``values``: the sparse
  structure is never rebuilt.
* MC dropout (Gal & Ghahramani 2016): :func:`mc_dropout` keeps the Dropout layers
  sampling while the rest of the model is in evaluation mode; :func:`predict_mc` averages
  the softmax of ``T`` sampled passes and reports its spread.

Every stochastic object keeps its own ``np.random.Generator`` seeded by its ``seed`` (saved
in the model's spec; the generator's state is not). A model factory gives each of its
stochastic layers a different seed derived from the model's seed
(:func:`~tinysparse.nn.init.derived_seed`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from tinysparse.autograd import Tensor, dropout, no_grad, softmax
from tinysparse.nn.module import PROBABILITY, SEED, Module, SpecArgument, check_finite_inputs
from tinysparse.sparse.csr import SparseStructure
from tinysparse.sparse.mask import Mask


# ---------------------------------------------------------------- seeds and checks
def check_probability(p: Any, name: str = "p") -> float:
    """A dropout probability: a number in [0, 1) (``p = 1`` would drop everything and
    divide by zero)."""
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a probability in [0, 1), got {p!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {p}")
    return value


def check_fraction(value: Any, name: str) -> float:
    """A fraction in [0, 1] (targeted dropout's γ and α)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value}")
    return number


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0 or None, got {seed!r}")
    return int(seed)


def bernoulli_keep(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """Boolean array: each entry True (kept) with probability ``1 − p``, independently."""
    return rng.random(shape, dtype=np.float32) >= np.float32(p)


# ---------------------------------------------------------------- Dropout
class Dropout(Module):
    """Inverted dropout on activations of any shape (Srivastava et al. 2014).

    While training, each element is kept with probability ``1 − p`` and scaled by
    ``1 / (1 − p)``; in ``eval()`` the layer is the identity.

    Parameters
    ----------
    p : float
        Probability of dropping an element, in [0, 1): 0.5 for hidden units and 0.2 for
        the inputs are Srivastava et al.'s choices (they write the *keep* probability,
        0.5 and 0.8).
    seed : int, optional
        Seeds this layer's own generator (None: drawn from the operating system).

    Examples
    --------
    >>> layer = Dropout(0.5, seed=0)
    >>> layer(np.ones((2, 4))).data  # doctest: +SKIP
    array([[2., 0., 2., 2.], [0., 0., 2., 2.]], dtype=float32)
    """

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.seed = _check_seed(seed)
        self.rng = np.random.default_rng(self.seed)

    def set_p(self, p: float) -> None:
        """Change the drop probability (Han et al.'s adjustment when retraining a pruned
        network does); the generator goes on where it was."""
        self.p = check_probability(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = bernoulli_keep(self.rng, x.shape, self.p)  # r ~ Bernoulli(1 − p)
        return dropout(x, keep, 1.0 / (1.0 - self.p))  # y = x ⊙ r / (1 − p)

    spec_arguments: ClassVar[dict[str, SpecArgument]] = {"p": PROBABILITY, "seed": SEED}

    def constructor_args(self) -> dict[str, Any]:
        return {"p": self.p, "seed": self.seed}

    def extra_repr_short(self) -> str:
        return f" (p={self.p:g})"


# ---------------------------------------------------------------- weight noise
def lowest_in_each_unit(scores: np.ndarray, counts: int | np.ndarray) -> np.ndarray:
    """Boolean array marking, in each unit (row of ``scores`` viewed as (units, rest)), its
    ``counts`` lowest scores (one count for all units, or one per unit); ties: the earlier
    position goes first. Targeted dropout's candidates and ``scope="unit"`` pruning
    (:func:`tinysparse.prune.selection.unit_masks`) both come from here.

    Each unit's count-th lowest score is its threshold: every lower score is marked, and
    of the scores equal to it the earliest, until the count is reached (a partial sort:
    targeted dropout asks at every training step).
    """
    rows = np.asarray(scores).reshape(len(scores), -1)
    width = rows.shape[1]
    wanted = np.clip(np.broadcast_to(np.asarray(counts), (len(rows),)), 0, width)
    if width == 0 or not wanted.any():
        return np.zeros(np.shape(scores), dtype=bool)
    places = np.maximum(wanted, 1) - 1  # where each unit's threshold stands in its order
    if np.all(places == places[0]):  # one count for all: a partial sort finds it
        thresholds = np.partition(rows, places[0], axis=1)[:, places[0]]
    else:
        thresholds = np.sort(rows, axis=1)[np.arange(len(rows)), places]
    marked = rows < thresholds[:, None]
    ties = rows == thresholds[:, None]
    room = wanted - marked.sum(axis=1)  # how many of the scores equal to it still go
    crowded = ties.sum(axis=1) > room  # more of them than room: the earliest go
    ties[crowded] &= np.cumsum(ties[crowded], axis=1) <= room[crowded, None]
    marked |= ties
    return marked.reshape(np.shape(scores))


def _rows_of_values(structure: SparseStructure) -> np.ndarray:
    """The row (output unit) of each stored value, in CSR order."""
    return np.repeat(np.arange(structure.shape[0]), np.diff(structure.indptr))


class WeightNoise:
    """What a Linear/Conv2d layer multiplies its weights by in one training step.

    A subclass draws a boolean ``keep`` array (:meth:`keep`, for a dense weight and its
    pruning mask; :meth:`keep_values`, for the stored weights of a layer on the sparse
    kernels) and says by how much the kept weights are scaled (:attr:`scale`). The layer
    then multiplies ``W ⊙ keep · scale`` (the :func:`~tinysparse.autograd.dropout` op).
    """

    #: every weight noise by name, so that saved layers can be rebuilt (see ``spec``)
    registry: ClassVar[dict[str, type[WeightNoise]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        WeightNoise.registry[cls.__name__] = cls

    def __init__(self, seed: int | None = None) -> None:
        self.seed = _check_seed(seed)
        self.rng = np.random.default_rng(self.seed)

    @property
    def scale(self) -> float:
        return 1.0

    def keep(self, weight: np.ndarray, mask: Mask | None) -> np.ndarray:
        """Which weights of a dense ``weight`` this step uses (never one ``mask`` prunes)."""
        raise NotImplementedError

    def keep_values(self, values: np.ndarray, structure: SparseStructure) -> np.ndarray:
        """Which stored weights (``values``, CSR order of ``structure``) this step uses."""
        raise NotImplementedError

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this noise (its seed included)."""
        return {"seed": self.seed}

    def spec(self) -> dict[str, Any]:
        """A JSON-able description: ``{"type": "DropConnect", "p": 0.5, "seed": 3}``."""
        return {"type": type(self).__name__, **self.arguments()}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v}" for k, v in self.arguments().items())
        return f"{type(self).__name__}({arguments})"


def weight_noise_from(value: Any) -> WeightNoise | None:
    """A layer's ``weight_noise`` argument as an object: None, a :class:`WeightNoise`, or
    its :meth:`~WeightNoise.spec` (what a saved model holds)."""
    if value is None or isinstance(value, WeightNoise):
        return value
    if isinstance(value, dict) and value.get("type") in WeightNoise.registry:
        arguments = {k: v for k, v in value.items() if k != "type"}
        return WeightNoise.registry[value["type"]](**arguments)
    kinds = ", ".join(WeightNoise.registry)
    raise ValueError(f"weight_noise: expected None, a WeightNoise ({kinds}) or its spec, got "
                     f"{value!r}")


def _is_weight_noise_spec(value: Any) -> bool:
    """Whether a spec read from a file describes a valid weight noise."""
    if not isinstance(value, dict):
        return False
    try:
        weight_noise_from(value)
    except (TypeError, ValueError):
        return False
    return True


#: the spec argument of a layer that may carry a weight noise (left out when it has none)
WEIGHT_NOISE = SpecArgument("a weight noise's spec, e.g. {\"type\": \"DropConnect\", "
                            "\"p\": 0.5, \"seed\": 1}", _is_weight_noise_spec, optional=True)


class DropConnect(WeightNoise):
    """DropConnect (Wan et al. 2013): a fresh Bernoulli mask over the *weights* at every
    training step, ``W ⊙ M / (1 − p)`` with ``M ~ Bernoulli(1 − p)``; inference uses ``W``.

    Parameters
    ----------
    p : float
        Probability of dropping a weight, in [0, 1) (Wan et al. use 0.5).
    seed : int, optional
    """

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = check_probability(p)

    @property
    def scale(self) -> float:
        return 1.0 / (1.0 - self.p)  # E[M / (1 − p)] = 1: the expected weight is W

    def keep(self, weight: np.ndarray, mask: Mask | None) -> np.ndarray:
        keep = bernoulli_keep(self.rng, weight.shape, self.p)  # M ~ Bernoulli(1 − p)
        return keep if mask is None else keep & mask.keep  # a pruned weight stays pruned

    def keep_values(self, values: np.ndarray, structure: SparseStructure) -> np.ndarray:
        return bernoulli_keep(self.rng, values.shape, self.p)  # only kept weights are stored

    def arguments(self) -> dict[str, Any]:
        return {"p": self.p, "seed": self.seed}


class TargetedDropout(WeightNoise):
    """Targeted dropout (Gomez et al. 2019): drop, with probability ``alpha``, the weights
    (or units) that magnitude pruning at ``gamma`` would remove.

    * ``variant="weight"``: in each output unit (a row of a Linear weight, a filter of a
      conv kernel) the ``round(γ · n)`` weights with the smallest ``|w|`` are candidates
      (already pruned weights first); each candidate is dropped with probability ``α``.
    * ``variant="unit"``: the ``round(γ · units)`` units whose weights have the smallest
      L2 norm ``‖w_u‖₂`` are candidates; each is dropped (its whole row) with
      probability ``α``.

    The candidates are chosen afresh at every step from the current weights: a weight that
    grows leaves the candidate set, one that shrinks enters it (the paper's
    "self-reinforcing sparsity criterion"). As in the authors' code, the kept weights are
    not rescaled (``scale = 1``).

    Parameters
    ----------
    gamma : float
        The targeted fraction γ, in [0, 1].
    alpha : float
        The drop rate α of a candidate, in [0, 1].
    variant : {"weight", "unit"}
    seed : int, optional
    """

    VARIANTS = ("weight", "unit")

    def __init__(self, gamma: float = 0.5, alpha: float = 0.5, variant: str = "weight",
                 seed: int | None = None) -> None:
        super().__init__(seed)
        self.gamma = check_fraction(gamma, "gamma")
        self.alpha = check_fraction(alpha, "alpha")
        if variant not in self.VARIANTS:
            raise ValueError(f"variant: expected one of {list(self.VARIANTS)}, got {variant!r}")
        self.variant = variant

    def candidates(self, weight: np.ndarray, mask: Mask | None) -> np.ndarray:
        """Boolean array (the weight's shape): the weights this step may drop."""
        units = weight.reshape(len(weight), -1)
        if self.variant == "unit":  # the round(γ · units) units of smallest ‖w_u‖₂
            norms = np.sqrt(np.einsum("ij,ij->i", units, units, dtype=np.float64))
            targeted = lowest_in_each_unit(norms[None, :], round(self.gamma * len(units)))[0]
            return np.broadcast_to(targeted[:, None], units.shape).reshape(weight.shape)
        scores = np.abs(units)  # per unit, the round(γ · n) smallest |w|
        if mask is not None:  # pruned weights are the smallest of all
            scores[~mask.keep.reshape(units.shape)] = -np.inf
        count = round(self.gamma * units.shape[1])
        return lowest_in_each_unit(scores, count).reshape(weight.shape)

    def keep(self, weight: np.ndarray, mask: Mask | None) -> np.ndarray:
        candidates = self.candidates(weight, mask)
        if self.variant == "unit":  # one draw per unit: a dropped unit loses its whole row
            dropped_units = self.rng.random(len(weight)) < self.alpha
            drop = candidates & dropped_units.reshape((-1,) + (1,) * (weight.ndim - 1))
        else:
            drop = candidates & (self.rng.random(weight.shape, dtype=np.float32) < self.alpha)
        keep = ~drop
        return keep if mask is None else keep & mask.keep

    def keep_values(self, values: np.ndarray, structure: SparseStructure) -> np.ndarray:
        """As :meth:`keep`, on the stored weights: a row's missing weights count as its
        smallest (as pruned weights do in the dense layer), so only the rest of its
        ``round(γ · n)`` candidates are among the stored ones."""
        rows = _rows_of_values(structure)
        units, inputs = structure.shape
        if self.variant == "unit":
            squares = np.bincount(rows, weights=values.astype(np.float64) ** 2,
                                  minlength=units)
            targeted = lowest_in_each_unit(np.sqrt(squares)[None, :],
                                           round(self.gamma * units))[0]
            dropped_units = self.rng.random(units) < self.alpha
            return ~(targeted & dropped_units)[rows]
        stored = np.diff(structure.indptr)
        wanted = np.maximum(round(self.gamma * inputs) - (inputs - stored), 0)
        order = np.lexsort((np.abs(values), rows))  # by row, then |w| (stable: CSR order)
        rank = np.arange(len(values)) - structure.indptr[rows[order]]  # place in its row
        candidates = np.empty(len(values), dtype=bool)
        candidates[order] = rank < wanted[rows[order]]
        return ~(candidates & (self.rng.random(len(values), dtype=np.float32) < self.alpha))

    def arguments(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "alpha": self.alpha, "variant": self.variant,
                "seed": self.seed}


# ---------------------------------------------------------------- MC dropout
def dropout_layers(model: Module) -> list[Dropout]:
    """Every :class:`Dropout` layer of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, Dropout)]


@contextlib.contextmanager
def _modes_restored(model: Module) -> Iterator[Module]:
    """Afterwards, every module of ``model`` is back in the mode it had."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)


@contextlib.contextmanager
def deterministic(model: Module) -> Iterator[Module]:
    """Inside the block, every module of ``model`` is in evaluation mode: no Dropout layer
    and no weight noise samples, and none draws from its generator; afterwards each module
    is back in the mode it had. For code that runs a model only to look at it (shapes,
    curvature, the sparsity report): looking must not change the masks training draws."""
    with _modes_restored(model):
        model.eval()
        yield model


@contextlib.contextmanager
def mc_dropout(model: Module) -> Iterator[Module]:
    """Inside the block, ``model`` is in evaluation mode except its Dropout layers, which
    go on sampling (MC dropout, Gal & Ghahramani 2016); afterwards every module is back
    in the mode it had. Weight noises (DropConnect) do not sample.

    Examples
    --------
    >>> with mc_dropout(model):                     # doctest: +SKIP
    ...     passes = [model(x).data for _ in range(30)]
    """
    with _modes_restored(model):
        model.eval()
        for layer in dropout_layers(model):
            object.__setattr__(layer, "training", True)
        yield model


def predict_mc(model: Module, x: Any, samples: int = 30, batch_size: int = 1000
               ) -> tuple[np.ndarray, np.ndarray]:
    """MC dropout prediction: the mean and the spread of ``softmax(model(x))`` over
    ``samples`` passes with the Dropout layers sampling (Gal & Ghahramani 2016)::

        p̄ = (1/T) Σ_t softmax(f(x; W ⊙ r_t)),
        s = √((1/T) Σ_t (softmax(f(x; W ⊙ r_t)) − p̄)²)

    Parameters
    ----------
    model : Module
        A model with at least one :class:`Dropout` layer.
    x : array
        A batch of inputs.
    samples : int
        T, the number of sampled passes.
    batch_size : int
        Examples per forward pass.

    Returns
    -------
    mean, std : np.ndarray of shape (N, classes)
        ``mean.argmax(axis=1)`` is the MC prediction; ``std`` is the standard deviation
        over the T passes (divided by T, not T − 1), per example and class.
    """
    if not dropout_layers(model):
        raise ValueError("predict_mc: the model has no Dropout layer, so every pass would "
                         "give the same answer; build it with dropout= (e.g. "
                         "tinysparse.nn.lenet300(dropout=0.5))")
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
        raise ValueError(f"samples: expected a positive integer, got {samples!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    x = check_finite_inputs(x, "x")
    if len(x) == 0:
        raise ValueError("x: got no examples to predict")
    total = squares = None
    with mc_dropout(model), no_grad():
        for _ in range(samples):
            probabilities = np.concatenate([
                softmax(model(np.asarray(x[i : i + batch_size])), axis=1).data.astype(np.float64)
                for i in range(0, len(x), batch_size)])
            total = probabilities if total is None else total + probabilities
            squares = (probabilities ** 2 if squares is None
                       else squares + probabilities ** 2)
    mean = total / samples
    variance = np.maximum(squares / samples - mean * mean, 0.0)  # E[p²] − E[p]², ≥ 0
    return mean, np.sqrt(variance)
