"""Second-order information about the loss surface: Hessian diagonals, exact Hessians,
per-example gradients, and inverse curvature matrices by the Woodbury recursion.

Everything here works on the *mean* loss over N examples, L = (1/N) Σ_n E_n, with
E_n the cross-entropy of softmax(z_n) (``loss="cross_entropy"``) or the mean squared error
over the K outputs (``loss="mse"``), for models that are a sequence of Linear / Conv2d /
MaxPool2d / Flatten / Reshape layers and ReLU / Tanh / Sigmoid activations.

Three Hessian diagonals (:func:`hessian_diagonal`):

``"gauss-newton"``
    LeCun, Denker & Solla (1990)'s second backward pass with the f'' terms dropped: always
    ≥ 0, about the cost of one more backward pass. With a_i = Σ_j w_ij x_j and
    x_i = f(a_i)::

        ∂²E/∂w_ij² = x_j² ∂²E/∂a_i²                    (exact: a_i is linear in w_ij)
        ∂²E/∂a_i²  ≈ f'(a_i)² Σ_l w_li² ∂²E/∂a_l²      (off-diagonal terms dropped)

    and at a softmax/cross-entropy output ∂²E/∂z_i² = p_i (1 − p_i).
``"lecun"``
    The same recursion keeping the second-derivative term of the activation,
    ``+ f''(a_i) ∂E/∂x_i`` (it follows from the chain rule; the paper prints it with the
    opposite sign convention for the back-propagated error). Can be negative.
``"exact"``
    The true diagonal: back-propagates the *full* Hessian with respect to each layer's
    pre-activations, ``H_x = Wᵀ H_a W`` and ``H_a = f'f'ᵀ ⊙ H_x + diag(f'' ∂E/∂x)``, per
    example. Costs O(d²) memory per example and layer: for MLPs only.

:func:`exact_hessian` builds the whole matrix from Hessian-vector products computed with
Pearlmutter's (1994) R-operator (exact, no finite differences).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinysparse.autograd import Tensor, cross_entropy, mse_loss
from tinysparse.data.dataset import training_examples
from tinysparse.kernels import col2im, im2col, max_pool_backward, max_pool_forward
from tinysparse.nn.dropout import deterministic
from tinysparse.nn.layers import (
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    Tanh,
)
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import SparseLayer
from tinysparse.prune.selection import prunable_parameters

LOSSES = ("cross_entropy", "mse")
DIAGONAL_KINDS = ("gauss-newton", "lecun", "exact")
CURVATURE_KINDS = ("fisher", "gauss-newton")


# ---------------------------------------------------------------- the layers, as a list
def layer_sequence(model: Module) -> list[tuple[str, Module]]:
    """The model's leaf layers in order, with dotted names (nested Sequentials flattened).

    The second-order tools read dense weights: a layer on the sparse kernels is refused
    with a pointer to :func:`tinysparse.nn.to_dense` (the pruning methods call it first).
    """
    if isinstance(model, SparseLayer) or (isinstance(model, Module) and any(
            isinstance(m, SparseLayer) for m in model.modules())):
        sparse = [name or type(model).__name__ for name, m in model.named_modules()
                  if isinstance(m, SparseLayer)]
        raise TypeError(f"layers {sparse} run on the sparse kernels; the second-order tools "
                        f"work on dense layers: pass tinysparse.nn.to_dense(model) (or "
                        f"to_dense(clone(model)) to keep this one as it is)")
    if not isinstance(model, Sequential):
        if isinstance(model, Linear | Conv2d):
            return [("", model)]
        raise TypeError(f"second-order tools need a Sequential model, got {type(model).__name__}")
    layers: list[tuple[str, Module]] = []
    for name, child in model._modules.items():
        if isinstance(child, Sequential):
            layers += [(f"{name}.{sub}", m) for sub, m in layer_sequence(child)]
        else:
            layers.append((name, child))
    supported = (Linear, Conv2d, MaxPool2d, Flatten, Reshape, ReLU, Tanh, Sigmoid)
    for name, layer in layers:
        if not isinstance(layer, supported):
            raise TypeError(f"layer {name!r} ({type(layer).__name__}) is not supported by the "
                            f"second-order tools; supported: "
                            f"{[t.__name__ for t in supported]}")
    return layers


def _param_name(layer_name: str, param: str) -> str:
    return f"{layer_name}.{param}" if layer_name else param


def _activation_derivatives(layer: Module, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f'(a) and f''(a) of an activation layer."""
    if isinstance(layer, Tanh):
        t = np.tanh(a)
        return 1 - t * t, -2 * t * (1 - t * t)
    if isinstance(layer, Sigmoid):
        s = 0.5 * (np.tanh(0.5 * a) + 1)
        return s * (1 - s), s * (1 - s) * (1 - 2 * s)
    return (a > 0).astype(a.dtype), np.zeros_like(a)  # ReLU: f'' = 0 almost everywhere


