# %% [markdown]
# # Lesson 05 — Lottery tickets: rewinding, re-initialisation, signs and supermasks
#
# Lesson 02 pruned a trained network and then *fine-tuned* the survivors from where training
# left them. Frankle & Carbin (ICLR 2019) asked a stranger question: after pruning, what if
# we **reset the surviving weights to the values they had before training** and train the
# sparse network again from there? Their answer, the *lottery ticket hypothesis*, and the
# experiments that tried to explain it, are the subject of this notebook.
#
# You will
#
# 1. state the hypothesis and the algorithm (train → prune 20% of each layer → rewind the
#    survivors to $\theta_0$ → retrain → repeat), and compute how many weights are left after
#    $r$ rounds;
# 2. run one round **by hand** with the library's pieces — `snapshot`, early-stopping
#    training, magnitude masks, `rewind_to` — and check that `lottery_ticket_experiment`
#    gives the same numbers;
# 3. run the full experiment over several seeds with its three **controls**: random
#    re-initialisation, a random mask, and fresh magnitudes with the *signs* of $\theta_0$;
# 4. evaluate Zhou et al.'s **supermasks**: masked but *untrained* networks that classify
#    digits far above chance;
# 5. try **late rewinding** (to the weights after $k$ steps instead of $\theta_0$);
# 6. put our numbers beside the papers', and read Liu et al.'s critique in their light;
# 7. do three exercises that check themselves, and a design task with a target.
#
# **Run time.** The default mode is the real experiment — LeNet-300-100 on `mnist-5k`,
# 14 rounds (down to 4.5% of the weights), 10 epochs per training run, 3 seeds, three
# controls, plus the late-rewinding runs: about 220 training runs, about **8 minutes on an
# otherwise idle 2-core machine**. `TINYSPARSE_FAST=1` (what the tests use) runs 3 rounds of 1 epoch with 2 seeds
# in well under a minute; its numbers are only a smoke test. (On a busy 2-core machine,
# NumPy's two BLAS threads can fight other processes for the cores and make training several
# times slower; starting Jupyter with `OPENBLAS_NUM_THREADS=1` avoids that.)
#
# **Papers.** [Frankle & Carbin
# 2019](REFERENCES.md#the-lottery-ticket-hypothesis--frankle--carbin-2019), [Zhou et al.
# 2019](REFERENCES.md#deconstructing-lottery-tickets--zhou-et-al-2019), [Liu et al.
# 2019](REFERENCES.md#rethinking-the-value-of-network-pruning--liu-et-al-2019), [Frankle
# et al.
# 2019](REFERENCES.md#stabilizing-the-lottery-ticket-hypothesis--frankle-et-al-2019),
# [Frankle et al. 2020](REFERENCES.md#linear-mode-connectivity--frankle-et-al-2020),
# [Glorot & Bengio 2010](REFERENCES.md#glorot-initialisation--glorot--bengio-2010), [Han
# et al. 2015](REFERENCES.md#learning-both-weights-and-connections--han-et-al-2015). Each
# link goes to the lesson's references page, which says what the paper contributes and how
# far each number quoted here was checked against it.

# %%
import inspect
import os
import time
from dataclasses import asdict

import tinysparse as ts  # first: it tells the BLAS threads how to wait, before NumPy loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np

import tinysparse.exercises  # the exercises' checks
from tinysparse.prune import lottery
from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
SEED = 0                                  # the seed of the step-by-step round (section 2)
SEEDS = (0, 1) if FAST else (0, 1, 2)     # the seeds of the full experiment (section 3)
ROUNDS = 3 if FAST else 14                # 14 rounds: 4.5% of the weights remain
EPOCHS = 1 if FAST else 10                # per training run
REWIND_K = 50 if FAST else 200            # late rewinding: the iteration we rewind to
RATE, OUTPUT_RATE = 0.2, 0.1              # pruned per round: hidden layers, output layer
LR, BATCH_SIZE = 1.2e-3, 60               # Frankle & Carbin's Adam recipe for LeNet-300-100
EVAL_EVERY, VALIDATION_FRACTION = 50, 0.1
print(f"{'fast' if FAST else 'full'} mode: seeds {SEEDS}, {ROUNDS} rounds, {EPOCHS} epochs "
      f"per run, late rewinding to iteration {REWIND_K}")

# %% [markdown]
# ## 1. The hypothesis and the algorithm
#
# Write $f(x;\theta)$ for a network with weights $\theta$, initialised at random to
# $\theta_0$. Trained with some optimiser, it reaches test accuracy $a$ at iteration $j$ (its
# early-stopping iteration). A **mask** $m \in \{0,1\}^{|\theta|}$ picks a subnetwork
# $f(x; m \odot \theta)$. Frankle & Carbin's **lottery ticket hypothesis**: a dense,
# randomly initialised network contains subnetworks that, **trained in isolation from their
# original initial weights** $m \odot \theta_0$, reach accuracy $a' \ge a$ in $j' \le j$
# iterations with $\lVert m \rVert_0 \ll |\theta|$ weights. Such a subnetwork is a *winning
# ticket*: it won the initialisation lottery.
#
# They found tickets by **iterative magnitude pruning with rewinding**:
#
# 1. initialise $\theta_0$ and keep a copy;
# 2. train to $\theta_j$;
# 3. prune $p = 20\%$ of the weights *still remaining* in each hidden layer, those of
#    smallest $|\theta_j|$; the output layer, which is small and sensitive, at half that
#    rate, $p_\text{out} = 10\%$;
# 4. **rewind**: set every surviving weight back to its value in $\theta_0$;
# 5. repeat 2–4.
#
# Pruning a fraction $p$ of what remains, $r$ times, leaves a fraction
#
# $$
# d_\ell(r) = (1 - p_\ell)^r
# $$
#
# of layer $\ell$ (its **density**, $1 - $ sparsity: "weights remaining", in the paper's
# words). For the whole network the layers are weighted by their sizes $n_\ell$:
#
# $$
# \text{remaining}(r) = \frac{\sum_\ell n_\ell\,(1-p_\ell)^r}{\sum_\ell n_\ell},
# \qquad n = (235{,}200,\ 30{,}000,\ 1{,}000) \text{ for LeNet-300-100's weight matrices}
# $$
#
# (biases are not pruned, and not counted). The library computes each round's target
# sparsities with `round_sparsities`:

# %%
print(inspect.getsource(lottery.round_sparsities))

# %%
lenet = ts.nn.lenet300(seed=SEED)
names = ts.prune.prunable_parameters(lenet)  # the weight matrices; biases are not pruned
sizes = {name: lenet.get_parameter(name).size for name in names}
total = sum(sizes.values())
print("prunable weights:", sizes, "total", total)

rows = []
for r in range(15):
    sparsities = lottery.round_sparsities(names, r, RATE, OUTPUT_RATE)
    for i, name in enumerate(names):
        p = OUTPUT_RATE if i == len(names) - 1 else RATE
        assert np.isclose(1 - sparsities[name], (1 - p) ** r)  # density = (1 - p)^r
    remaining = sum(sizes[n] * (1 - sparsities[n]) for n in names) / total
    rows.append([r, *(f"{1 - sparsities[n]:.2%}" for n in names), f"{remaining:.2%}"])
print(format_table(rows, headers=["round", *(f"{n} density" for n in names), "remaining"]))


