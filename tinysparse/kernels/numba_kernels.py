"""The compiled twins of ``activations.py``, ``im2col.py``, ``sparse_reference.py`` and
``optimizers.py`` (Numba).

Each function has the signature and the result of its NumPy twin (the tests hold them
equal); the loop nest is written out so that the innermost loop runs over contiguous
memory, which Numba/LLVM turns into SIMD instructions. ``prange`` splits the outermost
loop over the cores; every parallel iteration writes only its own output rows, so there
are no races and the results do not depend on the number of threads.

Compiled code is cached on disk (``cache=True``): only the first process pays the compile.
"""

from __future__ import annotations

import functools
import types

import numpy as np
from numba import njit, prange

from tinysparse.kernels import activations

OPTIONS = {"parallel": True, "cache": True, "nogil": True}

#: Kernels with less work than this (multiply-adds, roughly) run in one thread. Handing
#: work to the other cores costs a few microseconds while their threads are awake, but
#: 50-150 µs once they have gone to sleep (measured on 2-core virtual machines) — and in
#: a training step they usually have, since the last parallel kernel ran a step ago. One
#: core does about 10⁴ multiply-adds per microsecond here, so below a few million the
#: second core loses more than it brings (a pruned LeNet-300-100 step at 95% sparsity:
#: 0.98 ms with this threshold, 1.12 ms with 10⁶).
PARALLEL_FROM = 4_000_000


def parallel_or_serial(work, **options):
    """Compile a kernel twice — its ``prange`` loop split over the cores, and in one
    thread — and call the one-thread version when ``work(*args)`` < :data:`PARALLEL_FROM`.
    """

    def decorate(function):
        parallel = njit(**OPTIONS, **options)(function)
        # a renamed copy of the same code, so that the two compilations are cached apart
        copy = types.FunctionType(function.__code__, function.__globals__,
                                  f"{function.__name__}_serial", function.__defaults__)
        copy.__qualname__ = f"{function.__qualname__}_serial"
        serial = njit(**{**OPTIONS, "parallel": False}, **options)(copy)

        def kernel(*args):
            return (parallel if work(*args) >= PARALLEL_FROM else serial)(*args)

        functools.update_wrapper(kernel, function)  # name, docstring, source for inspect
        kernel.parallel, kernel.serial = parallel, serial
        return kernel

    return decorate


def with_serial_twin(function):
    """A parallel kernel that, when called, always runs its parallel version (as a plain
    ``@njit(parallel=True)`` kernel would), and also carries its one-thread version as
    ``.serial`` (and ``.parallel``), for callers that know their input is small.

    One prediction at a time is such a caller (:mod:`tinysparse.inference`): im2col and
    max-pooling of a single 28×28 image took 70-230 µs in their parallel versions on a
    loaded 2-core machine — waking the other thread — and 6-9 µs in one thread.
    """
    return parallel_or_serial(lambda *args: PARALLEL_FROM)(function)


# ---------------------------------------------------------------- dense convolution helpers
@with_serial_twin
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


