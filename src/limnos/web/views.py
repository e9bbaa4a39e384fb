"""What each page of ``limnos ui`` shows, read through the public Lake API (no SQL, no templates).

Every list is one page at a time with a keyset cursor (the last name, or name
and version, or datapoint path, of the page before), so the second page of a
million files costs what the first does: ``lake.iter_ls(after=...)`` for a
plain listing, a query narrowed to ``name > cursor`` for a filtered one, and
``ds["path"] > cursor`` for a datasource.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from ..times import parse_timestamp

if TYPE_CHECKING:
    from ..core.files import File
    from ..datasources.results import Datapoint
    from ..datasources.source import Datasource
    from ..lake import Lake
    from ..ops.lineage import Lineage

#: rows per page of the files listing, and datapoints per page of a gallery
PAGE = 50
GALLERY_PAGE = 48


@dataclass
class Page:
    """One page of a listing: its items and the cursor of the next page (None on the last page)."""

    items: list[Any]
    next_after: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_as_of(text: str | None) -> dt.datetime | None:
    """An ``as_of`` form value (ISO 8601, naive is UTC) as a datetime, or None when empty.

    Raises:
        QueryError: text that is no time.
    """
    if not text or not text.strip():
        return None
    try:
        when = parse_timestamp(text.strip())
    except ValueError:
        raise QueryError(f"as of {text!r} is no time; write it like 2024-05-01T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


# ------------------------------------------------------------------ files
def files_page(lake: Lake, prefix: str = "", query: str = "", all_versions: bool = False,
               after: str = "", after_version: int = 0, as_of: dt.datetime | None = None,
               size: int = PAGE) -> Page:
    """A page of the files listing: the latest version of each name (or every version), by name.

    Without a query or a time it is :meth:`Lake.iter_ls` resumed after the cursor;
    otherwise :meth:`Lake.query` (the query language of ``limnos ds query``).
    """
    if not query.strip() and not all_versions and as_of is None:
        files = list(itertools.islice(lake.iter_ls(prefix, page=size + 1, after=after or None), size + 1))
    else:
        fields = lake.files
        result = lake.query(query.strip() or None, latest=not all_versions)
        if prefix:
            result = result.where(fields["name"].startswith(prefix))
        if after:
            past = fields["name"] > after
            if all_versions:
                past = past | ((fields["name"] == after) & (fields["version"] > after_version))
            result = result.where(past)
        if as_of is not None:
            result = result.as_of(as_of)
        files = result.limit(size + 1).files()
    more = len(files) > size
    files = files[:size]
    cursor = {"after": files[-1].name, "after_version": str(files[-1].version)} if more and files else None
    return Page(files, cursor)


def local_state(file: File) -> str:
    """``local``, ``remote`` (on the lake's store or a remote, not on this machine) or ``reference`` (outside)."""
    if file.kind != "object":
        return "reference"
    return "local" if file.is_local else "remote"


def provenance(file: File) -> dict[str, Any]:
    """The run that made a file, ready to show: who, where, which code; the argv is scrubbed by limnos already."""
    run = file.run or {}
    remote = run.get("git_remote") or ""
    commit = run.get("git_commit") or ""
    return {**run, "git_link": git_link(remote, commit)}


def git_link(remote: str, commit: str) -> str | None:
    """An https link to a commit on GitHub, GitLab or Bitbucket; None for other remotes (never another scheme)."""
    if not remote or not commit:
        return None
    url = remote.strip()
    if url.startswith("git@") and ":" in url:  # git@github.com:owner/repo.git
        host, _, repo = url[4:].partition(":")
        url = f"https://{host}/{repo}"
    if not url.startswith("https://"):
        return None
    url = url.removesuffix(".git").rstrip("/")
    host = url.split("/")[2]
    if not any(h in host for h in ("github", "gitlab", "bitbucket")):
        return None
    if not all(c.isalnum() for c in commit):
        return None
    return f"{url}/commit/{commit}"


def metadata_rows(file: File) -> list[tuple[str, str, str]]:
    """``(key, type, value text)`` of a file's metadata, by key."""
    return [(k, type_name(v), value_text(v)) for k, v in sorted(file.metadata.items())]


def type_name(value: Any) -> str:
    """The metadata type of a value, as the catalog names it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, (bytes, bytearray)):
        return "blob"
    if isinstance(value, (dict, list)):
        return "json"
    return "str"


def value_text(value: Any) -> str:
    """A metadata value as text (JSON compact, times ISO 8601)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return str(value)


def metadata_diff(a: File, b: File) -> list[tuple[str, str, str, str]]:
    """``(key, change, value in a, value in b)`` for each key that differs; change is added, removed or changed."""
    out = []
    for key in sorted(set(a.metadata) | set(b.metadata)):
        va, vb = a.metadata.get(key), b.metadata.get(key)
        if key not in a.metadata:
            out.append((key, "added", "", value_text(vb)))
        elif key not in b.metadata:
            out.append((key, "removed", value_text(va), ""))
        elif value_text(va) != value_text(vb) or type_name(va) != type_name(vb):
            out.append((key, "changed", value_text(va), value_text(vb)))
    return out


def metadata_as_of(lake: Lake, file: File, when: dt.datetime) -> dict[str, Any] | None:
    """The file's metadata as it was at ``when`` (None: the file version did not exist yet)."""
    fields = lake.files
    found = lake.query(fields["id"] == file.id).as_of(when).files()
    return found[0].metadata if found else None


# ---------------------------------------------------------------- lineage
def lineage_elements(lake: Lake, graph: Lineage) -> dict[str, Any]:
    """A lineage graph as cytoscape.js elements: nodes (with a label, a kind and a link) and edges."""
    nodes = []
    for key, node in graph.nodes.items():
        kind = node["type"]
        data: dict[str, Any] = {"id": key, "kind": kind, "root": key == graph.root}
        if kind == "file":
            ref = f"{node['name']}@{node['version']}"
            data.update(label=ref, ref=ref, removed=bool(node.get("removed")),
                        parents=len(graph.parents(key)), children=len(graph.children(key)))
        elif kind == "step":
            function = str(node.get("function") or "")
            data.update(label=f"step {function.rsplit('.', 1)[-1]}", function=function,
                        code=node.get("permalink") or node.get("source_file") or "")
        else:
            data.update(label=node.get("label") or f"run {node['id'][-8:]}", user=node.get("user") or "")
        nodes.append({"data": data})
    edges = [{"data": {"id": f"{s}>{d}", "source": s, "target": d}} for s, d in graph.edges]
    return {"root": graph.root, "nodes": nodes, "edges": edges}


# ------------------------------------------------------------ datasources
def datasource_view(lake: Lake, name: str, query: str = "", as_of: dt.datetime | None = None,
                    dataset: str = "") -> Datasource:
    """The datasource ``name`` (or the saved ``dataset``), narrowed to ``query`` and seen ``as_of``."""
    from ..datasources.text import parse

    ds = lake.dataset(dataset) if dataset else lake.datasource(name, scan=False)
    if query.strip():
        ds = ds[parse(query)]
    if as_of is not None:
        ds = ds.as_of(as_of)
    return ds


def gallery_page(ds: Datasource, after: str = "", size: int = GALLERY_PAGE) -> Page:
    """A page of datapoints by path after the cursor, and the datasource's fields."""
    import warnings

    view = ds[ds["path"] > after] if after else ds
    with warnings.catch_warnings():  # a scan still running: the page says so itself
        warnings.simplefilter("ignore")
        points: list[Datapoint] = list(view.head(size + 1))
    more = len(points) > size
    points = points[:size]
    return Page(points, {"after": points[-1].path} if more and points else None,
                {"scanning": ds.scanning or ds.info.scanned_at is None})


#: fields a scan fills in by itself: a gallery card shows the datasource's own fields before them
AUTOMATIC_FIELDS = ("content_type", "width", "height", "modified")


def fields_first(metadata: dict[str, Any]) -> list[tuple[str, Any]]:
    """A datapoint's fields for its card: its own fields by name, then the automatic ones, then ``lake.*``."""
    def rank(key: str) -> tuple[int, str]:
        return (2 if key.startswith("lake.") else 1 if key in AUTOMATIC_FIELDS else 0, key)

    return [(k, metadata[k]) for k in sorted(metadata, key=rank)]


def datapoint(ds: Datasource, path: str) -> Datapoint | None:
    """The datapoint at ``path`` (one indexed lookup), or None."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = list(ds[ds["path"] == path].head(1))
    return found[0] if found else None


def is_image(path: str) -> bool:
    """Whether a name looks like an image Pillow reads (by its extension)."""
    return path.lower().rsplit(".", 1)[-1] in IMAGE_EXTENSIONS


IMAGE_EXTENSIONS = {"png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff", "ppm", "pgm"}
