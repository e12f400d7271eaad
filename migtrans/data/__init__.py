"""Cohort input: a TOML description of phenotypes, PLINK genotypes, FNC and sMRI, loaded and validated."""

from ._cohort import Cohort, CohortWarning, load_cohort
from ._config import CohortSpec, read_cohort_spec

__all__ = ["Cohort", "CohortSpec", "CohortWarning", "load_cohort", "read_cohort_spec"]
