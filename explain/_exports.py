"""The ranked tables in the formats of the tools people open them with: the classical association as GWAS-SSF
summary statistics (GWAS Catalog) and as a FUMA / LocusZoom upload, the connectome as BrainNet Viewer files."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from migtrans import __version__
from migtrans.exceptions import ParameterError
from migtrans.loci import normalise_chrom
from migtrans.utils import atomic_write_bytes, atomic_write_text

from ._association import ASSOCIATION_COLUMNS
from ._folder import ExplanationFolder

#: GWAS-SSF columns: the eight mandatory ones in their order, then the encouraged ones written here
SSF_COLUMNS = (
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "p_value",
    "variant_id",
    "n",
    "rsid",
)
#: the FUMA / LocusZoom columns (A1 the effect allele, BETA its log odds ratio)
FUMA_COLUMNS = ("SNP", "CHR", "BP", "A1", "A2", "P", "BETA", "SE", "N")
SSF_VERSION = "GWAS-SSF v1.0"
#: GWAS-SSF's missing value, and the GWAS Catalog's "not reported" for metadata the cohort files do not hold
MISSING, NOT_REPORTED = "#NA", "NR"
# GWAS-SSF chromosome codes (X=23, Y=24, MT=25); PLINK's XY (the pseudo-autosomal region) is placed on X
_SSF_CODES = {"X": 23, "XY": 23, "Y": 24, "MT": 25}
# keys of the metadata's sample block, which a caller may set at the top level of ``metadata``
_SAMPLE_KEYS = ("sample_ancestry_category", "sample_ancestry", "ancestry_method")
#: connections drawn in the BrainNet edge file, as in the report's connectome figures
TOP_K = 20


def write_exports(folder, tables: dict, settings=None, *, metadata=None, top_k=TOP_K) -> list[Path]:
    """Write the community-format copies of a run's tables into its explanation folder.

    From ``snps`` (when it has the classical association's columns): the GWAS-SSF summary statistics
    ``association.tsv.gz`` with their metadata ``association.tsv.gz-meta.yaml``, and the FUMA / LocusZoom
    upload ``association_fuma.tsv.gz``. From ``nodes`` and ``connections``: BrainNet Viewer's
    ``nodes.node`` and ``connections.edge``. docs/exports.md says how to open each and what it holds.

    Every summary-statistics row is a SNP of ``snps`` whose association was estimated, on chromosome 1-22, X,
    Y or MT, at a position > 0, with A/C/G/T alleles (the others cannot be written in GWAS-SSF; the metadata's
    ``author_notes`` counts them). Rows are sorted by chromosome, then position. The effect allele is ``a1``,
    the allele the dosages count; ``beta`` is its log odds ratio per copy, adjusted for the association's
    covariates, ``p_value`` the two-sided Wald p of that fit (``p_assoc``, exactly).

    Parameters
    ----------
    folder : path-like
        The explanation (or report) folder.
    tables : dict of str -> DataFrame
        The ranked tables (`result_tables`); ``snps.attrs`` give the genome build, the trait and the case and
        control counts (`settings` keys of the same names are read when the attrs are gone, e.g. after
        `Attributions.load`).
    settings : dict, optional
        The explanation's settings (``association_covariates``, ``genome_build``, ...).
    metadata : dict, optional
        GWAS-SSF metadata fields to set or replace, e.g. ``{"genotyping_technology": ["Genome-wide
        genotyping array"], "sample_ancestry_category": ["European"]}``; ``sample_ancestry_category``,
        ``sample_ancestry`` and ``ancestry_method`` go into the sample block. Fields the cohort files do not
        hold (genotyping technology, ancestry category) are "NR" (not reported) unless set here.
    top_k : int, default=20
        Connections in the edge file: the ``top_k`` best ranked (``rank``, by contrast); every other entry is 0.

    Returns
    -------
    list of Path
        The files written (none when the tables hold neither genotypes nor connectome). An export of an
        earlier write that these tables do not give is removed, so that no file describes other tables.

    Examples
    --------
    >>> snps = pd.DataFrame({"snp": ["rs1", "rs2"], "chrom": ["2", "1"], "pos": [30, 10], "a1": ["A", "T"],
    ...                      "a2": ["G", "C"], "beta_assoc": [0.5, -0.2], "se_assoc": [0.1, 0.2],
    ...                      "z_assoc": [5.0, -1.0], "p_assoc": [5.7e-07, 0.32], "n_assoc": [300, 298],
    ...                      "a1_freq": [0.25, 0.5]})
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> [p.name for p in write_exports(folder, {"snps": snps})]
    ['association.tsv.gz', 'association.tsv.gz-meta.yaml', 'association_fuma.tsv.gz']
    >>> pd.read_csv(folder / "association.tsv.gz", sep="\\t")["base_pair_location"].tolist()
    [10, 30]
    """
    files = ExplanationFolder(folder)
    settings = settings or {}
    metadata = _check_metadata(metadata)
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ParameterError(f"top_k: expected a positive integer, found {top_k!r}")
    written = []
    files.path.mkdir(parents=True, exist_ok=True)
    snps = tables.get("snps")
    if snps is not None and {"snp", "chrom", "pos", "a1", "a2", *ASSOCIATION_COLUMNS} <= set(snps.columns):
        rows, left_out = summary_statistics(snps)
        data = _gzip_table(rows[list(SSF_COLUMNS)])
        atomic_write_bytes(files.gwas_ssf, data)
        meta = _ssf_metadata(snps, settings, left_out, files.gwas_ssf.name, hashlib.md5(data).hexdigest())
        atomic_write_text(files.gwas_ssf_meta, _yaml({**meta, **metadata["top"]}, metadata["sample"]))
        fuma = rows.assign(chromosome=rows["chromosome_name"])[
            ["snp", "chromosome", "base_pair_location", "effect_allele", "other_allele", "p_value"]
            + ["beta", "standard_error", "n"]
        ]
        atomic_write_bytes(files.fuma, _gzip_table(fuma.set_axis(list(FUMA_COLUMNS), axis=1)))
        written += [files.gwas_ssf, files.gwas_ssf_meta, files.fuma]
    nodes, connections = tables.get("nodes"), tables.get("connections")
    if nodes is not None and connections is not None:
        node_rows, matrix = brainnet_tables(nodes, connections, top_k=int(top_k))
        atomic_write_text(files.brainnet_nodes, _node_text(node_rows))
        atomic_write_text(files.brainnet_edges, "".join("\t".join(map(_number, row)) + "\n" for row in matrix))
        written += [files.brainnet_nodes, files.brainnet_edges]
    for name in set(files.EXPORTS) - {path.name for path in written}:  # never leave another table's copy
        (files.path / name).unlink(missing_ok=True)
    return written


# ---------------------------------------------------------------------------------------------- GWAS-SSF
def summary_statistics(snps: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The rows of the GWAS-SSF and FUMA files, sorted by chromosome and position, and why others were left out.

    Returns
    -------
    rows : DataFrame
        `SSF_COLUMNS` as text ready to write (numbers that read back as the table's float64 values; p as
        written by `_p_text`), plus ``snp`` and ``chromosome_name`` (1-22, X, Y, MT).
    left_out : dict of str -> int
        Rows left out, by reason.
    """
    chrom = snps["chrom"].astype(str)
    name = chrom.map({c: normalise_chrom(c) for c in chrom.unique()})  # a few names, many rows
    code = name.map(lambda c: int(c) if c.isdigit() and 1 <= int(c) <= 22 else _SSF_CODES.get(c, 0))
    pos = pd.to_numeric(snps["pos"], errors="coerce")
    a1, a2 = (snps[c].astype(str).str.upper() for c in ("a1", "a2"))
    values = {c: snps[c].to_numpy(dtype=float) for c in ASSOCIATION_COLUMNS}
    estimated = (
        np.isfinite(values["beta_assoc"])
        & (values["se_assoc"] > 0)
        & np.isfinite(values["p_assoc"])
        & (values["a1_freq"] >= 0)
        & (values["a1_freq"] <= 1)
    )
    checks = {
        "not estimated (monomorphic, or the fit did not converge)": estimated,
        "on a chromosome outside 1-22, X, Y, MT": (code > 0).to_numpy(),
        "at position 0 (unknown)": (pos > 0).to_numpy(),
        "an allele not made of A, C, G, T": (a1.str.fullmatch("[ACGT]+") & a2.str.fullmatch("[ACGT]+")).to_numpy(),
    }
    keep = np.logical_and.reduce(list(checks.values()))
    left_out, seen = {}, np.zeros(len(snps), dtype=bool)
    for reason, ok in checks.items():  # each row counted once, under the first check it failed
        failed = ~ok & ~seen
        if failed.any():
            left_out[reason] = int(failed.sum())
        seen |= ~ok
    display_name = name.map(lambda c: "X" if c == "XY" else c)
    rows = pd.DataFrame(
        {
            "chromosome": code.to_numpy(),
            "base_pair_location": pos.to_numpy(),
            "effect_allele": a1.to_numpy(),
            "other_allele": a2.to_numpy(),
            "beta": values["beta_assoc"],
            "standard_error": values["se_assoc"],
            "effect_allele_frequency": values["a1_freq"],
            "p_value": _p_text(values["p_assoc"], values["z_assoc"]),
            "n": values["n_assoc"],
            "snp": snps["snp"].astype(str).to_numpy(),
            "chromosome_name": display_name.to_numpy(),
        }
    )[keep]
    rows = rows.astype({"chromosome": np.int64, "base_pair_location": np.int64, "n": np.int64})
    rows = rows.sort_values(["chromosome", "base_pair_location"], kind="mergesort").reset_index(drop=True)
    # chr_pos_other_effect: REF_ALT where the counted allele is the ALT (VCF, PLINK 2)
    rows["variant_id"] = (
        rows["chromosome"].astype(str)
        + "_"
        + rows["base_pair_location"].astype(str)
        + "_"
        + rows["other_allele"]
        + "_"
        + rows["effect_allele"]
    )
    rows["rsid"] = rows["snp"].where(rows["snp"].str.fullmatch(r"rs[0-9]+"), MISSING)
    return rows, left_out


def _p_text(p, z) -> np.ndarray:
    """p as text that reads back as the same float64; a p that underflowed to 0 (|z| above about 37.5) is
    written from log10 p (mantissa and exponent), since GWAS-SSF allows no p of 0 without a stated precision."""
    out = np.array([repr(float(v)) for v in p], dtype=object)
    for i in np.flatnonzero(p == 0):
        log10 = (np.log(2) + stats.norm.logsf(abs(z[i]))) / np.log(10)
        exponent = int(np.floor(log10))
        out[i] = f"{10 ** (log10 - exponent):.6f}e{exponent}"
    return out


def _gzip_table(table: pd.DataFrame) -> bytes:
    """Tab-separated text, gzip-compressed with no time stamp or name in the header: the same table gives
    the same bytes, so the metadata's md5 names the content."""
    text = table.to_csv(sep="\t", index=False, lineterminator="\n", na_rep=MISSING)
    # level 1: 5x faster than 6 on 200,000 SNPs' statistics (0.5 s vs 2.5 s) for a file 8% larger
    return gzip.compress(text.encode("utf-8"), compresslevel=1, mtime=0)


def _ssf_metadata(snps, settings, left_out, data_file, md5) -> dict:
    # the table's attrs, set with it, win; the settings stand in for them in a table read back from CSV
    attrs = {**settings, **snps.attrs}
    n_cases, n_controls = attrs.get("n_cases"), attrs.get("n_controls")
    sample = {
        "sample_size": int(n_cases + n_controls) if n_cases is not None else int(snps["n_assoc"].max()),
        "case_control_study": True,
        **({"case_count": int(n_cases), "control_count": int(n_controls)} if n_cases is not None else {}),
        "sample_ancestry_category": [NOT_REPORTED],
    }
    names = attrs.get("label_names")
    trait = attrs.get("trait")
    description = (
        f"{trait + ': ' if trait else ''}{names[1]} (cases) vs {names[0]} (controls)" if names else NOT_REPORTED
    )
    notes = [
        "Per-SNP logistic regression of case status on the dosage of effect_allele (the allele the genotype "
        "files count: PLINK A1, VCF/PLINK 2 ALT, BGEN first allele) and the adjusted covariates; beta is the log "
        "odds ratio per copy of effect_allele, standard_error its Wald standard error, p_value the two-sided "
        "Wald p. n counts the subjects with a call, effect_allele_frequency is among them. variant_id is "
        "chromosome_position_other_effect (REF_ALT for VCF and PLINK 2 input).",
    ]
    if left_out:
        notes.append("Left out: " + "; ".join(f"{n} SNP(s) {why}" for why, n in left_out.items()) + ".")
    return {
        "date_metadata_last_modified": datetime.date.today(),
        "author_notes": " ".join(notes),
        "trait_description": [description],
        "genome_assembly": str(attrs.get("genome_build") or NOT_REPORTED),
        "coordinate_system": "1-based",  # PLINK, VCF and BGEN positions are all 1-based
        "genotyping_technology": [NOT_REPORTED],
        "samples": [sample],
        "data_file_name": data_file,
        "file_type": SSF_VERSION,
        "data_file_md5sum": md5,
        "analysis_software": f"migtrans {__version__} (explain.logistic_association: Newton-Raphson, Wald test)",
        "adjusted_covariates": [str(c) for c in attrs.get("association_covariates") or []],
        "is_harmonised": False,
        "is_sorted": True,
    }


def _check_metadata(metadata) -> dict:
    """``metadata`` split into top-level fields and sample-block fields, after checking its values are
    text, numbers, booleans or lists of text."""
    if metadata is None:
        return {"top": {}, "sample": {}}
    if not isinstance(metadata, dict):
        raise ParameterError(f"metadata: expected a dict of GWAS-SSF metadata fields, found {type(metadata).__name__}")
    for key, value in metadata.items():
        scalar = (str, bool, int, float, datetime.date)
        if not isinstance(key, str) or not (
            isinstance(value, scalar) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))
        ):
            raise ParameterError(
                f"metadata: expected text keys with text, number, boolean or list-of-text values, found {key!r}: "
                f"{value!r}"
            )
    top = {k: list(v) if isinstance(v, tuple) else v for k, v in metadata.items() if k not in _SAMPLE_KEYS}
    sample = {k: list(v) if isinstance(v, tuple) else v for k, v in metadata.items() if k in _SAMPLE_KEYS}
    return {"top": top, "sample": sample}


def _yaml(meta: dict, sample_update: dict) -> str:
    """The metadata as YAML: block style, every text value double-quoted (JSON escapes, valid YAML)."""
    meta = dict(meta)
    meta["samples"] = [{**s, **sample_update} for s in meta["samples"]]
    lines = [f"# {SSF_VERSION} metadata of {meta['data_file_name']}, written by migtrans"]
    for key, value in meta.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{key}:")
            for item in value:
                for j, (k, v) in enumerate(item.items()):
                    lines += _yaml_entry(k, v, ("  - " if j == 0 else "    "))
        else:
            lines += _yaml_entry(key, value, "")
    return "\n".join(lines) + "\n"


def _yaml_entry(key, value, indent) -> list[str]:
    if isinstance(value, list):
        pad = " " * len(indent)
        return [f"{indent}{key}:"] + [f"{pad}  - {_yaml_scalar(v)}" for v in value]
    return [f"{indent}{key}: {_yaml_scalar(value)}"]


def _yaml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, datetime.date):
        return value.isoformat()
    return json.dumps(str(value))


