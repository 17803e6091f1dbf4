# %% [markdown]
# # Lesson 02 — Magnitude pruning: train, prune, retrain (Han et al. 2015)
#
# Han, Pool, Tran and Dally ("Learning both weights and connections for efficient neural
# networks", NIPS 2015) shrank **LeNet-300-100 from 267K to 22K parameters** (12×) without
# losing accuracy.
# Their recipe has three steps:
#
# 1. **train** the network as usual;
# 2. **prune**: delete the connections whose weights are small in magnitude;
# 3. **retrain** the survivors, and repeat steps 2–3 a few times.
#
# In this notebook you will
#
# 1. train a dense LeNet-300-100 on `mnist-5k`;
# 2. see what a **mask** is and how tinysparse makes sure a pruned weight stays pruned — in
#    the forward pass, the gradient and the optimiser;
# 3. turn weight magnitudes into masks, **layer by layer** or with one **global** threshold;
# 4. watch accuracy collapse when you prune without retraining, and compare with **random**
#    pruning;
# 5. prune and retrain with three schedules — **one-shot**, **iterative** (Han et al.) and
#    **gradual** (Zhu & Gupta's cubic schedule) — at 90% and 95% sparsity;
# 6. run a **sensitivity analysis** to choose a pruning rate per layer;
# 7. put our numbers beside Han et al.'s table, and reproduce their per-layer rates;
# 8. look at what pruning does to the weights and to the pixels the first layer sees;
# 9. ask whether a large sparse network beats a small dense one with as many weights;
# 10. do three exercises that check themselves, and a design task with a target.
#
# You need lesson 01 (training) and NumPy. With the defaults the notebook runs the full
# experiment in one to a few minutes on a laptop (it prints the seconds as it goes);
# `TINYSPARSE_FAST=1` (what the tests use) trains for a few epochs only and takes under a
# minute — the accuracies are then lower.
#
# **Papers.** [Han et al.
# 2015](REFERENCES.md#learning-both-weights-and-connections--han-et-al-2015), [Janowsky
# 1989](REFERENCES.md#pruning-versus-clipping--janowsky-1989), [Zhu & Gupta
# 2017](REFERENCES.md#to-prune-or-not-to-prune--zhu--gupta-2017), [Gale, Elsen & Hooker
# 2019](REFERENCES.md#the-state-of-sparsity--gale-elsen--hooker-2019), [Glorot & Bengio
# 2010](REFERENCES.md#glorot-initialisation--glorot--bengio-2010), [LeCun, Denker & Solla
# 1990](REFERENCES.md#optimal-brain-damage--lecun-denker--solla-1990). Each link goes to
# the lesson's references page, which says what the paper contributes and how far each
# number quoted here was checked against it.

# %%
import inspect
import math
import os
import time

import tinysparse as ts  # first: it tells the BLAS threads how to wait, before NumPy loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np

import tinysparse.exercises  # the exercises' checks
import tinysparse.plot  # the figures: not loaded by `import tinysparse` (they need matplotlib)
from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
SEED = 0                                    # every random choice below is seeded with it
DENSE_EPOCHS = 3 if FAST else 20            # Adam, learning rate 1e-3, batch 64
RETRAIN = {"rounds": 2, "retrain_epochs": 1} if FAST else {"rounds": 5, "retrain_epochs": 5}
RETRAIN_LR = 1e-3 / 3                       # retrain at a third of the training rate
TARGETS = (0.9, 0.95)                       # final sparsities of the prune -> retrain runs
SCHEDULES = ("oneshot", "iterative", "gradual")
NO_RETRAIN_SPARSITIES = ((0.5, 0.7, 0.8, 0.9, 0.95) if FAST
                         else (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95))
print(f"{'fast' if FAST else 'full'} mode: {DENSE_EPOCHS} dense epochs, retraining {RETRAIN}")

# %% [markdown]
# ## 1. A dense network to prune
#
# We train LeNet-300-100 exactly as in lesson 01: Glorot-normal initial weights from
# `seed=0`, 20 epochs of Adam ($\eta = 10^{-3}$, batches of 64) on the 4,000 training digits
# of `mnist-5k`. Pruning works **in place**, so we keep an untouched copy,
# `dense = ts.prune.clone(model)`; every experiment below starts from its own clone of it.

# %%
data = ts.load_dataset("mnist-5k")
model = ts.nn.lenet300(seed=SEED)

started = time.perf_counter()
ts.fit(model, data, epochs=DENSE_EPOCHS, seed=SEED, quiet=True)
dense = ts.prune.clone(model)  # weights, masks and all: an independent copy
dense_accuracy = ts.evaluate(dense, *data.test)["accuracy"]
print(f"LeNet-300-100: {dense.num_parameters():,} parameters, trained {DENSE_EPOCHS} epochs in "
      f"{time.perf_counter() - started:.0f} s; test accuracy {dense_accuracy:.4f}")
assert dense_accuracy > (0.85 if FAST else 0.94)

# %% [markdown]
# ## 2. Masks: how a pruned weight stays pruned
#
# Pruning a weight matrix $W \in \mathbb{R}^{n_\text{out} \times n_\text{in}}$ means choosing
# a **mask** $M \in \{0, 1\}^{n_\text{out} \times n_\text{in}}$ — 1 keeps a weight, 0 removes
# it — and from then on computing the layer with $W \odot M$ instead of $W$:
#
# $$
# y = x\,(W \odot M)^\top + b .
# $$
#
# Two numbers describe a mask, and tinysparse uses them everywhere: the **sparsity**
# $s = 1 - \frac{1}{n}\sum_{ij} M_{ij}$, the fraction of weights removed, and the
# **density** $d = 1 - s$, the fraction kept. (Papers also speak of a *compression ratio*,
# $1/d$: 90% sparsity is $10\times$ compression.)
#
# In tinysparse a mask is an explicit, read-only object, `ts.sparse.Mask`:

# %%
toy = ts.sparse.Mask([[1, 0, 0, 1],
                      [0, 0, 1, 0]])
print(toy)
print("keep =\n", toy.keep)
print(f"sparsity {toy.sparsity:.3f}   density {toy.density:.3f}   "
      f"kept {toy.kept}   pruned {toy.pruned}")
try:
    ts.sparse.Mask([[1, 0.5]])
except ValueError as error:
    print("and it refuses anything but 0 and 1:", error)

# %% [markdown]
# `ts.prune.prune(model, 0.9)` scores every weight matrix by magnitude, removes the 90% of
# each one with the smallest $|w|$, and **attaches** the masks to the layers that own the
# weights (biases are not pruned: there are only 410 of them). The model is changed in
# place — this is why we kept `dense`.
#
# One more thing happens at the end of every pruning step: a layer whose mask keeps at
# most `ts.sparse.density_threshold()` of its weights (20%, the measured break-even of
# lesson 09) is **replaced** by its twin on sparse kernels, `ts.nn.SparseLinear`, which
# stores only the weights its mask keeps. `print(model)` shows it.

