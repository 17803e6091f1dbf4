# %% [markdown]
# # Lesson 11 — How many weights does a task need? Intrinsic dimension, pruning and description length
#
# LeNet-300-100 has 266,610 weights and biases; lessons 02–06 removed 90–99% of them and
# kept most of the accuracy. How far down can one go, and what exactly is being counted?
# This lesson measures the answer of Li, Farkhoor, Liu & Yosinski (2018): train the network
# only inside a **random d-dimensional subspace** of its weights and find the smallest d at
# which it still learns the task — the task's **intrinsic dimension**. Then it sets that
# number beside the weights magnitude pruning keeps at the same accuracy, and beside the
# bits either description needs, and reads all three counts as **description lengths**
# (Hinton & van Camp 1993) and as what a **compression bound on generalisation** (Arora et
# al. 2018) is about.
#
# You will
#
# 1. build the subspace θ = θ₀ + P v with a very sparse random projection P, and see why it
#    must be sparse;
# 2. check numerically, on a small model, that the gradient with respect to v is Pᵀ g;
# 3. run the search for d_int90 on LeNet-300-100 and plot test accuracy against d, with the
#    90%-of-dense line (and LeNet-5's search, in the default mode);
# 4. prune the same network by magnitude and count the weights it keeps at the same
#    accuracy — and the bits each description needs;
# 5. read the counts as description lengths (MDL) and as Arora et al.'s compression view
#    of generalisation;
# 6. put the papers' numbers beside ours;
# 7. do three exercises that check themselves, and a design task with a target.
#
# **Run time.** The default mode trains sixteen networks in subspaces (20 epochs each, as
# the command line does), two dense ones and five pruned ones: about 2½ minutes on a 2-core
# machine with NumPy's BLAS on one thread. `TINYSPARSE_FAST=1` (what the tests use) runs every cell
# with two epochs and three values of d in well under a minute; its numbers are only a
# smoke test. Figures measured from the command line (`tinysparse intrinsic`,
# `tinysparse prune`) are marked **"measured with the CLI"**.
#
# **Papers.** [Li et al. 2018](REFERENCES.md#intrinsic-dimension--li-et-al-2018), [Hinton &
# van Camp
# 1993](REFERENCES.md#minimum-description-length-of-the-weights--hinton--van-camp-1993),
# [Arora et al.
# 2018](REFERENCES.md#compression-and-generalisation--arora-et-al-2018), and for the
# pruning baseline [Han et al.
# 2015](REFERENCES.md#learning-both-weights-and-connections--han-et-al-2015). Each link goes
# to the lessons' references page, which says what the paper contributes and how far each
# number quoted here was checked against it.

# %%
import contextlib
import inspect
import math
import os
import time
from types import SimpleNamespace

import tinysparse as ts  # first: it tells the BLAS threads how to wait, before NumPy loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np

import tinysparse.intrinsic as intrinsic
from tinysparse.intrinsic import SparseProjection, Subspace, find_intrinsic_dimension
from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
SEED = 0                                        # the seed of every experiment
EPOCHS = 2 if FAST else 20                      # per run, dense and subspace (as the CLI)
DENSE_LR, SUBSPACE_LR = 1e-3, 0.1               # Adam; v needs a larger step (README)
SWEEP = (100, 400, 1600) if FAST else (50, 100, 200, 400, 800, 1600, 3200)
BISECTIONS = 0 if FAST else 3
LENET5 = not FAST                               # LeNet-5's search: default mode only
LENET5_SWEEP, LENET5_BISECTIONS = (50, 100, 200), 3
PRUNE_SPARSITIES = (0.9, 0.99) if FAST else (0.9, 0.95, 0.97, 0.98, 0.99)
PRUNE = {"rounds": 1, "retrain_epochs": 1} if FAST else {"rounds": 5, "retrain_epochs": 5}
started_lesson = time.perf_counter()
print(f"{'fast' if FAST else 'full'} mode: {EPOCHS} epochs per run; sweep {SWEEP}, "
      f"{BISECTIONS} bisections; LeNet-5 {'yes' if LENET5 else 'no'}; pruning {PRUNE}")

# %% [markdown]
# ## 1. Training in a random subspace
#
# Ordinary training moves all D numbers of θ. Li et al. tie them to d numbers:
#
# $$
# \theta = \theta_0 + P\,v, \qquad \theta_0 \in \mathbb R^D \text{ the initial weights},
# \quad P \in \mathbb R^{D\times d} \text{ fixed and random}, \quad v \in \mathbb R^d,\ v_0 = 0 .
# $$
#
# Only $v$ is trained; training starts at the ordinary initial network and moves within a
# d-dimensional plane through it, in random directions. If the network reaches a good
# accuracy for some small d, then d numbers — plus the seeds of $\theta_0$ and $P$ —
# describe a solution. The smallest d that reaches **90% of the accuracy of the
# ordinarily trained network** is called $d_{\text{int}90}$.
#
# **Why P must be sparse.** A dense Gaussian $P$ for LeNet-300-100 at $d = 750$ holds
# $266{,}610 \times 750 = 2\times 10^8$ numbers:

# %%
D300 = ts.nn.lenet300(seed=SEED).num_parameters()
dense_bytes = D300 * 750 * 4
print(f"LeNet-300-100: D = {D300:,}; a dense float32 P at d = 750: {dense_bytes / 1e9:.2f} GB")
projection = SparseProjection.random(D300, 750, seed=SEED)
sparse_bytes = projection.nnz * (4 + 4 + 4)  # a row index, a column index, a value
print(f"the very sparse P at d = 750: {projection.nnz:,} non-zeros (d·√D = "
      f"{750 * math.sqrt(D300):,.0f}), density {projection.density:.5f} = 1/√D; "
      f"{sparse_bytes / 1e6:.1f} MB as int32 indices and float32 values")

