# %% [markdown]
# # Lesson 00 — Autograd from scratch, and how to check it
#
# Everything else in this course — training, pruning by saliency, the Optimal Brain
# Surgeon — rests on one piece of machinery: the gradient of a loss with respect to every
# weight, exact, and for about the cost of two forward passes. This notebook opens that
# machine up.
#
# You will
#
# 1. build a small expression with `tinysparse.Tensor`, call `.backward()`, and read the
#    forward and backward pass of real ops side by side;
# 2. see why a tensor used twice receives the **sum** of its gradients, and how broadcasting
#    is undone in the backward pass;
# 3. write a finite-difference gradient yourself and find out, on a log–log plot, why the
#    step $\varepsilon$ must be neither too large nor too small;
# 4. check ops with `tinysparse.gradcheck`, and watch it catch a wrong backward pass;
# 5. do two exercises that check themselves, and a design task with a target: the cheapest
#    gradient check that catches four bugs.
#
# You need the chain rule, partial derivatives and NumPy. The notebook runs in a few
# seconds; `TINYSPARSE_FAST=1` (what the tests use) only thins out one sweep.

# %%
import inspect
import os

import tinysparse as ts  # first: it tells the BLAS threads how to wait, before NumPy loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np

import tinysparse.exercises  # the exercises' checks
from tinysparse import Tensor
from tinysparse.autograd import nn_ops, ops
from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
rng = np.random.default_rng(0)  # every random number in this notebook comes from here
np.set_printoptions(precision=5, suppress=True)
print("fast mode" if FAST else "full mode")

# %% [markdown]
# ## 1. A computational graph
#
# Take a one-neuron model, $L = \tanh(w x + b)$. Written as a graph, the leaves $w$, $x$,
# $b$ feed the ops $\times$, $+$ and $\tanh$, and each op makes a new node:
#
# $$
# w, x \xrightarrow{\;\times\;} u = wx \xrightarrow{\;+\,b\;} a = u + b
# \xrightarrow{\;\tanh\;} L = \tanh a .
# $$
#
# **Reverse-mode differentiation** (backpropagation) walks this graph once, from the output
# back to the leaves, and multiplies local derivatives as the chain rule says:
#
# $$
# \frac{\partial L}{\partial a} = 1 - \tanh^2 a, \qquad
# \frac{\partial L}{\partial b} = \frac{\partial L}{\partial a}\cdot 1, \qquad
# \frac{\partial L}{\partial w} = \frac{\partial L}{\partial a}\,
# \frac{\partial a}{\partial u}\,\frac{\partial u}{\partial w} = (1 - \tanh^2 a)\, x .
# $$
#
# In tinysparse a `Tensor` holds a NumPy array in `.data`. A tensor made by an op remembers
# that op (in `._ctx`), and the op remembers its inputs: that chain of references *is* the
# graph. `requires_grad=True` marks the leaves whose gradient we want. We compute in
# float64 in this lesson (training uses float32; section 6 shows why checking gradients
# needs float64).

# %%
x = Tensor(1.5, dtype=np.float64, name="x")                      # an input: no gradient wanted
w = Tensor(0.8, dtype=np.float64, requires_grad=True, name="w")  # a weight
b = Tensor(-0.3, dtype=np.float64, requires_grad=True, name="b")  # a bias

a = w * x + b
L = a.tanh()
print("a =", a)
print("L =", L)


# %% [markdown]
# The `repr` names the op that made each tensor. A few lines of Python print the whole graph
# by following `._ctx.inputs` from the output to the leaves:

# %%
def show_graph(node, depth=0):
    # One line per tensor, the output first; an op's inputs are indented below it.
    op = type(node._ctx).__name__ if node._ctx is not None else "leaf"
    label = f" {node.name}" if node.name else ""
    print(f"{'    ' * depth}{op}{label}: value {float(node.data):+.4f}")
    if node._ctx is not None:
        for parent in node._ctx.inputs:
            show_graph(parent, depth + 1)


show_graph(L)

# %%
L.backward()

by_hand_b = 1 - np.tanh(a.data) ** 2
by_hand_w = by_hand_b * x.data
print(f"dL/dw = {w.grad:.10f}   by hand (1 - tanh²a)·x = {by_hand_w:.10f}")
print(f"dL/db = {b.grad:.10f}   by hand (1 - tanh²a)   = {by_hand_b:.10f}")
print(f"dL/da = {a.grad:.10f}   (an intermediate tensor keeps this call's gradient too)")
print(f"x.grad = {x.grad}   (x did not ask for one)")
assert np.isclose(w.grad, by_hand_w) and np.isclose(b.grad, by_hand_b)

