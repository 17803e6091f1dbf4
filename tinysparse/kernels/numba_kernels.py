"""The compiled twins of ``im2col.py`` and ``sparse_reference.py`` (Numba, parallel, cached).

Each function has the signature and the result of its NumPy twin (the tests hold them
equal); the loop nest is written out so that the innermost loop runs over contiguous
memory, which Numba/LLVM turns into SIMD instructions. ``prange`` splits the outermost
loop over the cores; every parallel iteration writes only its own output rows, so there
are no races and the results do not depend on the number of threads.

Compiled code is cached on disk (``cache=True``): only the first process pays the compile.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

OPTIONS = {"parallel": True, "cache": True, "nogil": True}


# ---------------------------------------------------------------- dense convolution helpers
@njit(**OPTIONS)
def im2col(x, kh, kw, stride, padding):
    """cols[(c, u, v), (n, i, j)] = x_pad[n, c, i·s + u, j·s + v] (zero outside the image)."""
    n, c, h, w = x.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    cols = np.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    for row in prange(c * kh * kw):
        channel = row // (kh * kw)
        u = (row // kw) % kh
        v = row % kw
        for image in range(n):
            for i in range(oh):
                y = i * stride + u - padding
                base = (image * oh + i) * ow
                if y < 0 or y >= h:
                    for j in range(ow):
                        cols[row, base + j] = 0
                    continue
                for j in range(ow):
                    xx = j * stride + v - padding
                    cols[row, base + j] = x[image, channel, y, xx] if 0 <= xx < w else 0
    return cols, (oh, ow)


@njit(**OPTIONS)
def col2im(cols, x_shape, kh, kw, stride, padding):
    """Add every patch column back onto its pixels (the adjoint of im2col)."""
    n, c, h, w = x_shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    image = np.zeros((n, c, h, w), dtype=cols.dtype)
    for plane in prange(n * c):  # each (image, channel) plane is written by one thread
        index, channel = plane // c, plane % c
        for u in range(kh):
            for v in range(kw):
                row = (channel * kh + u) * kw + v
                for i in range(oh):
                    y = i * stride + u - padding
                    if y < 0 or y >= h:
                        continue
                    base = (index * oh + i) * ow
                    for j in range(ow):
                        xx = j * stride + v - padding
                        if 0 <= xx < w:
                            image[index, channel, y, xx] += cols[row, base + j]
    return image


@njit(**OPTIONS)
def max_pool_forward(x, kernel_size, stride):
    """Max over each window, and which element (row by row) won — the first on ties."""
    n, c, h, w = x.shape
    oh = (h - kernel_size) // stride + 1
    ow = (w - kernel_size) // stride + 1
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    winner = np.empty((n, c, oh, ow), dtype=np.int32)
    for plane in prange(n * c):
        index, channel = plane // c, plane % c
        for i in range(oh):
            for j in range(ow):
                best = x[index, channel, i * stride, j * stride]
                arg = 0
                for u in range(kernel_size):
                    for v in range(kernel_size):
                        value = x[index, channel, i * stride + u, j * stride + v]
                        if value > best:
                            best = value
                            arg = u * kernel_size + v
                out[index, channel, i, j] = best
                winner[index, channel, i, j] = arg
    return out, winner


@njit(**OPTIONS)
def max_pool_backward(grad, winner, x_shape, kernel_size, stride):
    """Send each window's gradient to the element that won the max."""
    n, c, oh, ow = grad.shape
    grad_x = np.zeros(x_shape, dtype=grad.dtype)
    for plane in prange(n * c):
        index, channel = plane // c, plane % c
        for i in range(oh):
            for j in range(ow):
                arg = winner[index, channel, i, j]
                u, v = arg // kernel_size, arg % kernel_size
                grad_x[index, channel, i * stride + u, j * stride + v] += grad[index, channel,
                                                                               i, j]
    return grad_x


# ---------------------------------------------------------------- sparse matrix products
@njit(**OPTIONS)
def spmm(indptr, indices, values, x):
    """Y = W X: for each row i, Y[i, :] += values[k] · X[indices[k], :] over its non-zeros."""
    rows = indptr.shape[0] - 1
    batch = x.shape[1]
    y = np.zeros((rows, batch), dtype=x.dtype)
    for i in prange(rows):
        for k in range(indptr[i], indptr[i + 1]):
            weight = values[k]
            j = indices[k]
            for b in range(batch):
                y[i, b] += weight * x[j, b]
    return y


