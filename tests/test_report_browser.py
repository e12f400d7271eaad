"""The report in a real browser: headless Debian chromium, every network request refused and counted; no console
errors, every image decoded, every section there, tables sort by number, the interactive views (nilearn's, in
sandboxed frames) draw offline; screenshots are kept as artifacts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_folder import make_report_folder
from test_interactive import write_attribution_map

from reports import SECTIONS, render_report
from reports.page._report import section_id

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run installs it when it can)"
)
ARTIFACTS = Path(os.environ.get("MIGTRANS_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: pip install -e .[test]")
    with sync_api.sync_playwright() as pw:
        # the Debian browser, so nothing is downloaded; playwright only drives it
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def opened(browser, tmp_path):
    report_dir, run_dir, figures = make_report_folder(tmp_path)
    write_attribution_map(report_dir)  # so that both interactive views are there
    path = render_report(report_dir, run_dir, figures, top_k=40)  # all 31 SNPs, the one without a p-value too
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console, requests = [], []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    page.on("dialog", lambda dialog: (console.append(f"error: a dialog opened: {dialog.message}"), dialog.dismiss()))

    def refuse_network(route):
        # the report is opened from disk; anything else is a network request it must never make
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    page.route("**/*", refuse_network)
    page.goto(path.resolve().as_uri(), wait_until="load")
    yield page, console, requests
    context.close()


def test_report_opens_offline_without_errors(opened):
    page, console, requests = opened
    assert requests == []
    assert [m for m in console if m.startswith(("error", "pageerror"))] == []
    ids = page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
    assert ids == [section_id(s) for s in SECTIONS]
    for s in SECTIONS:
        assert page.locator(f"#{section_id(s)} h2").inner_text() == s
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
    assert len(images) == 3
    assert all(complete and w > 0 and h > 0 for complete, w, h in images)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)


def test_tables_sort_numerically_with_missing_values_last(opened):
    page, console, _ = opened
    column = page.eval_on_selector_all("#table-snps thead th", "els => els.map(e => e.textContent.trim())")
    stat = column.index("stat")

    def values():
        cells = page.eval_on_selector_all(
            f"#table-snps tbody tr td:nth-child({stat + 1})", "els => els.map(e => e.getAttribute('data-v'))"
        )
        return [None if v is None else float(v) for v in cells]

    header = page.locator("#table-snps thead th").nth(stat)
    header.click()
    up = values()
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    down = values()
    assert header.get_attribute("aria-sort") == "descending"
    numbers = [v for v in up if v is not None]
    # numeric, not text, order: text order would put -10 before -2 and 10 before 9
    assert numbers == sorted(numbers) and [v for v in down if v is not None] == sorted(numbers, reverse=True)
    assert up[-1] is None and down[-1] is None
    # keyboard works too (the headers are focusable)
    header.focus()
    page.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") == "ascending"
    assert [m for m in console if m.startswith(("error", "pageerror"))] == []


def _frame(page, selector):
    """The frame whose document holds ``selector`` (the views' documents are srcdoc frames)."""
    hits = [f for f in page.frames if f != page.main_frame and f.query_selector(selector) is not None]
    assert len(hits) == 1, selector
    return hits[0]


def test_interactive_views_draw_offline(opened):
    page, console, requests = opened
    assert page.locator("iframe[sandbox='allow-scripts']").count() == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, figure in (("connectome", "#connectome figure.view"), ("morphology", "#morphology figure.view")):
        # a frame out of sight may be throttled: look at each as a reader would, scrolled into view
        page.locator(figure).scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"report_{name}_view.png"))
    connectome = _frame(page, "#connectome-plot")
    # plotly drew nilearn's hemispheres, the nodes and the edges, into a WebGL canvas
    connectome.wait_for_function(
        "() => { const gd = document.getElementById('connectome-plot');"
        " return gd.data && gd.data.length >= 4 && gd.querySelector('canvas') !== null; }",
        timeout=20_000,
    )
    traces = connectome.evaluate(
        "() => document.getElementById('connectome-plot').data.map(t => [t.type, t.mode || '', t.text || []])"
    )
    # (nilearn's script hands plotly the hemispheres more than once: the meshes are counted, not numbered)
    kinds = [t[:2] for t in traces]
    assert kinds[-2:] == [["scatter3d", "markers+text"], ["scatter3d", "lines"]]
    assert {k[0] for k in kinds[:-2]} == {"mesh3d"} and len(kinds) >= 4
    labels = [t for t in traces[-2][2] if t]
    # the fixture's hostile node name is shown as text, never run
    assert "N0" in labels and "\u2039script\u203aalert(1)\u2039/script\u203a" in labels
    canvas = connectome.query_selector("#connectome-plot canvas")
    assert min(canvas.evaluate("c => [c.width, c.height]")) > 100
    slices = _frame(page, "input.slider")  # brainsprite's opacity slider: the slice viewer's frame
    # brainsprite drew the template and the map on its canvas: coloured pixels, not only the background
    slices.wait_for_function(
        "() => { const c = document.querySelector('canvas'); if (!c || !c.width) return false;"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 2]) n++; return n > 50; }",
        timeout=20_000,
    )
    assert requests == []
    assert [m for m in console if m.startswith(("error", "pageerror"))] == []
