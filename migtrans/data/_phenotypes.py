"""Read and validate the phenotype table: ids, binary labels, covariates and site."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._errors import CohortError
from ._config import PhenotypeSpec
from ._files import check_file


def read_table(path, **kwargs) -> pd.DataFrame:
    """Read a TSV/CSV by extension (``.csv`` is comma-separated, anything else tab-separated)."""
    check_file(path)
    sep = "," if str(path).lower().endswith(".csv") else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CohortError(f"cannot be read as a table ({exc})", file=path) from None
    table.columns = [c.strip() for c in table.columns]
    return table


def read_phenotypes(spec: PhenotypeSpec):
    """Return ``(table indexed by subject id, labels as int8 Series, label names)``.

    Labels are 1 for ``positive_label`` and 0 for the single other value found.
    Numeric-looking covariates become floats; other covariates stay strings.
    """
    table = read_table(spec.path)
    path = spec.path
    needed = [spec.id_column, spec.label_column, *spec.covariates]
    if spec.site_column:
        needed.append(spec.site_column)
    for column in needed:
        if column not in table.columns:
            raise CohortError(
                f"column not found; columns are: {', '.join(table.columns)}", file=path, column=column
            )
    if table.empty:
        raise CohortError("the table has a header but no subjects", file=path)

    ids = table[spec.id_column].str.strip()
    empty = ids == ""
    if empty.any():
        row = int(np.flatnonzero(empty)[0]) + 2
        raise CohortError(f"empty subject id on line {row}", file=path, column=spec.id_column)
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise CohortError("duplicate subject id", file=path, subject=duplicated.iloc[0])
    table = table.set_axis(pd.Index(ids, name="subject_id"), axis=0)

    raw_labels = table[spec.label_column].str.strip()
    missing = raw_labels[raw_labels.isin(["", "NA", "NaN", "nan"])]
    if len(missing):
        raise CohortError("missing label", file=path, subject=missing.index[0], column=spec.label_column)
    # The "other" label is the commonest non-positive value; any rarer one is the stray.
    counts = raw_labels[raw_labels != spec.positive_label].value_counts()
    others = sorted(counts.index, key=lambda v: (-counts[v], v))
    if spec.positive_label not in set(raw_labels) or not others:
        found = ", ".join(repr(v) for v in sorted(set(raw_labels)))
        raise CohortError(
            f"needs two classes (positive label {spec.positive_label!r} and one other), "
            f"found only {found}",
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
    label_names = (others[0], spec.positive_label)

    columns = list(dict.fromkeys([*spec.covariates, *([spec.site_column] if spec.site_column else [])]))
    out = pd.DataFrame(index=table.index)
    for column in columns:
        values = table[column].str.strip()
        bad = values[values.isin(["", "NA", "NaN", "nan"])]
        if len(bad):
            raise CohortError("missing value", file=path, subject=bad.index[0], column=column)
        numeric = pd.to_numeric(values, errors="coerce")
        out[column] = numeric.astype(float) if (numeric.notna().all() and column != spec.site_column) else values
    return out, labels, label_names
