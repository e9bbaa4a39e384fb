"""``limnos ui`` in a real browser: Debian's chromium driven by Playwright, over real lakes and a real server.

Each page of the demo lake is opened and photographed (``tests/artifacts/ui/``);
the query bar runs a query, a lineage node is expanded, the gallery is paged,
a metadata value is edited and read back with ``limnos info``, hostile names
render as text, and a server with a token refuses a browser without it.
Without chromium (or Playwright) these tests skip, saying so, unless
``LIMNOS_REQUIRE_BROWSER=1`` (CI), where they fail.

``LIMNOS_UPDATE_DOC_IMAGES=1`` also copies the lineage and gallery pictures
to ``docs/images/`` (the README shows them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import limnos

CHROMIUM = os.environ.get("LIMNOS_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("LIMNOS_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "ui"
DOC_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        return f"needs the web extra and playwright ({exc.name}): pip install -e '.[dev,web]'"
    if not os.path.exists(CHROMIUM):
        return f"needs chromium at {CHROMIUM}: apt-get install chromium"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if REQUIRE:
            pytest.fail(f"LIMNOS_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chrome
        chrome.close()


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[limnos.Lake]:
    """The lake ``limnos demo`` makes (sales tables, a run, a step, a datasource of 24 images)."""
    from rich.console import Console

    from limnos.cli.demo import run_demo

    base = tmp_path_factory.mktemp("demo")
    saved, tempfile.tempdir = tempfile.tempdir, str(base)
    try:
        with open(os.devnull, "w") as sink:
            path = run_demo(Console(file=sink, width=120))
    finally:
        tempfile.tempdir = saved
    lake = limnos.open(path)
    yield lake
    lake.close()


@pytest.fixture(scope="module")
def server(demo_lake: limnos.Lake) -> Iterator[Any]:
    from limnos.web.server import launch

    handle = launch(demo_lake, "/files")
    yield handle
    handle.stop()


class Page:
    """A browser tab that fails the test on any console error or CSP violation, and takes screenshots."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
        self.tab = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        # script errors and CSP violations; a page's own HTTP status is each test's to check, a sub-resource's is an error
        self.tab.on("console", lambda m: self.errors.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        self.tab.on("pageerror", lambda e: self.errors.append(str(e)))
        self.tab.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and r.request.resource_type != "document" else None)

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.tab.on("dialog", on_dialog)

    def open(self, url: str) -> Any:
        response = self.tab.goto(url)
        self.tab.wait_for_load_state("networkidle")
        return response

    def shot(self, name: str, full: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.tab.screenshot(path=str(path), full_page=full)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    tab = Page(browser)
    yield tab
    assert not tab.errors, f"errors in the browser console: {tab.errors}"
    tab.close()


def _doc_image(path: Path) -> None:
    if os.environ.get("LIMNOS_UPDATE_DOC_IMAGES") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOC_IMAGES / f"ui-{path.name}")


def _loaded_images(page: Page) -> list[int]:
    """The natural widths of the page's images (0: not loaded)."""
    return list(page.tab.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)"))


# ------------------------------------------------------------------ pages
def test_every_page_of_the_demo_lake(server: Any, page: Page) -> None:
    base = server.base_url
    page.open(base + "/files")
    names = page.tab.locator("td.name").all_inner_texts()
    assert "clean/sales.parquet" in names and "reports/top_stores.csv" in names and len(names) == 30
    report = page.tab.locator("td.name", has_text="reports/top_stores.csv").locator("xpath=..")
    assert report.locator("td.num").first.inner_text() == "2"  # its latest version
    page.shot("files")

    page.tab.click("text=clean/sales.parquet")
    page.tab.wait_for_load_state("networkidle")
    assert page.tab.locator("h1").inner_text().startswith("clean/sales.parquet")
    header = page.tab.locator("table.preview-table th").all_inner_texts()
    assert header == ["month", "day", "store", "sales"]
    assert "reviewed" in page.tab.locator(".meta-table td.k").all_inner_texts()
    assert page.tab.locator("text=raw/sales/sales_2024-01.csv@1").count() == 1  # its inputs
    page.shot("file", full=True)

    page.open(base + "/file?ref=images/shapes/circle_blue_big.png")
    assert _loaded_images(page) == [96]  # the preview, re-encoded by Pillow at its own size
    page.shot("file-image")

    page.open(base + "/lineage?ref=clean/sales.parquet")
    page.tab.wait_for_selector("#graph[data-nodes]")
    labels = page.tab.evaluate("window.limnosLineage.cy.nodes().map(n => n.data('label'))")
    assert {"raw/sales/sales_2024-01.csv@1", "clean", "clean/sales.parquet@1", "reports/top_stores.csv@1",
            "reports/top_stores.csv@2"} <= set(labels)
    assert any(label.startswith("step ") and label.endswith("store_totals") for label in labels)  # the step's own node
    assert not any(label.startswith("images/") for label in labels)
    _doc_image(page.shot("lineage"))

    page.open(base + "/datasources")
    assert page.tab.locator(".tile-name").all_inner_texts() == ["shapes"]
    assert "blue-shapes" in page.tab.locator("table.grid").inner_text()
    page.shot("datasources")

    page.tab.click("text=shapes")
    page.tab.wait_for_load_state("networkidle")
    assert page.tab.locator("figure.dp").count() == 24
    widths = _loaded_images(page)
    assert len(widths) == 24 and all(w == 96 for w in widths)
    _doc_image(page.shot("gallery"))

    page.open(base + "/steps")
    assert "store_totals" in page.tab.locator("section.card", has_text="Recent executions").inner_text()
    assert page.tab.locator("section.card", has_text="Failed").locator(".empty").count() == 1
    page.shot("steps")


