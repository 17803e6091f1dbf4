"""The networks of the compression literature: MLPs, LeNet-300-100 and LeNet-5.

* LeNet-300-100 (LeCun et al. 1998): 784-300-100-10 fully connected, 266,610 parameters;
  the network of Han et al. 2015 and Frankle & Carbin 2019.
* LeNet-5 (LeCun et al. 1998, with ReLU and max-pooling as is usual today): conv 6@5x5
  (padding 2, so 28x28 inputs keep their size) -> pool -> conv 16@5x5 -> pool ->
  120 -> 84 -> 10, 61,706 parameters. (Han et al.'s "LeNet-5" is Caffe's larger
  20-50-500 variant with 431K parameters; the lessons say so where they compare.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tinysparse.nn.init import as_generator
from tinysparse.nn.layers import (
    ACTIVATIONS,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Reshape,
    Sequential,
)
from tinysparse.nn.module import Module


def _activation(name: str) -> Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"activation: unknown {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    init: str = "glorot_normal",
    seed: int = 0,
    bias: bool = True,
    flatten: bool = True,
) -> Sequential:
    """A fully connected network: ``sizes = [784, 300, 100, 10]`` gives LeNet-300-100.

    Layers are named ``fc1, act1, fc2, act2, ..., fcL`` (no activation after the last:
    it returns logits). With ``flatten`` the input is flattened first, so image batches
    (N, 1, 28, 28) work as they are.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes: need at least two positive layer sizes, got {sizes}")
    rng = as_generator(seed)
    layers: list[tuple[str, Module]] = [("flatten", Flatten())] if flatten else []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers.append((f"fc{i}", Linear(fan_in, fan_out, bias=bias, init=init, rng=rng)))
        if i < len(sizes) - 1:
            layers.append((f"act{i}", _activation(activation)))
    model = Sequential(*layers)
    model.config = {
        "name": "mlp",
        "kwargs": {"sizes": sizes, "activation": activation, "init": init, "seed": seed,
                   "bias": bias, "flatten": flatten},
    }
    return model


def lenet300(seed: int = 0, init: str = "glorot_normal", activation: str = "relu") -> Sequential:
    """LeNet-300-100: 784-300-100-10 with ReLU, Glorot-normal weights (as in Frankle & Carbin)."""
    model = mlp([784, 300, 100, 10], activation=activation, init=init, seed=seed)
    model.config = {"name": "lenet300", "kwargs": {"seed": seed, "init": init,
                                                   "activation": activation}}
    return model


def lenet5(seed: int = 0, init: str = "glorot_normal", activation: str = "relu") -> Sequential:
    """LeNet-5 for 28x28 digits: conv(6, 5x5, pad 2)-pool-conv(16, 5x5)-pool-120-84-10."""
    rng = as_generator(seed)
    model = Sequential(
        ("reshape", Reshape(1, 28, 28)),
        ("conv1", Conv2d(1, 6, 5, padding=2, init=init, rng=rng)),
        ("act1", _activation(activation)),
        ("pool1", MaxPool2d(2)),
        ("conv2", Conv2d(6, 16, 5, init=init, rng=rng)),
        ("act2", _activation(activation)),
        ("pool2", MaxPool2d(2)),
        ("flatten", Flatten()),
        ("fc1", Linear(16 * 5 * 5, 120, init=init, rng=rng)),
        ("act3", _activation(activation)),
        ("fc2", Linear(120, 84, init=init, rng=rng)),
        ("act4", _activation(activation)),
        ("fc3", Linear(84, 10, init=init, rng=rng)),
    )
    model.config = {"name": "lenet5", "kwargs": {"seed": seed, "init": init,
                                                 "activation": activation}}
    return model


MODELS: dict[str, Callable[..., Sequential]] = {
    "lenet300": lenet300,
    "lenet5": lenet5,
    "mlp": mlp,
}


def build_model(name: str, **kwargs: Any) -> Sequential:
    """Build a model by name: ``"lenet300"``, ``"lenet5"`` or ``"mlp"`` (needs ``sizes``)."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"model: unknown {name!r}; choose one of {sorted(MODELS)}") from None
    return factory(**kwargs)
