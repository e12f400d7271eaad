"""Presets and switches of the simulator's harder parts, the sizes the ``realistic`` preset plants (with the
numbers behind them), and the liability that combines the planted terms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from migtrans.exceptions import ParameterError
from migtrans.validation import check_number, check_option

#: The switches, in the order they are recorded.
SWITCHES = ("genetic_architecture", "snp_layout", "imaging_effects", "interactions", "liability", "plant_atlas")
CHOICES = {
    "genetic_architecture": ("oligogenic", "polygenic"),
    "snp_layout": ("blocks", "array"),
    "imaging_effects": ("focal", "spread"),
    "liability": ("linear", "nonlinear"),
    "plant_atlas": ("aal", "harvard-oxford"),
}
#: Each preset's value of every switch; ``easy`` is the simulator of earlier versions.
PRESETS = {
    "easy": {
        "genetic_architecture": "oligogenic",
        "snp_layout": "blocks",
        "imaging_effects": "focal",
        "interactions": 0.0,
        "liability": "linear",
        "plant_atlas": "aal",
    },
    "realistic": {
        "genetic_architecture": "polygenic",
        "snp_layout": "array",
        "imaging_effects": "spread",
        "interactions": 1.0,
        "liability": "nonlinear",
        "plant_atlas": "harvard-oxford",
    },
}
MAX_INTERACTIONS = 3.0
#: The atlas the region tables read unless told otherwise (explain's ``atlas="aal"``).
TABLES_ATLAS = "aal"

# Variance of every liability term, in liability units, by preset: the preset sets the sizes, the switches
# the shapes (a term whose switch is off is left out). ``easy`` is the earlier model, three unit-variance
# scores and unit noise, each a quarter of the liability.
#
# ``realistic`` adds up to 1 with everything on:
#   snp 0.14     between what the best schizophrenia polygenic score explains on the liability scale (about
#                0.07, PGC3, Trubetskoy et al. 2022) and the SNP heritability (about 0.24, same study);
#   smri, fnc    0.08 each: a perfectly measured latent with 8 % of the liability differs between the halves
#                of a 50 % split by d = 1.596 x sqrt(0.08) = 0.45; measured through noisy GM and FNC, the
#                planted regions and edges show d of about 0.2-0.4, the range of case-control effects in
#                ENIGMA (van Erp et al. 2016: hippocampus -0.46, amygdala and thalamus -0.31, accumbens
#                -0.25; van Erp et al. 2018: cortical thickness -0.1 to -0.53) and in FBIRN's FNC (Damaraju et
#                al. 2014) and multi-site VBM (Gupta et al. 2015);
#   snp_x_smri   0.03, fnc_given_smri 0.03, snp_x_fnc 0.02: the cross-modal and nonlinear terms, 8 % together,
#                each large enough to be found at a thousand subjects by a model that looks for it (t of about
#                5 for the interaction's coefficient when the region's GM and the edges are measured well);
#   noise        0.62, the rest.
# With everything on, the noise-free liability separates cases from controls with AUC 0.78 at infinite data
# (Monte Carlo, see ``expected_auc``); the polygenic score alone gives 0.67, the two imaging scores 0.68, with
# the interactions 0.71.
BUDGETS = {
    "easy": {
        "snp": 1.0,
        "fnc": 1.0,
        "smri": 1.0,
        "snp_x_smri": 0.25,
        "fnc_given_smri": 0.25,
        "snp_x_fnc": 0.25,
        "noise": 1.0,
    },
    "realistic": {
        "snp": 0.14,
        "fnc": 0.08,
        "smri": 0.08,
        "snp_x_smri": 0.03,
        "fnc_given_smri": 0.03,
        "snp_x_fnc": 0.02,
        "noise": 0.62,
    },
}
TERMS = tuple(BUDGETS["easy"])

# Polygenic architecture, sized for the realistic SNP budget of 0.14 (the shares scale with the budget):
# - N_LARGE SNPs each explaining LARGE_SHARE of the liability variance (0.3-0.5 %: more than any common
#   schizophrenia locus, whose ORs of 1.05-1.2 explain 0.1 % or less, so that a few SNPs stay findable, with a
#   trend-test chi2 of about 0.64 x n x share, i.e. 26 at 10,000 subjects);
# - N_SMALL SNPs with log-uniform shares in SMALL_SHARE (0.01-0.1 %, like genome-wide significant PGC3 loci
#   and the many below the threshold), rescaled so that all shares add up to the SNP budget (at 300 small
#   SNPs they sum to about 0.117, the factor is near 1; maps with fewer eligible LD segments get fewer and
#   larger small SNPs, see ``polygenic_effects``).
N_LARGE = 5
LARGE_SHARE = (0.003, 0.005)
N_SMALL = 300
SMALL_SHARE = (1e-4, 1e-3)
REALISTIC_SNP_BUDGET = BUDGETS["realistic"]["snp"]
MIN_MAF_LARGE = 0.1
MIN_MAF_SMALL = 0.05
# At most this share of the map's eligible LD segments carries a small causal SNP.
MAX_CAUSAL_SEGMENT_SHARE = 0.25

# Cross-modal interactions.
# SNP x sMRI region: a common SNP (MAF >= MODIFIER_MIN_MAF, not otherwise causal) sets how much the GM of one
# region (its own latent z_smri_x) weighs on the liability: gamma x dosage x z_smri_x, nothing in non-carriers.
MODIFIER_MIN_MAF = 0.2
GXI_REGION = {"aal": "Temporal_Mid_L", "harvard-oxford": "Left_Middle_Temporal_Gyrus_posterior_division"}
GXI_REGION_EFFECT = 0.08  # relative GM reduction per SD of z_smri_x: the region measures its latent well
# FNC given a structural deficit: edges carried by their own latent z_fnc_x weigh on the liability only in
# subjects with a structural deficit, z_smri above its 2/3 quantile (a third of subjects):
# delta x 1{z_smri > 0.43} x z_fnc_x. Default-mode / cognitive-control edges (DM-CC, DM-DM), whose
# dysconnectivity in schizophrenia is the most replicated FNC finding after the thalamo-sensory one.
DEFICIT_QUANTILE = 2.0 / 3.0
DEFICIT_Z = float(norm.ppf(DEFICIT_QUANTILE))
N_CONDITIONAL_EDGES = 10
CONDITIONAL_DOMAIN_PAIRS = (("DM", "CC"), ("DM", "DM"))
CONDITIONAL_EDGE_EFFECT = (0.06, 0.12)  # Fisher-z shift per SD of z_fnc_x

# Nonlinear liability: the structural term acts through a threshold, h(z) = (max(z, 0) - E) / SD (only
# deficits above the mean raise the risk; standardized so that its variance is the sMRI budget), and the
# polygenic score multiplies the connectome score (snp_x_fnc: a genetic load that amplifies dysconnectivity,
# with no marginal effect of its own).
_RELU_MEAN = float(norm.pdf(0.0))
_RELU_SD = float(np.sqrt(0.5 - _RELU_MEAN**2))

_AUC_DRAWS = 200_000


@dataclass(frozen=True)
class Architecture:
    """The preset and the value of every switch of one simulated cohort."""

    preset: str
    genetic_architecture: str
    snp_layout: str
    imaging_effects: str
    interactions: float
    liability: str
    plant_atlas: str

    @property
    def budget(self) -> dict:
        return BUDGETS[self.preset]

    @property
    def legacy(self) -> bool:
        """True for the earlier simulator: preset ``easy`` with every switch at its ``easy`` value."""
        return self.preset == "easy" and all(getattr(self, k) == PRESETS["easy"][k] for k in SWITCHES)

    def settings(self) -> dict:
        return {"preset": self.preset, **{k: getattr(self, k) for k in SWITCHES}}


def resolve_architecture(preset="easy", **switches) -> Architecture:
    """Validate ``preset`` and the switches; a switch left at None takes the preset's value."""
    check_option("preset", preset, tuple(PRESETS))
    unknown = set(switches) - set(SWITCHES)
    if unknown:
        raise ParameterError(f"switches: expected some of {', '.join(SWITCHES)}, found {', '.join(sorted(unknown))}")
    values = dict(PRESETS[preset])
    for name, value in switches.items():
        if value is None:
            continue
        if name == "interactions":
            if isinstance(value, (bool, np.bool_)):
                value = 1.0 if value else 0.0
            value = check_number("interactions", value, minimum=0, maximum=MAX_INTERACTIONS)
        else:
            value = check_option(name, value, CHOICES[name])
        values[name] = value
    return Architecture(preset=preset, **values)