# %% [markdown]
# tinysparse draws $P$ as Li, Hastie & Church's **very sparse random projection** (KDD
# 2006; not on our references page): every entry is non-zero with probability $1/\sqrt D$,
# its sign $\pm 1$ with equal chance, and each column is then scaled to unit length (a
# column with $k$ non-zeros holds $\pm 1/\sqrt k$). That Li et al. 2018 used exactly this
# scheme for their larger networks is recalled, not checked; they also used the Fastfood
# transform, which tinysparse does not build. The constructor draws the count of each
# column first, then its rows — the same distribution as $D \cdot d$ coin flips, without
# making them:

# %%
print(inspect.getsource(SparseProjection.random))

# %% [markdown]
# Unit columns mean that a step of size $\varepsilon$ along one coordinate of $v$ moves θ by
# exactly $\varepsilon$. And random sparse columns in a space of 266,610 dimensions are
# nearly orthogonal, so $P^\top P \approx I$ and $P$ is nearly an isometry on $v$: the
# off-diagonal entries of $P^\top P$ have a spread of about $1/\sqrt D$.

# %%
counts = np.bincount(projection.columns, minlength=projection.shape[1])
norms = np.sqrt(np.bincount(projection.columns, weights=projection.values ** 2))
first = SparseProjection.random(D300, 200, seed=SEED)  # PᵀP column by column: Pᵀ(P e_j)
gram = np.stack([first.rmatvec(first.matvec(np.eye(200)[j])) for j in range(200)], axis=1)
off_diagonal = gram[~np.eye(200, dtype=bool)]
print(f"non-zeros per column: mean {counts.mean():.1f} (√D = {math.sqrt(D300):.1f}), "
      f"min {counts.min()}, max {counts.max()}; column norms in [{norms.min():.6f}, "
      f"{norms.max():.6f}]")
print(f"PᵀP for 200 columns: diagonal {np.diag(gram).min():.6f}..{np.diag(gram).max():.6f}; "
      f"off-diagonal mean {off_diagonal.mean():+.5f}, std {off_diagonal.std():.5f} "
      f"(1/√D = {1 / math.sqrt(D300):.5f}), largest |entry| {np.abs(off_diagonal).max():.4f}")
assert np.allclose(norms, 1) and counts.min() >= 1

# %% [markdown]
# ## 2. The gradient with respect to v is Pᵀ g
#
# By the chain rule, with $g = \partial L / \partial\theta$ the ordinary gradient of the
# loss at $\theta = \theta_0 + P v$,
#
# $$
# \frac{\partial L}{\partial v} = P^\top g .
# $$
#
# `Subspace` never forms $P$ densely: its forward pass builds each weight tensor as
# $\theta_{0,i} + P_i v$ with the op `sparse_matvec`, whose backward is $P_i^\top g_i$
# (the same `bincount` with rows and columns swapped), lends these tensors to the layers
# for one call, and lets backpropagation sum the pieces into `v.grad`. The op:

# %%
print(inspect.getsource(ts.autograd.ops.SparseMatVec))
print(inspect.getsource(Subspace.forward))
print(inspect.getsource(Subspace.weights))

# %% [markdown]
# Now numerically, on a model small enough for a dense $P$: a 20-16-3 network ($D = 387$)
# in a 12-dimensional subspace, in float64. We move $v$ away from 0 (so that $\theta \ne
# \theta_0$), take the gradient of the loss on a batch through the `Subspace` (the sparse
# path), and compare it with the dense computation: write θ into an ordinary copy of the
# network, backpropagate there to get $g$, multiply by the dense $P^\top$. A finite
# difference along one coordinate of $v$ checks both.

# %%
rng = np.random.default_rng(SEED)
with ts.autograd.default_dtype(np.float64):
    small_net = ts.nn.mlp([20, 16, 3], seed=SEED)
    subspace = Subspace(ts.prune.clone(small_net), 12, seed=SEED, density=0.2)
x_small = rng.standard_normal((32, 20))
y_small = rng.integers(0, 3, size=32)
subspace.v.data = 0.3 * rng.standard_normal(12)

loss = ts.autograd.cross_entropy(subspace(x_small), y_small)  # the sparse path
loss.backward()
sparse_gradient = subspace.v.grad.copy()

theta_net = subspace.write_weights()                 # θ = θ₀ + P v, as ordinary parameters
theta_net.zero_grad()
ts.autograd.cross_entropy(theta_net(x_small), y_small).backward()
g = np.concatenate([p.grad.ravel() for _, p in theta_net.named_parameters()])
P_dense = subspace.projection.to_dense()             # 387 × 12: fine here, not at D = 266,610
dense_gradient = P_dense.T @ g

step = 1e-6
def loss_at(v):
    subspace.v.data = v
    with ts.no_grad():
        return float(ts.autograd.cross_entropy(subspace(x_small), y_small).data)
v_now = subspace.v.data.copy()
finite_difference = (loss_at(v_now + step * np.eye(12)[0]) -
                     loss_at(v_now - step * np.eye(12)[0])) / (2 * step)
subspace.v.data = v_now
print(f"D = {subspace.num_weights}, d = 12, P has {subspace.projection.nnz} non-zeros")
print("Pᵀ g (dense)    ", np.round(dense_gradient[:6], 6))
print("v.grad (sparse) ", np.round(sparse_gradient[:6], 6))
print(f"largest difference {np.abs(dense_gradient - sparse_gradient).max():.2e}; "
      f"finite difference along v₁ {finite_difference:.6f} vs {sparse_gradient[0]:.6f}")
assert np.allclose(dense_gradient, sparse_gradient, rtol=1e-10, atol=1e-12)
assert abs(finite_difference - sparse_gradient[0]) < 1e-6

