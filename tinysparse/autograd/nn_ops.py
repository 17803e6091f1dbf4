"""Neural-network ops: activations, softmax, losses, linear, convolution, pooling, dropout.

Same shape as :mod:`tinysparse.autograd.ops`: one class per op with ``forward`` and
``backward`` side by side, then a lowercase function. Softmax, log-softmax and
cross-entropy take a *temperature* T (Hinton et al. 2015): they act on ``z / T``.
"""

from __future__ import annotations

import numpy as np

from tinysparse import kernels
from tinysparse.autograd.tensor import Function, Tensor

# ---------------------------------------------------------------- activations


class ReLU(Function):
    def forward(self, x):
        self.out = kernels.relu(x)  # max(x, 0)
        return self.out

    def backward(self, grad):
        return (kernels.relu_backward(grad, self.out),)  # relu'(x) = 1 where x > 0, else 0


class Tanh(Function):
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad):
        return (grad * (1 - self.out * self.out),)  # tanh' = 1 - tanh²


class Sigmoid(Function):
    def forward(self, x):
        # 1 / (1 + e^-x) written with tanh, which never overflows
        self.out = 0.5 * (np.tanh(0.5 * x) + 1)
        return self.out

    def backward(self, grad):
        return (grad * self.out * (1 - self.out),)  # σ' = σ (1 - σ)


# ---------------------------------------------------------------- softmax family