# %% [markdown]
# ## 2. One op = a forward and a backward, side by side
#
# Every op is a small class, a subclass of `tinysparse.autograd.Function`:
#
# * `forward(*arrays)` computes the output from NumPy arrays and **saves** on `self` whatever
#   the backward pass will need;
# * `backward(grad)` receives $g = \partial L / \partial\,\text{output}$ (the *upstream*
#   gradient, same shape as the output) and returns $\partial L / \partial\,\text{input}$
#   for each input. This is a vector–Jacobian product, $g^\top J$; the Jacobian itself is
#   never built.
#
# For the elementwise product $c = a \odot b$, $\;\partial L/\partial a = g \odot b$ and
# $\partial L/\partial b = g \odot a$. For $y = \tanh x$, $\;\partial L/\partial x =
# g\,(1 - y^2)$ — note that `Tanh` saves its *output* $y$ and reuses it:

# %%
print(inspect.getsource(ops.Mul))
print(inspect.getsource(nn_ops.Tanh))

# %% [markdown]
# (`needs_grad` lets an op skip a gradient nobody asked for; `unbroadcast` is section 4.)
#
# `Function.apply` runs `forward` on the arrays and, if any input requires a gradient, stores
# the inputs on the op and sets `out._ctx = op`. That is all the graph building there is.
# The backward pass is two functions: `topological_order` lists every node after all the
# nodes it depends on, and `Tensor.backward` walks that list **in reverse**, so a node is
# only processed once every one of its users has handed it a gradient:

# %%
print(inspect.getsource(ts.autograd.topological_order))
print(inspect.getsource(ts.Tensor.backward))

# %%
order = ts.autograd.topological_order(L)
print(" -> ".join(node.name or type(node._ctx).__name__ for node in order))
print("backward visits them right to left; x is absent because it does not require grad")

# %% [markdown]
# ## 3. A tensor used twice gets the sum of its gradients
#
# If $x$ feeds several ops, $y = f(u_1(x), u_2(x), \dots)$, the multivariate chain rule adds
# the contributions of every path:
#
# $$
# \frac{dy}{dx} = \sum_i \frac{\partial y}{\partial u_i}\,\frac{d u_i}{d x}.
# $$
#
# In $y = x \cdot x + x$ the tensor $x$ is used three times — twice by the product, once by
# the sum — so $dy/dx = x + x + 1 = 2x + 1$. In `backward` above this is the line
# `grads[key] = grads[key] + parent_grad`. An engine that *overwrote* instead of adding (an
# early version of micrograd did) returns a wrong number without any error.

# %%
x = Tensor(3.0, dtype=np.float64, requires_grad=True, name="x")
y = x * x + x
y.backward()
print("dy/dx =", x.grad, "  expected 2x + 1 =", 2 * 3.0 + 1)
assert x.grad == 7.0

# %% [markdown]
# Leaves also accumulate **across** calls to `backward`, as in PyTorch. That is what you want
# when gradients of several losses should add up, and it is why a training loop clears the
# gradients (`zero_grad`) before every step:

# %%
(x * x + x).backward()  # a second graph, a second backward: the leaf adds to its .grad
print("after a second backward:", x.grad, "= 7 + 7")
x.zero_grad()
(x * x + x).backward()
print("after zero_grad and one more backward:", x.grad)
assert x.grad == 7.0

# %% [markdown]
# ## 4. Broadcasting, backwards
#
# Adding $b \in \mathbb{R}^{3}$ to every row of $X \in \mathbb{R}^{4\times 3}$, NumPy silently
# uses every $b_j$ four times. Each use contributes a gradient, so
#
# $$
# \frac{\partial L}{\partial b_j} = \sum_{i=1}^{4} \frac{\partial L}{\partial Y_{ij}} .
# $$
#
# The backward of broadcasting is a **sum over the stretched axes**, which is what
# `unbroadcast` does before a binary op hands a gradient to an input:

# %%
print(inspect.getsource(ops.unbroadcast))

# %%
X = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
bias = Tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True)
Y = (X + bias).tanh()
Y.sum().backward()

dL_dY = 1 - Y.data**2  # the gradient arriving at X + bias, shape (4, 3)
print("bias.grad           =", bias.grad, "  shape", bias.grad.shape)
print("column sums of dL/dY =", dL_dY.sum(axis=0))
assert bias.grad.shape == bias.shape and np.allclose(bias.grad, dL_dY.sum(axis=0))