# %% [markdown]
# The two agree to rounding (float64). A subspace model is an ordinary `Module` whose only
# parameter is `v`, so `ts.fit` trains it with Adam like any other network, and
# `write_weights()` turns it back into an ordinary LeNet that can be evaluated, pruned or
# saved.
#
# ## 3. The search: test accuracy against d
#
# `find_intrinsic_dimension` first trains the dense network, then tries the d of a sweep in
# increasing order and stops at the first that reaches 90% of the dense accuracy; then it
# **bisects** between the last d that failed and the first that passed. Each d draws its own
# $P$, so accuracy is not exactly monotone in d: the answer is the smallest d *tried* that
# reached the target. The settings are those of the README's CLI figures: 20 epochs per run,
# Adam at $10^{-3}$ for the dense network and at 0.1 for $v$, batch 64, seed 0. To draw the
# whole curve we then also train the d of the sweep above the answer.

# %%
data = ts.load_dataset("mnist-5k")


def lenet300():
    return ts.nn.lenet300(seed=SEED)


def dense_accuracy(make_model):
    started = time.perf_counter()
    net = make_model()
    ts.fit(net, data, epochs=EPOCHS, lr=DENSE_LR, seed=SEED, quiet=True)
    return net, ts.evaluate(net, *data.test)["accuracy"], time.perf_counter() - started


def search(make_model, sweep, bisections, dense):
    def report(run):
        print(f"  d = {run.dimension:>5,} ({run.stage}): test accuracy {run.test_accuracy:.4f}"
              f" {'reached' if run.reached else 'missed '} ({run.seconds:.1f} s)")
    found = find_intrinsic_dimension(make_model, data, sweep, bisections=bisections,
                                     seed=SEED, dense_test_accuracy=dense, on_run=report,
                                     epochs=EPOCHS, lr=SUBSPACE_LR, quiet=True)
    curve = {run.dimension: run.test_accuracy for run in found.runs}
    for d in sweep:  # the rest of the curve, above the answer
        if d not in curve:
            started = time.perf_counter()
            test, _ = intrinsic.subspace_accuracy(make_model, data, d, seed=SEED,
                                                  epochs=EPOCHS, lr=SUBSPACE_LR, quiet=True)
            curve[d] = test["accuracy"]
            print(f"  d = {d:>5,} (curve): test accuracy {curve[d]:.4f} "
                  f"({time.perf_counter() - started:.1f} s)")
    return found, dict(sorted(curve.items()))


dense300, dense300_accuracy, seconds = dense_accuracy(lenet300)
print(f"LeNet-300-100, dense: test accuracy {dense300_accuracy:.4f} ({seconds:.1f} s); "
      f"target 0.9 × that = {0.9 * dense300_accuracy:.4f}")
started = time.perf_counter()
found300, curve300 = search(lenet300, SWEEP, BISECTIONS, dense300_accuracy)
print(f"d_int90 = {found300.d_int} ({time.perf_counter() - started:.0f} s)")

# %% [markdown]
# LeNet-5 ($D = 61{,}706$) is cheaper in weights but dearer in time: each of its runs
# convolves. In the default mode we repeat the CLI's search for it (sweep 50, 100, 200, then
# three bisections); the fast mode skips it and keeps the CLI figure.

# %%
def lenet5():
    return ts.nn.lenet5(seed=SEED)


if LENET5:
    dense5, dense5_accuracy, seconds = dense_accuracy(lenet5)
    print(f"LeNet-5, dense: test accuracy {dense5_accuracy:.4f} ({seconds:.1f} s); target "
          f"{0.9 * dense5_accuracy:.4f}")
    started = time.perf_counter()
    found5, curve5 = search(lenet5, LENET5_SWEEP, LENET5_BISECTIONS, dense5_accuracy)
    print(f"d_int90 = {found5.d_int} ({time.perf_counter() - started:.0f} s)")
else:
    found5, curve5, dense5_accuracy = None, {}, None
    print("LeNet-5: skipped in fast mode (measured with the CLI: d_int90 = 187)")

# %%
CLI = {"LeNet-300-100": 700, "LeNet-5": 187}  # README, measured with the CLI (seed 0)
fig, axes = plt.subplots(1, 2 if LENET5 else 1, figsize=(13 if LENET5 else 7, 4.3),
                         squeeze=False)
panels = [("LeNet-300-100", curve300, found300, dense300_accuracy)]
if LENET5:
    panels.append(("LeNet-5", curve5, found5, dense5_accuracy))
