# %% [markdown]
# # Lesson 09 — Structured vs unstructured sparsity: what really gets faster
#
# Lessons 02–05 removed 90%, 95%, even 99% of a network's weights with little loss of
# accuracy. The pruned network does 10 to 100 times fewer multiplications *on paper*. Is it
# 10 to 100 times faster? Almost never — and "my pruned model is not faster" is the most
# common complaint about pruning libraries. This notebook measures why, and what does make
# a pruned network faster.
#
# You will
#
# 1. count the multiply–adds a pruned LeNet-300-100 saves, then time it: with the pruned
#    weights simply set to zero (**masked dense**) it is no faster at all;
# 2. open up the **sparse kernels**: the CSR format built from a mask, the layer that
#    stores only its kept weights (`ts.nn.SparseLinear`), the readable NumPy loops and
#    their compiled Numba twins, and the *feature-major* memory layout that makes them fast;
# 3. measure the **break-even curve** on your machine: from which sparsity does a sparse
#    product beat a dense BLAS product — tinysparse's kernels and `scipy.sparse`;
# 4. time a whole **training step** on the sparse path, see where its gradient comes from
#    and where the optimiser updates the kept weights, and check that it computes the same
#    losses as the masked dense path and never lets a pruned weight regrow;
# 5. remove **whole neurons and filters** instead (structured pruning), shrink the network
#    to a smaller dense one, and compare accuracy and speed with unstructured pruning at
#    the same number of weights;
# 6. put our numbers beside the papers'
#    ([Wen et al. 2016](REFERENCES.md#learning-structured-sparsity--wen-et-al-2016),
#    [Elsen et al. 2020](REFERENCES.md#fast-sparse-convnets--elsen-et-al-2020));
# 7. see why tinysparse tells idle BLAS threads to sleep;
# 8. do three exercises that check themselves, and a design task with a target.
#
# You need lessons 01 and 02. **Every time in this notebook is measured on your machine,
# in this run**: it depends on the processor, the number of cores, the BLAS library, and
# on whatever else the machine is doing. Read the patterns, not the digits. With the
# defaults the notebook takes a few minutes (it trains LeNet-300-100 and LeNet-5 and times
# many things); `TINYSPARSE_FAST=1` (what the tests use) trains briefly and repeats each
# timing only a few times — under a minute on an idle laptop, and the timings are noisier.

# %%
import inspect
import os
import time

import tinysparse as ts  # first: it tells the BLAS threads how to wait, before NumPy loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np

import tinysparse.bench  # what `tinysparse bench` measures (not loaded by `import tinysparse`)
import tinysparse.exercises  # the exercises' checks
from tinysparse import kernels
from tinysparse.autograd import cross_entropy
from tinysparse.benchmarking import (
    machine_description,
    make_records,
    ratio_table,
    time_interleaved,
)
from tinysparse.sparse import build_structure
from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
SEED = 0                                   # every random choice below is seeded with it
TRAIN = ({"lenet300": {"epochs": 1}, "lenet5": {"epochs": 1, "max_steps": 40}} if FAST
         else {"lenet300": {"epochs": 8}, "lenet5": {"epochs": 6}})  # Adam 1e-3, batch 64
RETRAIN = {"epochs": 1, "max_steps": 15} if FAST else {"epochs": 3}  # after pruning, Adam 1e-3
REPEATS = 5 if FAST else 20                # timed calls per measurement; we report the median
SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
rng = np.random.default_rng(SEED)
notebook_started = time.perf_counter()
np.set_printoptions(precision=4, suppress=True)
print(f"{'fast' if FAST else 'full'} mode: training {TRAIN}, retraining {RETRAIN}, "
      f"{REPEATS} timed repeats")
print(f"machine: {machine_description()}; compiled kernels: {kernels.numba_enabled()}")


# %% [markdown]
# One helper. A pruned layer runs one of two compute paths, and the path is the layer's
# **type** (lesson 02): a masked `ts.nn.Linear` (or `Conv2d`) multiplies $W \odot M$ with
# the dense kernels; its twin `ts.nn.SparseLinear` (or `SparseConv2d`) stores and
# multiplies the kept weights only. Pruning chooses, once: every method of
# `ts.prune.prune` ends in `ts.prune.apply_masks`, which replaces each masked layer whose
# mask keeps at most `ts.sparse.density_threshold()` of its weights (0.2 by default) by
# its sparse twin, in place, under the same name. Nothing switches later, at forward time.
#
# To compare the two paths on *the same* pruned network, we move copies of it by hand:
# `ts.nn.to_dense` turns every sparse layer back into a masked dense one, and
# `ts.nn.to_sparse(..., max_density=1.0)` moves every masked layer to the sparse kernels,
# whatever its density (both work in place and return the model).

# %%
def both_paths(pruned_model):
    # two copies of a pruned network: (every masked layer dense, every masked layer sparse)
    masked_dense = ts.nn.to_dense(ts.nn.clone(pruned_model))
    sparse = ts.nn.to_sparse(ts.nn.clone(pruned_model), max_density=1.0)
    return masked_dense, sparse


# %% [markdown]
# ## 1. Fewer multiply–adds is not less time
#
# A `Linear` layer with weight $W \in \mathbb{R}^{n_\text{out} \times n_\text{in}}$ computes
# $y_i = \sum_j W_{ij} x_j + b_i$ for every example: $n_\text{out} n_\text{in}$
# multiply–adds (MACs). After pruning, only the non-zero weights *need* a multiply–add, so a
# kernel that skips the zeros does
#
# $$
# \text{MACs}_\text{sparse} = \operatorname{nnz}(W) = (1 - s)\, n_\text{out} n_\text{in}
# \qquad \text{per example, at sparsity } s,
# $$
#
# 10× fewer at 90% sparsity, 100× fewer at 99%. (A convolution uses each kernel weight once
# per output position, so it multiplies both counts by $H_\text{out} W_\text{out}$.)
#
# We train a LeNet-300-100 on `mnist-5k` (as in lesson 01), prune copies of it by magnitude
# to 90%, 95% and 99% of every layer (as in lesson 02), and let
# `ts.metrics.sparsity_report` count.

# %%
data = ts.load_dataset("mnist-5k")
lenet300 = ts.nn.lenet300(seed=SEED)
started = time.perf_counter()
history = ts.fit(lenet300, data, seed=SEED, quiet=True, **TRAIN["lenet300"])
accuracy300 = ts.evaluate(lenet300, *data.test)["accuracy"]
print(f"LeNet-300-100: trained {len(history.epochs)} epochs ({history.steps} steps) in "
      f"{time.perf_counter() - started:.0f} s, test accuracy {accuracy300:.4f}")
assert accuracy300 > 0.85

pruned = {}
rows = []
for sparsity in (0.9, 0.95, 0.99):
    model = ts.nn.clone(lenet300)
    ts.prune.prune(model, sparsity)  # magnitude, layer by layer
    pruned[sparsity] = model
    total = ts.metrics.sparsity_report(model).total
    assert total["sparse_macs"] == total["nonzero"]  # a Linear weight: one MAC per example
    rows.append([f"{sparsity:.0%}", total["dense_macs"], total["sparse_macs"],
                 f"{total['dense_macs'] / total['sparse_macs']:.0f}x"])
print(format_table(rows, headers=["sparsity", "dense MACs / example",
                                  "sparse MACs / example", "fewer"]))

# %% [markdown]
# The whole report for the 95% network. Its `path` column says what pruning made of each
# layer: every one keeps 5% of its weights, below the switch point, so each became a
# `SparseLinear` — `print(model)` shows the same:

# %%
print(ts.metrics.sparsity_report(pruned[0.95]))
print(f"switch point: density {ts.sparse.density_threshold()}")
print(pruned[0.95])
assert all(isinstance(pruned[0.95].get_submodule(name), ts.nn.SparseLinear)
           for name in ("fc1", "fc2", "fc3"))


# %% [markdown]
# Now the clock. Each pruned network can run its forward pass two ways; `both_paths` makes
# one copy of it for each:
#
# * **masked dense**: masked `Linear` layers compute $W \odot M$ and hand it to the ordinary
#   dense product (BLAS) — what most pruning libraries do;
# * **sparse**: `SparseLinear` layers run the sparse kernels on the kept weights only —
#   what pruning made of these layers.
#
# We time a forward pass over the 1,000 test images with `ts.benchmarking.time_interleaved`,
# which calls the contenders in turn (dense, masked dense, sparse, dense, …) so that a
# noisy neighbour slows all of them alike, and reports the median.

# %%
def forward_pass(model):
    # a callable: one forward pass over the 1,000 test images
    def run():
        with ts.no_grad():
            model(data.x_test)
    return run


on_paths = {sparsity: both_paths(model) for sparsity, model in pruned.items()}
rows = []
for sparsity, (masked_dense, sparse) in on_paths.items():
    timings = time_interleaved({"dense": forward_pass(lenet300),
                                "masked dense": forward_pass(masked_dense),
                                "sparse": forward_pass(sparse)},
                               repeats=REPEATS, warmup=2)
    ms = {name: 1e3 * t["median_seconds"] for name, t in timings.items()}
    rows.append([f"{sparsity:.0%}", f"{ms['dense']:.2f}", f"{ms['masked dense']:.2f}",
                 f"{ms['sparse']:.2f}", f"{ms['dense'] / ms['masked dense']:.2f}x",
                 f"{ms['dense'] / ms['sparse']:.1f}x"])
print(format_table(rows, headers=["sparsity", "dense ms", "masked dense ms", "sparse ms",
                                  "masked dense speed-up", "sparse speed-up"]))
print(f"(this run, on {machine_description()}; medians of {REPEATS} interleaved calls)")

# %% [markdown]
# The two paths compute the same function — only the order of the floating-point sums
# differs:

# %%
for sparsity, (masked_dense, sparse) in on_paths.items():
    with ts.no_grad():
        masked_logits = masked_dense(data.x_test).data
        sparse_logits = sparse(data.x_test).data
    difference = np.abs(sparse_logits - masked_logits).max()
    print(f"{sparsity:.0%}: largest difference between the paths' logits {difference:.1e}")
    np.testing.assert_allclose(sparse_logits, masked_logits, rtol=1e-4, atol=1e-5)