def test_query_bar_filters_files_and_datapoints(server: Any, page: Page) -> None:
    page.open(server.base_url + "/files")
    page.tab.fill("input[name=q]", 'stage == "clean"')
    page.tab.press("input[name=q]", "Enter")
    page.tab.wait_for_load_state("networkidle")
    assert page.tab.locator("td.name").all_inner_texts() == ["clean/sales.parquet"]
    page.tab.fill("input[name=q]", "rows >>> 3")
    page.tab.press("input[name=q]", "Enter")
    page.tab.wait_for_load_state("networkidle")
    assert "expected a value" in page.tab.locator(".alert").inner_text()
    page.shot("files-query-error")

    page.open(server.base_url + "/ds?name=shapes")
    page.tab.fill("input[name=q]", 'colour == "blue" and big == true')
    page.tab.press("input[name=q]", "Enter")
    page.tab.wait_for_load_state("networkidle")
    paths = page.tab.locator("figure.dp a.path").all_inner_texts()
    assert paths == ["circle_blue_big.png", "square_blue_big.png", "triangle_blue_big.png"]
    page.shot("gallery-query")


def test_gallery_pages_through_every_datapoint_once(server: Any, page: Page) -> None:
    page.open(server.base_url + "/ds?name=shapes&n=10")
    seen: list[str] = []
    for _ in range(5):
        seen += page.tab.locator("figure.dp a.path").all_inner_texts()
        assert all(w == 96 for w in _loaded_images(page))
        nxt = page.tab.locator("a.next")
        if nxt.count() == 0:
            break
        nxt.click()
        page.tab.wait_for_load_state("networkidle")
    assert len(seen) == 24 and seen == sorted(set(seen))
    assert page.tab.locator("text=« first page").count() == 1


def test_expand_a_lineage_node_and_click_through(server: Any, page: Page) -> None:
    page.open(server.base_url + "/lineage?ref=reports/top_stores.csv")
    page.tab.wait_for_selector("#graph[data-nodes]")
    cy = "window.limnosLineage.cy"
    before = page.tab.evaluate(f"{cy}.nodes().map(n => n.data('label'))")
    assert not any(label.startswith("raw/") for label in before)  # one level: the raw files are two hops up
    box = page.tab.locator("#graph").bounding_box()
    pos = page.tab.evaluate(f"{cy}.nodes().filter(n => n.data('label') === 'clean/sales.parquet@1')[0].renderedPosition()")
    page.tab.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])  # a real click on the canvas
    assert page.tab.locator("#selected .title").inner_text() == "clean/sales.parquet@1"
    page.tab.click("#expand-up")
    # wait_for_function evaluates a string, which the page's CSP forbids (no eval): poll instead
    for _ in range(200):
        if page.tab.evaluate(f"{cy}.nodes().length") > len(before):
            break
        page.tab.wait_for_timeout(50)
    after = page.tab.evaluate(f"{cy}.nodes().map(n => n.data('label'))")
    assert {"raw/sales/sales_2024-01.csv@1", "raw/sales/sales_2024-02.csv@1", "raw/sales/sales_2024-03.csv@1"} <= set(after)
    assert any(label == "clean" for label in after)  # the run that made it is its own node
    page.shot("lineage-expanded")
    page.tab.click("#open-file")
    page.tab.wait_for_load_state("networkidle")
    assert page.tab.url.endswith("/file?ref=clean%2Fsales.parquet%401")