def polygenic_effects(rng, snps, budget_snp):
    """Choose the causal SNPs of the polygenic architecture and their per-allele effects.

    Each causal SNP sits in its own LD segment (``block``). ``N_LARGE`` SNPs (MAF >= 0.1) get shares of the
    liability variance uniform in ``LARGE_SHARE``, ``N_SMALL`` (MAF >= 0.05, at most
    ``MAX_CAUSAL_SEGMENT_SHARE`` of the eligible segments) log-uniform in ``SMALL_SHARE``; all shares are
    scaled by ``budget_snp / 0.14`` and the small ones then rescaled so that the shares add up to
    ``budget_snp``. The per-allele effect is ``sign x sqrt(share / (2 p (1 - p)))``, p the map's MAF: a SNP's
    variance in the liability is then its share (Hardy-Weinberg, no LD between causal SNPs).

    Returns
    -------
    dict
        ``index`` (sorted SNP rows), ``role`` ("large" / "small"), ``share``, ``beta`` (per A1 allele) and
        ``sign``, each an array in the order of ``index``.
    """
    maf = snps["maf"].to_numpy()
    block = snps["block"].to_numpy()
    scale = budget_snp / REALISTIC_SNP_BUDGET
    large = choose_in_segments(rng, maf, block, N_LARGE, MIN_MAF_LARGE, set())
    eligible = len(np.unique(block[maf >= MIN_MAF_SMALL]))
    n_small = int(min(N_SMALL, max(1, np.floor(MAX_CAUSAL_SEGMENT_SHARE * eligible))))
    small = choose_in_segments(rng, maf, block, n_small, MIN_MAF_SMALL, set(block[large]))
    large_share = rng.uniform(*LARGE_SHARE, size=len(large)) * scale
    raw = np.exp(rng.uniform(*np.log(SMALL_SHARE), size=len(small)))
    small_share = raw * max(budget_snp - large_share.sum(), 0.0) / raw.sum()
    index = np.r_[large, small]
    role = np.array(["large"] * len(large) + ["small"] * len(small))
    share = np.r_[large_share, small_share]
    sign = rng.choice([-1.0, 1.0], size=len(index))
    order = np.argsort(index, kind="stable")
    index, role, share, sign = index[order], role[order], share[order], sign[order]
    p = maf[index]
    beta = sign * np.sqrt(share / (2 * p * (1 - p)))
    return {"index": index, "role": role, "share": share, "beta": beta, "sign": sign}