# The docstring's example: an array of shape (3, 1) broadcast to (2, 3, 4)
print(ops.unbroadcast(np.ones((2, 3, 4)), (3, 1)).ravel(),
      "<- every element was used 2 x 4 = 8 times")


# %% [markdown]
# ## 5. Finite differences: a gradient without calculus
#
# How do we know a backward pass is right? Compare it with something much simpler. Taylor's
# theorem gives
#
# $$
# f(x \pm \varepsilon) = f(x) \pm \varepsilon f'(x) + \tfrac{\varepsilon^2}{2} f''(x)
# \pm \tfrac{\varepsilon^3}{6} f'''(x) + O(\varepsilon^4),
# $$
#
# so the **forward difference** has an error proportional to $\varepsilon$,
#
# $$
# \frac{f(x+\varepsilon) - f(x)}{\varepsilon} = f'(x) + \tfrac{\varepsilon}{2} f''(x)
# + O(\varepsilon^2),
# $$
#
# while in the **central difference** the even terms cancel and the error is
# $O(\varepsilon^2)$:
#
# $$
# \frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon} = f'(x)
# + \tfrac{\varepsilon^2}{6} f'''(x) + O(\varepsilon^4).
# $$
#
# For $f : \mathbb{R}^n \to \mathbb{R}$, perturb one coordinate at a time:
# $\partial f / \partial x_i \approx \big(f(x + \varepsilon e_i) - f(x - \varepsilon e_i)\big)
# / 2\varepsilon$. That is our whole numerical gradient:

# %%
def my_numerical_gradient(f, x, eps=1e-6):
    # Central differences of the scalar f() with respect to the array x (changed in place).
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        f_plus = f()
        x[i] = saved - eps
        f_minus = f()
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


# %% [markdown]
# Let us differentiate the mean cross-entropy of a small linear classifier (8 examples,
# 5 features, 3 classes) with respect to its weight matrix $W$, three ways: with our
# function, with the library's `tinysparse.autograd.numerical_gradient`, and with autograd.

# %%
features = rng.standard_normal((8, 5))
labels = rng.integers(0, 3, size=8)
W = rng.standard_normal((3, 5))  # the array we differentiate with respect to
b0 = np.zeros(3)


def classifier_loss(weight):
    logits = ts.autograd.linear(Tensor(features), weight, Tensor(b0))
    return ts.autograd.cross_entropy(logits, labels)


def f():  # the loss as a plain float, reading W as it is right now
    return float(classifier_loss(Tensor(W)).data)


mine = my_numerical_gradient(f, W)
library = ts.autograd.numerical_gradient(f, W)
W_tensor = Tensor(W, requires_grad=True)
classifier_loss(W_tensor).backward()
analytic = W_tensor.grad

print("autograd gradient:\n", analytic)
print(f"max |mine - library|  = {np.abs(mine - library).max():.1e}")
print(f"max |mine - autograd| = {np.abs(mine - analytic).max():.1e}")
assert np.allclose(mine, library, rtol=0, atol=1e-12)
assert np.allclose(mine, analytic, rtol=1e-6, atol=1e-8)

# %% [markdown]
# The library's version is the same loop over a flattened view:

# %%
print(inspect.getsource(ts.autograd.numerical_gradient))


# %% [markdown]
# Finite differences need $2n$ evaluations of $f$ for $n$ parameters: for the 266,610 weights
# of LeNet-300-100, 533,220 forward passes for *one* gradient, where backpropagation costs
# about two. They are a tool for **checking** gradients on small inputs, never for training.
#
# ## 6. How small should $\varepsilon$ be?
#
# Two errors pull in opposite directions.
#
# * **Truncation** shrinks with $\varepsilon$: about $\tfrac{\varepsilon}{2}|f''|$ (forward)
#   or $\tfrac{\varepsilon^2}{6}|f'''|$ (central).
# * **Round-off** grows as $\varepsilon$ shrinks. Each value of $f$ carries a relative error
#   of about the machine epsilon $u$ ($2^{-52} \approx 2.2\times10^{-16}$ in float64,
#   $2^{-23} \approx 1.2\times10^{-7}$ in float32); subtracting two nearly equal values and
#   dividing by $\varepsilon$ blows it up to about $u\,|f| / \varepsilon$.
#
# Minimising the sum, the best step is near $\varepsilon \sim \sqrt{u}$ for the forward
# difference and $\varepsilon \sim u^{1/3}$ for the central one. Let us measure it on
# $f(x) = \tanh(x)\, e^{x}$ at $x = 0.5$, computed with tinysparse ops in float64 and in
# float32, against autograd's float64 derivative.

