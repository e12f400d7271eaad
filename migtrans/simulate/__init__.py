"""Ground-truth cohort simulator: cohorts in the real file formats with planted, recorded signals."""

from migtrans.simulate._simulator import SimulatedCohort, simulate_cohort

__all__ = ["SimulatedCohort", "simulate_cohort"]
