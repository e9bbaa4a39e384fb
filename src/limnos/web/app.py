"""The ``limnos ui`` FastAPI application: five server-rendered pages over one lake, and their few writes.

Pages: ``/files`` (listing, query, paging), ``/file?ref=`` (fields,
metadata and its history, provenance, versions and their diff, preview,
download), ``/lineage?ref=`` (an interactive graph; ``/api/lineage`` feeds
it), ``/datasources`` and ``/ds?name=`` (a gallery with thumbnails, the query
bar, saved datasets, ``as_of``), and ``/steps``. Every value from the lake
reaches HTML through Jinja2's autoescaping (and the :func:`show` filter,
which also makes control and bidi characters visible), and every file is read
through the lake (refs in query strings, never a path on disk).

Writes (``--allow-edit`` only, CSRF-checked in :mod:`.security`) are ordinary
lake calls inside a run named ``limnos ui``, so they are commits with the
UI's user as provenance.
"""

from __future__ import annotations

import os
import threading
import unicodedata
import urllib.parse
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # FastAPI reads the route signatures' annotations at run time
from starlette.responses import Response

from ..errors import FileNotFound, LimnosError, WriteRefused
from . import preview as previews
from . import views
from .security import csrf_ok, guard

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..lake import Lake
    from .server import Settings

HERE = os.path.dirname(os.path.abspath(__file__))
#: HTTP status of each error the pages show
STATUS = {FileNotFound: 404}


def show(text: Any) -> Any:
    """Escape ``text`` for HTML and make invisible controls visible (``\\u202e``), isolated in ``<bdi>``.

    A name may hold anything the lake allows: markup is escaped by Jinja2's
    rules, and a bidi override cannot reorder the text around it.
    """
    from markupsafe import Markup, escape

    out = []
    for ch in "" if text is None else str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in "\t\n":
            out.append(Markup('<span class="ctl">\\u{:04x}</span>').format(ord(ch)))
        else:
            out.append(escape(ch))
    return Markup("<bdi>") + Markup("").join(out) + Markup("</bdi>")


def href(page: str, **params: Any) -> str:
    """A link to a page of the app with its query parameters."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None and v != "" and v is not False})
    return f"/{page}" + (f"?{query}" if query else "")


def human_size(n: int | None) -> str:
    """1536 -> ``1.5 KiB``."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def when(value: Any) -> str:
    """A time as ``2024-05-01 12:00:03 UTC``."""
    if value is None:
        return ""
    try:
        return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))
    except AttributeError:
        return str(value)