# ------------------------------------------------------------------ edits
def test_edit_metadata_with_allow_edit_shows_in_limnos_info(browser: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from limnos.cli.main import app
    from limnos.web.server import launch

    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("data/table.csv", metadata={"rows": 3}) as w:
        w.write_text("a,b\n1,2\n")
    handle = launch(lake, "/files", allow_edit=True)
    tab = Page(browser)
    try:
        tab.open(handle.base_url + "/file?ref=data/table.csv")
        tab.tab.fill("#meta-form input[name=key]", "reviewer")
        tab.tab.fill("#meta-form input[name=value]", "ana")
        tab.tab.click("#meta-form button")
        tab.tab.wait_for_load_state("networkidle")
        assert "set reviewer on data/table.csv@1" in tab.tab.locator(".notice").inner_text()
        tab.shot("file-edited", full=True)
        # a value of the wrong type for its key: the lake's SchemaError, and nothing written
        tab.tab.fill("#meta-form input[name=key]", "rows")
        tab.tab.fill("#meta-form input[name=value]", "many")
        tab.tab.click("#meta-form button")
        tab.tab.wait_for_load_state("networkidle")
        assert "rows" in tab.tab.locator("p.error").inner_text() and "int" in tab.tab.locator("p.error").inner_text()
        assert not tab.errors or all("400" in e for e in tab.errors)
    finally:
        tab.close()
        handle.stop()
    lake.close()
    info = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "info", "data/table.csv", "--json"])
    assert info.exit_code == 0, info.output
    data = json.loads(info.stdout)
    assert data["metadata"] == {"rows": 3, "reviewer": "ana"}


# --------------------------------------------------------------- security
HOSTILE_NAME = 'x/<script>alert("n")</script>\'&amp;.txt'  # names refuse bidi controls; metadata values do not
HOSTILE_VALUE = '"><img src=x onerror=alert(1)>\u202e\'quote'


def test_hostile_names_and_values_render_as_text(browser: Any, tmp_path: Path) -> None:
    from limnos.web.server import launch

    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create(HOSTILE_NAME, metadata={"<b>key</b>": HOSTILE_VALUE}) as w:
        w.write_text("<script>alert('content')</script>")
    with lake.run(name="<script>alert('run')</script>"):
        lake.get(HOSTILE_NAME)
        with lake.create("y/out.txt") as w:
            w.write_text("made from a hostile name")
    handle = launch(lake, "/files")
    tab = Page(browser)
    try:
        for path in ("/files?q=" + _quote('name contains "script"'), "/file?ref=" + _quote(HOSTILE_NAME),
                     "/lineage?ref=y/out.txt", "/steps"):
            tab.open(handle.base_url + path)
            assert tab.tab.locator("script:not([src])").count() == 0  # nothing injected
            assert tab.tab.locator("img[src=x]").count() == 0
        tab.open(handle.base_url + "/file?ref=" + _quote(HOSTILE_NAME))
        title = tab.tab.locator("h1 bdi").inner_text()
        assert title == HOSTILE_NAME
        assert tab.tab.locator(".meta-table td.k").inner_text() == "<b>key</b>"
        # the bidi override is shown as \u202e, not obeyed
        assert tab.tab.locator(".meta-table td.v").inner_text() == HOSTILE_VALUE.replace("\u202e", "\\u202e")
        assert "<script>alert('content')</script>" in tab.tab.locator("pre.preview-text").inner_text()
        tab.shot("hostile", full=True)
        tab.open(handle.base_url + "/lineage?ref=y/out.txt")
        tab.tab.wait_for_selector("#graph[data-nodes]")
        labels = tab.tab.evaluate("window.limnosLineage.cy.nodes().map(n => n.data('label'))")
        assert f"{HOSTILE_NAME}@1" in labels
        assert tab.dialogs == [] and tab.errors == []
    finally:
        tab.close()
        handle.stop()
        lake.close()


def _quote(text: str) -> str:
    import urllib.parse

    return urllib.parse.quote(text, safe="")


def test_a_server_with_a_token_refuses_a_browser_without_it(browser: Any, demo_lake: limnos.Lake) -> None:
    from limnos.web.server import launch

    handle = launch(demo_lake, "/steps", token="s3cret-token")  # what a non-loopback bind gets, here on loopback
    tab = Page(browser)
    try:
        refused = tab.open(handle.base_url + "/files")
        assert refused.status == 403 and "access token" in tab.tab.content()
        assert tab.tab.locator("td.name").count() == 0
        tab.open(handle.url)  # the printed URL: /steps?token=...
        assert tab.tab.url == handle.base_url + "/steps"  # the token left the address bar for a cookie
        assert tab.tab.locator("h1").inner_text() == "Steps"
        tab.open(handle.base_url + "/files")  # the cookie carries on
        assert tab.tab.locator("td.name").count() > 0
        cookie = next(c for c in tab.context.cookies() if c["name"] == "limnos_ui_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    finally:
        tab.close()
        handle.stop()
