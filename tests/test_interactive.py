"""The report's interactive views (nilearn's 3-D connectome and slice viewer): offline, drawing what the static
figures' displays computed, the node names of user files made harmless, and small enough to embed."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.folder import load_inputs
from reports.page._interactive import connectome_view, external_loads, make_views, stat_map_view
from reports.plotting import AttributionMapDisplay, ConnectomeDisplay
from reports.plotting._connectome import domain_colors

# The test's own reading of "loads from the network", written apart from the code under test.
REMOTE = re.compile(
    r"<script[^>]*\ssrc\s*=\s*['\"]?\s*(https?:)?//|<link[^>]*\shref\s*=\s*['\"]?\s*(https?:)?//"
    r"|url\(\s*['\"]?\s*(https?:)?//",
    flags=re.I,
)
SCRIPTS = re.compile(r"<script[^>]*>(.*?)</script>", flags=re.S | re.I)
# budgets per view, in bytes of the standalone document (the report escapes it, about +10%)
CONNECTOME_BUDGET, SLICES_BUDGET = 3_500_000, 1_500_000
DOMAINS, SIZES = ("DM", "SC", "VI", "CC", "SM", "AU", "CB"), (9, 5, 9, 17, 5, 2, 6)  # the demo's 53 nodes


def fnc_tables(rng, domains=DOMAINS, sizes=SIZES):
    """Nodes in MNI space and every connection between them, ranked by contrast (largest first)."""
    nodes = pd.DataFrame([{"node": f"{d}{k + 1:02d}", "domain": d} for d, n in zip(domains, sizes) for k in range(n)])
    nodes["x"], nodes["y"], nodes["z"] = rng.uniform(-60, 60, (3, len(nodes))).round(2)
    conn = pd.DataFrame(list(itertools.combinations(nodes["node"], 2)), columns=["node_i", "node_j"])
    conn["contrast"] = rng.normal(0, 1e-3, len(conn))
    conn["p_perm"] = rng.uniform(size=len(conn))
    conn["rank"] = conn["contrast"].rank(ascending=False, method="first").astype(int)
    return conn, nodes


def write_attribution_map(folder: Path, *, seed=0, mask=True):
    """``smri_attribution.nii.gz`` (and ``mask.nii.gz``) on an 8 mm MNI grid of 23 x 27 x 22 voxels, with a
    positive blob at (30, -20, 10) mm and a negative one at (-40, 20, 30) mm."""
    import nibabel as nib

    shape = (23, 27, 22)
    affine = np.diag([8.0, 8.0, 8.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    mm = np.indices(shape).reshape(3, -1).T @ affine[:3, :3].T + affine[:3, 3]
    inside = ((mm / [70, 100, 80]) ** 2).sum(axis=1) < 1
    data = np.random.default_rng(seed).normal(0, 1e-7, len(mm))
    data += 5e-6 * np.exp(-(((mm - [30, -20, 10]) / 14) ** 2).sum(axis=1))
    data -= 4e-6 * np.exp(-(((mm - [-40, 20, 30]) / 14) ** 2).sum(axis=1))
    data[~inside] = 0
    nib.save(nib.Nifti1Image(data.reshape(shape).astype(np.float32), affine), folder / "smri_attribution.nii.gz")
    if mask:
        nib.save(nib.Nifti1Image(inside.reshape(shape).astype(np.uint8), affine), folder / "mask.nii.gz")


def connectome_info(html: str) -> dict:
    """The data nilearn's 3-D view plots (its ``connectomeInfo``), decoded."""
    info = json.loads(re.search(r"var connectomeInfo = (\{.*?\});\n", html, flags=re.S).group(1))["connectome"]
    for key in ("_con_w", "_marker_x"):
        info[key[1:]] = np.frombuffer(base64.b64decode(info[key]), "<f4")
    return info


def brainsprite_params(html: str) -> dict:
    return json.loads(re.search(r"brainsprite\((\{.*?\})\);", html, flags=re.S).group(1))


@pytest.fixture(scope="module")
def demo_sized():
    """A view of each kind from tables of the demo's size (53 nodes, 1378 connections; top 20)."""
    conn, nodes = fnc_tables(np.random.default_rng(3))
    display = ConnectomeDisplay.from_tables(conn, nodes, top_k=20, value="contrast")
    return conn, nodes, display, connectome_view(display, total=len(conn))


def test_external_loads_finds_each_kind_of_remote_reference():
    page = (
        '<script src="https://cdn.example/a.js"></script><script src=//cdn.example/b.js></script>'
        "<link rel=stylesheet href='http://x.org/s.css'><style>b { background: url( https://x.org/i.png) }</style>"
        '<img alt="" src="https://x.org/i.png"><style>@import "//x.org/s.css";</style>'
    )
    assert len(external_loads(page)) == 6
    local = (
        '<script>var u = "https://plot.ly/"; a.href = "https://x.org"</script><link rel="icon" href="data:,">'
        "<style>svg { clip-path: url(#clip) }</style><img src='data:image/png;base64,AAAA'>"
        '<a href="https://plot.ly/">made with plotly</a><iframe srcdoc="x"></iframe>'
    )
    assert external_loads(local) == []


