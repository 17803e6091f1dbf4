"""Structured pruning: the shrunk dense model computes what the masked model computes."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.prune import prune, shrink, structured_prune, unit_counts, unit_norms


@pytest.mark.parametrize("build", [
    lambda: ts.nn.lenet300(seed=0),
    lambda: ts.nn.lenet5(seed=0),
    lambda: ts.nn.mlp([784, 40, 30, 10], activation="sigmoid", seed=0),
], ids=["lenet300", "lenet5", "sigmoid-mlp"])
def test_shrunk_model_equals_masked_model(build, mnist5k):
    model = build()
    ts.fit(model, (mnist5k.x_train[:300], mnist5k.y_train[:300]), epochs=1, quiet=True)
    prune(model, 0.3)  # unstructured masks inside the kept units come along
    before = unit_counts(model)
    structured_prune(model, 0.5, criterion="l2")
    small = shrink(model)
    after = unit_counts(small)
    for name, units in before.items():
        expected = units if name == list(before)[-1] else units - round(0.5 * units)
        assert after[name] == expected
    x = mnist5k.x_test[:64]
    np.testing.assert_allclose(small(x).data, model(x).data, rtol=1e-5, atol=1e-6)
    dense_size = sum(int(np.prod(shape)) for shape in model.state_shapes().values())
    assert small.num_parameters() < dense_size
    assert list(small.named_masks())  # the 30% unstructured masks survive, sliced


def test_units_with_the_smallest_norms_go():
    model = ts.nn.mlp([4, 6, 2], flatten=False, seed=0)
    norms = unit_norms(model, "l1")["fc1"]
    masks = structured_prune(model, 0.5, input_shape=(4,))
    removed = np.flatnonzero(~masks["fc1.weight"].keep.any(axis=1))
    assert set(removed) == set(np.argsort(norms)[:3])
    assert not masks["fc2.weight"].keep[:, removed].any()  # the readers' columns go too
    assert not masks["fc1.bias"].keep[removed].any()


def test_bad_input():
    with pytest.raises(ValueError, match="criterion"):
        unit_norms(ts.nn.lenet300(), "l0")
    with pytest.raises(ValueError, match=r"fraction of fc1"):
        structured_prune(ts.nn.lenet300(), 1.0)
    with pytest.raises(TypeError, match="flat Sequential"):
        structured_prune(ts.nn.Linear(3, 2), 0.5)
