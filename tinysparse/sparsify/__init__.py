"""Methods that *learn* sparsity while training, each ending in an ordinary pruned model.

Pruning (:mod:`tinysparse.prune`) removes weights from a trained network. The methods here
train the network so that it becomes sparse, or robust to being pruned: targeted dropout
(Gomez et al. 2019), sparse variational dropout (Molchanov et al. 2017), L0 gates (Louizos
et al. 2018) and Ising-dropout (Salehinejad & Valaee 2019). Each ends where every pruning
method ends: masks on ordinary layers (:func:`tinysparse.prune.apply_masks`), so the
sparsity report, the sparse kernels, save/load and the lessons understand the result.

Every method is a row of :data:`METHODS` with one function
``run(model, data, *, epochs, lr, batch_size, seed, quiet, **options) -> SparsifyRun``
that trains ``model`` (built by the caller) in place and returns what it measured.
"""

from functools import partial

from tinysparse.nn.dropout import check_fraction, check_probability
from tinysparse.sparsify import ising, targeted
from tinysparse.sparsify.method import (
    Option,
    SparsifyMethod,
    SparsifyRun,
    positive_integer,
    yes_no,
)

#: The table of sparsifying methods.
METHODS: dict[str, SparsifyMethod] = {method.name: method for method in (
    SparsifyMethod(
        "targeted-dropout",
        "targeted dropout (Gomez et al. 2019): drop each unit's γ smallest weights with "
        "probability α while training, then prune them without retraining",
        targeted.run,
        (Option("gamma", partial(check_probability, name="gamma"), 0.5,
                "γ: the fraction of each unit's weights (or of the units) that are "
                "candidates, and the sparsity pruned to afterwards", flag="sparsity"),
         Option("alpha", partial(check_fraction, name="alpha"), 0.5,
                "α: the probability of dropping a candidate"),
         Option("variant", str, "weight", "weight: each unit's smallest weights; unit: the "
                                          "units with the smallest L2 norm",
                choices=("weight", "unit")))),
    SparsifyMethod(
        "ising",
        "Ising-dropout (Salehinejad & Valaee 2019): each epoch, drop the units of a "
        "low-energy Ising state of the MLP; remove the last state's units",
        ising.run,
        (Option("sweeps", partial(positive_integer, name="sweeps"), ising.DEFAULTS["sweeps"],
                "annealing sweeps per solve"),
         Option("restarts", partial(positive_integer, name="restarts"),
                ising.DEFAULTS["restarts"], "independent solves; the lowest energy wins"),
         Option("drop_inputs", partial(yes_no, name="drop_inputs"),
                ising.DEFAULTS["drop_inputs"], "drop visible units (input pixels) too"),
         Option("warm_start", partial(yes_no, name="warm_start"),
                ising.DEFAULTS["warm_start"], "ours, not the paper's: start each solve "
                                              "from the previous state, cool"))),
)}

__all__ = ["METHODS", "Option", "SparsifyMethod", "SparsifyRun", "ising", "targeted"]
