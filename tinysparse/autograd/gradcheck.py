"""Check analytic gradients against central finite differences.

For a scalar function f, the central difference

    ∂f/∂x_i ≈ (f(x + ε e_i) − f(x − ε e_i)) / (2ε)

has error O(ε²), so in float64 with ε ≈ 1e-6 it agrees with a correct gradient to about
1e-8 relative. A wrong backward pass (a missing term, a transposed matrix, a forgotten
sum over a broadcast axis) shows up as a disagreement of order one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tinysparse.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the finite-difference one."""


def numerical_gradient(
    f: Callable[[], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``x`` is perturbed in place, one element at a time, and restored afterwards.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = f()
        flat_x[i] = original - eps
        f_minus = f()
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor | np.ndarray],
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
) -> bool:
    """Compare ``fn``'s backward pass with finite differences, in float64.

    The output of ``fn`` may have any shape: it is reduced to the scalar
    ``Σ out ⊙ v`` with a fixed random ``v``, so every output element is checked.

    Parameters
    ----------
    fn : callable
        Takes the input tensors, returns a tensor.
    inputs : sequence of Tensor or ndarray
        Converted to float64 leaf tensors that require grad (integer arrays are passed
        through unchanged, e.g. class labels).
    eps, atol, rtol : float
        Finite-difference step and the tolerance ``|a − n| <= atol + rtol |n|``.
    seed : int
        Seed for the projection vector ``v``.

    Returns
    -------
    bool
        True when every gradient agrees; otherwise :class:`GradcheckError` is raised with
        the worst element of the worst input.
    """
    tensors = []
    for x in inputs:
        array = x.data if isinstance(x, Tensor) else np.asarray(x)
        if array.dtype.kind in "iub":
            tensors.append(array)
        else:
            tensors.append(Tensor(array.astype(np.float64), requires_grad=True))

    out = fn(*tensors)
    projection = np.random.default_rng(seed).standard_normal(out.shape)

    def scalar() -> float:
        return float((fn(*tensors).data * projection).sum())

    (out * Tensor(projection)).sum().backward()

    for index, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            continue
        analytic = np.zeros_like(t.data) if t.grad is None else t.grad
        numeric = numerical_gradient(scalar, t.data, eps)
        error = np.abs(analytic - numeric)
        bound = atol + rtol * np.abs(numeric)
        if np.any(error > bound):
            worst = tuple(int(i) for i in np.unravel_index(np.argmax(error - bound),
                                                           error.shape))
            raise GradcheckError(
                f"gradient of input {index} (shape {t.shape}) is wrong at {worst}: "
                f"analytic {analytic[worst]:.10g}, numerical {numeric[worst]:.10g}, "
                f"max abs error {error.max():.3g}"
            )
    return True
