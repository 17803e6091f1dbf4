"""Finite-difference gradient checks (float64) of every op, plus graph semantics."""

import numpy as np
import pytest
from op_cases import CASE_IDS, CASES

import tinysparse.autograd as A
from tinysparse.autograd import GradcheckError, Tensor, gradcheck


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_op_gradient_matches_finite_differences(case):
    inputs = case.inputs(np.random.default_rng(0))
    assert gradcheck(case.ours, inputs)


def test_reused_node_gets_the_sum_of_its_gradients():
    # f(x) = x·x + x  (x used three times): df/dx = 2x + 1
    x = Tensor(np.array([1.5, -2.0, 0.25]), requires_grad=True)
    y = x * x + x
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_diamond_graph_gradcheck():
    # a -> (b, c) -> d: both paths must be summed, and each node visited once
    def diamond(a):
        b = a.tanh()
        c = a * 3.0
        d = b * c + b.exp()
        return (d * d).sum()

    assert gradcheck(diamond, [np.random.default_rng(1).standard_normal((3, 4))])


def test_broadcasting_in_both_directions():
    # (3, 1) op (1, 4) -> (3, 4): each input is stretched along a different axis
    rng = np.random.default_rng(2)
    assert gradcheck(lambda a, b: (a * b + a / (b * b + 1)).tanh(),
                     [rng.standard_normal((3, 1)), rng.standard_normal((1, 4))])
    # a leading axis added by broadcasting
    assert gradcheck(lambda a, b: a - b, [rng.standard_normal((2, 3, 4)),
                                          rng.standard_normal(4)])


def test_whole_mlp_gradcheck():
    rng = np.random.default_rng(3)
    labels = np.array([0, 1, 2, 1])

    def net(x, w1, b1, w2, b2):
        h = A.tanh(A.linear(x, w1, b1))
        return A.cross_entropy(A.linear(h, w2, b2), labels)

    assert gradcheck(net, [rng.standard_normal((4, 5)), rng.standard_normal((6, 5)),
                           rng.standard_normal(6), rng.standard_normal((3, 6)),
                           rng.standard_normal(3)])


def test_gradcheck_catches_a_wrong_gradient():
    class WrongSquare(A.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, grad):
            return (grad * self.x,)  # should be 2x

    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda x: WrongSquare.apply(x), [np.array([1.0, 2.0])])
