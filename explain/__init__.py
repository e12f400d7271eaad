"""Attribution engines and statistics over a trained migtrans run (integrated gradients,
attention rollout, permutation testing, association, annotation).

Skeleton: the engines arrive with their own issues.
"""

__all__: list[str] = []
