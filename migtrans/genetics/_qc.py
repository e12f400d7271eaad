"""Genotype quality control as PLINK 1.9 runs it: per-SNP and per-subject statistics, KING-robust kinship, and
the usual case/control filter sequence, with a table of what each filter removed and why."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import fisher_exact

from ..exceptions import CohortError, ParameterError
from ..validation import check_number, check_option

__all__ = ["QCResult", "QCThresholds", "genotype_qc", "king_kinship", "snp_statistics", "subject_statistics"]

# PLINK 1.9 nudges every threshold by 2**-44 (SMALL_EPSILON in plink_common.h) so that a rate equal to the
# threshold up to rounding is kept; we nudge the same way so the same SNPs and subjects go.
_SMALL_EPSILON = 2.0**-44
# PLINK 1.9 --het skips a SNP whose allele frequency is within 1e-8 of 0 or 1 (monomorphic).
_MONOMORPHIC = 1e-8
# Subjects x SNPs per block. A block of 2**22 entries is 16 MiB as float32; the few boolean and float32
# indicator copies made of it keep the working memory near 100 MiB whatever the cohort size.
_BLOCK_ENTRIES = 1 << 22
# Two exact-test tables whose probabilities differ by less than this (relative) are ties and both count
# towards the p-value, as in scipy.stats.fisher_exact. PLINK's tolerance is 2**-43; tables that close but
# not equal do not arise from integer counts of the sizes we see.
_TIE_TOLERANCE = 1e-7

#: The filters of `genotype_qc`, in the order they run.
FILTERS = (
    "subject_missing",
    "snp_missing",
    "hwe",
    "maf",
    "mac",
    "missing_diff",
    "heterozygosity",
    "relatedness",
)
#: The filters that remove subjects (the others remove SNPs).
SUBJECT_FILTERS = ("subject_missing", "heterozygosity", "relatedness")
_TABLE_COLUMNS = ["level", "id", "filter", "value", "threshold", "detail"]
_RELATIVES = ("drop", "keep")

# Parameter text shared by the docstrings below, filled in by `_fill_doc` (nilearn's fill_doc, in small).
_DOCS = {
    "dosages": """dosages : array-like of shape (n_subjects, n_snps)
        Allele-1 counts (0, 1 or 2; NaN for a missing call), allele 1 being the .bim file's fifth column, as
        bed-reader reads a .bed file with ``count_A1=True``. It is read in blocks of SNPs, so a memory map
        works and is never copied whole.""",
    "labels": """labels : array-like of shape (n_subjects,)
        Case/control status: 1 for a case, 0 for a control.""",
}


def _fill_doc(func):
    func.__doc__ = func.__doc__ % _DOCS
    return func


# ----------------------------------------------------------------------------------------------- inputs


def _check_dosages(dosages):
    if not (hasattr(dosages, "shape") and hasattr(dosages, "dtype")):
        dosages = np.asarray(dosages)
    if len(dosages.shape) != 2:
        raise ParameterError(f"dosages: expected a 2-D array (subjects x SNPs), found shape {tuple(dosages.shape)}")
    if np.dtype(dosages.dtype).kind not in "fiu":
        raise ParameterError(f"dosages: expected allele counts as numbers, found dtype {dosages.dtype}")
    return dosages


def _check_labels(labels, n_subjects):
    labels = np.asarray(labels)
    if labels.shape != (n_subjects,):
        raise ParameterError(f"labels: expected shape ({n_subjects},), one per subject, found {labels.shape}")
    if labels.dtype.kind not in "biuf" or not np.isin(labels, (0, 1)).all():
        found = [v for v in np.unique(labels.astype(str)) if v not in ("0", "1", "0.0", "1.0", "False", "True")]
        raise ParameterError(f"labels: expected 0 (control) or 1 (case), found {found[0] if found else labels.dtype}")
    return labels.astype(np.int8)


def _check_ids(name, ids, length):
    ids = np.asarray(ids).astype(str)
    if ids.shape != (length,):
        raise ParameterError(f"{name}: expected {length} ids, found shape {ids.shape}")
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ParameterError(f"{name}: expected unique ids, found {str(values[counts > 1][0])!r} more than once")
    return ids


def _blocks(dosages, rows=None, cols=None):
    """Yield ``(snp indices, float32 block)`` over blocks of SNPs, limited to the ``rows`` and ``cols`` masks."""
    n_subjects, n_snps = dosages.shape
    step = max(1, _BLOCK_ENTRIES // max(n_subjects, 1))
    for start in range(0, n_snps, step):
        stop = min(n_snps, start + step)
        index = np.arange(start, stop)
        if cols is not None:
            wanted = cols[start:stop]
            if not wanted.any():
                continue
            index = index[wanted]
        block = np.asarray(dosages[:, start:stop], dtype=np.float32)
        if cols is not None:
            block = block[:, wanted]
        if rows is not None:
            block = block[rows]
        yield index, block


def _indicators(block, index):
    """``(hom_a1, het, hom_a2, called)`` boolean indicators of a block, after checking every value."""
    hom_a1, het, hom_a2 = block == 2, block == 1, block == 0
    called = ~np.isnan(block)
    bad = (hom_a1 | het | hom_a2) != called
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ParameterError(
            f"dosages: expected allele counts 0, 1, 2 or NaN, found {float(block[row, col])!r} "
            f"in SNP column {int(index[col])}"
        )
    return hom_a1, het, hom_a2, called


# ------------------------------------------------------------------------------------------ exact tests


def _hwe_exact(het, hom1, hom2):
    """Hardy-Weinberg exact test p-values (Wigginton et al. 2005, as PLINK's SNPHWE2), one per count triple.

    The null distribution of the heterozygote count depends only on the number of genotypes and of
    minor-allele copies, and a cohort has few distinct count triples: each distribution is built once (in log
    space, so p-values down to 1e-300 keep their digits) and each distinct triple is tested once.
    """
    het, hom1, hom2 = (np.asarray(a, dtype=np.int64) for a in (het, hom1, hom2))
    n = het + hom1 + hom2
    rare = 2 * np.minimum(hom1, hom2) + het
    triples, inverse = np.unique(np.stack([n, rare, het], axis=1), axis=0, return_inverse=True)
    p_values = np.ones(len(triples))
    current, log_p, log_total = None, None, 0.0
    for i, (genotypes, copies, hets) in enumerate(triples):
        if (genotypes, copies) != current:  # triples come sorted, so each distribution is built once
            current = (genotypes, copies)
            k = np.arange(copies % 2, copies + 1, 2)  # possible het counts, with the parity of the copies
            hom_rare = (copies - k) // 2
            hom_common = genotypes - k - hom_rare
            log_p = k * math.log(2) - gammaln(hom_rare + 1) - gammaln(k + 1) - gammaln(hom_common + 1)
            top = log_p.max()
            log_total = top + math.log(np.exp(log_p - top).sum())
        observed = log_p[hets // 2]
        # the tail relative to the observed table: no term exceeds 1, and only a p-value below 1e-308 underflows
        tail = np.exp(log_p[log_p <= observed + _TIE_TOLERANCE] - observed).sum()
        p_values[i] = min(1.0, tail * math.exp(observed - log_total))
    return p_values[inverse.ravel()]


def _missing_fisher(case_missing, n_cases, control_missing, n_controls):
    """Two-sided Fisher exact test of missing vs called calls by status (PLINK --test-missing), per SNP."""
    case_missing = np.asarray(case_missing, dtype=np.int64)
    control_missing = np.asarray(control_missing, dtype=np.int64)
    if n_cases == 0 or n_controls == 0:
        return np.full(len(case_missing), np.nan)
    pairs, inverse = np.unique(np.stack([case_missing, control_missing], axis=1), axis=0, return_inverse=True)
    p_values = np.array([fisher_exact([[a, n_cases - a], [b, n_controls - b]]).pvalue for a, b in pairs], dtype=float)
    return p_values[inverse.ravel()]


# ------------------------------------------------------------------------------------------- statistics


def _snp_frame(dosages, labels, rows=None):
    """Per-SNP statistics over the subjects in ``rows`` (all SNPs)."""
    labels = labels if rows is None else labels[rows]
    controls, cases = labels == 0, labels == 1
    n_snps = dosages.shape[1]
    counts = {key: np.zeros(n_snps, dtype=np.int64) for key in ("called", "a1", "hom1_c", "het_c", "hom2_c", "case")}
    for index, block in _blocks(dosages, rows):
        hom_a1, het, hom_a2, called = _indicators(block, index)
        counts["called"][index] = called.sum(axis=0)
        counts["a1"][index] = 2 * hom_a1.sum(axis=0) + het.sum(axis=0)
        counts["hom1_c"][index] = hom_a1[controls].sum(axis=0)
        counts["het_c"][index] = het[controls].sum(axis=0)
        counts["hom2_c"][index] = hom_a2[controls].sum(axis=0)
        counts["case"][index] = called[cases].sum(axis=0)
    n_subjects, n_cases, n_controls = len(labels), int(cases.sum()), int(controls.sum())
    alleles = 2 * counts["called"]
    with np.errstate(invalid="ignore", divide="ignore"):
        a1_freq = counts["a1"] / alleles
        missing_rate = 1.0 - counts["called"] / n_subjects
    control_called = counts["hom1_c"] + counts["het_c"] + counts["hom2_c"]
    return pd.DataFrame(
        {
            "missing_rate": missing_rate,
            "maf": np.minimum(a1_freq, 1.0 - a1_freq),
            "mac": np.minimum(counts["a1"], alleles - counts["a1"]),
            "hwe_p_controls": _hwe_exact(counts["het_c"], counts["hom1_c"], counts["hom2_c"]),
            "p_missing_diff": _missing_fisher(
                n_cases - counts["case"], n_cases, n_controls - control_called, n_controls
            ),
        }
    )


@_fill_doc
def snp_statistics(dosages, labels) -> pd.DataFrame:
    """Per-SNP quality statistics, as PLINK 1.9 reports them.

    Parameters
    ----------
    %(dosages)s
    %(labels)s

    Returns
    -------
    pandas.DataFrame
        One row per SNP, in column order:

        - ``missing_rate``: share of subjects without a call (``--missing``, .lmiss ``F_MISS``);
        - ``maf``: minor allele frequency over the called alleles (``--freq``; NaN when no subject is called);
        - ``mac``: minor allele count;
        - ``hwe_p_controls``: Hardy-Weinberg exact test p-value (Wigginton et al. 2005) in the controls,
          as the ``UNAFF`` row of ``--hardy`` (1 when no control is called);
        - ``p_missing_diff``: two-sided Fisher exact test of missing vs called by case/control status
          (``--test-missing``; 1 when no call is missing; NaN without both cases and controls).

    See Also
    --------
    genotype_qc : the filters these statistics drive.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> dosages = rng.binomial(2, [0.3, 0.05, 0.5], size=(200, 3)).astype("float32")
    >>> dosages[:30, 0] = np.nan  # 15%% of the first SNP's calls are missing, all in cases
    >>> dosages[:, 2] = 2 * rng.binomial(1, 0.5, 200)  # no heterozygotes: far from Hardy-Weinberg
    >>> labels = (np.arange(200) < 100).astype(int)
    >>> stats = snp_statistics(dosages, labels)
    >>> stats["missing_rate"].round(3).tolist(), stats["maf"].round(3).tolist()
    ([0.15, 0.0, 0.0], [0.335, 0.045, 0.455])
    >>> bool(stats.loc[2, "hwe_p_controls"] < 1e-20), bool(stats.loc[0, "p_missing_diff"] < 1e-8)
    (True, True)
    """
    dosages = _check_dosages(dosages)
    return _snp_frame(dosages, _check_labels(labels, dosages.shape[0]))


def _subject_frame(dosages, rows=None, cols=None, heterozygosity=True):
    """Per-subject missingness and (optionally) PLINK --het statistics over ``rows`` x ``cols``."""
    n_subjects = dosages.shape[0] if rows is None else int(rows.sum())
    n_snps = dosages.shape[1] if cols is None else int(cols.sum())
    missing = np.zeros(n_subjects, dtype=np.int64)
    o_hom = np.zeros(n_subjects, dtype=np.int64)
    n_nm = np.zeros(n_subjects, dtype=np.int64)
    e_hom = np.zeros(n_subjects)
    for index, block in _blocks(dosages, rows, cols):
        hom_a1, het, hom_a2, called = _indicators(block, index)
        missing += block.shape[1] - called.sum(axis=1)
        if not heterozygosity:
            continue
        # --het takes allele frequencies from the subjects at hand (all founders here) and skips SNPs that
        # are monomorphic in them; a subject's expected homozygosity sums Nei's 1 - 2pq over its called SNPs.
        n_called = called.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            freq = (2 * hom_a1.sum(axis=0) + het.sum(axis=0)) / (2 * n_called)
        polymorphic = (n_called > 0) & (freq >= _MONOMORPHIC) & (freq <= 1 - _MONOMORPHIC)
        if not polymorphic.any():
            continue
        called_poly = called[:, polymorphic]
        n_nm += called_poly.sum(axis=1)
        o_hom += (hom_a1[:, polymorphic] | hom_a2[:, polymorphic]).sum(axis=1)
        p = freq[polymorphic]
        e_hom += called_poly.astype(np.float64) @ (1.0 - 2.0 * p * (1.0 - p))
    with np.errstate(invalid="ignore", divide="ignore"):
        frame = pd.DataFrame({"missing_rate": missing / n_snps if n_snps else np.full(n_subjects, np.nan)})
        if heterozygosity:
            frame["o_hom"] = o_hom
            frame["e_hom"] = e_hom
            frame["n_nm"] = n_nm
            frame["het_f"] = np.where(n_nm > 0, (o_hom - e_hom) / (n_nm - e_hom), np.nan)
    return frame


@_fill_doc
def subject_statistics(dosages, snp_mask=None) -> pd.DataFrame:
    """Per-subject missingness and inbreeding coefficient, as PLINK 1.9's ``--missing`` and ``--het``.

    Parameters
    ----------
    %(dosages)s
    snp_mask : array-like of bool of shape (n_snps,), optional
        The SNPs to use (default: all). ``--het`` is meant for autosomal SNPs in approximate linkage
        equilibrium; pass a mask that keeps only those.

    Returns
    -------
    pandas.DataFrame
        One row per subject, in row order:

        - ``missing_rate``: share of the SNPs without a call (.imiss ``F_MISS``);
        - ``o_hom``: observed homozygous calls (``O(HOM)``), over SNPs polymorphic in these subjects;
        - ``e_hom``: expected homozygous calls (``E(HOM)``): the sum of Nei's ``1 - 2 p (1 - p)`` over the
          subject's called polymorphic SNPs, ``p`` the allele frequency among all subjects given, without
          the ``n / (n - 1)`` small-sample factor (as ``--het`` without ``small-sample``);
        - ``n_nm``: called polymorphic SNPs (``N(NM)``);
        - ``het_f``: method-of-moments inbreeding coefficient ``(o_hom - e_hom) / (n_nm - e_hom)`` (``F``);
          negative for excess heterozygosity (e.g. a contaminated sample).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> dosages = rng.binomial(2, 0.4, size=(50, 400)).astype("float32")
    >>> dosages[0, rng.random(400) < 0.5] = 1  # half of subject 0's calls forced heterozygous
    >>> dosages[1, :40] = np.nan
    >>> stats = subject_statistics(dosages)
    >>> float(stats.loc[1, "missing_rate"]), bool(stats.loc[0, "het_f"] < -0.5)
    (0.1, True)
    """
    dosages = _check_dosages(dosages)
    cols = None
    if snp_mask is not None:
        cols = np.asarray(snp_mask)
        if cols.dtype != bool or cols.shape != (dosages.shape[1],):
            raise ParameterError(
                f"snp_mask: expected {dosages.shape[1]} booleans, found dtype {cols.dtype} and shape {cols.shape}"
            )
    return _subject_frame(dosages, cols=cols)


def _king(dosages, rows=None, cols=None):
    n_subjects = dosages.shape[0] if rows is None else int(rows.sum())
    het_het = np.zeros((n_subjects, n_subjects))
    opposite = np.zeros((n_subjects, n_subjects))
    het_where_called = np.zeros((n_subjects, n_subjects))  # [i, j]: hets of i at SNPs that j has called
    for index, block in _blocks(dosages, rows, cols):
        # float32 products of 0/1 indicators are exact: a block sums far fewer than 2**24 ones
        hom_a1, het, hom_a2, called = (x.astype(np.float32) for x in _indicators(block, index))
        het_het += het @ het.T
        ibs0 = hom_a1 @ hom_a2.T
        opposite += ibs0 + ibs0.T
        het_where_called += het @ called.T
    het_i, het_j = het_where_called, het_where_called.T  # both over the SNPs that i and j have called
    het_min = np.minimum(het_i, het_j)
    with np.errstate(invalid="ignore", divide="ignore"):
        kinship = (het_het - 2 * opposite) / (2 * het_min) + 0.5 - (het_i + het_j) / (4 * het_min)
    np.fill_diagonal(kinship, 0.5)
    return kinship


@_fill_doc
def king_kinship(dosages) -> np.ndarray:
    """KING-robust kinship coefficients between every two subjects (Manichaikul et al. 2010).

    For subjects i and j, over the SNPs both have called, with ``N_Aa(i) <= N_Aa(j)`` their heterozygous
    calls, ``N_Aa,Aa`` the SNPs where both are heterozygous and ``N_AA,aa`` those where they are opposite
    homozygotes, the between-family estimator is::

        phi = (N_Aa,Aa - 2 N_AA,aa) / (2 N_Aa(i)) + 1/2 - (N_Aa(i) + N_Aa(j)) / (4 N_Aa(i))

    It is robust to population structure. Expected values: 0.5 for duplicates, 0.25 for first-degree
    relatives, 0.125 second, 0.0625 third, 0 for unrelated subjects (negative values are common then).

    Parameters
    ----------
    %(dosages)s

    Returns
    -------
    numpy.ndarray of shape (n_subjects, n_subjects)
        Symmetric, with 0.5 on the diagonal; NaN for a pair with no heterozygous call in common SNPs.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> dosages = rng.binomial(2, 0.3, size=(4, 3000)).astype("float32")
    >>> dosages[3] = dosages[0]  # subject 3 duplicates subject 0
    >>> kinship = king_kinship(dosages)
    >>> float(kinship[0, 3]), bool(abs(kinship[0, 1]) < 0.05)
    (0.5, True)
    """
    return _king(_check_dosages(dosages))


# ------------------------------------------------------------------------------------------- thresholds

# The valid range of each threshold, as keyword arguments of migtrans.validation.check_number.
_RANGES = {
    "snp_missing": dict(minimum=0, maximum=1),
    "subject_missing": dict(minimum=0, maximum=1),
    "maf": dict(minimum=0, maximum=0.5),
    "mac": dict(minimum=0, integer=True),
    "hwe": dict(minimum=0, maximum=1, high_open=True),
    "missing_diff": dict(minimum=0, maximum=1, high_open=True),
    "het_sd": dict(minimum=0, low_open=True),
    "kinship": dict(minimum=0, maximum=0.5, low_open=True),
}


def _checked(name, key, value):
    if key == "relatives":
        return check_option(name, value, _RELATIVES)
    return None if value is None else check_number(name, value, **_RANGES[key])


@dataclass(frozen=True)
class QCThresholds:
    """Thresholds of the genotype QC filters; ``None`` switches a filter off.

    Each PLINK 1.9 filter removes what lies strictly beyond its threshold, as the flag it mirrors does.

    Parameters
    ----------
    snp_missing : float or None, default=0.1
        Largest share of missing calls a SNP may have (``--geno 0.1``).
    subject_missing : float or None, default=0.1
        Largest share of missing calls a subject may have (``--mind 0.1``).
    maf : float or None, default=0.01
        Smallest minor allele frequency (``--maf 0.01``).
    mac : int or None, default=None
        Smallest minor allele count (``--mac``); off by default, ``maf`` does that job at cohort sizes.
    hwe : float or None, default=1e-6
        Smallest Hardy-Weinberg exact test p-value in the controls (``--hwe 1e-6``, which PLINK 1.9
        applies to controls only unless told ``include-nonctrl``). PLINK 1.9 has no default value:
        without ``--hwe`` it filters nothing, and ``--hwe`` without a p-value is an error (v1.90b6). 1e-6 in
        controls is the common choice (Marees et al. 2018): genotyping errors give p-values far below it,
        while a true association may move a SNP slightly out of equilibrium, and in cases more than controls.
    missing_diff : float or None, default=1e-5
        Smallest p-value of the test of differential missingness between cases and controls
        (``--test-missing``; PLINK reports it but filtering on it is a separate, common step).
    het_sd : float or None, default=3.0
        Subjects whose inbreeding coefficient F (``--het``) lies more than this many sample standard
        deviations from the cohort mean are removed, either side (Anderson et al. 2010): excess
        heterozygosity suggests contamination, a deficit inbreeding.
    kinship : float or None, default=0.0884
        KING-robust kinship above which two subjects count as related: 0.0884 = 2**-3.5 separates
        second-degree relatives from more distant ones (KING's cutoff, and plink2 ``--king-cutoff``).
    relatives : {"drop", "keep"}, default="drop"
        "drop" removes one subject of each related pair; "keep" removes none but still reports the pairs
        (to keep relatives in the same cross-validation fold, for instance).

    Examples
    --------
    >>> QCThresholds(maf=0.05).maf
    0.05
    >>> QCThresholds.from_mapping({"hwe": 1e-10, "missing_diff": False}).missing_diff is None
    True
    """

    snp_missing: float | None = 0.1
    subject_missing: float | None = 0.1
    maf: float | None = 0.01
    mac: int | None = None
    hwe: float | None = 1e-6
    missing_diff: float | None = 1e-5
    het_sd: float | None = 3.0
    kinship: float | None = 0.0884
    relatives: str = "drop"

    def __post_init__(self):
        for item in fields(self):
            object.__setattr__(self, item.name, _checked(item.name, item.name, getattr(self, item.name)))

    @classmethod
    def from_mapping(cls, mapping, file=None) -> QCThresholds:
        """Thresholds from a ``[qc]`` table of a cohort TOML file; missing keys keep their defaults.

        TOML has no null, so ``false`` switches a filter off there (``hwe = false``); ``None`` does too.

        Parameters
        ----------
        mapping : dict
            Threshold name -> value.
        file : str or path-like, optional
            The file the table comes from, named in errors.

        Returns
        -------
        QCThresholds

        Raises
        ------
        CohortError
            Naming every unknown key at once, or the first key with a value of the wrong type or range.
        """
        if not isinstance(mapping, dict):
            raise CohortError(f"[qc] must be a table of thresholds, found {type(mapping).__name__}", file=file)
        allowed = [item.name for item in fields(cls)]
        unknown = sorted(set(mapping) - set(allowed))
        if unknown:
            raise CohortError(
                f"unknown key{'s' if len(unknown) > 1 else ''} in [qc]: {', '.join(map(str, unknown))}; "
                f"allowed keys: {', '.join(sorted(allowed))}",
                file=file,
            )
        values = {}
        for key, value in mapping.items():
            value = None if value is False and key != "relatives" else value
            try:
                values[key] = _checked(f"qc.{key}", key, value)
            except ParameterError as exc:
                raise CohortError(str(exc), file=file) from None
        return cls(**values)


# ----------------------------------------------------------------------------------------------- result


@dataclass
class QCResult:
    """What `genotype_qc` kept and removed.

    Attributes
    ----------
    keep_snps : numpy.ndarray of bool, shape (n_snps,)
    keep_subjects : numpy.ndarray of bool, shape (n_subjects,)
    table : pandas.DataFrame
        One row per removal (the ``qc.csv``), in filter order: ``level`` ("snp" or "subject"), ``id``,
        ``filter`` ("subject_missing", "snp_missing", "hwe", "maf", "mac", "missing_diff",
        "heterozygosity" or "relatedness"), ``value`` (the statistic that failed; for heterozygosity the
        z-score of F, for relatedness the largest kinship), ``threshold``, ``detail``
        (for relatedness, the related subjects' ids; for heterozygosity, F and the cohort's mean and SD).
        A SNP or subject is listed once, under the first filter it failed.
    kinship_pairs : pandas.DataFrame
        ``id1``, ``id2``, ``kinship`` of every pair above the kinship threshold among the subjects that
        reached the relatedness step, dropped or not.
    thresholds : QCThresholds
    """

    keep_snps: np.ndarray
    keep_subjects: np.ndarray
    table: pd.DataFrame
    kinship_pairs: pd.DataFrame
    thresholds: QCThresholds

    def summary(self) -> dict:
        """Removals per filter (every filter, in order, 0 when off), then what is kept.

        Returns
        -------
        dict
            ``{filter: count, ..., "snps_kept": int, "subjects_kept": int, "related_pairs": int}``.
        """
        counts = self.table["filter"].value_counts()
        out = {name: int(counts.get(name, 0)) for name in FILTERS}
        out["snps_kept"] = int(self.keep_snps.sum())
        out["subjects_kept"] = int(self.keep_subjects.sum())
        out["related_pairs"] = len(self.kinship_pairs)
        return out


def _record(rows, level, ids, fail, name, values, threshold, detail=None):
    for i in np.flatnonzero(fail):
        rows.append((level, str(ids[i]), name, float(values[i]), float(threshold), "" if detail is None else detail[i]))


def _drop_relatives(pairs, missing_rate, ids):
    """Greedy choice of subjects to drop so that no related pair is left: ``[(subject, partners, kinship)]``."""
    active = list(pairs)
    dropped = []
    while active:
        degree = Counter(s for i, j, _ in active for s in (i, j))
        # the subject in most pairs; then the one with more missing calls; then the id that sorts last
        subject = max(degree, key=lambda s: (degree[s], missing_rate[s], ids[s]))
        mine = [(j if i == subject else i, phi) for i, j, phi in active if subject in (i, j)]
        dropped.append((subject, [str(ids[s]) for s, _ in mine], max(phi for _, phi in mine)))
        active = [pair for pair in active if subject not in pair[:2]]
    return dropped


@_fill_doc
def genotype_qc(dosages, labels, snp_ids, subject_ids, thresholds=None, *, independent=None) -> QCResult:
    """Run the standard case/control genotype QC, in PLINK 1.9's order, and say what each filter removed.

    The filters run in this order, each on what the ones before kept (PLINK 1.9 applies its own four in
    this order within one run: ``--mind`` before the SNP filters, then ``--geno``, ``--hwe``, ``--maf``):

    1. subject missingness (``--mind``), over all SNPs;
    2. SNP missingness (``--geno``), in the remaining subjects;
    3. Hardy-Weinberg equilibrium in the controls (``--hwe``);
    4. minor allele frequency, then count (``--maf``, ``--mac``);
    5. differential missingness between cases and controls (``--test-missing`` p-value);
    6. heterozygosity: |F - mean F| > ``het_sd`` SD, F as ``--het``, on the SNPs that passed 2-5;
    7. relatedness: KING-robust kinship above ``kinship`` on the SNPs that passed 2-5, among the subjects
       that passed 1 and 6. With ``relatives="drop"`` one subject of each related pair is removed,
       greedily: the subject in most pairs first; ties go to the higher missing-call rate (step 1), then
       to the id that sorts last. With ``relatives="keep"`` nobody is removed; the pairs are reported.

    SNP filters 2-4 do not depend on each other (they see the same subjects), so their order only decides
    under which filter a SNP failing several is listed. Protocols that remove bad SNPs before judging
    subjects (Anderson et al. 2010) run ``--geno`` and ``--mind`` as two PLINK commands; here, as in one
    PLINK command, a subject's missingness counts every SNP. Heterozygosity and kinship need autosomal
    SNPs in approximate linkage equilibrium: prune before, or expect wider spreads. Everything is
    deterministic.

    Parameters
    ----------
    %(dosages)s
    %(labels)s
    snp_ids : array-like of str, shape (n_snps,)
        Unique SNP ids (the .bim file's second column).
    subject_ids : array-like of str, shape (n_subjects,)
        Unique subject ids.
    thresholds : QCThresholds, optional
        The thresholds; default ``QCThresholds()``.
    independent : array-like of bool, shape (n_snps,), optional
        SNPs in approximate linkage equilibrium (e.g. `ld_prune`'s): heterozygosity and kinship are then
        computed on those of them that passed steps 2-5. Kinship over SNPs in LD counts each LD block many
        times, which widens the spread of unrelated pairs' estimates past the cutoff on small SNP sets.

    Returns
    -------
    QCResult
        The masks of kept SNPs and subjects, the table of removals, the related pairs and `summary`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> dosages = rng.binomial(2, 0.3, size=(60, 2000)).astype("float32")
    >>> dosages[:2, :400] = np.nan  # two subjects miss 20%% of their calls
    >>> dosages[:, -3:] = 0  # three monomorphic SNPs
    >>> result = genotype_qc(
    ...     dosages, np.arange(60) %% 2, [f"rs{j}" for j in range(2000)], [f"s{i}" for i in range(60)]
    ... )
    >>> {k: v for k, v in result.summary().items() if v}
    {'subject_missing': 2, 'maf': 3, 'snps_kept': 1997, 'subjects_kept': 58}
    >>> result.table[["level", "id", "filter", "value"]].head(3)
         level      id           filter  value
    0  subject      s0  subject_missing    0.2
    1  subject      s1  subject_missing    0.2
    2      snp  rs1997              maf    0.0
    """
    dosages = _check_dosages(dosages)
    n_subjects, n_snps = dosages.shape
    labels = _check_labels(labels, n_subjects)
    snp_ids = _check_ids("snp_ids", snp_ids, n_snps)
    subject_ids = _check_ids("subject_ids", subject_ids, n_subjects)
    t = QCThresholds() if thresholds is None else thresholds
    if not isinstance(t, QCThresholds):
        raise ParameterError(f"thresholds: expected a QCThresholds, found {type(t).__name__}")
    # Hardy-Weinberg is tested in the controls (in every subject, all coded 0, when there is no phenotype)
    found = "no subject" if n_subjects == 0 else "only cases" if labels[0] else "only controls"
    if t.missing_diff is not None and len(np.unique(labels)) < 2:
        raise ParameterError(f"labels: the missing_diff filter needs cases (1) and controls (0), found {found}")
    if t.hwe is not None and not (labels == 0).any():
        raise ParameterError(f"labels: the hwe filter needs controls (0), found {found}")
    rows, cols, removed = np.ones(n_subjects, bool), np.ones(n_snps, bool), []

    # 1. --mind: PLINK compares the count of missing calls with floor(threshold * n_snps), nudged up
    missing_rate = _subject_frame(dosages, heterozygosity=False)["missing_rate"].to_numpy()
    if t.subject_missing is not None:
        limit = math.floor(t.subject_missing * n_snps * (1 + _SMALL_EPSILON))
        fail = np.round(missing_rate * n_snps) > limit
        _record(removed, "subject", subject_ids, fail, "subject_missing", missing_rate, t.subject_missing)
        rows &= ~fail

    # 2-5. SNP filters, all on the subjects that passed --mind (none left: nothing to judge SNPs by)
    stats = _snp_frame(dosages, labels, rows)
    snp_steps = [
        ("snp_missing", "missing_rate", lambda v, x: (1 - v) < (1 - x) * (1 - _SMALL_EPSILON)),
        ("hwe", "hwe_p_controls", lambda v, x: v < x * (1 - _SMALL_EPSILON)),
        ("maf", "maf", lambda v, x: ~(v >= x * (1 - _SMALL_EPSILON))),  # a SNP with no call has no MAF: it fails
        ("mac", "mac", lambda v, x: v < x),
        ("missing_diff", "p_missing_diff", lambda v, x: v < x),
    ]
    for name, column, fails in snp_steps if rows.any() else []:
        threshold = getattr(t, name)
        if threshold is None:
            continue
        values = stats[column].to_numpy(dtype=float)
        fail = cols & fails(values, threshold)
        _record(removed, "snp", snp_ids, fail, name, values, threshold)
        cols &= ~fail

    # 6. heterozygosity, on the SNPs that passed (and are nearly independent, when given)
    if independent is not None:
        independent = np.asarray(independent, dtype=bool)
        if independent.shape != (n_snps,):
            raise ParameterError(f"independent: expected {n_snps} booleans, found shape {independent.shape}")
    unlinked = cols if independent is None else cols & independent
    if t.het_sd is not None and rows.any() and unlinked.any():
        het_f = _subject_frame(dosages, rows, unlinked)["het_f"].to_numpy()
        finite = het_f[np.isfinite(het_f)]
        mean = finite.mean() if len(finite) else np.nan
        sd = finite.std(ddof=1) if len(finite) > 1 else np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (het_f - mean) / sd
        fail = np.abs(z) > t.het_sd  # NaN (no SD, or no polymorphic call) fails nobody
        kept = np.flatnonzero(rows)
        detail = {i: f"F={het_f[i]:.4f}; mean={mean:.4f}; sd={sd:.4f}" for i in np.flatnonzero(fail)}
        _record(removed, "subject", subject_ids[kept], fail, "heterozygosity", z, t.het_sd, detail)
        rows[kept[fail]] = False

    # 7. relatedness, on the SNPs that passed
    pairs = []
    if t.kinship is not None and rows.sum() > 1 and unlinked.any():
        kept = np.flatnonzero(rows)
        kinship = _king(dosages, rows, unlinked)
        first, second = np.triu_indices(len(kept), k=1)
        above = kinship[first, second] > t.kinship  # NaN is not above
        pairs = [(kept[i], kept[j], float(kinship[i, j])) for i, j in zip(first[above], second[above])]
        if t.relatives == "drop":
            for subject, partners, phi in _drop_relatives(pairs, missing_rate, subject_ids):
                row = ("subject", str(subject_ids[subject]), "relatedness", phi, t.kinship, ";".join(partners))
                removed.append(row)
                rows[subject] = False
    kinship_pairs = pd.DataFrame(
        {
            "id1": [str(subject_ids[i]) for i, _, _ in pairs],
            "id2": [str(subject_ids[j]) for _, j, _ in pairs],
            "kinship": np.array([phi for _, _, phi in pairs], dtype=float),
        }
    )
    table = pd.DataFrame(removed, columns=_TABLE_COLUMNS)
    return QCResult(keep_snps=cols, keep_subjects=rows, table=table, kinship_pairs=kinship_pairs, thresholds=t)
