"""Modules, layers, initialisers and the LeNet models."""

from tinysparse.nn import init
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
from tinysparse.nn.module import Module, Parameter, build_from_spec

__all__ = [
    "ACTIVATIONS", "MODELS", "Conv2d", "Flatten", "Linear", "MaxPool2d", "Module",
    "Parameter", "ReLU", "Reshape", "Sequential", "Sigmoid", "Tanh", "build_from_spec",
    "build_model", "init", "lenet300", "lenet5", "mlp",
]