# %%
masks = ts.prune.prune(model, 0.9)  # layer-wise, by magnitude: 90% of every weight matrix
print(model)
weights = model.state_dict()  # the weights as dense arrays, whichever kernels a layer runs
for name, mask in model.named_masks():
    print(f"{name:10s} {mask}   zeros in the weight: {np.mean(weights[name] == 0):.4f}")
print("the copy `dense` has", len(list(dense.named_masks())), "masks")

# %% [markdown]
# ### The mask acts in the forward pass …
#
# A pruned layer never multiplies by a pruned weight. There are two kinds of pruned layer,
# and the pruning step picks one (the `path` of the sparsity report below):
#
# * **masked-dense**: a `Linear` with a mask. Its forward pass computes $W \odot M$ with
#   `self.masked("weight")` **as an op of the graph**, then the ordinary dense product
#   follows. This is the readable reference, and the faster one at low sparsity;
# * **sparse**: a `SparseLinear`. Its only weight parameter, `values`, holds the kept
#   weights one after another (we count them below), beside a
#   `structure` that says where each one sits; `sparse_linear` multiplies with those only
#   (lesson 09 looks inside the kernels). A pruned weight is not stored at all.
#
# Both give the same results — the test suite holds them equal.

# %%
print(inspect.getsource(ts.nn.Linear.forward))
print(inspect.getsource(ts.nn.Module.masked))
print(inspect.getsource(ts.nn.SparseLinear.forward))
print("fc1 keeps", model.fc1.values.shape[0], "weights of", model.fc1.mask.size,
      "— its parameters:", [name for name, _ in model.fc1.named_parameters()])

# %% [markdown]
# Because $W_\text{eff} = W \odot M$ is part of the graph, backpropagation goes through the
# product (lesson 00, `Mul`), and the gradient that reaches $W$ is
#
# $$
# \frac{\partial L}{\partial W_{ij}} = \frac{\partial L}{\partial (W_\text{eff})_{ij}}\;M_{ij},
# $$
#
# **exactly zero** for every pruned weight, whatever the data. The sparse layer computes
# the gradient of its kept weights only — the same formula at the positions where
# $M_{ij} = 1$. Let us check both on a batch: `ts.nn.to_dense` gives a copy of the model
# with every pruned layer back on the masked-dense path.

# %%
images, labels = data.x_train[:64], data.y_train[:64]
masked_dense = ts.nn.to_dense(ts.nn.clone(model))
print("kinds:", {name: type(layer).__name__ for name, layer in model.named_modules()
                 if name.startswith("fc")}, "and, after to_dense:",
      {name: type(layer).__name__ for name, layer in masked_dense.named_modules()
       if name.startswith("fc")})
for net in (model, masked_dense):
    net.zero_grad()
    ts.autograd.cross_entropy(net(images), labels).backward()

for name, mask in model.named_masks():
    layer_name = name.rpartition(".")[0]
    sparse_layer, dense_layer = model.get_submodule(layer_name), masked_dense.get_submodule(layer_name)
    grad, kept_grad = dense_layer.weight.grad, sparse_layer.values.grad
    reference = sparse_layer.structure.gather(grad)  # the dense gradient at the kept places
    print(f"{name:10s} masked-dense: largest |gradient| of a pruned weight "
          f"{np.abs(grad[~mask.keep]).max():.1e}, of a kept one {np.abs(grad[mask.keep]).max():.1e};"
          f"  sparse: {kept_grad.size:,} gradients, largest difference {np.abs(kept_grad - reference).max():.1e}")
    assert np.all(grad[~mask.keep] == 0) and kept_grad.shape == (mask.kept,)
    assert np.allclose(kept_grad, reference, rtol=1e-4, atol=1e-7)

# %% [markdown]
# ### … and in the optimiser
#
# A zero gradient is not quite enough. Adam's first moment $m$, SGD's momentum and weight
# decay can all move a weight whose gradient is zero — for instance when the optimiser had
# been running before the prune. So `Optimizer.step` takes care of it. Every parameter gets
# the same update rule (one function per optimiser, `ts.kernels.adam_update`, over flat
# arrays); then a masked-dense parameter has its weight and its **state buffers**
# (momentum, Adam's moments) multiplied by the mask. A sparse layer needs nothing more: its
# `values` are all kept weights, and a pruned weight has no entry to move.
#
# One consequence: pruning *replaces* layers (and so their parameters) when it moves them
# to the sparse kernels, so build the optimiser after pruning — `ts.fit` does. An
# optimiser built before refuses to take a step rather than silently train weights that
# are no longer in the model.

# %%
print(inspect.getsource(ts.optim.Optimizer.step))
print(inspect.getsource(ts.kernels.optimizers.adam_update))


# %% [markdown]
# To see why this matters, compare two ways of "pruning" the same 90% of the weights of two
# copies of the dense network, both with an Adam optimiser that has already taken a step (so
# its moments are not zero):
#
# * **zeroing**: set the weights to 0 and attach no mask;
# * **masking**: attach the masks to the layers themselves (`set_mask`, which also zeroes
#   the weights), keeping them on the masked-dense path so that the optimiser we already
#   built still updates them.
#
# Then train both for ten more steps and count the pruned weights that are no longer zero.

# %%
def take_steps(net, optimizer, steps, first_batch=0):
    for batch in range(first_batch, first_batch + steps):
        xb = data.x_train[64 * batch : 64 * (batch + 1)]
        yb = data.y_train[64 * batch : 64 * (batch + 1)]
        optimizer.zero_grad()
        ts.autograd.cross_entropy(net(xb), yb).backward()
        optimizer.step()


for how in ("zeroing", "masking"):
    net = ts.nn.clone(dense)
    optimizer = ts.optim.Adam(net.parameters(), lr=1e-3)
    take_steps(net, optimizer, 1)  # the optimiser now has non-zero moments
    for name, mask in masks.items():
        layer_name, _, parameter = name.rpartition(".")
        if how == "zeroing":
            net.get_parameter(name).data[~mask.keep] = 0
        else:
            net.get_submodule(layer_name).set_mask(parameter, mask)
    take_steps(net, optimizer, 10, first_batch=1)
    regrown = sum(np.count_nonzero(net.get_parameter(n).data[~m.keep]) for n, m in masks.items())
    total = sum(m.pruned for m in masks.values())
    print(f"{how}: {regrown:,} of the {total:,} pruned weights are non-zero after 10 steps")
    if how == "masking":
        assert regrown == 0

# %% [markdown]
# Zeroing is not pruning: the zeroed weights grow straight back. With masks they stay at
# exactly zero — through momentum, weight decay, saving and loading (`ts.save` stores the
# masks), and retraining.
#
# ### Counting what was removed
#
# `ts.metrics.sparsity_report` counts, for every weight matrix, the weights, the non-zeros,
# the sparsity, the compression $n / \text{nonzero}$, and the **multiply–adds** (MACs) per
# example: a `Linear` layer does one multiply–add per weight and example, so a pruned
# weight saves one — *if* the kernel skips it.

# %%
report = ts.metrics.sparsity_report(model)
print(report)
print("\nreport.total =", report.total)


