"""im2col, col2im and max-pooling on NumPy arrays: the readable reference.

Convolution becomes one matrix product once every KH×KW patch of the (padded) input is
laid out as a column ("image to columns"):

    cols[(c, u, v), (n, i, j)] = x_pad[n, c, i·s + u, j·s + v]

so that ``weight.reshape(O, C·KH·KW) @ cols`` is the convolution, one column per output
position. The backward pass needs the reverse, "col2im", which adds each column's
gradient back onto the pixels its patch came from: pixels covered by several patches
receive the sum.

Both are written as loops over the KH·KW kernel offsets, each moving a whole strided
slab of the image at once; that keeps NumPy's inner loops long (an image row) instead of
KW elements, which measured 2–3× faster than a 6-D transpose-and-copy.
"""

from __future__ import annotations

import numpy as np


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Positions a kernel takes along one axis: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def _window(u: int, v: int, oh: int, ow: int, stride: int) -> tuple[slice, slice]:
    """The pixels that kernel offset (u, v) touches, over all output positions."""
    return (slice(u, u + stride * (oh - 1) + 1, stride),
            slice(v, v + stride * (ow - 1) + 1, stride))


def im2col(
    x: np.ndarray, kh: int, kw: int, stride: int, padding: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Patches of ``x`` (N, C, H, W) as columns: ``cols`` (C·KH·KW, N·OH·OW), and (OH, OW)."""
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    channels_first = _pad(x, padding).transpose(1, 0, 2, 3)  # (C, N, H_pad, W_pad), a view
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            rows, columns = _window(u, v, oh, ow, stride)
            cols[:, u, v] = channels_first[:, :, rows, columns]
    return cols.reshape(c * kh * kw, n * oh * ow), (oh, ow)


def col2im(
    cols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, stride: int, padding: int
) -> np.ndarray:
    """The adjoint of :func:`im2col`: add each column back onto the image it came from."""
    n, c, h, w = x_shape
    oh, ow = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    patches = cols.reshape(c, kh, kw, n, oh, ow)
    image = np.zeros((c, n, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            rows, columns = _window(u, v, oh, ow, stride)
            image[:, :, rows, columns] += patches[:, u, v]
    image = image[:, :, padding : padding + h, padding : padding + w]
    return np.ascontiguousarray(image.transpose(1, 0, 2, 3))


def max_pool_forward(
    x: np.ndarray, kernel_size: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window; also which window element won (0 … k²−1, row by row).

    Ties go to the first maximum in scanning order, as in PyTorch.
    """
    _, _, h, w = x.shape
    oh, ow = output_size(h, kernel_size, stride), output_size(w, kernel_size, stride)
    offsets = [divmod(i, kernel_size) for i in range(kernel_size * kernel_size)]
    views = [x[:, :, rows, columns]
             for rows, columns in (_window(u, v, oh, ow, stride) for u, v in offsets)]
    out = views[0].copy()
    for view in views[1:]:
        np.maximum(out, view, out=out)
    winner = np.zeros(out.shape, dtype=np.int32)
    for index in range(len(views) - 1, 0, -1):  # backwards, so the first maximum wins
        winner[views[index] == out] = index
    winner[views[0] == out] = 0
    return out, winner


def max_pool_backward(
    grad: np.ndarray, winner: np.ndarray, x_shape: tuple[int, ...], kernel_size: int,
    stride: int,
) -> np.ndarray:
    """Send each window's gradient to the element that won the max."""
    _, _, oh, ow = grad.shape
    grad_x = np.zeros(x_shape, dtype=grad.dtype)
    for index in range(kernel_size * kernel_size):
        rows, columns = _window(*divmod(index, kernel_size), oh, ow, stride)
        grad_x[:, :, rows, columns] += np.where(winner == index, grad, 0)
    return grad_x