# %%
def f_scalar(x):
    # f(x) = tanh(x) · exp(x), with tinysparse ops, in the dtype of x
    t = Tensor(x)
    return (t.tanh() * t.exp()).data


x0 = 0.5
t0 = Tensor(np.float64(x0), requires_grad=True)
(t0.tanh() * t0.exp()).backward()
exact = float(t0.grad)
closed_form = (1 - np.tanh(x0) ** 2) * np.exp(x0) + np.tanh(x0) * np.exp(x0)
assert np.isclose(exact, closed_form, rtol=1e-14)
print(f"f'(0.5) = {exact:.15f} (autograd), {closed_form:.15f} (closed form)")

steps = np.logspace(-1, -13, 25 if FAST else 61)
errors = {}
for dtype in (np.float64, np.float32):
    x = dtype(x0)
    forward, central = [], []
    for eps in steps:
        h = dtype(eps)  # the step in the same precision as x
        forward.append(abs(float((f_scalar(x + h) - f_scalar(x)) / h) - exact))
        central.append(abs(float((f_scalar(x + h) - f_scalar(x - h)) / (2 * h)) - exact))
    errors[dtype.__name__] = {"forward": np.array(forward), "central": np.array(central)}

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.8))
for name, color in (("float64", "C0"), ("float32", "C3")):
    for kind, style in (("forward", "--"), ("central", "-")):
        ax.loglog(steps, np.maximum(errors[name][kind], 1e-17), style, color=color,
                  marker=".", label=f"{kind} difference, {name}")
ax.set_xlabel(r"step size $\varepsilon$")
ax.set_ylabel(r"$|$numerical $-$ exact$|$")
ax.set_title(r"Finite-difference error of $f'(0.5)$ for $f(x) = \tanh(x)\,e^x$")
ax.grid(True, which="major", alpha=0.3)
ax.legend(loc="lower left", fontsize=9)
plt.show()

rows = []
for name in ("float64", "float32"):
    u = np.finfo(name).eps
    for kind, theory in (("forward", np.sqrt(u)), ("central", np.cbrt(u))):
        best = int(np.argmin(errors[name][kind]))
        rows.append([name, kind, f"{steps[best]:.0e}", f"{theory:.0e}",
                     f"{errors[name][kind][best]:.1e}"])
print(format_table(rows, headers=["dtype", "difference", "best eps (measured)",
                                  "theory", "smallest error"]))

best = {name: {kind: errors[name][kind].min() for kind in errors[name]} for name in errors}
assert best["float64"]["central"] < 1e-9 < best["float32"]["central"]
assert best["float64"]["central"] < best["float64"]["forward"]

# %% [markdown]
# How to read the V:
#
# * **Right-hand side** (large $\varepsilon$): truncation. The forward difference falls with
#   slope 1 (error $\propto \varepsilon$), the central one with slope 2
#   ($\propto \varepsilon^2$), so the central difference is far better at the same step.
# * **Left-hand side** (small $\varepsilon$): round-off, rising with slope $-1$
#   ($\propto u/\varepsilon$). It is jagged because rounding errors behave like noise.
# * **float32** is ruined: the bottom of its V is around $10^{-7}$–$10^{-4}$, and below
#   $\varepsilon \approx 3\times10^{-8}$ the step vanishes altogether ($x + \varepsilon$ rounds
#   to $x$), the difference is exactly zero and the error equals $|f'|$ itself — the flat
#   line at the left.
#
# The recipe that follows: **check gradients in float64, with central differences and
# $\varepsilon \approx 10^{-6}$** (near $u^{1/3} \approx 6\times10^{-6}$). A correct backward
# pass then agrees to about $10^{-8}$ or better; a wrong one is off by something of the
# order of the gradient itself.
#
# ## 7. `tinysparse.gradcheck`
#
# `gradcheck(fn, inputs)` follows that recipe. It converts the inputs to float64 leaf
# tensors (integer arrays such as class labels pass through untouched), runs `fn`, and
# reduces an output of any shape to a scalar with a fixed random vector $v$,
# $s = \sum_j v_j\, \text{out}_j$. One backward pass of $s$ gives $v^\top J$, which involves
# every output element, and central differences of $s$ give the same quantity numerically.
# Each entry must satisfy $|a - n| \le \text{atol} + \text{rtol}\,|n|$; otherwise it raises
# `GradcheckError` and names the worst element.