def _forward(layers: Sequence[tuple[str, Module]], x: np.ndarray) -> list[np.ndarray]:
    """Plain NumPy forward pass; returns the input of every layer and the final output."""
    values = [x]
    for _, layer in layers:
        with deterministic(layer):  # the network itself: no weight noise sampled
            x = layer(Tensor(x)).data
        values.append(x)
    return values


def _output_gradient_and_curvature(z: np.ndarray, y: np.ndarray, loss: str):
    """∂E_n/∂z and the exact per-example Hessian factor at the output.

    Returns (g, diag_h, full_h_fn): per-example gradient (N, K), the diagonal of the
    per-example output Hessian (N, K), and a function giving the full (N, K, K) Hessian.
    """
    if loss == "cross_entropy":
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = p.copy()
        g[np.arange(len(y)), y] -= 1  # ∂E/∂z = p − onehot(y)
        diag = p * (1 - p)  # diag of diag(p) − p pᵀ
        return g, diag, lambda: np.einsum("ni,ij->nij", p, np.eye(p.shape[1])) - \
            np.einsum("ni,nj->nij", p, p)
    if loss == "mse":
        y = np.asarray(y, dtype=z.dtype).reshape(z.shape)
        k = z.shape[1]
        g = 2 * (z - y) / k  # E = (1/K) Σ_k (z_k − y_k)²
        diag = np.full_like(z, 2 / k)
        return g, diag, lambda: np.broadcast_to(2 / k * np.eye(k), (len(z), k, k)).copy()
    raise ValueError(f"loss: unknown {loss!r}; choose one of {list(LOSSES)}")


def _check(kind: str, kinds: Sequence[str], what: str = "kind") -> None:
    if kind not in kinds:
        raise ValueError(f"{what}: unknown {kind!r}; choose one of {list(kinds)}")


# ---------------------------------------------------------------- Hessian diagonal
def hessian_diagonal(
    model: Module,
    data: Any,
    loss: str = "cross_entropy",
    kind: str = "gauss-newton",
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Diagonal of the Hessian of the mean loss with respect to every parameter.

    Parameters
    ----------
    model : Sequential model
    data : (x, y) or Dataset (its training split)
    loss : {"cross_entropy", "mse"}
    kind : {"gauss-newton", "lecun", "exact"}
        See the module docstring. ``"exact"`` supports Linear layers and activations only.
    batch_size : int
        Examples processed at once (memory only; the result does not depend on it).

    Returns
    -------
    dict name -> array
        One array per parameter, shaped like it (float64).
    """
    _check(kind, DIAGONAL_KINDS)
    _check(loss, LOSSES, "loss")
    x, y = training_examples(data)
    layers = layer_sequence(model)
    if kind == "exact":
        bad = [n for n, layer in layers if isinstance(layer, Conv2d | MaxPool2d)]
        if bad:
            raise ValueError(f"kind='exact' back-propagates full per-example Hessians and "
                             f"supports fully connected models only; {bad} are convolution/"
                             f"pooling layers: use kind='gauss-newton' or 'lecun'")
    totals = {name: np.zeros(p.shape) for name, p in model.named_parameters()}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].astype(np.float64)
        yb = y[start : start + batch_size]
        if kind == "exact":
            _exact_diagonal_batch(layers, xb, yb, loss, totals)
        else:
            _second_backward_pass(layers, xb, yb, loss, kind == "lecun", totals)
    return {name: total / len(x) for name, total in totals.items()}


def _second_backward_pass(layers, x, y, loss, keep_second_derivative, totals) -> None:
    """LeCun's recursion: carry (g, h) = (∂E/∂out, ∂²E/∂out²) back through the layers."""
    inputs = _forward(layers, x)
    g, h, _ = _output_gradient_and_curvature(inputs[-1], y, loss)
    for index in range(len(layers) - 1, -1, -1):
        name, layer = layers[index]
        a = inputs[index]  # this layer's input
        if isinstance(layer, ReLU | Tanh | Sigmoid):
            f1, f2 = _activation_derivatives(layer, a)
            h_new = f1 * f1 * h  # ∂²E/∂a² ≈ f'(a)² ∂²E/∂x²
            if keep_second_derivative:
                h_new = h_new + f2 * g  # + f''(a) ∂E/∂x
            g, h = f1 * g, h_new
        elif isinstance(layer, Linear):
            w = layer.masked("weight").data
            totals[_param_name(name, "weight")] += h.T @ (a * a)  # Σ_n x_j² ∂²E/∂a_i²
            if layer.bias is not None:
                totals[_param_name(name, "bias")] += h.sum(axis=0)
            g, h = g @ w, h @ (w * w)  # ∂²E/∂x_j² ≈ Σ_i w_ij² ∂²E/∂a_i²
        elif isinstance(layer, Conv2d):
            w = layer.masked("weight").data
            o = w.shape[0]
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            cols, _ = im2col(a, k, k, s, p)
            h_cols = np.ascontiguousarray(h.transpose(1, 0, 2, 3)).reshape(o, -1)
            g_cols = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, -1)
            # shared weights: sum x² ∂²E/∂a² over every position the kernel visits
            totals[_param_name(name, "weight")] += (h_cols @ (cols * cols).T).reshape(w.shape)
            if layer.bias is not None:
                totals[_param_name(name, "bias")] += h_cols.sum(axis=1)
            w2 = w.reshape(o, -1)
            g = col2im(w2.T @ g_cols, a.shape, k, k, s, p)
            h = col2im((w2 * w2).T @ h_cols, a.shape, k, k, s, p)
        elif isinstance(layer, MaxPool2d):
            _, winner = max_pool_forward(a, layer.kernel_size, layer.stride)
            g = max_pool_backward(g, winner, a.shape, layer.kernel_size, layer.stride)
            h = max_pool_backward(h, winner, a.shape, layer.kernel_size, layer.stride)
        else:  # Flatten, Reshape
            g, h = g.reshape(a.shape), h.reshape(a.shape)


