"""PyTorch as the oracle: every op, and whole LeNets trained one step, in float64.

Skipped where torch is not installed; CI installs it (torch==2.13.0, CPU).
"""

import numpy as np
import pytest
from op_cases import CASE_IDS, CASES

import tinysparse as ts
from tinysparse.autograd import Tensor, cross_entropy

pytestmark = pytest.mark.torch


def relative_error(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    return np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_op_matches_torch(case, torch):
    arrays = case.inputs(np.random.default_rng(0))
    ours_in = [Tensor(a, requires_grad=True) if a.dtype.kind == "f" else a for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ours_out = case.ours(*ours_in)
    theirs_out = case.theirs(torch, *theirs_in)
    np.testing.assert_allclose(ours_out.data, theirs_out.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    upstream = np.random.default_rng(1).standard_normal(ours_out.shape)
    ours_out.backward(upstream)
    theirs_out.backward(torch.tensor(upstream))
    for mine, reference in zip(ours_in, theirs_in):
        if isinstance(mine, Tensor):
            np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-10,
                                       atol=1e-12)


def torch_twin(name, torch):
    nn = torch.nn
    if name == "lenet300":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                             nn.ReLU(), nn.Linear(100, 10))
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


OPTIMIZERS = {
    "sgd_momentum": (lambda p: ts.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
                     lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.9,
                                                      weight_decay=1e-3)),
    "sgd_nesterov": (lambda p: ts.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                     lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "adam": (lambda p: ts.optim.Adam(p, lr=1e-3, weight_decay=1e-4),
             lambda torch, p: torch.optim.Adam(p, lr=1e-3, weight_decay=1e-4)),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model_name", ["lenet300", "lenet5"])
def test_whole_lenet_forward_backward_and_steps_match_torch(model_name, optimizer, torch,
                                                            mnist5k):
    ours = ts.build_model(model_name, seed=0).double()
    theirs = torch_twin(model_name, torch)
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert p.shape == tuple(q.shape)
            q.copy_(torch.tensor(p.data))
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    opt_ours, opt_theirs = make_ours(ours.parameters()), make_theirs(torch, theirs.parameters())
    x = mnist5k.x_train[:32].astype(np.float64)
    y = mnist5k.y_train[:32]
    for step in range(3):  # later steps exercise momentum and Adam's moments
        logits = ours(x)
        loss = cross_entropy(logits, y)
        opt_ours.zero_grad()
        loss.backward()
        t_logits = theirs(torch.tensor(x))
        t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor(y))
        opt_theirs.zero_grad()
        t_loss.backward()
        assert relative_error(logits.data, t_logits.detach().numpy()) < 1e-8
        assert relative_error(loss.data, t_loss.detach().numpy()) < 1e-8
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            assert relative_error(p.grad, q.grad.numpy()) < 1e-8, (step, name)
        opt_ours.step()
        opt_theirs.step()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            assert relative_error(p.data, q.detach().numpy()) < 1e-8, (step, name)