# %% [markdown]
# Read the `masked dense speed-up` column: expect about $1\times$ (often a little below) at
# every sparsity, although the network has 10 to 100 times fewer non-zero weights. A dense
# matrix product (BLAS `sgemm`) computes all $n_\text{out} n_\text{in}$ products
# $W_{ij} x_j$, whatever their values: it has no idea which weights are zero, and testing
# each one would cost more than the multiplication it saves (a core does 8 or 16 float
# multiply–adds in one SIMD instruction, without a single branch). Masked dense even does a
# little *more* work than dense: it computes $W \odot M$ first. Zeros in a dense matrix
# are just numbers.
#
# Only a kernel that never looks at the zeros can turn sparsity into speed — the `sparse`
# column — and expect even it to gain far less than the count of multiply–adds promises. Section 2
# opens those kernels; section 3 measures where they start to pay.
#
# ## 2. How the sparse kernels work
#
# ### CSR: the non-zeros, row by row
#
# A kernel that skips the zeros needs to know where the non-zeros are. The *compressed
# sparse row* (CSR) format stores a matrix $W$ ($n_\text{out} \times n_\text{in}$) as three
# arrays:
#
# * `values` — the non-zeros, row by row;
# * `indices` — the column of each non-zero;
# * `indptr` — $n_\text{out} + 1$ offsets: row $i$'s non-zeros are
#   `values[indptr[i]:indptr[i+1]]`, in the columns `indices[indptr[i]:indptr[i+1]]`.
#
# In tinysparse the *structure* (`indptr`, `indices`) comes from the mask, once, when
# pruning makes the sparse layer (`ts.sparse.structure_of(mask)`, which hands the mask,
# viewed as a matrix, to `ts.sparse.build_structure`). The *values* are gathered from the
# dense weight at that moment, through `positions`, the flat index of each non-zero in the
# dense weight; from then on they are the layer's parameter, and the dense weight is gone
# (below, and section 4 for why that is also the fast choice). A small example:

# %%
keep = np.array([[1, 0, 0, 1],
                 [0, 0, 0, 0],
                 [0, 1, 1, 1]], dtype=bool)
W = np.arange(1, 13, dtype=np.float32).reshape(3, 4) * keep
structure = build_structure(keep)
values = structure.gather(W)  # = W.reshape(-1)[structure.positions]
print("W =\n", W)
print("indptr    ", structure.indptr)
print("indices   ", structure.indices)
print("positions ", structure.positions)
print("values    ", values)
for i in range(W.shape[0]):
    row = slice(structure.indptr[i], structure.indptr[i + 1])
    print(f"row {i}: columns {structure.indices[row]}, values {values[row]}")
assert np.array_equal(structure.to_dense(values), W)

# %% [markdown]
# Row 1 is empty: `indptr[1] == indptr[2]`. A CSR matrix costs one value and one index
# per non-zero: with 4-byte floats and 8-byte indices it takes less memory than the dense
# matrix only below a density of $4/(4+8) = 1/3$ (1/2 with scipy's 4-byte indices).
#
# ### CSC: the same entries, column by column
#
# The backward pass also needs $W^\top$. `build_structure` adds the *column* view (CSC) of
# the same entries: `t_indptr` ($n_\text{in} + 1$ offsets), `t_indices` (the row of each
# entry) and `t_order` (the entry's position in CSR order). The CSC view has no values of
# its own: entry $k$ of column $j$ reads `values[t_order[k]]`, so both views share one
# `values` array — in a layer, its parameter, which the optimiser updates.

# %%
print("t_indptr  ", structure.t_indptr)
print("t_indices ", structure.t_indices)
print("t_order   ", structure.t_order)
for j in range(W.shape[1]):
    column = slice(structure.t_indptr[j], structure.t_indptr[j + 1])
    print(f"column {j}: rows {structure.t_indices[column]}, "
          f"values {values[structure.t_order[column]]}")
assert np.array_equal(values[structure.t_order], W.T[keep.T])  # column-major order

# %% [markdown]
# ### The layer: `values` beside `structure`, and nothing else
#
# This is what a `SparseLinear` holds. Its weight parameter is `layer.values`: the kept
# weights in CSR order, one per non-zero of `layer.structure` (built from `layer.mask` by
# `structure_of` when the layer was made). It is the **only copy** of the weights: there is
# no dense weight beside it, and `layer.weight` does not exist (the error says what to use
# instead). When you want to see the matrix, `layer.dense_weight()` scatters `values` into a
# new dense array, and `model.state_dict()` does the same under the usual name
# `fc1.weight`, whichever kernels a layer runs. Both are pictures: writing into them
# changes nothing. The first layer of the 95% network:

# %%
fc1 = pruned[0.95].fc1
print(fc1)
print("its parameters:", {name: p.shape for name, p in fc1.named_parameters()})
assert fc1.values.shape == (fc1.structure.nnz,) == (fc1.mask.kept,)
assert fc1.structure.shape == fc1.mask.shape  # a Linear's weight is already a matrix
try:
    print(fc1.weight)
except AttributeError as error:
    print("fc1.weight ->", error)

picture = fc1.dense_weight()                           # the kept values in their places
assert np.array_equal(picture, pruned[0.95].state_dict()["fc1.weight"])
assert np.array_equal(fc1.structure.gather(picture), fc1.values.data)
assert np.all(picture[~fc1.mask.keep] == 0)
values_before = fc1.values.data.copy()
picture[:] = 1.0                                       # writing into the picture ...
assert np.array_equal(fc1.values.data, values_before)  # ... changes nothing
print("dense_weight() and state_dict() show values in their places; writing into them "
      "changes nothing")

# %% [markdown]
# Storing only the kept weights is not the same as saving memory. Beside `values` (4 bytes
# per kept weight in float32), the structure holds four arrays of 8-byte indices per
# non-zero (`indices` and `positions` for the rows, `t_indices` and `t_order` for the
# columns), and the layer keeps its boolean mask, one byte per weight of the dense matrix.
# Counted for `fc1`:

# %%
index_bytes = sum(getattr(fc1.structure, name).nbytes for name in
                  ("indptr", "indices", "positions", "t_indptr", "t_indices", "t_order"))
format_bytes = fc1.values.data.nbytes + index_bytes + fc1.mask.keep.nbytes
dense_bytes = fc1.mask.size * fc1.values.data.itemsize
print(f"fc1 at density {fc1.mask.density:.2f}: values {fc1.values.data.nbytes:,} B, index "
      f"arrays {index_bytes:,} B, mask {fc1.mask.keep.nbytes:,} B; {format_bytes:,} B in all, "
      f"against {dense_bytes:,} B for the dense weight ({format_bytes / dense_bytes:.0%})")

# %% [markdown]
# At 95% sparsity the sparse layer needs less memory than the dense weight, but nothing
# like 20 times less: about 36 bytes per kept weight plus one per weight, against 4 per
# weight, so it only breaks even at a density of $3/36 \approx 8\%$. tinysparse does not
# try to save memory. It is after speed — and storing the kept weights one after another
# is, as section 4 measures, also what makes them fast to update.

# %% [markdown]
# ### The three products of a training step
#
# A layer $Y = W X$ needs three products per training step. In tinysparse the activations
# are stored **feature-major**: $X$ is (features × batch), one row per input feature,
# holding that feature for every example of the batch ($B$ of them). Then:
#
# | product | formula | kernel | work |
# |---|---|---|---|
# | forward | $Y_{i,:} = \sum_{j:\,M_{ij} = 1} W_{ij}\, X_{j,:}$ (row $i$ of CSR) | `spmm` | $\operatorname{nnz} \cdot B$ |
# | input gradient | $dX_{j,:} = \sum_{i:\,M_{ij} = 1} W_{ij}\, dY_{i,:}$ (column $j$: CSC) | `spmm_transposed` | $\operatorname{nnz} \cdot B$ |
# | weight gradient | $dW_{ij} = \sum_b dY_{ib} X_{jb}$, only where $M_{ij} = 1$ | `sddmm` | $\operatorname{nnz} \cdot B$ |
#
# against $n_\text{out} n_\text{in} B$ multiply–adds for each dense product. The last one
# is a *sampled dense–dense matrix product* (SDDMM): the dense product $dY\,X^\top$,
# computed only at the entries the mask keeps — the gradient of a pruned weight is never
# needed, so it is never computed. The readable NumPy versions, from
# `tinysparse/kernels/sparse_reference.py`:

# %%
from tinysparse.kernels import sparse_reference

for name in ("spmm", "spmm_transposed", "sddmm"):
    print(inspect.getsource(getattr(sparse_reference, name)))

# %% [markdown]
# These loops are the **specification**: short, and each line is one formula of the table.
# They are also slow: one Python iteration (and one small NumPy call) per row. The kernels
# that actually run are their **twins** in `tinysparse/kernels/numba_kernels.py`, compiled
# by Numba to machine code, with the same arguments and the same results. The loop nest is
# written out so that the innermost loop runs over the batch, and `prange` splits the
# outermost loop (rows of $Y$, columns of $W$) over the cores:

# %%
from tinysparse.kernels import numba_kernels

for name in ("spmm", "spmm_transposed", "sddmm"):
    print(inspect.getsource(getattr(numba_kernels, name)))

