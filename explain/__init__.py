"""Attribution engines over a trained migtrans run: integrated gradients, attention rollout,
faithfulness checks — all out of fold (each subject explained by the model that did not train on it)."""

from ._attributions import Attributions
from ._explain import explain_run
from ._faithfulness import deletion_curve, modality_ablation
from ._ig import integrated_gradients, relative_delta
from ._oof import OutOfFold
from ._rollout import RelevanceResult, relevance_rollout, rollout

__all__ = [
    "Attributions", "OutOfFold", "RelevanceResult", "deletion_curve", "explain_run", "integrated_gradients",
    "modality_ablation", "relative_delta", "relevance_rollout", "rollout",
]
