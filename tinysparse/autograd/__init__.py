"""Reverse-mode automatic differentiation on NumPy arrays.

``Tensor`` holds an array and the op that made it; ``backward()`` walks the graph in
reverse topological order. Ops are in :mod:`.ops` (arithmetic, reductions, shapes) and
:mod:`.nn_ops` (activations, softmax, losses, linear, conv2d, max-pool); each is a
``Function`` with its ``forward`` and ``backward`` side by side.
"""

from tinysparse.autograd.gradcheck import GradcheckError, gradcheck, numerical_gradient
from tinysparse.autograd.nn_ops import (
    conv2d,
    cross_entropy,
    dropout,
    flatten,
    group_lasso,
    hard_concrete,
    linear,
    local_reparameterisation_conv2d,
    local_reparameterisation_linear,
    log_alpha,
    log_softmax,
    max_pool2d,
    mixture_neg_log_prob,
    mse_loss,
    relu,
    sigmoid,
    softmax,
    tanh,
    variational_dropout_kl,
)
from tinysparse.autograd.ops import (
    add,
    div,
    exp,
    getitem,
    log,
    matmul,
    max,
    mean,
    mul,
    neg,
    pow,
    reshape,
    sparse_matvec,
    sub,
    sum,
    take,
    transpose,
    unbroadcast,
)
from tinysparse.autograd.tensor import (
    Function,
    Tensor,
    default_dtype,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
    topological_order,
)

__all__ = [
    "Function", "GradcheckError", "Tensor", "add", "conv2d", "cross_entropy",
    "default_dtype", "div", "exp", "flatten", "get_default_dtype", "getitem", "gradcheck",
    "group_lasso", "mixture_neg_log_prob",
    "is_grad_enabled", "linear", "log", "log_softmax", "matmul", "max", "max_pool2d", "mean",
    "mse_loss", "mul", "neg", "no_grad", "numerical_gradient", "pow", "relu", "reshape",
    "set_default_dtype", "sigmoid", "softmax", "sparse_matvec", "sub", "sum", "take", "tanh",
    "topological_order",
    "transpose", "unbroadcast",
    "dropout",
    # sparse variational dropout and L0 gates
    "hard_concrete", "local_reparameterisation_conv2d", "local_reparameterisation_linear",
    "log_alpha", "variational_dropout_kl",
]