# ------------------------------------------------------------------------------------------------ BrainNet
def brainnet_tables(nodes: pd.DataFrame, connections: pd.DataFrame, *, top_k=TOP_K) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of the BrainNet ``.node`` file and the ``.edge`` matrix, nodes in the cohort's matrix order.

    The order is read from ``connections``: a connection lists ``node_i`` before ``node_j`` in the cohort's
    FNC matrix, so the node at matrix position p is ``node_j`` of exactly p connections (nodes.csv is ranked,
    not in matrix order). Colour: the 1-based index of the node's domain, in the order the domains first occur
    in that node order; size: the absolute ``contrast`` of the node (``attribution`` for tables from before
    the contrast column). Edge (i, j) = (j, i): the ``contrast`` of connection i-j when it is among the
    ``top_k`` best ranked, else 0.

    Returns
    -------
    node_rows : DataFrame with ``x``, ``y``, ``z``, ``colour``, ``size``, ``label`` (and ``node``, ``domain``)
    matrix : ndarray (K, K)
    """
    value = "contrast" if "contrast" in nodes.columns and "contrast" in connections.columns else "attribution"
    names = nodes["node"].astype(str)
    if names.duplicated().any():
        twice = names[names.duplicated()].iloc[0]
        raise ParameterError(f"nodes table: node names must be unique, found {twice!r} twice")
    later = connections["node_j"].astype(str).value_counts()
    position = names.map(later).fillna(0).to_numpy()
    order = np.lexsort((np.arange(len(names)), position))  # ties (an incomplete table) keep the table's order
    table = nodes.iloc[order].reset_index(drop=True)
    domains = list(dict.fromkeys(table["domain"].astype(str)))
    node_rows = pd.DataFrame(
        {
            "x": table["x"].to_numpy(dtype=float),
            "y": table["y"].to_numpy(dtype=float),
            "z": table["z"].to_numpy(dtype=float),
            "colour": [domains.index(d) + 1 for d in table["domain"].astype(str)],
            "size": np.abs(np.nan_to_num(table[value].to_numpy(dtype=float))),
            "label": [_label(n) for n in table["node"].astype(str)],
            "node": table["node"].astype(str).to_numpy(),
            "domain": table["domain"].astype(str).to_numpy(),
        }
    )
    index = {n: i for i, n in enumerate(node_rows["node"])}
    unknown = sorted((set(connections["node_i"].astype(str)) | set(connections["node_j"].astype(str))) - set(index))
    if unknown:
        raise ParameterError(f"connections table: expected nodes of the nodes table, found {unknown[:5]}")
    keys = ["rank"] if "rank" in connections.columns else [value]
    top = connections.sort_values(keys, ascending="rank" in connections.columns, kind="mergesort").head(top_k)
    top = top[np.isfinite(top[value].to_numpy(dtype=float))]
    matrix = np.zeros((len(node_rows), len(node_rows)))
    i = top["node_i"].astype(str).map(index).to_numpy()
    j = top["node_j"].astype(str).map(index).to_numpy()
    matrix[i, j] = matrix[j, i] = top[value].to_numpy(dtype=float)
    return node_rows, matrix


def _label(name: str) -> str:
    """A BrainNet label: one whitespace-free word ("-" draws none)."""
    return re.sub(r"\s+", "_", name.strip()) or "-"


def _number(value) -> str:
    """A float as the shortest text that reads back as the same float64 (0 as "0")."""
    return "0" if value == 0 else repr(float(value))


def _node_text(rows: pd.DataFrame) -> str:
    buffer = io.StringIO()
    for row in rows.itertuples(index=False):
        fields = [_number(row.x), _number(row.y), _number(row.z), str(row.colour), _number(row.size), row.label]
        buffer.write("\t".join(fields) + "\n")
    return buffer.getvalue()
