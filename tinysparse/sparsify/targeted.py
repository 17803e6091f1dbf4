"""Targeted dropout (Gomez et al. 2019): train a network to survive the pruning that follows.

Magnitude pruning removes the smallest weights of a trained network, but nothing in
ordinary training prepares the network for losing them. Targeted dropout drops, while
training, exactly what pruning will remove:

* **weight variant**: in every output unit (a row of a Linear weight, a filter of a conv
  kernel) the ``γ`` fraction of weights with the smallest ``|w|`` are *candidates*; each
  is dropped with probability ``α`` in each training step;
* **unit variant**: in every hidden layer the ``γ`` fraction of units with the smallest
  L2 norm ``‖w_u‖₂`` are candidates; each is dropped whole with probability ``α``.

The candidates are chosen afresh at every step, so the network learns to put its
information where pruning will not look. After training, :func:`run` prunes at ``γ``
*without retraining*, per unit as the paper does — every unit keeps its largest
``1 − γ`` of weights (``scope="unit"`` of the shared selection step), or every hidden
layer loses its ``γ`` fraction of weakest units (:func:`tinysparse.prune.structured_prune`
with the L2 norm) — and reports the accuracy before and after.

The layers' :class:`~tinysparse.nn.TargetedDropout` noise lives only while :func:`run`
trains: the model it leaves is an ordinary pruned model.
"""

from __future__ import annotations

import math

from tinysparse.data.dataset import Dataset
from tinysparse.nn.dropout import TargetedDropout, check_fraction
from tinysparse.nn.init import derived_seed
from tinysparse.nn.module import Module
from tinysparse.nn.sparse_layers import NOISY_LAYERS, set_weight_noise
from tinysparse.prune.masks import current_masks, layer_sparsities, sparsity_of
from tinysparse.prune.pruning import prune
from tinysparse.prune.selection import check_sparsity, prunable_parameters
from tinysparse.prune.structured import structured_prune
from tinysparse.sparsify.method import SparsifyRun
from tinysparse.train import evaluate, fit

#: The paper's defaults: the authors' released configurations train with α = 0.5 and
#: γ = 0.5 (for-ai/Targeted-Dropout, hparams/); the paper's figures sweep γ and α.
DEFAULT_GAMMA = 0.5
DEFAULT_ALPHA = 0.5


def targeted_layers(model: Module, variant: str) -> list[str]:
    """The layers targeted dropout acts on: every Linear/Conv2d (weight variant), or every
    one but the output layer (unit variant: dropping a whole output unit removes a class)."""
    layers = [name for name, module in model.named_modules() if isinstance(module, NOISY_LAYERS)]
    return layers if variant == "weight" else layers[:-1]


def check_options(gamma: float, alpha: float, variant: str) -> tuple[float, float, str]:
    """γ in [0, 1) (it is also the sparsity pruned at afterwards), α in [0, 1], a known
    variant; a ValueError naming the argument otherwise."""
    check_fraction(gamma, "gamma")
    gamma = check_sparsity(gamma, "gamma")
    alpha = check_fraction(alpha, "alpha")
    if variant not in TargetedDropout.VARIANTS:
        raise ValueError(f"variant: expected one of {list(TargetedDropout.VARIANTS)}, got "
                         f"{variant!r}")
    return gamma, alpha, variant


def prune_at_gamma(model: Module, gamma: float, variant: str, layers: list[str],
                   input_shape: tuple[int, ...]) -> None:
    """Prune what targeted dropout targeted, without retraining: per unit, each unit's
    ``γ`` smallest weights (weight variant), or each hidden layer's ``γ`` weakest units by
    L2 norm (unit variant)."""
    if variant == "weight":
        prune(model, gamma, method="magnitude", scope="unit",
              parameters=[f"{name}.weight" if name else "weight" for name in layers])
    else:
        structured_prune(model, gamma, criterion="l2", input_shape=input_shape)


def run(
    model: Module,
    data: Dataset,
    *,
    epochs: int = 20,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    quiet: bool = True,
    gamma: float = DEFAULT_GAMMA,
    alpha: float = DEFAULT_ALPHA,
    variant: str = "weight",
    optimizer: str = "adam",
) -> SparsifyRun:
    """Train ``model`` with targeted dropout, then prune it at ``gamma`` without retraining.

    Parameters
    ----------
    model : Module
        A freshly built (or pretrained) model; trained and pruned in place.
    data : Dataset
        Its training split trains, its test split measures.
    epochs, lr, batch_size, seed, quiet, optimizer
        As for :func:`tinysparse.fit` (``seed`` also seeds the dropout).
    gamma : float
        γ, the targeted fraction of each unit's weights (or of each layer's units), in
        [0, 1); also the sparsity pruned to afterwards.
    alpha : float
        α, the probability of dropping a candidate in a training step, in [0, 1].
    variant : {"weight", "unit"}

    Returns
    -------
    SparsifyRun
        ``unpruned_test_accuracy`` (trained, before pruning), ``pruned_test_accuracy`` =
        ``test_accuracy`` (after pruning at γ, no retraining), ``sparsity``,
        ``compression``, ``layers``; ``history`` has one record per epoch, ``extra`` the
        options and the layers targeted.
    """
    gamma, alpha, variant = check_options(gamma, alpha, variant)
    layers = targeted_layers(model, variant)
    if not layers:
        where = "" if variant == "weight" else " besides the output layer"
        raise ValueError(f"model: targeted dropout ({variant} variant) needs a Linear or "
                         f"Conv2d layer to act on{where}")
    for name in layers:
        noise = model.get_submodule(name).weight_noise
        if noise is not None:
            raise ValueError(f"weight_noise: layer {name!r} already drops its weights "
                             f"({noise!r}); targeted dropout would replace that")
    set_weight_noise(model, {name: TargetedDropout(gamma, alpha, variant,
                                                   seed=derived_seed(seed, 3, index))
                             for index, name in enumerate(layers)})
    try:
        history = fit(model, data, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                      lr=lr, seed=seed, quiet=quiet, desc=f"targeted {variant} dropout")
    finally:  # the model it leaves is an ordinary (pruned) model
        set_weight_noise(model, dict.fromkeys(layers))
    unpruned = evaluate(model, *data.test)["accuracy"]
    prune_at_gamma(model, gamma, variant, layers, tuple(data.x_train.shape[1:]))
    pruned = evaluate(model, *data.test)["accuracy"]
    return SparsifyRun(
        method="targeted-dropout",
        test_accuracy=pruned,
        sparsity=sparsity_of(model),
        compression=compression(model),
        layers=layer_sparsities(model),
        unpruned_test_accuracy=unpruned,
        pruned_test_accuracy=pruned,
        history=[dict(record) for record in history.epochs],
        extra={"gamma": gamma, "alpha": alpha, "variant": variant, "targeted_layers": layers},
    )


def compression(model: Module) -> float:
    """Prunable weights / kept weights (as the sparsity report counts them)."""
    names = prunable_parameters(model)
    shapes, masks = model.state_shapes(), current_masks(model, names)
    total = sum(math.prod(shapes[n]) for n in names)
    kept = sum(masks[n].kept if n in masks else math.prod(shapes[n]) for n in names)
    return total / max(kept, 1)
