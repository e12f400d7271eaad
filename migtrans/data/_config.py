"""Read a cohort TOML file into a validated `CohortSpec` (paths resolved relative to the file)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import CohortError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# Every key a cohort file may hold; anything else is a typo we report rather than ignore.
_ALLOWED = {
    "cohort": {"name", "strict"},
    "phenotypes": {"path", "id_column", "label_column", "positive_label", "covariates", "site_column"},
    "genotypes": {"bfile", "pfile", "vcf", "bgen", "sample", "field", "build", "pcs"},
    "qc": None,  # the keys of QCThresholds, validated by it
    "fnc": {"path", "subjects", "template", "nodes", "variable", "session"},
    "smri": {"template", "mask", "mask_threshold", "tiv_xml", "tiv_column", "space"},
}
_REQUIRED = {
    "phenotypes": {"path", "id_column", "label_column", "positive_label"},
    "fnc": {"nodes"},
    "smri": {"template"},
}
_BUILDS = ("GRCh37", "GRCh38")
# [genotypes] names its data with exactly one of these keys: the format, and the files behind the value
_GENOTYPE_SOURCES = {
    "bfile": "a PLINK 1 prefix (.bed/.bim/.fam)",
    "pfile": "a PLINK 2 prefix (.pgen/.pvar/.psam)",
    "vcf": "a .vcf, .vcf.gz or .bcf file",
    "bgen": "a .bgen file, with 'sample'",
}
_PLINK_EXTENSIONS = {"bfile": (".bed", ".bim", ".fam"), "pfile": (".pgen", ".pvar", ".psam")}
_VCF_FIELDS = ("GT", "DS")


@dataclass(frozen=True)
class PhenotypeSpec:
    path: Path
    id_column: str
    label_column: str
    positive_label: str
    covariates: tuple[str, ...] = ()
    site_column: str | None = None


@dataclass(frozen=True)
class GenotypeSpec:
    path: Path  # a PLINK prefix (format "bfile" or "pfile"), else the .vcf/.vcf.gz/.bcf or .bgen file
    format: str = "bfile"  # the [genotypes] key that named the data: bfile, pfile, vcf or bgen
    sample: Path | None = None  # the .sample file of a BGEN (its ID_2 column holds the subject ids)
    field: str = "GT"  # what a VCF is read from: GT hard calls, or DS dosages
    build: str = "GRCh37"
    pcs: int = 10  # genetic principal components computed at load (0: none)

    def files(self) -> list[Path]:
        """Every file the genotypes are read from."""
        if self.format in _PLINK_EXTENSIONS:
            # appended, not swapped in: a prefix may hold dots of its own ("cohort.v2")
            return [self.path.with_name(self.path.name + ext) for ext in _PLINK_EXTENSIONS[self.format]]
        return [self.path] + ([self.sample] if self.sample else [])


@dataclass(frozen=True)
class FncSpec:
    nodes: Path
    path: Path | None = None
    subjects: Path | None = None
    template: str | None = None  # absolute path template containing "{subject_id}"
    # a stacked .mat (GIFT's *_postprocess_results.mat): which variable (None: fnc_corrs_all, fnc or the only
    # one) and which session of a subjects x sessions x K x K array (1-based, or "mean" of the Fisher z values)
    variable: str | None = None
    session: int | str = 1


@dataclass(frozen=True)
class SmriSpec:
    template: str  # absolute path template containing "{subject_id}"
    mask: Path | None = None  # None means "auto"
    mask_threshold: float = 0.2
    tiv_xml: str | None = None  # path template of CAT12 report XMLs (``<vol_TIV>``)
    tiv_column: str | None = None  # or a column of the phenotype table
    space: str | None = None  # the template space of the maps, as the user names it (recorded, not checked)


@dataclass(frozen=True)
class CohortSpec:
    """Everything a cohort TOML file says, validated and with absolute paths."""

    toml_path: Path
    phenotypes: PhenotypeSpec
    genotypes: GenotypeSpec | None = None
    fnc: FncSpec | None = None
    smri: SmriSpec | None = None
    name: str = ""
    strict: bool = False
    modalities: tuple[str, ...] = field(default=())
    qc: object = None  # migtrans.genetics.QCThresholds, or None when QC is switched off (qc.enabled = false)

    def inputs(self) -> list[tuple[str, Path]]:
        """(description, path) of every place the cohort is read from: its folder, its TOML, every file it
        names, and the fixed folder part of each path template (outputs must stay apart from all of them)."""
        out = [
            ("cohort folder", self.toml_path.parent),
            ("cohort file", self.toml_path),
            ("phenotype file", self.phenotypes.path),
        ]
        if self.genotypes:
            out += [("genotype file", path) for path in self.genotypes.files()]
        if self.fnc:
            out.append(("FNC node table", self.fnc.nodes))
            if self.fnc.path:
                out.append(("FNC file", self.fnc.path))
            if self.fnc.subjects:
                out.append(("FNC subject list", self.fnc.subjects))
            if self.fnc.template:
                out.append(("FNC folder", template_folder(self.fnc.template)))
        if self.smri:
            out.append(("sMRI folder", template_folder(self.smri.template)))
            if self.smri.mask:
                out.append(("sMRI mask", self.smri.mask))
        return out


def template_folder(template: str) -> Path:
    """The folder of a path template above its first ``{subject_id}`` (where every subject's file lies)."""
    import string

    literal = ""  # the text before the first field, unescaped ("{{" read as "{")
    for text, name, _, _ in string.Formatter().parse(template):
        literal += text
        if name is not None:
            break
    return Path(literal) if literal.endswith(os.sep) else Path(literal).parent


def _check_path_text(value: str, key: str, toml_path) -> None:
    if "\x00" in value:
        raise CohortError(f"key '{key}' holds a NUL character", file=toml_path)
    long = [part for part in Path(value).parts if len(part.encode("utf-8", "surrogateescape")) > 255]
    if long:
        raise CohortError(f"key '{key}': the name {long[0][:40]!r}... is longer than 255 bytes", file=toml_path)


def check_template(template: str, *, key: str, toml_path) -> None:
    """A path template may hold ``{subject_id}`` (at least once) and literal braces written ``{{``/``}}``."""
    import string

    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise CohortError(
            f"key '{key}': malformed template {template!r} ({exc}; write {{{{ and }}}} for literal braces)",
            file=toml_path,
        ) from None
    for name, spec, conv in fields:
        if name != "subject_id" or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise CohortError(
                f"key '{key}': unknown placeholder {shown!r} in {template!r}; the only one "
                "allowed is {subject_id} (write {{ and }} for literal braces)",
                file=toml_path,
            )
    if not fields:
        raise CohortError(f"key '{key}' must contain '{{subject_id}}', found {template!r}", file=toml_path)


def _expect(value, kind, toml_path, key, what):
    if not isinstance(value, kind):
        raise CohortError(f"key '{key}' must be {what}, found {value!r}", file=toml_path)
    return value


def read_cohort_spec(toml_path) -> CohortSpec:
    """Parse and validate a cohort TOML file.

    Parameters
    ----------
    toml_path : str or path-like
        The cohort description (DESIGN §3). Relative paths inside it are taken
        relative to its folder.

    Returns
    -------
    CohortSpec
    """
    toml_path = Path(toml_path).expanduser().resolve()
    if not toml_path.is_file():
        raise CohortError("cohort file not found", file=toml_path)
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CohortError(f"not valid TOML ({exc})", file=toml_path) from None

    unknown = sorted(set(raw) - set(_ALLOWED))
    if unknown:
        raise CohortError(
            f"unknown section [{unknown[0]}]; allowed sections: {', '.join(sorted(_ALLOWED))}",
            file=toml_path,
        )
    for section, table in raw.items():
        if not isinstance(table, dict):
            raise CohortError(f"'{section}' must be a [section] table", file=toml_path)
        bad = [] if _ALLOWED[section] is None else sorted(set(table) - _ALLOWED[section])
        if bad:
            raise CohortError(
                f"unknown key '{section}.{bad[0]}'; allowed keys in [{section}]: "
                f"{', '.join(sorted(_ALLOWED[section]))}",
                file=toml_path,
            )
        missing = sorted(_REQUIRED.get(section, set()) - set(table))
        if missing:
            raise CohortError(f"missing key '{section}.{missing[0]}'", file=toml_path)
    if "phenotypes" not in raw:
        raise CohortError("missing section [phenotypes]", file=toml_path)
    if not {"genotypes", "fnc", "smri"} & set(raw):
        raise CohortError("no modality: give at least one of [genotypes], [fnc], [smri]", file=toml_path)

    base = toml_path.parent

    def path_of(section, key, table):
        value = _expect(table[key], str, toml_path, f"{section}.{key}", "a path string")
        _check_path_text(value, f"{section}.{key}", toml_path)
        return (base / Path(value).expanduser()).resolve()

    def template_of(section, key, table):
        value = _expect(table[key], str, toml_path, f"{section}.{key}", "a path template string")
        _check_path_text(value, f"{section}.{key}", toml_path)
        check_template(value, key=f"{section}.{key}", toml_path=toml_path)
        value = str(Path(value).expanduser())
        if Path(value).is_absolute():
            return value
        # only the TOML value is a template: braces in the cohort folder's own path are literal
        return str(base).replace("{", "{{").replace("}", "}}") + os.sep + value

    p = raw["phenotypes"]
    covariates = p.get("covariates", [])
    if not (isinstance(covariates, list) and all(isinstance(c, str) for c in covariates)):
        raise CohortError(
            f"key 'phenotypes.covariates' must be a list of column names, found {covariates!r}",
            file=toml_path,
        )
    for key in ("id_column", "label_column", "site_column"):
        if key in p:
            _expect(p[key], str, toml_path, f"phenotypes.{key}", "a column name")
    if p.get("site_column") in (p["id_column"], p["label_column"]):
        raise CohortError(
            f"key 'phenotypes.site_column' names the {'id' if p['site_column'] == p['id_column'] else 'label'} "
            f"column {p['site_column']!r}; the site must be a column of its own",
            file=toml_path,
        )
    for key in ("id_column", "label_column"):
        if p[key] in covariates:
            raise CohortError(
                f"key 'phenotypes.covariates' lists the {key.split('_')[0]} column {p[key]!r}; "
                "a covariate must be another column",
                file=toml_path,
            )
    if len(set(covariates)) != len(covariates):
        raise CohortError(f"key 'phenotypes.covariates' lists a column twice: {covariates!r}", file=toml_path)
    positive = p["positive_label"]
    if isinstance(positive, bool) or not isinstance(positive, (str, int)):
        raise CohortError(
            f"key 'phenotypes.positive_label' must be a string or integer, found {positive!r}",
            file=toml_path,
        )
    phenotypes = PhenotypeSpec(
        path=path_of("phenotypes", "path", p),
        id_column=p["id_column"],
        label_column=p["label_column"],
        positive_label=str(positive),
        covariates=tuple(covariates),
        site_column=p.get("site_column"),
    )

    genotypes = None
    if "genotypes" in raw:
        g = raw["genotypes"]
        named = [key for key in _GENOTYPE_SOURCES if key in g]
        if len(named) != 1:
            raise CohortError(
                "[genotypes] needs exactly one of "
                + ", ".join(f"'{key}' ({what})" for key, what in _GENOTYPE_SOURCES.items())
                + f"; found {' and '.join(repr(key) for key in named) or 'none'}",
                file=toml_path,
            )
        source = named[0]
        path = path_of("genotypes", source, g)
        for fmt, extensions in _PLINK_EXTENSIONS.items():
            if path.suffix in extensions and source != fmt:
                raise CohortError(
                    f"key 'genotypes.{source}' names a {path.suffix} file; write it as 'genotypes.{fmt}'",
                    file=toml_path,
                )
        if source in _PLINK_EXTENSIONS and path.suffix in _PLINK_EXTENSIONS[source]:
            path = path.with_suffix("")
        if source == "bgen" and "sample" not in g:
            raise CohortError(
                "key 'genotypes.bgen' needs 'genotypes.sample' (the .sample file whose ID_2 column holds the "
                "subject ids)",
                file=toml_path,
            )
        for key, owner, why in (
            ("sample", "bgen", "the subject ids of a .bgen"),
            ("field", "vcf", "PLINK 2 and BGEN files are read as stored: dosages where they hold them"),
        ):
            if key in g and source != owner:
                raise CohortError(
                    f"key 'genotypes.{key}' goes with 'genotypes.{owner}' only ({why}), found it with "
                    f"'genotypes.{source}'",
                    file=toml_path,
                )
        field = g.get("field", "GT")
        if field not in _VCF_FIELDS:
            raise CohortError(
                f"key 'genotypes.field' must be one of {', '.join(_VCF_FIELDS)}, found {field!r}", file=toml_path
            )
        build = g.get("build", "GRCh37")
        if build not in _BUILDS:
            raise CohortError(
                f"key 'genotypes.build' must be one of {', '.join(_BUILDS)}, found {build!r}",
                file=toml_path,
            )
        pcs = g.get("pcs", 10)
        if isinstance(pcs, bool) or not isinstance(pcs, int) or not 0 <= pcs <= 50:
            raise CohortError(f"key 'genotypes.pcs' must be an integer in [0, 50], found {pcs!r}", file=toml_path)
        genotypes = GenotypeSpec(
            path=path,
            format=source,
            sample=path_of("genotypes", "sample", g) if source == "bgen" else None,
            field=field,
            build=build,
            pcs=pcs,
        )

    fnc = None
    if "fnc" in raw:
        f = raw["fnc"]
        has_path, has_template = "path" in f, "template" in f
        if has_path == has_template:
            raise CohortError(
                "[fnc] needs exactly one of 'path' (stacked file + 'subjects') or 'template' (one file per subject)",
                file=toml_path,
            )
        if has_path and "subjects" not in f and not str(f["path"]).endswith(".npz"):
            raise CohortError(
                "[fnc] 'path' needs 'subjects' (a text file with the subject id of each row)",
                file=toml_path,
            )
        gift_keys = [key for key in ("variable", "session") if key in f]
        if gift_keys and not (has_path and str(f["path"]).lower().endswith(".mat")):
            raise CohortError(
                f"key 'fnc.{gift_keys[0]}' applies to a stacked .mat file only ([fnc] path ending in .mat)",
                file=toml_path,
            )
        variable = f.get("variable")
        if variable is not None and not (isinstance(variable, str) and variable):
            raise CohortError(f"key 'fnc.variable' must be a variable name, found {variable!r}", file=toml_path)
        session = f.get("session", 1)
        if session != "mean" and (isinstance(session, bool) or not isinstance(session, int) or session < 1):
            raise CohortError(
                f"key 'fnc.session' must be a session number (1, 2, ...) or \"mean\", found {session!r}",
                file=toml_path,
            )
        fnc = FncSpec(
            nodes=path_of("fnc", "nodes", f),
            path=path_of("fnc", "path", f) if has_path else None,
            subjects=path_of("fnc", "subjects", f) if "subjects" in f else None,
            template=template_of("fnc", "template", f) if has_template else None,
            variable=variable,
            session=session,
        )

    smri = None
    if "smri" in raw:
        s = raw["smri"]
        mask = s.get("mask", "auto")
        _expect(mask, str, toml_path, "smri.mask", "'auto' or a NIfTI path")
        threshold = s.get("mask_threshold", 0.2)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1e30:
            raise CohortError(
                f"key 'smri.mask_threshold' must be a finite number >= 0, found {threshold!r}", file=toml_path
            )
        if "tiv_xml" in s and "tiv_column" in s:
            raise CohortError("[smri] takes one TIV source: tiv_xml or tiv_column, not both", file=toml_path)
        for key in ("tiv_column", "space"):
            if key in s:
                _expect(s[key], str, toml_path, f"smri.{key}", "a string")
        smri = SmriSpec(
            template=template_of("smri", "template", s),
            mask=None if mask == "auto" else path_of("smri", "mask", s),
            mask_threshold=float(threshold),
            tiv_xml=template_of("smri", "tiv_xml", s) if "tiv_xml" in s else None,
            tiv_column=s.get("tiv_column"),
            space=s.get("space"),
        )

    c = raw.get("cohort", {})
    strict = c.get("strict", False)
    _expect(strict, bool, toml_path, "cohort.strict", "true or false")
    name = c.get("name", toml_path.parent.name)
    _expect(name, str, toml_path, "cohort.name", "a string")
    modalities = tuple(m for m, spec in (("snp", genotypes), ("fnc", fnc), ("smri", smri)) if spec)
    qc = _qc_thresholds(raw.get("qc", {}), toml_path) if genotypes else None
    return CohortSpec(
        toml_path=toml_path,
        phenotypes=phenotypes,
        genotypes=genotypes,
        fnc=fnc,
        smri=smri,
        name=name,
        strict=strict,
        modalities=modalities,
        qc=qc,
    )


def _qc_thresholds(table: dict, toml_path):
    """The genotype QC thresholds of the ``[qc]`` table (PLINK's usual defaults for what it leaves out), or
    None with ``enabled = false``."""
    from ..genetics import QCThresholds

    table = dict(table)
    enabled = table.pop("enabled", True)
    _expect(enabled, bool, toml_path, "qc.enabled", "true or false")
    return QCThresholds.from_mapping(table, file=toml_path) if enabled else None