@njit(cache=True)
def _columns_inside(v, padding, stride, out_width, width):
    """The output columns j whose input column j·s + v − p lies inside [0, width)."""
    start = max(0, -((v - padding) // stride))  # ⌈(p − v) / s⌉
    stop = min(out_width, -((v - padding - width) // stride))  # ⌈(width + p − v) / s⌉
    return start, max(start, stop)


@njit(**OPTIONS)
def col2im(cols, x_shape, kh, kw, stride, padding):
    """Add every patch column back onto its pixels (the adjoint of im2col)."""
    n, c, h, w = x_shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    image = np.empty((n, c, h, w), dtype=cols.dtype)
    for plane in prange(n * c):  # each (image, channel) plane is written by one thread
        index, channel = plane // c, plane % c
        image[index, channel] = 0  # zeroed by its thread, which then finds it in cache
        for u in range(kh):
            for v in range(kw):
                row = (channel * kh + u) * kw + v
                start, stop = _columns_inside(v, padding, stride, ow, w)
                for i in range(oh):
                    y = i * stride + u - padding
                    if y < 0 or y >= h:
                        continue
                    base = (index * oh + i) * ow
                    for j in range(start, stop):
                        image[index, channel, y, j * stride + v - padding] += cols[row, base + j]
    return image


@with_serial_twin
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
    grad_x = np.empty(x_shape, dtype=grad.dtype)
    for plane in prange(n * c):
        index, channel = plane // c, plane % c
        grad_x[index, channel] = 0  # zeroed by the thread that fills the plane
        for i in range(oh):
            for j in range(ow):
                arg = winner[index, channel, i, j]
                u, v = arg // kernel_size, arg % kernel_size
                grad_x[index, channel, i * stride + u, j * stride + v] += grad[index, channel,
                                                                               i, j]
    return grad_x


# ---------------------------------------------------------------- activations
# Elementwise loops over the arrays' memory in storage order (``ravel(order="K")``), the
# output allocated with the input's layout: a feature-major activation stays feature-major.
_FLOATS = (np.float32, np.float64)


@njit(cache=True)
def _relu_into(x, out):
    for i in range(x.shape[0]):
        value = x[i]
        out[i] = 0 if value < 0 else value  # NaN stays NaN, as with np.maximum


@njit(cache=True)
def _relu_backward_into(grad, out, grad_x):
    for i in range(grad.shape[0]):
        grad_x[i] = grad[i] if out[i] > 0 else 0


def relu(x):
    """max(x, 0) elementwise, one pass (float32/float64; other types: the NumPy twin)."""
    if x.dtype not in _FLOATS:
        return activations.relu(x)
    out = np.empty_like(x)  # same memory order as x
    _relu_into(x.ravel(order="K"), out.ravel(order="K"))
    return out


def relu_backward(grad, out):
    """``grad`` where ``out`` > 0, else 0, one pass without a temporary mask (arrays of one
    float type and one layout; otherwise the NumPy twin)."""
    same_layout = grad.shape == out.shape and grad.strides == out.strides
    if not same_layout or grad.dtype != out.dtype or grad.dtype not in _FLOATS:
        return activations.relu_backward(grad, out)
    grad_x = np.empty_like(grad)
    _relu_backward_into(grad.ravel(order="K"), out.ravel(order="K"), grad_x.ravel(order="K"))
    return grad_x


# ---------------------------------------------------------------- sparse matrix products
# The three products share one loop nest: rows in parallel, a row's non-zeros four at a
# time, the batch innermost (contiguous: SIMD). Taking four non-zeros per pass over the
# batch row reads and writes the output row once for four products instead of four times;
# each thread starts the output rows it owns at zero (or at the bias). ``fastmath`` lets
# LLVM fuse multiply-adds and reorder sums: the results equal the NumPy twins up to float
# rounding, and do not depend on the number of threads (every output element is summed by
# one thread, in one order).
@parallel_or_serial(lambda indptr, indices, values, x, bias=None:
                    indices.shape[0] * x.shape[1], fastmath=True)
def spmm(indptr, indices, values, x, bias=None):
    """Y = W X (+ b): for each row i, starting from bias[i] (or 0),
    Y[i, :] += values[k] · X[indices[k], :] over its non-zeros."""
    rows = indptr.shape[0] - 1
    batch = x.shape[1]
    y = np.empty((rows, batch), dtype=x.dtype)
    for i in prange(rows):
        out = y[i]
        if bias is None:  # resolved when Numba compiles: two versions, no test in the loop
            out[:] = 0
        else:
            out[:] = bias[i]
        k, stop = indptr[i], indptr[i + 1]
        while k + 4 <= stop:  # four non-zeros per pass over the batch
            w0, w1, w2, w3 = values[k], values[k + 1], values[k + 2], values[k + 3]
            x0, x1 = x[indices[k]], x[indices[k + 1]]
            x2, x3 = x[indices[k + 2]], x[indices[k + 3]]
            for b in range(batch):
                out[b] += w0 * x0[b] + w1 * x1[b] + w2 * x2[b] + w3 * x3[b]
            k += 4
        for r in range(k, stop):  # the last 0-3
            weight, row = values[r], x[indices[r]]
            for b in range(batch):
                out[b] += weight * row[b]
    return y


@parallel_or_serial(lambda t_indptr, t_indices, t_order, values, dy:
                    t_indices.shape[0] * dy.shape[1], fastmath=True)
def spmm_transposed(t_indptr, t_indices, t_order, values, dy):
    """dX = Wᵀ dY through the columns (CSC): dX[j, :] += W_ij · dY[i, :]."""
    cols = t_indptr.shape[0] - 1
    batch = dy.shape[1]
    dx = np.empty((cols, batch), dtype=dy.dtype)
    for j in prange(cols):
        out = dx[j]
        out[:] = 0
        k, stop = t_indptr[j], t_indptr[j + 1]
        while k + 4 <= stop:
            w0, w1 = values[t_order[k]], values[t_order[k + 1]]
            w2, w3 = values[t_order[k + 2]], values[t_order[k + 3]]
            g0, g1 = dy[t_indices[k]], dy[t_indices[k + 1]]
            g2, g3 = dy[t_indices[k + 2]], dy[t_indices[k + 3]]
            for b in range(batch):
                out[b] += w0 * g0[b] + w1 * g1[b] + w2 * g2[b] + w3 * g3[b]
            k += 4
        for r in range(k, stop):
            weight, row = values[t_order[r]], dy[t_indices[r]]
            for b in range(batch):
                out[b] += weight * row[b]
    return dx


@parallel_or_serial(lambda indptr, indices, dy, x: indices.shape[0] * dy.shape[1],
                    fastmath=True)
def sddmm(indptr, indices, dy, x):
    """dW at the non-zeros only: values[k] = Σ_b dY[i, b] · X[indices[k], b].

    Four dot products share each pass over dY[i].
    """
    rows = indptr.shape[0] - 1
    batch = dy.shape[1]
    values = np.empty(indices.shape[0], dtype=dy.dtype)
    zero = np.zeros(1, dtype=dy.dtype)[0]  # accumulate in the gradient's own precision
    for i in prange(rows):
        g = dy[i]
        k, stop = indptr[i], indptr[i + 1]
        while k + 4 <= stop:
            x0, x1 = x[indices[k]], x[indices[k + 1]]
            x2, x3 = x[indices[k + 2]], x[indices[k + 3]]
            t0, t1, t2, t3 = zero, zero, zero, zero
            for b in range(batch):
                t0 += g[b] * x0[b]
                t1 += g[b] * x1[b]
                t2 += g[b] * x2[b]
                t3 += g[b] * x3[b]
            values[k], values[k + 1], values[k + 2], values[k + 3] = t0, t1, t2, t3
            k += 4
        for r in range(k, stop):
            row = x[indices[r]]
            total = zero
            for b in range(batch):
                total += g[b] * row[b]
            values[r] = total
    return values


@njit(cache=True, fastmath=True, nogil=True)
def spmv(indptr, indices, values, x, bias, relu):
    """Y[n, i] = b_i + Σ_k values[k] · X[n, indices[k]] (then max(·, 0) with ``relu``), for
    each example n (a row of batch-major X): one dot product per row of W.

    In one thread: it serves one prediction at a time, far below :data:`PARALLEL_FROM`.
    The inner loop gathers X[n, indices[k]]; LLVM vectorises it (with gather instructions)
    only when ``indptr`` and ``indices`` are *unsigned*: with signed ones Numba adds a
    wrap-around test for negative indices to every load, and the loop stays scalar (2-3×
    slower on LeNet-300-100's first layer, with either array signed). ``uint16`` column
    indices are better still: LLVM then gathers with 32-bit offsets. Callers pass a
    ``uint32`` indptr and the narrowest unsigned indices (:mod:`tinysparse.inference` does).
    """
    rows = indptr.shape[0] - 1
    y = np.empty((x.shape[0], rows), dtype=x.dtype)
    for n in range(x.shape[0]):
        example, out = x[n], y[n]
        for i in range(rows):
            total = bias[i]
            for k in range(indptr[i], indptr[i + 1]):
                total += values[k] * example[indices[k]]
            out[i] = 0 if relu and total < 0 else total  # NaN stays NaN, as with np.maximum
    return y


@njit(cache=True, fastmath=True, nogil=True)
def spmv_layers(indptr, indices, values, bias, layer_rows, relu, x):
    """X ← spmv(layer l's rows, X) for each layer l in turn (see the NumPy twin for the
    stacked layout): one call for a whole stack of sparse fully connected layers, so that
    one prediction crosses from Python into compiled code once, not once per layer."""
    for layer in range(relu.shape[0]):
        start, stop = layer_rows[layer], layer_rows[layer + 1]
        x = spmv(indptr[start : stop + 1], indices, values, x, bias[start:stop], relu[layer])
    return x


# ---------------------------------------------------------------- optimiser update rules
# One pass over the flat arrays (the NumPy twins in optimizers.py make three or four), no
# fastmath: the same arithmetic, in the same order, so the two agree bit for bit. Adam's
# division takes NumPy's error model (no ZeroDivisionError check, which cannot happen with
# ε > 0): the check kept LLVM from vectorising the one-thread loop, 4x slower (530 vs 125 µs
# over LeNet-300-100's first layer).
@parallel_or_serial(lambda w, *_: 8 * w.shape[0])
def sgd_update(w, g, velocity, lr, momentum, weight_decay, nesterov, first_step):
    """SGD in place (see ``optimizers.sgd_update``); ``w[t]``, ``g[t]`` and
    ``velocity[t]`` belong to the same weight."""
    for t in prange(w.shape[0]):
        g_t = g[t]
        if weight_decay != 0:
            g_t = g_t + weight_decay * w[t]
        if momentum != 0:
            if first_step:
                v_t = g_t
            else:
                v_t = velocity[t] * momentum
                v_t += g_t
            velocity[t] = v_t
            g_t = g_t + momentum * v_t if nesterov else v_t
        w[t] -= lr * g_t


@parallel_or_serial(lambda w, *_: 16 * w.shape[0], error_model="numpy")
def adam_update(w, g, m, v, lr_corrected, beta1, one_minus_beta1, beta2, one_minus_beta2,
                sqrt_correction2, eps, weight_decay):
    """Adam in place (see ``optimizers.adam_update``); ``w[t]``, ``g[t]``, ``m[t]`` and
    ``v[t]`` belong to the same weight."""
    for t in prange(w.shape[0]):
        g_t = g[t]
        if weight_decay != 0:
            g_t = g_t + weight_decay * w[t]
        m_t = m[t] * beta1
        m_t += one_minus_beta1 * g_t
        v_t = v[t] * beta2
        v_t += one_minus_beta2 * g_t * g_t
        m[t] = m_t
        v[t] = v_t
        denominator = np.sqrt(v_t) / sqrt_correction2 + eps
        w[t] -= lr_corrected * (m_t / denominator)


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
