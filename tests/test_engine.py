"""Semantics of the graph: accumulation, no_grad, detach, dtypes, errors."""

import numpy as np
import pytest

import tinysparse.autograd as A
from tinysparse.autograd import Tensor, no_grad


def test_leaf_gradients_accumulate_across_backward_calls_until_zeroed():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_intermediate_tensors_keep_this_passes_gradient():
    x = Tensor([1.0, -1.0], requires_grad=True)
    h = x * 2.0
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data)


def test_no_grad_records_nothing():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    assert A.is_grad_enabled()


def test_no_grad_as_decorator():
    @no_grad()
    def double(t):
        return t * 2.0

    assert not double(Tensor([1.0], requires_grad=True)).requires_grad


def test_detach_cuts_the_graph():
    x = Tensor([2.0], requires_grad=True)
    y = (x * x).detach() * x
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0])  # only the second factor counts


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0])


def test_backward_errors_are_clear():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).backward()
    with pytest.raises(RuntimeError, match="one-element"):
        (Tensor([1.0, 2.0], requires_grad=True) * 2.0).backward()
    y = Tensor([1.0, 2.0], requires_grad=True) * 2.0
    with pytest.raises(ValueError, match=r"expected shape \(2,\)"):
        y.backward(np.ones(3))


def test_float32_by_default_and_float64_end_to_end():
    x = Tensor([1, 2, 3])
    assert x.dtype == np.float32
    w = Tensor(np.ones((3, 2)), requires_grad=True)  # float64 array keeps its dtype
    y = A.softmax(Tensor(np.ones((1, 3))) @ w)
    y.sum().backward()
    assert y.dtype == np.float64 and w.grad.dtype == np.float64
    with A.default_dtype(np.float64):
        assert Tensor([1, 2]).dtype == np.float64
    assert A.get_default_dtype() == np.float32


def test_python_scalars_do_not_upcast_float32():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = (x * 0.5 + 2.0) ** 2 / 3.0
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_matmul_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


def test_cross_entropy_rejects_bad_labels():
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        A.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="2 logits rows but 3 labels"):
        A.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        A.cross_entropy(logits, np.array([0, 1]), temperature=0)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = Tensor(np.array([[1000.0, 0.0], [0.0, -1000.0]]), requires_grad=True)
    loss = A.cross_entropy(logits, np.array([0, 1]))
    assert np.isfinite(loss.item())
    loss.backward()
    assert np.all(np.isfinite(logits.grad))


def test_conv2d_and_pool_shape_errors():
    with pytest.raises(ValueError, match="same C"):
        A.conv2d(Tensor(np.ones((1, 2, 5, 5))), Tensor(np.ones((3, 1, 3, 3))))
    with pytest.raises(ValueError, match="larger than the padded input"):
        A.conv2d(Tensor(np.ones((1, 1, 2, 2))), Tensor(np.ones((1, 1, 3, 3))))
    with pytest.raises(ValueError, match="max_pool2d"):
        A.max_pool2d(Tensor(np.ones((1, 1, 2, 2))), 3)


def test_max_pool_gives_the_gradient_to_the_first_maximum():
    x = Tensor(np.array([[[[1.0, 1.0], [0.0, 1.0]]]]), requires_grad=True)
    A.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_max_shares_the_gradient_among_ties():
    x = Tensor(np.array([3.0, 1.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.5, 0.0, 0.5])


@pytest.mark.parametrize("shape", [((3, 1, 9, 9), (4, 1, 3, 3), 1, 1),
                                   ((2, 12, 6, 6), (5, 12, 3, 3), 2, 0)])
def test_conv2d_per_image_and_whole_batch_products_agree(shape, monkeypatch):
    """Short im2col columns run as one product per image, long ones as one product for the
    batch (nn_ops.PER_IMAGE_BELOW): force each way on the same inputs, same results."""
    from tinysparse.autograd import nn_ops

    x_shape, w_shape, stride, padding = shape
    rng = np.random.default_rng(0)
    arrays = (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
              rng.standard_normal(w_shape[0]), rng.standard_normal((x_shape[0], w_shape[0])))
    results = {}
    for per_image in (True, False):
        monkeypatch.setattr(nn_ops, "PER_IMAGE_BELOW", 10**9 if per_image else 0)
        x, w, b = (Tensor(a, requires_grad=True) for a in arrays[:3])
        out = A.conv2d(x, w, b, stride=stride, padding=padding)
        assert out.data.flags.c_contiguous and out._ctx.per_image == per_image
        (out.sum(axis=(2, 3)) * Tensor(arrays[3])).sum().backward()
        results[per_image] = [out.data, x.grad, w.grad, b.grad]
    for a, b in zip(results[True], results[False]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_an_op_that_fails_names_itself_and_its_input_shapes():
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"Add of shapes \(2, 3\), \(4,\): operands could not"):
        a + b
    with pytest.raises(ValueError, match=r"MatMul of shapes \(2, 3\), \(4,\)"):
        a @ b
    with pytest.raises(ValueError, match=r"Reshape of shapes \(2, 3\): .*cannot reshape"):
        a.reshape(4, 2)