def _exact_diagonal_batch(layers, x, y, loss, totals) -> None:
    """Back-propagate the full per-example Hessian H (N, d, d) w.r.t. each layer's output."""
    inputs = _forward(layers, x)
    g, _, full = _output_gradient_and_curvature(inputs[-1], y, loss)
    hess = full()
    first_linear = next(i for i, (_, layer) in enumerate(layers) if isinstance(layer, Linear))
    for index in range(len(layers) - 1, -1, -1):
        name, layer = layers[index]
        a = inputs[index]
        if isinstance(layer, ReLU | Tanh | Sigmoid):
            f1, f2 = _activation_derivatives(layer, a)
            # H_a = f'(a) f'(a)ᵀ ⊙ H_x + diag(f''(a) ∂E/∂x)
            hess = f1[:, :, None] * hess * f1[:, None, :]
            hess[:, np.arange(a.shape[1]), np.arange(a.shape[1])] += f2 * g
            g = f1 * g
        elif isinstance(layer, Linear):
            w = layer.masked("weight").data
            diag = np.einsum("nii->ni", hess)
            totals[_param_name(name, "weight")] += diag.T @ (a * a)  # x_j² [H_a]_ii
            if layer.bias is not None:
                totals[_param_name(name, "bias")] += diag.sum(axis=0)
            if index > first_linear:
                hess = np.einsum("ij,nik,kl->njl", w, hess, w, optimize=True)  # Wᵀ H_a W
            g = g @ w
        elif isinstance(layer, Flatten | Reshape):
            continue  # inputs to MLPs are already flat after the first layer


# ---------------------------------------------------------------- Hessian-vector products
def _rop_layers(model: Module) -> list[tuple[str, Module]]:
    layers = layer_sequence(model)
    bad = [n for n, layer in layers if isinstance(layer, Conv2d | MaxPool2d)]
    if bad:
        raise ValueError(f"Hessian-vector products support fully connected models; {bad} are "
                         f"convolution/pooling layers")
    return layers