def test_connectome_view_is_offline_with_nilearns_own_scripts_inline(demo_sized):
    import nilearn

    view = demo_sized[3]
    assert REMOTE.search(view.html) is None
    assert not re.search(r"<script[^>]*\ssrc\s*=", view.html, flags=re.I)  # every script is inline
    assert "raw.githubusercontent.com" not in view.html  # nilearn's favicon link is dropped
    # the JavaScript is the copy packaged with nilearn, not a CDN's
    packaged = Path(nilearn.__file__).parent / "_assets" / "js"
    for name in ("plotly-gl3d-latest.min.js", "jquery.min.js", "connectome-plot-utils.js"):
        assert (packaged / name).read_text(encoding="utf-8")[:2000] in view.html, name
    scripts = SCRIPTS.findall(view.html)
    expected = ["'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in scripts]
    assert view.script_hashes == expected and len(expected) >= 4
    assert view.needs_eval  # plotly.js 1.x compiles code at run time
    assert view.size < CONNECTOME_BUDGET


def test_connectome_view_draws_the_displays_top_edges_named_and_coloured_by_domain(demo_sized):
    conn, nodes, display, view = demo_sized
    info = connectome_info(view.html)
    order = display.nodes["node"].tolist()
    top = conn.sort_values("rank").head(20)
    # each of the top 20 edges is drawn (once per direction, nilearn's symmetric matrix), nothing else
    values = info["con_w"][::3]
    assert len(values) == 2 * 20
    scale = 10.0 ** -np.floor(np.log10(np.abs(top["contrast"]).max()))
    assert np.allclose(np.sort(values), np.sort(np.repeat(top["contrast"].to_numpy() * scale, 2)), rtol=1e-5)
    # the nodes of those edges, and only those, are named
    in_top = set(top["node_i"]) | set(top["node_j"])
    assert {n for n, label in zip(order, info["marker_labels"]) if label} == in_top
    assert [label for label in info["marker_labels"] if label] == [n for n in order if n in in_top]
    colors = domain_colors(display.nodes["domain"])
    assert [c.lower() for c in info["marker_color"]] == [colors[d].lower() for d in display.nodes["domain"]]
    assert np.allclose(info["marker_x"], display.coords[:, 0], atol=1e-4)
    assert view.legend == tuple(colors.items())
    assert "×1e-3" in info["title"] and f"20 top-ranked connections of {len(conn)}" in view.caption


def test_node_names_cannot_close_the_script_or_open_a_tag(rng):
    conn, nodes = fnc_tables(rng, domains=("DM", "SC"), sizes=(3, 2))
    evil = "</script><script>alert(1)</script>&amp;"
    conn = conn.replace("DM01", evil)
    nodes = nodes.replace("DM01", evil)
    clean = connectome_view(
        ConnectomeDisplay.from_tables(conn.replace(evil, "DM01"), nodes.replace(evil, "DM01"), value="contrast")
    )
    view = connectome_view(ConnectomeDisplay.from_tables(conn, nodes, top_k=10, value="contrast"))
    assert evil not in view.html and "alert(1)" in view.html
    assert view.html.count("<script") == clean.html.count("<script")
    assert len(view.script_hashes) == len(clean.script_hashes)
    assert evil.translate({ord("<"): "‹", ord(">"): "›", ord("&"): "＆"}) in connectome_info(view.html)["marker_labels"]


def test_stat_map_view_is_thresholded_and_scaled_like_the_glass_brain(tmp_path):
    write_attribution_map(tmp_path)
    display = AttributionMapDisplay.from_image(tmp_path / "smri_attribution.nii.gz", tmp_path / "mask.nii.gz")
    view = stat_map_view(display)
    assert REMOTE.search(view.html) is None and "raw.githubusercontent.com" not in view.html
    assert not re.search(r"<script[^>]*\ssrc\s*=", view.html, flags=re.I)
    assert not view.needs_eval and view.size < SLICES_BUDGET
    params = brainsprite_params(view.html)
    scale = 10.0 ** -np.floor(np.log10(display.vmax))  # shown in units of 1e-6 here
    assert scale == 1e6 and "attribution × 1e-6" in view.caption
    assert params["colorMap"]["max"] == pytest.approx(display.vmax * scale, rel=1e-6)
    assert params["colorMap"]["min"] == pytest.approx(-display.vmax * scale, rel=1e-6)
    # it opens at the peak voxel, the positive blob (nilearn's affine carries a -1 voxel readout shift)
    affine = np.asarray(params["affine"])
    ijk = np.array([params["numSlice"][a] + 1 for a in "XYZ"] + [1])
    assert np.allclose((affine @ ijk)[:3], [30, -20, 10], atol=8)
    assert np.allclose(display.peak_mm, [30, -22, 8], atol=8)


def test_make_views_only_for_inputs_present(tmp_path, rng):
    folder = tmp_path / "explanations"
    folder.mkdir()
    assert make_views(load_inputs(folder)) == ([], [])
    conn, nodes = fnc_tables(rng, domains=("DM", "SC", "VI"), sizes=(3, 2, 4))
    conn.to_csv(folder / "connections.csv", index=False)
    nodes.drop(columns=["x", "y", "z"]).to_csv(folder / "nodes.csv", index=False)
    assert make_views(load_inputs(folder)) == ([], [])  # no coordinates: no 3-D view
    nodes.to_csv(folder / "nodes.csv", index=False)
    views, problems = make_views(load_inputs(folder), top_k=7)
    assert [v.name for v in views] == ["connectome_3d"] and problems == []
    assert views[0].title == "Top 7 connections in 3-D (interactive)"
    write_attribution_map(folder, mask=False)
    views, problems = make_views(load_inputs(folder))
    assert [(v.name, v.section) for v in views] == [("connectome_3d", "Connectome"), ("smri_viewer", "Morphology")]
    (folder / "smri_attribution.nii.gz").write_bytes(b"not a nifti")
    views, problems = make_views(load_inputs(folder))
    assert [v.name for v in views] == ["connectome_3d"]
    assert len(problems) == 1 and problems[0].startswith("interactive sMRI slice viewer left out")
