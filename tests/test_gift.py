"""GIFT / NeuroMark FNC output (``*_postprocess_results.mat``, ``fnc_corrs_all``: subjects x sessions x
components x components, Fisher z) read from MATLAB v5 and v7.3 (HDF5) files, and the one-line errors of a
file that does not fit. Sizes are distinct (7 subjects, 2 sessions, 5 components) so a misread axis fails."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from migtrans import load_cohort
from migtrans.cli import main
from migtrans.data._fnc import _read_mat

N_SUBJECTS, N_SESSIONS, N_COMPONENTS = 7, 2, 5
FORMATS = ("v5", "v73")
_PAIRS = N_COMPONENTS * (N_COMPONENTS - 1) // 2


def savemat_v73(path, variables, classes=None):
    """Write ``variables`` as MATLAB v7.3 does: HDF5 after a 512-byte text header (the user block), each
    array stored column-major, i.e. with its axes reversed as h5py sees them, tagged with MATLAB_class."""
    classes = classes or {}
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            value = np.asarray(value)
            dataset = f.create_dataset(name, data=value.transpose(tuple(range(value.ndim))[::-1]))
            dataset.attrs["MATLAB_class"] = np.bytes_(classes.get(name, "double"))
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM")


def save(path, variables, fmt):
    if fmt == "v5":
        scipy.io.savemat(path, variables)
    else:
        savemat_v73(path, variables)


def gift_fnc(rng):
    """(7, 2, 5, 5) symmetric Fisher z matrices, diagonal 0, each offset by its subject and session so that
    every matrix differs from every other one."""
    a = rng.normal(0, 0.3, size=(N_SUBJECTS, N_SESSIONS, N_COMPONENTS, N_COMPONENTS))
    fnc = (a + a.transpose(0, 1, 3, 2)) / 2
    fnc += 10 * np.arange(N_SUBJECTS)[:, None, None, None] + np.arange(N_SESSIONS)[None, :, None, None]
    fnc[..., np.arange(N_COMPONENTS), np.arange(N_COMPONENTS)] = 0
    return fnc


def write_gift_cohort(folder, rng, fmt="v5", fnc=None, extra=None, fnc_keys=""):
    """An FNC-only cohort whose FNC is a GIFT results file; GIFT's subject order differs from the phenotype
    table's. Return (toml, ids in phenotype order, fnc as written, GIFT's row of each phenotype id)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"s{i:02d}" for i in range(N_SUBJECTS)]
    labels = ["SZ", "HC", "HC", "SZ", "SZ", "HC", "HC"]
    (folder / "phenotypes.tsv").write_text(
        "subject_id\tdiagnosis\n" + "".join(f"{s}\t{d}\n" for s, d in zip(ids, labels))
    )
    gift_order = [ids[i] for i in (3, 0, 6, 1, 5, 2, 4)]
    (folder / "gift_subjects.txt").write_text("\n".join(gift_order) + "\n")
    nodes = ["name\tdomain\tx\ty\tz"] + [f"ic{k}\t{'SCAUD'[k]}\t{k}\t{-k}\t{2 * k}" for k in range(N_COMPONENTS)]
    (folder / "nodes.tsv").write_text("\n".join(nodes) + "\n")
    fnc = gift_fnc(rng) if fnc is None else fnc
    save(folder / "gift_postprocess_results.mat", {"fnc_corrs_all": fnc, **(extra or {})}, fmt)
    (folder / "cohort.toml").write_text(
        '[phenotypes]\npath = "phenotypes.tsv"\nid_column = "subject_id"\nlabel_column = "diagnosis"\n'
        'positive_label = "SZ"\n\n[fnc]\npath = "gift_postprocess_results.mat"\nsubjects = "gift_subjects.txt"\n'
        f'nodes = "nodes.tsv"\n{fnc_keys}'
    )
    rows = np.array([gift_order.index(s) for s in ids])
    return folder / "cohort.toml", ids, fnc, rows


def run_info(capsys, toml):
    status = main(["info", str(toml)])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *culprits):
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("session", [None, 1, 2, "mean"])
def test_sessions_of_a_4d_file(tmp_path, rng, fmt, session):
    keys = "" if session is None else f"session = {session!r}\n".replace("'", '"')
    toml, ids, fnc, rows = write_gift_cohort(tmp_path / "c", rng, fmt, fnc_keys=keys)
    cohort = load_cohort(toml)
    assert list(cohort.subject_ids) == ids
    if session == "mean":
        expected = fnc.mean(axis=1)
        assert not np.allclose(expected, fnc[:, 0]) and not np.allclose(expected, fnc[:, 1])
    else:
        expected = fnc[:, (session or 1) - 1]
    np.testing.assert_array_equal(cohort.fnc, expected[rows].astype(np.float32))