def hessian_vector_product(
    model: Module, data: Any, vector: dict[str, np.ndarray], loss: str = "cross_entropy",
) -> dict[str, np.ndarray]:
    """H v for the mean loss, exactly, by Pearlmutter's R-operator.

    ``R{q} = d/dr q(w + r v) at r = 0``. Push R through the forward pass
    (R{a} = R{x} Wᵀ + x R{W}ᵀ + R{b}, R{f(a)} = f'(a) R{a}) and the backward pass
    (R{g_a} = f''(a) R{a} g_x + f'(a) R{g_x}, R{g_W} = R{g_a}ᵀ x + g_aᵀ R{x}, ...);
    R{∇L} is H v. ``vector`` maps parameter names to arrays (missing names are zero).
    Vectors may carry a leading batch axis of directions: arrays of shape (B, *param.shape).
    """
    _check(loss, LOSSES, "loss")
    x, y = training_examples(data)
    x = x.reshape(len(x), -1).astype(np.float64)
    layers = _rop_layers(model)
    params = dict(model.named_parameters())
    some = next(iter(vector.values()))
    first_name = next(iter(vector))
    batched = some.ndim == params[first_name].ndim + 1
    directions = some.shape[0] if batched else 1

    def direction(name: str) -> np.ndarray:
        v = vector.get(name)
        shape = params[name].shape
        if v is None:
            return np.zeros((directions, *shape))
        return v if batched else v[None]

    n = len(x)
    acts, r_acts, pre = [x], [np.zeros((directions, *x.shape))], []
    for name, layer in layers:  # forward and R-forward
        a, ra = acts[-1], r_acts[-1]
        pre.append((a, ra))
        if isinstance(layer, Linear):
            w = layer.masked("weight").data
            rw = direction(_param_name(name, "weight"))
            out = a @ w.T
            r_out = ra @ w.T + np.einsum("nj,dij->dni", a, rw)
            if layer.bias is not None:
                out = out + layer.bias.data
                r_out = r_out + direction(_param_name(name, "bias"))[:, None, :]
        elif isinstance(layer, ReLU | Tanh | Sigmoid):
            f1, _ = _activation_derivatives(layer, a)
            out = layer(Tensor(a)).data
            r_out = f1 * ra
        else:  # Flatten / Reshape on already flat inputs
            out, r_out = a, ra
        acts.append(out)
        r_acts.append(r_out)

    z, rz = acts[-1], r_acts[-1]
    if loss == "cross_entropy":
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = p.copy()
        g[np.arange(n), y] -= 1
        g /= n
        rg = (p * rz - p * (p * rz).sum(axis=2, keepdims=True)) / n  # (diag p − p pᵀ) R{z}
    else:
        k = z.shape[1]
        g = 2 * (z - np.asarray(y, dtype=z.dtype).reshape(z.shape)) / (n * k)
        rg = 2 * rz / (n * k)

    result: dict[str, np.ndarray] = {}
    for index in range(len(layers) - 1, -1, -1):  # backward and R-backward
        name, layer = layers[index]
        a, ra = pre[index]
        if isinstance(layer, Linear):
            w = layer.masked("weight").data
            rw = direction(_param_name(name, "weight"))
            result[_param_name(name, "weight")] = (np.einsum("dni,nj->dij", rg, a)
                                                   + np.einsum("ni,dnj->dij", g, ra))
            if layer.bias is not None:
                result[_param_name(name, "bias")] = rg.sum(axis=1)
            rg = rg @ w + np.einsum("ni,dij->dnj", g, rw)
            g = g @ w
        elif isinstance(layer, ReLU | Tanh | Sigmoid):
            f1, f2 = _activation_derivatives(layer, a)
            rg = f2 * ra * g + f1 * rg
            g = f1 * g
    for name, param in params.items():
        if param.mask is not None and name in result:
            result[name] = result[name] * param.mask.keep  # pruned weights are constants
    return {k: (v if batched else v[0]) for k, v in result.items()}


def exact_hessian(
    model: Module, data: Any, loss: str = "cross_entropy",
    parameters: Sequence[str] | None = None, chunk: int = 64,
) -> np.ndarray:
    """The full Hessian of the mean loss w.r.t. ``parameters`` (default: all), exactly.

    Built column by column from Hessian-vector products with the unit vectors (``chunk``
    columns at a time). The order of rows/columns is that of :func:`flatten_parameters`.
    """
    names = list(parameters) if parameters is not None else [n for n, _ in
                                                             model.named_parameters()]
    params = dict(model.named_parameters())
    sizes = [params[n].size for n in names]
    total = sum(sizes)
    if total > 20_000:
        raise ValueError(f"exact_hessian: {total:,} parameters make a {total}x{total} "
                         f"matrix; use hessian_diagonal or the layer-wise tools")
    offsets = np.cumsum([0, *sizes])
    hessian = np.zeros((total, total))
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        basis = np.zeros((stop - start, total))
        basis[np.arange(stop - start), np.arange(start, stop)] = 1.0
        vector = {n: basis[:, offsets[i]:offsets[i + 1]].reshape(-1, *params[n].shape)
                  for i, n in enumerate(names)}
        products = hessian_vector_product(model, data, vector, loss)
        hessian[:, start:stop] = np.concatenate(
            [products.get(n, np.zeros((stop - start, params[n].size))).reshape(stop - start, -1)
             for n in names], axis=1).T
    return hessian