# %% [markdown]
# Frankle & Carbin label their LeNet plots by the percentage of weights remaining: 100,
# 51.3, 21.1, 7.0, 3.6, 1.9… Those are exactly rounds 0, 3, 7, 12, 15 and 18 of this
# schedule — the slower rate of the output layer is why round 7 leaves 21.1% rather than
# $0.8^7 = 20.97\%$. The percentages quoted below (21.1%, 13.5%, 3.6%) are rounds 7, 9 and 15:

# %%
def remaining_by_formula(r):
    return (sum(sizes[n] for n in names[:-1]) * (1 - RATE) ** r
            + sizes[names[-1]] * (1 - OUTPUT_RATE) ** r) / total


for r, quoted in ((3, 51.3), (7, 21.1), (9, 13.5), (12, 7.0), (15, 3.6), (18, 1.9)):
    print(f"round {r:2d}: {100 * remaining_by_formula(r):5.2f}% remaining "
          f"(paper's label {quoted}%)")
    assert round(100 * remaining_by_formula(r), 1) == quoted

# %% [markdown]
# ## 2. One round by hand
#
# ### The data, and a validation set held out of the training set
#
# Frankle & Carbin report the test accuracy **at the early-stopping iteration**: the
# iteration at which the loss on a *validation* set is lowest. Choosing an iteration is a
# decision made from data, so that data must not be the test set (lesson 01, section 3). We
# hold out 10% of the 4,000 training digits with `ts.data.train_validation_split`, seeded,
# exactly as `lottery_ticket_experiment` does.

# %%
data = ts.load_dataset("mnist-5k")
train, validation = ts.data.train_validation_split(*data.train, VALIDATION_FRACTION, SEED)
print(f"train {len(train[0])}, validation {len(validation[0])}, test {len(data.x_test)}")
print(f"{len(train[0]) // BATCH_SIZE} iterations (mini-batches of {BATCH_SIZE}) per epoch, "
      f"{EPOCHS * len(train[0]) // BATCH_SIZE} per training run")

# %% [markdown]
# ### Step 1: initialise, and keep $\theta_0$
#
# `snapshot(model, "init")` copies every parameter into `model.snapshots["init"]` (a dict
# of NumPy arrays that `ts.save` writes along with the model); `rewind_to(model, "init")`
# loads it back. Loading goes through `load_state_dict`, which **re-applies the masks**, so
# after a rewind the kept weights hold their $\theta_0$ values and the pruned ones stay zero.

# %%
print(inspect.getsource(lottery.snapshot))
print(inspect.getsource(lottery.rewind_to))

# %%
model = ts.build_model("lenet300", seed=SEED, init="glorot_normal")
theta_0 = lottery.snapshot(model, "init")
probe = ts.prune.clone(model)  # a copy of θ₀, to look inside the training run below
print({name: values.shape for name, values in theta_0.items()})
print("snapshots:", list(model.snapshots))

# %% [markdown]
# ### Step 2: train, and record the early-stopping iteration
#
# `train_with_early_stop_record` trains with Adam (learning rate $1.2\cdot10^{-3}$, batch
# 60), measures the validation loss every `eval_every` = 50 iterations (and at the end of
# every epoch), and reports
#
# * `early_stop_iteration` — the iteration $j^\ast = \arg\min_j L_\text{val}(\theta_j)$;
# * `test_accuracy` — the test accuracy of $\theta_{j^\ast}$ (that is the number the paper
#   plots);
# * `final_test_accuracy` — the test accuracy at the end of training.
#
# The model keeps the weights from the **end** of training, and those are what the next
# pruning step ranks by magnitude:

# %%
print(inspect.getsource(lottery.train_with_early_stop_record))

# %%
started = time.perf_counter()
dense = lottery.train_with_early_stop_record(model, train, validation, data.test, EPOCHS, LR,
                                             BATCH_SIZE, SEED, EVAL_EVERY)
dense_final = model.state_dict()  # θ_j: the weights we prune by (and supermasks use, section 4)
print(f"dense: {dense}  ({time.perf_counter() - started:.1f} s)")

# %% [markdown]
# The function is a thin wrapper around `ts.fit(..., validation=..., eval_every=...,
# restore_best=True)`. Running that same call on our copy of $\theta_0$ shows the validation
# curve it chose the iteration from — and, because everything is seeded, the very same
# iteration:

# %%
history = ts.fit(probe, train, epochs=EPOCHS, batch_size=BATCH_SIZE, optimizer="adam", lr=LR,
                 validation=validation, eval_every=EVAL_EVERY, restore_best=True, seed=SEED,
                 quiet=True)
steps = [e["step"] for e in history.evaluations]
val_loss = [e["val_loss"] for e in history.evaluations]

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(steps, val_loss, marker=".", label="validation loss")
ax.axvline(history.best_step, color="C3", linestyle="--",
           label=f"early-stopping iteration {history.best_step}")
ax.set(xlabel="iteration", ylabel="validation loss", title="Dense LeNet-300-100, seed 0")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

assert history.best_step == dense.early_stop_iteration
assert ts.evaluate(probe, *data.test)["accuracy"] == dense.test_accuracy  # θ_{j*} restored

# %% [markdown]
# With 4,000 digits the network soon starts to overfit: the validation loss turns up again
# well before the end of training, and the early-stopping iteration marks the bottom of the
# curve. Note its resolution: we only look every 50 iterations.
#
# ### Step 3: prune 20% of each layer by magnitude (the output layer 10%)
#
# Round 1's target sparsities come from `round_sparsities`; the scores are $|\theta_j|$; the
# shared selection step `ts.prune.layer_masks` drops the lowest `round(s · n)` scores of each
# layer, treating weights that are already pruned as the first to go (in round 1 there are
# none), so successive masks only ever add zeros. `apply_masks` attaches the masks to the
# layers, which zeroes the pruned weights and keeps them at zero from then on.

# %%
sparsities_1 = lottery.round_sparsities(names, 1, RATE, OUTPUT_RATE)
scores = {name: np.abs(model.get_parameter(name).data) for name in names}
masks = ts.prune.layer_masks(scores, sparsities_1, ts.prune.current_masks(model, names))
ts.prune.apply_masks(model, masks)

rows = [[name, masks[name].size, masks[name].kept, f"{masks[name].density:.2%}",
         ts.prune.threshold({name: scores[name]}, {name: masks[name]})] for name in names]
print(format_table(rows, headers=["parameter", "weights", "kept", "density",
                                  "largest pruned |w|"]))
remaining_1 = sum(m.kept for m in masks.values()) / total
print(f"remaining: {remaining_1:.4%}")

# %% [markdown]
# ### Step 4: rewind the survivors to $\theta_0$
#
# This is the whole difference from lesson 02's prune-and-fine-tune: the trained values are
# thrown away, only the mask survives. Every kept weight must equal its $\theta_0$ value
# *exactly* (not approximately: it is a copy), and every pruned weight must be zero.

# %%
lottery.rewind_to(model, "init")
for name in names:
    weight, keep = model.get_parameter(name).data, masks[name].keep
    assert np.array_equal(weight[keep], theta_0[name][keep]), f"{name}: kept weights ≠ θ₀"
    assert np.all(weight[~keep] == 0), f"{name}: a pruned weight is not zero"
    print(f"{name}: {keep.sum():6d} weights back at θ₀, {(~keep).sum():5d} at zero")