@njit(**OPTIONS)
def spmm_transposed(t_indptr, t_indices, t_order, values, dy):
    """dX = Wᵀ dY through the columns (CSC): dX[j, :] += W_ij · dY[i, :]."""
    cols = t_indptr.shape[0] - 1
    batch = dy.shape[1]
    dx = np.zeros((cols, batch), dtype=dy.dtype)
    for j in prange(cols):
        for k in range(t_indptr[j], t_indptr[j + 1]):
            weight = values[t_order[k]]
            i = t_indices[k]
            for b in range(batch):
                dx[j, b] += weight * dy[i, b]
    return dx


@njit(parallel=True, cache=True, nogil=True, fastmath=True)
def sddmm(indptr, indices, dy, x):
    """dW at the non-zeros only: values[k] = Σ_b dY[i, b] · X[indices[k], b].

    ``fastmath`` lets LLVM reorder this sum into SIMD lanes (like BLAS does): the result
    equals the NumPy twin up to float rounding.
    """
    rows = indptr.shape[0] - 1
    batch = dy.shape[1]
    values = np.empty(indices.shape[0], dtype=dy.dtype)
    zero = np.zeros(1, dtype=dy.dtype)[0]  # accumulate in the gradient's own precision
    for i in prange(rows):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            total = zero
            for b in range(batch):
                total += dy[i, b] * x[j, b]
            values[k] = total
    return values


# ---------------------------------------------------------------- optimiser steps on kept weights
@njit(**OPTIONS)
def masked_sgd_update(weight, grad, velocity, positions, lr, momentum, weight_decay,
                      nesterov, first_step):
    """SGD on the kept positions only (same arithmetic, in the same order, as optim.SGD)."""
    for t in prange(positions.shape[0]):
        k = positions[t]
        g = grad[k]
        if weight_decay != 0:
            g = g + weight_decay * weight[k]
        if momentum != 0:
            if first_step:
                v = g
            else:
                v = velocity[k] * momentum
                v += g
            velocity[k] = v
            g = g + momentum * v if nesterov else v
        weight[k] -= lr * g


@njit(**OPTIONS)
def masked_adam_update(weight, grad, m, v, positions, lr_corrected, beta1, one_minus_beta1,
                       beta2, one_minus_beta2, sqrt_correction2, eps, weight_decay):
    """Adam on the kept positions only (scalars pre-computed in the weights' dtype)."""
    for t in prange(positions.shape[0]):
        k = positions[t]
        g = grad[k]
        if weight_decay != 0:
            g = g + weight_decay * weight[k]
        m_k = m[k] * beta1
        m_k += one_minus_beta1 * g
        v_k = v[k] * beta2
        v_k += one_minus_beta2 * g * g
        m[k] = m_k
        v[k] = v_k
        denominator = np.sqrt(v_k) / sqrt_correction2 + eps
        weight[k] -= lr_corrected * (m_k / denominator)


# ---------------------------------------------------------------- layer-wise OBS
@njit(**OPTIONS)
def obs_rows_greedy(weight, inverse, steps):
    """Layer-wise OBS one deletion at a time, every row in parallel.

    Each row works on its own copy of H⁻¹ restricted to the inputs still alive, kept as
    the leading m × m block: a deleted input is swapped with the last alive one, so the
    update ``H⁻¹ −= H⁻¹_{:,p} H⁻¹_{p,:} / [H⁻¹]_pp`` runs over contiguous memory and gets
    cheaper as the row empties.
    """
    rows, d = weight.shape
    order = np.zeros((rows, steps), dtype=np.int64)
    increase = np.zeros((rows, steps))
    for r in prange(rows):
        inv = inverse.copy()
        w = weight[r].astype(np.float64)
        alive = np.arange(d)  # local position -> input index
        column = np.empty(d)
        m = d
        for s in range(steps):
            best, p = np.inf, 0
            for a in range(m):
                saliency = w[a] * w[a] / (2 * inv[a, a])
                if saliency < best or (saliency == best and alive[a] < alive[p]):
                    best, p = saliency, a
            pivot = inv[p, p]
            for a in range(m):
                column[a] = inv[a, p]
            scale = w[p] / pivot
            for a in range(m):
                w[a] -= scale * column[a]
            for a in range(m):
                factor = column[a] / pivot
                for b in range(m):
                    inv[a, b] -= factor * column[b]
            order[r, s] = alive[p]
            increase[r, s] = best
            last = m - 1  # move the last alive input into slot p
            for a in range(m):
                inv[p, a] = inv[last, a]
            for a in range(m):
                inv[a, p] = inv[a, last]
            inv[p, p] = inv[last, last]
            w[p] = w[last]
            alive[p] = alive[last]
            m -= 1
    return order, increase
