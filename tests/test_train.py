"""fit / evaluate: learning, history, early stopping, divergence, determinism."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse.data import spirals


def test_fit_learns_spirals_and_records_history():
    data = spirals(n_per_class=100, seed=0)
    model = ts.nn.mlp([2, 32, 32, 2], flatten=False, seed=0)
    before = ts.evaluate(model, *data.test)
    history = ts.fit(model, data, epochs=60, batch_size=32, lr=0.01, seed=0, quiet=True,
                     validation=data.test)
    after = ts.evaluate(model, *data.test)
    assert after["accuracy"] > 0.9 > before["accuracy"]
    assert len(history.epochs) == 60 and history.steps == 60 * 5
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.best_step is not None and len(history.evaluations) == 60


def test_same_seed_gives_bit_identical_weights(mnist5k):
    small = (mnist5k.x_train[:512], mnist5k.y_train[:512])
    runs = []
    for _ in range(2):
        model = ts.nn.lenet5(seed=1)
        ts.fit(model, small, epochs=1, batch_size=64, seed=7, quiet=True)
        runs.append(model.state_dict())
    for name in runs[0]:
        assert np.array_equal(runs[0][name], runs[1][name]), name
    other = ts.nn.lenet5(seed=1)
    ts.fit(other, small, epochs=1, batch_size=64, seed=8, quiet=True)
    assert not np.array_equal(other.state_dict()["fc1.weight"], runs[0]["fc1.weight"])


def test_nan_loss_stops_training_with_a_clear_message():
    x = np.ones((8, 2), dtype=np.float32)
    x[3, 0] = np.nan
    model = ts.nn.mlp([2, 3, 2], flatten=False)
    with pytest.raises(ts.TrainingDiverged, match="loss became nan.*learning rate"):
        ts.fit(model, (x, np.zeros(8, dtype=np.int64)), epochs=1, batch_size=8, quiet=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges_clearly():
    data = spirals(n_per_class=50, seed=0)
    model = ts.nn.mlp([2, 16, 2], flatten=False)
    with pytest.raises(ts.TrainingDiverged, match="smaller"):
        ts.fit(model, data, epochs=50, optimizer="sgd", lr=1e12, quiet=True)


def test_early_stopping_restores_the_best_weights():
    data = spirals(n_per_class=60, seed=0, noise=0.6)
    model = ts.nn.mlp([2, 64, 64, 2], flatten=False, seed=0)
    history = ts.fit(model, data, epochs=300, lr=0.02, batch_size=16, validation_split=0.3,
                     patience=5, restore_best=True, seed=0, quiet=True)
    assert history.stopped_early and len(history.epochs) < 300
    (_, _), validation = ts.data.train_validation_split(*data.train, 0.3, seed=0)
    restored = ts.evaluate(model, *validation)
    assert restored["loss"] == pytest.approx(history.best_val_loss, rel=1e-5)


def test_eval_every_and_max_steps():
    data = spirals(n_per_class=50, seed=0)
    model = ts.nn.mlp([2, 8, 2], flatten=False)
    seen = []
    history = ts.fit(model, data, epochs=10, batch_size=10, validation=data.test,
                     eval_every=3, max_steps=20, on_step=seen.append, quiet=True)
    assert history.steps == 20 and seen == list(range(1, 21))
    steps_per_epoch = 8  # 75 training points in batches of 10
    expected = sorted({3, 6, 9, 12, 15, 18, steps_per_epoch, 2 * steps_per_epoch, 20})
    assert [e["step"] for e in history.evaluations] == expected


def test_argument_errors():
    data = spirals(n_per_class=10)
    model = ts.nn.mlp([2, 4, 2], flatten=False)
    with pytest.raises(ValueError, match="validation"):
        ts.fit(model, data, patience=3, quiet=True)
    with pytest.raises(ValueError, match="epochs"):
        ts.fit(model, data, epochs=0, quiet=True)
    with pytest.raises(ValueError, match="loss"):
        ts.fit(model, data, loss="hinge", quiet=True)


def test_mse_regression_on_a_linear_teacher(float64):
    data = ts.load_dataset("teacher", n=400, inputs=5, noise=0.01)
    model = ts.nn.Linear(5, 1)
    ts.fit(model, data, epochs=100, loss="mse", optimizer="sgd", lr=0.05, batch_size=32,
           quiet=True)
    np.testing.assert_allclose(model.weight.data, data.info["teacher_weight"], atol=0.01)
    assert ts.evaluate(model, *data.test, loss="mse")["loss"] < 1e-3


def test_fit_and_evaluate_refuse_what_would_divide_by_zero_or_mean_nothing(mnist5k):
    model = ts.nn.lenet300(seed=0)
    data = (mnist5k.x_train[:64], mnist5k.y_train[:64])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
            ts.fit(model, data, batch_size=bad, quiet=True)
    with pytest.raises(ValueError, match="epochs: expected a positive integer"):
        ts.fit(model, data, epochs=0, quiet=True)
    with pytest.raises(ValueError, match="data: no examples"):
        ts.fit(model, (np.zeros((0, 784)), np.zeros(0, dtype=int)), quiet=True)
    with pytest.raises(ValueError, match="64 inputs but 3 targets"):
        ts.fit(model, (data[0], data[1][:3]), quiet=True)
    images = mnist5k.x_test[:8].copy()
    images[3, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="x: 1 of its 6,272 values are NaN or infinite"):
        model.predict(images)
    with pytest.raises(ValueError, match="x: 1 of its"):
        ts.evaluate(model, images, mnist5k.y_test[:8])
    images[3, 0, 5, 5] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict_proba(images)


def test_a_run_that_ends_worse_than_it_began_says_so(mnist5k):
    model = ts.nn.lenet300(seed=0)
    with pytest.warns(ts.train.TrainingWarning, match="ended worse than it started"):
        history = ts.fit(model, (mnist5k.x_train[:512], mnist5k.y_train[:512]), epochs=2,
                         optimizer="sgd", lr=30.0, quiet=True)
    assert history.train_loss[-1] > history.initial_loss
    assert history.warnings and "learning rate 30.0" in history.warnings[0]
    calm = ts.fit(ts.nn.lenet300(seed=0), (mnist5k.x_train[:512], mnist5k.y_train[:512]),
                  epochs=3, quiet=True)
    assert calm.warnings == []


def test_prepare_batch_gets_each_batchs_rows_and_feeds_model_and_loss(mnist5k):
    x, y = mnist5k.x_train[:100], mnist5k.y_train[:100]
    seen, targets = [], []

    def prepare_batch(xb, yb, index):
        np.testing.assert_array_equal(xb, x[index])
        np.testing.assert_array_equal(yb, y[index])
        seen.append(index)
        return xb * 0.5, yb[::-1].copy()

    def loss(output, target):
        targets.append(target)
        return ts.autograd.cross_entropy(output, target)

    model = ts.nn.mlp([784, 8, 10], seed=0)
    history = ts.fit(model, (x, y), epochs=2, batch_size=32, loss=loss, seed=3, quiet=True,
                     prepare_batch=prepare_batch)
    assert len(seen) == history.steps == 8
    np.testing.assert_array_equal(np.sort(np.concatenate(seen[:4])), np.arange(100))
    np.testing.assert_array_equal(targets[0], y[seen[0]][::-1])
    # the same batch order as without the hook
    plain = ts.nn.mlp([784, 8, 10], seed=0)
    order = []
    ts.fit(plain, (x, y), epochs=2, batch_size=32, seed=3, quiet=True,
           prepare_batch=lambda xb, yb, index: (order.append(index), (xb, yb))[1])
    assert all(np.array_equal(a, b) for a, b in zip(order, seen))
    with pytest.raises(ValueError, match="validation_split: prepare_batch"):
        ts.fit(plain, (x, y), validation_split=0.2, prepare_batch=prepare_batch, quiet=True)


def test_unlabelled_rows_do_not_count_in_the_training_accuracy(mnist5k):
    x, y = mnist5k.x_train[:64], mnist5k.y_train[:64].copy()
    y[::2] = ts.train.UNLABELLED
    labelled = y != ts.train.UNLABELLED

    def loss(output, target):
        rows = np.flatnonzero(target != ts.train.UNLABELLED)
        return ts.autograd.cross_entropy(output[rows], target[rows])

    model = ts.nn.mlp([784, 8, 10], seed=0)
    predictions = model.predict(x)
    history = ts.fit(model, (x, y), epochs=1, batch_size=64, lr=1e-9, loss=loss, quiet=True)
    assert history.train_accuracy[0] == pytest.approx(
        np.mean(predictions[labelled] == y[labelled]), abs=1e-9)
