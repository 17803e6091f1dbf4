"""Modules, layers (dense, and their twins on the sparse kernels), initialisers and the
LeNet models."""

from tinysparse.nn import init
from tinysparse.nn.l0 import L0Conv2d, L0Layer, L0Linear, expected_l0, from_l0, to_l0
from tinysparse.nn.layers import (
    ACTIVATIONS,
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
from tinysparse.nn.models import MODELS, build_model, lenet5, lenet300, mlp
from tinysparse.nn.module import Module, Parameter, build_from_spec, clone
from tinysparse.nn.sparse_layers import (
    SPARSE_TWINS,
    SparseConv2d,
    SparseLayer,
    SparseLinear,
    as_dense,
    has_sparse_layers,
    to_dense,
    to_sparse,
)
from tinysparse.nn.variational import (
    VariationalConv2d,
    VariationalLayer,
    VariationalLinear,
    from_variational,
    to_variational,
    variational_kl,
)

__all__ = [
    "ACTIVATIONS", "MODELS", "SPARSE_TWINS", "Conv2d", "Flatten", "Linear", "MaxPool2d",
    "Module", "Parameter", "ReLU", "Reshape", "Sequential", "Sigmoid", "SparseConv2d",
    "SparseLayer", "SparseLinear", "Tanh", "as_dense", "build_from_spec", "build_model",
    "clone", "init",
    "has_sparse_layers", "lenet300", "lenet5", "mlp", "to_dense", "to_sparse",
    # sparse variational dropout
    "VariationalConv2d", "VariationalLayer", "VariationalLinear", "from_variational",
    "to_variational", "variational_kl",
    # L0 gates
    "L0Conv2d", "L0Layer", "L0Linear", "expected_l0", "from_l0", "to_l0",
]