for ax, (name, curve, found, dense) in zip(axes[0], panels):
    ax.plot(list(curve), list(curve.values()), "o-", label="trained in a d-dim. subspace")
    bisected = [r.dimension for r in found.runs if r.stage == "bisection"]
    ax.plot(bisected, [curve[d] for d in bisected], "s", color="C1", label="bisection")
    ax.axhline(dense, color="k", linewidth=1, label=f"dense network {dense:.3f}")
    ax.axhline(0.9 * dense, color="k", linestyle="--", linewidth=1,
               label=f"90% of dense {0.9 * dense:.3f}")
    if found.d_int is not None:
        ax.axvline(found.d_int, color="C2", label=f"d_int90 found here: {found.d_int}")
    ax.axvline(CLI[name], color="C3", linestyle=":",
               label=f"measured with the CLI: {CLI[name]}")
    if name == "LeNet-300-100":
        ax.axvline(750, color="C4", linestyle="-.", linewidth=1,
                   label="Li et al.: ~750 (full MNIST)")
    ax.set(xscale="log", xlabel="subspace dimension d", ylabel="test accuracy",
           title=f"{name} on mnist-5k (D = {found.num_weights:,})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

if not FAST:
    ds = list(curve300)
    assert found300.d_int is not None and curve300[ds[-1]] > curve300[ds[0]] + 0.2
    rises = [curve300[b] > curve300[a] for a, b in zip(ds, ds[1:])]
    assert np.mean(rises) >= 0.7  # accuracy rises with d overall (not at every step)
    assert found5 is not None and found5.d_int is not None

# %% [markdown]
# What we saw in the default mode (seed 0; with the same BLAS and one BLAS thread you see
# the same numbers). The dense LeNet-300-100 reaches 0.953, so the target is 0.8577. In
# subspaces: d = 50 gives 0.324, 100 gives 0.625, 200 gives 0.734, 400 gives 0.828 (all
# missed) and 800 gives 0.881 (reached); the bisection tried 600 (0.839, missed), 700
# (0.867, reached) and 650 (0.846, missed): **d_int90 = 700**, the figure the CLI measured
# (its sweep had different points, and its bisection ended at 700 too). Above the answer the
# curve flattens: 0.862 at d = 1,600 — lower than at 800, since each d draws its own P —
# and 0.885 at d = 3,200, still 7 points below the dense network. The step from nothing
# to 90% of the accuracy takes a few hundred numbers; the last points take far more. That
# is why the definition uses 90% rather than all of it.
#
# LeNet-5 (dense 0.954, target 0.8586): 50 gives 0.575, 100 gives 0.751, 200 gives 0.875
# (reached); the bisection tried 150 (0.822), 175 (0.827), both missed, and 187 (0.865):
# **d_int90 = 187**, again the CLI's figure. The convolutional network needs about a
# quarter of the fully connected one's dimensions. (The figure of about 290 for LeNet that
# our design notes carry is not confirmed, so we do not set ours against it.) Li et al.'s
# **~750** for fully connected networks on MNIST (checked (secondary)) is close to our 700,
# though they trained on 60,000 digits and we on 4,000, with one seed and one P per d: the
# accuracy at neighbouring d scatters by about a point (1,600 scored below 800), so 700
# against 750 is agreement, not a difference.
#
# ## 4. How many weights does magnitude pruning keep at the same accuracy?
#
# Prune the dense network of section 3 by magnitude (global, iterative: 5 rounds of 5
# retraining epochs at a third of the learning rate — the CLI's `tinysparse prune`
# defaults) to several sparsities and count the weights left (the biases are not pruned and
# not counted here; there are 410 of them):

# %%
prune_rows, pruned_at = [], {}
weights300 = sum(p.size for name, p in dense300.named_parameters() if name.endswith("weight"))
for sparsity in PRUNE_SPARSITIES:
    started = time.perf_counter()
    net = ts.prune.clone(dense300)
    run = ts.prune.prune_and_retrain(net, data, sparsity, scope="global", seed=SEED,
                                     retrain_lr=DENSE_LR / 3, **PRUNE)
    kept = round((1 - ts.prune.sparsity_of(net)) * weights300)
    pruned_at[sparsity] = (kept, run.test_accuracy)
    prune_rows.append([sparsity, kept, run.test_accuracy,
                       "yes" if run.test_accuracy >= 0.9 * dense300_accuracy else "no",
                       f"{time.perf_counter() - started:.1f}"])
print(format_table(prune_rows, headers=["sparsity", "weights kept", "test accuracy",
                                        "≥ 90% of dense", "seconds"]))
print(f"(of {weights300:,} weights; the target is {0.9 * dense300_accuracy:.4f})")

# %% [markdown]
# **Measured with the CLI** (README, seed 0, the same schedule): LeNet-300-100 keeps 2,662
# weights at sparsity 0.99 (test accuracy 0.850, just short of its target 0.858) and 5,324
# at 0.98 (0.904); LeNet-5 keeps 1,844 at 0.97 (0.875) and 1,229 at 0.98 (0.791).
#
# ### Three counts that are not the same thing
#
# * **d, the subspace dimension**, counts *free numbers*: v has d entries, and together with
#   two seeds (of θ₀ and of P) they rebuild every one of the D weights. Nothing in the
#   trained network is zero; the network is as large and as slow as the dense one.
# * **The weights a pruned network keeps** count non-zeros, and each one is free. But a
#   sparse network must also say *where* its weights are: choosing k positions out of N
#   costs at least $\log_2 \binom{N}{k}$ bits — CSR indices or Han et al.'s relative
#   indices spend more.
# * **Bits** are what a file holds and what MDL counts. At 32 bits a number, the subspace
#   network costs $32\,d$ bits plus two seeds; the pruned one $32\,k$ bits of values plus
#   its positions.
#
# The table prices each at float32 (what Lesson 10's weight sharing would cut to a few bits
# a number, for both):

# %%
def position_bits(n, k):
    """log2 C(n, k): the fewest bits that can say which k of n positions are kept."""
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


SEED_BITS = 2 * 32  # the seed of θ₀ and the seed of P
bits_rows = [["dense LeNet-300-100", D300, 32 * D300, 0, 32 * D300, dense300_accuracy]]
reached = [d for d, accuracy in curve300.items() if accuracy >= 0.9 * dense300_accuracy]
for d in sorted({found300.d_int or max(curve300), *reached[:2]}):
    bits_rows.append([f"subspace, d = {d:,}", d, 32 * d, SEED_BITS, 32 * d + SEED_BITS,
                      curve300[d]])
for sparsity, (kept, accuracy) in pruned_at.items():
    positions = position_bits(weights300, kept)
    bits_rows.append([f"pruned to {sparsity} (+ 410 biases)", kept + 410, 32 * (kept + 410),
                      round(positions), round(32 * (kept + 410) + positions), accuracy])
print(format_table([[r[0], f"{r[1]:,}", f"{r[2]:,}", f"{r[3]:,}", f"{r[4]:,}",
                     f"{r[4] / 8 / 1024:.1f}", r[5]] for r in bits_rows],
                   headers=["LeNet-300-100", "free numbers", "value bits (32 each)",
                            "position / seed bits", "total bits", "KiB", "test accuracy"]))

# %% [markdown]
# In the default mode, magnitude pruning keeps 26,620 weights at sparsity 0.9 (test accuracy
# 0.952), 13,310 at 0.95 (0.941), 7,986 at 0.97 (0.929) and **5,324 at 0.98 (0.904)**; at
# 0.99, 2,662 weights give 0.850, just short of the target 0.8577 — the CLI's figures
# exactly. So at 90% of the dense accuracy pruning needs between 2,662 and 5,324 kept
# weights where the subspace needs 700 numbers: **4–8× more**.
#
# In bits the gap widens, because the sparse network must say where its weights are. The
# subspace at d = 700 costs 22,400 bits of values and 64 of seeds (2.7 KiB, accuracy
# 0.867); the network pruned to 0.98 costs 183,488 bits of values (with the 410 biases) and
# at least 37,644 bits of positions, 221,132 in all (27.0 KiB, accuracy 0.904): ten times
# more, for 3.7 points more accuracy. The dense float32 network is 1,041 KiB. Both codes
# could be shortened further — fewer bits a number (lesson 10's weight sharing), an entropy
# coder — but the positions are a cost only the sparse network pays. In exchange it is the
# only one of the two that is *smaller to run*: the subspace network has all 266,610
# weights non-zero and costs as much to evaluate as the dense one.
#
# ## 5. Description length, and what it says about generalisation
#
# **MDL** (lesson 06, section 9; [Hinton & van
# Camp 1993](REFERENCES.md#minimum-description-length-of-the-weights--hinton--van-camp-1993)):
# a network that fits its training data is a message — the weights, plus the corrections to
# its predictions — and the shorter that message, the less the network can have memorised.
# Hinton & van Camp made the weights cheap by sending them *noisily*: a weight only needs
# the precision that the loss cares about. The subspace is a different cheap code for the
# same message. Sender and receiver agree on a random number generator; the sender sends
# two seeds and d numbers, and the receiver rebuilds all D weights. Its length is about
# $32\,d$ bits (less, if the d numbers are themselves sent coarsely), with no positions to
# pay for. So $d_{\text{int}90}$ is an **upper bound** on how many numbers the task needs at
# this accuracy: some cleverer code (a better subspace, learned instead of random; a
# different network) may need fewer, none is guaranteed to.
#
# Pruning gives another upper bound, with a different code: which weights, and their values.
# That two such different codes land within a small factor of each other on the same task
# (section 4) is the point Li et al. make: the number belongs to the task and the network
# family more than to the method. Li et al. also found that $d_{\text{int}90}$ hardly
# changes when fully connected networks are made wider or deeper: the extra weights of a
# large network add directions, not information.
#
# **Compression and generalisation** ([Arora et al.
# 2018](REFERENCES.md#compression-and-generalisation--arora-et-al-2018)). Classical bounds
# on the gap between training and test error grow with the number of parameters, and for
# networks with far more parameters than training examples they say nothing. Arora et al.
# turn the question round: if the trained network can be **compressed** — replaced by a
# network described with few numbers, at limited precision, that makes nearly the same
# predictions on the training data — then a counting argument bounds the test error of the
# *compressed* network by its training error plus a term that grows with the size of its
# description, not with the size of the original. The bound is about the compressed
# network, not the one you trained; what it explains is why a large network can generalise
# when it *could* be described briefly. They then show that trained networks are
# compressible because they are stable to noise injected in their layers (the noise dies
# out as it passes through the network), and build the compression from that stability
# (their bounds are stated for the compressed network; we quote none of their figures).
#
# Read with this lesson's numbers: on 4,000 training digits, an LeNet-300-100 trained in a
# subspace of a few hundred dimensions is a network described by a few hundred numbers and
# two seeds; an argument of Arora et al.'s kind then bounds its generalisation gap with a
# term that depends on those few hundred numbers, not on the 266,610 weights it looks like.
# (We do not compute such a bound here; a real one needs the precision of each number and
# a confidence level, and on 4,000 examples it would be loose.) Subspace training, pruning
# and MDL are three ways of saying the same thing: the task needs far fewer numbers than
# the network holds.
#
# ## 6. The papers' numbers beside ours

# %%
fast_note = " (fast mode: a smoke test)" if FAST else ""
paper_rows = [
    ["LeNet-300-100: d_int90", found300.d_int if found300.d_int else "not reached",
     "700 (20 ep., seed 0)", "~750, fully connected nets (Li et al.; checked (secondary))"],
    ["LeNet-5: d_int90", found5.d_int if found5 else "not run", "187 (20 ep., seed 0)",
     "about 290 for LeNet: not confirmed, not compared"],
    ["LeNet-300-100: dense accuracy", dense300_accuracy, "0.953", "not quoted"],
    ["LeNet-300-100: weights kept by pruning at ≥ 90% of dense",
     min((k for k, a in pruned_at.values() if a >= 0.9 * dense300_accuracy), default="none"),
     "5,324 (0.904); 2,662 missed (0.850)", "Han et al.: 12x at 1.59% error (full MNIST)"],
]
print(format_table(paper_rows, headers=["", f"this notebook{fast_note}",
                                        "measured with the CLI (README)", "papers"]))
print("\nmnist-5k: 4,000 training digits (Li et al. and Han et al. used 60,000); one seed, "
      "one P per d")

# %% [markdown]
# How far each quoted figure is checked (the references page gives the sources):
#
# * **Li et al. 2018**: about **750** for fully connected networks on MNIST is checked
#   (secondary), from summaries of the paper, not the paper itself. The figure of about 290
#   for LeNet that our design notes mention is **not confirmed**; we print it only as an
#   unconfirmed report. Their networks trained on all 60,000 digits; ours on 4,000, with one
#   seed and one $P$ per d.
# * **Han et al. 2015**: LeNet-300-100 at 12× fewer weights with 1.59% error after pruning
#   and retraining (checked, lesson 02) — at full accuracy, not at 90% of it, so it keeps
#   far more weights (about 22,000) than the counts of section 4.
# * **Hinton & van Camp 1993** and **Arora et al. 2018**: no figures quoted.
#
# ## 7. Exercises
#
# Three exercises and a design task. Each exercise asks for a **function**; the cell after
# it checks your function on a first case and then on inputs this text never shows (hidden
# tests, added back when a teacher grades the notebook). While your function runs, the
# checks **switch off** the library functions that would answer the exercise for you
# (`tinysparse.exercises.switched_off`; calling one raises an error).
#
# The cells you fill in hold **our solution, between two marker comments, so that the
# notebook runs top to bottom — try it yourself first**. In the student edition
# (`tinysparse course release DIR`) they read `# YOUR CODE HERE`; `tinysparse course grade
# NOTEBOOK` scores a completed notebook.

# %%
from tinysparse.exercises import switched_off

# %% [markdown]
# ### Exercise 1 — a very sparse random projection
#
# Write `my_projection(D, d, rng)`: a dense $D \times d$ array in which every entry is
# non-zero with probability $1/\sqrt D$ (independently), with a random sign, each column
# scaled to unit length, and a column that drew no non-zero given one (at a random row).
# The checks draw sizes you do not know, and compare the statistics of your matrices with
# those of the library's (`SparseProjection.random`, switched off while yours runs): unit
# columns, equal magnitudes within a column, the number of non-zeros, the balance of signs,
# how evenly the non-zeros fall on the rows.

# %% nbgrader={"grade": false, "grade_id": "exercise-1", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_projection(D, d, rng):
    ### BEGIN SOLUTION
    density = 1 / math.sqrt(D)
    matrix = (rng.random((D, d)) < density) * rng.choice([-1.0, 1.0], size=(D, d))
    for j in np.flatnonzero(~matrix.any(axis=0)):  # an empty column gets one non-zero
        matrix[rng.integers(D), j] = rng.choice([-1.0, 1.0])
    return matrix / np.sqrt((matrix != 0).sum(axis=0))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 1 (no need to edit)
def projection_statistics(matrix):
    nonzero = matrix != 0
    k = nonzero.sum(axis=0)
    magnitudes_equal = all(np.allclose(np.abs(matrix[nonzero[:, j], j]), 1 / math.sqrt(k[j]))
                           for j in range(matrix.shape[1]))
    return {"norms": np.linalg.norm(matrix, axis=0), "equal": magnitudes_equal,
            "nnz": int(nonzero.sum()), "positive": float((matrix > 0).sum() / nonzero.sum()),
            "per_row": nonzero.sum(axis=1), "empty": int((k == 0).sum())}


def check_projection(D, d, seed):
    """Your projection's statistics against the library's and against their expectations."""
    library = projection_statistics(SparseProjection.random(D, d, seed=seed).to_dense())
    with switched_off(SparseProjection, "random", "from_dense"):
        mine = my_projection(D, d, np.random.default_rng([seed, 7]))
    assert mine.shape == (D, d), f"shape {mine.shape}, expected ({D}, {d})"
    stats = projection_statistics(mine)
    expected, spread = D * d / math.sqrt(D), math.sqrt(D * d / math.sqrt(D))
    assert np.allclose(stats["norms"], 1), "every column must have unit length"
    assert stats["equal"], "within a column every non-zero has magnitude 1/√k"
    assert stats["empty"] == 0, "no empty column"
    assert abs(stats["nnz"] - expected) < 5 * spread, (
        f"{stats['nnz']} non-zeros, expected about {expected:.0f} ± {spread:.0f}")
    assert abs(stats["nnz"] - library["nnz"]) < 7 * spread, "far from the library's count"
    assert abs(stats["positive"] - 0.5) < 5 * math.sqrt(0.25 / stats["nnz"]), "signs: ±1"
    assert abs(stats["per_row"].var() - library["per_row"].var()) < 0.5 * library[
        "per_row"].var() + 0.05, "the non-zeros should fall on the rows as the library's do"
    print(f"D = {D:,}, d = {d}: {stats['nnz']:,} non-zeros (library {library['nnz']:,}, "
          f"expected {expected:,.0f}); positive {stats['positive']:.3f}")


check_projection(5_000, 40, seed=0)
print("Exercise 1: visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng([SEED, 1111])
for hidden_trial in range(3):
    check_projection(int(hidden_rng.integers(2_000, 20_000)), int(hidden_rng.integers(20, 80)),
                     seed=100 + hidden_trial)
with switched_off(SparseProjection, "random", "from_dense"):  # D = 4: empty columns are
    hidden_small = my_projection(4, 200, np.random.default_rng([SEED, 3333]))  # common
assert hidden_small.shape == (4, 200) and np.all((hidden_small != 0).any(axis=0)), "empty column"
assert np.allclose(np.linalg.norm(hidden_small, axis=0), 1), "every column must have unit length"
### END HIDDEN TESTS


# %% [markdown]
# ### Exercise 2 — the gradient with respect to v, by hand
#
# Write `my_v_gradient(model, projection, v, x, y)`: the gradient of the mean cross-entropy
# of `model` on `(x, y)` with respect to $v$, at $\theta = \theta_0 + P v$, where θ₀ is the
# model's current weights (all parameters, in `named_parameters` order) and `projection` a
# `SparseProjection` (`rows`, `columns`, `values`, `shape`; `matvec` may be used). Use the
# ordinary autograd of the model for $g$, then compute $P^\top g$ yourself. The checks
# compare with the `Subspace`'s gradient on models and subspaces you do not know, while
# `Subspace.forward`, the `sparse_matvec` op and `SparseProjection.rmatvec` / `to_dense`
# are switched off.

# %% nbgrader={"grade": false, "grade_id": "exercise-2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_v_gradient(model, projection, v, x, y):
    ### BEGIN SOLUTION
    named = list(model.named_parameters())
    theta = np.concatenate([p.data.ravel() for _, p in named]) + projection.matvec(v)
    start = 0
    for _, p in named:  # write θ into the model
        p.data = theta[start:start + p.size].reshape(p.shape).astype(p.dtype)
        start += p.size
    model.zero_grad()
    ts.autograd.cross_entropy(model(x), y).backward()
    g = np.concatenate([p.grad.ravel() for _, p in named])
    gradient = np.zeros(projection.shape[1])
    np.add.at(gradient, projection.columns, projection.values * g[projection.rows])  # Pᵀ g
    return gradient
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 2 (no need to edit)
def check_v_gradient(sizes, d, seed):
    """Your gradient against the Subspace's v.grad, on a float64 MLP of `sizes`."""
    check_rng = np.random.default_rng([seed, 22])
    with ts.autograd.default_dtype(np.float64):
        model = ts.nn.mlp(sizes, seed=seed)
    reference = Subspace(ts.prune.clone(model), d, seed=seed, density=0.3)
    v = 0.2 * check_rng.standard_normal(d)
    x = check_rng.standard_normal((16, sizes[0]))
    y = check_rng.integers(0, sizes[-1], size=16)
    reference.v.data = v.copy()
    ts.autograd.cross_entropy(reference(x), y).backward()
    with switched_off(Subspace, "forward"), switched_off(intrinsic, "sparse_matvec"), \
            switched_off(ts.autograd, "sparse_matvec"), \
            switched_off(ts.autograd.ops, "sparse_matvec", "SparseMatVec"), \
            switched_off(SparseProjection, "rmatvec", "to_dense"):
        mine = np.asarray(my_v_gradient(ts.prune.clone(model), reference.projection,
                                        v.copy(), x, y))
    assert mine.shape == (d,), f"shape {mine.shape}, expected ({d},)"
    assert np.allclose(mine, reference.v.grad, rtol=1e-8, atol=1e-10), (
        f"sizes {sizes}, d = {d}: your gradient differs by "
        f"{np.abs(mine - reference.v.grad).max():.2e}")
    print(f"model {sizes} (D = {model.num_parameters()}), d = {d}: equal to the Subspace's "
          f"v.grad")


check_v_gradient([12, 8, 3], 5, seed=0)
print("Exercise 2: visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng([SEED, 2222])
for hidden_trial in range(3):
    check_v_gradient([int(hidden_rng.integers(5, 30)), int(hidden_rng.integers(4, 20)),
                      int(hidden_rng.integers(2, 6))], int(hidden_rng.integers(3, 20)),
                     seed=200 + hidden_trial)
check_v_gradient([9, 7, 6, 4], 11, seed=7)  # three layers
### END HIDDEN TESTS


# %% [markdown]
# ### Exercise 3 — the search rule
#
# Write `my_d_int(accuracy_at, sweep, target, bisections)`: `accuracy_at(d)` trains in a
# d-dimensional subspace and returns the test accuracy (here, a made-up curve you do not
# see, noisy and not quite monotone). Follow the rule of section 3: try the d of `sweep` in
# increasing order and stop at the first that reaches `target`; if none does, return None.
# Then, `bisections` times, try the middle `(failed + found) // 2` of the interval between
# the largest d that failed (0 if none) and the d found, keeping whichever side it lands
# on; stop early when the interval is one wide. The checks compare your answer *and the d
# you tried, in order* with `find_intrinsic_dimension` (switched off while yours runs).

# %% nbgrader={"grade": false, "grade_id": "exercise-3", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_d_int(accuracy_at, sweep, target, bisections):
    ### BEGIN SOLUTION
    failed, found = 0, None
    for d in sorted(set(sweep)):
        if accuracy_at(d) >= target:
            found = d
            break
        failed = d
    if found is None:
        return None
    for _ in range(bisections):
        if found - failed <= 1:
            break
        middle = (failed + found) // 2
        if accuracy_at(middle) >= target:
            found = middle
        else:
            failed = middle
    return found
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-3-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 3 (no need to edit)
def made_up_curve(seed):
    rng = np.random.default_rng([seed, 33])
    scale, noise = rng.uniform(50, 800), rng.uniform(0.0, 0.02)
    jitter = {}
    def accuracy(d):
        jitter.setdefault(d, rng.normal(0, noise))
        return 0.95 * (1 - math.exp(-d / scale)) + jitter[d]
    return accuracy


def library_answer(accuracy_at, sweep, target, bisections):
    """find_intrinsic_dimension with its training replaced by `accuracy_at`."""
    def fake_training(make_model, data, d, **options):
        return {"accuracy": accuracy_at(d)}, SimpleNamespace(train_accuracy=[float("nan")])
    saved = intrinsic.subspace_accuracy
    intrinsic.subspace_accuracy = fake_training
    try:
        return find_intrinsic_dimension(lambda: ts.nn.mlp([200, 40], seed=0), None, sweep,
                                        threshold=target, bisections=bisections,
                                        dense_test_accuracy=1.0)
    finally:
        intrinsic.subspace_accuracy = saved


def recording(accuracy_at, tried):
    def recorded(d):
        tried.append(int(d))
        return accuracy_at(d)
    return recorded


def check_d_int(trial):
    """Your answer and the d you tried against the library's search on a made-up curve."""
    curve = made_up_curve(trial)
    rng = np.random.default_rng([trial, 44])
    start, steps = int(rng.integers(10, 100)), int(rng.integers(2, 7))
    sweep = [start * 2 ** i for i in range(steps)]  # doubling, as the CLI's default sweep
    target, bisections = float(rng.uniform(0.75, 0.9)), int(rng.integers(0, 6))
    expected = library_answer(curve, sweep, target, bisections)
    tried = []
    recorded = recording(curve, tried)
    with switched_off(intrinsic, "find_intrinsic_dimension", "subspace_accuracy"):
        mine = my_d_int(recorded, list(sweep), target, bisections)
    assert mine == expected.d_int, f"trial {trial}: yours {mine}, expected {expected.d_int}"
    assert tried == [r.dimension for r in expected.runs], (
        f"trial {trial}: you tried {tried}, the rule tries {[r.dimension for r in expected.runs]}")
    print(f"sweep {sweep}, target {target:.3f}, {bisections} bisections: d_int {mine} "
          f"after {len(tried)} trainings")


for trial in range(3):
    check_d_int(trial)
print("Exercise 3: visible checks passed")
### BEGIN HIDDEN TESTS
for hidden_trial in range(100, 112):
    check_d_int(hidden_trial)
### END HIDDEN TESTS


# %% [markdown]
# ### Design task — the shortest description at 90% of dense
#
# Section 4 priced the subspace network at 32 bits a number: $32 d$ bits plus two seeds,
# 22,464 bits at $d = 700$. Make it shorter. Choose a dimension $d$ and a number of bits
# $b$: the check trains LeNet-300-100 in a $d$-dimensional subspace with the settings of
# section 3 (`EPOCHS` epochs, Adam at 0.1, seed 0), then **rounds every coordinate of $v$
# to one of $2^b$ evenly spaced levels** between the smallest and the largest coordinate,
# and scores the rounded network. Its description holds $b\,d$ bits for $v$, 64 for the
# two ends of the levels (two float32) and 64 for the seeds. The target:
#
# * **at most 6,000 bits** (750 bytes; the dense float32 network is 8.5 million bits);
# * test accuracy **at least 90% of the dense network's** (0.9 × `dense300_accuracy`; in
#   fast mode, with two epochs per run, at least 0.80).
#
# $d = 700$ at 32 bits misses the first target by far, and fewer dimensions miss the
# second. How much precision does a coordinate of $v$ need? The check counts bits and
# digits; it never times anything.

# %% nbgrader={"grade": false, "grade_id": "design-task", "locked": false, "schema_version": 3, "solution": true, "task": false}
design = {"d": None, "bits": None}  # yours: the subspace dimension and the bits per number
### BEGIN SOLUTION
design = {"d": 800, "bits": 6}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "design-task-check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Checks for the design task (no need to edit)
DESIGN_BITS = 6_000
DESIGN_ACCURACY = 0.80 if FAST else 0.9 * dense300_accuracy
assert None not in (design["d"], design["bits"]), "choose d and the bits per number"
design_d, design_b = int(design["d"]), int(design["bits"])
assert 1 <= design_d <= D300 and 1 <= design_b <= 32, f"d in [1, {D300:,}], bits in [1, 32]"
design_net = Subspace(lenet300(), design_d, seed=SEED)
ts.fit(design_net, data, epochs=EPOCHS, lr=SUBSPACE_LR, seed=SEED, quiet=True)
v_trained = design_net.v.data
low, high = float(v_trained.min()), float(v_trained.max())
level = (high - low) / (2**design_b - 1)                    # 2^b levels from low to high
design_net.v.data = (low + np.round((v_trained - low) / level) * level).astype(v_trained.dtype)
design_accuracy = ts.evaluate(design_net, *data.test)["accuracy"]
design_length = design_b * design_d + 2 * 32 + SEED_BITS   # v, its two ends, two seeds
print(f"Design task: d = {design_d:,} at {design_b} bits: {design_length:,} bits (at most "
      f"{DESIGN_BITS:,}), test accuracy {design_accuracy:.4f} after rounding (at least "
      f"{DESIGN_ACCURACY:.4f})")
assert design_length <= DESIGN_BITS, f"{design_length:,} bits > {DESIGN_BITS:,}"
assert design_accuracy >= DESIGN_ACCURACY, "below the accuracy target"

# %% [markdown]
# ## Summary
#
# * Training in a random subspace θ = θ₀ + P v asks how many free numbers a task needs.
#   P must be sparse to fit in memory (0.80 GB dense at d = 750 for LeNet-300-100; 4.7 MB
#   as a very sparse projection with 388,028 non-zeros), and its gradient is Pᵀ g — checked
#   here against a dense computation to 4e-17.
# * On `mnist-5k`, **d_int90 = 700** for LeNet-300-100 and **187** for LeNet-5, found in
#   this notebook with the CLI's settings and equal to the CLI's figures; Li et al. report
#   about 750 for fully connected networks on MNIST (checked (secondary)). Beyond d_int90
#   the curve flattens: 0.885 at d = 3,200 against 0.953 dense.
# * Magnitude pruning needs 4–8× more kept weights at the same accuracy (5,324 at 0.904;
#   2,662 just misses), and ten times more bits once its positions are paid for; but only
#   the pruned network is smaller to run.
# * All three counts — free numbers, kept weights, bits — are upper bounds on a
#   description length (Hinton & van Camp); a short description is also what Arora et al.'s
#   bound needs to say that a network generalises.
#
# Lesson 10 turns a pruned network into a small file: weight sharing to a few bits a
# weight, and the positions and values Huffman-coded.

# %%
print(f"lesson run time: {time.perf_counter() - started_lesson:.0f} s")