def test_v5_and_v73_read_identically_in_matlab_order(tmp_path, rng):
    # not symmetric, so that swapping the two component axes (or any other pair) shows
    values = rng.normal(size=(N_SUBJECTS, N_SESSIONS, N_COMPONENTS, N_COMPONENTS + 1))
    scipy.io.savemat(tmp_path / "v5.mat", {"fnc_corrs_all": values})
    savemat_v73(tmp_path / "v73.mat", {"fnc_corrs_all": values})
    with pytest.raises(NotImplementedError):  # a real v7.3 layout: scipy cannot read it
        scipy.io.loadmat(tmp_path / "v73.mat")
    with h5py.File(tmp_path / "v73.mat", "r") as f:  # and h5py sees the axes reversed
        assert f["fnc_corrs_all"].shape == values.shape[::-1]
    v5 = _read_mat(tmp_path / "v5.mat", "fnc_corrs_all")
    v73 = _read_mat(tmp_path / "v73.mat", "fnc_corrs_all")
    np.testing.assert_array_equal(v5, values)
    np.testing.assert_array_equal(v73, values)

    cohorts = [load_cohort(write_gift_cohort(tmp_path / fmt, np.random.default_rng(5), fmt)[0]) for fmt in FORMATS]
    np.testing.assert_array_equal(cohorts[0].fnc, cohorts[1].fnc)


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_session_3d_file(tmp_path, rng, fmt):
    fnc = gift_fnc(rng)[:, 0]
    toml, ids, _, rows = write_gift_cohort(tmp_path / "c", rng, fmt, fnc=fnc, fnc_keys='session = "mean"\n')
    np.testing.assert_array_equal(load_cohort(toml).fnc, fnc[rows].astype(np.float32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_upper_triangle_2d_file(tmp_path, rng, fmt):
    # GIFT's icatb_mat2vec: the lower triangle in column-major order, i.e. the upper one row by row
    full = gift_fnc(rng)[:, 1]
    iu = np.triu_indices(N_COMPONENTS, 1)
    toml, _, _, rows = write_gift_cohort(tmp_path / "c", rng, fmt, fnc=full[:, iu[0], iu[1]])
    np.testing.assert_array_equal(load_cohort(toml).fnc, full[rows].astype(np.float32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_which_variable(tmp_path, rng, fmt):
    spectra = rng.normal(size=(N_SUBJECTS, N_SESSIONS, N_COMPONENTS, 11))
    other = gift_fnc(np.random.default_rng(9))
    extra = {"spectra_tc_all": spectra, "fnc_other": other}
    toml, _, fnc, rows = write_gift_cohort(tmp_path / "a", rng, fmt, extra=extra)
    np.testing.assert_array_equal(load_cohort(toml).fnc, fnc[rows, 0].astype(np.float32))
    toml, *_ = write_gift_cohort(tmp_path / "b", rng, fmt, extra=extra, fnc_keys='variable = "fnc_other"\n')
    np.testing.assert_array_equal(load_cohort(toml).fnc, other[rows, 0].astype(np.float32))


def test_diagonal_is_set_to_zero(tmp_path, rng):
    fnc = gift_fnc(rng)
    fnc[..., np.arange(N_COMPONENTS), np.arange(N_COMPONENTS)] = np.inf  # Fisher z of r = 1
    toml, _, _, rows = write_gift_cohort(tmp_path / "c", rng, "v73", fnc=fnc, fnc_keys='session = "mean"\n')
    loaded = load_cohort(toml).fnc
    assert np.all(np.diagonal(loaded, axis1=1, axis2=2) == 0)
    off = ~np.eye(N_COMPONENTS, dtype=bool)
    np.testing.assert_array_equal(loaded[:, off], fnc.mean(axis=1)[rows][:, off].astype(np.float32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_gift_cohort_prints_summary(tmp_path, rng, capsys, fmt):
    toml, *_ = write_gift_cohort(tmp_path / "c", rng, fmt)
    status, out, err = run_info(capsys, toml)
    assert status == 0, err
    assert "7 (3 SZ, 4 HC)" in out and "5 nodes" in out


def _garbage(folder, fmt, rng):
    data = b"MATLAB 5.0 MAT-file" + bytes(200) if fmt == "v5" else b"\x89HDF\r\n\x1a\n" + bytes(200)
    (folder / "gift_postprocess_results.mat").write_bytes(data)


# (what to change, TOML lines under [fnc], what the error line must name besides the .mat file)
ERRORS = {
    "missing variable": (
        lambda folder, fmt, rng: None,
        'variable = "fnc_corrs"\n',
        ["'fnc_corrs' not found", "fnc_corrs_all, spectra_tc_all"],
    ),
    "several variables, none named": (
        lambda folder, fmt, rng: save(
            folder / "gift_postprocess_results.mat", {"corrs": gift_fnc(rng), "spectra_tc_all": np.ones(3)}, fmt
        ),
        "",
        ["several variables", "[fnc] variable", "corrs, spectra_tc_all"],
    ),
    "session out of range": (lambda folder, fmt, rng: None, "session = 3\n", ["session = 3", "2 sessions"]),
    "session of a one-session file": (
        lambda folder, fmt, rng: save(folder / "gift_postprocess_results.mat", {"fnc": gift_fnc(rng)[:, 0]}, fmt),
        "session = 2\n",
        ["session = 2", "'fnc'", "1 session"],
    ),
    "subject count": (
        lambda folder, fmt, rng: (folder / "gift_subjects.txt").write_text("s00\ns01\ns02\ns03\ns04\ns05\n"),
        "",
        ["7 subjects", "gift_subjects.txt lists 6 ids"],
    ),
    "non-square": (
        lambda folder, fmt, rng: save(
            folder / "gift_postprocess_results.mat", {"fnc_corrs_all": gift_fnc(rng)[..., :4]}, fmt
        ),
        "",
        ["5 x 4", "square"],
    ),
    "wrong component count": (
        lambda folder, fmt, rng: save(
            folder / "gift_postprocess_results.mat", {"fnc_corrs_all": gift_fnc(rng)[:, :, :4, :4]}, fmt
        ),
        "",
        ["5 x 5", "4 x 4"],
    ),
    "unreadable": (_garbage, "", ["cannot be read"]),
    "not symmetric": (
        lambda folder, fmt, rng: save(
            folder / "gift_postprocess_results.mat",
            {"fnc_corrs_all": gift_fnc(rng) + np.triu(np.full((N_COMPONENTS, N_COMPONENTS), 0.5), 1)},
            fmt,
        ),
        "",
        ["not symmetric", "subject 's00'"],
    ),
    "NaN": (
        lambda folder, fmt, rng: save(
            folder / "gift_postprocess_results.mat",
            {"fnc_corrs_all": np.where(np.arange(N_SUBJECTS)[:, None, None, None] == 2, np.nan, gift_fnc(rng))},
            fmt,
        ),
        "",
        ["NaN", "subject 's06'"],  # GIFT's row 2 is s06
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", list(ERRORS))
def test_gift_errors_are_one_line(tmp_path, rng, capsys, fmt, case):
    change, keys, culprits = ERRORS[case]
    extra = {"spectra_tc_all": np.ones((N_SUBJECTS, 3))}
    toml, *_ = write_gift_cohort(tmp_path / "c", rng, fmt, extra=extra, fnc_keys=keys)
    change(toml.parent, fmt, rng)
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "gift_postprocess_results.mat", *culprits)


def test_v73_cell_variable(tmp_path, rng, capsys):
    toml, *_ = write_gift_cohort(tmp_path / "c", rng, "v73")
    mat = toml.parent / "gift_postprocess_results.mat"
    savemat_v73(mat, {"fnc_corrs_all": np.zeros((1, 3))}, classes={"fnc_corrs_all": "cell"})
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "gift_postprocess_results.mat", "'fnc_corrs_all'", "MATLAB cell")


@pytest.mark.parametrize(
    ("keys", "culprits"),
    [
        ("session = 0\n", ["fnc.session", "found 0"]),
        ('session = "first"\n', ["fnc.session", "'first'"]),
        ("session = true\n", ["fnc.session", "True"]),
        ("variable = 3\n", ["fnc.variable", "found 3"]),
    ],
)
def test_bad_gift_keys(tmp_path, rng, capsys, keys, culprits):
    toml, *_ = write_gift_cohort(tmp_path / "c", rng, fnc_keys=keys)
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "cohort.toml", *culprits)


def test_gift_keys_need_a_stacked_mat(tmp_path, rng, capsys):
    toml, *_ = write_gift_cohort(tmp_path / "c", rng, fnc_keys="session = 2\n")
    toml.write_text(toml.read_text().replace("gift_postprocess_results.mat", "fnc.npy"))
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "cohort.toml", "fnc.session", ".mat")
