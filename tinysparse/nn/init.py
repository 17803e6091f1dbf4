"""Weight initialisers (Glorot & Bengio 2010; He et al. 2015), all seeded.

Each takes a shape and a ``np.random.Generator`` and returns a float64 array; layers cast
it to their dtype. For a Linear weight (out, in) ``fan_in = in``, ``fan_out = out``; for a
Conv2d weight (O, C, KH, KW) ``fan_in = C·KH·KW`` and ``fan_out = O·KH·KW``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``."""
    if len(shape) < 2:
        raise ValueError(f"fans: a weight has at least 2 dimensions, got shape {shape}")
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """N(0, σ²) with σ = √(2 / (fan_in + fan_out)) (the lottery-ticket paper's choice)."""
    fan_in, fan_out = fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """U(−a, a) with a = √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """N(0, σ²) with σ = √(2 / fan_in), for ReLU networks."""
    fan_in, _ = fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """U(−a, a) with a = √(6 / fan_in)."""
    fan_in, _ = fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


INITIALIZERS: dict[str, Callable[[tuple[int, ...], np.random.Generator], np.ndarray]] = {
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


def get_initializer(name: str) -> Callable[[tuple[int, ...], np.random.Generator], np.ndarray]:
    """The initialiser called ``name`` (one of :data:`INITIALIZERS`)."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(
            f"init: unknown initialiser {name!r}; choose one of {sorted(INITIALIZERS)}"
        ) from None


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator or an integer seed (None means seed 0: results stay reproducible)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def derived_seed(seed: int | None, *path: int) -> int | None:
    """A seed for one stochastic part of a model (a dropout layer, a layer's noise),
    derived from the model's ``seed`` and the part's position ``path``: the same model seed
    gives the same seeds, and different paths give independent streams (NumPy's
    ``SeedSequence`` mixes them, so neighbouring positions give unrelated streams). None
    stays None."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), *map(int, path)]).generate_state(1)[0])
