"""Optimisers: SGD (momentum, Nesterov, weight decay) and Adam — mask-aware.

The update rules follow PyTorch's ``torch.optim.SGD`` and ``torch.optim.Adam`` exactly, so
one step from the same weights and gradients gives the same result (the oracle tests
check this in float64).

Masks: after every dense update each masked parameter — and each of its state buffers
(momentum, Adam's moments) — is multiplied by its mask. A pruned weight therefore stays
exactly zero whatever momentum or weight decay would have done. On the sparse path the
update touches only the kept weights — the parameter's compact master copy
(``Parameter.kept_weights``) — and the buffers hold only their entries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from tinysparse.kernels import adam_update_kept, sgd_update_kept
from tinysparse.nn.module import Parameter
from tinysparse.sparse import SparseStructure, structure_of, use_sparse_path


class Optimizer:
    """Base class: holds the parameters and per-parameter state; subclasses define ``update``
    and ``update_kept``, and name their per-weight state arrays in ``buffers``."""

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
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient; pruned weights stay exactly zero.

        A masked parameter at low density (the sparse path) is updated only at its kept
        weights (:meth:`update_kept`, on the parameter's compact copy), and its state
        buffers (momentum, Adam's moments) hold one value per kept weight. Otherwise the
        dense update runs and the mask is re-applied to the weight and to every state
        buffer.
        """
        for p in self.params:
            if not p.has_grad:
                continue
            state = self.state.setdefault(id(p), {})
            if p.mask is not None and use_sparse_path(p.mask):
                self._sparse_step(p, state)
            else:
                self._dense_step(p, state)

    def _dense_step(self, p: Parameter, state: dict) -> None:
        self._set_layout(p, state, None)
        self.update(p, p.grad, state)
        if p.mask is not None:  # pruned weights and their state back to exactly zero
            keep = p.mask.as_float(p.dtype)
            p.data *= keep
            for key in self.buffers:
                if key in state:
                    state[key] *= keep

    def _sparse_step(self, p: Parameter, state: dict) -> None:
        structure = structure_of(p.mask)
        self._set_layout(p, state, structure)
        self.update_kept(p.kept_weights(structure), p.kept_gradient(structure), state)

    def _set_layout(self, p: Parameter, state: dict, structure: SparseStructure | None
                    ) -> None:
        """Keep the state buffers dense (``structure`` None: the dense path) or compact, one
        value per non-zero of ``structure`` in CSR order (the sparse path), converting
        them when the path or the mask changed. Values at pruned positions are dropped."""
        current = state.get("layout")
        if current is structure:
            return
        for key in self.buffers:
            if key in state:
                dense = state[key] if current is None else current.scatter(state[key], p.shape)
                state[key] = dense if structure is None else structure.gather(dense)
        state["layout"] = structure

    def update_kept(self, kept: np.ndarray, grad: np.ndarray, state: dict) -> None:
        """The same update as :meth:`update`, in place on the kept weights only: ``kept``,
        ``grad`` and the state buffers hold one entry per kept weight, in the same order.
        """
        raise NotImplementedError

    def update(self, p: Parameter, grad: np.ndarray, state: dict) -> None:
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

    def update(self, p: Parameter, grad: np.ndarray, state: dict) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if self.momentum:
            velocity = state.get("momentum")
            if velocity is None:
                velocity = state["momentum"] = grad.copy()
            else:
                velocity *= self.momentum
                velocity += grad
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        # w ← w − η g, through a reused scratch buffer (no allocation on the hot path)
        step = state.get("scratch")
        if step is None or step.dtype != p.dtype:
            step = state["scratch"] = np.empty_like(p.data)
        np.multiply(grad, self.lr, out=step)
        p.data -= step

    def update_kept(self, kept: np.ndarray, grad: np.ndarray, state: dict) -> None:
        first_step = "momentum" not in state
        if first_step:
            state["momentum"] = np.zeros_like(kept)
        cast = kept.dtype.type
        sgd_update_kept(kept, grad, state["momentum"], cast(self.lr), cast(self.momentum),
                        cast(self.weight_decay), self.nesterov, first_step)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with L2 weight decay added to the gradient as in PyTorch::

        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        w ← w − η m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
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

    def update(self, p: Parameter, grad: np.ndarray, state: dict) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if "step" not in state:
            state["step"] = 0
            state["m"] = np.zeros_like(p.data)
            state["v"] = np.zeros_like(p.data)
        state["step"] += 1
        t, m, v = state["step"], state["m"], state["v"]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        bias_correction1 = 1 - self.beta1**t
        bias_correction2 = 1 - self.beta2**t
        # the same arithmetic order as torch.optim.Adam: (√v / √(1 − β₂ᵗ)) + ε
        denominator = np.sqrt(v) / math.sqrt(bias_correction2) + self.eps
        p.data -= (self.lr / bias_correction1) * (m / denominator)

    def update_kept(self, kept: np.ndarray, grad: np.ndarray, state: dict) -> None:
        if "step" not in state:
            state["step"] = 0
            state["m"] = np.zeros_like(kept)
            state["v"] = np.zeros_like(kept)
        state["step"] += 1
        t = state["step"]
        cast = kept.dtype.type  # the scalars in the weights' precision, as in update()
        adam_update_kept(
            kept, grad, state["m"], state["v"],
            cast(self.lr / (1 - self.beta1**t)), cast(self.beta1), cast(1 - self.beta1),
            cast(self.beta2), cast(1 - self.beta2), cast(math.sqrt(1 - self.beta2**t)),
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
