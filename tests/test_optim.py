"""Optimisers against their update formulas written out by hand."""

import numpy as np
import pytest

from tinysparse.nn import Parameter
from tinysparse.optim import SGD, Adam, make_optimizer


def run(optimizer_factory, gradients, w0):
    p = Parameter(np.array(w0, dtype=np.float64))
    opt = optimizer_factory([p])
    for g in gradients:
        p.grad = np.array(g, dtype=np.float64)
        opt.step()
    return p.data


GRADS = [[1.0, -2.0], [0.5, 0.5], [-1.0, 3.0]]


def test_plain_sgd():
    w = run(lambda p: SGD(p, lr=0.1), GRADS, [1.0, 1.0])
    np.testing.assert_allclose(w, np.array([1.0, 1.0]) - 0.1 * np.sum(GRADS, axis=0))


def test_sgd_momentum_weight_decay_and_nesterov_by_hand():
    lr, mu, wd = 0.1, 0.9, 0.01
    for nesterov in (False, True):
        w, v = np.array([1.0, 1.0]), None
        for g in GRADS:
            g = np.array(g) + wd * w
            v = g.copy() if v is None else mu * v + g
            w = w - lr * (g + mu * v if nesterov else v)
        got = run(lambda p, n=nesterov: SGD(p, lr=lr, momentum=mu, weight_decay=wd, nesterov=n),
                  GRADS, [1.0, 1.0])
        np.testing.assert_allclose(got, w, rtol=1e-14)


def test_adam_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w, m, v = np.array([1.0, 1.0]), 0.0, 0.0
    for t, g in enumerate(GRADS, start=1):
        g = np.array(g)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(run(lambda p: Adam(p, lr=lr), GRADS, [1.0, 1.0]), w, rtol=1e-12)


def test_parameters_without_gradient_are_left_alone():
    p, q = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = SGD([p, q], lr=1.0)
    p.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(q.data, [1.0, 1.0])
    opt.zero_grad()
    assert p.grad is None


def test_bad_arguments():
    p = [Parameter(np.ones(2))]
    with pytest.raises(ValueError, match="lr"):
        SGD(p, lr=0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(p, momentum=1.5)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(p, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(ValueError, match="choose one of"):
        make_optimizer("rmsprop", p, lr=0.1)
    with pytest.raises(TypeError, match="Parameters"):
        SGD([np.ones(2)])
