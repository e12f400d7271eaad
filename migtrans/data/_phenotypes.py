"""Read and validate the phenotype table: ids, binary labels, covariates and site."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ..validation import check_subject_ids, real_values
from ._config import PhenotypeSpec
from ._files import check_file

# Spellings of "no value" in lab spreadsheets (compared case-insensitively).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "."})


def is_missing(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().isin(MISSING)


def read_table(path) -> pd.DataFrame:
    """Read a TSV/CSV by extension (``.csv`` is comma-separated, anything else tab-separated) as strings.

    Blank lines are skipped; the returned frame's ``attrs["lines"]`` holds each row's line number in the
    file, so errors can point at it. Trailing empty fields (a delimiter at the end of a line) are dropped;
    any other row whose field count differs from the header's is an error naming its line.
    """
    import csv

    check_file(path)
    sep = "," if str(path).lower().endswith(".csv") else "\t"
    # CSV quotes as CSV does; in a TSV a quote is an ordinary character (a stray one must not swallow lines)
    quoting = csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=sep, quoting=quoting)
            rows, lines, last = [], [], 0
            for fields in reader:
                start, last = last + 1, reader.line_num
                if last > start:
                    raise CohortError(
                        f"line {start}: a quoted field runs over {last - start + 1} lines (a stray quote?)", file=path
                    )
                if not any(f.strip() for f in fields):
                    continue
                rows.append(fields)
                lines.append(start)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise CohortError(f"cannot be read as a table ({exc})", file=path) from None
    if not rows:
        raise CohortError("file has no header line", file=path)
    header = _trim(rows[0])
    names = [c.strip() for c in header]
    if "" in names:
        raise CohortError(f"column {names.index('') + 1} of the header has no name", file=path)
    twice = [c for i, c in enumerate(names) if c in names[:i]]
    if twice:
        raise CohortError(f"the header names column {twice[0]!r} twice", file=path)
    body = []
    for fields, line in zip(rows[1:], lines[1:]):
        fields = _trim(fields, len(names))
        if len(fields) != len(names):
            hint = " (a tab or comma inside a value?)" if len(fields) > len(names) else ""
            raise CohortError(f"line {line} has {len(fields)} fields, the header {len(names)}{hint}", file=path)
        body.append(fields)
    table = pd.DataFrame(body, columns=names, dtype=str) if body else pd.DataFrame(columns=names, dtype=str)
    table.attrs["lines"] = lines[1:]
    return table


def _trim(fields, keep=0):
    """Drop trailing empty fields beyond the first ``keep``."""
    fields = list(fields)
    while len(fields) > keep and not fields[-1].strip():
        fields.pop()
    return fields


def read_phenotypes(spec: PhenotypeSpec, *, labels_required=True):
    """Return ``(table indexed by subject id, labels as int8 Series, label names)``.

    Labels are 1 for ``positive_label`` and 0 for the single other value found.
    Numeric-looking covariates become floats; other covariates stay strings. With ``labels_required=False``
    (a cohort to predict) a missing label is -1 and one class, or none, is enough.
    """
    table = read_table(spec.path)
    path = spec.path
    needed = [spec.id_column, spec.label_column, *spec.covariates]
    if spec.site_column:
        needed.append(spec.site_column)
    for column in needed:
        if column not in table.columns:
            raise CohortError(f"column not found; columns are: {', '.join(table.columns)}", file=path, column=column)
    if table.empty:
        raise CohortError("the table has a header but no subjects", file=path)

    ids = table[spec.id_column].str.strip()
    empty = ids == ""
    if empty.any():
        line = table.attrs["lines"][int(np.flatnonzero(empty)[0])]
        raise CohortError(f"empty subject id on line {line}", file=path, column=spec.id_column)
    check_subject_ids(ids, file=path, column=spec.id_column)
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        first = table.attrs["lines"][int(np.flatnonzero(ids == duplicated.iloc[0])[0])]
        again = table.attrs["lines"][int(np.flatnonzero(ids.duplicated())[0])]
        raise CohortError(f"duplicate subject id (lines {first} and {again})", file=path, subject=duplicated.iloc[0])
    table = table.set_axis(pd.Index(ids, name="subject_id"), axis=0)

    raw_labels = table[spec.label_column].str.strip()
    unknown = is_missing(raw_labels)
    missing = raw_labels[unknown]
    if len(missing) and labels_required:
        raise CohortError("missing label", file=path, subject=missing.index[0], column=spec.label_column)
    # The "other" label is the commonest non-positive value; any rarer one is the stray.
    counts = raw_labels[(raw_labels != spec.positive_label) & ~unknown].value_counts()
    others = sorted(counts.index, key=lambda v: (-counts[v], v))
    if not labels_required and not others:
        others = [""]
    if labels_required and (spec.positive_label not in set(raw_labels) or not others):
        found = ", ".join(repr(v) for v in sorted(set(raw_labels)))
        raise CohortError(
            f"needs two classes (positive label {spec.positive_label!r} and one other), found only {found}",
            file=path,
            column=spec.label_column,
        )
    if len(others) > 1:
        stray = raw_labels[raw_labels == others[1]].index[0]
        raise CohortError(
            f"label {others[1]!r} is neither the positive label {spec.positive_label!r} nor the "
            f"other label {others[0]!r}",
            file=path,
            subject=stray,
            column=spec.label_column,
        )
    labels = (raw_labels == spec.positive_label).astype(np.int8)
    labels[unknown.to_numpy()] = -1
    label_names = (others[0], spec.positive_label)

    columns = list(dict.fromkeys([*spec.covariates, *([spec.site_column] if spec.site_column else [])]))
    out = pd.DataFrame(index=table.index)
    for column in columns:
        values = table[column].str.strip()
        bad = values[is_missing(values)]
        if len(bad):
            raise CohortError(f"missing value {bad.iloc[0]!r}", file=path, subject=bad.index[0], column=column)
        out[column] = values if column == spec.site_column else _covariate(values, path, column)
    return out, labels, label_names


def _covariate(values: pd.Series, path, column):
    """Numbers when the column reads as numbers, else categories; a column that is numeric but for a few
    values is a typo, not a category (each value would become its own level)."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return pd.Series(
            real_values(
                numeric.to_numpy(), what="covariate values", file=path, column=column, subjects=list(values.index)
            ),
            index=values.index,
        )
    if numeric.notna().mean() >= 0.5 and values.nunique() > 10:
        odd = values[numeric.isna()]
        raise CohortError(
            f"value {odd.iloc[0]!r} is not a number, while {int(numeric.notna().sum())} of "
            f"{len(values)} values are (a typo, or a missing-value spelling?)",
            file=path,
            subject=odd.index[0],
            column=column,
        )
    return values