def _check_temperature(temperature: float) -> float:
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature}")
    return float(temperature)


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    """log softmax(z) = z - max(z) - log Σ exp(z - max(z)) (shifted so exp never overflows)."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    def forward(self, z, axis=-1, temperature=1.0):
        self.axis, self.temperature = axis, temperature
        self.out = np.exp(_log_softmax(z / temperature, axis))
        return self.out

    def backward(self, grad):
        # p = softmax(z/T):  dL/dz = p ⊙ (g - Σ g ⊙ p) / T
        p = self.out
        inner = (grad * p).sum(axis=self.axis, keepdims=True)
        return (p * (grad - inner) / self.temperature,)


class LogSoftmax(Function):
    def forward(self, z, axis=-1, temperature=1.0):
        self.axis, self.temperature = axis, temperature
        self.out = _log_softmax(z / temperature, axis)
        return self.out

    def backward(self, grad):
        # l = log softmax(z/T):  dL/dz = (g - softmax(z/T) Σ g) / T
        softmax = np.exp(self.out)
        total = grad.sum(axis=self.axis, keepdims=True)
        return ((grad - softmax * total) / self.temperature,)


class CrossEntropy(Function):
    """Cross-entropy between ``softmax(logits / T)`` and the targets, fused.

    Targets are class indices (shape ``(N,)``) or probability rows (shape ``(N, K)``,
    "soft targets" for distillation). With p = softmax(z/T) and target rows t, the loss of
    row n is ``-Σ_k t_nk log p_nk`` and the fused backward is the classic
    ``dL/dz = (p - t) / (T N)`` (for the mean over N rows).
    """

    def forward(self, logits, targets=None, temperature=1.0, reduction="mean"):
        self.temperature, self.reduction, self.targets = temperature, reduction, targets
        n = logits.shape[0]
        z = logits if temperature == 1.0 else logits / temperature
        shifted = z - z.max(axis=1, keepdims=True)  # so that exp never overflows
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        self.softmax = exp / total
        log_total = np.log(total)
        if targets.ndim == 1:  # log p_{n, y_n} = shifted_{n, y_n} - log Σ_k exp(shifted_nk)
            self.rows = np.arange(n)
            per_example = log_total[:, 0] - shifted[self.rows, targets]
        else:
            per_example = -((shifted - log_total) * targets).sum(axis=1)
        if reduction == "none":
            return per_example.astype(logits.dtype, copy=False)
        loss = per_example.sum() / (n if reduction == "mean" else 1)
        return np.asarray(loss, dtype=logits.dtype)

    def backward(self, grad):
        dz = self.softmax.copy()
        if self.targets.ndim == 1:
            dz[self.rows, self.targets] -= 1  # p - onehot(y)
        else:
            dz -= self.targets  # p - t
        n = dz.shape[0]
        if self.reduction == "none":
            dz *= grad[:, None] / self.temperature
        else:
            dz *= grad / (self.temperature * (n if self.reduction == "mean" else 1))
        return (dz,)


class MSELoss(Function):
    def forward(self, prediction, target, reduction="mean"):
        if prediction.shape != target.shape:
            raise ValueError(
                f"mse_loss: prediction shape {prediction.shape} differs from target shape "
                f"{target.shape}"
            )
        self.diff, self.reduction = prediction - target, reduction
        squared = self.diff * self.diff
        return np.asarray(squared.mean() if reduction == "mean" else squared.sum(),
                          dtype=prediction.dtype)

    def backward(self, grad):
        # d/dp mean((p - t)²) = 2 (p - t) / n
        scale = 2 / self.diff.size if self.reduction == "mean" else 2
        grad_prediction = grad * scale * self.diff
        grad_target = -grad_prediction if self.needs_grad[1] else None
        return grad_prediction, grad_target


# ---------------------------------------------------------------- layers


class Linear(Function):
    """``y = x Wᵀ + b`` with ``W`` of shape (out, in), as in PyTorch."""

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, grad):
        # y = x Wᵀ + b  =>  dx = g W,  dW = gᵀ x,  db = Σ_n g
        grad_x = grad @ self.weight if self.needs_grad[0] else None
        grad_weight = grad.T @ self.x if self.needs_grad[1] else None
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            return grad_x, grad_weight, grad.sum(axis=0)
        return grad_x, grad_weight, None


#: Convolutions whose im2col columns are shorter than this (C·KH·KW entries: a first layer
#: on one or three input channels) run as one small matrix product per image; longer ones
#: as one large product over the whole batch. With short columns the large product does
#: little arithmetic per byte it moves, and its (O, N·OH·OW) result must then be transposed
#: to (N, O, OH, OW); the per-image products write each image's output where it belongs.
#: Measured on a 2-core machine, forward + weight gradient at batch 128: per image took
#: 0.43× the time at C·KH·KW = 25 (LeNet-5's conv1), 0.64× at 50, 0.82× at 75, but 1.6-2×
#: at 144-150.
PER_IMAGE_BELOW = 100


class Conv2d(Function):
    """2-D cross-correlation (what deep learning calls convolution) through im2col.

    ``x`` (N, C, H, W), ``weight`` (O, C, KH, KW), ``bias`` (O,). The input's KH×KW patches
    become the columns of a matrix, so the convolution is one matrix product:
    ``out[n, o, i, j] = Σ_{c,u,v} weight[o, c, u, v] · x_pad[n, c, i·s + u, j·s + v] + b[o]``.
    (Or one product per image, for short columns: see :data:`PER_IMAGE_BELOW`.)
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0):
        self.x_shape, self.weight = x.shape, weight
        self.stride, self.padding = stride, padding
        out_channels, _, kh, kw = weight.shape
        n = x.shape[0]
        # cols: (C·KH·KW, N·OH·OW), one column per output position
        self.cols, (oh, ow) = kernels.im2col(x, kh, kw, stride, padding)
        weights = weight.reshape(out_channels, -1)  # (O, C·KH·KW)
        self.per_image = weights.shape[1] < PER_IMAGE_BELOW
        if self.per_image:  # out[n] = W · cols_n, straight into the (N, O, OH·OW) result
            out = np.matmul(weights, self._cols_by_image())
            if bias is not None:
                out += bias[:, None]
            return out.reshape(n, out_channels, oh, ow)
        out = weights @ self.cols  # (O, N·OH·OW)
        if bias is not None:
            out += bias[:, None]
        out = out.reshape(out_channels, n, oh, ow)
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3))  # (N, O, OH, OW)

    def _cols_by_image(self) -> np.ndarray:
        """The columns as N matrices (C·KH·KW × OH·OW), one per image (a view)."""
        n = self.x_shape[0]
        return self.cols.reshape(self.cols.shape[0], n, -1).transpose(1, 0, 2)

    def backward(self, grad):
        if self.per_image:
            return self._backward_per_image(grad)
        out_channels = self.weight.shape[0]
        # one column per output position again: (O, N·OH·OW)
        grad_columns = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(out_channels, -1)
        grad_x = grad_weight = grad_bias = None
        if self.needs_grad[1]:
            # dW = Σ_positions g · patch   (the weights are shared: sum over every position).
            # Computed as (cols gᵀ)ᵀ: BLAS then streams the long, wide columns matrix as it
            # lies in memory instead of packing a transposed copy of it (1.5-2x faster here)
            grad_weight = (self.cols @ grad_columns.T).T.reshape(self.weight.shape)
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            grad_bias = grad_columns.sum(axis=1)
        if self.needs_grad[0]:
            grad_cols = self.weight.reshape(out_channels, -1).T @ grad_columns
            grad_x = self._col2im(grad_cols)
        return grad_x, grad_weight, grad_bias

    def _backward_per_image(self, grad):
        n, out_channels = grad.shape[:2]
        weights = self.weight.reshape(out_channels, -1)
        grad_by_image = grad.reshape(n, out_channels, -1)  # (N, O, OH·OW)
        grad_x = grad_weight = grad_bias = None
        if self.needs_grad[1]:  # dW = Σ_n g_n · cols_nᵀ
            grad_weight = np.matmul(grad_by_image, self._cols_by_image().transpose(0, 2, 1))
            grad_weight = grad_weight.sum(axis=0).reshape(self.weight.shape)
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            grad_bias = grad_by_image.sum(axis=(0, 2))
        if self.needs_grad[0]:  # dcols_n = Wᵀ g_n, laid out as (C·KH·KW, N·OH·OW) for col2im
            grad_cols = np.matmul(weights.T, grad_by_image)
            grad_x = self._col2im(np.ascontiguousarray(grad_cols.transpose(1, 0, 2))
                                  .reshape(weights.shape[1], -1))
        return grad_x, grad_weight, grad_bias

    def _col2im(self, grad_cols: np.ndarray) -> np.ndarray:
        _, _, kh, kw = self.weight.shape
        return kernels.col2im(grad_cols, self.x_shape, kh, kw, self.stride, self.padding)


