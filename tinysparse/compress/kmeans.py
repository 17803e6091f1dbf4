"""One-dimensional k-means: the clustering behind weight sharing (Han, Mao & Dally 2016).

Deep Compression replaces the kept weights of a layer by ``k`` shared values, the
centroids of a k-means clustering of those weights: each weight ``w_i`` is assigned to its
nearest centroid, ``c_j = mean{w_i : i assigned to j}``, repeat until no assignment
changes (Lloyd's algorithm), which minimises the within-cluster sum of squares

    Σ_j Σ_{i assigned to j} (w_i − c_j)².

How the centroids start matters (Han et al. 2016, Section 3.2, compare three ways):

* ``"linear"``: evenly spaced between the smallest and the largest weight. It keeps
  centroids where the few large weights are, and the paper finds it works best, because
  large weights matter more than their number suggests;
* ``"density"``: evenly spaced in the cumulative distribution of the weights (quantiles):
  the centroids crowd where most weights are, near zero;
* ``"random"`` (Forgy): ``k`` distinct weights drawn at random (seeded).

In one dimension the nearest centroid is found by sorting: the boundaries between sorted
centroids are their midpoints, and ``np.searchsorted`` places every weight between two of
them. A weight exactly on a midpoint goes to the lower centroid. A centroid that loses all
its weights keeps its value (it may win some back later).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

INITIALISATIONS = ("linear", "density", "random")


class Clustering(NamedTuple):
    """What :func:`kmeans_1d` found: ``centroids`` (k,), ``assignments`` (one centroid
    index per value), ``iterations`` run, and whether the assignments stopped changing."""

    centroids: np.ndarray
    assignments: np.ndarray
    iterations: int
    converged: bool


def initial_centroids(values: np.ndarray, k: int, init: str = "linear",
                      seed: int | None = 0) -> np.ndarray:
    """The ``k`` centroids k-means starts from (float64, ascending).

    Parameters
    ----------
    values : 1-D array, not empty
    k : int >= 1
    init : "linear", "density" or "random"
        See the module docstring. With ``k = 1`` "linear" starts at the smallest value.
    seed : int, optional
        For ``"random"``.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("k-means: no values to cluster")
    if init == "linear":  # c_j = min + j (max − min) / (k − 1)
        return np.linspace(values.min(), values.max(), k)
    if init == "density":  # c_j = F⁻¹((j + ½) / k), F the empirical distribution
        return np.quantile(values, (np.arange(k) + 0.5) / k)
    if init == "random":  # Forgy: k of the values (all of them, repeated, if fewer)
        rng = np.random.default_rng(seed)
        distinct = np.unique(values)
        chosen = rng.choice(distinct, size=min(k, distinct.size), replace=False)
        return np.sort(np.resize(chosen, k))
    raise ValueError(f"init: unknown {init!r}; choose one of {list(INITIALISATIONS)}")


def nearest_centroid(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The index of the nearest centroid for every value (ties: the lower centroid)."""
    order = np.argsort(centroids, kind="stable")
    ordered = centroids[order]
    midpoints = (ordered[:-1] + ordered[1:]) / 2
    return order[np.searchsorted(midpoints, values, side="left")]


def kmeans_1d(values: np.ndarray, k: int, init: str = "linear", max_iterations: int = 100,
              seed: int | None = 0) -> Clustering:
    """Lloyd's k-means on the numbers ``values`` (computed in float64).

    Parameters
    ----------
    values : array_like, not empty
        Flattened first.
    k : int >= 1
        How many centroids.
    init : "linear" (default, as Han et al. recommend), "density" or "random"
    max_iterations : int >= 1
        Stop after this many assignment-and-update rounds even if assignments still change.
    seed : int, optional
        For ``init="random"``.

    Returns
    -------
    Clustering
        Centroids (k, float64) and each value's centroid index.

    Examples
    --------
    >>> c = kmeans_1d([-1.0, -0.8, 0.1, 0.2, 0.9, 1.0], 3)
    >>> c.centroids.round(3).tolist(), c.assignments.tolist()
    ([-0.9, 0.15, 0.95], [0, 0, 1, 1, 2, 2])
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if int(k) != k or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations: expected a positive integer, got {max_iterations}")
    centroids = initial_centroids(values, int(k), init, seed)
    assignments = nearest_centroid(values, centroids)
    for iteration in range(1, max_iterations + 1):
        # update: each centroid moves to the mean of its values (an empty one stays put)
        counts = np.bincount(assignments, minlength=k)
        sums = np.bincount(assignments, weights=values, minlength=k)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        # assignment: each value to its nearest centroid
        new_assignments = nearest_centroid(values, centroids)
        if np.array_equal(new_assignments, assignments):
            return Clustering(centroids, assignments, iteration, True)
        assignments = new_assignments
    return Clustering(centroids, assignments, max_iterations, False)