# ---------------------------------------------------------------- flat parameter vectors
def flatten_parameters(model: Module, names: Sequence[str]) -> np.ndarray:
    """The named weights (``model.state_dict()`` names), concatenated into one float64
    vector."""
    state = model.state_dict()
    return np.concatenate([state[n].ravel().astype(np.float64) for n in names])


def unflatten_into(model: Module, names: Sequence[str], vector: np.ndarray) -> None:
    """Write a flat vector back into the named weights (masks are re-applied)."""
    shapes, state, start = model.state_shapes(), {}, 0
    for n in names:
        size = int(np.prod(shapes[n]))
        state[n] = vector[start : start + size].reshape(shapes[n])
        start += size
    model.load_state_dict(state, strict=False)


# ---------------------------------------------------------------- per-example gradients
def _loss_tensor(model: Module, x: np.ndarray, y: np.ndarray, loss: str) -> Tensor:
    with deterministic(model):  # the curvature of the network itself: no dropout samples
        out = model(x)
    if loss == "cross_entropy":
        return cross_entropy(out, y)
    return mse_loss(out, Tensor(np.asarray(y).reshape(out.shape), dtype=out.dtype))


def per_example_gradients(
    model: Module, data: Any, loss: str = "cross_entropy",
    parameters: Sequence[str] | None = None,
) -> np.ndarray:
    """G (P, n): row k is the gradient of example k's loss w.r.t. the parameters.

    Computed the plain way — one forward/backward pass per example — so it works for any
    model; fine for the few thousand examples second-order pruning uses.
    """
    _check(loss, LOSSES, "loss")
    x, y = training_examples(data)
    names = list(parameters) if parameters is not None else prunable_parameters(model)
    params = [model.get_parameter(n) for n in names]
    rows = np.empty((len(x), sum(p.size for p in params)))
    for k in range(len(x)):
        model.zero_grad()
        _loss_tensor(model, x[k : k + 1], y[k : k + 1], loss).backward()
        rows[k] = np.concatenate([(p.grad if p.grad is not None else np.zeros(p.shape))
                                  .ravel() for p in params])
    model.zero_grad()
    return rows


def gauss_newton_rows(
    model: Module, data: Any, loss: str = "cross_entropy",
    parameters: Sequence[str] | None = None,
) -> np.ndarray:
    """Rows r with Σ rᵀr / P = the Gauss–Newton matrix (1/P) Σ_k J_kᵀ H_z J_k.

    H_z = S Sᵀ per example (MSE: S = √(2/K) I; cross-entropy: S = diag(√p) − p √pᵀ, since
    S Sᵀ = diag(p) − p pᵀ), so each example gives K rows J_kᵀ s_c: one backward pass per
    output ("one update per output", as Hassibi & Stork do with several outputs).
    """
    _check(loss, LOSSES, "loss")
    x, y = training_examples(data)
    names = list(parameters) if parameters is not None else prunable_parameters(model)
    params = [model.get_parameter(n) for n in names]
    rows = []
    for k in range(len(x)):
        with deterministic(model):  # the network itself: no dropout samples
            out = model(x[k : k + 1])
        z = out.data[0].astype(np.float64)
        if loss == "cross_entropy":
            p = np.exp(z - z.max())
            p /= p.sum()
            factor = np.diag(np.sqrt(p)) - np.outer(p, np.sqrt(p))
        else:
            factor = np.sqrt(2 / len(z)) * np.eye(len(z))
        for c in range(len(z)):
            model.zero_grad()
            out.backward(factor[:, c][None].astype(out.dtype))
            rows.append(np.concatenate([(p.grad if p.grad is not None else
                                         np.zeros(p.shape)).ravel() for p in params]))
    model.zero_grad()
    return np.array(rows)


def curvature_rows(model: Module, data: Any, kind: str = "fisher", loss: str = "cross_entropy",
                   parameters: Sequence[str] | None = None) -> tuple[np.ndarray, int]:
    """Rows R and the example count P such that H ≈ Rᵀ R / P (see :func:`inverse_fisher`)."""
    _check(kind, CURVATURE_KINDS, "hessian")
    x, _ = training_examples(data)
    if kind == "fisher":
        return per_example_gradients(model, data, loss, parameters), len(x)
    return gauss_newton_rows(model, data, loss, parameters), len(x)