# %% [markdown]
# The `path` column says which kernel each layer runs: `sparse` here, because each mask
# keeps 10% of its weights, below the switch point `ts.sparse.density_threshold()`. At lower
# sparsity a pruned layer stays `masked-dense`: a BLAS product with $W \odot M$ that
# multiplies the zeros too — a smaller model on paper, not a faster one. `sparse_macs` counts
# what a kernel that skips the zeros does; whether that makes it *faster* is a question for
# a clock, not a count. Time a forward pass over the 1,000 test images:

# %%
def forward_milliseconds(net, repeats=5 if FAST else 20):
    # median wall-clock time of one forward pass over the 1,000 test images
    times = []
    with ts.no_grad():
        net(data.x_test)  # warm-up: the first call also builds the sparse index structures
        for _ in range(repeats):
            started = time.perf_counter()
            net(data.x_test)
            times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


timings = [["dense LeNet-300-100", 266_200, forward_milliseconds(dense)],
           ["pruned 90%, sparse path", report.total["sparse_macs"], forward_milliseconds(model)],
           ["pruned 90%, masked-dense path", report.total["dense_macs"],
            forward_milliseconds(masked_dense)]]
print(format_table(timings, headers=["network", "multiply-adds per image",
                                     "ms per 1,000 images"], precision=1))
print(f"(pruning moves a layer to the sparse path from density "
      f"{ts.sparse.density_threshold():.0%} down; wall-clock times vary from run to run)")

# %% [markdown]
# Read your own numbers, but expect this pattern: the masked-dense path takes about as long
# as the dense network — it does the same multiplications — and the sparse path, where it
# wins at all, wins by far less than the tenfold cut in multiply–adds: a sparse kernel
# spends time on indices and irregular memory access that a dense BLAS product does not.
# Lesson 09 measures where the break-even lies.
#
# ## 3. Which weights? Scores, then one shared selection step
#
# Every pruning method in tinysparse is split in two:
#
# 1. a **score** per weight, higher = more important. For magnitude pruning the score is
#    simply $|w|$ (Han et al. 2015; the idea goes back to Janowsky 1989). Later lessons
#    plug in other scores (Optimal Brain Damage's saliency $\tfrac12 h_{kk} w_k^2$ in
#    lesson 03) and reuse everything else;
# 2. a shared **selection** step that turns scores into masks.

# %%
names = ts.prune.prunable_parameters(dense)  # the weight matrices, not the biases
scores = ts.prune.magnitude_scores(dense, names)
print(names)
print(inspect.getsource(ts.prune.magnitude_scores))

# %% [markdown]
# Selection comes in two **scopes**. With $n_\ell$ weights in layer $\ell$ and
# $N = \sum_\ell n_\ell$ in all:
#
# * **layer-wise** (`scope="layer"`): each layer loses its own $k_\ell = \operatorname{round}(s\,
#   n_\ell)$ lowest-scoring weights, so every layer ends at sparsity $s$ (or at its own
#   $s_\ell$ if you pass one per layer);
# * **global** (`scope="global"`): the $k = \operatorname{round}(s N)$ lowest scores *of the
#   whole network* go. That is the same as one threshold $\tau$ for all layers,
#
# $$
# M_{ij} = \big[\,|w_{ij}| > \tau\,\big], \qquad \tau = \text{the $k$-th smallest } |w| \text{ over all layers},
# $$
#
# and each layer ends at whatever sparsity the threshold gives it.
#
# Both drop exactly $k$ weights (ties are broken by position), and weights that an earlier
# mask already removed count as removed and stay removed. Here is the global version and the
# helper that picks the $k$ lowest scores:

# %%
print(inspect.getsource(ts.prune.selection.lowest))
print(inspect.getsource(ts.prune.global_masks))

# %%
by_scope = {scope: ts.prune.select_masks(scores, 0.9, scope=scope) for scope in ts.prune.SCOPES}

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, (scope, selected) in zip(axes, by_scope.items()):
    overall = sum(m.pruned for m in selected.values()) / sum(m.size for m in selected.values())
    ts.plot.layer_sparsity_bars({n: m.sparsity for n, m in selected.items()}, ax=ax,
                                title=f'scope="{scope}": {overall:.0%} of all weights pruned')
plt.show()

# %% [markdown]
# Both masks remove 90% of the network's weights, but very differently. Why does the global
# threshold cut so deep into `fc1` and spare `fc3`? Look at the **scale** of each layer's
# weights. Glorot initialisation draws them with standard deviation
# $\sqrt{2/(n_\text{in} + n_\text{out})}$: $0.043$ for `fc1` (784 → 300), $0.071$ for `fc2`,
# $0.135$ for `fc3` (100 → 10), and training does not change the scales much. One threshold
# for all layers therefore falls in the bulk of `fc1` and in the tail of `fc3`.
#
# Han et al. set a threshold per layer as a **quality parameter** $q$ times the layer's
# standard deviation, $\tau_\ell = q\,\sigma_\ell$. `ts.prune.threshold(scores, masks)`
# returns the largest pruned score — the threshold a mask corresponds to — so we can read
# off the $q$ that each choice amounts to:

# %%
global_threshold = ts.prune.threshold(scores, by_scope["global"])
rows = []
for name in names:
    sigma = float(dense.get_parameter(name).data.std())
    layer_threshold = ts.prune.threshold({name: scores[name]}, {name: by_scope["layer"][name]})
    rows.append([name, scores[name].size, sigma, layer_threshold, layer_threshold / sigma,
                 global_threshold / sigma, by_scope["global"][name].sparsity])
print(format_table(rows, headers=["weight", "n", "std σ", "τ layer-wise 90%", "q = τ/σ",
                                  "q of the global τ", "sparsity, global"]))
print(f"\nglobal threshold τ = {global_threshold:.4f} for all layers")
print("for a normal distribution, 90% of |w| lie below 1.645 σ")

# %% [markdown]
# Layer-wise pruning at 90% amounts to almost the same quality $q \approx 1.6$ in every
# layer, close to the value $1.645$ of a normal distribution: measured in units of its own
# $\sigma$, each trained layer is still roughly bell-shaped, so Han et al.'s "$q$ times
# $\sigma$" and "the same fraction of every layer" are nearly the same rule. The one global
# $\tau$ is instead a large $q$ for `fc1` and a small one for `fc3`.
#
# ## 4. Prune without retraining: accuracy collapses
#
# Now prune clones of the dense network to increasing sparsity and measure the test
# accuracy straight away, with no retraining. Three ways:
#
# * magnitude, layer-wise;
# * magnitude, global;
# * **random** (`method="random"`: uniformly random scores, layer-wise) — the baseline any
#   criterion must beat.

# %%
ways = {"magnitude, layer-wise": ("magnitude", "layer"),
        "magnitude, global": ("magnitude", "global"),
        "random, layer-wise": ("random", "layer")}
no_retrain = {label: [] for label in ways}
for sparsity in NO_RETRAIN_SPARSITIES:
    for label, (method, scope) in ways.items():
        trial = ts.prune.clone(dense)
        ts.prune.prune(trial, sparsity, method=method, scope=scope, seed=SEED)
        no_retrain[label].append((sparsity, ts.evaluate(trial, *data.test)["accuracy"]))

ts.plot.accuracy_vs_sparsity(no_retrain, reference=dense_accuracy,
                             title="One-shot pruning, no retraining")
