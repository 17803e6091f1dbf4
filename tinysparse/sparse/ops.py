"""Sparse Linear and Conv2d as autograd ops: forward and backward on the sparse kernels.

Same results as the masked dense ops (``linear(x, W ⊙ M, b)``, ``conv2d(...)``), computed
only where the mask keeps a weight:

* forward ``Y = W X`` (SpMM), gradient w.r.t. the input ``dX = Wᵀ dY`` (SpMM on the
  columns), gradient w.r.t. the weight ``dW = dY Xᵀ`` at the non-zeros only (SDDMM),
  returned compact (a :class:`~tinysparse.sparse.csr.SparseGradient`); the weights are
  read compact too, from the parameter's master copy of its kept weights
  (``Parameter.kept_weights``: the dense array is not touched);
* activations are kept **feature-major** (features × batch) in memory. The op returns
  ``Y`` as the transposed *view* of a (out × batch) array, so it still has the usual
  (batch × out) shape; NumPy's elementwise ops (bias, ReLU) keep that memory layout, and
  the next sparse layer finds its input already feature-major — no copies in between.
"""

from __future__ import annotations

import numpy as np

from tinysparse import kernels
from tinysparse.autograd.tensor import Function, Tensor
from tinysparse.sparse.csr import SparseGradient, SparseStructure


def _kept_weights(weight: Tensor, structure: SparseStructure) -> np.ndarray:
    """The weights at the non-zeros: a parameter's compact master copy
    (``Parameter.kept_weights``, never expanded to the dense array), else gathered."""
    if hasattr(weight, "kept_weights"):
        return weight.kept_weights(structure)
    return structure.gather(np.ascontiguousarray(weight.data))


def _feature_major(batch_major: np.ndarray) -> np.ndarray:
    """(batch × features) -> contiguous (features × batch); free for transposed views."""
    return np.ascontiguousarray(batch_major.reshape(batch_major.shape[0], -1).T)


class SparseLinear(Function):
    """``y = x Wᵀ + b`` with W sparse: the kernels see Y_fm = W X_fm (feature-major)."""

    takes_tensors = True  # to read the weight's kept values, not its dense array

    def forward(self, x, weight, bias=None, structure: SparseStructure = None):
        self.structure, self.weight_shape = structure, weight.shape
        self.values = _kept_weights(weight, structure)
        self.x = _feature_major(x.data)  # (in, batch)
        s = structure
        y = kernels.spmm(s.indptr, s.indices, self.values, self.x,
                         None if bias is None else bias.data)  # (out, batch)
        return y.T

    def backward(self, grad):
        s = self.structure
        grad_fm = _feature_major(grad)  # (out, batch)
        grad_x = grad_weight = grad_bias = None
        if self.needs_grad[0]:
            grad_x = kernels.spmm_transposed(s.t_indptr, s.t_indices, s.t_order, self.values,
                                             grad_fm).T
        if self.needs_grad[1]:
            grad_weight = SparseGradient(
                s, kernels.sddmm(s.indptr, s.indices, grad_fm, self.x), self.weight_shape)
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            grad_bias = grad_fm.sum(axis=1)
        return grad_x, grad_weight, grad_bias


class SparseConv2d(Function):
    """Convolution with a sparse kernel: im2col columns (C·K·K × N·OH·OW) are already
    feature-major, so Y = W_sparse · cols is one SpMM."""

    takes_tensors = True  # to read the weight's kept values, not its dense array

    def forward(self, x, weight, bias=None, structure: SparseStructure = None, stride=1,
                padding=0):
        self.structure, self.weight_shape, self.x_shape = structure, weight.shape, x.shape
        self.stride, self.padding = stride, padding
        out_channels, _, kh, _ = weight.shape
        self.values = _kept_weights(weight, structure)
        self.cols, (oh, ow) = kernels.im2col(x.data, kh, kh, stride, padding)
        s = structure
        out = kernels.spmm(s.indptr, s.indices, self.values, self.cols,
                           None if bias is None else bias.data)  # (O, N·OH·OW)
        out = out.reshape(out_channels, x.shape[0], oh, ow)
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3))

    def backward(self, grad):
        s = self.structure
        out_channels, _, kh, _ = self.weight_shape
        grad_columns = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(out_channels, -1)
        grad_x = grad_weight = grad_bias = None
        if self.needs_grad[1]:
            grad_weight = SparseGradient(
                s, kernels.sddmm(s.indptr, s.indices, grad_columns, self.cols),
                self.weight_shape)
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            grad_bias = grad_columns.sum(axis=1)
        if self.needs_grad[0]:
            grad_cols = kernels.spmm_transposed(s.t_indptr, s.t_indices, s.t_order,
                                                self.values, grad_columns)
            grad_x = kernels.col2im(grad_cols, self.x_shape, kh, kh, self.stride, self.padding)
        return grad_x, grad_weight, grad_bias


def sparse_linear(x: Tensor, weight: Tensor, bias: Tensor | None,
                  structure: SparseStructure) -> Tensor:
    """Linear layer on the sparse kernels (``structure`` from :func:`csr.structure_of`)."""
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return SparseLinear.apply(*inputs, structure=structure)


def sparse_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, structure: SparseStructure,
                  stride: int = 1, padding: int = 0) -> Tensor:
    """Conv2d on the sparse kernels."""
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return SparseConv2d.apply(*inputs, structure=structure, stride=stride, padding=padding)