def create_app(lake: Lake, settings: Settings) -> FastAPI:
    """The web app over ``lake`` (served by :func:`limnos.web.server.launch`, or a TestClient)."""
    import jinja2
    from fastapi import FastAPI
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
    from starlette.staticfiles import StaticFiles

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(fields_first=views.fields_first, show=show, size=human_size, when=when, text=views.value_text,
                       type_name=views.type_name)
    env.globals.update(href=href, settings=settings, state=views.local_state)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.middleware("http")(guard(settings))
    app.mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static")
    edit_lock = threading.Lock()

    def page(template: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("nav", template.split(".")[0])
        html = env.get_template(template).render(request=request, csrf=settings.csrf, lake_path=lake.path, **context)
        return HTMLResponse(html, status_code=status)

    def failed(request: Request, exc: LimnosError, title: str = "Something is wrong") -> HTMLResponse:
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        return page("error.html", request, status, title=title, message=exc.message, hint=exc.hint or "", nav="")

    @app.exception_handler(LimnosError)
    async def limnos_error(request: Request, exc: LimnosError) -> Response:
        return failed(request, exc)

    @app.get("/")
    def root() -> Response:
        return RedirectResponse("/files", status_code=303)

    # ---------------------------------------------------------- files
    @app.get("/files")
    def files(request: Request, prefix: str = "", q: str = "", all: bool = False, after: str = "",
              after_version: int = 0, as_of: str = "") -> Response:
        when_ = views.parse_as_of(as_of)
        try:
            listing = views.files_page(lake, prefix, q, all, after, after_version, when_)
        except LimnosError as exc:
            return page("files.html", request, 400, files=[], next_url=None, prefix=prefix, q=q, all=all,
                        as_of=as_of, error=str(exc.message), hint=exc.hint or "", first=not after)
        next_url = href("files", prefix=prefix, q=q, all=all, as_of=as_of, **listing.next_after) if listing.next_after else None
        return page("files.html", request, files=listing.items, next_url=next_url, prefix=prefix, q=q, all=all,
                    as_of=as_of, error="", hint="", first=not after)

    @app.get("/file")
    def file(request: Request, ref: str, a: int = 0, b: int = 0, as_of: str = "", msg: str = "") -> Response:
        f = lake.get(ref)
        history = lake.history(f.name)
        diff = None
        if a and b:
            by_version = {h.version: h for h in history}
            if a in by_version and b in by_version:
                diff = (by_version[a], by_version[b], views.metadata_diff(by_version[a], by_version[b]))
        when_ = views.parse_as_of(as_of)
        then = views.metadata_as_of(lake, f, when_) if when_ is not None else None
        record = f.step
        return page("file.html", request, nav="files", f=f, history=history, diff=diff, as_of=as_of,
                    then=then, meta=views.metadata_rows(f), run=views.provenance(f), step=record,
                    inputs=f.inputs, preview=previews.preview(f), locked=lake.is_locked(f), msg=msg)

    @app.get("/file/download")
    def download(ref: str) -> Response:
        from starlette.responses import StreamingResponse

        f = lake.get(ref)
        stream = f.open()

        def chunks() -> Any:
            with stream:
                while block := stream.read(1 << 20):
                    yield block

        base = os.path.basename(f.name) or "download"
        disposition = f"attachment; filename*=UTF-8''{urllib.parse.quote(base, safe='')}"
        return StreamingResponse(chunks(), media_type="application/octet-stream",
                                 headers={"Content-Disposition": disposition, "Content-Length": str(f.size)})

    @app.get("/file/image")
    def file_image(ref: str, size: int = previews.PREVIEW) -> Response:
        f = lake.get(ref)
        data = previews.file_thumbnail(lake, f, max(16, min(size, 2048)))
        if data is None:
            return JSONResponse({"error": "not an image"}, status_code=415)
        from starlette.responses import Response as Raw

        return Raw(data, media_type="image/png")

    # -------------------------------------------------------- lineage
    @app.get("/lineage")
    def lineage(request: Request, ref: str = "") -> Response:
        f = lake.get(ref) if ref else None
        return page("lineage.html", request, f=f)

    @app.get("/api/lineage")
    def lineage_json(ref: str, direction: str = "both", depth: int = 2) -> Response:
        graph = lake.lineage(ref, direction=direction, depth=max(1, min(depth, 50)))
        return JSONResponse(views.lineage_elements(lake, graph))

    # ---------------------------------------------------- datasources
    @app.get("/datasources")
    def datasources(request: Request) -> Response:
        sources = lake.datasources()
        counts = {ds.name: ds.count() for ds in sources} if len(sources) <= 50 else {}
        return page("datasources.html", request, sources=sources, counts=counts, datasets=lake.datasets())

    @app.get("/ds")
    def datasource(request: Request, name: str = "", q: str = "", after: str = "", as_of: str = "",
                   dataset: str = "", msg: str = "", n: int = views.GALLERY_PAGE) -> Response:
        context: dict[str, Any] = dict(nav="datasources", name=name, q=q, as_of=as_of, dataset=dataset, msg=msg,
                                       points=[], next_url=None, fields={}, error="", hint="", scanning=False,
                                       first=not after, ds=None)
        try:
            ds = views.datasource_view(lake, name, q, views.parse_as_of(as_of), dataset)
            context.update(ds=ds, name=ds.name, fields=ds.fields)
            gallery = views.gallery_page(ds, after, max(1, min(n, 500)))
        except LimnosError as exc:
            if context["ds"] is None and not q:
                raise
            context.update(error=exc.message, hint=exc.hint or "")
            return page("datasource.html", request, 400, **context)
        size = n if n != views.GALLERY_PAGE else None
        next_url = (href("ds", name=name, q=q, as_of=as_of, dataset=dataset, n=size, **gallery.next_after)
                    if gallery.next_after else None)
        context.update(points=gallery.items, next_url=next_url, scanning=gallery.extra["scanning"])
        return page("datasource.html", request, **context)

    @app.get("/ds/thumb")
    def datapoint_thumb(name: str, path: str) -> Response:
        from starlette.responses import Response as Raw

        ds = lake.datasource(name, scan=False)
        point = views.datapoint(ds, path)
        if point is None or not views.is_image(path):
            return Raw(b"", status_code=404)
        data = previews.thumbnail(lake, point.hash or point.fingerprint or point.file_id, point.open)
        if data is None:
            return Raw(b"", status_code=415)
        return Raw(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    # ---------------------------------------------------------- steps
    @app.get("/steps")
    def steps(request: Request) -> Response:
        recent = list(reversed(lake.steps(limit=100)))
        failed_ = list(reversed(lake.steps(failed=True, limit=50)))
        outputs = {o["file_id"] for s in recent for o in s.outputs}
        names = {}
        for file_id in outputs:
            try:
                got = lake.get(file_id)
                names[file_id] = got.ref
            except FileNotFound:
                names[file_id] = ""
        return page("steps.html", request, recent=recent, failed=failed_, stale=lake.stale(), names=names)

    # --------------------------------------------------------- writes
    async def writable_form(request: Request, action: str) -> Any:
        """The form of a write, once edits are allowed and its CSRF token is right; else an error page."""
        if not settings.allow_edit:
            raise WriteRefused(f"this server is read-only; {action} needs edits allowed: "
                               "lake.ui(allow_edit=True), or the --allow-edit option of limnos ui")
        form = await request.form()
        if not csrf_ok(settings, form.get("csrf")):
            raise WriteRefused("refused: the form's CSRF token is missing or wrong; reload the page and try again")
        return form

    @app.exception_handler(WriteRefused)
    async def write_refused(request: Request, exc: WriteRefused) -> Response:
        return page("error.html", request, 403, title="Not allowed", message=exc.message, hint="", nav="")

    def back_to_file(ref: str, msg: str) -> Response:
        return RedirectResponse(href("file", ref=ref, msg=msg), status_code=303)

    @app.post("/file/meta")
    async def set_meta(request: Request) -> Response:
        form = await writable_form(request, "editing metadata")
        ref, key, raw, kind = (str(form.get(k) or "") for k in ("ref", "key", "value", "type"))
        from .edits import typed_value

        with edit_lock:
            value = typed_value(raw, kind or "auto")
            with lake.run(name="limnos ui"):
                f = lake.set_metadata(ref, {key: value})
        return back_to_file(f.ref, f"set {key} on {f.ref}")

    @app.post("/file/unset")
    async def unset_meta(request: Request) -> Response:
        form = await writable_form(request, "removing metadata")
        ref, key = str(form.get("ref") or ""), str(form.get("key") or "")
        with edit_lock, lake.run(name="limnos ui"):
            f = lake.unset_metadata(ref, [key])
        return back_to_file(f.ref, f"removed {key} from {f.ref}")

    @app.post("/file/lock")
    async def lock(request: Request) -> Response:
        form = await writable_form(request, "locking files")
        ref, action = str(form.get("ref") or ""), str(form.get("action") or "lock")
        with edit_lock, lake.run(name="limnos ui"):
            f = lake.unlock(ref) if action == "unlock" else lake.lock(ref)
        return back_to_file(f.ref, f"{'unlocked' if action == 'unlock' else 'locked'} {f.ref}")

    @app.post("/ds/save")
    async def save_dataset(request: Request) -> Response:
        form = await writable_form(request, "saving datasets")
        name, q, as_of, dataset = (str(form.get(k) or "") for k in ("name", "q", "as_of", "dataset"))
        with edit_lock, lake.run(name="limnos ui"):
            ds = views.datasource_view(lake, name, q, views.parse_as_of(as_of))
            ds.save_dataset(dataset, pin=bool(as_of), overwrite=bool(form.get("overwrite")))
        return RedirectResponse(href("ds", name=name, q=q, as_of=as_of, msg=f"saved dataset {dataset}"), status_code=303)

    return app