plt.show()
print(format_table([[label, *(a for _, a in points)] for label, points in no_retrain.items()],
                   headers=["pruned by", *(f"{s:.0%}" for s in NO_RETRAIN_SPARSITIES)]))

# %%
at = {label: dict(points) for label, points in no_retrain.items()}
assert at["magnitude, global"][0.9] > at["random, layer-wise"][0.9] + 0.3
assert at["magnitude, global"][0.95] > at["magnitude, layer-wise"][0.95]
assert at["magnitude, global"][0.95] < dense_accuracy - 0.05  # no retraining: it hurts

# %% [markdown]
# Three lessons in one figure:
#
# * **Magnitude beats random by a mile.** Removing random weights costs accuracy from the
#   start; at 90% the random network guesses. Small weights really are the unimportant ones.
# * **Global beats layer-wise** at high sparsity, because layer-wise pruning removes 90% of
#   the small, important output layer `fc3` (1,000 weights) as readily as 90% of the huge,
#   redundant `fc1` (235,200).
# * Without retraining, even the best one-shot prune **loses accuracy fast** beyond 90% —
#   more than ten points at 95% in the full run — and layer-wise pruning falls towards
#   chance. Han et al. saw the same on AlexNet: without retraining, accuracy starts to
#   drop once about two thirds of the weights are gone, against about nine tenths with
#   retraining. The network needs a chance to adapt to its missing
#   connections.
#
# ## 5. Prune, then retrain
#
# Retraining the surviving weights — with the masks in place, at a reduced learning rate,
# starting from the trained values (no re-initialisation) — lets the network route around
# its missing connections. Han et al. retrain at a tenth of the original learning rate; with
# Adam we use a third. *When* to prune is the **schedule**:
#
# * **one-shot**: prune to the final sparsity $s$ at once, then retrain $E$ epochs;
# * **iterative** (Han et al.): $R$ rounds of *prune a bit, retrain $E$ epochs*. Round $r$
#   prunes to
#
# $$
# s_r = 1 - (1 - s)^{r/R}, \qquad r = 1, \dots, R,
# $$
#
#   so every round removes the same fraction of the weights that are still there. It costs
#   $R$ times as much retraining as one-shot;
# * **gradual** (Zhu & Gupta 2017): prune every $\Delta t$ optimiser steps *while* training,
#   following a cubic
#
# $$
# s_t = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{n\,\Delta t}\right)^3,
# \qquad t_0 \le t \le t_0 + n\Delta t,
# $$
#
#   from $s_i = 0$ to $s_f = s$: fast at first, while there are many redundant weights, then
#   ever more slowly, so that the network can recover. tinysparse prunes every
#   $\Delta t = 10$ steps during the first three quarters of $E$ epochs and trains on at
#   the final sparsity for the last quarter.

# %%
print(inspect.getsource(ts.prune.cubic_sparsity))
print("iterative targets for 90% in 5 rounds:",
      np.round(ts.prune.iterative_targets(0.9, 5), 4))

# %% [markdown]
# `ts.prune.prune_and_retrain` runs a schedule on a trained model (in place) and returns a
# `PruneRun` with the test accuracy of the dense model (`dense_test_accuracy`), right after
# the (last) prune (`pruned_test_accuracy`) and after retraining (`test_accuracy`), the
# sparsity of each layer (`layers`) and a record per round (`rounds`). All runs use global
# magnitude pruning.

# %%
runs, pruned_models = {}, {}
for sparsity in TARGETS:
    for schedule in SCHEDULES:
        pruned = ts.prune.clone(dense)
        started = time.perf_counter()
        runs[schedule, sparsity] = ts.prune.prune_and_retrain(
            pruned, data, sparsity, schedule=schedule, scope="global", retrain_lr=RETRAIN_LR,
            seed=SEED, dense_test_accuracy=dense_accuracy, **RETRAIN)
        runs[schedule, sparsity].extra["seconds"] = time.perf_counter() - started
        pruned_models[schedule, sparsity] = pruned
        print(f"{schedule:9s} {sparsity:.0%}: {runs[schedule, sparsity].extra['seconds']:4.0f} s")

# %%
E, R = RETRAIN["retrain_epochs"], RETRAIN["rounds"]
retrain_epochs = {"oneshot": E, "iterative": R * E, "gradual": E}
rows = [[schedule, run.sparsity, retrain_epochs[schedule], run.dense_test_accuracy,
         run.pruned_test_accuracy, run.test_accuracy]
        for (schedule, sparsity), run in runs.items()]
print(format_table(rows, headers=["schedule", "sparsity", "retraining epochs", "dense",
                                  "right after pruning", "after retraining"]))

print("\nweights kept per layer (1 - sparsity)")
print(format_table([[f"{schedule} {sparsity:.0%}", *(1 - s for s in run.layers.values())]
                    for (schedule, sparsity), run in runs.items()],
                   headers=["run", *names], precision=3))

# %%
for (schedule, sparsity), run in runs.items():
    assert abs(run.sparsity - sparsity) < 1e-5, (schedule, sparsity, run.sparsity)
    assert run.test_accuracy > (0.8 if FAST else dense_accuracy - 0.03), (schedule, sparsity)
if not FAST:  # retraining recovers most of what the prune cost
    assert runs["oneshot", 0.95].test_accuracy > runs["oneshot", 0.95].pruned_test_accuracy + 0.05

# %% [markdown]
# What each schedule did to the sparsity over its retraining — the lines are the planned
# schedules, the dots the sparsity measured after each prune (the gradual schedule's dots
# follow the cubic, one every $\Delta t = 10$ steps):