# %%
print(inspect.getsource(ts.gradcheck))

# %% [markdown]
# Now the ops a LeNet is made of. The inputs are chosen to exercise every term of each
# backward pass: non-square shapes, a stride and a padding that are not the defaults, a
# temperature $T \neq 1$ (with $T = 1$ a forgotten factor $1/T$ would go unnoticed), a
# tensor used several times, and a broadcast.

# %%
cases = {
    "linear x Wᵀ + b": (
        lambda x, weight, bias: ts.autograd.linear(x, weight, bias),
        [rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)]),
    "conv2d, stride 2, padding 1": (
        lambda x, weight, bias: ts.autograd.conv2d(x, weight, bias, stride=2, padding=1),
        [rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)),
         rng.standard_normal(4)]),
    "max_pool2d 2x2": (
        lambda x: ts.autograd.max_pool2d(x, 2),
        [rng.standard_normal((2, 3, 6, 6))]),
    "cross_entropy, T = 4": (
        lambda z, y: ts.autograd.cross_entropy(z, y, temperature=4.0),
        [rng.standard_normal((5, 10)), rng.integers(0, 10, size=5)]),
    "softmax, T = 2": (
        lambda z: ts.autograd.softmax(z, axis=-1, temperature=2.0),
        [rng.standard_normal((3, 6))]),
    "reuse: x·tanh(x) + x": (
        lambda x: x * x.tanh() + x,
        [rng.standard_normal(6)]),
    "broadcast: (x + b)·b, b (1, 3)": (
        lambda x, b: (x + b) * b,
        [rng.standard_normal((4, 3)), rng.standard_normal((1, 3))]),
}
for name, (fn, inputs) in cases.items():
    assert ts.gradcheck(fn, inputs)
    print(f"{name:32s} gradient ok")


# %% [markdown]
# ## 8. Catching a wrong backward pass
#
# A passing check means little until we have seen the check fail. Here is a classic slip:
# the derivative of $\tanh$ is $1 - \tanh^2 x$, but this op computes $1 - x^2$ from the
# *input* it saved.

# %%
class WrongTanh(ts.autograd.Function):
    def forward(self, x):
        self.x = x
        return np.tanh(x)

    def backward(self, grad):
        return (grad * (1 - self.x * self.x),)  # BUG: should be 1 - tanh(x)²


try:
    ts.gradcheck(WrongTanh.apply, [rng.standard_normal(5)])
except ts.autograd.GradcheckError as error:
    print("caught:", error)
else:
    raise AssertionError("gradcheck should have caught the wrong tanh")


# %% [markdown]
# A subtler one: a softmax with temperature, $p = \operatorname{softmax}(z/T)$, whose
# backward forgets the chain-rule factor $1/T$ from $\partial (z/T)/\partial z$. We subclass
# the library's `Softmax` and replace only its backward. At $T = 1$ the bug is invisible —
# which is why the cases above use $T \neq 1$:

# %%
class SoftmaxForgetsT(nn_ops.Softmax):
    def backward(self, grad):
        p = self.out
        inner = (grad * p).sum(axis=self.axis, keepdims=True)
        return (p * (grad - inner),)  # BUG: the library divides by self.temperature


z = rng.standard_normal((3, 6))
print("T = 1:", ts.gradcheck(lambda z: SoftmaxForgetsT.apply(z, axis=-1, temperature=1.0), [z]))
try:
    ts.gradcheck(lambda z: SoftmaxForgetsT.apply(z, axis=-1, temperature=3.0), [z])
except ts.autograd.GradcheckError as error:
    print("T = 3: caught:", error)
else:
    raise AssertionError("gradcheck should have caught the missing 1/T")


# %% [markdown]
# ## Exercises
#
# Two exercises and a design task. The cells you fill in hold **our solution, between two
# marker comments, so that the notebook runs top to bottom — try it yourself first**. In the
# student edition (`tinysparse course release DIR`) they read `# YOUR CODE HERE`; the cell
# after each one checks your answer, first on the inputs you see, then on inputs this text
# never shows (hidden tests, added back when a teacher grades the notebook with
# `tinysparse course grade NOTEBOOK`).
#
# ### Exercise 1 — write an op: softplus
#
# $\operatorname{softplus}(x) = \log(1 + e^{x})$ is a smooth ReLU. Its derivative is
#
# $$
# \frac{d}{dx}\log(1 + e^x) = \frac{e^x}{1 + e^x} = \frac{1}{1 + e^{-x}} = \sigma(x),
# $$
#
# the logistic sigmoid. Implement `Softplus` as a `tinysparse.autograd.Function`:
#
# * `forward(self, x)`: return $\log(1 + e^x)$ for a NumPy array `x`, **without overflow**
#   for large $x$ (`np.exp(1000)` is `inf`; look at `np.logaddexp`), and save what the
#   backward pass needs;
# * `backward(self, grad)`: return a one-element tuple, `grad` times the derivative —
#   without overflow either, at $x = \pm 1000$.