def covariate_matrix(covariates: pd.DataFrame | None, n: int) -> tuple[np.ndarray, list[str]]:
    """Intercept + numeric covariates (as is) + categorical covariates dummy-coded (first level dropped)."""
    columns, names = [np.ones(n)], ["intercept"]
    if covariates is not None:
        for name in covariates.columns:
            values = covariates[name]
            if pd.api.types.is_numeric_dtype(values):
                columns.append(values.to_numpy(float))
                names.append(name)
            else:
                levels = sorted(values.astype(str).unique())
                for level in levels[1:]:
                    columns.append((values.astype(str) == level).to_numpy(float))
                    names.append(f"{name}[{level}]")
    return np.column_stack(columns), names


def check_covariates(
    covariates: pd.DataFrame, site, labels, label_names, *, file=None, site_column="site"
) -> list[str]:
    """Refuse covariates the association cannot use, naming the column (and level); return warnings.

    Refused: a constant column (it adjusts for nothing), a column that is a combination of the others
    (the design is singular), a category with one subject, or with subjects of one class only (it
    separates cases from controls, and the association's fit diverges). ``site`` (the site column, or
    None) stratifies permutations and folds: a site with one subject is refused, a one-class site that is
    not also a covariate is only a warning.

    Parameters
    ----------
    covariates : DataFrame
        The covariate columns listed in the cohort file, one row per subject.
    site : array of str or None
    labels : array of 0/1
    label_names : (negative, positive)
    file : path
        The phenotype file, named in errors.
    """
    labels = np.asarray(labels)
    for column in covariates.columns:
        values = covariates[column]
        if values.nunique() < 2:
            raise CohortError(
                f"covariate has the same value ({values.iloc[0]!r}) for every subject; it adjusts "
                "for nothing: remove it from phenotypes.covariates",
                file=file,
                column=column,
            )
        if not pd.api.types.is_numeric_dtype(values):
            _check_levels(values, labels, label_names, file=file, column=column, refuse_one_class=True)
    design, names = covariate_matrix(covariates, len(covariates))
    # on standardised columns, so that a covariate in large units (1e38) is not mistaken for a constant
    scale = np.abs(design).max(axis=0)
    design = design / np.where(scale > 0, scale, 1)
    rank = 0
    for j in range(design.shape[1]):
        grown = np.linalg.matrix_rank(design[:, : j + 1])
        if grown == rank:
            raise CohortError(
                f"covariate {names[j]!r} is a linear combination of the other covariates (and the "
                "intercept); remove one of them",
                file=file,
                column=names[j].split("[")[0],
            )
        rank = grown
    if site is None:
        return []
    site = pd.Series(np.asarray(site), index=covariates.index)
    return _check_levels(site, labels, label_names, file=file, column=site_column, refuse_one_class=False)


def _check_levels(values: pd.Series, labels, label_names, *, file, column, refuse_one_class):
    notes = []
    for level, count in values.value_counts().sort_index().items():
        members = (values == level).to_numpy()
        if count == 1:
            raise CohortError(
                f"category {level!r} has a single subject, which no permutation or adjustment can "
                "use; merge it with another",
                file=file,
                subject=values.index[members][0],
                column=column,
            )
        n_pos = int(labels[members].sum())
        if n_pos in (0, count):
            only = label_names[1] if n_pos else label_names[0]
            message = f"category {level!r} has only {only!r} subjects ({count}), so it is confounded with the label"
            if refuse_one_class:
                raise CohortError(
                    message + ": adjusting for it separates cases from controls; merge or drop it",
                    file=file,
                    column=column,
                )
            notes.append(f"{file}: column {column!r}: {message}; permutations within it cannot move its labels")
    return notes