# %%
steps_per_epoch = math.ceil(len(data.x_train) / 64)
fig, axes = plt.subplots(1, len(TARGETS), figsize=(12, 4), sharey=True)
for ax, sparsity in zip(np.atleast_1d(axes), TARGETS):
    # planned: iterative prunes at the start of each round; gradual over 3/4 of its epochs
    ax.plot([0, E], [sparsity, sparsity], color="C0", label="one-shot")
    targets = ts.prune.iterative_targets(sparsity, R)
    ax.step([r * E for r in range(R)] + [R * E], [*targets, targets[-1]], where="post",
            color="C1", label=f"iterative, {R} rounds")
    t = np.linspace(0, E, 400)
    ax.plot(t, [ts.prune.cubic_sparsity(x, sparsity, end=0.75 * E) for x in t], color="C2",
            label="gradual (cubic)")
    # measured
    ax.plot([0], [runs["oneshot", sparsity].sparsity], "o", color="C0")
    ax.plot([(r["round"] - 1) * E for r in runs["iterative", sparsity].rounds],
            [r["sparsity"] for r in runs["iterative", sparsity].rounds], "o", color="C1")
    gradual = runs["gradual", sparsity].rounds
    ax.plot([r["step"] / steps_per_epoch for r in gradual], [r["sparsity"] for r in gradual],
            ".", color="C2")
    ax.set(xlabel="retraining epoch", ylabel="sparsity", title=f"final sparsity {sparsity:.0%}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# And the iterative schedule round by round at the highest sparsity: each prune costs
# accuracy, each retraining wins it back.

# %%
print(format_table(runs["iterative", TARGETS[-1]].rounds,
                   headers=["round", "target_sparsity", "sparsity", "pruned_test_accuracy",
                            "test_accuracy"]))

# %% [markdown]
# How to read the results:
#
# * **Retraining does the heavy lifting.** Compare "right after pruning" with "after
#   retraining": a few epochs at a reduced learning rate recover most of what the prune cost.
#   (For the gradual schedule "right after pruning" means right after its *last* prune, which
#   happens during training, so it is not a no-retraining number.)
# * In the full run all three schedules end within about one point of the dense network at
#   90% and two points at 95%. With 1,000 test digits the standard error of an accuracy near 0.94 is
#   $\sqrt{0.94 \cdot 0.06 / 1000} \approx 0.75$ points, so **differences of a point between
#   schedules are within the noise** of one seed.
# * The iterative schedule also retrains $R = 5$ times longer than the other two — a fair
#   comparison would give every schedule the same number of epochs (try it: set
#   `retrain_epochs=25` for one-shot).
# * `fc1` keeps the fewest of its weights in every run: the global threshold decides.
#
# ## 6. Sensitivity analysis: how much can each layer lose?
#
# Han et al. chose each layer's pruning rate from a **sensitivity analysis**: prune *one*
# layer at a time to increasing sparsity, leave the others dense, and measure the accuracy
# without retraining. `ts.prune.sensitivity` does exactly that (on clones; the model is not
# touched).
#
# We use the test split here, as the calls below show, which makes the chosen rates a
# (mild) fit to the test set; in a real study you would hold out part of the training
# data for it.

# %%
SENSITIVITY_SPARSITIES = ((0.0, 0.5, 0.8, 0.9, 0.95, 0.99) if FAST
                          else (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99))
records = ts.prune.sensitivity(dense, *data.test, sparsities=SENSITIVITY_SPARSITIES)
print(ts.prune.sensitivity_table(records))
ts.plot.sensitivity_curves(records, reference=dense_accuracy)
plt.show()

# %% [markdown]
# `fc1` holds up to very high sparsity, `fc3` breaks first. A simple rule turns the curves
# into rates: give each layer the **largest sparsity at which, pruned alone, it loses at
# most 2 points** of accuracy.

# %%
TOLERANCE = 0.02
chosen = {name: max(r["sparsity"] for r in records
                    if r["parameter"] == name and r["accuracy"] >= dense_accuracy - TOLERANCE)
          for name in names}
print("largest sparsity within 2 points, per layer:", chosen)


# %% [markdown]
# Now use the most fragile layer's rate as an **override**. `overrides={"fc3.weight": s}`
# prunes that parameter to its own sparsity whatever the scope, while the rest follow the
# common target. Layer-wise 90% hurt in section 4 mostly because of `fc3`:

# %%
def one_shot_accuracy(sparsity, **options):
    trial = ts.prune.clone(dense)
    ts.prune.prune(trial, sparsity, **options)
    layers = {n: f"{s:.0%}" for n, s in ts.prune.layer_sparsities(trial).items()}
    return ts.evaluate(trial, *data.test)["accuracy"], layers


uniform, uniform_layers = one_shot_accuracy(0.9, scope="layer")
override = {"fc3.weight": chosen["fc3.weight"]}
protected, protected_layers = one_shot_accuracy(0.9, scope="layer", overrides=override)
print(f"layer-wise 90% everywhere:         accuracy {uniform:.4f}   {uniform_layers}")
print(f"layer-wise 90%, overrides={override}: accuracy {protected:.4f}   {protected_layers}")
assert protected >= uniform

# %% [markdown]
# Protecting one small layer — 1,000 of 266,200 weights — buys back much of the accuracy
# that uniform pruning lost. That is the whole point of per-layer rates.
#
# ## 7. Beside Han et al.
#
# Han et al. (2015) report for LeNet-300-100 on the full MNIST (60,000 training images): a
# test error of **1.64%** for the reference network and **1.59%** after pruning and
# retraining, with **267K → 22K parameters (12×)**, keeping **8% of fc1, 9% of fc2 and 26%
# of fc3**. Their rates were chosen per layer, so first reproduce *their* rates: sparsities
# fc1 92%, fc2 91%, fc3 74%.
#
# `select_masks` accepts one sparsity per layer as a dict (layer scope):

# %%
HAN_RATES = {"fc1.weight": 0.92, "fc2.weight": 0.91, "fc3.weight": 0.74}  # 1 - kept
han_masks = ts.prune.select_masks(scores, HAN_RATES, scope="layer")
for name, mask in han_masks.items():
    print(f"{name}: keeps {mask.kept:6,} of {mask.size:7,} = {mask.density:.0%}")
kept = sum(m.kept for m in han_masks.values())
print(f"total: {kept:,} of {sum(m.size for m in han_masks.values()):,} weights, "
      f"+ 410 biases = {kept + 410:,} parameters")

# %% [markdown]
# `prune_and_retrain` takes one number for `sparsity` (here fc1's rate) and the other layers'
# rates as `overrides`. We use Han et al.'s iterative schedule; with `overrides` each layer
# follows the schedule towards its own final rate.

# %%
han_model = ts.prune.clone(dense)
han_run = ts.prune.prune_and_retrain(
    han_model, data, HAN_RATES["fc1.weight"], schedule="iterative", scope="layer",
    overrides={n: s for n, s in HAN_RATES.items() if n != "fc1.weight"},
    retrain_lr=RETRAIN_LR, seed=SEED, dense_test_accuracy=dense_accuracy, **RETRAIN)
print(f"Han's rates, iterative: accuracy {han_run.dense_test_accuracy:.4f} dense, "
      f"{han_run.pruned_test_accuracy:.4f} right after the last prune, "
      f"{han_run.test_accuracy:.4f} after retraining")
print("layer sparsities:", {n: round(s, 4) for n, s in han_run.layers.items()})
assert all(abs(han_run.layers[n] - s) < 1e-4 for n, s in HAN_RATES.items())
assert han_run.test_accuracy > (0.8 if FAST else dense_accuracy - 0.03)

# %%
compared = {"global 90%": pruned_models["iterative", 0.9],
            "global 95%": pruned_models["iterative", 0.95],
            "Han's rates": han_model}
reports = {label: ts.metrics.sparsity_report(net) for label, net in compared.items()}
accuracies = {"global 90%": runs["iterative", 0.9].test_accuracy,
              "global 95%": runs["iterative", 0.95].test_accuracy,
              "Han's rates": han_run.test_accuracy}
n_train = len(data.x_train)


def error(accuracy):
    return f"{100 * (1 - accuracy):.2f}%"


def kept(report, layer):
    row = next(r for r in report.rows if r["layer"] == layer)
    return f"{row['nonzero'] / row['weights']:.1%}"


rows = [
    ["training images", "60,000", *[f"{n_train:,}"] * 3],
    ["dense test error", "1.64%", *[error(dense_accuracy)] * 3],
    ["pruned + retrained error", "1.59%", *(error(a) for a in accuracies.values())],
    ["weights: dense -> non-zero", "267K -> 22K (with biases)",
     *(f"{r.total['weights']:,} -> {r.total['nonzero']:,}" for r in reports.values())],
    *[[f"kept in {layer.split('.')[0]}", han, *(kept(r, layer) for r in reports.values())]
      for layer, han in zip(names, ("8%", "9%", "26%"))],
    ["compression", "12x", *(f"{r.total['compression']:.1f}x" for r in reports.values())],
]
print(format_table(rows, headers=["", "Han et al. 2015 (quoted)",
                                  *(f"ours: {label}, iterative" for label in compared)]))
print(f"\nOurs: measured above on mnist-5k, {60_000 // n_train}x fewer training images than "
      f"the paper's full MNIST; our weights exclude the 410 biases (not pruned).")

# %% [markdown]
# How to read the table:
#
# * The **quoted** column is Han et al.'s, on the full 60,000-image MNIST with their Caffe
#   training; the other columns are measured in this notebook, on `mnist-5k`, which has
#   **15 times fewer training images**. Our dense error is therefore several times theirs
#   (lesson 01), and the comparison that carries over is the *relative* one: how much error
#   does pruning add?
# * Han's 22K parameters are the weights their per-layer rates keep
#   ($0.08 \cdot 235{,}200 + 0.09 \cdot 30{,}000 + 0.26 \cdot 1{,}000 \approx 21.8$K) plus
#   the 410 biases; the `Han's rates` column keeps the same numbers of weights by
#   construction, so its compression is $\approx 12\times$ too.
# * Their 0.05-point improvement (1.64% → 1.59%) is far below what our 1,000 test digits can
#   resolve (one digit = 0.1 points; the standard error is about 0.7 points). "Pruning loses
#   nothing" is the claim to check. In the full run, global 90% adds about half a point of
#   error — within the noise — while Han's rates and global 95% add a little over a point:
#   small, but not nothing. Han's rates prune `fc2` and `fc3` much harder than our global
#   threshold does (9% and 26% kept against about 27% and 62%); more retraining might close
#   the gap — try it.
#
# ## 8. What pruning does to the weights
#
# Histograms of each layer's non-zero weights: the dense network against the network right
# after a global 90% prune (top row), and against the same sparsity after iterative
# retraining (bottom row).

# %%
just_pruned = ts.prune.clone(dense)
ts.prune.prune(just_pruned, 0.9, scope="global")
retrained = pruned_models["iterative", 0.9]

fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
for column, name in enumerate(names):
    ts.plot.weight_histograms(dense, just_pruned, name, ax=axes[0, column], bins=80)
    ts.plot.weight_histograms(dense, retrained, name, ax=axes[1, column], bins=80)
    axes[0, column].set_title(f"{name}: pruned 90% global, no retraining", fontsize=10)
    axes[1, column].set_title(f"{name}: pruned 90% global, retrained", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# The global prune cuts the same interval $[-\tau, \tau]$ out of every layer: most of
# `fc1`'s distribution, only the middle of `fc3`'s. Retraining reshapes the survivors into
# two smooth bumps and moves them **outwards**, away from zero: the weights that remain grow
# to take over the work of the ones removed. A few drift back into the hole.
#
# Which input pixels do the hidden units of `fc1` still see? Each small image below is one
# unit's row of the `fc1` mask, reshaped to $28 \times 28$ (white = connection kept):

# %%
ts.plot.first_layer_masks(retrained, units=16, seed=SEED)
plt.show()

# %% [markdown]
# Each unit keeps a scattered few dozen pixels. Summed over all 300 units (the map below),
# the kept connections cover the whole region where digits are ever drawn — somewhat denser
# on its rim, pixels inked in only a few percent of the images, than in its middle (why?
# a question worth exploring) — while the border, where no digit ever reaches, is nearly
# empty. Nearly, but not quite. An input pixel that is black in *every* training image has
# $x_j = 0$, so every gradient $\partial L / \partial W_{ij} = \delta_i\, x_j$ of its
# weights is zero. Those weights never move from their random initial values, and magnitude
# pruning keeps the ones that happened to start large — although they can never affect the
# output on such images.

# %%
always_black = data.x_train.reshape(n_train, -1).max(axis=0) == 0
fc1_keep = dict(retrained.named_masks())["fc1.weight"].keep
print(f"{always_black.sum()} of 784 pixels are black in every training image")
print(f"kept fc1 weights: {fc1_keep[:, ~always_black].mean():.1%} of those from the other "
      f"pixels, {fc1_keep[:, always_black].mean():.1%} of those from always-black pixels "
      f"({fc1_keep[:, always_black].sum():,} weights that do nothing on these images)")

units_seeing = fc1_keep.sum(axis=0).reshape(28, 28)
plt.figure(figsize=(4.5, 4))
plt.imshow(units_seeing, cmap="viridis")
plt.colorbar(label="fc1 units still connected")
plt.title("How many of the 300 fc1 units see each pixel")
plt.axis("off")
plt.show()


# %% [markdown]
# Magnitude is a proxy for importance, and here it is a poor one. A criterion that asks
# how much the *loss* would change — Optimal Brain Damage, lesson 03 — gives these weights a
# saliency of exactly zero and removes them first.
#
# ## 9. Large-sparse or small-dense?
#
# A 90%-sparse LeNet-300-100 has about 26.6K non-zero weights. Would a small *dense* network
# with the same number of weights do as well? Zhu & Gupta (2017) report that **large-sparse
# beats small-dense** at an equal number of non-zeros (and Gale, Elsen & Hooker 2019 found,
# at much larger scale, that plain magnitude pruning holds its own against more elaborate
# sparsification methods). Let us check on our data: for each target we build a dense
# `ts.nn.mlp([784, h1, h2, 10])` with $h_2 \approx h_1 / 3$ (the 300:100 proportion) and as
# many weights as the pruned network's non-zeros, and train it as long as the gradually
# pruned network was trained in total (dense epochs + retraining epochs).

# %%
def small_dense_sizes(weights):
    # hidden sizes (h1, h2), h2 ≈ h1 / 3, whose 784-h1-h2-10 MLP has closest to `weights` weights
    def count(h1):
        h2 = max(1, round(h1 / 3))
        return 784 * h1 + h1 * h2 + h2 * 10
    h1 = min(range(1, 301), key=lambda h: abs(count(h) - weights))
    return h1, max(1, round(h1 / 3))


rows, versus, small_nets = [], {}, {}
for sparsity in TARGETS:
    sparse_net = pruned_models["gradual", sparsity]
    nonzero = ts.metrics.sparsity_report(sparse_net).total["nonzero"]
    h1, h2 = small_dense_sizes(nonzero)
    small = ts.nn.mlp([784, h1, h2, 10], seed=SEED)
    epochs = DENSE_EPOCHS + RETRAIN["retrain_epochs"]
    ts.fit(small, data, epochs=epochs, seed=SEED, quiet=True)
    small_nets[sparsity] = small
    small_weights = ts.metrics.sparsity_report(small).total["weights"]
    versus[sparsity] = (runs["gradual", sparsity].test_accuracy,
                        ts.evaluate(small, *data.test)["accuracy"])
    rows.append([f"LeNet-300-100, {sparsity:.0%} sparse (gradual)", nonzero, epochs,
                 versus[sparsity][0]])
    rows.append([f"dense 784-{h1}-{h2}-10", small_weights, epochs, versus[sparsity][1]])
print(format_table(rows, headers=["network", "non-zero weights", "epochs", "test accuracy"]))

# %%
if not FAST:
    for sparsity, (large_sparse, small_dense) in versus.items():
        assert large_sparse > small_dense, (sparsity, large_sparse, small_dense)

# %% [markdown]
# In the full run the large sparse network wins at both sizes, by two to three points — the
# same direction as Zhu & Gupta's result, though on one seed and 1,000 test digits (a
# difference of two points is under two standard errors), so take it as a hint, not a
# proof. One reading: pruning searches over *which* 26K connections to keep among 266K,
# while the small dense network has its connectivity fixed in advance.
#
# Keep the cost in mind, though. Both networks do about the same number of multiply–adds,
# but the small dense one does them with ordinary dense kernels, while the large sparse one
# needs sparse kernels to skip its zeros — and those do less work per second:

# %%
rows = []
for sparsity in TARGETS:
    sparse_net = pruned_models["gradual", sparsity]
    h1, h2 = small_dense_sizes(ts.metrics.sparsity_report(sparse_net).total["nonzero"])
    rows.append([f"LeNet-300-100, {sparsity:.0%} sparse", forward_milliseconds(sparse_net)])
    rows.append([f"dense 784-{h1}-{h2}-10", forward_milliseconds(small_nets[sparsity])])
print(format_table(rows, headers=["network", "ms per 1,000 images"], precision=1))

# %% [markdown]
# At equal non-zeros, large-sparse buys accuracy and pays for it in speed, unless the
# sparse kernels are very good: lesson 09 returns to this trade.
#
# ## Exercises
#
# Three exercises and a design task. Each exercise asks for a **function**; the cell
# after it checks your function on the lesson's model and then on inputs this text never
# shows (hidden tests, added back when a teacher grades the notebook), with the library
# function that would answer it switched off while the checks run.
#
# The cells you fill in hold **our solution, between two marker comments, so that the notebook
# runs top to bottom — try it yourself first**. In the student edition (`tinysparse course
# release DIR`) they read `# YOUR CODE HERE`; `tinysparse course grade NOTEBOOK` scores a
# completed notebook.
#
# ### Exercise 1 — write the global threshold
#
# Write `global_threshold(weights, sparsity)`: `weights` is a dict name → NumPy array,
# `sparsity` a fraction in $[0, 1)$. With NumPy alone:
#
# * gather $|w|$ of all the arrays into one array of $N$ values;
# * $\tau$ is the $k$-th smallest with $k = \operatorname{round}(s N)$;
# * a weight is kept when $|w| > \tau$.
#
# Return `(tau, keep)` with `keep` a dict name → boolean array of the weight's shape. (Take
# $k \ge 1$, so that $\tau$ is one of the magnitudes.) The check compares with
# `ts.prune.threshold` and `select_masks(..., scope="global")`.

# %% nbgrader={"grade": false, "grade_id": "exercise-1", "locked": false, "schema_version": 3, "solution": true, "task": false}
def global_threshold(weights, sparsity):
    ### BEGIN SOLUTION
    magnitudes = {name: np.abs(w) for name, w in weights.items()}
    everything = np.concatenate([m.ravel() for m in magnitudes.values()])
    k = max(1, int(round(sparsity * everything.size)))
    tau = np.sort(everything)[k - 1]
    return tau, {name: m > tau for name, m in magnitudes.items()}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 1 (no need to edit)
def check_global_threshold(weights, sparsity):
    """Your function against the library's shared selection step on ``weights``."""
    named_scores = {name: np.abs(w) for name, w in weights.items()}
    library_masks = ts.prune.select_masks(named_scores, sparsity, scope="global")
    library_tau = ts.prune.threshold(named_scores, library_masks)
    with ts.exercises.switched_off(ts.prune, "threshold", "select_masks"):
        tau, keep = global_threshold(weights, sparsity)
    assert tau == library_tau, (tau, library_tau)
    for name in weights:
        assert np.array_equal(keep[name], library_masks[name].keep), name
    return tau, keep


dense_weights = {name: dense.get_parameter(name).data for name in names}
tau, keep = check_global_threshold(dense_weights, 0.8)
print(f"Exercise 1: τ = {tau:.5f} at 80%; layer sparsities "
      f"{ {n: round(float(1 - keep[n].mean()), 3) for n in names} }; visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng(20261202)
for hidden_sparsity in (0.1, 0.5, 0.93):
    hidden_weights = {"a": hidden_rng.normal(size=(7, 5)), "b": hidden_rng.laplace(size=(13,)),
                      "c": hidden_rng.normal(scale=0.1, size=(3, 4, 2))}
    check_global_threshold(hidden_weights, hidden_sparsity)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — count the multiply–adds
#
# For one input image, a `Linear` layer computes $y_i = \sum_j W_{ij} x_j + b_i$: one
# multiply–add per weight, and a kernel that skips zeros does one per **non-zero** weight.
# Write `multiply_adds(model)` for a model made of `Linear` layers: it returns
# `(sparse, dense)`, the multiply–adds per example of a kernel that skips pruned weights
# and of one that does not, from the model's masks (`model.named_masks()` gives
# name → `Mask`, with `.kept` and `.size`; a layer without a mask is dense: its weight matrix
# is the parameter `<layer>.weight` of `model.named_parameters()`). Biases are additions, not multiply–adds: leave them out.

# %% nbgrader={"grade": false, "grade_id": "exercise-2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def multiply_adds(model):
    ### BEGIN SOLUTION
    masks = dict(model.named_masks())
    sparse = sum(mask.kept for mask in masks.values())
    dense_count = sum(mask.size for mask in masks.values())
    for name, parameter in model.named_parameters():
        if name.endswith(".weight") and name not in masks:  # a layer without a mask
            sparse += parameter.data.size
            dense_count += parameter.data.size
    return sparse, dense_count
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 2 (no need to edit)
def check_multiply_adds(model, input_shape=(1, 28, 28)):
    """Your counts against the library's sparsity report (switched off while yours runs)."""
    total = ts.metrics.sparsity_report(model, input_shape=input_shape).total
    with ts.exercises.switched_off(ts.metrics, "sparsity_report"):
        sparse, dense_count = multiply_adds(model)
    assert (sparse, dense_count) == (total["sparse_macs"], total["dense_macs"]), (
        (sparse, dense_count), (total["sparse_macs"], total["dense_macs"]))
    return sparse, dense_count


macs, dense_macs = check_multiply_adds(pruned_models["iterative", 0.9])
print(f"Exercise 2: {macs:,} of {dense_macs:,} multiply-adds per example "
      f"({macs / dense_macs:.1%}); visible checks passed")
### BEGIN HIDDEN TESTS
for hidden_seed, (hidden_sizes, hidden_sparsity) in enumerate(
        [([30, 17, 5], 0.6), ([12, 40, 9, 3], 0.85)]):
    hidden_model = ts.nn.mlp(hidden_sizes, seed=hidden_seed)
    ts.prune.prune(hidden_model, hidden_sparsity, scope="layer")
    check_multiply_adds(hidden_model, input_shape=(hidden_sizes[0],))
check_multiply_adds(ts.nn.mlp([8, 6, 2], seed=3), input_shape=(8,))
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — masks only ever add zeros
#
# An iterative schedule must never bring a pruned weight back: the mask of round $r + 1$
# may only keep weights that the mask of round $r$ kept, $M^{(r+1)} \le M^{(r)}$ elementwise.
# Write `only_adds_zeros(old, new)`, which takes two dicts name → `Mask` (its boolean
# array is `.keep`) and returns True when that holds for every parameter. The check runs a
# short iterative schedule — four global prunes towards 90%, a few retraining steps after
# each — and applies your function to each pair of consecutive rounds; it also makes sure
# your function catches a mask that revives a weight.

# %% nbgrader={"grade": false, "grade_id": "exercise-3", "locked": false, "schema_version": 3, "solution": true, "task": false}
def only_adds_zeros(old, new):
    ### BEGIN SOLUTION
    return all(not np.any(new[name].keep & ~old[name].keep) for name in old)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-3-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 3 (no need to edit)
trial = ts.prune.clone(dense)
history = []
for round_index, target in enumerate(ts.prune.iterative_targets(0.9, 4), start=1):
    ts.prune.prune(trial, target, scope="global")
    ts.fit(trial, data, epochs=1, max_steps=20, lr=RETRAIN_LR, seed=round_index, quiet=True)
    history.append(dict(trial.named_masks()))
    weights = trial.state_dict()
    for name, mask in history[-1].items():  # retraining left every pruned weight at zero
        assert np.all(weights[name][~mask.keep] == 0), name
for old, new in zip(history, history[1:]):
    assert only_adds_zeros(old, new), "a later round revived a pruned weight"

revived = dict(history[-1])
keep = revived["fc3.weight"].keep.copy()
keep[np.unravel_index(np.argmin(keep), keep.shape)] = True  # bring one pruned weight back
revived["fc3.weight"] = ts.sparse.Mask(keep)
assert not only_adds_zeros(history[-1], revived), "only_adds_zeros missed a revived weight"
print("Exercise 3: sparsity per round",
      [round(sum(m.pruned for m in h.values()) / 266_200, 4) for h in history],
      "- visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng(7)
for name in names:  # one revived weight in any layer, anywhere, is caught
    for _ in range(3):
        hidden_keep = history[-1][name].keep.copy()
        pruned_positions = np.flatnonzero(~hidden_keep)
        hidden_keep.flat[hidden_rng.choice(pruned_positions)] = True
        assert not only_adds_zeros(history[-1], {**history[-1],
                                                 name: ts.sparse.Mask(hidden_keep)}), name
all_pruned = {name: ts.sparse.Mask(np.zeros_like(m.keep)) for name, m in history[0].items()}
assert only_adds_zeros(history[0], all_pruned)  # pruning everything only adds zeros
assert only_adds_zeros(history[0], history[0])  # so does pruning nothing more
assert not only_adds_zeros(all_pruned, history[0])
### END HIDDEN TESTS

# %% [markdown]
# ### Design task — 20× smaller, within two points
#
# Choose a pruning rate for each layer so that the network keeps **at most 5% of its
# weights** (at least 20× fewer) and, after iterative pruning with retraining (the schedule
# of section 5: `RETRAIN` rounds and epochs, one-shot scoring by magnitude per layer), its
# test accuracy stays **within two points of the dense network's** (in fast mode, with
# three dense epochs and little retraining, the target is 0.85). A uniform 95% fails the
# second condition; Han's rates fail the first. Read the sensitivity curves of section 6:
# which layer can give up almost everything, which cannot? The check runs the schedule on
# your rates; it counts weights, it never times anything.

# %% nbgrader={"grade": false, "grade_id": "design-task", "locked": false, "schema_version": 3, "solution": true, "task": false}
design_sparsities = {"fc1.weight": None, "fc2.weight": None, "fc3.weight": None}  # yours
### BEGIN SOLUTION
design_sparsities = {"fc1.weight": 0.96, "fc2.weight": 0.92, "fc3.weight": 0.2}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "design-task-check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Checks for the design task (no need to edit)
DESIGN_KEEP = 0.05
DESIGN_ACCURACY = 0.85 if FAST else dense_accuracy - 0.02
assert set(design_sparsities) == set(names), f"give a rate for each of {names}"
designed = ts.prune.clone(dense)
design_run = ts.prune.prune_and_retrain(
    designed, data, design_sparsities["fc1.weight"], schedule="iterative", scope="layer",
    overrides={n: s for n, s in design_sparsities.items() if n != "fc1.weight"},
    retrain_lr=RETRAIN_LR, seed=SEED, dense_test_accuracy=dense_accuracy, **RETRAIN)
design_kept = sum(m.kept for _, m in designed.named_masks()) / sum(
    m.size for _, m in designed.named_masks())
print(f"Design task: keeps {design_kept:.2%} of the weights (at most {DESIGN_KEEP:.0%}), "
      f"test accuracy {design_run.test_accuracy:.4f} (at least {DESIGN_ACCURACY:.4f})")
assert design_kept <= DESIGN_KEEP, f"keeps {design_kept:.2%} > {DESIGN_KEEP:.0%}"
assert design_run.test_accuracy >= DESIGN_ACCURACY, "below the accuracy target"

# %% [markdown]
# ## Summary
#
# * A **mask** is an explicit 0/1 object owned by the layer. It is applied in the forward
#   pass ($W \odot M$, or sparse kernels on the kept weights), so pruned weights get exactly
#   zero gradient, and the optimiser clears their momentum and never moves them, so they
#   stay zero. Zeroing weights without a mask is not pruning.
# * Every method is **a score plus one shared selection step**: magnitude scores $|w|$;
#   layer-wise ($k_\ell = \operatorname{round}(s\,n_\ell)$ per layer) or global (one
#   threshold $\tau$). Because Glorot scales differ by layer, a global threshold prunes the
#   big first layer hardest and spares the small output layer.
# * Without retraining, accuracy falls fast past about 90% (layer-wise pruning collapses);
#   magnitude beats random by a wide margin. **Retraining** at a reduced learning rate recovers nearly everything; one-shot,
#   iterative and gradual (cubic) schedules land within the noise of each other here.
# * A **sensitivity analysis** shows which layers are fragile (`fc3`); per-layer rates and
#   `overrides` protect them. With Han et al.'s rates (keep 8% / 9% / 26%) we get their
#   $12\times$ compression; the accuracy comparison is limited by our 15× smaller training
#   set and 1,000 test digits.
# * Magnitude is only a proxy for importance: weights from always-black pixels survive
#   because they never moved.
# * Fewer multiply–adds is not the same as faster: the masked-dense path is no faster than
#   the dense network, and the sparse path gains less than the count suggests.
#
# Next: **lesson 03** replaces $|w|$ by a score that asks how much the loss would grow —
# LeCun, Denker & Solla's Optimal Brain Damage.
