"""The networks of the compression literature: MLPs, LeNet-300-100 and LeNet-5.

* LeNet-300-100 (LeCun et al. 1998): 784-300-100-10 fully connected, 266,610 parameters;
  the network of Han et al. 2015 and Frankle & Carbin 2019.
* LeNet-5 (LeCun et al. 1998, with ReLU and max-pooling as is usual today): conv 6@5x5
  (padding 2, so 28x28 inputs keep their size) -> pool -> conv 16@5x5 -> pool ->
  120 -> 84 -> 10, 61,706 parameters. (Han et al.'s "LeNet-5" is Caffe's larger
  20-50-500 variant with 431K parameters; the lessons say so where they compare.)

Each factory takes ``dropout`` (on the hidden activations), ``input_dropout`` (on the
input) and ``dropconnect`` (DropConnect on the hidden fully connected layers' weights),
all 0 by default, when the model has none of those layers (Srivastava et al. 2014 use
0.5 and 0.2). Each stochastic layer gets its own seed derived from the model's
(:func:`~tinysparse.nn.init.derived_seed`): the same model seed gives the same masks,
and adding dropout does not change the initial weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tinysparse.nn.dropout import DropConnect, Dropout, check_probability
from tinysparse.nn.init import as_generator, derived_seed
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


def _dropout_kwargs(dropout: float, input_dropout: float, dropconnect: float
                    ) -> dict[str, float]:
    """The dropout options of a factory, checked; the non-zero ones (for ``config``)."""
    given = {"dropout": check_probability(dropout, "dropout"),
             "input_dropout": check_probability(input_dropout, "input_dropout"),
             "dropconnect": check_probability(dropconnect, "dropconnect")}
    return {name: p for name, p in given.items() if p}


def _dropout_layer(p: float, seed: int | None, position: int) -> list[tuple[str, Module]]:
    """``[("drop<position>", Dropout)]`` with the position's own seed, or [] when p = 0."""
    return [(f"drop{position}", Dropout(p, seed=derived_seed(seed, 1, position)))] if p else []


def _dropconnect(p: float, seed: int | None, position: int) -> DropConnect | None:
    """DropConnect for the hidden layer at ``position`` (its own seed), or None when p = 0."""
    return DropConnect(p, seed=derived_seed(seed, 2, position)) if p else None


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    init: str = "glorot_normal",
    seed: int = 0,
    bias: bool = True,
    flatten: bool = True,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    dropconnect: float = 0.0,
) -> Sequential:
    """A fully connected network: ``sizes = [784, 300, 100, 10]`` gives LeNet-300-100.

    Layers are named ``fc1, act1, fc2, act2, ..., fcL`` (no activation after the last:
    it returns logits). With ``flatten`` the input is flattened first, so image batches
    (N, 1, 28, 28) work as they are.

    With ``input_dropout`` a Dropout layer ``drop0`` comes before ``fc1``; with
    ``dropout`` one after each hidden activation (``act1, drop1, fc2, ...``); with
    ``dropconnect`` every hidden Linear layer (not the output layer) drops its weights
    (:class:`~tinysparse.nn.DropConnect`). Each is a probability in [0, 1).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes: need at least two positive layer sizes, got {sizes}")
    options = _dropout_kwargs(dropout, input_dropout, dropconnect)
    if dropconnect and len(sizes) < 3:
        raise ValueError(f"dropconnect: the network {sizes} has no hidden layer to drop "
                         f"the weights of (DropConnect is not applied to the output layer)")
    rng = as_generator(seed)
    layers: list[tuple[str, Module]] = [("flatten", Flatten())] if flatten else []
    layers += _dropout_layer(input_dropout, seed, 0)
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        hidden = i < len(sizes) - 1
        noise = _dropconnect(dropconnect, seed, i) if hidden else None
        layers.append((f"fc{i}", Linear(fan_in, fan_out, bias=bias, init=init, rng=rng,
                                        weight_noise=noise)))
        if hidden:
            layers.append((f"act{i}", _activation(activation)))
            layers += _dropout_layer(dropout, seed, i)
    model = Sequential(*layers)
    model.config = {
        "name": "mlp",
        "kwargs": {"sizes": sizes, "activation": activation, "init": init, "seed": seed,
                   "bias": bias, "flatten": flatten, **options},
    }
    return model


def lenet300(seed: int = 0, init: str = "glorot_normal", activation: str = "relu",
             dropout: float = 0.0, input_dropout: float = 0.0, dropconnect: float = 0.0
             ) -> Sequential:
    """LeNet-300-100: 784-300-100-10 with ReLU, Glorot-normal weights (as in Frankle & Carbin).

    ``dropout``, ``input_dropout``, ``dropconnect``: as for :func:`mlp`."""
    options = _dropout_kwargs(dropout, input_dropout, dropconnect)
    model = mlp([784, 300, 100, 10], activation=activation, init=init, seed=seed, **options)
    model.config = {"name": "lenet300", "kwargs": {"seed": seed, "init": init,
                                                   "activation": activation, **options}}
    return model


def lenet5(seed: int = 0, init: str = "glorot_normal", activation: str = "relu",
           dropout: float = 0.0, input_dropout: float = 0.0, dropconnect: float = 0.0
           ) -> Sequential:
    """LeNet-5 for 28x28 digits: conv(6, 5x5, pad 2)-pool-conv(16, 5x5)-pool-120-84-10.

    ``input_dropout`` drops input pixels (``drop0``, before ``conv1``); ``dropout`` acts on
    the fully connected hidden activations (``drop3`` after ``act3``, ``drop4`` after
    ``act4``), as Srivastava et al.'s fully connected layers; ``dropconnect`` drops the
    weights of the hidden fully connected layers ``fc1`` and ``fc2``.
    """
    options = _dropout_kwargs(dropout, input_dropout, dropconnect)
    rng = as_generator(seed)
    model = Sequential(
        ("reshape", Reshape(1, 28, 28)),
        *_dropout_layer(input_dropout, seed, 0),
        ("conv1", Conv2d(1, 6, 5, padding=2, init=init, rng=rng)),
        ("act1", _activation(activation)),
        ("pool1", MaxPool2d(2)),
        ("conv2", Conv2d(6, 16, 5, init=init, rng=rng)),
        ("act2", _activation(activation)),
        ("pool2", MaxPool2d(2)),
        ("flatten", Flatten()),
        ("fc1", Linear(16 * 5 * 5, 120, init=init, rng=rng,
                       weight_noise=_dropconnect(dropconnect, seed, 3))),
        ("act3", _activation(activation)),
        *_dropout_layer(dropout, seed, 3),
        ("fc2", Linear(120, 84, init=init, rng=rng,
                       weight_noise=_dropconnect(dropconnect, seed, 4))),
        ("act4", _activation(activation)),
        *_dropout_layer(dropout, seed, 4),
        ("fc3", Linear(84, 10, init=init, rng=rng)),
    )
    model.config = {"name": "lenet5", "kwargs": {"seed": seed, "init": init,
                                                 "activation": activation, **options}}
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
