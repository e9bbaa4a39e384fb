"""``limnos ui``: a local web app to browse a lake, query it, see lineage and look at datasources.

FastAPI serves server-rendered Jinja2 pages with small JavaScript islands
(the lineage graph, a confirmation); the graph library is vendored under
``static/vendor/`` by ``make web-assets``. A client of the public Lake API,
as user code is. Start it with ``limnos ui``, ``lake.ui()`` or
``ds.visualize()``; :func:`launch` is what they call.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..datasources.source import Datasource
    from .server import UiServer

_running: dict[int, tuple[Any, UiServer, tuple[Any, ...]]] = {}
_lock = threading.Lock()


def launch(lake: Any, path: str = "/files", **options: Any) -> UiServer:
    """Serve the web app over ``lake`` in a background thread, opened on ``path`` (see :func:`.server.launch`).

    A server this process already runs for the same lake object, with the same
    options, is reused: ``ds.visualize()`` in a loop opens one server.
    """
    from .server import launch as start

    key = tuple(sorted((k, v) for k, v in options.items() if k != "open_browser"))
    with _lock:
        found = _running.get(id(lake))
        if found is not None and found[0] is lake and found[1].running and found[2] == key:
            handle = found[1].view(path)
            if options.get("open_browser"):
                import webbrowser

                webbrowser.open(handle.url)
            return handle
        handle = start(lake, path, **options)
        _running[id(lake)] = (lake, handle, key)
        return handle


def datasource_path(ds: Datasource) -> str:
    """The gallery page of a datasource view: its query as text (when it has one that reads back the same) and as_of."""
    from ..catalog.expressions import describe
    from ..datasources.text import parse

    params = {"name": ds.name}
    if ds.dataset:
        params["dataset"] = ds.dataset
    elif ds.query.where is not None:
        text = describe(ds.query.where)
        try:
            same = describe(parse(text)) == text  # it reads back as the same query
        except Exception:  # a value with no text form: the gallery opens unfiltered, as documented
            same = False
        if same:
            params["q"] = text
    if ds.query.as_of is not None and not ds.dataset:
        params["as_of"] = ds.query.as_of.isoformat()
    return "/ds?" + urllib.parse.urlencode(params)


__all__ = ["datasource_path", "launch"]