class MaxPool2d(Function):
    """Max over KH×KW windows. The gradient goes to the first maximum of each window
    (scanning row by row), as in PyTorch."""

    def forward(self, x, kernel_size=2, stride=2):
        self.x_shape, self.kernel_size, self.stride = x.shape, kernel_size, stride
        out, self.argmax = kernels.max_pool_forward(x, kernel_size, stride)
        return out

    def backward(self, grad):
        return (
            kernels.max_pool_backward(
                grad, self.argmax, self.x_shape, self.kernel_size, self.stride
            ),
        )


class Dropout(Function):
    """Multiply by a fixed 0/1 ``keep`` array and a ``scale``: ``y = x ⊙ keep · scale``.

    Inverted dropout (Srivastava et al. 2014, scaled at training time so that inference
    uses the network as it is) draws ``keep ~ Bernoulli(1 − p)`` and takes
    ``scale = 1 / (1 − p)``, so ``E[y] = x``. The mask is an input without a gradient:
    whoever draws it (:class:`tinysparse.nn.Dropout`, DropConnect, targeted dropout) owns
    the randomness, and the op itself is deterministic, so it can be gradient-checked and
    compared with PyTorch on the same mask.
    """

    def forward(self, x, keep, scale=1.0):
        self.multiplier = keep * x.dtype.type(scale)  # keep · scale, saved for the backward
        return x * self.multiplier

    def backward(self, grad):
        return grad * self.multiplier, None  # dy/dx = keep · scale; the mask has no gradient


# ---------------------------------------------------------------- functions


def relu(x) -> Tensor:
    """Rectified linear unit, ``max(x, 0)``."""
    return ReLU.apply(x)


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(x)


def sigmoid(x) -> Tensor:
    """Logistic sigmoid, ``1 / (1 + e^-x)``."""
    return Sigmoid.apply(x)


def softmax(z, axis: int = -1, temperature: float = 1.0) -> Tensor:
    """``softmax(z / T)`` along ``axis``: exp(z_i/T) / Σ_j exp(z_j/T)."""
    return Softmax.apply(z, axis=axis, temperature=_check_temperature(temperature))


def log_softmax(z, axis: int = -1, temperature: float = 1.0) -> Tensor:
    """``log softmax(z / T)`` along ``axis``, computed stably."""
    return LogSoftmax.apply(z, axis=axis, temperature=_check_temperature(temperature))