# %% nbgrader={"grade": false, "grade_id": "exercise-1", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Softplus(ts.autograd.Function):
    def forward(self, x):
        ### BEGIN SOLUTION
        self.x = x
        return np.logaddexp(0, x)  # log(e^0 + e^x), computed without overflow
        ### END SOLUTION

    def backward(self, grad):
        ### BEGIN SOLUTION
        sigmoid = 0.5 * (np.tanh(0.5 * self.x) + 1)  # σ(x) = 1 / (1 + e^-x), overflow-free
        return (grad * sigmoid,)
        ### END SOLUTION


def softplus(x):
    return Softplus.apply(x)


# %% nbgrader={"grade": true, "grade_id": "exercise-1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 1 (no need to edit)
def check_softplus(x):
    """gradcheck, and the gradient against σ(x), of your op at ``x`` (no overflow allowed)."""
    assert ts.gradcheck(softplus, [x]), "the backward pass disagrees with finite differences"
    t = Tensor(x, dtype=np.float64, requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):  # an overflow is an error here
        softplus(t).sum().backward()
    assert np.allclose(t.grad, ts.autograd.sigmoid(Tensor(x, dtype=np.float64)).data), (
        "d softplus/dx is sigmoid(x)")


check_softplus(3 * rng.standard_normal((4, 5)))
with np.errstate(over="raise", invalid="raise"):
    extremes = softplus(Tensor(np.array([-1000.0, 0.0, 1000.0]))).data
assert np.allclose(extremes, [0.0, np.log(2), 1000.0]), f"forward at -1000, 0, 1000: {extremes}"
print("Exercise 1: visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng(20261202)
check_softplus(np.array([-1000.0, -40.0, -1.5, 0.0, 2.5, 40.0, 1000.0]))  # the backward too
check_softplus(10 * hidden_rng.standard_normal((2, 3, 4)))
check_softplus(np.array(0.7))  # a 0-d array
# used twice in one graph, and composed with itself: the gradients must add up
assert ts.gradcheck(lambda z: softplus(z) * softplus(softplus(z)) + z,
                    [hidden_rng.standard_normal(6)])
hidden_huge = np.array([1e5, -1e5, 745.0, -745.0])
with np.errstate(over="raise", invalid="raise"):
    assert np.allclose(softplus(Tensor(hidden_huge, dtype=np.float64)).data,
                       np.maximum(hidden_huge, 0.0)), "softplus(x) ≈ max(x, 0) for large |x|"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — the gradient of cross-entropy, by hand
#
# For logits $z \in \mathbb{R}^{N \times K}$, labels $y_n$ and $p_n = \operatorname{softmax}(z_n)$,
# the mean cross-entropy is
#
# $$
# L = -\frac{1}{N}\sum_{n=1}^{N} \log p_{n, y_n}
#   = \frac{1}{N}\sum_{n=1}^{N}\Big(\log \sum_{k} e^{z_{nk}} - z_{n, y_n}\Big).
# $$
#
# Show on paper that
#
# $$
# \frac{\partial L}{\partial z_{nk}} = \frac{1}{N}\big(p_{nk} - [k = y_n]\big),
# \qquad\text{i.e.}\qquad \nabla_z L = \frac{1}{N}\big(\operatorname{softmax}(z) -
# \operatorname{onehot}(y)\big).
# $$
#
# `cross_entropy(z, y, temperature=T)` uses $\operatorname{softmax}(z/T)$ instead: where
# does $T$ appear in the gradient? Then write
# `cross_entropy_gradient(logits, labels, temperature=1.0)`, which returns $\nabla_z L$ as
# a NumPy array of the logits' shape, with plain NumPy: no tinysparse (the check switches
# off `Tensor.backward`, `cross_entropy` and `numerical_gradient` while your function
# runs), and no overflow, even for logits in the thousands.

# %% nbgrader={"grade": false, "grade_id": "exercise-2", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cross_entropy_gradient(logits, labels, temperature=1.0):
    ### BEGIN SOLUTION
    z = logits / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))  # subtracting the row max avoids overflow
    p = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[labels]
    n = logits.shape[0]
    return (p - onehot) / (temperature * n)  # chain rule: d(z/T)/dz = 1/T
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "exercise-2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Checks for exercise 2 (no need to edit)
def check_cross_entropy_gradient(logits, labels, temperature):
    """Your gradient against autograd's (switched off while your function runs)."""
    z = Tensor(logits, dtype=np.float64, requires_grad=True)
    ts.autograd.cross_entropy(z, labels, temperature=temperature).backward()
    with ts.exercises.switched_off(ts.Tensor, "backward"), \
            ts.exercises.switched_off(ts.autograd, "cross_entropy", "numerical_gradient"), \
            np.errstate(over="raise", invalid="raise"):
        mine = cross_entropy_gradient(logits, labels, temperature)
    assert np.shape(mine) == logits.shape, f"shape {np.shape(mine)}, expected {logits.shape}"
    assert np.allclose(mine, z.grad, rtol=1e-6, atol=1e-12), (
        f"T = {temperature}: largest difference {np.abs(mine - z.grad).max():.2e}")
    return z.grad