# %% [markdown]
# ### Step 5: retrain the ticket
#
# Same data, same batch order (the same training seed), same number of iterations — only
# the starting point $m \odot \theta_0$ differs from the dense run.

# %%
round_1 = lottery.train_with_early_stop_record(model, train, validation, data.test, EPOCHS,
                                               LR, BATCH_SIZE, SEED, EVAL_EVERY)
print(f"dense   (100.00% remaining): {dense}")
print(f"round 1 ({remaining_1:.2%} remaining): {round_1}")

# %% [markdown]
# ### The library does the same
#
# `lottery_ticket_experiment` is these five steps in a loop, plus the controls of section 3.
# Here is the loop; then one round of it with the same seed, which must reproduce our numbers
# exactly — same split, same $\theta_0$, same batches, same masks:

# %%
source = inspect.getsource(lottery.lottery_ticket_experiment)
print(source[source.index("    for r in range(1, rounds + 1):"):
             source.index("        results.append(record)")])

# %%
check = lottery.lottery_ticket_experiment(
    data, rounds=1, epochs=EPOCHS, rate=RATE, output_rate=OUTPUT_RATE, lr=LR,
    batch_size=BATCH_SIZE, seed=SEED, controls=(), supermasks=(),
    validation_fraction=VALIDATION_FRACTION, eval_every=EVAL_EVERY)
print("library, round 0:", check[0].results["ticket"])
print("library, round 1:", check[1].results["ticket"])
assert check[0].results["ticket"] == asdict(dense)
assert check[1].results["ticket"] == asdict(round_1)
assert check[1].remaining == remaining_1
print("same seed, same numbers: the library's round 1 is our round 1")

# %% [markdown]
# ## 3. The full experiment, and the controls
#
# A ticket that beats the dense network could mean two different things. Perhaps the mask
# found a good **architecture** (which connections exist), and any weights would do; or
# perhaps the **initial values** $\theta_0$ on that architecture matter. Three controls, each
# trained exactly like the ticket in every round, pull these apart:
#
# | variant | weights at the start of training | what it tests |
# |---|---|---|
# | `ticket` | $m \odot \theta_0$ | the lottery ticket |
# | `reinit` | $m \odot \theta'$, $\;\theta'$ a fresh Glorot-normal draw | does $\theta_0$ matter, given the mask? (Frankle & Carbin) |
# | `random_mask` | $m' \odot \theta_0$, $\;m'$ random with the same per-layer counts | does the mask matter, given $\theta_0$? |
# | `sign` | $m \odot \lvert\theta'\rvert \operatorname{sign}(\theta_0)$ | is it the *signs* of $\theta_0$? (Zhou et al. 2019) |
#
# The masks of round $r$ come from the ticket's own training in round $r-1$; the controls
# borrow them (or, for `random_mask`, only their per-layer counts). Every control gets its own
# seeded random draw in every round, so the whole experiment is deterministic.
#
# We repeat it for each seed in `SEEDS` (the seed sets $\theta_0$, the validation split and
# the batch order) and `summarize` the runs into mean ± standard deviation over seeds. In the
# default mode this cell is the long one: about 57 training runs of 10 epochs per seed.
#
# A detail you may notice in the timings: once a layer's density falls to
# `ts.sparse.density_threshold()` (0.2) or below — the hidden layers from round 8 on — its
# forward and backward passes run on tinysparse's sparse kernels instead of the dense masked
# product (lesson 09). The results are the same up to float rounding; only the speed differs.

# %%
started = time.perf_counter()
runs = [lottery.lottery_ticket_experiment(
            data, rounds=ROUNDS, epochs=EPOCHS, rate=RATE, output_rate=OUTPUT_RATE, lr=LR,
            batch_size=BATCH_SIZE, seed=seed, validation_fraction=VALIDATION_FRACTION,
            eval_every=EVAL_EVERY, progress=print)
        for seed in SEEDS]
summary = lottery.summarize(runs)
print(f"{len(SEEDS)} seeds x {ROUNDS} rounds in {time.perf_counter() - started:.0f} s")

# %%
VARIANTS = ["ticket", "reinit", "random_mask", "sign"]


def cell(stats, key="test_accuracy"):
    return f"{stats[key + '_mean']:.4f} ± {stats[key + '_std']:.4f}"


rows = []
for row in summary:
    rows.append([row["round"], f"{row['remaining']:.2%}",
                 *(f"{cell(row[v])} @{row[v]['early_stop_iteration_mean']:.0f}"
                   if v in row else "" for v in VARIANTS)])
print("test accuracy at the early-stopping iteration, mean ± std over seeds "
      "(@ early-stopping iteration, mean)")
print(format_table(rows, headers=["round", "remaining", *VARIANTS]))

# %% [markdown]
# The "±" is the sample standard deviation over the seeds as `summarize` computes it
# (dividing by the number of seeds minus one, the cautious choice with only 3 seeds). One
# test digit is 0.1 percentage points.
#
# Frankle & Carbin plot accuracy against the fraction of weights remaining on a log axis,
# running from dense on the left to sparse on the right. We do the same:

# %%
STYLE = {"ticket": ("C0", "o", "ticket (rewind to θ₀)"),
         "reinit": ("C3", "s", "reinit (same mask, new weights)"),
         "random_mask": ("C2", "^", "random mask (θ₀)"),
         "sign": ("C1", "D", "sign (new magnitudes, signs of θ₀)")}


