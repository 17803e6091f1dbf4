"""Pruning: scores, the shared selection step, schedules, sensitivity, lottery tickets."""

from tinysparse.prune.pruning import (
    apply_masks,
    clone,
    current_masks,
    layer_sparsities,
    prune,
    remove_masks,
    sparsity_of,
)
from tinysparse.prune.schedules import (
    SCHEDULES,
    PruneRun,
    cubic_sparsity,
    iterative_targets,
    prune_and_retrain,
)
from tinysparse.prune.scores import SCORES, get_score_function, magnitude_scores, random_scores
from tinysparse.prune.selection import (
    SCOPES,
    global_masks,
    layer_masks,
    prunable_parameters,
    select_masks,
    threshold,
)

__all__ = [
    "SCHEDULES", "SCOPES", "SCORES", "PruneRun", "apply_masks", "clone", "cubic_sparsity",
    "current_masks", "get_score_function", "global_masks", "iterative_targets", "layer_masks",
    "layer_sparsities", "magnitude_scores", "prunable_parameters", "prune", "prune_and_retrain",
    "random_scores", "remove_masks", "select_masks", "sparsity_of", "threshold",
]

from tinysparse.prune.lottery import (  # noqa: E402
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

__all__ += [
    "CONTROLS", "SUPERMASK_CRITERIA", "LotteryRound", "lottery_ticket_experiment",
    "random_init_state", "random_masks_like", "rewind_to", "sign_preserving_state", "snapshot",
    "summarize", "supermask_masks",
]

from tinysparse.prune.sensitivity import sensitivity, sensitivity_table  # noqa: E402

__all__ += ["sensitivity", "sensitivity_table"]

from tinysparse.prune import hessian  # noqa: E402
from tinysparse.prune.methods import METHODS, prune_step  # noqa: E402
from tinysparse.prune.obd import obd_prune, predicted_increase, saliencies  # noqa: E402
from tinysparse.prune.obs import obs_prune  # noqa: E402
from tinysparse.prune.obs_layerwise import obs_layerwise_prune  # noqa: E402

__all__ += ["METHODS", "hessian", "obd_prune", "obs_layerwise_prune", "obs_prune",
            "predicted_increase", "prune_step", "saliencies"]

from tinysparse.prune.structured import shrink, structured_prune, unit_counts, unit_norms  # noqa: E402

__all__ += ["shrink", "structured_prune", "unit_counts", "unit_norms"]
