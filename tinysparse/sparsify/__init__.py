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

import math
from functools import partial

from tinysparse.nn.dropout import check_fraction, check_probability
from tinysparse.nn.l0 import INITIAL_DROP_RATE
from tinysparse.nn.variational import INITIAL_LOG_SIGMA2, PRUNE_THRESHOLD
from tinysparse.sparsify import group_lasso, ising, l0, targeted, variational
from tinysparse.sparsify.method import (
    Option,
    SparsifyMethod,
    SparsifyRun,
    non_negative_integer,
    number,
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
        "variational-dropout",
        "sparse variational dropout (Molchanov et al. 2017): a dropout rate per weight "
        "learned with the ELBO and a KL warm-up; weights with log α > 3 are pruned",
        variational.run,
        (Option("kl_weight", partial(number, name="kl_weight", low=0, high=math.inf,
                                     closed=False), 1.0,
                "the KL term's weight (1: the ELBO per example, KL / N)"),
         Option("warmup", partial(number, name="warmup", low=0, high=1), 0.3,
                "fraction of training over which the KL weight rises from 0"),
         Option("threshold", partial(number, name="threshold"), PRUNE_THRESHOLD,
                "weights with log α above it are pruned"),
         Option("log_sigma2", partial(number, name="log_sigma2"), INITIAL_LOG_SIGMA2,
                "initial log σ² of every weight"),
         Option("pretrain_epochs", partial(non_negative_integer, name="pretrain_epochs"), 0,
                "plain epochs before the variational ones")),
        training={"epochs": 100, "batch_size": 100}),
    SparsifyMethod(
        "l0",
        "L0 regularisation (Louizos et al. 2018): hard-concrete gates on weights or units "
        "with an expected-L0 penalty; closed gates are pruned",
        l0.run,
        (Option("gates", str, "weight", "gate each weight, or each hidden unit",
                choices=("weight", "unit")),
         Option("lambda_", partial(number, name="lambda", low=0, high=math.inf), l0.PAPER_LAMBDA,
                "the penalty's weight (λ / N per example)", flag="lambda"),
         Option("initial_drop_rate", partial(number, name="initial_drop_rate", low=0, high=1,
                                             closed=False), INITIAL_DROP_RATE,
                "the gates' initial probability of being closed"),
         Option("pretrain_epochs", partial(non_negative_integer, name="pretrain_epochs"), 0,
                "plain epochs before the gated ones")),
        training={"epochs": 100, "batch_size": 100}),
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
    SparsifyMethod(
        "group-lasso",
        "group lasso (Wen et al. 2016): penalise the L2 norms of whole units' weights "
        "while training, then remove the units whose norm collapsed (a smaller dense net)",
        group_lasso.run,
        (Option("lambda_", partial(number, name="lambda", low=0), group_lasso.DEFAULT_LAMBDA,
                "the penalty's weight (λ / N per example times Σ_g ‖w_g‖₂)", flag="lambda"),
         Option("threshold", group_lasso.threshold_option, group_lasso.DEFAULT_THRESHOLD,
                "remove a unit whose group norm is below this fraction of its layer's "
                "largest, in [0, 1)", flag="norm_threshold"),
         Option("groups", str, "both", "a unit's group: its incoming weights (row, filter), "
                                       "its outgoing weights (the reader's columns, input "
                                       "channel), or both",
                choices=group_lasso.GROUP_KINDS),
         Option("finetune_epochs", partial(non_negative_integer, name="finetune_epochs"), 0,
                "plain epochs after the removal"),
         Option("compare_norm_removal", partial(yes_no, name="compare_norm_removal"), False,
                "also train plainly and remove as many units by L2 norm (same size)")),
        training={"epochs": 30, "batch_size": 64}),
)}

__all__ = ["METHODS", "Option", "SparsifyMethod", "SparsifyRun", "group_lasso", "ising", "l0",
           "targeted", "variational"]