# ---------------------------------------------------------------- inverse by Woodbury
def _check_damping(damping: float) -> float:
    if not damping > 0:
        raise ValueError(f"damping: expected a positive number, got {damping} (it keeps "
                         f"the curvature matrix invertible)")
    return float(damping)


def _subtract_product(matrix: np.ndarray, left: np.ndarray, right: np.ndarray,
                      band: int = 256) -> None:
    """``matrix -= left @ right`` in place, a band of rows at a time: no n × n temporary
    (at n = 10,000 one would be 800 MB)."""
    for start in range(0, matrix.shape[0], band):
        matrix[start : start + band] -= left[start : start + band] @ right


def inverse_fisher_rank_one(rows: np.ndarray, examples: int, damping: float) -> np.ndarray:
    """(Rᵀ R / P + α I)⁻¹ one row at a time (Hassibi & Stork's recursion, readable).

    Start from H₀⁻¹ = α⁻¹ I; adding (1/P) g gᵀ changes the inverse by Sherman–Morrison::

        H⁻¹ ← H⁻¹ − (H⁻¹ g)(H⁻¹ g)ᵀ / (P + gᵀ H⁻¹ g)

    Each step reads H⁻¹ twice (the product, the in-place update): memory-bound, and the
    blocked form (:func:`inverse_fisher`) is much faster for large n.
    """
    damping = _check_damping(damping)
    n = rows.shape[1]
    inverse = np.eye(n) / damping
    for g in rows:
        hg = inverse @ g  # H⁻¹ g
        scale = 1.0 / (examples + g @ hg)  # 1 / (P + gᵀ H⁻¹ g)
        _subtract_product(inverse, (scale * hg)[:, None], hg[None, :])
    return inverse


def inverse_fisher(
    rows: np.ndarray, examples: int, damping: float, block: int = 1000,
) -> np.ndarray:
    """(Rᵀ R / P + α I)⁻¹ by the blocked Woodbury recursion (fast; same result).

    Adding B rows at once, with A = H⁻¹ R_Bᵀ::

        H⁻¹ ← H⁻¹ − A (P I_B + R_B A)⁻¹ Aᵀ

    ``block=1`` is the rank-one recursion; larger blocks turn the work into matrix
    products (BLAS-3). With all P rows in one block this is the Woodbury identity itself,
    H⁻¹ = α⁻¹ (I − Rᵀ (α P I + R Rᵀ)⁻¹ R): the cheapest when P ≤ n.
    """
    damping = _check_damping(damping)
    n = rows.shape[1]
    if block < 1:
        raise ValueError(f"block: expected a positive integer, got {block}")
    inverse = None  # H₀⁻¹ = α⁻¹ I, kept implicit until the first block
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        a = chunk.T / damping if inverse is None else inverse @ chunk.T  # A = H⁻¹ R_Bᵀ (n, B)
        small = examples * np.eye(len(chunk)) + chunk @ a  # P I_B + R_B A
        if inverse is None:
            inverse = np.eye(n) / damping
        _subtract_product(inverse, a, np.linalg.solve(small, a.T))  # − A (…)⁻¹ Aᵀ
    return inverse


def inverse_fisher_cholesky(rows: np.ndarray, examples: int, damping: float) -> np.ndarray:
    """(Rᵀ R / P + α I)⁻¹ by forming the matrix and inverting its Cholesky factor."""
    damping = _check_damping(damping)
    matrix = rows.T @ rows / examples + damping * np.eye(rows.shape[1])
    factor_inverse = np.linalg.inv(np.linalg.cholesky(matrix))  # L⁻¹, with H = L Lᵀ
    return factor_inverse.T @ factor_inverse


def remove_from_inverse(inverse: np.ndarray, q: int | Sequence[int]) -> np.ndarray:
    """H⁻¹ after deleting weight(s) q, in place: H⁻¹ ← H⁻¹ − H⁻¹_{:,q} [H⁻¹_{qq}]⁻¹ H⁻¹_{q,:}.

    The result equals the inverse of H with the rows and columns q deleted (with zeros in
    rows/columns q): the Schur-complement identity.
    """
    q = np.atleast_1d(q)
    columns = inverse[:, q].copy()
    inverse -= columns @ np.linalg.solve(inverse[np.ix_(q, q)], columns.T)
    inverse[q, :] = 0.0
    inverse[:, q] = 0.0
    return inverse