def choose_in_segments(rng, maf, block, n, min_maf, used):
    """Up to ``n`` SNPs with MAF >= ``min_maf``, each in an LD segment of its own and none in ``used``
    (updated in place), in random order."""
    chosen = []
    used = set(used) if not isinstance(used, set) else used
    for i in rng.permutation(np.flatnonzero(maf >= min_maf)):
        if block[i] not in used:
            chosen.append(int(i))
            used.add(block[i])
        if len(chosen) == n:
            break
    return np.array(chosen, dtype=int)


def relu_standardized(z):
    """The threshold of the nonlinear structural term: (max(z, 0) - E) / SD for z standard normal."""
    return (np.maximum(z, 0.0) - _RELU_MEAN) / _RELU_SD


def coefficients(arch, weights, modifier_maf=None) -> dict:
    """The coefficient of every term that is on, and its expected variance (liability units).

    Returns
    -------
    dict
        term -> {"coefficient": float, "variance": float}; terms that are off are absent.
    """
    b = arch.budget
    out = {
        "snp": (weights["snp"] * np.sqrt(b["snp"]), weights["snp"] ** 2 * b["snp"]),
        "fnc": (weights["fnc"] * np.sqrt(b["fnc"]), weights["fnc"] ** 2 * b["fnc"]),
        "smri": (weights["smri"] * np.sqrt(b["smri"]), weights["smri"] ** 2 * b["smri"]),
    }
    s = arch.interactions
    if s > 0:
        p = modifier_maf
        second_moment = 2 * p * (1 - p) + 4 * p * p  # E[dosage^2]
        out["snp_x_smri"] = (s * np.sqrt(b["snp_x_smri"] / second_moment), s**2 * b["snp_x_smri"])
        out["fnc_given_smri"] = (s * np.sqrt(b["fnc_given_smri"] / (1 - DEFICIT_QUANTILE)), s**2 * b["fnc_given_smri"])
    if arch.liability == "nonlinear":
        w = weights["snp"] * weights["fnc"]
        out["snp_x_fnc"] = (w * np.sqrt(b["snp_x_fnc"]), w**2 * b["snp_x_fnc"])
    out["noise"] = (np.sqrt(b["noise"]), b["noise"])
    return {k: {"coefficient": float(c), "variance": float(v)} for k, (c, v) in out.items()}


