"""Cohort input: a TOML description of phenotypes, genotypes (PLINK 1 or 2, VCF/BCF, BGEN), FNC and sMRI,
loaded and validated."""

from ._cohort import Cohort, CohortWarning, load_cohort
from ._config import CohortSpec, read_cohort_spec
from ._phenotypes import covariate_matrix

__all__ = ["Cohort", "CohortSpec", "CohortWarning", "covariate_matrix", "load_cohort", "read_cohort_spec"]