def percent_axis(ax, rows):
    # log x-axis of % remaining, reversed like the paper's figures (dense on the left)
    ax.set_xscale("log")
    ticks = [100 * r["remaining"] for r in rows][:: max(1, len(rows) // 7)]
    ax.set_xticks(ticks, [f"{t:.1f}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("% of weights remaining (log scale)")
    ax.grid(alpha=0.3)


def variant_curve(variant, key):
    present = [r for r in summary if variant in r]
    x = [100 * r["remaining"] for r in present]
    return x, [r[variant][key + "_mean"] for r in present], [r[variant][key + "_std"]
                                                            for r in present]


ITERATIONS = EPOCHS * int(np.ceil(len(train[0]) / BATCH_SIZE))  # per training run
fig, (ax_acc, ax_iter) = plt.subplots(1, 2, figsize=(13, 4.5))
dense_stats = summary[0]["ticket"]
for variant in VARIANTS:
    color, marker, label = STYLE[variant]
    for ax, key in ((ax_acc, "test_accuracy"), (ax_iter, "early_stop_iteration")):
        x, mean, std = variant_curve(variant, key)
        ax.errorbar(x, mean, yerr=std, color=color, marker=marker, markersize=4, capsize=3,
                    label=label)
ax_acc.axhline(dense_stats["test_accuracy_mean"], color="gray", linestyle="--", label="dense")
ax_acc.set(ylabel="test accuracy at early stopping",
           title=f"LeNet-300-100 on mnist-5k, {len(SEEDS)} seeds (mean ± std)")
ax_iter.set(ylabel="early-stopping iteration",
            title=f"Iteration of minimum validation loss (of {ITERATIONS} iterations)")
for ax in (ax_acc, ax_iter):
    percent_axis(ax, summary)
ax_acc.legend(fontsize=8)
plt.show()


# %% [markdown]
# How to read the two panels (the statements below are checked by the next cell in the
# default mode; in fast mode there are only three rounds of one epoch, so the
# curves barely separate):
#
# * **The ticket** stays close to the dense network all the way down to a few percent of
#   the weights. Its early-stopping iteration first moves *earlier* as the network is pruned
#   — the ticket learns faster — and comes back later only at the highest sparsities.
# * **Random re-initialisation** keeps the ticket's mask but not its values, and falls
#   steadily behind; by the last round the gap is several times the spread over seeds. Its
#   validation loss bottoms out later, often near the end of training.
# * **A random mask** on $\theta_0$ does worst at high sparsity: which connections survive
#   matters too.
# * **Keeping only the signs** of $\theta_0$ recovers nearly all of the ticket's advantage
#   over `reinit`: Zhou et al.'s observation that what the ticket inherits from $\theta_0$ is
#   mostly a sign per weight.

# %%
def at(round_index, variant, key="test_accuracy"):
    stats = summary[round_index][variant]
    return stats[key + "_mean"], stats[key + "_std"]


last = summary[-1]
dense_accuracy = dense_stats["test_accuracy_mean"]
for row in summary:
    assert row["ticket"]["test_accuracy_mean"] > 0.85, row
print(f"last round ({last['remaining']:.2%} remaining): "
      + ", ".join(f"{v} {cell(last[v])}" for v in VARIANTS) + f"; dense {dense_accuracy:.4f}")

if not FAST:
    (ticket, ticket_std), (reinit, reinit_std) = at(-1, "ticket"), at(-1, "reinit")
    (random_mask, random_std), (sign, _) = at(-1, "random_mask"), at(-1, "sign")
    assert ticket - reinit > ticket_std + reinit_std, "the ticket should beat its re-init"
    assert ticket - random_mask > ticket_std + random_std, "... and a random mask"
    assert sign > reinit and sign > ticket - 0.01, "signs of θ₀ recover most of the gap"
    assert reinit < dense_accuracy - 0.02, "re-initialised tickets fall behind the dense net"
    assert all(r["ticket"]["test_accuracy_mean"] > dense_accuracy - 0.015 for r in summary)
    r21 = min(range(len(summary)), key=lambda i: abs(np.log(summary[i]["remaining"] / 0.211)))
    assert at(r21, "ticket", "early_stop_iteration")[0] < at(r21, "reinit",
                                                             "early_stop_iteration")[0]
    assert at(r21, "ticket", "early_stop_iteration")[0] < at(0, "ticket",
                                                             "early_stop_iteration")[0]
    assert at(-1, "ticket", "early_stop_iteration")[0] > at(r21, "ticket",
                                                            "early_stop_iteration")[0]
    assert reinit > random_mask, "at high sparsity the mask itself carries information"
    print("all checks on the full run passed")

# %% [markdown]
# ## 4. Supermasks: accuracy without training
#
# Zhou et al. (2019), "Deconstructing lottery tickets", went one step further: take the
# **untrained** $\theta_0$, apply a mask, and evaluate — no training at all. A random
# network classifies at chance (10% for ten digits). But a mask chosen with knowledge of the
# *trained* weights $\theta_j$ does far better; they called such a mask a **supermask**. Two
# of their criteria, which keep the weights with the largest score:
#
# $$
# \text{large\_final}: \; s = |\theta_j|, \qquad\qquad
# \text{magnitude\_increase}: \; s = |\theta_j| - |\theta_0| .
# $$
#
# `lottery_ticket_experiment` evaluates both in every round, at that round's per-layer
# sparsities, scoring with the **dense** run's final weights (a one-shot mask, not the
# iterative ticket's):

# %%
print(inspect.getsource(lottery.supermask_masks))


# %% [markdown]
# We still have the dense run's $\theta_0$ and final weights of seed 0 from section 2 (the
# same run as seed 0 of the experiment), so we can recompute every supermask number of seed
# 0 by hand: build the network at $\theta_0$, mask it, evaluate.

# %%
def untrained(masks):
    network = ts.build_model("lenet300", seed=SEED)
    network.load_state_dict(theta_0)
    ts.prune.apply_masks(network, masks)
    return network


chance = ts.evaluate(untrained({}), *data.test)["accuracy"]
print(f"θ₀ without a mask, untrained: test accuracy {chance:.3f}")

seed_0 = runs[SEEDS.index(SEED)]
for record in seed_0[1:]:
    sparsities = lottery.round_sparsities(names, record.round, RATE, OUTPUT_RATE)
    accuracies = {}
    for criterion in lottery.SUPERMASK_CRITERIA:
        supermask = lottery.supermask_masks(dense_final, theta_0, sparsities, criterion)
        accuracies[criterion] = ts.evaluate(untrained(supermask), *data.test)["accuracy"]
        assert accuracies[criterion] == record.results[f"supermask_{criterion}"]["test_accuracy"]
    print(f"round {record.round:2d}, {record.remaining:6.2%} remaining: "
          + ", ".join(f"{c} {a:.3f}" for c, a in accuracies.items()))
print("recomputed by hand: the same numbers as the experiment's")

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.5))
for criterion, color in zip(lottery.SUPERMASK_CRITERIA, ("C4", "C5")):
    x, mean, std = variant_curve(f"supermask_{criterion}", "test_accuracy")
    ax.errorbar(x, mean, yerr=std, color=color, marker="o", markersize=4, capsize=3,
                label=f"supermask {criterion} (untrained θ₀)")
ax.axhline(0.86, color="gray", linestyle=":", label="Zhou et al.: 86% on MNIST (quoted)")
ax.axhline(0.10, color="black", linestyle="--", label="chance (10%)")
ax.set(ylabel="test accuracy, no training", ylim=(0, 1),
       title=f"Supermasks on θ₀, {len(SEEDS)} seeds (mean ± std)")
percent_axis(ax, summary[1:])
ax.legend(fontsize=8, loc="lower left")
plt.show()

best_supermask = max((row[f"supermask_{c}"]["test_accuracy_mean"], c, row["remaining"])
                     for row in summary[1:] for c in lottery.SUPERMASK_CRITERIA)
print(f"best supermask (mean over seeds): {best_supermask[1]} at {best_supermask[2]:.1%} "
      f"remaining, {best_supermask[0]:.3f} test accuracy, untrained")
assert best_supermask[0] > (0.3 if FAST else 0.7), best_supermask
assert all(row[f"supermask_{c}"]["test_accuracy_mean"] > (0.15 if FAST else 0.2)
           for row in summary[1:] for c in lottery.SUPERMASK_CRITERIA)

# %% [markdown]
# Why can a mask alone classify? A mask can do two things to a weight: keep it or set it to
# zero. Setting a weight to zero is a big move *towards* the trained network if training was
# going to shrink that weight anyway, or flip its sign. `large_final` keeps the weights that
# ended far from zero — and those mostly kept the sign they started with. The cell below
# measures that on seed 0: among the weights a `large_final` mask keeps, almost every one has
# $\operatorname{sign}(\theta_0) = \operatorname{sign}(\theta_j)$, far more than among the
# weights it prunes. The masked $\theta_0$ thus points roughly where the trained network
# points. This is also why the `sign` control of section 3 works.
#
# There is a sweet spot in density: with many weights kept, the mask also keeps plenty of
# weights whose random initial values do not match the trained ones; with very few, there is
# too little network left to classify with. In the default run the two criteria also trade
# places: `magnitude_increase` is the better one when most weights are kept, `large_final`
# once fewer than about half remain. (Zhou et al. went further and *learned*
# supermasks directly by gradient descent on a score per weight; we do not do that here.)

# %%
rows = []
for r in sorted({1, min(7, ROUNDS), ROUNDS}):
    sparsities = lottery.round_sparsities(names, r, RATE, OUTPUT_RATE)
    supermask = lottery.supermask_masks(dense_final, theta_0, sparsities, "large_final")
    for name in names:
        same_sign = np.sign(dense_final[name]) == np.sign(theta_0[name])
        keep = supermask[name].keep
        rows.append([r, name, f"{supermask[name].density:.1%}", f"{same_sign[keep].mean():.1%}",
                     f"{same_sign[~keep].mean():.1%}",
                     float(np.abs(theta_0[name][keep]).mean()
                           / np.abs(theta_0[name][~keep]).mean())])
print("seed 0: does training keep the sign of θ₀? (large_final mask of the dense run)")
print(format_table(rows, headers=["round", "parameter", "density", "same sign: kept",
                                  "same sign: pruned", "mean |θ₀| kept / pruned"], precision=2))

# %% [markdown]
# The last column says more: the weights that end up largest were already larger than
# average at $\theta_0$. Magnitude pruning after training partly selects weights that were
# big from the start, with the right sign — one reason why rewinding to $\theta_0$ works.
#
# ## 5. Late rewinding
#
# For deeper networks (VGG, ResNet) Frankle and colleagues later found that rewinding all the
# way to $\theta_0$ stops working, but rewinding to the weights $\theta_k$ after a small number
# of iterations $k$ of the dense run recovers good tickets ("late rewinding": Frankle,
# Dziugaite, Roy & Carbin, 2019–2020). `lottery_ticket_experiment(..., rewind_iteration=k)`
# snapshots $\theta_k$ during the dense run and rewinds to it in every round. Each retraining
# still runs for the full number of epochs, and its early-stopping iteration is counted
# **from the rewind point**, so the iterations since $\theta_0$ are $k + j^\ast$.
#
# We run only the ticket (no controls, no supermasks) with $k$ = `REWIND_K`, for the same
# seeds; round 0, the dense run, is identical to that of section 3:

# %%
started = time.perf_counter()
late = [lottery.lottery_ticket_experiment(
            data, rounds=ROUNDS, epochs=EPOCHS, rate=RATE, output_rate=OUTPUT_RATE, lr=LR,
            batch_size=BATCH_SIZE, seed=seed, controls=(), supermasks=(),
            validation_fraction=VALIDATION_FRACTION, eval_every=EVAL_EVERY,
            rewind_iteration=REWIND_K)
        for seed in SEEDS]
late_summary = lottery.summarize(late)
print(f"late rewinding to iteration {REWIND_K}: {len(SEEDS)} seeds in "
      f"{time.perf_counter() - started:.0f} s")
for early_run, late_run in zip(runs, late):
    assert early_run[0].results == late_run[0].results  # the same dense run


# %%
def closest_round(fraction, rows=summary):
    # index of the round whose remaining fraction is nearest on a log scale
    return min(range(len(rows)), key=lambda i: abs(np.log(rows[i]["remaining"] / fraction)))


rows = []
for r in sorted({closest_round(f) for f in (0.513, 0.211, 0.045)}):
    k0, kk = summary[r]["ticket"], late_summary[r]["ticket"]
    rows.append([r, f"{summary[r]['remaining']:.1%}", cell(k0),
                 f"{k0['early_stop_iteration_mean']:.0f}", cell(kk),
                 f"{kk['early_stop_iteration_mean']:.0f}",
                 f"{REWIND_K + kk['early_stop_iteration_mean']:.0f}"])
print(format_table(rows, headers=["round", "remaining", "rewind to θ₀", "j*",
                                  f"rewind to θ_{REWIND_K}", "j* (from θ_k)", "k + j*"]))
assert all(row["ticket"]["test_accuracy_mean"] > 0.85 for row in late_summary)


# %% [markdown]
# Read the table with the seed-to-seed spread in mind. On a network as small and shallow as
# LeNet-300-100, rewinding to $\theta_0$ already works, so late rewinding has little to
# rescue. In the default run, starting from $\theta_k$ is a few tenths of a point ahead in the
# sparser rounds: a couple of standard deviations over three seeds, on 1,000 test digits —
# suggestive, not conclusive. The early-stopping columns show the other effect: counted from
# the rewind point, training from $\theta_k$ reaches its best validation loss sooner,
# because $k$ iterations of progress were already made by the dense run. To compare total
# training from $\theta_0$, look at the last column, $k + j^\ast$.
#
# ## 6. Beside the papers
#
# The **quoted** column comes from the papers (Frankle & Carbin 2019 on the full MNIST, 50,000
# iterations per run; Zhou et al. 2019) and from the tinysparse design notes (the same
# experiment on `mnist-5k` in PyTorch, 3 seeds). The **ours** column is measured above, at
# the round whose remaining fraction is closest to the paper's.

# %%
def pp(difference):
    return f"{100 * difference:+.1f} pp"


def where(r):
    return f"{summary[r]['remaining']:.1%}"


def sooner(ratio):
    return f"{abs(1 - ratio):.0%} {'earlier' if ratio <= 1 else 'later'}"


r21, r13, r4 = closest_round(0.211), closest_round(0.135), closest_round(0.045)
es = {v: {r: at(r, v, "early_stop_iteration")[0] for r in (r21, r13, r4)} for v in VARIANTS}
es_dense = at(0, "ticket", "early_stop_iteration")[0]
acc = {v: {r: at(r, v)[0] for r in (r21, r13, r4)} for v in VARIANTS}

rows = [
    ["ticket's early-stop iteration vs dense, at ~21%", "38% earlier (F&C)",
     sooner(es["ticket"][r21] / es_dense), where(r21)],
    ["ticket accuracy − dense, at 13.5%", "+0.3 pp (F&C)", pp(acc["ticket"][r13]
                                                               - dense_accuracy), where(r13)],
    ["re-init accuracy − dense, at 21.1% (degrades from here)", "(F&C)",
     pp(acc["reinit"][r21] - dense_accuracy), where(r21)],
    ["re-init's / ticket's early-stop iteration, at 21%", "2.51x (F&C)",
     f"{es['reinit'][r21] / es['ticket'][r21]:.2f}x", where(r21)],
    ["ticket − re-init accuracy, at 21%", "+0.5 pp (F&C)",
     pp(acc["ticket"][r21] - acc["reinit"][r21]), where(r21)],
    ["best supermask, untrained", "86% on MNIST (Zhou et al.)",
     f"{best_supermask[0]:.1%} ({best_supermask[1]})", f"{best_supermask[2]:.1%}"],
    ["ticket at 4.5%", "0.926 ± 0.002 (PyTorch, mnist-5k)", cell(summary[r4]["ticket"]),
     where(r4)],
    ["random re-init at 4.5%", "0.905 ± 0.003 (PyTorch, mnist-5k)",
     cell(summary[r4]["reinit"]), where(r4)],
    ["dense", "≈ 0.929 (PyTorch, mnist-5k)", cell(summary[0]["ticket"]), "100.0%"],
]
print(format_table(rows, headers=["claim", "quoted", "ours (measured)", "ours at"]))
if FAST:
    print("\nfast mode: only", ROUNDS, "rounds, so every 'ours at' is the sparsest round run")

# %% [markdown]
# How to read the table:
#
# * **Different data, different budget.** Frankle & Carbin train on 55,000 MNIST digits for
#   50,000 iterations and validate on 5,000; we train on 3,600 digits for 10 epochs (600
#   iterations) and validate on 400. Our test set is 1,000 digits, so one digit is 0.1 pp and
#   a single run's binomial standard error is about 0.75 pp; averaging three seeds helps, but
#   differences of a few tenths of a point are not resolved.
# * **Early-stopping iterations are coarse and capped.** We validate every 50 iterations,
#   and no run can stop later than iteration 600. Randomly re-initialised networks often
#   reach their minimum near that cap, so the re-init/ticket ratio of iterations is a *lower
#   bound* of what longer training would show.
# * **Our tickets match the dense network rather than beat it.** In the default run the
#   ticket stays within about a point of dense at every round (checked in section 3), but not
#   clearly above it; Frankle & Carbin's +0.3 pp would be three of our 1,000 test digits.
# * **Absolute accuracies differ between frameworks**: the PyTorch orientation run and ours
#   draw different initial weights and batches and use different arithmetic. What should
#   transfer is the *gap* between the ticket and its re-initialisation at 4.5%: compare it in
#   the two rows above.
# * Zhou et al.'s 86% is for their best mask criterion on their fully connected MNIST
#   network trained on the full MNIST, and (by accounts of the paper we could not check
#   against its text) with the kept weights replaced by a constant of their sign; on the
#   raw $\theta_0$ the same masks are reported near 80%. We evaluate the two criteria the
#   library implements on the raw $\theta_0$, with masks from a network trained on
#   `mnist-5k`.
# * Frankle & Carbin's figures are those of the ICLR 2019 version of the paper (an earlier
#   draft printed slightly different ones).
# * **Reproducibility.** Every number above is fixed by the seeds: rerun the notebook and you
#   get the same digits on the same machine. With a different number of BLAS threads (or
#   another BLAS library), matrix products add in a different order, the last bits of the
#   weights differ and, after thousands of steps, so do the last digits of the accuracies. The
#   command `tinysparse lottery --rounds 14 --seeds 3` reruns the experiment of section 3 from
#   a terminal and prints the same kind of table.
#
# ## 7. Liu et al.'s critique — and what our re-init control says
#
# Liu, Sun, Zhou, Huang & Darrell ("Rethinking the value of network pruning", ICLR 2019) trained
# pruned networks **from scratch**, with fresh random weights, and compared them with the
# usual prune-then-fine-tune. For **structured** pruning — removing whole neurons, channels
# or filters, so that what is left is simply a smaller dense network — training the pruned
# architecture from scratch matched fine-tuning. Their reading: such pruning is really an
# **architecture search**; the inherited weights add nothing. (They also reported that on
# larger CIFAR-10 networks trained with the usual, larger learning rate, the winning-ticket
# initialisation brought no advantage over a random one; late rewinding, section 5, was in
# part the answer.)
#
# Our `reinit` control is exactly "train the pruned architecture from scratch", but for an
# **unstructured** mask: each layer keeps an irregular subset of its connections. On
# LeNet-300-100 it says something different from Liu et al.'s structured result — the
# initial values matter:

# %%
rows = []
for r, row in enumerate(summary[1:], start=1):
    rows.append([r, f"{row['remaining']:.1%}", pp(at(r, "ticket")[0] - at(r, "reinit")[0]),
                 pp(at(r, "reinit")[0] - at(r, "random_mask")[0]),
                 pp(at(r, "ticket")[0] - at(r, "sign")[0])])
print(format_table(rows, headers=["round", "remaining", "ticket − reinit (values of θ₀)",
                                  "reinit − random mask (the mask)",
                                  "ticket − sign (magnitudes of θ₀)"]))


# %% [markdown]
# Three columns, three questions:
#
# * **ticket − reinit**: what the values of $\theta_0$ are worth on a fixed mask. Under a
#   point at low sparsity — there, the pruned net is still big enough for any initialisation
#   — and growing to about two points at the highest sparsities. For *unstructured* masks found by
#   iterative magnitude pruning with rewinding, training the architecture from scratch does
#   **not** match the ticket here. This does not contradict Liu et al.: a mask and its
#   $\theta_0$ are found *together* (the mask keeps the weights that grew from their initial
#   values), so a re-initialisation breaks that pairing, which a structured, smaller dense
#   network does not have.
# * **reinit − random mask**: what the mask is worth beyond its per-layer counts (with
#   fresh weights on one side and $\theta_0$ on the other). About zero at moderate sparsity,
#   positive — half a point to a point — in the sparsest rounds: there the *architecture* the mask
#   encodes carries information too. That is Liu et al.'s point, and it holds here as well.
# * **ticket − sign**: what the magnitudes of $\theta_0$ add once the signs are kept. A few
#   tenths of a point: most of what a ticket inherits is a sign per weight (Zhou et al.).
#
# (As everywhere in this notebook, these readings are of the default run; in fast mode the
# three columns are mostly noise.)
#
# ## 8. Exercises
#
# Three exercises and a design task. Each exercise asks for a **function**; the cell
# after it checks your function on this notebook's networks and then on inputs this text
# never shows (hidden tests, added back when a teacher grades the notebook), with the
# library function that would answer it switched off while the checks run.
#
# The cells you fill in hold **our solution, between two marker comments, so that the
# notebook runs top to bottom — try it yourself first**. In the student edition
# (`tinysparse course release DIR`) they read `# YOUR CODE HERE`; `tinysparse course grade
# NOTEBOOK` scores a completed notebook.
#
# ### Exercise 1 — the sign-preserving initialisation
#
# Write `my_sign_preserving_state(reference, seed)`: for every weight matrix of `reference`
# (a state dict such as `theta_0`, name → NumPy array), draw fresh Glorot-normal values with
# `ts.nn.init.get_initializer("glorot_normal")(shape, rng)` and
# `rng = np.random.default_rng(seed)`, keep their **magnitudes** and give them the **signs**
# of `reference`; copy biases (1-D arrays) unchanged. The same seed must give the same
# state. The checks test that your weights have the signs of the reference everywhere and
# that their magnitudes have the same distribution as those of `lottery.random_init_state`
# (a two-sample Kolmogorov–Smirnov distance).

# %% nbgrader={"grade": false, "grade_id": "exercise-1", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_sign_preserving_state(reference, seed, init="glorot_normal"):
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    draw = ts.nn.init.get_initializer(init)
    state = {}
    for name, values in reference.items():
        if values.ndim > 1:  # a weight matrix: fresh magnitude, the sign of the reference
            state[name] = np.abs(draw(values.shape, rng)) * np.sign(values)
        else:                # a bias: unchanged
            state[name] = np.array(values, copy=True)
    return state
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 1 (no need to edit)
def ks_distance(a, b):
    # largest gap between the two empirical distribution functions
    a, b = np.sort(a.ravel()), np.sort(b.ravel())
    grid = np.concatenate([a, b])
    return np.max(np.abs(np.searchsorted(a, grid, side="right") / a.size
                         - np.searchsorted(b, grid, side="right") / b.size))


def check_sign_preserving_state(reference, seed, fresh, quiet=False):
    """Your state for ``reference`` against its signs and against the magnitudes of
    ``fresh``, a ``random_init_state`` of the same shapes (the library's answer is off)."""
    with ts.exercises.switched_off(lottery, "sign_preserving_state"), \
            ts.exercises.switched_off(ts.prune, "sign_preserving_state"):
        mine = my_sign_preserving_state(reference, seed)
        again = my_sign_preserving_state(reference, seed)
    assert set(mine) == set(reference), "return every parameter of the reference"
    for name in reference:
        assert np.array_equal(mine[name], again[name]), f"{name}: the same seed, another state"
        if reference[name].ndim == 1:
            assert np.array_equal(mine[name], reference[name]), f"{name}: keep the biases"
            continue
        assert mine[name].shape == reference[name].shape, f"{name}: wrong shape"
        assert np.all(np.sign(mine[name]) == np.sign(reference[name])), f"{name}: wrong signs"
        assert not np.allclose(np.abs(mine[name]), np.abs(reference[name])), (
            f"{name}: the magnitudes should be fresh, not the reference's")
        n, m = mine[name].size, fresh[name].size
        distance = ks_distance(np.abs(mine[name]), np.abs(fresh[name]))
        limit = 1.95 * np.sqrt((n + m) / (n * m))  # the KS test's 0.1% critical value
        if not quiet:
            print(f"{name}: KS distance of |w| to random_init_state {distance:.4f} "
                  f"(limit {limit:.4f})")
        assert distance < limit, f"{name}: magnitudes not Glorot-normal-like"
    return mine


fresh = lottery.random_init_state(ts.nn.lenet300(seed=SEED), seed=7)  # another seed
mine = check_sign_preserving_state(theta_0, 123, fresh)
print("Exercise 1: visible checks passed")
### BEGIN HIDDEN TESTS
hidden_model = ts.nn.mlp([60, 45, 30, 4], seed=11)
hidden_rng = np.random.default_rng(31)
hidden_reference = {name: (3 * hidden_rng.laplace(size=shape) if len(shape) > 1
                           else hidden_rng.normal(size=shape))  # biases that are not zero
                    for name, shape in hidden_model.state_shapes().items()}
hidden_fresh = lottery.random_init_state(hidden_model, seed=5)
hidden_a = check_sign_preserving_state(hidden_reference, 2024, hidden_fresh, quiet=True)
hidden_b = check_sign_preserving_state(hidden_reference, 2025, hidden_fresh, quiet=True)
assert not np.array_equal(hidden_a["fc1.weight"], hidden_b["fc1.weight"]), "ignores the seed"
### END HIDDEN TESTS


# %% [markdown]
# ### Exercise 2 — how much is left after $r$ rounds?
#
# Write `my_remaining_after(r, layer_sizes, rate, output_rate)`: the fraction of a
# network's weights remaining after $r$ rounds of the schedule of section 1, from its layer
# sizes alone. `layer_sizes` is a dict name → number of weights, in the network's order;
# the last entry is the output layer, which loses `output_rate` of what remains in each
# round, while every other layer loses `rate`. Careful: a layer cannot keep a fraction of a
# weight — the selection step prunes `round(s · n)` weights of a layer with $n$ weights and
# target sparsity $s$. The check compares your numbers for LeNet-300-100 (`sizes`) with the
# `remaining` the experiment of section 3 measured from its masks, then tries other
# networks and rates.

# %% nbgrader={"grade": false, "grade_id": "exercise-2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_remaining_after(r, layer_sizes, rate, output_rate):
    ### BEGIN SOLUTION
    layer_names = list(layer_sizes)
    kept = 0
    for i, name in enumerate(layer_names):
        layer_rate = output_rate if i == len(layer_names) - 1 else rate
        sparsity = 1 - (1 - layer_rate) ** r
        kept += layer_sizes[name] - round(sparsity * layer_sizes[name])  # whole weights only
    return kept / sum(layer_sizes.values())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 2 (no need to edit)
def counted_remaining(r, layer_sizes, rate, output_rate):
    """What the selection step keeps: layer masks on random scores at round r's sparsities."""
    rng = np.random.default_rng(r)
    scores = {name: rng.random(n) for name, n in layer_sizes.items()}
    targets = lottery.round_sparsities(list(layer_sizes), r, rate, output_rate)
    masks_r = ts.prune.layer_masks(scores, targets)
    return sum(m.kept for m in masks_r.values()) / sum(layer_sizes.values())


def yours_remaining(r, layer_sizes, rate, output_rate):
    with ts.exercises.switched_off(lottery, "round_sparsities"), \
            ts.exercises.switched_off(ts.prune, "layer_masks", "select_masks"):
        return float(my_remaining_after(r, dict(layer_sizes), rate, output_rate))


my_remaining = [yours_remaining(r, sizes, RATE, OUTPUT_RATE) for r in range(ROUNDS + 1)]
for r, row in enumerate(summary):
    assert abs(my_remaining[r] - row["remaining"]) * total < 0.5, (
        f"round {r}: you get {my_remaining[r]:.6%}, the experiment {row['remaining']:.6%}")
    assert abs(remaining_by_formula(r) - row["remaining"]) * total < len(names), (
        "the smooth formula is within a weight per layer")
print(format_table([[r, f"{m:.4%}", f"{row['remaining']:.4%}"]
                    for r, (m, row) in enumerate(zip(my_remaining, summary))],
                   headers=["round", "yours", "experiment"]))
print("Exercise 2: visible checks passed")
### BEGIN HIDDEN TESTS
for hidden_sizes, hidden_rate, hidden_output_rate in (
        ({"a": 1237, "b": 311, "c": 45, "d": 7}, 0.35, 0.15),
        ({"first": 999, "last": 25}, 0.2, 0.5),
        ({"only": 4321}, 0.1, 0.3)):
    hidden_total = sum(hidden_sizes.values())
    for r in range(0, 16, 3):
        hidden_yours = yours_remaining(r, hidden_sizes, hidden_rate, hidden_output_rate)
        hidden_expected = counted_remaining(r, hidden_sizes, hidden_rate, hidden_output_rate)
        assert abs(hidden_yours - hidden_expected) * hidden_total < 0.5, (
            hidden_sizes, r, hidden_yours, hidden_expected)
### END HIDDEN TESTS


# %% [markdown]
# ### Exercise 3 — a random mask with the same per-layer counts
#
# Write `my_random_masks_like(masks, seed)`: for every mask (a `ts.sparse.Mask`, with
# `.shape`, `.size` and `.kept`), a new `ts.sparse.Mask` of the same shape that keeps
# **the same number of weights**, chosen uniformly at random (seeded). It is the
# `random_mask` control. The checks use the round-1 masks of section 2: per-layer kept counts
# must match, the same seed must give the same masks, and — a test of "uniformly at random" —
# the fraction of your kept weights that the magnitude mask also keeps must be close to the
# layer's density. Hidden tests try other shapes and counts, and how often each position
# is kept over many seeds.

# %% nbgrader={"grade": false, "grade_id": "exercise-3", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_random_masks_like(masks, seed):
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    result = {}
    for name, mask in masks.items():
        keep = np.zeros(mask.size, dtype=bool)
        keep[rng.permutation(mask.size)[: mask.kept]] = True  # `kept` positions at random
        result[name] = ts.sparse.Mask(keep.reshape(mask.shape))
    return result
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-3-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 3 (no need to edit)
def yours_random_masks(masks, seed):
    with ts.exercises.switched_off(lottery, "random_masks_like"), \
            ts.exercises.switched_off(ts.prune, "random_masks_like"):
        return my_random_masks_like(masks, seed)


def check_random_masks(masks, seed, quiet=False):
    """Shapes, counts, determinism, and the overlap with ``masks`` near their density."""
    random_masks, again = yours_random_masks(masks, seed), yours_random_masks(masks, seed)
    assert set(random_masks) == set(masks), "one mask per mask given"
    for name, mask in masks.items():
        ours_ = random_masks[name]
        assert isinstance(ours_, ts.sparse.Mask), f"{name}: return ts.sparse.Mask objects"
        assert ours_.shape == mask.shape, f"{name}: shape {ours_.shape}, expected {mask.shape}"
        assert ours_.kept == mask.kept, f"{name}: kept {ours_.kept}, expected {mask.kept}"
        assert ours_ == again[name], f"{name}: the same seed should give the same mask"
        if 0 < mask.kept < mask.size:
            overlap = (ours_.keep & mask.keep).sum() / ours_.kept
            tolerance = 4 * np.sqrt(mask.density * (1 - mask.density) / mask.kept)
            if not quiet:
                print(f"{name}: kept {ours_.kept} of {ours_.size}; overlap with the magnitude "
                      f"mask {overlap:.3f} (density {mask.density:.3f} ± {tolerance:.3f})")
            assert abs(overlap - mask.density) < tolerance, f"{name}: not uniformly random?"
    return random_masks


random_masks = check_random_masks(masks, seed=5)
print("Exercise 3: visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng(77)
hidden_masks = {"a": ts.sparse.Mask(hidden_rng.random((13, 17)) < 0.4),
                "none": ts.sparse.Mask(np.zeros((5, 6), dtype=bool)),
                "all": ts.sparse.Mask(np.ones((4, 3), dtype=bool)),
                "cube": ts.sparse.Mask(hidden_rng.random((4, 3, 5)) < 0.7),
                "vector": ts.sparse.Mask(np.arange(9) % 4 == 0)}
check_random_masks(hidden_masks, seed=12, quiet=True)
assert any(yours_random_masks(hidden_masks, 13)[n] != yours_random_masks(hidden_masks, 14)[n]
           for n in ("a", "cube")), "different seeds should give different masks"
small = {"small": ts.sparse.Mask(np.arange(20).reshape(4, 5) % 10 < 3)}  # keeps 6 of 20
draws = 2000
frequency = np.mean([yours_random_masks(small, seed)["small"].keep
                     for seed in range(draws)], axis=0)
hidden_tolerance = 4 * np.sqrt(0.3 * 0.7 / draws)  # 4 binomial standard errors
assert np.all(np.abs(frequency - 0.3) < hidden_tolerance), frequency
### END HIDDEN TESTS

# %% [markdown]
# ### Design task — a supermask that keeps one weight in ten
#
# Section 4 evaluated supermasks at the schedule's sparsities, the same rate in both hidden
# layers and a tenth of the output layer pruned per round. Nothing forces that. Choose a
# criterion (`"large_final"` or `"magnitude_increase"`) and a **density for each layer**
# (the fraction of its weights kept) so that the mask, applied to the **untrained**
# $\theta_0$ of seed 0 and scored with the dense run of section 2 (`dense_final`), keeps
# **at most 10% of the network's weights** and classifies the test digits with
# **accuracy at least 0.80** — no training at all (in fast mode, where the dense run trained
# for one epoch, the target is 0.70). No round of section 4 meets both conditions. Think
# about which layer is small and which one every prediction must pass through, and try
# your candidates on the `validation` digits (the check grades on the test digits; choosing
# on them would be fitting to the test set). `lottery.supermask_masks` and `untrained`
# (section 4) build and apply the mask; the check counts the kept weights and never times
# anything.

# %% nbgrader={"grade": false, "grade_id": "design-task", "locked": false, "schema_version": 3, "solution": true, "task": false}
design_criterion = None                                                            # yours
design_densities = {"fc1.weight": None, "fc2.weight": None, "fc3.weight": None}  # yours
### BEGIN SOLUTION
design_criterion = "magnitude_increase"
design_densities = {"fc1.weight": 0.08, "fc2.weight": 0.2, "fc3.weight": 1.0}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "design-task-check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Checks for the design task (no need to edit)
DESIGN_KEEP = 0.10
DESIGN_ACCURACY = 0.70 if FAST else 0.80
assert design_criterion in lottery.SUPERMASK_CRITERIA, (
    f"choose a criterion among {lottery.SUPERMASK_CRITERIA}")
assert set(design_densities) == set(names), f"give a density for each of {names}"
assert all(0 <= float(d) <= 1 for d in design_densities.values()), "densities are in [0, 1]"
design_masks = lottery.supermask_masks(
    dense_final, theta_0, {n: 1 - float(d) for n, d in design_densities.items()},
    design_criterion)
design_kept = sum(m.kept for m in design_masks.values()) / total
design_accuracy = ts.evaluate(untrained(design_masks), *data.test)["accuracy"]
print(f"Design task: keeps {design_kept:.2%} of the weights (at most {DESIGN_KEEP:.0%}), "
      f"untrained test accuracy {design_accuracy:.3f} (at least {DESIGN_ACCURACY:.2f})")
assert design_kept <= DESIGN_KEEP, f"keeps {design_kept:.2%} > {DESIGN_KEEP:.0%}"
assert design_accuracy >= DESIGN_ACCURACY, "below the accuracy target"

# %% [markdown]
# ## Summary
#
# * **Iterative magnitude pruning with rewinding**: train, prune 20% of each hidden layer
#   (10% of the output layer), reset the survivors to $\theta_0$, repeat; after $r$ rounds a
#   layer keeps $(1-p)^r$ of its weights. In tinysparse: `snapshot`, `train_with_early_stop_record`,
#   `layer_masks` + `apply_masks`, `rewind_to` — or all of it in `lottery_ticket_experiment`.
# * Accuracy is reported **at the early-stopping iteration**, the iteration of minimum loss on
#   a validation set held out of the training data.
# * On `mnist-5k` the ticket keeps close to dense accuracy down to a few percent of the
#   weights and learns faster at moderate sparsity; the same mask re-initialised, or a random
#   mask on $\theta_0$, falls behind; keeping only the **signs** of $\theta_0$ recovers nearly all
#   of it.
# * **Supermasks**: the right mask on *untrained* weights classifies far above chance, because
#   the weights it keeps mostly already have their trained sign.
# * **Late rewinding** to $\theta_k$ is the fix for deeper networks; on LeNet-300-100 rewinding
#   to $\theta_0$ already works.
# * Liu et al.: for structured pruning the architecture is what counts; for our unstructured
#   tickets both the mask and the initial values matter.
#
# Next: **lesson 06** looks at dropout and its relatives — random sparsity *during*
# training, and sparsity learned while training; lesson 09 measures what pruning really
# makes faster.