def liability_terms(arch, coef, z, modifier_dosage=None) -> dict:
    """Every term of the liability but the noise, as arrays over subjects (in ``TERMS`` order).

    ``z`` holds the latent scores ``z_snp``, ``z_fnc``, ``z_smri`` (and ``z_smri_x``, ``z_fnc_x`` with
    interactions); ``modifier_dosage`` is the modifier SNP's A1 count.
    """
    structural = relu_standardized(z["z_smri"]) if arch.liability == "nonlinear" else z["z_smri"]
    terms = {
        "snp": coef["snp"]["coefficient"] * z["z_snp"],
        "fnc": coef["fnc"]["coefficient"] * z["z_fnc"],
        "smri": coef["smri"]["coefficient"] * structural,
    }
    if "snp_x_smri" in coef:
        terms["snp_x_smri"] = coef["snp_x_smri"]["coefficient"] * modifier_dosage * z["z_smri_x"]
        deficit = z["z_smri"] > DEFICIT_Z
        terms["fnc_given_smri"] = coef["fnc_given_smri"]["coefficient"] * deficit * z["z_fnc_x"]
    if "snp_x_fnc" in coef:
        terms["snp_x_fnc"] = coef["snp_x_fnc"]["coefficient"] * z["z_snp"] * z["z_fnc"]
    return terms


def formula(arch) -> str:
    """The liability as text, with the names of ``truth.json``'s coefficients."""
    structural = "h(z_smri)" if arch.liability == "nonlinear" else "z_smri"
    parts = ["c_snp*z_snp", "c_fnc*z_fnc", f"c_smri*{structural}"]
    if arch.interactions > 0:
        parts += ["c_snp_x_smri*dosage_modifier*z_smri_x", f"c_fnc_given_smri*1{{z_smri > {DEFICIT_Z:.4f}}}*z_fnc_x"]
    if arch.liability == "nonlinear":
        parts.append("c_snp_x_fnc*z_snp*z_fnc")
    text = " + ".join(parts) + " + N(0, c_noise^2)"
    if arch.liability == "nonlinear":
        text += f"; h(z) = (max(z, 0) - {_RELU_MEAN:.6f}) / {_RELU_SD:.6f}"
    return text


def expected_auc(arch, coef, modifier_maf=None, case_share=0.5) -> float:
    """AUC of the noise-free liability for its labels at infinite data (Monte Carlo, fixed draws).

    The latent scores are standard normal (the polygenic score too: hundreds of small terms), the modifier's
    dosage binomial; labels are the top ``case_share`` of the full liability. An upper bound for a model fed
    the cohort's features, which measure the latents with noise.
    """
    rng = np.random.default_rng(20_240_519)
    n = _AUC_DRAWS
    z = {name: rng.standard_normal(n) for name in ("z_snp", "z_fnc", "z_smri", "z_smri_x", "z_fnc_x")}
    dosage = rng.binomial(2, modifier_maf, n) if modifier_maf is not None else None
    signal = sum(liability_terms(arch, coef, z, dosage).values())
    liability = signal + coef["noise"]["coefficient"] * rng.standard_normal(n)
    labels = liability >= np.quantile(liability, 1 - case_share)
    ranks = np.argsort(np.argsort(signal)) + 1.0
    n1 = labels.sum()
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * (n - n1)))