# %% [markdown]
# Three details decide the speed:
#
# * **Feature-major layout.** In `out[b] += w0 * x0[b] + ...` both the output row and
#   the rows `x0 = x[indices[k]]` are contiguous rows of $B$ floats, so the compiler turns
#   the loop over `b` into SIMD instructions (8 floats at a time with AVX2). With the usual
#   batch-major layout (batch × features) the same loop would jump $n_\text{in}$ floats
#   between consecutive `b`.
# * **Four non-zeros per pass.** Each pass over the batch adds four products to the output
#   row, so the row is loaded and stored once for four non-zeros instead of four times
#   (`sddmm` likewise computes four dot products per pass over $dY_{i,:}$). The last 0–3
#   non-zeros of a row take the plain one-at-a-time loop.
# * **Each thread owns its output rows.** `spmm` gives each thread whole rows of $Y$ (and
#   the thread zeroes them itself); `spmm_transposed` walks $W$ by *columns* (CSC) so that
#   each thread owns whole rows of $dX$. Walking the CSR rows instead would scatter into
#   `dx[indices[k]]` from many rows at once — two threads could add to the same row at the
#   same time (exercise 1 writes that version, single-threaded). No races, so the results
#   do not depend on the number of threads.
# * **One thread for small work.** `@parallel_or_serial` compiles each kernel twice, with
#   its `prange` split over the cores and in one thread, and picks by the amount of work:
#   below `PARALLEL_FROM` multiply–adds, waking a second core costs more than it saves
#   (section 7).
# * **`fastmath`.** It lets the compiler fuse multiply–adds and reorder the sums of the dot
#   products into SIMD lanes (as BLAS does). The results then equal the NumPy twins up to
#   float rounding, not bit for bit — and still do not depend on the number of threads,
#   since every output element is summed by one thread in one order.
#
# The layer's `forward` hands its input, `values`, `bias` and `structure` to the op
# `ts.sparse.sparse_linear`. The op is an autograd `Function` in `tinysparse/sparse/ops.py`
# — also called `SparseLinear`, but it is the operation, not the layer — which wires the
# kernels into autograd. Note the last line of its `forward`:

# %%
print(inspect.getsource(ts.nn.SparseLinear.forward))
print(inspect.getsource(ts.sparse.ops._feature_major))
print(inspect.getsource(ts.sparse.ops.SparseLinear.forward))

# %% [markdown]
# The kernel computes $Y$ feature-major, (out × batch), but the rest of the framework
# expects (batch × out). Instead of copying, `forward` returns `y.T`: a transposed **view**,
# with the expected shape but feature-major memory (Fortran order). NumPy's elementwise
# operations keep the memory order of their input, so after the ReLU the activations are
# still feature-major, and the next sparse layer's `_feature_major(x)` —
# `np.ascontiguousarray(x.T)` — finds `x.T` already contiguous and copies nothing. Let us
# check on the 95% network:

# %%
images = data.x_test[:128].reshape(128, -1)
net = pruned[0.95]
with ts.no_grad():
    hidden = net.fc1(ts.Tensor(images))   # a SparseLinear: fc1 keeps 5% of its weights
    activated = net.act1(hidden)          # ReLU, an elementwise op
print(f"fc1 output: shape {hidden.shape}, C-contiguous {hidden.data.flags.c_contiguous}, "
      f"Fortran (feature-major) {hidden.data.flags.f_contiguous}")
print(f"after ReLU: Fortran (feature-major) {activated.data.flags.f_contiguous}")
next_input = ts.sparse.ops._feature_major(activated.data)
print("fc2's feature-major input shares memory with the ReLU output (no copy):",
      np.shares_memory(next_input, activated.data))
assert hidden.data.flags.f_contiguous and activated.data.flags.f_contiguous
assert np.shares_memory(next_input, activated.data)

# %% [markdown]
# ### The twins agree
#
# The test suite holds the twins equal on random shapes and sparsities; here is one random
# case, a 300 × 784 weight at 90% sparsity and a batch of 64, checked against the dense
# masked products as well.

# %%
keep = rng.random((300, 784)) >= 0.9
w = (rng.standard_normal((300, 784)) * keep).astype(np.float32)
x = rng.standard_normal((784, 64)).astype(np.float32)    # feature-major: features × batch
dy = rng.standard_normal((300, 64)).astype(np.float32)
s = build_structure(keep)
values = s.gather(w)
dense_results = {"spmm": w @ x, "spmm_transposed": w.T @ dy, "sddmm": (dy @ x.T)[keep]}

results = {}
for twin, get in (("reference", kernels.reference), ("compiled", kernels.compiled)):
    results[twin] = {
        "spmm": get("spmm")(s.indptr, s.indices, values, x),
        "spmm_transposed": get("spmm_transposed")(s.t_indptr, s.t_indices, s.t_order,
                                                  values, dy),
        "sddmm": get("sddmm")(s.indptr, s.indices, dy, x),
    }
