"""Modules, layers (dense, and their twins on the sparse kernels), initialisers and the
LeNet models."""

from tinysparse.nn import init, ising
from tinysparse.nn.dropout import (
    DropConnect,
    Dropout,
    TargetedDropout,
    WeightNoise,
    deterministic,
    dropout_layers,
    mc_dropout,
    predict_mc,
)
from tinysparse.nn.init import derived_seed
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
    set_weight_noise,
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
    "clone", "init", "ising",
    "has_sparse_layers", "lenet300", "lenet5", "mlp", "to_dense", "to_sparse",
    "DropConnect", "Dropout", "TargetedDropout", "WeightNoise", "derived_seed",
    "dropout_layers", "mc_dropout", "predict_mc", "set_weight_noise", "deterministic",
    # sparse variational dropout
    "VariationalConv2d", "VariationalLayer", "VariationalLinear", "from_variational",
    "to_variational", "variational_kl",
    # L0 gates
    "L0Conv2d", "L0Layer", "L0Linear", "expected_l0", "from_l0", "to_l0",
]
