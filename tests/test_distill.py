"""Knowledge distillation (tinysparse.distill): the KD loss against PyTorch and finite
differences, the high-temperature limit, the T² factor, teacher–student training (the
teacher's targets computed once, or per jittered batch; its weights untouched; seeds) and
bad input. The loss rows of ``op_cases.py`` run the same checks on fixed inputs."""

import numpy as np
import pytest

import tinysparse as ts
from tinysparse import distill
from tinysparse.autograd import Tensor, gradcheck
from tinysparse.train import UNLABELLED

TEMPERATURES = [0.5, 1.0, 4.0, 20.0]


def logits(seed, n=8, k=10, scale=2.0):
    return scale * np.random.default_rng(seed).standard_normal((n, k))


def gradient(loss, z):
    """∂loss/∂z at z (float64)."""
    z = Tensor(np.array(z, dtype=np.float64), requires_grad=True)
    loss(z).backward()
    return z.grad


def soft_gradient(z_student, z_teacher, temperature):
    return gradient(lambda z: distill.soft_target_loss(
        z, distill.soft_targets(z_teacher, temperature), temperature), z_student)


# ---------------------------------------------------------------- the loss: references
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9, 1.0])
def test_kd_loss_and_gradient_match_torch_kl_div_on_log_softmax(temperature, alpha, torch):
    F = torch.nn.functional
    z_s, z_t = logits(0), logits(1)
    labels = np.random.default_rng(2).integers(0, 10, 8)
    ours_z = Tensor(z_s.copy(), requires_grad=True)
    ours = distill.distillation_loss(ours_z, distill.soft_targets(z_t, temperature), labels,
                                     temperature=temperature, alpha=alpha)
    ours.backward()
    theirs_z = torch.tensor(z_s, requires_grad=True)
    p = torch.softmax(torch.tensor(z_t) / temperature, dim=1)
    soft = F.kl_div(F.log_softmax(theirs_z / temperature, dim=1), p, reduction="batchmean")
    theirs = alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(
        theirs_z, torch.tensor(labels))
    theirs.backward()
    np.testing.assert_allclose(ours.data, theirs.item(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ours_z.grad, theirs_z.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_ensemble_targets_average_the_teachers_probabilities(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 1, 28, 28))
    teachers = [ts.nn.mlp([784, 16, 10], seed=s).double() for s in (1, 2, 3)]
    p = distill.teacher_targets(teachers, x, temperature=3.0)
    expected = np.mean([distill.soft_targets(t(x).data, 3.0) for t in teachers], axis=0)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    z_s = logits(4, n=12)
    ours = distill.soft_target_loss(Tensor(z_s), p, 3.0)
    theirs = 9.0 * F.kl_div(F.log_softmax(torch.tensor(z_s) / 3.0, dim=1), torch.tensor(p),
                            reduction="batchmean")
    np.testing.assert_allclose(ours.data, theirs.item(), rtol=1e-12)
    centred = distill.teacher_targets(teachers, x, objective="logit-matching")
    np.testing.assert_allclose(centred, np.mean([distill.zero_meaned(t(x).data)
                                                 for t in teachers], axis=0), rtol=1e-12)


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("objective", distill.OBJECTIVES)
def test_kd_loss_gradcheck_with_unlabelled_rows(temperature, objective):
    z_t = logits(5, n=6, k=4)
    targets = (distill.soft_targets(z_t, temperature) if objective == "soft-targets"
               else z_t)
    labels = np.array([0, UNLABELLED, 3, 1, UNLABELLED, 2])
    assert gradcheck(lambda z: distill.distillation_loss(
        z, targets, labels, temperature=temperature, alpha=0.7, objective=objective),
        [logits(6, n=6, k=4)])


def test_soft_term_gradient_is_the_temperature_scaled_difference_of_probabilities():
    # ∂(T² KL)/∂z_s = T (q_T − p_T) / N
    z_s, z_t, temperature = logits(7), logits(8), 3.0
    q, p = distill.soft_targets(z_s, temperature), distill.soft_targets(z_t, temperature)
    np.testing.assert_allclose(soft_gradient(z_s, z_t, temperature),
                               temperature * (q - p) / len(z_s), rtol=1e-10, atol=1e-15)


def test_kl_is_zero_when_the_student_matches_and_positive_otherwise():
    z_t = logits(9)
    p = distill.soft_targets(z_t, 2.0)
    assert abs(distill.soft_target_loss(Tensor(z_t + 5.0), p, 2.0).item()) < 1e-12
    assert distill.soft_target_loss(Tensor(logits(10)), p, 2.0).item() > 0.1


# ---------------------------------------------------------------- the high-T limit
def test_soft_gradient_approaches_the_logit_matching_gradient_as_t_grows():
    """Hinton et al., Section 2.1: for T large compared with the logits, T (q − p) →
    (1/K)(z̃_s − z̃_t). Expanding softmax(z̃/T) = (1 + z̃/T + (z̃² − mean z̃²)/(2T²) + ...)/K,
    the first neglected term is (1/(2KT))(d ⊙ σ − mean(d ⊙ σ)) with d = z̃_s − z̃_t,
    σ = z̃_s + z̃_t, |σ| ≤ 2s (s: the largest |z̃|); the centring is a projection, so the
    relative error is at most s/T to first order: it shrinks like 1/T (its absolute size,
    for the unscaled gradient, like 1/T³ beside a gradient of order 1/T²)."""
    z_s, z_t = logits(11, scale=1.0), logits(12, scale=2.0)
    limit = gradient(lambda z: distill.logit_matching_loss(z, z_t), z_s)
    spread = max(np.abs(distill.zero_meaned(z)).max() for z in (z_s, z_t))
    errors = {}
    for temperature in (2, 5, 20, 100):
        g = soft_gradient(z_s, z_t, temperature)
        errors[temperature] = np.linalg.norm(g - limit) / np.linalg.norm(limit)
    values = list(errors.values())
    assert all(later < earlier for earlier, later in zip(values, values[1:])), errors
    assert errors[100] < spread / 100 and errors[100] < 0.02, (errors, spread)
    # of order 1/T: T · error settles (within 25% from T = 20 to T = 100)
    assert 0.8 < (20 * errors[20]) / (100 * errors[100]) < 1.25, errors


def test_logit_matching_ignores_a_constant_added_to_a_row():
    z_s, z_t = logits(13), logits(14)
    shifted = z_t + np.arange(8)[:, None]
    assert distill.logit_matching_loss(Tensor(z_s), z_t).item() == pytest.approx(
        distill.logit_matching_loss(Tensor(z_s), shifted).item(), rel=1e-12)


# ---------------------------------------------------------------- the T² factor
def test_t_squared_keeps_the_soft_gradient_norm_independent_of_t():
    """For logits of small spread s (largest |z̃|), the scaled soft gradient is the
    logit-matching gradient times (1 + ε(T)) with |ε(T)| ≤ s/T to first order (see the
    high-T test), so the ratio of its norms at T = 5 and T = 20 lies within
    (s/5 + s/20) of 1, up to second-order terms (allowed for by a factor 1.5). Without T²
    the gradient is that divided by T²: the ratio is 16 times as large."""
    z_s, z_t = logits(15, scale=0.1), logits(16, scale=0.1)
    spread = max(np.abs(distill.zero_meaned(z)).max() for z in (z_s, z_t))
    tolerance = 1.5 * (spread / 5 + spread / 20)
    assert tolerance < 0.2  # small spread: a test that can fail
    scaled = {T: np.linalg.norm(soft_gradient(z_s, z_t, T)) for T in (5.0, 20.0)}
    unscaled = {T: norm / T**2 for T, norm in scaled.items()}  # the KL term alone
    assert abs(scaled[5.0] / scaled[20.0] - 1) < tolerance, (scaled, tolerance)
    ratio = unscaled[5.0] / unscaled[20.0]
    assert abs(ratio / (20 / 5) ** 2 - 1) < tolerance, ratio
    # and the KL term alone really is what falls like 1/T²
    kl_only = {T: np.linalg.norm(gradient(lambda z, T=T: distill.soft_target_loss(
        z, distill.soft_targets(z_t, T), T) / T**2, z_s)) for T in (5.0, 20.0)}
    assert kl_only[5.0] / kl_only[20.0] == pytest.approx(ratio, rel=1e-9)


# ---------------------------------------------------------------- teacher–student training
class CountingTeacher(ts.nn.Module):
    """A teacher that counts its forward passes and the images it has seen."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0
        self.images = 0

    def forward(self, x):
        self.calls += 1
        self.images += x.shape[0]
        return self.inner(x)


@pytest.fixture(scope="module")
def small_data(mnist5k):
    return mnist5k.x_train[:600], mnist5k.y_train[:600]


@pytest.fixture(scope="module")
def teacher(small_data):
    model = ts.nn.mlp([784, 48, 10], seed=1)
    ts.fit(model, small_data, epochs=2, seed=1, quiet=True)
    return model


def student(seed=0):
    return ts.nn.mlp([784, 16, 10], seed=seed)


def test_a_fixed_transfer_set_is_labelled_by_the_teacher_once(teacher, small_data):
    counting = CountingTeacher(teacher)
    history = distill.distill(student(), counting, small_data, epochs=3, batch_size=50,
                              quiet=True)
    assert counting.images == 600  # the whole transfer set, once, for all three epochs
    assert counting.calls == -(-600 // distill.TEACHER_BATCH)
    assert len(history.epochs) == 3 and history.steps == 36


def test_targets_computed_beforehand_are_used_as_they_are(teacher, small_data):
    targets = distill.teacher_targets(teacher, small_data[0], temperature=2.0)
    counting = CountingTeacher(teacher)
    given, computed = student(), student()
    distill.distill(given, counting, small_data, temperature=2.0, targets=targets, epochs=2,
                    quiet=True)
    assert counting.calls == 0
    distill.distill(computed, teacher, small_data, temperature=2.0, epochs=2, quiet=True)
    for name, values in computed.state_dict().items():
        np.testing.assert_array_equal(given.state_dict()[name], values, err_msg=name)
    with pytest.raises(ValueError, match="targets: expected one row of 10 per transfer"):
        distill.distill(student(), teacher, small_data, targets=targets[:10], quiet=True)
    with pytest.raises(ValueError, match="targets: the teacher labels jittered images"):
        distill.distill(student(), teacher, small_data, targets=targets, jitter=1, quiet=True)


def test_a_jittered_transfer_set_is_labelled_batch_by_batch(teacher, small_data):
    counting = CountingTeacher(teacher)
    history = distill.distill(student(), counting, small_data, epochs=2, batch_size=50,
                              jitter=2, quiet=True)
    assert counting.calls == history.steps == 24  # one pass per jittered batch
    assert counting.images == 2 * 600


def test_the_teacher_never_changes(small_data):
    # a teacher with dropout: it runs in evaluation mode and draws nothing
    teacher = ts.nn.mlp([784, 32, 10], seed=2, dropout=0.5)
    ts.fit(teacher, small_data, epochs=1, seed=2, quiet=True)
    teacher.train()
    for p in teacher.parameters():
        p.grad = None  # its own training's last gradients
    before = {name: values.copy() for name, values in teacher.state_dict().items()}
    generators = [layer.rng.bit_generator.state for layer in ts.nn.dropout_layers(teacher)]
    for jitter in (0, 2):
        distill.distill(student(), teacher, small_data, epochs=2, jitter=jitter, quiet=True)
    for name, values in teacher.state_dict().items():
        np.testing.assert_array_equal(values, before[name], err_msg=name)  # bit for bit
    assert all(p.grad is None for p in teacher.parameters())
    assert teacher.training  # its mode is given back
    assert [layer.rng.bit_generator.state for layer in ts.nn.dropout_layers(teacher)] == \
        generators


@pytest.mark.parametrize("options", [{}, {"jitter": 1, "omit_class": 3}])
def test_the_same_seed_gives_the_same_student(teacher, small_data, options):
    def run(seed):
        model = student(seed=0)
        history = distill.distill(model, teacher, small_data, epochs=2, seed=seed, quiet=True,
                                  **options)
        return model.state_dict(), history.train_loss

    (first, first_loss), (second, second_loss) = run(0), run(0)
    assert first_loss == second_loss
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    other, _ = run(1)
    assert not np.array_equal(other["fc1.weight"], first["fc1.weight"])


def test_distillation_teaches_the_student(teacher, small_data, mnist5k):
    model = student()
    before = ts.evaluate(model, *mnist5k.test)["accuracy"]
    history = distill.distill(model, teacher, small_data, epochs=3, quiet=True)
    assert history.train_loss[-1] < history.train_loss[0]
    assert ts.evaluate(model, *mnist5k.test)["accuracy"] > before + 0.3


def test_omitted_class_and_unlabelled_images_make_the_transfer_set(small_data):
    x, y = small_data
    tx, ty = distill.transfer_set(small_data, omit_class=3, unlabelled=x[:40])
    assert 3 not in ty[ty != UNLABELLED]
    assert len(tx) == np.count_nonzero(y != 3) + 40
    assert np.count_nonzero(ty == UNLABELLED) == 40


def test_the_omitted_class_is_never_seen_and_unlabelled_rows_have_no_accuracy(
        teacher, small_data):
    x, y = small_data
    seen = []

    class Spy(CountingTeacher):
        def forward(self, x):
            seen.append(x.shape[0])
            return super().forward(x)

    labels_seen = []
    original = distill.distillation_loss

    def recording_loss(output, targets, labels=None, **options):
        labels_seen.append(labels.copy())
        return original(output, targets, labels, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distill, "distillation_loss", recording_loss)
        distill.distill(student(), Spy(teacher), small_data, epochs=1, omit_class=3,
                        quiet=True)
    labels = np.concatenate(labels_seen)
    assert 3 not in labels and len(labels) == np.count_nonzero(y != 3)
    assert sum(seen) == np.count_nonzero(y != 3)
    history = distill.distill(student(), teacher, None, unlabelled=x, epochs=1, quiet=True)
    assert history.train_accuracy == [None]  # no label to be right about
    half = distill.distill(student(), teacher, (x[:300], y[:300]), unlabelled=x[300:],
                           epochs=1, quiet=True)
    assert 0 < half.train_accuracy[0] <= 1  # counted over the 300 labelled digits


def test_omitted_class_accuracies_shift_the_bias_and_give_it_back(teacher, mnist5k):
    model = student()
    distill.distill(model, teacher, (mnist5k.x_train[:600], mnist5k.y_train[:600]),
                    epochs=2, omit_class=3, quiet=True)
    bias_before = distill.output_bias(model).data.copy()
    report = distill.omitted_class_accuracies(model, *mnist5k.test, omitted_class=3,
                                              bias_shift=3.5)
    np.testing.assert_array_equal(distill.output_bias(model).data, bias_before)
    assert set(report) == {"omitted_class_accuracy_before_shift",
                           "omitted_class_accuracy_after_shift",
                           "other_classes_accuracy_before_shift",
                           "other_classes_accuracy_after_shift", "bias_shift"}
    assert report["omitted_class_accuracy_after_shift"] >= \
        report["omitted_class_accuracy_before_shift"]
    assert report["other_classes_accuracy_after_shift"] <= \
        report["other_classes_accuracy_before_shift"]
    threes = mnist5k.y_test == 3
    right = model.predict(mnist5k.x_test) == mnist5k.y_test
    assert report["omitted_class_accuracy_before_shift"] == right[threes].mean()
    distill.shift_class_bias(model, 3, 3.5)
    assert distill.output_bias(model).data[3] == np.float32(bias_before[3] + np.float32(3.5))


def test_jitter_shifts_each_image_by_at_most_j_pixels_seeded():
    images = np.zeros((50, 1, 28, 28), dtype=np.float32)
    images[:, 0, 14, 14] = 1.0
    shifted = distill.jitter_images(images, 2, np.random.default_rng(0))
    assert shifted.shape == images.shape and shifted.sum() == 50
    _, _, rows, cols = np.nonzero(shifted)  # one pixel per image, in image order
    assert set(rows - 14) <= {-2, -1, 0, 1, 2} and set(cols - 14) <= {-2, -1, 0, 1, 2}
    assert len(set(zip(rows, cols))) > 10  # many different shifts
    again = distill.jitter_images(images, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(again, shifted)
    flat = distill.jitter_images(images.reshape(50, 784), 2, np.random.default_rng(0))
    np.testing.assert_array_equal(flat.reshape(shifted.shape), shifted)
    # a pixel at the border moves out of the picture rather than wrapping round
    edge = np.zeros((1, 28, 28))
    edge[0, 0, 0] = 1.0
    assert distill.jitter_images(edge, 3, np.random.default_rng(1)).sum() in (0.0, 1.0)



def test_jittered_batches_shift_the_images_keep_the_labels_and_follow_the_seed():
    images = np.random.default_rng(0).random((64, 784)).astype(np.float32)
    labels = np.arange(64) % 10
    index = np.arange(64)
    prepare = distill.jittered_batches(2, seed=5)
    shifted, targets = prepare(images, labels, index)
    assert shifted.shape == images.shape and targets is labels
    assert not np.array_equal(shifted, images)  # 1 in 25 images keeps its place, not all
    again, _ = distill.jittered_batches(2, seed=5)(images, labels, index)
    np.testing.assert_array_equal(again, shifted)
    other, _ = distill.jittered_batches(2, seed=6)(images, labels, index)
    assert not np.array_equal(other, shifted)
    second, _ = prepare(images, labels, index)  # the next batch: new shifts
    assert not np.array_equal(second, shifted)
    with pytest.raises(ValueError, match="jitter: expected a whole number of pixels"):
        distill.jittered_batches(-1)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("options,message", [
    ({"temperature": 0.0}, "temperature: expected a positive number, got 0.0"),
    ({"temperature": -2.0}, "temperature: expected a positive number"),
    ({"temperature": float("inf")}, "temperature: expected a positive number"),
    ({"alpha": 1.5}, r"alpha: expected the soft term's weight, a number in \[0, 1\], got 1.5"),
    ({"alpha": -0.1}, "alpha: expected the soft term's weight"),
    ({"objective": "mse"}, "objective: unknown 'mse'"),
    ({"jitter": -1}, "jitter: expected a whole number of pixels >= 0, got -1"),
    ({"jitter": 1.5}, "jitter: expected a whole number of pixels"),
    ({"omit_class": 10}, "omit_class: expected a class of the student, 0 to 10 - 1, got 10"),
    ({"omit_class": -1}, "omit_class: expected a class of the student"),
    ({"validation_split": 0.1}, "validation_split: prepare_batch"),
])
def test_bad_options_are_refused_before_training(options, message, teacher, small_data):
    counting = CountingTeacher(teacher)
    with pytest.raises(ValueError, match=message):
        distill.distill(student(), counting, small_data, epochs=1, quiet=True, **options)
    assert counting.calls == 0


def test_teacher_and_student_must_score_the_same_classes(small_data):
    five = ts.nn.mlp([784, 8, 5], seed=0)
    with pytest.raises(ValueError, match="teacher: scores 5 classes but the student scores 10"):
        distill.distill(student(), five, small_data, epochs=1, quiet=True)
    with pytest.raises(ValueError, match="teacher 1: scores 5 classes"):
        distill.distill(student(), [ts.nn.mlp([784, 8, 10]), five], small_data, quiet=True)
    model = student()
    with pytest.raises(ValueError, match="teacher: is the student itself"):
        distill.distill(model, model, small_data, quiet=True)


def test_logits_given_as_soft_targets_are_refused():
    with pytest.raises(ValueError, match="pass soft_targets"):
        distill.soft_target_loss(Tensor(logits(0)), logits(1), 2.0)
    with pytest.raises(ValueError, match="expected the student's shape"):
        distill.soft_target_loss(Tensor(logits(0)), np.full((8, 5), 0.2), 2.0)
    with pytest.raises(ValueError, match="labels: expected 8 class indices"):
        distill.distillation_loss(Tensor(logits(0)), distill.soft_targets(logits(1)),
                                  np.zeros(8))
