"""Optimisers: SGD (momentum, Nesterov, weight decay) and Adam — mask-aware.

The update rules follow PyTorch's ``torch.optim.SGD`` and ``torch.optim.Adam`` exactly, so
one step from the same weights and gradients gives the same result (the oracle tests
check this in float64). Each rule is written once, over flat arrays
(:func:`tinysparse.kernels.sgd_update`, :func:`tinysparse.kernels.adam_update`: a NumPy
reference and its compiled twin); an optimiser computes the step's scalars and hands every
parameter to it.

An optimiser sees ordinary parameters. A layer on the sparse kernels
(:class:`~tinysparse.nn.SparseLinear`) has the vector of its kept weights as its
parameter, so it is updated like any other. A masked *dense* parameter (``p.mask`` set)
gets the ordinary update, then its mask is applied to the weight and to every state
buffer (momentum, Adam's moments): a pruned weight stays exactly zero whatever momentum
or weight decay would have done.

Build the optimiser *after* pruning (``fit`` does): pruning may replace a layer — and
so its parameters — by its sparse twin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from tinysparse.kernels import adam_update, sgd_update
from tinysparse.nn.module import Parameter


def _flat(array: np.ndarray) -> np.ndarray:
    """A 1-D view of a C-contiguous array (weights, state); a 1-D copy of any other array
    (a gradient may be a transposed view, and is only read)."""
    return array.reshape(-1)


class Optimizer:
    """Base class: holds the parameters and their state; subclasses implement
    :meth:`update` for one parameter and name their per-weight state arrays in ``buffers``.
    """

    buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params: list[Parameter] = []
        seen: set[int] = set()
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"params: expected Parameters, got {type(p).__name__}")
            if id(p) not in seen:
                seen.add(id(p))
                self.params.append(p)
        if not self.params:
            raise ValueError("params: the optimiser got an empty list of parameters")
        if not lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {lr}")
        self.lr = float(lr)
        self.state: dict[int, dict[str, np.ndarray | int]] = {}

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient; pruned weights stay exactly zero."""
        for p in self.params:
            if p.replaced_by is not None:
                raise RuntimeError(
                    f"this optimiser updates a parameter that is no longer in the model: "
                    f"pruning replaced its layer by {p.replaced_by}. Build the optimiser "
                    f"after pruning (fit does), or prune inside `with tinysparse.sparse."
                    f"density_threshold_set(0.0):` to keep the layers dense")
            if p.grad is None:
                continue
            if not p.data.flags.c_contiguous:  # the rules update flat views of the weights
                p.data = np.ascontiguousarray(p.data)
            state = self.state.setdefault(id(p), {})
            self.update(p, state)
            if p.mask is not None:  # pruned weights and their state back to exactly zero
                keep = p.mask.as_float(p.dtype)
                p.data *= keep
                for key in self.buffers:
                    state[key] *= keep

    def update(self, p: Parameter, state: dict) -> None:
        """Update ``p.data`` in place from ``p.grad`` and this parameter's ``state``."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Forget momentum and moment estimates (e.g. before retraining after a prune)."""
        self.state.clear()


class SGD(Optimizer):
    """Stochastic gradient descent.

    With gradient g, weight decay λ, momentum μ and learning rate η (PyTorch's form)::

        g ← g + λ w
        v ← μ v + g              (v = g on the first step)
        w ← w − η (g + μ v)      with Nesterov, else  w ← w − η v

    (the rule itself: :func:`tinysparse.kernels.optimizers.sgd_update`).
    """

    buffers = ("momentum",)

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay: expected >= 0, got {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def update(self, p: Parameter, state: dict) -> None:
        first_step = "momentum" not in state
        if first_step:
            state["momentum"] = np.zeros_like(p.data)
        cast = p.dtype.type  # the scalars in the weights' precision
        sgd_update(_flat(p.data), _flat(p.grad), _flat(state["momentum"]), cast(self.lr),
                   cast(self.momentum), cast(self.weight_decay), self.nesterov, first_step)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with L2 weight decay added to the gradient as in PyTorch::

        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        w ← w − η m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)

    (the rule itself: :func:`tinysparse.kernels.optimizers.adam_update`).
    """

    buffers = ("m", "v")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay: expected >= 0, got {weight_decay}")
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay

    def update(self, p: Parameter, state: dict) -> None:
        if "step" not in state:
            state["step"] = 0
            state["m"] = np.zeros_like(p.data)
            state["v"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        cast = p.dtype.type  # the scalars in the weights' precision
        adam_update(
            _flat(p.data), _flat(p.grad), _flat(state["m"]), _flat(state["v"]),
            cast(self.lr / (1 - self.beta1**t)),           # η / (1 − β₁ᵗ)
            cast(self.beta1), cast(1 - self.beta1), cast(self.beta2), cast(1 - self.beta2),
            cast(math.sqrt(1 - self.beta2**t)),            # √(1 − β₂ᵗ)
            cast(self.eps), cast(self.weight_decay))


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, params: Iterable[Parameter], lr: float, **kwargs) -> Optimizer:
    """Build an optimiser by name (``"sgd"`` or ``"adam"``)."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(
            f"optimizer: unknown {name!r}; choose one of {sorted(OPTIMIZERS)}"
        ) from None
    return cls(params, lr=lr, **kwargs)
