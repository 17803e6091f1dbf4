"""Pruning: the table of methods, the shared selection step, schedules, second-order
methods, lottery tickets and structured pruning."""

from tinysparse.nn.module import clone
from tinysparse.prune import hessian
from tinysparse.prune.lottery import (
    CONTROLS,
    SUPERMASK_CRITERIA,
    LotteryRound,
    lottery_ticket_experiment,
    random_init_state,
    random_masks_like,
    rewind_to,
    sign_preserving_state,
    snapshot,
    summarize,
    supermask_masks,
)
from tinysparse.prune.masks import (
    apply_masks,
    current_masks,
    layer_sparsities,
    remove_masks,
    sparsity_of,
)
from tinysparse.prune.obd import obd_prune, obd_scores, predicted_increase, saliencies
from tinysparse.prune.obs import obs_prune
from tinysparse.prune.obs_layerwise import obs_layerwise_prune
from tinysparse.prune.pruning import (
    METHODS,
    SCHEDULES,
    PruningMethod,
    check_method_options,
    get_method,
    prune,
    prune_step,
)
from tinysparse.prune.schedules import (
    PruneRun,
    cubic_sparsity,
    iterative_targets,
    prune_and_retrain,
)
from tinysparse.prune.scores import magnitude_scores, random_scores
from tinysparse.prune.selection import (
    SCOPES,
    global_masks,
    layer_masks,
    prunable_parameters,
    select_masks,
    threshold,
    unit_masks,
)
from tinysparse.prune.sensitivity import sensitivity, sensitivity_table
from tinysparse.prune.structured import (
    remove_units,
    shrink,
    shrink_in_place,
    structured_prune,
    unit_counts,
    unit_norms,
    unit_readers,
    unit_removal_masks,
)

__all__ = [
    "CONTROLS", "METHODS", "SCHEDULES", "SCOPES", "SUPERMASK_CRITERIA", "LotteryRound",
    "PruneRun", "PruningMethod", "apply_masks", "check_method_options", "clone",
    "cubic_sparsity", "current_masks", "get_method", "global_masks", "hessian",
    "iterative_targets", "layer_masks", "layer_sparsities", "lottery_ticket_experiment",
    "magnitude_scores", "obd_prune", "obd_scores", "obs_layerwise_prune", "obs_prune",
    "predicted_increase", "prunable_parameters", "prune", "prune_and_retrain", "prune_step",
    "random_init_state", "random_masks_like", "random_scores", "remove_masks", "remove_units",
    "rewind_to",
    "saliencies", "select_masks", "sensitivity", "sensitivity_table", "shrink", "shrink_in_place",
    "sign_preserving_state", "snapshot", "sparsity_of", "structured_prune", "summarize",
    "supermask_masks", "threshold", "unit_counts", "unit_masks", "unit_norms", "unit_readers",
    "unit_removal_masks",
]