N, K = 6, 10
logits = 2 * rng.standard_normal((N, K))
y = rng.integers(0, K, size=N)
gradient = check_cross_entropy_gradient(logits, y, temperature=1.0)
check_cross_entropy_gradient(logits, y, temperature=3.0)
print(f"largest |row sum| of the gradient: {np.abs(gradient.sum(axis=1)).max():.1e}")
print("Exercise 2: visible checks passed")
### BEGIN HIDDEN TESTS
hidden_rng = np.random.default_rng(7)
for hidden_n, hidden_k, hidden_t, hidden_scale in ((1, 2, 1.0, 1.0), (17, 4, 0.5, 3.0),
                                                   (9, 13, 7.0, 1.0), (5, 3, 1.0, 1000.0)):
    hidden_logits = hidden_scale * hidden_rng.standard_normal((hidden_n, hidden_k))
    hidden_labels = hidden_rng.integers(0, hidden_k, size=hidden_n)
    check_cross_entropy_gradient(hidden_logits, hidden_labels, hidden_t)
hidden_gradient = check_cross_entropy_gradient(hidden_rng.standard_normal((8, 5)),
                                               np.full(8, 2), 2.0)  # one label for all
### END HIDDEN TESTS

# %% [markdown]
# Every row of that gradient sums to zero: $p_n$ and the one-hot row both sum to one. Raising
# the correct logit and lowering the others are one and the same move. With a temperature
# the gradient is $\frac{1}{TN}\big(\operatorname{softmax}(z/T) - \operatorname{onehot}(y)\big)$:
# the factor $1/T$ is one of the two factors of $1/T$ that make knowledge distillation
# multiply its soft-target loss by $T^2$ (see
# [Hinton, Vinyals & Dean 2015](REFERENCES.md#distilling-the-knowledge--hinton-vinyals--dean-2015)
# and lesson 07, which derives the other).
#
# ### Design task — the cheapest gradient check that catches four bugs
#
# Section 7 chose its inputs so that every term of a backward pass shows. Here you choose
# them yourself. Below are four ops, each with a correct backward pass and a buggy twin:
# a softmax with temperature that forgets the factor $1/T$; a mean cross-entropy whose
# backward forgets the $1/N$; a tanh that computes $1 - x^2$ from its input; and an
# addition of a broadcast bias $b \in \mathbb{R}^{1\times 6}$ whose backward hands $b$ the
# first row's gradient instead of the sum over rows. The check runs `ts.gradcheck` on all
# eight, with inputs built from your configuration: logits $x$ of shape
# `(batch, 6)` drawn as `scale` × standard normal (and $b$ likewise), the temperature
# `temperature` for the softmax and the cross-entropy, and the finite-difference step `eps`.
#
# **Target:** all four bugs caught, no false alarm on the four correct ops, and at most
# **250 evaluations** of the ops in total (finite differences cost two per input element:
# section 5). The same target holds in fast mode. Temperature 1, one example, inputs of
# size $10^{-3}$ and $\varepsilon = 10^{-1}$ raise three false alarms and miss the broadcast
# bug; section 7's inputs, five examples, cost too much. The check counts; it never times.