for name, dense_result in dense_results.items():
    readable, fast = results["reference"][name], results["compiled"][name]
    print(f"{name:16s} reference vs compiled {np.abs(readable - fast).max():.1e}, "
          f"compiled vs dense masked product {np.abs(fast - dense_result).max():.1e}")
    np.testing.assert_allclose(fast, readable, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast, dense_result, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(readable, dense_result, rtol=1e-4, atol=1e-4)

# %% [markdown]
# ## 3. The break-even curve, on your machine
#
# A sparse kernel does $(1 - s)$ of the dense multiply–adds, but each costs more: it loads
# an index, then a row of $X$ from wherever that index points, while BLAS reuses every
# value it loads from cache and registers many times. So at low sparsity the sparse kernel
# is *slower* than dense, and it catches up as $s$ grows. The **break-even sparsity** is
# where the two cross.
#
# We measure it for the first layer of LeNet-300-100 (784 → 300) at batch 128, for each of
# the three products, and three implementations:
#
# * `numpy-dense` — the BLAS product, zeros and all (its time does not depend on $s$);
# * `tinysparse` — the compiled kernels above, on the kept values (the vector a
#   `SparseLinear` stores as its parameter);
# * `scipy-csr` — `scipy.sparse` CSR products, if scipy is installed. scipy has no SDDMM,
#   so for $dW$ we use the usual NumPy substitute: gather the needed rows and take the row
#   dot products.
#
# Every implementation of a case runs interleaved in this process (`time_interleaved`), and
# we report the median. These are **this run's numbers on this machine**: another machine,
# another BLAS, or a busy neighbour will move them.

# %%
try:
    import scipy.sparse as scipy_sparse
except ImportError:  # scipy is optional: the curve is then drawn without it
    scipy_sparse = None

FAN_IN, FAN_OUT, BATCH = 784, 300, 128
OPS = ("forward", "dX", "dW")
# the kernels that run now: the Numba twins (the NumPy ones if Numba is disabled)
spmm, spmm_transposed, sddmm = (kernels.implementation(name)
                                for name in ("spmm", "spmm_transposed", "sddmm"))
kernel_rng = np.random.default_rng(SEED)
x = kernel_rng.standard_normal((FAN_IN, BATCH)).astype(np.float32)    # feature-major
dy = kernel_rng.standard_normal((FAN_OUT, BATCH)).astype(np.float32)


def kernel_cases(sparsity):
    # {op: {implementation: callable}} for one random 300 x 784 weight at this sparsity
    keep = kernel_rng.random((FAN_OUT, FAN_IN)) >= sparsity
    w = (kernel_rng.standard_normal((FAN_OUT, FAN_IN)) * keep).astype(np.float32)
    s = build_structure(keep)
    values = s.gather(w)
    cases = {
        "forward": {"numpy-dense": lambda: w @ x,
                    "tinysparse": lambda: spmm(s.indptr, s.indices, values, x)},
        "dX": {"numpy-dense": lambda: w.T @ dy,
               "tinysparse": lambda: spmm_transposed(s.t_indptr, s.t_indices, s.t_order,
                                                     values, dy)},
        "dW": {"numpy-dense": lambda: dy @ x.T,
               "tinysparse": lambda: sddmm(s.indptr, s.indices, dy, x)},
    }
    if scipy_sparse is not None:
        csr = scipy_sparse.csr_matrix(w)
        csr_t = csr.T.tocsr()
        rows, cols = np.nonzero(keep)
        cases["forward"]["scipy-csr"] = lambda: csr @ x
        cases["dX"]["scipy-csr"] = lambda: csr_t @ dy
        cases["dW"]["scipy-csr"] = lambda: np.einsum("kb,kb->k", dy[rows], x[cols])
    return cases


started = time.perf_counter()
records = []
for sparsity in SPARSITIES:
    for op, implementations in kernel_cases(sparsity).items():
        timings = time_interleaved(implementations, repeats=5 if FAST else 15, warmup=2,
                                   min_seconds=0.05 if FAST else 0.3)
        records += make_records("sparse_kernels", {"op": op, "sparsity": sparsity}, timings)
print(f"timed {len(records)} (op, sparsity, implementation) cases in "
      f"{time.perf_counter() - started:.0f} s on {machine_description()}")

# %% [markdown]
# `records` is a list of dicts, one per case and implementation, the format of the
# repository's benchmarks. The table shows each median and its ratio to the dense product
# (below 1: faster than dense):

# %%
median = {(r["op"], r["sparsity"], r["implementation"]): r["median_seconds"] for r in records}
SPARSE_IMPLEMENTATIONS = ["tinysparse"] + (["scipy-csr"] if scipy_sparse is not None else [])
ratio = {(op, s, name): median[op, s, name] / median[op, s, "numpy-dense"]
         for op, s, name in median}
rows = [[op, f"{s:.0%}", f"{1e3 * median[op, s, 'numpy-dense']:.3f}",
         *(f"{ratio[op, s, name]:.2f}" for name in SPARSE_IMPLEMENTATIONS)]
        for op in OPS for s in SPARSITIES]
print(format_table(rows, headers=["op", "sparsity", "dense ms",
                                  *(f"{name} ÷ dense" for name in SPARSE_IMPLEMENTATIONS)]))


# %% [markdown]
# The break-even sparsity of an implementation: the lowest sparsity from which every
# measured point is faster than dense, interpolated between the two measured points around
# the crossing (in log-time against log-compression $\log \frac{1}{1-s}$, where the curves
# are nearly straight).

# %%
def break_even(sparsities, ratios):
    # sparsity from which ratios (time ÷ dense) stay below 1; None if they never do
    stays_below = [all(r <= 1 for r in ratios[i:]) for i in range(len(ratios))]
    if not any(stays_below):
        return None
    first = stays_below.index(True)
    if first == 0:
        return sparsities[0]
    c0, c1 = -np.log1p(-sparsities[first - 1]), -np.log1p(-sparsities[first])
    r0, r1 = np.log(ratios[first - 1]), np.log(ratios[first])
    return float(1 - np.exp(-(c0 + (c1 - c0) * r0 / (r0 - r1))))


crossings = {(op, name): break_even(SPARSITIES, [ratio[op, s, name] for s in SPARSITIES])
             for op in OPS for name in SPARSE_IMPLEMENTATIONS}
print(format_table([[op, name, "never (up to 99%)" if b is None else f"{b:.0%}"]
                    for (op, name), b in crossings.items()],
                   headers=["op", "implementation", "break-even sparsity (this run)"]))

# %%
compression = 1 / (1 - np.array(SPARSITIES))  # 1x ... 100x: a log axis spreads 90-99% out
fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), sharey=True)
for ax, op in zip(axes, OPS):
    ax.plot(compression, 1 / compression, ":", color="grey",
            label="multiply-adds kept, 1 - s")
    for name, style in zip(SPARSE_IMPLEMENTATIONS, ("o-", "s--")):
        ax.plot(compression, [ratio[op, s, name] for s in SPARSITIES], style, label=name)
        crossing = crossings[op, name]
        if crossing is not None and crossing > 0:
            color = ax.lines[-1].get_color()
            ax.axvline(1 / (1 - crossing), color=color, lw=0.8, alpha=0.6)
            ax.annotate(f" {crossing:.0%}", (1 / (1 - crossing), 0.04 if "tiny" in name else 0.12),
                        xycoords=("data", "axes fraction"), fontsize=8, color=color)
    ax.axhline(1, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(compression)
    ax.set_xticklabels([f"{s:.0%}" for s in SPARSITIES], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("sparsity")
    ax.set_title(f"{op}: 784 -> 300, batch {BATCH}")
axes[0].set_ylabel("time ÷ dense BLAS time (log)")
axes[0].legend(fontsize=8)
fig.suptitle(f"Break-even, this run: {machine_description()}", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# How to read it: a point below the black line is faster than the dense product; a vertical
# line marks the break-even. The grey dotted line is what counting multiply–adds promises —
# time proportional to the non-zeros. Expect the measured curves to run well above it: at
# low sparsity a sparse implementation loses to BLAS (it pays for indices and scattered
# loads), and it wins only once most weights are gone. Where exactly depends on the
# implementation and the machine: scipy's CSR products run on one thread, with some Python
# overhead per call, while the compiled kernels use every core; scipy's `dW` stand-in
# copies two (non-zeros × batch) arrays at every call. And a busy machine shifts every
# point: a parallel kernel waits for its slowest thread, so when another process holds a
# core, single measurements can be several times too slow.
#
# Pruning moves a layer to the sparse kernels when its mask keeps at most 0.2 of its
# weights (80% sparsity, `ts.sparse.DEFAULT_DENSITY_THRESHOLD`), the break-even measured on
# a 2-core machine. If your curve crosses elsewhere, `ts.sparse.set_density_threshold(d)`
# (for one block of code, `with ts.sparse.density_threshold_set(d):`; for a whole run, the
# environment variable `TINYSPARSE_DENSITY_THRESHOLD`) moves the switch. It decides what
# the *next* pruning step does; a layer already pruned stays what it is until you move it
# with `ts.nn.to_sparse` or `ts.nn.to_dense`:

# %%
with ts.sparse.density_threshold_set(0.05):    # only layers keeping at most 5% go sparse
    strict = ts.nn.clone(lenet300)
    ts.prune.prune(strict, 0.9)                # keeps 10% of every layer
    print("pruned to 90% under a switch at density 0.05:",
          [row["path"] for row in ts.metrics.sparsity_report(strict).rows])
    print("the 90% network pruned earlier, unchanged:",
          [row["path"] for row in ts.metrics.sparsity_report(pruned[0.9]).rows])
print("back at the default switch", ts.sparse.density_threshold(), "- to_sparse(strict):",
      [row["path"] for row in ts.metrics.sparsity_report(ts.nn.to_sparse(strict)).rows])
assert {row["path"] for row in ts.metrics.sparsity_report(strict).rows} == {"sparse"}

# %% [markdown]
# The full version of this measurement, with more repetitions, the readable reference
# loops, PyTorch's CSR kernels (`torch.sparse.mm`, `sampled_addmm`) when installed, and a
# large 4096 × 4096 layer as well, is a script:
#
# ```
# python benchmarks/sparse_kernels.py           # add --json for the records
# ```
#
# ## 4. A whole training step
#
# A training step is more than three products: the autograd graph, the activations, the
# loss, and the optimiser's update. On the sparse path the weight's gradient has the same
# form as the weight. The op's `backward` returns the SDDMM's result, one number per kept
# weight, as the gradient of `values`: an ordinary vector of the same length, with no dense
# array of zeros anywhere. Here is `backward`, and a check on one batch of 128 that this
# vector is the masked dense layer's gradient, gathered at the kept positions:

# %%
print(inspect.getsource(ts.sparse.ops.SparseLinear.backward))
x128, y128 = data.x_train[:128], data.y_train[:128]
masked_dense, sparse = both_paths(pruned[0.95])
for net in (masked_dense, sparse):
    cross_entropy(net(x128), y128).backward()
gradient = sparse.fc1.values.grad
dense_gradient = masked_dense.fc1.weight.grad          # zero at every pruned weight
print(f"fc1.values: shape {sparse.fc1.values.shape}; its gradient: "
      f"{type(gradient).__name__}, shape {gradient.shape}")
print(f"largest difference from the dense gradient at the kept positions: "
      f"{np.abs(gradient - sparse.fc1.structure.gather(dense_gradient)).max():.1e}")
assert type(gradient) is np.ndarray and gradient.shape == sparse.fc1.values.shape
np.testing.assert_allclose(gradient, sparse.fc1.structure.gather(dense_gradient),
                           rtol=1e-4, atol=1e-6)
assert np.all(dense_gradient[~masked_dense.fc1.weight.mask.keep] == 0)

# %% [markdown]
# The optimiser then sees ordinary parameters: a `SparseLinear`'s `values`, a dense
# layer's `weight`, every bias. Each optimiser has **one** update rule, written once over
# flat arrays in `tinysparse/kernels/optimizers.py` (the NumPy reference; its compiled
# Numba twin does the same arithmetic in the same order, in one pass, and the tests hold
# the two equal bit for bit). `Optimizer.step` hands it every parameter alike, so on the
# sparse path the update touches the kept weights only, because they are all the layer
# has. SGD's rule, with the momentum the timed step below uses:

# %%
print(inspect.getsource(ts.kernels.optimizers.sgd_update))

# %% [markdown]
# `ts.bench.training_records` (what the command `tinysparse bench` runs) times one
# SGD-with-momentum step of LeNet-300-100 at batch 128, 95% sparse, three ways,
# interleaved: the unpruned network, the sparse path and the masked dense path (the same
# pruned network moved with `to_sparse` and `to_dense`, as `both_paths` does).

# %%
step_records = ts.bench.training_records(sparsity=0.95, repeats=REPEATS)
print(ratio_table(step_records, ["model", "sparsity"], baseline="dense"))
print(f"(this run, on {machine_description()})")
step_ms = {r["implementation"]: 1e3 * r["median_seconds"] for r in step_records}

# %% [markdown]
# The whole step gains less than the kernels alone: the parts that do not shrink with the
# weights — the last layer, the activations, the softmax and the loss, the Python of the
# autograd graph — stay the same size, and their share of the time grows as the products
# get cheaper. The masked dense step is, again, no faster than the unpruned one.
#
# There is a second, quieter reason why the sparse layer stores nothing but `values`:
# **the cache**. Suppose it kept the dense weight as its parameter instead, as the masked
# dense layer does. Then every step would reach into the dense array at the kept positions
# twice: gathering the values for the kernels before the forward pass, and writing the
# updated values back after the optimiser's step. Timed alone, in a loop, both find the
# weight in the cache. Inside a training step they do not: between the two, the forward and
# backward passes stream the activations and the other layers through the cache. Below,
# for a first layer at 95% sparsity, that gather and that write-back, beside what happens
# instead — the optimiser's rule applied to `values` (the kept weights one after another,
# what a `SparseLinear` does) and, for scale, to the whole dense weight (what the masked
# dense layer's optimiser does, before it re-applies the mask). Each is timed right after
# reading an unrelated 8 MB array (what a training step does to the cache) and without.

# %%
first = lenet300.fc1.weight.data.copy()       # 300 × 784, float32: 940 kB
keep95 = np.random.default_rng(0).random(first.shape) >= 0.95
s95 = build_structure(keep95)
kept95 = s95.gather(first)                    # what a SparseLinear stores: 4 bytes a weight
other = np.ones(2_000_000, dtype=np.float32)  # 8 MB: more than this machine's L2 cache
f32 = np.float32


def sgd_step_on(weights):
    # a callable: the optimiser's rule (SGD with momentum) on `weights`, in place
    gradient, velocity = np.ones_like(weights), np.zeros_like(weights)
    return lambda: kernels.sgd_update(weights, gradient, velocity, f32(1e-9), f32(0.9),
                                      f32(0.0), False, False)


def write_back():
    # the updated kept values back into the dense array, at their positions
    first.reshape(-1)[s95.positions] = kept95


cases = {"gather": lambda: s95.gather(first), "write back": write_back,
         "update values": sgd_step_on(kept95), "update dense": sgd_step_on(first.reshape(-1))}
timings = time_interleaved({"read 8 MB": lambda: other.sum(),
                            **{f"read 8 MB, then {name}": (lambda run=run: (other.sum(), run()))
                               for name, run in cases.items()},
                            **{f"{name}, warm": run for name, run in cases.items()}},
                           repeats=REPEATS * 10, warmup=3, block=5)
flush_us = 1e6 * timings["read 8 MB"]["median_seconds"]
cold_us = {name: 1e6 * timings[f"read 8 MB, then {name}"]["median_seconds"] - flush_us
           for name in cases}
warm_us = {name: 1e6 * timings[f"{name}, warm"]["median_seconds"] for name in cases}
lines = np.unique(s95.positions // 16)        # 64-byte cache lines holding a kept weight
print(format_table(
    [["gather from the dense weight", f"{s95.nnz:,}", f"{warm_us['gather']:.1f}",
      f"{cold_us['gather']:.1f}"],
     ["write back into the dense weight", f"{s95.nnz:,}", f"{warm_us['write back']:.1f}",
      f"{cold_us['write back']:.1f}"],
     ["SGD update of values (SparseLinear)", f"{s95.nnz:,}",
      f"{warm_us['update values']:.1f}", f"{cold_us['update values']:.1f}"],
     ["SGD update of the dense weight", f"{first.size:,}",
      f"{warm_us['update dense']:.1f}", f"{cold_us['update dense']:.1f}"]],
    headers=["first layer, 95% sparse", "weights touched", "warm µs", "after flush µs"]))
print(f"the {s95.nnz:,} kept weights sit in about {len(lines):,} of the dense weight's "
      f"{first.size // 16:,} cache lines; values fills {kept95.nbytes // 64:,}, in order")

# %% [markdown]
# Expect the gather and the write-back to cost more after the flush than warm (the gather
# several times more), and the two together — what a design that kept the dense weight
# would pay at every step — to cost several times the update of `values` itself. At 95%
# sparsity the kept weights are scattered over more than half of the dense weight's cache
# lines (the last line printed), and every one of those lines has to come back from main
# memory; `values` holds the same weights in far fewer lines, read in order, which the
# processor prefetches. So `SparseLinear` keeps no dense weight: the kernels read `values`, the
# optimiser updates it in place, and the dense matrix is made only when someone asks for a
# picture (`dense_weight()`, `state_dict()`). The masked dense layer's optimiser, for
# comparison, streams through the whole dense weight at every step — every weight, the
# pruned ones too (the last row of the table).
#
# ### Same losses, no regrowth
#
# Speed is only worth having if the results do not change. We take the trained
# LeNet-300-100, prune it to 95%, and train two copies of it from the same weights on the
# same batches — every masked layer on the sparse kernels in one, on the masked dense path
# in the other (`both_paths`) — with SGD, momentum and weight decay (so that the optimiser
# would move a pruned weight if it could). The losses must agree step by step, up to float
# rounding, and every pruned weight must still be exactly zero afterwards.
#
# The two copies keep their pruned weights at zero in different ways. On the sparse path
# there is nothing to keep: a pruned weight has no place in `values`, so no gradient,
# momentum or weight decay can reach it. On the masked dense path the pruned weights are
# stored, and `Optimizer.step` applies the mask again, to the weight and to the optimiser's
# state (momentum, Adam's moments), after every update — the lines under
# `if p.mask is not None`:

# %%
print(inspect.getsource(ts.optim.Optimizer.step))


# %%
def train_steps(model, steps, batch=64):
    # `steps` SGD steps on the first batches of the training set; the losses
    optimizer = ts.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses = []
    for step in range(steps):
        xb = data.x_train[batch * step:batch * (step + 1)]
        yb = data.y_train[batch * step:batch * (step + 1)]
        loss = cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    return np.array(losses)


STEPS = 20 if FAST else 60
base = ts.nn.clone(lenet300)
ts.prune.prune(base, 0.95)
copies = dict(zip(("masked dense", "sparse"), both_paths(base)))
paths = {how: {row["path"] for row in ts.metrics.sparsity_report(model).rows}
         for how, model in copies.items()}
losses = {how: train_steps(model, STEPS) for how, model in copies.items()}
print("layer paths:", paths)
print("losses, sparse path:      ", losses["sparse"][[0, 1, 2, -1]], "(steps 1, 2, 3, last)")
print("losses, masked dense path:", losses["masked dense"][[0, 1, 2, -1]])
relative = np.abs(losses["sparse"] / losses["masked dense"] - 1).max()
print(f"largest relative difference over {STEPS} steps: {relative:.1e}")
assert paths == {"sparse": {"sparse"}, "masked dense": {"masked-dense"}}
np.testing.assert_allclose(losses["sparse"], losses["masked dense"], rtol=1e-4)

base_masks = dict(base.named_masks())
for how, model in copies.items():
    weights = model.state_dict()  # dense arrays, whichever kernels the layers run
    for name, mask in model.named_masks():
        assert np.array_equal(mask.keep, base_masks[name].keep), (how, name)
        assert np.all(weights[name][~mask.keep] == 0), (how, name)
    assert ts.prune.sparsity_of(model) == ts.prune.sparsity_of(base)
print("masks unchanged and every pruned weight still exactly zero, on both paths")

# %% [markdown]
# One consequence of pruning *replacing* layers: an optimiser holds the parameters it was
# built with. One built before pruning holds the dense layers' weights, which are no longer
# in the model; rather than silently train nothing, it refuses to step. Build the optimiser
# after pruning — `ts.fit` builds its own when it starts, which is why every retraining in
# these lessons just works.

# %%
model = ts.nn.clone(lenet300)
too_early = ts.optim.SGD(model.parameters(), lr=0.05)
ts.prune.prune(model, 0.95)  # fc1, fc2 and fc3 become SparseLinear layers
cross_entropy(model(x128), y128).backward()
try:
    too_early.step()
except RuntimeError as error:
    print("RuntimeError:", error)
else:
    raise AssertionError("an optimiser built before pruning should refuse to step")

# %% [markdown]
# ## 5. Structured pruning: remove whole units
#
# Unstructured pruning leaves every matrix its full size and needs special kernels to skip
# the zeros. **Structured pruning** removes whole *units* instead: a neuron of a `Linear`
# layer (a row of $W^{(\ell)}$ and its bias $b^{(\ell)}_i$) or a filter of a `Conv2d`
# layer. The next layer then loses the input that unit fed (a column of $W^{(\ell+1)}$, or
# an input channel), and what is left is simply a **smaller dense network**, which every
# ordinary dense kernel runs faster — on any hardware, at any sparsity.
#
# `ts.prune.structured_prune(model, fraction)` ranks the units of each hidden layer by the
# norm of their incoming weights (L1 by default, $\lVert W^{(\ell)}_{i,:} \rVert_1$, as
# [Li et al. 2017](REFERENCES.md#pruning-filters--li-et-al-2017) rank filters), and masks
# the `fraction` with the smallest norms: the unit's row and bias, and the next layer's
# weights that read it. The output layer keeps all of its units (they are the classes).
# Its masks stay on the dense layers, whatever their density (no `SparseLinear` here):
# they are only a step on the way to `ts.prune.shrink(model)`, which reads the dense
# weights and builds the smaller dense network. For LeNet-300-100 with $h_1$ and $h_2$
# hidden units left, the parameters are
#
# $$
# \underbrace{784\,h_1 + h_1}_{\texttt{fc1}} + \underbrace{h_1 h_2 + h_2}_{\texttt{fc2}}
# + \underbrace{10\,h_2 + 10}_{\texttt{fc3}},
# $$
#
# so removing a fraction $f$ of the units of both hidden layers keeps about $(1-f)$ of
# `fc1`'s weights and $(1-f)^2$ of `fc2`'s. First the norms the choice is made from:

# %%
for name, norms in ts.prune.unit_norms(lenet300).items():
    print(f"{name}: {len(norms)} units, L1 norms of their incoming weights from "
          f"{norms.min():.2f} to {norms.max():.2f} (median {np.median(norms):.2f})")

# %%
masked300 = ts.nn.clone(lenet300)
masks = ts.prune.structured_prune(masked300, 0.5)  # half of fc1's and of fc2's units
for name, mask in masks.items():
    print(f"{name:10s} {mask}")
small300 = ts.prune.shrink(masked300)
print("units:", ts.prune.unit_counts(masked300), "->", ts.prune.unit_counts(small300))
print(small300)

# %% [markdown]
# Masked and shrunk networks are the same function: a removed unit's row and bias are
# masked, so its output is $\mathrm{ReLU}(0) = 0$, and the next layer's weights that would
# read it are masked too. The shrunk network simply does not compute those zeros.

# %%
with ts.no_grad():
    masked_logits = masked300(data.x_test).data
    small_logits = small300(data.x_test).data
print(f"parameters {masked300.num_parameters():,} (masked) -> {small300.num_parameters():,} "
      f"(shrunk); largest logit difference {np.abs(small_logits - masked_logits).max():.1e}")
np.testing.assert_allclose(small_logits, masked_logits, rtol=1e-4, atol=1e-5)
assert not list(small300.named_masks())  # a plain dense network: no masks left

# %% [markdown]
# The same for LeNet-5, where the units of `conv1` and `conv2` are filters. Removing a
# filter of `conv2` removes an input *channel* of the flattened feature map, i.e. $5 \times
# 5 = 25$ columns of `fc1`; `structured_prune` and `shrink` follow that through the
# `Flatten`. We train LeNet-5 first (lesson 01).

# %%
lenet5 = ts.nn.lenet5(seed=SEED)
started = time.perf_counter()
history = ts.fit(lenet5, data, seed=SEED, quiet=True, **TRAIN["lenet5"])
accuracy5 = ts.evaluate(lenet5, *data.test)["accuracy"]
print(f"LeNet-5: trained {len(history.epochs)} epochs ({history.steps} steps) in "
      f"{time.perf_counter() - started:.0f} s, test accuracy {accuracy5:.4f}")
assert accuracy5 > (0.5 if FAST else 0.9)

masked5 = ts.nn.clone(lenet5)
ts.prune.structured_prune(masked5, 0.5)
small5 = ts.prune.shrink(masked5)
print("units:", ts.prune.unit_counts(masked5), "->", ts.prune.unit_counts(small5))
print("shrunk weights:", {name: p.shape for name, p in small5.named_parameters()
                          if name.endswith("weight")})
with ts.no_grad():
    masked_logits = masked5(data.x_test).data
    small_logits = small5(data.x_test).data
print(f"parameters {masked5.num_parameters():,} -> {small5.num_parameters():,}; "
      f"largest logit difference {np.abs(small_logits - masked_logits).max():.1e}")
np.testing.assert_allclose(small_logits, masked_logits, rtol=1e-4, atol=1e-5)

# %% [markdown]
# ### The speed-up follows what is removed
#
# A smaller dense network needs no special kernel, so its speed-up should follow the
# multiply–adds it removes, at any sparsity — not only beyond a break-even. We time one
# training step (SGD with momentum, batch 128) of each network with 25%, 50%, 75% and 90%
# of its hidden units removed (fast mode: 50% and 90%), interleaved with the unpruned
# network's step. (A timed step changes the weights, so every timing runs on a copy.)

# %%
def training_step(model):
    # a callable: one SGD step of `model` on a fixed batch of 128 (x128, y128 of section 4)
    optimizer = ts.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = cross_entropy(model(x128), y128)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def macs(model):
    # multiply-adds per example of the dense kernels
    return ts.metrics.sparsity_report(model).total["dense_macs"]


trained = {"LeNet-300-100": lenet300, "LeNet-5": lenet5}
SWEEP = (0.5, 0.9) if FAST else (0.25, 0.5, 0.75, 0.9)  # fractions of hidden units removed
sweep = {}
for model_name, model in trained.items():
    steps = {0.0: training_step(ts.nn.clone(model))}
    kept_macs = {0.0: 1.0}
    for fraction in SWEEP:
        masked = ts.nn.clone(model)
        ts.prune.structured_prune(masked, fraction)
        small = ts.prune.shrink(masked)
        steps[fraction] = training_step(small)
        kept_macs[fraction] = macs(small) / macs(model)
    timings = time_interleaved(steps, repeats=REPEATS, warmup=1, block=5)
    for fraction, t in timings.items():
        sweep[model_name, fraction] = (kept_macs[fraction], t["median_seconds"],
                                       t["median_seconds"] / timings[0.0]["median_seconds"])
print(format_table(
    [[model_name, f"{fraction:.0%}", f"{kept:.3f}", f"{1e3 * seconds:.2f}",
      f"{relative:.3f}", f"{1 / relative:.1f}x"]
     for (model_name, fraction), (kept, seconds, relative) in sweep.items()],
    headers=["model", "units removed", "MACs kept", "step ms", "time ÷ dense", "speed-up"]))
print(f"(this run, on {machine_description()})")

# %%
fig, ax = plt.subplots(figsize=(5.5, 4.2))
smallest = min(kept for kept, _, _ in sweep.values())
ax.plot([smallest, 1], [smallest, 1], ":", color="grey", label="time ∝ multiply-adds")
for model_name, marker in zip(trained, ("o-", "s-")):
    points = sorted(v for (m, _), v in sweep.items() if m == model_name)  # (kept, s, ratio)
    ax.plot([p[0] for p in points], [p[2] for p in points], marker, label=model_name)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("multiply-adds kept (shrunk ÷ dense)")
ax.set_ylabel("training-step time ÷ dense")
ax.set_title("Structured pruning: shrunk dense networks", fontsize=10)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# There is no break-even to wait for here: a smaller dense network runs the same dense
# kernels on smaller matrices, so it should be faster whatever the fraction removed (on a
# busy machine a single point can still land above 1 — that is noise, not a break-even).
# Expect the points to follow the diagonal while the products dominate the step, and to
# fall short of it for the smallest networks, where the costs that do not shrink with the
# layers (Python, the autograd graph, the loss; for LeNet-5 also im2col and pooling of the
# full-size input image in `conv1`) become a large part of the step.
#
# ### Structured vs unstructured at the same number of weights
#
# Structured pruning buys speed with fewer choices: it can only remove whole rows, while
# unstructured pruning picks any weights. So at the same number of weights, which network
# is more accurate, and which is faster? For each network and two fractions of units (one
# in fast mode), we build
#
# * **structured**: `structured_prune` + `shrink`, a dense network with $N$ weights;
# * **unstructured**: global magnitude pruning (lesson 02) to exactly the same $N$ non-zero
#   weights;
#
# retrain both the same way (Adam at the training rate $10^{-3}$, the same batches, the
# same number of epochs), and time a training step of each — the unstructured network on
# both of its paths, every masked layer moved by `both_paths` (global pruning leaves each
# layer its own density, so pruning alone may put some layers on each path) — against the
# unpruned network. (The unstructured network keeps all its biases, a few hundred
# parameters more; the dense networks are the ones trained above, without extra epochs.)

# %%
COMPARE = ({"LeNet-300-100": (0.9,), "LeNet-5": (0.75,)} if FAST  # fractions of units
           else {"LeNet-300-100": (0.75, 0.9), "LeNet-5": (0.5, 0.75)})
started = time.perf_counter()
comparison = []
for model_name, fractions in COMPARE.items():
    model = trained[model_name]
    all_weights = ts.metrics.sparsity_report(model).total["weights"]
    comparison.append({"model": model_name, "units removed": "-", "method": "dense",
                       "weights": all_weights,
                       "accuracy": ts.evaluate(model, *data.test)["accuracy"]})
    for fraction in fractions:
        structured = ts.nn.clone(model)
        ts.prune.structured_prune(structured, fraction)
        structured = ts.prune.shrink(structured)
        weights = ts.metrics.sparsity_report(structured).total["weights"]
        unstructured = ts.nn.clone(model)
        ts.prune.prune(unstructured, 1 - weights / all_weights, scope="global")
        assert sum(mask.kept for _, mask in unstructured.named_masks()) == weights
        before = {"structured": ts.evaluate(structured, *data.test)["accuracy"],
                  "unstructured": ts.evaluate(unstructured, *data.test)["accuracy"]}
        for net in (structured, unstructured):
            ts.fit(net, data, seed=SEED, quiet=True, **RETRAIN)
        unstructured_masked_dense, unstructured_sparse = both_paths(unstructured)
        timings = time_interleaved({
            "dense": training_step(ts.nn.clone(model)),
            "structured": training_step(ts.nn.clone(structured)),
            "sparse path": training_step(unstructured_sparse),
            "masked dense": training_step(unstructured_masked_dense),
        }, repeats=REPEATS, warmup=1, block=5)
        speed_up = {k: timings["dense"]["median_seconds"] / t["median_seconds"]
                    for k, t in timings.items()}
        common = {"model": model_name, "units removed": f"{fraction:.0%}", "weights": weights}
        comparison.append({**common, "method": "structured (shrunk)",
                           "before retraining": before["structured"],
                           "accuracy": ts.evaluate(structured, *data.test)["accuracy"],
                           "speed-up": speed_up["structured"]})
        comparison.append({**common, "method": "unstructured (global), sparse path",
                           "before retraining": before["unstructured"],
                           "accuracy": ts.evaluate(unstructured, *data.test)["accuracy"],
                           "speed-up": speed_up["sparse path"],
                           "masked dense": speed_up["masked dense"]})
print(f"pruned, retrained and timed in {time.perf_counter() - started:.0f} s")


# %%
def times(value):
    return "" if value is None else f"{value:.1f}x"


def fraction(value):
    return "" if value is None else f"{value:.4f}"


print(format_table(
    [[r["model"], r["units removed"], r["method"], r["weights"],
      fraction(r.get("before retraining")), fraction(r["accuracy"]),
      times(r.get("speed-up")), times(r.get("masked dense"))] for r in comparison],
    headers=["model", "units removed", "method", "weights (non-zero)", "acc. pruned",
             "acc. retrained", "step speed-up", "on masked dense"]))
print(f"\nspeed-ups: training step, batch 128, against the unpruned network; this run, on "
      f"{machine_description()}. Retraining: {RETRAIN}.")


# %% [markdown]
# How to read the table. The `step speed-up` of a structured network is that of its shrunk
# dense step; of an unstructured one, that of its step on the sparse kernels (the same
# network on the masked dense path is in the last column — expect about 1×, as in section
# 1). Compare the rows with the same `weights`:
#
# * **speed**: the structured network's gain should roughly follow the multiply–adds it
#   removed (see the sweep above); the unstructured network gains only what its sparse
#   kernels win against BLAS at that density — nothing, or a loss, below the break-even of
#   section 3, and usually less than structured pruning's gain even above it;
# * **accuracy**: removing whole units is a much coarser cut. A removed unit takes all of
#   its connections with it, the important ones too, so right after pruning (`acc. pruned`)
#   expect the structured network to have lost far more than the unstructured one, which
#   keeps the largest weights wherever they are. Retraining recovers much of it; at the
#   same number of weights, expect the structured network to stay somewhat less accurate —
#   check how much in your table. One seed and 1,000 test digits (one digit = 0.1 points)
#   make small differences noise; in fast mode, with almost no retraining, the accuracies
#   say little.
#
# That is the trade in one table: structured sparsity is what ordinary hardware and
# libraries can turn into speed; unstructured sparsity keeps more accuracy per weight but
# needs high sparsity *and* good sparse kernels before it is faster at all.
#
# ## 6. Beside the papers
#
# * **[Wen, Wu, Wang, Chen & Li (2016)](REFERENCES.md#learning-structured-sparsity--wen-et-al-2016)**,
#   "Learning structured sparsity in deep neural networks", learn structure with a
#   group-lasso penalty on filters, channels and filter shapes. Quoted: AlexNet's
#   convolutional layers became **5.1× faster on CPU** (3.1× on GPU), about **twice the
#   speed-up of unstructured sparsity** at comparable sparsity.
# * **[Elsen, Dukhan, Gale & Simonyan (2020)](REFERENCES.md#fast-sparse-convnets--elsen-et-al-2020)**,
#   "Fast sparse ConvNets": well-written sparse kernels *do* make sparse networks faster on
#   CPUs — sparsity is not hopeless, it needs kernels designed for it.
#
# Our numbers, measured in this run (sections 3 and 5), beside them. The comparisons are
# loose: Wen et al. timed AlexNet's convolutions at inference; we time LeNet training
# steps, on whatever machine runs this notebook.

# %%
lenet5_rows = [r for r in comparison if r["model"] == "LeNet-5" and r["units removed"] == "75%"]
structured5 = next(r for r in lenet5_rows if r["method"].startswith("structured"))
unstructured5 = next(r for r in lenet5_rows if r["method"].startswith("unstructured"))
best_unstructured5 = max(unstructured5["speed-up"], unstructured5["masked dense"])
rows = [
    ["structured speed-up", "5.1x (AlexNet conv layers, CPU)", "Wen et al. 2016",
     f"{structured5['speed-up']:.1f}x (LeNet-5 training step, 75% of units removed)"],
    ["structured ÷ unstructured gain", "about 2", "Wen et al. 2016",
     f"{structured5['speed-up'] / best_unstructured5:.1f} (same LeNet-5, same weights; "
     f"unstructured at its faster path)"],
    ["sparse kernels beat dense on CPU", "yes, with good kernels", "Elsen et al. 2020",
     f"training step at 95%: sparse path "
     f"{step_ms['dense'] / step_ms['sparse-path']:.1f}x, masked dense "
     f"{step_ms['dense'] / step_ms['masked-dense-path']:.1f}x (section 4)"],
]
print(format_table(rows, headers=["", "quoted", "source", "ours (this run)"]))
print(f"\nours: measured above on {machine_description()}")

# %% [markdown]
# If your machine is busy (other jobs, a laptop on battery), every "ours" number can be off
# by a factor of several — rerun the notebook, or `python benchmarks/sparse_kernels.py`,
# on a quiet machine before drawing conclusions. What should hold everywhere is the shape:
# masked dense never helps; sparse kernels help only past a break-even that depends on the
# kernel and the machine; structured pruning helps at any sparsity, roughly in proportion
# to what it removes.
#
# ## 7. Threads that spin, threads that sleep
#
# Two libraries run parallel code in this notebook: OpenBLAS behind NumPy's products, and
# the OpenMP (or TBB / workqueue) pool behind Numba's `prange` loops. Each keeps a pool of
# worker threads, and what an idle worker does decides the speed of code that mixes them.
# By default an idle worker **spins** — it busy-waits, hoping for more work soon. On a
# machine with many cores nobody notices. On a 2-core machine, when a NumPy product is
# followed by a Numba kernel, the BLAS workers spin on exactly the cores the kernel needs;
# the docstring of `tinysparse/threads.py` records an alternating pair measured 10× slower
# (8.0 ms instead of 0.81 ms).
#
# The opposite extreme hurts too: a worker that **sleeps** must be woken, and on a virtual
# machine that was measured to cost 50–150 µs — more than a whole sparse product of a small
# layer takes. So tinysparse sets, before NumPy loads: `OPENBLAS_THREAD_TIMEOUT=4`
# (OpenBLAS workers sleep almost at once after a product, the shortest timeout it allows),
# and `GOMP_SPINCOUNT=10000` (GNU OpenMP workers, behind Numba and PyTorch, spin for a
# fraction of a millisecond: long enough to catch the next kernel of a training step, short
# enough not to sit on a core while BLAS needs it). Kernels with too little work to be
# worth a second core (`PARALLEL_FROM` in `tinysparse/kernels/numba_kernels.py`) run in one
# thread and wake nobody. The libraries read these variables once, when they load — so they
# must be in the environment **before NumPy is imported**. That is why every lesson starts
# with `import tinysparse as ts` before `import numpy as np`: `tinysparse/__init__.py` calls
# `threads.configure()` first thing, which sets them unless you set them yourself. (If NumPy
# came first, you get a warning when the compiled kernels first load.) Only how idle threads
# wait changes, never a result.
#
# Sleeping workers do not fix everything. On a machine shared with other busy processes,
# a parallel product must wait, at every synchronisation, for a worker the operating
# system has not scheduled yet — a millisecond-sized BLAS call can then take ten times as
# long with two threads as with one. If your timings look erratic on a shared machine, try
# `OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1` (set before Python starts) and compare.

# %%
import numba

print(inspect.getsource(ts.threads.configure))
for name, value in ts.threads.SETTINGS.items():
    print(f"os.environ[{name!r}] = {os.environ.get(name)!r}   (tinysparse's default {value!r})")
try:
    print("Numba's threading layer in this process:", numba.threading_layer())
except ValueError:  # no parallel kernel has run yet
    print("no parallel Numba kernel has run in this process yet")


# %% [markdown]
# ## Exercises
#
# Three exercises and a design task. Each exercise asks for a **function**; the cell after
# it checks your function on this notebook's networks and then on inputs this text never
# shows (hidden tests, added back when a teacher grades the notebook), with the library
# functions that would answer it switched off while your code runs (calling one raises an
# error).
#
# The cells you fill in hold **our solution, between two marker comments, so that the
# notebook runs top to bottom — try it yourself first**. In the student edition
# (`tinysparse course release DIR`) they read `# YOUR CODE HERE`; `tinysparse course grade
# NOTEBOOK` scores a completed notebook.
#
# ### Exercise 1 — write a CSR SpMM yourself
#
# Write `my_spmm(indptr, indices, values, x)`, the product $Y = W X$ for $W$ in CSR and a
# feature-major $X$ (in × batch), with a plain loop over the rows of $W$ and, inside, over
# each row's non-zeros: `y[i] += values[k] * x[indices[k]]` (a whole batch row at once).
#
# Then write `my_spmm_transposed_from_csr(indptr, indices, values, dy, cols)`, the product
# $dX = W^\top dY$, **from the same CSR arrays** — no CSC: for each non-zero $W_{ij}$, add
# $W_{ij}\, dY_{i,:}$ to row $j$ of $dX$. (This *scatter* is correct single-threaded. Why
# would it be a problem if each thread took a share of the rows $i$? That is why the
# library walks the CSC view instead.) NumPy only: the checks switch off the library's
# kernels while yours run, and compare your products with `kernels.reference("spmm")` and
# `kernels.reference("spmm_transposed")` on the small example of section 2, on a random
# matrix, and on matrices you do not see (empty rows and columns among them).

# %% nbgrader={"grade": false, "grade_id": "exercise-1", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_spmm(indptr, indices, values, x):
    ### BEGIN SOLUTION
    y = np.zeros((len(indptr) - 1, x.shape[1]), dtype=x.dtype)
    for i in range(len(indptr) - 1):                # one output row (one neuron) at a time
        for k in range(indptr[i], indptr[i + 1]):   # the non-zeros of row i
            y[i] += values[k] * x[indices[k]]
    return y
    ### END SOLUTION


def my_spmm_transposed_from_csr(indptr, indices, values, dy, cols):
    ### BEGIN SOLUTION
    dx = np.zeros((cols, dy.shape[1]), dtype=dy.dtype)
    for i in range(len(indptr) - 1):
        for k in range(indptr[i], indptr[i + 1]):
            dx[indices[k]] += values[k] * dy[i]     # scatter into row j = indices[k]
    return dx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 1 (no need to edit)
def check_spmm(keep, weight, x, dy):
    """Your two products against the library's reference kernels (switched off for yours)."""
    s = build_structure(keep)
    expected = (kernels.reference("spmm")(s.indptr, s.indices, s.gather(weight), x),
                kernels.reference("spmm_transposed")(s.t_indptr, s.t_indices, s.t_order,
                                                     s.gather(weight), dy))
    with ts.exercises.switched_off(kernels, "reference", "compiled", "implementation",
                                   "one_thread", "spmm", "spmm_transposed"), \
            ts.exercises.switched_off(sparse_reference, "spmm", "spmm_transposed"), \
            ts.exercises.switched_off(numba_kernels, "spmm", "spmm_transposed"):
        mine = (np.asarray(my_spmm(s.indptr, s.indices, s.gather(weight), x)),
                np.asarray(my_spmm_transposed_from_csr(s.indptr, s.indices, s.gather(weight),
                                                       dy, keep.shape[1])))
    for name, yours, library in zip(("my_spmm", "my_spmm_transposed_from_csr"), mine, expected):
        assert yours.shape == library.shape, f"{name}: shape {yours.shape}, expected {library.shape}"
        np.testing.assert_allclose(yours, library, rtol=1e-5, atol=1e-5, err_msg=name)


check_rng = np.random.default_rng(SEED + 1)
small_x = np.arange(8, dtype=np.float32).reshape(4, 2)
check_spmm(keep=W != 0, weight=W, x=small_x, dy=np.ones((3, 2), dtype=np.float32))
keep_check = check_rng.random((40, 60)) >= 0.8
check_spmm(keep_check, (check_rng.standard_normal((40, 60)) * keep_check).astype(np.float32),
           check_rng.standard_normal((60, 16)).astype(np.float32),
           check_rng.standard_normal((40, 16)).astype(np.float32))
print("Exercise 1: both products agree with the library's reference kernels - "
      "visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng(20261209)
for hidden_rows, hidden_cols, hidden_batch, hidden_density in (
        (17, 9, 3, 0.3), (5, 33, 1, 0.05), (64, 48, 7, 0.5), (8, 8, 5, 0.0)):
    hidden_keep = hidden_rng.random((hidden_rows, hidden_cols)) < hidden_density
    hidden_keep[hidden_rows // 2] = False                      # an empty row
    hidden_weight = (hidden_rng.standard_normal(hidden_keep.shape) * hidden_keep)
    check_spmm(hidden_keep, hidden_weight.astype(np.float32),
               hidden_rng.standard_normal((hidden_cols, hidden_batch)).astype(np.float32),
               hidden_rng.standard_normal((hidden_rows, hidden_batch)).astype(np.float32))
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — count a layer's multiply–adds
#
# Write `layer_macs(layer, height, width)`: how many multiply–adds one example costs
# `layer` when its kernel skips the pruned weights. `layer` is a `Linear`, `Conv2d`,
# `SparseLinear` or `SparseConv2d`; `height` and `width` are the size of the image the
# layer receives (a `Linear` ignores them). A weight costs one multiply–add per example in
# a `Linear`, and one per output position in a convolution, whose output has
# $H_\text{out} = \lfloor (H + 2p - k)/\text{stride} \rfloor + 1$ rows (and as many columns
# by the same rule): `layer.kernel_size`, `layer.stride`, `layer.padding`. The kept weights
# are counted by the layer's mask, `dict(layer.named_masks()).get("weight")` (`.kept`); a
# layer that was never pruned has no mask and keeps its `layer.weight.size` weights.
# Sparse layers have no `.weight`, but they always have a mask (section 2).
#
# The check compares your counts with `sparse_macs` in `ts.metrics.sparsity_report`
# (switched off while yours run) for the first layers of a LeNet-300-100 pruned to 97%
# and of a LeNet-5 pruned to 95% — both sparse layers now — and for layers you do not
# see, sparse and masked dense, with other strides and paddings.

# %%
lenet300_97 = ts.nn.clone(lenet300)
ts.prune.prune(lenet300_97, 0.97)
lenet5_95 = ts.nn.clone(lenet5)
ts.prune.prune(lenet5_95, 0.95)
print(lenet300_97.fc1, "\n", lenet5_95.conv1)


# %% nbgrader={"grade": false, "grade_id": "exercise-2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_macs(layer, height=None, width=None):
    ### BEGIN SOLUTION
    mask = dict(layer.named_masks()).get("weight")
    kept = mask.kept if mask is not None else layer.weight.size  # one MAC per kept weight
    if isinstance(layer, ts.nn.Linear | ts.nn.SparseLinear):
        return kept
    k, stride, padding = layer.kernel_size, layer.stride, layer.padding
    rows = (height + 2 * padding - k) // stride + 1       # H_out = (H + 2p - k)/stride + 1
    columns = (width + 2 * padding - k) // stride + 1
    return kept * rows * columns                          # ... once per output position
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 2 (no need to edit)
def check_layer_macs(model, layer_name, height, width, input_shape=(1, 28, 28)):
    """Your count for one layer against the library's sparsity report."""
    row = next(r for r in ts.metrics.sparsity_report(model, input_shape).rows
               if r["layer"] == f"{layer_name}.weight")
    with ts.exercises.switched_off(ts.metrics, "sparsity_report", "_output_positions"):
        mine = layer_macs(model.get_submodule(layer_name), height, width)
    assert mine == row["sparse_macs"], (layer_name, mine, row["sparse_macs"])
    return mine


macs_fc1 = check_layer_macs(lenet300_97, "fc1", None, None)
macs_conv1 = check_layer_macs(lenet5_95, "conv1", 28, 28)
print(f"Exercise 2: fc1 {macs_fc1:,} of {784 * 300:,} multiply-adds per example; conv1 "
      f"{macs_conv1:,} of {150 * 28 * 28:,} - visible checks passed")
### BEGIN HIDDEN TESTS
check_layer_macs(lenet5_95, "conv2", 14, 14)
check_layer_macs(lenet5_95, "fc3", None, None)
check_layer_macs(ts.nn.lenet5(seed=4), "conv2", 14, 14)     # never pruned: no mask
for hidden_seed, (hidden_stride, hidden_padding, hidden_sparsity) in enumerate(
        [(2, 1, 0.9), (3, 0, 0.5), (1, 3, 0.97)]):
    hidden_conv = ts.nn.Sequential(("conv", ts.nn.Conv2d(2, 5, 3, stride=hidden_stride,
                                                         padding=hidden_padding,
                                                         rng=hidden_seed)))
    ts.prune.prune(hidden_conv, hidden_sparsity)             # 0.5: stays masked dense
    check_layer_macs(hidden_conv, "conv", 19, 13, input_shape=(2, 19, 13))
hidden_mlp = ts.nn.mlp([30, 20, 4], seed=5)
ts.prune.prune(hidden_mlp, 0.6)
hidden_macs = check_layer_macs(hidden_mlp, "fc1", None, None, input_shape=(30,))
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — count the parameters of a shrunk network
#
# Structured pruning followed by `shrink` leaves a LeNet-5 with fewer filters and neurons
# (section 5). Write `lenet5_parameters(counts)`: from `counts`, what
# `ts.prune.unit_counts(shrunk)` returns — the number of filters or neurons of `conv1`,
# `conv2`, `fc1`, `fc2` and `fc3` — the number of parameters of the network, weights and
# biases. Remember that `conv1` sees one input channel, that all kernels are $5 \times 5$,
# and that `fc1` reads the flattened output of `conv2` after pooling: $5 \times 5$ values
# per `conv2` filter. The check compares with `num_parameters()` of networks shrunk by
# other fractions than the one below (`num_parameters` switched off while yours runs).

# %%
shrunk = ts.nn.clone(lenet5)
ts.prune.structured_prune(shrunk, 0.75)
shrunk = ts.prune.shrink(shrunk)
print(ts.prune.unit_counts(shrunk))


# %% nbgrader={"grade": false, "grade_id": "exercise-3", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lenet5_parameters(counts):
    ### BEGIN SOLUTION
    c1, c2, f1, f2, f3 = (counts[name] for name in ("conv1", "conv2", "fc1", "fc2", "fc3"))
    return ((1 * 5 * 5 * c1 + c1) + (c1 * 5 * 5 * c2 + c2)
            + (c2 * 5 * 5 * f1 + f1) + (f1 * f2 + f2) + (f2 * f3 + f3))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-3-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 3 (no need to edit)
def check_lenet5_parameters(network):
    """Your count from the unit counts against the network's own count."""
    expected, counts = network.num_parameters(), ts.prune.unit_counts(network)
    with ts.exercises.switched_off(ts.nn.Module, "num_parameters", "parameters",
                                   "named_parameters"):
        mine = lenet5_parameters(dict(counts))
    assert mine == expected, (counts, mine, expected)
    return mine


parameters_by_hand = check_lenet5_parameters(shrunk)
print(f"Exercise 3: {parameters_by_hand:,} parameters, {lenet5.num_parameters():,} before "
      f"({parameters_by_hand / lenet5.num_parameters():.1%}) - visible checks passed")
### BEGIN HIDDEN TESTS
check_lenet5_parameters(ts.nn.lenet5(seed=1))                 # nothing removed
for hidden_fraction in (0.3, 0.6, 0.9):
    hidden_shrunk = ts.nn.lenet5(seed=2)
    ts.prune.structured_prune(hidden_shrunk, hidden_fraction)
    check_lenet5_parameters(ts.prune.shrink(hidden_shrunk))
### END HIDDEN TESTS

# %% [markdown]
# ### Design task — a LeNet-300-100 that is sparse where it runs
#
# Choose a pruning rate for each layer of the trained LeNet-300-100 of section 1 (magnitude
# pruning, layer by layer) such that, after retraining (`DESIGN_RETRAIN`: ten epochs of
# Adam at $10^{-3}$; one short epoch in fast mode),
#
# * **every layer takes the sparse path** — pruning makes it a `SparseLinear`;
# * the network costs **at most 8% of the dense multiply–adds** per example;
# * its test accuracy is **at least 0.93** (in fast mode, where the dense network trained
#   one epoch and retraining is fifteen steps, at least 0.65).
#
# A uniform 90% (section 1) costs too many multiply–adds; a uniform 95% loses the accuracy
# target, and global pruning at 92% leaves a layer on the masked dense path. Which layer
# can give up the most, and what does the switch point ask of the one that can give up the
# least? The check prunes and retrains with your rates and reads the sparsity report; it
# counts, it never times anything.

# %% nbgrader={"grade": false, "grade_id": "design-task", "locked": false, "schema_version": 3, "solution": true, "task": false}
design_sparsities = {"fc1.weight": None, "fc2.weight": None, "fc3.weight": None}  # yours
### BEGIN SOLUTION
design_sparsities = {"fc1.weight": 0.95, "fc2.weight": 0.85, "fc3.weight": 0.8}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "design-task-check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# Checks for the design task (no need to edit)
DESIGN_MACS = 0.08
DESIGN_ACCURACY = 0.65 if FAST else 0.93
DESIGN_RETRAIN = {"epochs": 1, "max_steps": 15} if FAST else {"epochs": 10}
assert set(design_sparsities) == {"fc1.weight", "fc2.weight", "fc3.weight"}, (
    "give a rate for each of fc1.weight, fc2.weight, fc3.weight")
designed = ts.nn.clone(lenet300)
ts.prune.prune(designed, dict(design_sparsities))
ts.fit(designed, data, seed=SEED, quiet=True, **DESIGN_RETRAIN)
design_report = ts.metrics.sparsity_report(designed)
design_paths = {row["layer"]: row["path"] for row in design_report.rows}
design_macs = design_report.total["sparse_macs"] / design_report.total["dense_macs"]
design_accuracy = ts.evaluate(designed, *data.test)["accuracy"]
print(f"Design task: paths {design_paths}; {design_macs:.2%} of the dense multiply-adds "
      f"(at most {DESIGN_MACS:.0%}); test accuracy {design_accuracy:.4f} "
      f"(at least {DESIGN_ACCURACY})")
assert set(design_paths.values()) == {"sparse"}, f"not every layer is sparse: {design_paths}"
assert design_macs <= DESIGN_MACS, f"{design_macs:.2%} of the multiply-adds > {DESIGN_MACS:.0%}"
assert design_accuracy >= DESIGN_ACCURACY, "below the accuracy target"

# %% [markdown]
# ## Summary
#
# * Pruning cuts the **count** of multiply–adds by $1/(1-s)$; the **time** is another
#   matter. A masked dense layer ($W \odot M$ through BLAS) is no faster than the unpruned
#   one, whatever the sparsity: dense kernels multiply the zeros too.
# * Sparse kernels skip the zeros: CSR (`indptr`, `indices`, `values`) for $Y = WX$, the
#   CSC view for $W^\top dY$, SDDMM for the weight gradient at the kept positions only. In
#   tinysparse each has a readable NumPy twin (the specification) and a compiled Numba
#   twin; feature-major activations make their inner loops contiguous, and returning the
#   transposed view keeps that layout from layer to layer without copies.
# * The compute path is the layer's **type**, chosen when pruning: a layer whose mask keeps
#   at most `ts.sparse.density_threshold()` of its weights becomes a `SparseLinear` (or
#   `SparseConv2d`), and `print(model)` and the sparsity report show it; `ts.nn.to_sparse`
#   and `ts.nn.to_dense` move layers by hand. A sparse layer's parameter, `values`, is the
#   only copy of its weights — its gradient is the SDDMM's vector of the same length, and
#   the optimiser updates it with the same rule as every other parameter. The dense matrix
#   (`dense_weight()`, `state_dict()`) is a picture, made when asked for.
# * Each sparse multiply–add costs more than a dense one, so sparse kernels only win past
#   a **break-even** sparsity — measured in this run for each product; pruning moves a layer
#   to them from 80% sparsity by default. A whole training step gains less than its
#   products, and the sparse path computes the same losses as the masked dense one, with no
#   pruned weight regrowing.
# * **Structured pruning** (whole neurons and filters, then `shrink`) gives a smaller dense
#   network: the same function as the masked one, faster at any sparsity roughly in
#   proportion to what it removes, at some cost in accuracy per weight.
# * On small machines, idle BLAS threads must sleep, not spin: `import tinysparse` before
#   NumPy.

# %%
print(f"notebook ran in {time.perf_counter() - notebook_started:.0f} s "
      f"({'fast' if FAST else 'full'} mode, {machine_description()})")
