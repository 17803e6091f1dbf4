"""Sparse Linear and Conv2d as autograd ops: forward and backward on the sparse kernels.

Same results as the masked dense ops (``linear(x, W ⊙ M, b)``, ``conv2d(...)``), computed
only where the mask keeps a weight. The weight enters as ``values``: the kept weights in
CSR order (one per non-zero of ``structure``), an ordinary array — its gradient is
another such vector.

* forward ``Y = W X`` (SpMM), gradient w.r.t. the input ``dX = Wᵀ dY`` (SpMM on the
  columns), gradient w.r.t. the weight ``dW = dY Xᵀ`` at the non-zeros only (SDDMM);
* activations are kept **feature-major** (features × batch) in memory. The op returns
  ``Y`` as the transposed *view* of a (out × batch) array, so it still has the usual
  (batch × out) shape; NumPy's elementwise ops (bias, ReLU) keep that memory layout, and
  the next sparse layer finds its input already feature-major — no copies in between.
"""

from __future__ import annotations

import numpy as np

from tinysparse import kernels
from tinysparse.autograd.tensor import Function, Tensor
from tinysparse.sparse.csr import SparseStructure


def _feature_major(batch_major: np.ndarray) -> np.ndarray:
    """(batch × features) -> contiguous (features × batch); free for transposed views."""
    return np.ascontiguousarray(batch_major.reshape(batch_major.shape[0], -1).T)


class SparseLinear(Function):
    """``y = x Wᵀ + b`` with W sparse: the kernels see Y_fm = W X_fm (feature-major)."""

    def forward(self, x, values, bias=None, structure: SparseStructure = None):
        self.structure, self.values = structure, values
        self.x = _feature_major(x)  # (in, batch)
        s = structure
        y = kernels.spmm(s.indptr, s.indices, values, self.x, bias)  # (out, batch)
        return y.T

    def backward(self, grad):
        s = self.structure
        grad_fm = _feature_major(grad)  # (out, batch)
        grad_x = grad_values = grad_bias = None
        if self.needs_grad[0]:
            grad_x = kernels.spmm_transposed(s.t_indptr, s.t_indices, s.t_order, self.values,
                                             grad_fm).T  # dX = Wᵀ dY
        if self.needs_grad[1]:
            # dW = dY Xᵀ, at the non-zeros of W only
            grad_values = kernels.sddmm(s.indptr, s.indices, grad_fm, self.x)
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            grad_bias = grad_fm.sum(axis=1)
        return grad_x, grad_values, grad_bias


class SparseConv2d(Function):
    """Convolution with a sparse kernel: im2col columns (C·K·K × N·OH·OW) are already
    feature-major, so Y = W_sparse · cols is one SpMM."""

    def forward(self, x, values, bias=None, structure: SparseStructure = None,
                kernel_size: int = 1, stride: int = 1, padding: int = 0):
        self.structure, self.values, self.x_shape = structure, values, x.shape
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        k = kernel_size
        self.cols, (oh, ow) = kernels.im2col(x, k, k, stride, padding)
        s = structure
        out = kernels.spmm(s.indptr, s.indices, values, self.cols, bias)  # (O, N·OH·OW)
        out = out.reshape(s.shape[0], x.shape[0], oh, ow)
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3))

    def backward(self, grad):
        s = self.structure
        grad_columns = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(s.shape[0], -1)
        grad_x = grad_values = grad_bias = None
        if self.needs_grad[1]:
            grad_values = kernels.sddmm(s.indptr, s.indices, grad_columns, self.cols)
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            grad_bias = grad_columns.sum(axis=1)
        if self.needs_grad[0]:
            grad_cols = kernels.spmm_transposed(s.t_indptr, s.t_indices, s.t_order,
                                                self.values, grad_columns)
            k = self.kernel_size
            grad_x = kernels.col2im(grad_cols, self.x_shape, k, k, self.stride, self.padding)
        return grad_x, grad_values, grad_bias


def sparse_linear(x: Tensor, values: Tensor, bias: Tensor | None,
                  structure: SparseStructure) -> Tensor:
    """Linear layer on the sparse kernels: ``values`` are the kept weights of ``structure``
    (:func:`~tinysparse.sparse.csr.structure_of` the mask), in CSR order."""
    inputs = (x, values) if bias is None else (x, values, bias)
    return SparseLinear.apply(*inputs, structure=structure)


def sparse_conv2d(x: Tensor, values: Tensor, bias: Tensor | None, structure: SparseStructure,
                  kernel_size: int, stride: int = 1, padding: int = 0) -> Tensor:
    """Conv2d on the sparse kernels (``structure`` views the kernel as O × C·K·K)."""
    inputs = (x, values) if bias is None else (x, values, bias)
    return SparseConv2d.apply(*inputs, structure=structure, kernel_size=kernel_size,
                              stride=stride, padding=padding)