# %% nbgrader={"grade": false, "grade_id": "design-task", "locked": false, "schema_version": 3, "solution": true, "task": false}
check_config = {"temperature": None, "batch": None, "scale": None, "eps": None}  # yours
### BEGIN SOLUTION
check_config = {"temperature": 2.0, "batch": 2, "scale": 1.0, "eps": 1e-6}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "design-task-check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Checks for the design task (no need to edit)
DESIGN_EVALUATIONS = 250


class SoftmaxForgetsOneOverT(nn_ops.Softmax):
    def backward(self, grad):
        p = self.out
        return (p * (grad - (grad * p).sum(axis=self.axis, keepdims=True)),)  # no / T


class CrossEntropyForgetsOneOverN(nn_ops.CrossEntropy):
    def backward(self, grad):
        (dz,) = super().backward(grad)
        return (dz * dz.shape[0],)  # undoes the 1/N of the mean


class AddBiasFirstRow(ts.autograd.Function):
    def forward(self, x, bias):
        return x + bias

    def backward(self, grad):
        return grad, grad[:1]  # should be grad.sum(axis=0, keepdims=True)


def design_cases(config):
    """op name -> (correct fn, buggy fn, inputs), the inputs built from ``config``."""
    assert set(config) == {"temperature", "batch", "scale", "eps"}, f"keys of {config}"
    assert all(config[key] is not None for key in config), "fill in every value"
    temperature, batch = float(config["temperature"]), config["batch"]
    assert temperature > 0, f"temperature: expected a positive number, got {temperature}"
    assert isinstance(batch, int) and batch >= 1, f"batch: expected an int >= 1, got {batch}"
    case_rng = np.random.default_rng(2026)
    x = config["scale"] * case_rng.standard_normal((batch, 6))
    bias = config["scale"] * case_rng.standard_normal((1, 6))
    labels = case_rng.integers(0, 6, size=batch)
    return {
        "softmax(z / T)": (
            lambda z: ts.autograd.softmax(z, temperature=temperature),
            lambda z: SoftmaxForgetsOneOverT.apply(z, axis=-1, temperature=temperature), [x]),
        "mean cross-entropy": (
            lambda z: ts.autograd.cross_entropy(z, labels, temperature=temperature),
            lambda z: CrossEntropyForgetsOneOverN.apply(z, targets=labels,
                                                        temperature=temperature), [x]),
        "tanh": (lambda z: z.tanh(), WrongTanh.apply, [x]),
        "x + b, b broadcast": (lambda z, c: z + c, AddBiasFirstRow.apply, [x, bias]),
    }


def raises_alarm(fn, inputs, eps, calls):
    def counted(*args):
        calls.append(1)
        return fn(*args)
    try:
        ts.gradcheck(counted, inputs, eps=float(eps))
    except ts.autograd.GradcheckError:
        return True
    return False


design_calls, design_rows = [], []
caught = false_alarms = 0
for op_name, (right, wrong, inputs) in design_cases(check_config).items():
    alarm_right = raises_alarm(right, inputs, check_config["eps"], design_calls)
    alarm_wrong = raises_alarm(wrong, inputs, check_config["eps"], design_calls)
    caught += alarm_wrong
    false_alarms += alarm_right
    design_rows.append([op_name, "FALSE ALARM" if alarm_right else "passes",
                        "caught" if alarm_wrong else "MISSED"])
print(format_table(design_rows, headers=["op", "correct backward", "buggy backward"]))
print(f"Design task: {caught} of 4 bugs caught (target 4), {false_alarms} false alarms "
      f"(target 0), {len(design_calls)} evaluations (at most {DESIGN_EVALUATIONS})")
assert caught == 4, "a bug went unnoticed"
assert false_alarms == 0, "a correct backward pass was flagged"
assert len(design_calls) <= DESIGN_EVALUATIONS, "too many evaluations"

# %% [markdown]
# ## Summary
#
# * A `Tensor` remembers the op that made it; the ops remember their inputs; `backward()`
#   sorts that graph topologically and walks it in reverse, **adding** the gradients of a
#   tensor used more than once.
# * Each op is one class with `forward` and `backward` a few lines apart; broadcasting is
#   undone by summing over the stretched axes (`unbroadcast`).
# * Central differences have $O(\varepsilon^2)$ truncation error and $O(u/\varepsilon)$
#   round-off: check gradients in float64 with $\varepsilon \approx 10^{-6}$. That is
#   `tinysparse.gradcheck`, which the test suite runs on every op
#   (`tests/test_gradcheck.py`).
#
# Next: **lesson 01** trains LeNet-300-100 and LeNet-5 with these gradients.
