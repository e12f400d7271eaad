"""Figures and the self-contained HTML report built from explanation tables (`migtrans-explain`).

Skeleton: figures and the report arrive with their own issues.
"""

__all__: list[str] = []