def cross_entropy(
    logits, targets, temperature: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of ``softmax(logits / T)`` against integer labels or soft targets.

    Parameters
    ----------
    logits : Tensor of shape (N, K)
    targets : array of shape (N,) with class indices in [0, K), or (N, K) probabilities
    temperature : float
        Divide the logits by T before the softmax (T > 1 softens it).
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        ``-(1/N) Σ_n Σ_k t_nk log softmax(z_n / T)_k`` (for ``"mean"``).
    """
    logits_shape = logits.shape
    if len(logits_shape) != 2:
        raise ValueError(f"cross_entropy: logits must be (N, K), got shape {logits_shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    n, k = logits_shape
    if targets.ndim == 1:
        if targets.shape[0] != n:
            raise ValueError(f"cross_entropy: {n} logits rows but {targets.shape[0]} labels")
        if targets.dtype.kind not in "iu":
            raise ValueError(
                f"cross_entropy: labels must be integers, got dtype {targets.dtype}"
            )
        if n and (targets.min() < 0 or targets.max() >= k):
            raise ValueError(
                f"cross_entropy: labels must lie in [0, {k}), got values from "
                f"{targets.min()} to {targets.max()}"
            )
    elif targets.shape != logits_shape:
        raise ValueError(
            f"cross_entropy: soft targets must have the logits' shape {logits_shape}, got "
            f"{targets.shape}"
        )
    return CrossEntropy.apply(
        logits, targets=targets, temperature=_check_temperature(temperature),
        reduction=reduction,
    )


def mse_loss(prediction, target, reduction: str = "mean") -> Tensor:
    """Mean (or summed) squared error ``mean((prediction - target)²)``."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
    return MSELoss.apply(prediction, target, reduction=reduction)


def linear(x, weight, bias=None) -> Tensor:
    """Affine map ``x Wᵀ + b`` for ``x`` (N, in), ``W`` (out, in), ``b`` (out,)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0) -> Tensor:
    """2-D convolution of ``x`` (N, C, H, W) with ``weight`` (O, C, KH, KW)."""
    x_shape, w_shape = x.shape, weight.shape
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1]:
        raise ValueError(
            f"conv2d: expected input (N, C, H, W) and weight (O, C, KH, KW) with the same "
            f"C, got input {tuple(x_shape)} and weight {tuple(w_shape)}"
        )
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d: need stride >= 1 and padding >= 0, got {stride}, {padding}")
    if x_shape[2] + 2 * padding < w_shape[2] or x_shape[3] + 2 * padding < w_shape[3]:
        raise ValueError(
            f"conv2d: the {w_shape[2]}x{w_shape[3]} kernel is larger than the padded input "
            f"{x_shape[2] + 2 * padding}x{x_shape[3] + 2 * padding}"
        )
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*inputs, stride=int(stride), padding=int(padding))


def max_pool2d(x, kernel_size: int = 2, stride: int | None = None) -> Tensor:
    """Max pooling over ``kernel_size`` windows of ``x`` (N, C, H, W)."""
    stride = kernel_size if stride is None else stride
    if len(x.shape) != 4:
        raise ValueError(f"max_pool2d: expected input (N, C, H, W), got shape {x.shape}")
    if kernel_size < 1 or stride < 1 or kernel_size > min(x.shape[2:]):
        raise ValueError(
            f"max_pool2d: kernel_size {kernel_size} / stride {stride} do not fit an input "
            f"of spatial size {x.shape[2:]}"
        )
    return MaxPool2d.apply(x, kernel_size=int(kernel_size), stride=int(stride))


def dropout(x, keep, scale: float = 1.0) -> Tensor:
    """``x ⊙ keep · scale`` for a 0/1 (or boolean) ``keep`` of ``x``'s shape, drawn by the
    caller: inverted dropout with ``scale = 1 / (1 − p)`` (see :class:`Dropout`)."""
    keep = keep.data if isinstance(keep, Tensor) else np.asarray(keep)
    if keep.shape != tuple(x.shape):
        raise ValueError(f"dropout: the mask has shape {keep.shape}, the input {tuple(x.shape)}")
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale: expected a finite number >= 0, got {scale}")
    return Dropout.apply(x, keep, scale=float(scale))


def flatten(x) -> Tensor:
    """Reshape (N, ...) to (N, features)."""
    return x.reshape(x.shape[0], -1)


# The activations as Tensor methods: ``x.relu()``, ``x.tanh()``, ``x.sigmoid()``.
Tensor.relu, Tensor.tanh, Tensor.sigmoid = relu, tanh, sigmoid


# ---------------------------------------------------------------- sparse variational dropout
# Molchanov, Ashukha & Vetrov 2017, "Variational Dropout Sparsifies Deep Neural Networks".
# Every weight has its own Gaussian posterior q(w) = N(θ, σ²); α = σ² / θ² is its dropout
# ratio (Gaussian dropout with rate p has α = p / (1 − p)). A weight whose α grows large is
# pure noise, and is pruned after training (log α > 3, i.e. p > 0.95).

#: log α is clipped to this range (Molchanov et al. 2017): beyond it the KL term is flat.
LOG_ALPHA_RANGE = (-8.0, 8.0)
#: Added to θ² inside the log, so that a weight at exactly zero has the largest log α.
THETA_SQUARED_FLOOR = 1e-16
#: Added to the pre-activation variance before the square root (an input of zeros has
#: variance 0, where √v has no gradient).
VARIANCE_FLOOR = 1e-8
#: The constants of Molchanov et al.'s (2017) approximation of the KL term:
#: −KL ≈ k₁ σ(k₂ + k₃ log α) − ½ log(1 + α⁻¹) − k₁
KL_K1, KL_K2, KL_K3 = 0.63576, 1.87320, 1.48695


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), written with tanh so that it never overflows."""
    return 0.5 * (np.tanh(0.5 * x) + 1)


class LogAlpha(Function):
    """``log α = clip(log σ² − log θ², −8, 8)``: each weight's log dropout ratio."""

    def forward(self, theta, log_sigma2):
        self.theta = theta
        unclipped = log_sigma2 - np.log(theta * theta + THETA_SQUARED_FLOOR)
        low, high = LOG_ALPHA_RANGE
        self.inside = (unclipped >= low) & (unclipped <= high)  # the clip passes gradients
        return np.clip(unclipped, low, high)

    def backward(self, grad):
        grad = grad * self.inside
        grad_theta = None
        if self.needs_grad[0]:  # ∂/∂θ [−log(θ² + floor)] = −2θ / (θ² + floor)
            grad_theta = -2 * self.theta / (self.theta * self.theta + THETA_SQUARED_FLOOR) * grad
        return grad_theta, grad  # ∂ log α / ∂ log σ² = 1


class VariationalDropoutKL(Function):
    """``KL(q(w | θ, α) ‖ p(w))`` summed over the weights, for the log-uniform prior
    p(|w|) ∝ 1/|w|, by Molchanov et al.'s approximation (2017)::

        −KL ≈ k₁ σ(k₂ + k₃ log α) − ½ log(1 + α⁻¹) − k₁

    It depends on α only (the prior is scale-free); the constant −k₁ makes it 0 as α → ∞.
    """

    def forward(self, log_alpha):
        self.log_alpha = log_alpha
        self.s = _sigmoid(KL_K2 + KL_K3 * log_alpha)
        log_one_plus_inverse_alpha = np.logaddexp(0.0, -log_alpha)  # log(1 + e^(−log α))
        negative_kl = KL_K1 * self.s - 0.5 * log_one_plus_inverse_alpha - KL_K1
        return np.asarray(-negative_kl.sum(dtype=np.float64), dtype=log_alpha.dtype)

    def backward(self, grad):
        # d(−KL)/d log α = k₁ k₃ σ'(k₂ + k₃ log α) + ½ σ(−log α)
        # (σ' = σ(1 − σ), and d/dx log(1 + e^−x) = −σ(−x))
        d_negative_kl = (KL_K1 * KL_K3 * self.s * (1 - self.s)
                         + 0.5 * _sigmoid(-self.log_alpha))
        return (-grad * d_negative_kl,)


class LocalReparameterisationLinear(Function):
    """A Linear layer with Gaussian weights w ~ N(θ, σ²), sampled through its outputs.

    The local reparameterisation trick (Kingma, Salimans & Welling 2015): for a fixed
    input x, the pre-activation ``b = x wᵀ`` is Gaussian too, with mean ``x θᵀ`` and
    variance ``x² (σ²)ᵀ``. So instead of one weight sample per mini-batch, draw one
    pre-activation per example and unit (less gradient variance, no weight-sized noise)::

        γ = x θᵀ + bias,   δ = x² (σ²)ᵀ,   out = γ + √δ ⊙ ε,   ε ~ N(0, 1)

    ``noise`` is ε (shape (N, out)), drawn by the caller: the op itself is deterministic.
    """

    def forward(self, x, theta, log_sigma2, bias=None, noise=None):
        self.x, self.theta, self.noise = x, theta, noise.astype(x.dtype, copy=False)
        self.x_squared = x * x
        self.sigma2 = np.exp(log_sigma2)
        mean = x @ theta.T
        if bias is not None:
            mean += bias
        self.std = np.sqrt(self.x_squared @ self.sigma2.T + VARIANCE_FLOOR)
        out = self.std * self.noise
        out += mean
        return out

    def backward(self, grad):
        # out = γ + √δ ε:  ∂out/∂γ = 1,  ∂out/∂δ = ε / (2√δ)
        grad_variance = grad * self.noise / (2 * self.std)
        grad_x = grad_theta = grad_log_sigma2 = grad_bias = None
        if self.needs_grad[0]:  # γ = x θᵀ, δ = x² (σ²)ᵀ:  dx = g θ + 2x ⊙ (g_δ σ²)
            grad_x = grad @ self.theta + 2 * self.x * (grad_variance @ self.sigma2)
        if self.needs_grad[1]:
            grad_theta = grad.T @ self.x
        if self.needs_grad[2]:  # dσ² = g_δᵀ x², and dσ²/d log σ² = σ²
            grad_log_sigma2 = (grad_variance.T @ self.x_squared) * self.sigma2
        if len(self.needs_grad) == 4 and self.needs_grad[3]:
            grad_bias = grad.sum(axis=0)
        return grad_x, grad_theta, grad_log_sigma2, grad_bias


class LocalReparameterisationConv2d(Function):
    """The local reparameterisation trick for a convolution with weights w ~ N(θ, σ²)::

        γ = θ ⋆ x + bias,   δ = σ² ⋆ x²,   out = γ + √δ ⊙ ε,   ε ~ N(0, 1)

    (⋆ is :class:`Conv2d`'s cross-correlation; each output position sums its own patch,
    so its variance is the patch of x² against σ²). ``noise`` has the output's shape
    (N, O, OH, OW). Both convolutions are :class:`Conv2d` ops, run forward and backward
    here by hand.
    """

    def forward(self, x, theta, log_sigma2, bias=None, noise=None, stride=1, padding=0):
        self.x, self.noise = x, noise.astype(x.dtype, copy=False)
        self.sigma2 = np.exp(log_sigma2)
        self.mean_conv, self.variance_conv = Conv2d(), Conv2d()
        mean = self.mean_conv.forward(x, theta, bias, stride, padding)
        variance = self.variance_conv.forward(x * x, self.sigma2, None, stride, padding)
        self.std = np.sqrt(variance + VARIANCE_FLOOR)
        out = self.std * self.noise
        out += mean
        return out

    def backward(self, grad):
        grad_variance = grad * self.noise / (2 * self.std)  # ∂out/∂δ = ε / (2√δ)
        needs_x, needs_theta, needs_log_sigma2 = self.needs_grad[:3]
        self.mean_conv.needs_grad = (needs_x, needs_theta, *self.needs_grad[3:])
        self.variance_conv.needs_grad = (needs_x, needs_log_sigma2)
        grad_x, grad_theta, grad_bias = self.mean_conv.backward(grad)
        grad_x_squared, grad_sigma2, _ = self.variance_conv.backward(grad_variance)
        if needs_x:  # x enters γ directly and δ through x²
            grad_x = grad_x + 2 * self.x * grad_x_squared
        grad_log_sigma2 = grad_sigma2 * self.sigma2 if needs_log_sigma2 else None
        return grad_x, grad_theta, grad_log_sigma2, grad_bias


def log_alpha(theta, log_sigma2) -> Tensor:
    """``clip(log σ² − log θ², −8, 8)``, the log dropout ratio of every weight (Molchanov
    et al. 2017)."""
    if tuple(theta.shape) != tuple(log_sigma2.shape):
        raise ValueError(f"log_alpha: theta {tuple(theta.shape)} and log_sigma2 "
                         f"{tuple(log_sigma2.shape)} must have the same shape")
    return LogAlpha.apply(theta, log_sigma2)


def variational_dropout_kl(log_alpha) -> Tensor:
    """The KL term of sparse variational dropout, summed over weights (a scalar):
    ``Σ −(k₁ σ(k₂ + k₃ log α) − ½ log(1 + α⁻¹) − k₁)`` (Molchanov et al. 2017)."""
    return VariationalDropoutKL.apply(log_alpha)


def _check_noise(noise, shape: tuple[int, ...], op: str) -> np.ndarray:
    noise = np.asarray(noise.data if isinstance(noise, Tensor) else noise)
    if noise.shape != tuple(shape):
        raise ValueError(f"{op}: noise must have the output's shape {tuple(shape)}, got "
                         f"{noise.shape}")
    return noise


def local_reparameterisation_linear(x, theta, log_sigma2, bias=None, *, noise) -> Tensor:
    """Sample ``x wᵀ + bias`` for w ~ N(θ, σ²) through its mean and variance:
    ``x θᵀ + bias + √(x² (σ²)ᵀ) ⊙ noise`` (see :class:`LocalReparameterisationLinear`).

    Parameters
    ----------
    x : Tensor (N, in)
    theta, log_sigma2 : Tensor (out, in)
        The weights' means and log variances.
    bias : Tensor (out,), optional
    noise : array (N, out)
        Standard normal draws ε, one per example and unit (no gradient).
    """
    if len(x.shape) != 2 or tuple(theta.shape) != tuple(log_sigma2.shape) or \
            x.shape[1] != theta.shape[1]:
        raise ValueError(f"local_reparameterisation_linear: expected x (N, in) and theta, "
                         f"log_sigma2 (out, in), got x {tuple(x.shape)}, theta "
                         f"{tuple(theta.shape)}, log_sigma2 {tuple(log_sigma2.shape)}")
    noise = _check_noise(noise, (x.shape[0], theta.shape[0]), "local_reparameterisation_linear")
    inputs = (x, theta, log_sigma2) if bias is None else (x, theta, log_sigma2, bias)
    return LocalReparameterisationLinear.apply(*inputs, noise=noise)


def local_reparameterisation_conv2d(x, theta, log_sigma2, bias=None, stride: int = 1,
                                    padding: int = 0, *, noise) -> Tensor:
    """Sample a convolution with weights w ~ N(θ, σ²) through its outputs' means and
    variances: ``θ ⋆ x + bias + √(σ² ⋆ x²) ⊙ noise``; ``noise`` has the output's shape."""
    if tuple(theta.shape) != tuple(log_sigma2.shape):
        raise ValueError(f"local_reparameterisation_conv2d: theta {tuple(theta.shape)} and "
                         f"log_sigma2 {tuple(log_sigma2.shape)} must have the same shape")
    x_shape, w_shape = x.shape, theta.shape
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1]:
        raise ValueError(f"local_reparameterisation_conv2d: expected input (N, C, H, W) and "
                         f"theta (O, C, KH, KW) with the same C, got {tuple(x_shape)} and "
                         f"{tuple(w_shape)}")
    out_shape = (x_shape[0], w_shape[0], (x_shape[2] + 2 * padding - w_shape[2]) // stride + 1,
                 (x_shape[3] + 2 * padding - w_shape[3]) // stride + 1)
    noise = _check_noise(noise, out_shape, "local_reparameterisation_conv2d")
    inputs = (x, theta, log_sigma2) if bias is None else (x, theta, log_sigma2, bias)
    return LocalReparameterisationConv2d.apply(*inputs, noise=noise, stride=int(stride),
                                               padding=int(padding))


# ---------------------------------------------------------------- L0 gates
# Louizos, Welling & Kingma 2018, "Learning Sparse Neural Networks through L0
# Regularization". A gate z ∈ [0, 1] multiplies a weight (or a unit); it is drawn from a
# hard-concrete distribution with location log α, which puts real mass on exactly 0 and 1.

#: The paper's hard-concrete constants: temperature β and the stretch interval (γ, ζ).
HARD_CONCRETE_BETA, HARD_CONCRETE_GAMMA, HARD_CONCRETE_ZETA = 2.0 / 3.0, -0.1, 1.1


class HardConcrete(Function):
    """A hard-concrete gate sample from uniform noise u (Louizos et al. 2018)::

        s = σ((log u − log(1 − u) + log α) / β)     a binary-concrete sample in (0, 1)
        s̄ = s (ζ − γ) + γ                          stretched to (γ, ζ) = (−0.1, 1.1)
        z = min(1, max(0, s̄))                       folded: exactly 0 or 1 with mass > 0
    """

    def forward(self, log_alpha, noise=None, beta=HARD_CONCRETE_BETA,
                gamma=HARD_CONCRETE_GAMMA, zeta=HARD_CONCRETE_ZETA):
        noise = noise.astype(log_alpha.dtype, copy=False)
        logistic = np.log(noise) - np.log1p(-noise)  # log u − log(1 − u) ~ Logistic(0, 1)
        self.s = _sigmoid((logistic + log_alpha) / beta)
        stretched = self.s * (zeta - gamma) + gamma
        self.inside = (stretched > 0) & (stretched < 1)  # where the hard sigmoid is not flat
        self.scale = (zeta - gamma) / beta
        return np.clip(stretched, 0.0, 1.0)

    def backward(self, grad):
        # dz/d log α = (ζ − γ) s (1 − s) / β inside (0, 1), and 0 where z is clipped
        return (grad * self.inside * self.scale * self.s * (1 - self.s),)


def hard_concrete(log_alpha, noise, beta: float = HARD_CONCRETE_BETA,
                  gamma: float = HARD_CONCRETE_GAMMA, zeta: float = HARD_CONCRETE_ZETA
                  ) -> Tensor:
    """Hard-concrete gates ``z = min(1, max(0, σ((log u − log(1−u) + log α)/β)(ζ−γ) + γ))``
    for uniform noise ``u`` in (0, 1) of ``log_alpha``'s shape (no gradient)."""
    noise = _check_noise(noise, tuple(log_alpha.shape), "hard_concrete")
    if noise.size and not (noise.min() > 0 and noise.max() < 1):
        raise ValueError("hard_concrete: noise must lie strictly between 0 and 1 (uniform "
                         "draws u; log u and log(1 − u) must be finite)")
    if not (beta > 0 and gamma < 0 and zeta > 1):
        raise ValueError(f"hard_concrete: need beta > 0, gamma < 0 and zeta > 1, got "
                         f"beta={beta}, gamma={gamma}, zeta={zeta}")
    return HardConcrete.apply(log_alpha, noise=noise, beta=float(beta), gamma=float(gamma),
                              zeta=float(zeta))


# ---------------------------------------------------------------- group lasso
# Wen, Wu, Wang, Chen & Li 2016, "Learning Structured Sparsity in Deep Neural Networks":
# a penalty Σ_g λ_g ‖w_g‖₂ on groups of weights (a unit's incoming weights, a unit's
# outgoing weights, a filter, an input channel). Its gradient has the same length λ_g for
# every group that is not zero, so it pulls small groups to zero as hard as large ones.


class GroupLasso(Function):
    """``Σ_g λ_g ‖w_g‖₂`` for the groups ``w_g = w[..., g, ...]`` along one axis: each
    group holds every weight with the same index on ``axis`` (axis 0 of a Linear weight
    (out, in): a unit's incoming weights, a row; axis 1: an input's outgoing weights, a
    column; axis 0 of a Conv2d weight (O, C, KH, KW): a filter; axis 1: an input channel).
    """

    def forward(self, w, axis=0, group_weights=None):
        self.w, self.axis = w, axis
        others = tuple(a for a in range(w.ndim) if a != axis)
        squares = (w * w).sum(axis=others, dtype=np.float64)
        self.norms = np.sqrt(squares)  # ‖w_g‖₂, one per group
        self.group_weights = (np.ones_like(self.norms) if group_weights is None
                              else np.asarray(group_weights, dtype=np.float64))
        return np.asarray((self.group_weights * self.norms).sum(), dtype=w.dtype)

    def backward(self, grad):
        # ∂/∂w_g λ_g ‖w_g‖₂ = λ_g w_g / ‖w_g‖₂ for w_g ≠ 0. At w_g = 0 the norm has no
        # gradient; its subgradients are the ball ‖s‖ ≤ λ_g, and we take s = 0 (the
        # smallest: a group that is exactly zero is left where it is).
        safe_norms = np.where(self.norms > 0, self.norms, 1.0)
        scale = np.where(self.norms > 0, self.group_weights / safe_norms, 0.0)
        shape = [1] * self.w.ndim
        shape[self.axis] = -1
        return (grad * scale.reshape(shape).astype(self.w.dtype) * self.w,)


def group_lasso(w, axis: int = 0, group_weights=None) -> Tensor:
    """The group-lasso penalty ``Σ_g λ_g ‖w_g‖₂`` (Wen et al. 2016), a scalar, where group
    g is ``w``'s slice at index g of ``axis`` (see :class:`GroupLasso`).

    Parameters
    ----------
    w : Tensor
    axis : int
        The axis whose indices name the groups (the norm runs over all other axes).
    group_weights : array of shape (w.shape[axis],), optional
        λ_g, one non-negative weight per group (default 1 each; no gradient).

    The gradient is ``λ_g w_g / ‖w_g‖₂``, and 0 for a group that is exactly zero.
    """
    ndim = len(w.shape)
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or \
            not -ndim <= axis < ndim:
        raise ValueError(f"group_lasso: axis must be an axis of the weight's {ndim} axes, "
                         f"got {axis!r}")
    axis = int(axis) % ndim
    if group_weights is not None:
        group_weights = np.asarray(group_weights.data if isinstance(group_weights, Tensor)
                                   else group_weights, dtype=np.float64)
        if group_weights.shape != (w.shape[axis],):
            raise ValueError(f"group_lasso: group_weights must have one entry per group "
                             f"({w.shape[axis]},), got {group_weights.shape}")
        if not (np.isfinite(group_weights).all() and (group_weights >= 0).all()):
            raise ValueError("group_lasso: group_weights must be finite and >= 0")
    return GroupLasso.apply(w, axis=axis, group_weights=group_weights)


# ---------------------------------------------------------------- Gaussian-mixture prior
# The negative log density of weights under a mixture of J Gaussians (soft weight-sharing,
# Ullrich et al. 2017; Nowlan & Hinton 1992), with each component's log proportion log π_j,
# mean μ_j and log precision γ_j = log λ_j:
#
#     −log p(w) = −Σ_i log Σ_j exp t_ij,   t_ij = log π_j + ½ γ_j − ½ log 2π − ½ λ_j (w_i − μ_j)²
#
# Its gradients all go through the responsibilities r_ij = softmax_j(t_ij), the share of
# weight i that component j explains — one (n, J) array, instead of a graph of ten.


class MixtureNegLogProb(Function):
    """``−Σ_i log Σ_j π_j N(w_i | μ_j, 1/λ_j)`` for 1-D weights ``w`` (n) and J components
    given as ``means`` μ, ``log_precisions`` γ and ``log_mixing`` log π (each J).

    The (J, n) arrays are in the weights' dtype (float32 for a network: J·n is millions of
    entries, and each pass over them costs), laid out component-major so that the sums
    over j run along whole rows; the loss is summed in float64.
    """

    def forward(self, w, means, log_precisions, log_mixing):
        dtype = np.result_type(w, means, log_precisions, log_mixing)
        column = (-1, 1)
        self.precision = np.exp(log_precisions).astype(dtype).reshape(column)       # λ_j
        self.difference = w.astype(dtype) - means.astype(dtype).reshape(column)     # w_i − μ_j
        constant = log_mixing + 0.5 * log_precisions - 0.5 * np.log(2 * np.pi)
        terms = self.difference * self.difference
        terms *= -0.5 * self.precision
        terms += constant.astype(dtype).reshape(column)                             # t_ji
        largest = terms.max(axis=0)
        terms -= largest
        r = np.exp(terms, out=terms)
        total = r.sum(axis=0)
        r /= total                                            # r_ji = softmax over j of t_ji
        self.responsibility = r
        self.dtypes = (w.dtype, means.dtype, log_precisions.dtype, log_mixing.dtype)
        log_density = np.log(total, dtype=np.float64) + largest  # log p(w_i)
        return np.asarray(-log_density.sum(), dtype=w.dtype)

    def backward(self, grad):
        r, d, precision = self.responsibility, self.difference, self.precision
        r_d = r * d                                           # r_ji (w_i − μ_j)
        weighted = r_d.sum(axis=1, dtype=np.float64)          # Σ_i r_ji (w_i − μ_j)
        counts = r.sum(axis=1, dtype=np.float64)              # Σ_i r_ji
        squares = np.einsum("ji,ji->j", r_d, d, dtype=np.float64)  # Σ_i r_ji (w_i − μ_j)²
        lam = precision[:, 0].astype(np.float64)
        grads = (
            precision[:, 0] @ r_d,              # ∂/∂w_i = Σ_j λ_j r_ji (w_i − μ_j)
            -lam * weighted,                    # ∂/∂μ_j = −λ_j Σ_i r_ji (w_i − μ_j)
            -0.5 * (counts - lam * squares),    # ∂/∂γ_j = −½ Σ_i r_ji (1 − λ_j (w_i − μ_j)²)
            -counts)                            # ∂/∂log π_j = −Σ_i r_ji
        return tuple(None if not needed else (grad * g).astype(dtype)
                     for g, needed, dtype in zip(grads, self.needs_grad, self.dtypes))


def mixture_neg_log_prob(w, means, log_precisions, log_mixing) -> Tensor:
    """``−Σ_i log p(w_i)``, a scalar, for 1-D weights ``w`` under the Gaussian mixture
    ``p(w) = Σ_j π_j N(w | μ_j, 1/λ_j)`` (see :class:`MixtureNegLogProb`).

    Parameters
    ----------
    w : Tensor of shape (n,)
    means, log_precisions, log_mixing : Tensor of shape (J,)
        μ_j, γ_j = log λ_j and log π_j (the caller normalises π).

    All four get gradients; each goes through the responsibilities ``r_ij``.
    """
    shapes = [np.shape(getattr(x, "data", x)) for x in (w, means, log_precisions, log_mixing)]
    if len(shapes[0]) != 1 or any(len(s) != 1 or s != shapes[1] for s in shapes[1:]):
        raise ValueError(f"mixture_neg_log_prob: expected w of shape (n,) and means, "
                         f"log_precisions, log_mixing of one shape (J,), got {shapes}")
    return MixtureNegLogProb.apply(w, means, log_precisions, log_mixing)
