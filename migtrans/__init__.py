"""migtrans: interpretable multi-modal imaging genomics (SNPs + FNC + sMRI) with the MIGTrans model."""

__version__ = "0.1.0"

from .data import Cohort, load_cohort
from .exceptions import CohortError, MigtransError, ParameterError

__all__ = ["Cohort", "CohortError", "MigtransError", "ParameterError", "__version__", "load_cohort"]
