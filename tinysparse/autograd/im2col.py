"""im2col, col2im and max-pooling on NumPy arrays: the readable reference.

Convolution becomes one matrix product once every KH×KW patch of the (padded) input is
laid out as a row ("image to columns"). The backward pass needs the reverse, "col2im",
which adds each row's gradient back onto the pixels its patch came from: pixels covered
by several patches receive the sum.

Layout: images are (N, C, H, W); patch rows are (N·OH·OW, C·KH·KW), ordered like the
PyTorch weight (O, C, KH, KW) flattened, so ``cols @ weight.reshape(O, -1).T`` convolves.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Positions a kernel takes along one axis: ⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def im2col(
    x: np.ndarray, kh: int, kw: int, stride: int, padding: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Patches of ``x`` (N, C, H, W) as rows: returns ``cols`` (N·OH·OW, C·KH·KW), (OH, OW)."""
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    # windows[n, c, i, j, u, v] = x_pad[n, c, i·s + u, j·s + v]  (a view: no copy yet)
    windows = sliding_window_view(_pad(x, padding), (kh, kw), axis=(2, 3))[
        :, :, ::stride, ::stride
    ]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    return cols, (oh, ow)


def col2im(
    cols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, stride: int, padding: int
) -> np.ndarray:
    """The adjoint of :func:`im2col`: add each patch row back onto the image it came from."""
    n, c, h, w = x_shape
    oh, ow = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    patches = cols.reshape(n, oh, ow, c, kh, kw)
    image = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            # every patch's (u, v) pixel lands on x_pad[:, :, i·s + u, j·s + v]
            image[:, :, u : u + stride * (oh - 1) + 1 : stride,
                  v : v + stride * (ow - 1) + 1 : stride] += patches[:, :, :, :, u, v].transpose(
                0, 3, 1, 2
            )
    if padding == 0:
        return image
    return np.ascontiguousarray(image[:, :, padding : padding + h, padding : padding + w])


def max_pool_forward(
    x: np.ndarray, kernel_size: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window; also returns which window element won (0 … k²−1)."""
    n, c, _, _ = x.shape
    windows = sliding_window_view(x, (kernel_size, kernel_size), axis=(2, 3))[
        :, :, ::stride, ::stride
    ]
    oh, ow = windows.shape[2], windows.shape[3]
    flat = windows.reshape(n, c, oh, ow, kernel_size * kernel_size)
    argmax = flat.argmax(axis=-1)  # the first maximum, as PyTorch picks
    out = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return out, argmax


def max_pool_backward(
    grad: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, ...], kernel_size: int,
    stride: int,
) -> np.ndarray:
    """Send each window's gradient to the element that won the max."""
    _, _, oh, ow = grad.shape
    grad_x = np.zeros(x_shape, dtype=grad.dtype)
    for index in range(kernel_size * kernel_size):
        u, v = divmod(index, kernel_size)
        grad_x[:, :, u : u + stride * (oh - 1) + 1 : stride,
               v : v + stride * (ow - 1) + 1 : stride] += grad * (argmax == index)
    return grad_x
