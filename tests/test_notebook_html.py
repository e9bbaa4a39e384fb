"""What a notebook shows: ``_repr_html_`` of File, Result, QueryResult and Lineage, and ``repr(Lineage)``.

Every value on the page comes from the lake, which may hold names and metadata
written by anyone (or imported from another machine's records), so each test
plants hostile text (``<script>``, quotes that would close an attribute) and
checks it arrives as text only. The HTML is parsed with the standard library's
parser, so "no element named script" is a statement about the DOM, not a
substring search. A real Jupyter kernel runs the same displays in
tests/test_notebook_run.py.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

import limnos
from limnos import render_html

HOSTILE = '<script>alert("x")</script>" onmouseover="alert(1)'


class Page(HTMLParser):
    """The elements, attributes and text of a piece of HTML."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def assert_inert(markup: str, allowed_scripts: int = 0) -> Page:
    """No script other than ours, no event handler attribute, no javascript: link."""
    page = Page(markup)
    assert page.tags.count("script") == allowed_scripts, page.tags
    assert not [a for a, _ in page.attrs if a.lower().startswith("on")], page.attrs
    assert not [v for _, v in page.attrs if v and v.strip().lower().startswith("javascript:")]
    return page


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def thumbnails(markup: str) -> list[Image.Image]:
    """The images inlined as data: URIs."""
    return [Image.open(io.BytesIO(base64.b64decode(m))) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', markup)]


# ------------------------------------------------------------------- File
def test_file_html_shows_fields_metadata_provenance_and_inputs_escaped(sqlite_lake: limnos.Lake, tmp_path: Path) -> None:
    src = sqlite_lake.add(_write(tmp_path / "raw.csv", b"a,b\n1,2\n"), name="raw/a<b>.csv")[0]
    sqlite_lake.get(src.ref).read_bytes()
    with sqlite_lake.create(f"out/{HOSTILE[:20]}.txt", metadata={"note": HOSTILE, "n": 3, HOSTILE[:12]: "k"}) as w:
        w.write_text("made")
    made = w.file
    assert made is not None
    markup = made._repr_html_()
    page = assert_inert(markup)
    text = page.all_text
    assert made.name in text and made.id in text and made.hash in text  # type: ignore[operator]
    assert HOSTILE in text  # shown, as text
    assert "<script>alert" not in markup and "&lt;script&gt;" in markup
    assert "raw/a<b>.csv@1" in text  # its input, by ref
    assert "inputs (1)" in text and "metadata (3)" in text
    assert "provenance" in text and made.user in text  # type: ignore[operator]
    # A display reads nothing: the current run's inputs did not grow by the file shown.
    before = sqlite_lake.current_inputs()
    src._repr_html_()
    assert sqlite_lake.current_inputs() == before


def test_file_html_has_a_thumbnail_for_a_local_image_and_none_for_other_bytes(sqlite_lake: limnos.Lake,
                                                                               tmp_path: Path) -> None:
    image = sqlite_lake.add(_write(tmp_path / "p.png", png_bytes((200, 10, 10))), name="img/p.png")[0]
    (thumb,) = thumbnails(image._repr_html_())
    assert max(thumb.size) <= render_html.THUMB_PX and thumb.convert("RGB").getpixel((0, 0)) == (200, 10, 10)
    # Bytes that claim to be an image but are not: no thumbnail, no exception.
    fake = sqlite_lake.add(_write(tmp_path / "f.png", b"\x89PNG not really"), name="img/fake.png")[0]
    assert thumbnails(fake._repr_html_()) == []
    assert "img/fake.png" in Page(fake._repr_html_()).all_text


def test_a_corrupt_local_image_shows_no_thumbnail_and_is_quarantined(sqlite_lake: limnos.Lake, tmp_path: Path) -> None:
    image = sqlite_lake.add(_write(tmp_path / "p.png", png_bytes((1, 2, 3))), name="img/p.png")[0]
    path = Path(image.local_path())
    path.chmod(0o644)
    path.write_bytes(png_bytes((9, 9, 9)))  # same format, other bytes: the hash no longer matches
    markup = sqlite_lake.get("img/p.png")._repr_html_()
    assert thumbnails(markup) == []  # never a picture of bytes that fail their hash
    assert not path.exists()  # the corrupt object went to quarantine


# ------------------------------------------------------------------- Result
def test_result_html_is_a_table_with_thumbnails_and_escaped_metadata(sqlite_lake: limnos.Lake, tmp_path: Path) -> None:
    for i in range(3):
        sqlite_lake.add(_write(tmp_path / f"{i}.png", png_bytes((i * 50, 0, 0))), name=f"img/{i}.png",
                        metadata={"label": HOSTILE if i == 1 else f"l{i}"})
    sqlite_lake.add(_write(tmp_path / "notes.txt", b"text"), name="img/notes.txt")
    result = sqlite_lake.files.all()
    markup = result._repr_html_()
    page = assert_inert(markup)
    assert len(thumbnails(markup)) == 3  # the three images; the text file has an empty cell
    assert page.tags.count("tr") == 1 + 4
    assert HOSTILE in page.all_text and "label" in page.all_text
    assert "4 files" in page.all_text


def test_result_html_counts_the_rows_it_does_not_show(sqlite_lake: limnos.Lake, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_html, "MAX_ROWS", 2)
    for i in range(5):
        sqlite_lake.add(_write(tmp_path / f"{i}.txt", str(i).encode()), name=f"t/{i}.txt")
    page = Page(sqlite_lake.files.all()._repr_html_())
    assert page.tags.count("tr") == 1 + 2 and "3 more not shown" in page.all_text
    selected = Page(sqlite_lake.files.select("size").all()._repr_html_())
    assert "user" not in selected.all_text and "size" in selected.all_text


# ------------------------------------------------------------- QueryResult
def test_datasource_query_result_html_has_thumbnails_for_image_datapoints(sqlite_lake: limnos.Lake,
                                                                          tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(png_bytes((0, i * 80, 0), (100, 50)))
    (folder / "readme.md").write_text("# hi")
    (folder / "broken.png").write_bytes(b"not a png")
    ds = sqlite_lake.datasource("imgs", str(folder), scan=True)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("1.png", {"caption": HOSTILE})
    markup = ds.all()._repr_html_()
    page = assert_inert(markup)
    thumbs = thumbnails(markup)
    assert len(thumbs) == 3 and {t.size for t in thumbs} == {(64, 32)}  # shrunk, aspect kept
    assert HOSTILE in page.all_text and "readme.md" in page.all_text and "broken.png" in page.all_text
    assert "5 datapoints" in page.all_text


# ------------------------------------------------------------------- Lineage
def _pipeline(lake: limnos.Lake, tmp_path: Path) -> limnos.File:
    raw = lake.add(_write(tmp_path / "r.csv", b"1\n"), name=f"raw/{HOSTILE[:25]}.csv")[0]
    lake.get(raw.ref).read_bytes()
    with lake.create("clean/c.csv") as w:
        w.write_text("1")
    assert w.file is not None
    return w.file


def test_lineage_repr_is_a_summary_and_its_edges(sqlite_lake: limnos.Lake, tmp_path: Path) -> None:
    made = _pipeline(sqlite_lake, tmp_path)
    graph = sqlite_lake.lineage(made.ref)
    text = repr(graph)
    first, *edges = text.splitlines()
    assert first == "<Lineage of clean/c.csv@1: 2 files, 1 run, 2 edges>"
    assert len(edges) == 2 and all(" -> " in e for e in edges)
    assert any(e.endswith("-> clean/c.csv@1") for e in edges) and any(e.startswith("  raw/<script>") for e in edges)
    assert "{" not in text  # no dict dump


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz (dot) is not installed: apt-get install graphviz")
def test_lineage_html_is_svg_from_graphviz_with_escaped_labels(sqlite_lake: limnos.Lake, tmp_path: Path) -> None:
    graph = sqlite_lake.lineage(_pipeline(sqlite_lake, tmp_path).ref)
    markup = graph._repr_html_()
    page = assert_inert(markup)
    assert "svg" in page.tags and "mermaid" not in markup
    assert HOSTILE[:25] in page.all_text and "clean/c.csv@1" in page.all_text


def test_lineage_html_without_graphviz_is_mermaid(sqlite_lake: limnos.Lake, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    graph = sqlite_lake.lineage(_pipeline(sqlite_lake, tmp_path).ref)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no dot anywhere
    markup = graph._repr_html_()
    page = assert_inert(markup, allowed_scripts=1)  # mermaid.js, ours
    assert "svg" not in page.tags and 'class="mermaid limnos-mermaid"' in markup
    assert "flowchart LR" in page.all_text and "clean/c.csv@1" in page.all_text


def test_a_permalink_that_is_no_web_link_is_never_drawn_as_one(sqlite_lake: limnos.Lake) -> None:
    from limnos.ops.lineage import Lineage

    graph = Lineage(root="f:1")
    graph.nodes["f:1"] = {"type": "file", "id": "1", "name": "a", "version": 1}
    for n, link in enumerate(["javascript:alert(1)", "JaVaScRiPt:alert(2)", "data:text/html,<b>", "https://git.example/x#L3"]):
        graph.nodes[f"s:{n}"] = {"type": "step", "id": str(n), "function": "f", "permalink": link}
        graph.edges.append((f"s:{n}", "f:1"))
    dot, mermaid = graph.to_dot(), graph.to_mermaid()
    assert "javascript" not in dot.lower() and "data:text" not in dot
    assert "javascript" not in mermaid.lower() and "data:text" not in mermaid
    assert 'URL="https://git.example/x#L3"' in dot and 'href "https://git.example/x#L3"' in mermaid
    assert_inert(graph._repr_html_(), allowed_scripts=0 if shutil.which("dot") else 1)


def test_render_helpers_escape_every_kind_of_value() -> None:
    page = Page(render_html.fields([("a", HOSTILE), ("b", {"k": HOSTILE}), ("c", b"\x00" * 5), ("d", None),
                                    (HOSTILE, "x" * 500)]))
    assert page.tags.count("script") == 0
    assert HOSTILE in page.all_text and "5 bytes" in page.all_text and "\u2014" in page.all_text
    assert "x" * 199 + "\u2026" in page.all_text and "x" * 200 not in page.all_text


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)
