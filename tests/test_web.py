"""``limnos ui`` without a browser: its guards (host, token, CSRF, CSP), escaping, paging, edits and launching.

These talk HTTP to the real app (Starlette's TestClient, or a real server on
loopback) over real lakes; the browser half is tests/test_web_ui.py.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import limnos

pytest.importorskip("fastapi", reason="needs the web extra: pip install -e '.[dev,web]'")

from fastapi.testclient import TestClient

from limnos.errors import SchemaError
from limnos.web.app import create_app, show
from limnos.web.security import CSP
from limnos.web.server import Settings, is_loopback


def client(lake: limnos.Lake, **settings: Any) -> tuple[TestClient, Settings]:
    st = Settings(**settings)
    return TestClient(create_app(lake, st), base_url="http://127.0.0.1"), st


@pytest.fixture
def small(tmp_path: Path) -> limnos.Lake:
    lake = limnos.init(str(tmp_path / "lake"))
    with lake.create("data/table.csv", metadata={"rows": 3}) as w:
        w.write_text("a,b\n1,2\n")
    return lake


# ------------------------------------------------------------------ guards
@pytest.mark.parametrize(("host", "needs_token"), [
    ("127.0.0.1", False), ("localhost", False), ("::1", False), ("127.0.0.2", False),
    ("0.0.0.0", True), ("::", True), ("10.1.2.3", True), ("my-laptop.local", True)])
def test_any_host_but_loopback_gets_a_token(host: str, needs_token: bool) -> None:
    assert is_loopback(host) is not needs_token
    settings = Settings.for_host(host)
    assert (settings.token is not None) is needs_token
    if needs_token:
        assert len(settings.token or "") >= 32 and Settings.for_host(host).token != settings.token


def test_a_request_without_the_token_is_refused_before_the_lake_is_read(small: limnos.Lake) -> None:
    c, st = client(small, token=Settings.for_host("0.0.0.0").token)
    for path in ("/files", "/file?ref=data/table.csv", "/api/lineage?ref=data/table.csv", "/file/download?ref=data/table.csv",
                 "/static/app.css"):
        r = c.get(path)
        assert r.status_code == 403 and "data/table.csv" not in r.text and "access token" in r.text
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert c.get("/files?token=wrong").status_code == 403
    c.cookies.set("limnos_ui_token", "wrong")
    assert c.get("/files").status_code == 403
    c.cookies.clear()
    first = c.get(f"/file?ref=data/table.csv&token={st.token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/file?ref=data%2Ftable.csv"
    assert re.search(r"limnos_ui_token=[^;]+; HttpOnly; Path=/; SameSite=strict", first.headers["set-cookie"], re.I)
    assert c.get("/files").status_code == 200 and "data/table.csv" in c.get("/files").text  # the cookie does it now


def test_a_foreign_host_header_is_refused_on_loopback(small: limnos.Lake) -> None:
    c, _ = client(small, allowed_hosts={"127.0.0.1", "localhost"})
    assert c.get("/files").status_code == 200
    rebound = c.get("/files", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400 and "data/table.csv" not in rebound.text


def test_every_write_needs_edits_allowed_and_the_csrf_token(small: limnos.Lake) -> None:
    forms = {"/file/meta": {"ref": "data/table.csv", "key": "k", "value": "v"},
             "/file/unset": {"ref": "data/table.csv", "key": "rows"},
             "/file/lock": {"ref": "data/table.csv"},
             "/ds/save": {"name": "x", "dataset": "d"}}
    read_only, st = client(small)
    app_posts = {r.path for r in read_only.app.routes if "POST" in getattr(r, "methods", set())}
    assert app_posts == set(forms)  # a new write route must be added here, and so checked
    editing, est = client(small, allow_edit=True)
    for path, form in forms.items():
        assert read_only.post(path, data={**form, "csrf": st.csrf}).status_code == 403
        assert editing.post(path, data=form).status_code == 403
        assert editing.post(path, data={**form, "csrf": "x" + est.csrf}).status_code == 403
        other_site = editing.post(path, data={**form, "csrf": est.csrf}, headers={"Origin": "http://evil.example"})
        assert other_site.status_code == 403
    file = small.get("data/table.csv")
    assert file.metadata == {"rows": 3} and not small.is_locked(file) and small.datasets() == []


def test_an_allowed_edit_is_a_commit_typed_as_the_key_wants(small: limnos.Lake) -> None:
    c, st = client(small, allow_edit=True)
    ok = c.post("/file/meta", data={"ref": "data/table.csv", "key": "rows", "value": "7", "type": "auto", "csrf": st.csrf},
                follow_redirects=False)
    assert ok.status_code == 303
    assert small.get("data/table.csv").metadata == {"rows": 7}
    wrong = c.post("/file/meta", data={"ref": "data/table.csv", "key": "rows", "value": "many", "type": "auto",
                                       "csrf": st.csrf})
    assert wrong.status_code == 400 and "rows" in wrong.text
    with pytest.raises(SchemaError):  # the same error the library raises for that value
        small.set_metadata("data/table.csv", {"rows": "many"})
    bad_type = c.post("/file/meta", data={"ref": "data/table.csv", "key": "n", "value": "x", "type": "int", "csrf": st.csrf})
    assert bad_type.status_code == 400 and "is not a int value" in bad_type.text
    assert small.get("data/table.csv").metadata == {"rows": 7}
    locked = c.post("/file/lock", data={"ref": "data/table.csv", "csrf": st.csrf}, follow_redirects=False)
    assert locked.status_code == 303 and small.is_locked("data/table.csv")
    history = small.query('name == "data/table.csv"', latest=True).files()
    assert history[0].metadata == {"rows": 7}


# ---------------------------------------------------------------- escaping
def test_names_and_values_are_escaped_and_controls_shown(small: limnos.Lake) -> None:
    hostile = '<script>alert("x")</script>'
    with small.create("evil/" + hostile + ".txt", metadata={"note": '"><img src=x onerror=alert(1)>\u202egnp.exe'}) as w:
        w.write_text("<html><script>alert(2)</script></html>")
    c, _ = client(small)
    for path in ("/files", "/files?prefix=evil/", "/file?ref=evil/" + hostile + ".txt"):
        html = c.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    page = c.get("/file?ref=evil/" + hostile + ".txt").text
    assert '<span class="ctl">\\u202e</span>' in page and "\u202e" not in page
    download = c.get("/file/download?ref=evil/" + hostile + ".txt")
    assert download.headers["content-type"] == "application/octet-stream"
    # the base name after the last "/" (here inside "</script>"), percent-encoded
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''script%3E.txt"
    assert download.content == b"<html><script>alert(2)</script></html>"
    assert str(show("a\u2066b\x07")) == '<bdi>a<span class="ctl">\\u2066</span>b<span class="ctl">\\u0007</span></bdi>'


def test_every_response_carries_a_strict_csp(small: limnos.Lake) -> None:
    assert CSP.startswith("default-src 'none'; script-src 'self'; style-src 'self';") and "unsafe" not in CSP
    c, _ = client(small)
    for path in ("/files", "/file?ref=nope", "/static/app.css", "/api/lineage?ref=data/table.csv", "/steps"):
        r = c.get(path)
        assert r.headers["Content-Security-Policy"] == CSP
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    templates = Path(limnos.__file__).parent / "web" / "templates"
    for template in templates.glob("*.html"):  # no inline script or style anywhere
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert "style=" not in text and "<style" not in text and " on" + "click=" not in text, template.name


def test_no_url_reaches_the_file_system_except_through_the_lake(small: limnos.Lake, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    c, _ = client(small)
    for path in ("/static/../app.py", "/static/..%2f..%2fweb%2fapp.py", "/static/%2e%2e/app.py",
                 f"/file?ref={secret}", "/file?ref=../secret.txt", f"/file/download?ref={secret}",
                 "/file/download?ref=../../secret.txt", f"/file/image?ref={secret}"):
        r = c.get(path)
        assert r.status_code in (400, 404) and "top secret" not in r.text and "def create_app" not in r.text, path


# ------------------------------------------------------------------ pages
def test_the_files_listing_pages_by_cursor_through_every_name_once(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(123):
        (folder / f"f{i:03d}.txt").write_text(str(i))
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(folder), name="many", metadata={"even": True})
    with lake.create("many/f000.txt") as w:
        w.write_text("second version")
    c, _ = client(lake)
    for start, expected in (("/files?prefix=many/", 123), ("/files?q=size+>+0", 123), ("/files?all=true", 124)):
        seen: list[str] = []
        url: str | None = start
        pages = 0
        while url:
            html = c.get(url).text
            seen += re.findall(r'<td class="name"><a href="[^"]+"><bdi>([^<]+)</bdi>', html)
            nxt = re.search(r'<a class="next" href="([^"]+)"', html)
            url = nxt.group(1).replace("&amp;", "&") if nxt else None
            pages += 1
        assert pages == 3 and len(seen) == expected, start
        assert seen == sorted(seen)
        assert len(set(seen)) == 123  # every version only with all=true: f000 twice


def test_a_file_page_shows_metadata_history_and_a_version_diff(small: limnos.Lake) -> None:
    before = dt.datetime.now(dt.timezone.utc)
    small.set_metadata("data/table.csv", {"rows": 4, "owner": "ana"})
    with small.create("data/table.csv", metadata={"rows": 5}) as w:
        w.write_text("a,b\n1,2\n3,4\n")
    c, _ = client(small)
    page = c.get("/file?ref=data/table.csv&a=1&b=2").text
    assert re.search(r"<tr class=\"removed\"><td class=\"k\"><bdi>owner</bdi></td><td>removed</td>", page)
    assert re.search(r"<tr class=\"changed\"><td class=\"k\"><bdi>rows</bdi></td><td>changed</td>"
                     r"<td class=\"v\"><bdi>4</bdi></td><td class=\"v\"><bdi>5</bdi></td>", page)
    then = c.get("/file?ref=data/table.csv@1&as_of=" + before.isoformat().replace("+", "%2B")).text
    assert re.search(r'<td class="k"><bdi>rows</bdi></td><td class="v"><bdi>3</bdi></td>', then)
    assert "<th>a</th>" in page.replace("<bdi>", "").replace("</bdi>", "")  # the CSV preview


def test_gallery_thumbnails_are_reencoded_and_cached_under_the_lake_state(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (640, 320), (200, 30, 30)).save(folder / "red.png")
    (folder / "fake.png").write_text("<svg onload=alert(1)></svg>")
    lake = limnos.init(str(tmp_path / "lake"))
    lake.add(str(folder), name="imgs")
    ds = lake.datasource("imgs", "imgs", scan=True)
    c, _ = client(lake)
    gallery = c.get("/ds?name=imgs").text
    assert gallery.count('<figure class="dp">') == 2
    thumb = c.get("/ds/thumb?name=imgs&path=red.png")
    assert thumb.headers["content-type"] == "image/png"
    import io

    assert Image.open(io.BytesIO(thumb.content)).size == (256, 128)
    cached = list((Path(lake.state_dir) / "thumbnails").rglob("*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == thumb.content
    assert c.get("/ds/thumb?name=imgs&path=fake.png").status_code == 415  # never served as it is stored
    assert c.get("/ds/thumb?name=imgs&path=missing.png").status_code == 404
    assert ds.count() == 2


def test_steps_page_lists_failures_with_their_error(small: limnos.Lake) -> None:
    @small.step
    def breaks(n: int) -> int:
        raise ValueError(f"<b>bad</b> input {n}")

    with pytest.raises(ValueError):
        breaks(3)
    html = client(small)[0].get("/steps").text
    assert "&lt;b&gt;bad&lt;/b&gt; input 3" in html and '<span class="state failed">failed</span>' in html


# --------------------------------------------------------------- launching
def test_lake_ui_serves_on_loopback_and_is_reused(small: limnos.Lake) -> None:
    handle = small.ui()
    try:
        assert handle.url.startswith("http://127.0.0.1:") and handle.url.endswith("/files")
        with urllib.request.urlopen(handle.url) as r:
            assert r.status == 200 and b"data/table.csv" in r.read()
        again = small.ui("/steps")
        assert again.base_url == handle.base_url and again.url.endswith("/steps")
        assert '<iframe src="http://127.0.0.1:' in handle._repr_html_()
        ds = small.datasource("tables", "data", scan=True)
        with ds.metadata_context() as ctx:
            ctx.update_metadata("table.csv", {"split": "train"})
        view = ds[ds["split"] == "train"].as_of(dt.datetime(2030, 1, 2))
        shown = view.visualize()
        assert shown.base_url == handle.base_url
        assert shown.url.endswith("/ds?name=tables&q=split+%3D%3D+%22train%22&as_of=2030-01-02T00%3A00%3A00%2B00%3A00")
        with urllib.request.urlopen(shown.url) as r:
            assert b"table.csv</bdi></a>" in r.read()
        with urllib.request.urlopen(ds[ds["split"] == "test"].visualize().url) as r:
            assert b"table.csv</bdi></a>" not in r.read()
    finally:
        handle.stop()
    assert not handle.running


def test_limnos_ui_command_prints_the_url_and_serves(small: limnos.Lake) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "limnos", "--lake", small.path, "ui", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(limnos.__file__).parent.parent)})
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/files", url)
        with urllib.request.urlopen(url, timeout=30) as r:
            assert b"data/table.csv" in r.read()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "read-only" in err and "token" not in err


def _readme_blocks(kind: str) -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "docs" / "ui.md").read_text(encoding="utf-8")
    return re.findall(rf"```{kind}\n(.*?)```", text, re.S)


@pytest.mark.slow  # the demo, and a server in a subprocess
def test_the_ui_page_examples_run_as_written(tmp_path: Path) -> None:
    """The section's Python block on a lake with a datasource, then its shell block (the demo's lake path filled in)."""
    [python] = _readme_blocks("python")
    lake = limnos.init(str(tmp_path / "lake"))
    folder = tmp_path / "shapes"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not really")
    lake.add(str(folder), name="shapes")
    ds = lake.datasource("shapes", "shapes", scan=True)
    with ds.metadata_context() as ctx:
        ctx.update_metadata("a.png", {"colour": "blue"})
    scope: dict[str, Any] = {"lake": lake, "ds": ds}
    exec(python, scope)
    assert "/ds?name=shapes&q=colour" in scope["shown"].url and not scope["server"].running

    [shell] = _readme_blocks("bash")
    demo_line, ui_line = (line.split("#")[0].split() for line in shell.strip().splitlines())
    env = {**os.environ, "PYTHONPATH": str(Path(limnos.__file__).parent.parent), "TMPDIR": str(tmp_path),
           "BROWSER": "true"}  # --open runs `true` instead of a browser
    cmd = [sys.executable, "-m", "limnos"]
    made = subprocess.run(cmd + demo_line[1:], capture_output=True, text=True, env=env, timeout=300, check=True)
    [lake_path] = {str(p) for p in tmp_path.glob("limnos-demo-*/lake")}
    assert lake_path in made.stdout
    args = [lake_path if a.startswith("/tmp/limnos-demo-") else a for a in ui_line[1:]]
    proc = subprocess.Popen(cmd + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        for page in ("/files", "/lineage?ref=clean/sales.parquet", "/datasources", "/ds?name=shapes", "/steps"):
            with urllib.request.urlopen(url.replace("/files", page), timeout=60) as r:
                assert r.status == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
