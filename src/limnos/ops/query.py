"""Querying files: one language for files and datapoints.

``lake.files`` is a view of every file version with the datasource query
language: ``files["user"] == "ana"`` builds a condition, ``files[cond]``
narrows the view, and ``select``, ``order_by``, ``limit`` and ``as_of`` work
as on a datasource. ``lake.query(...)`` takes the same conditions, the
``limnos query`` / ``limnos ds query`` text (:func:`parse_query`), or
``key=value`` equalities as a shorthand, and returns a :class:`Result`: a lazy
list of Files that also behaves like a DataFrame where that is natural
(``len``, ``head``, ``result["column"]``, a table in a notebook).

Automatic fields (:data:`~limnos.catalog.filequery.FILE_FIELDS`: name,
version, size, created_at, user, host, script, git_commit, step...) are
queryable by their names; every other name is a metadata key. The condition
compiles to one SELECT in :mod:`limnos.catalog.filequery`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from ..catalog import values as metavalues
from ..catalog.expressions import And, Condition, Leaf, Query, describe
from ..catalog.filequery import EXTRA_FIELDS, FILE_FIELDS, count_files, select_files
from ..core.files import File
from ..datasources.query import Field
from ..datasources.text import parse
from ..errors import FieldNotFound, MetadataError, QueryError, require_extra

if TYPE_CHECKING:
    import pandas as pd

    from ..core.base import LakeBase

#: the columns every :attr:`Result.dataframe` starts with, before the metadata keys
BASE_COLUMNS = ["name", "version", "id", "hash", "size", "created_at", "user"]
_V = TypeVar("_V", bound="_Filtered")
#: characters that make ``lake.files[text]`` a textual query rather than a field name
_QUERY_CHARS = frozenset(" =<>!()[]`\"'")


def parse_query(text: str) -> Condition:
    """A textual query (``user == "ana" and ticket startswith "abc"``) as a condition.

    The syntax of ``limnos query`` and ``limnos ds query`` (see
    :mod:`limnos.datasources.text`); the result goes to ``lake.query(cond)``,
    ``lake.files[cond]`` or ``ds[cond]``.

    Raises:
        QuerySyntaxError: the text does not parse; the message points at the spot.
    """
    return parse(text)


def equalities(equals: Mapping[str, Any]) -> Condition | None:
    """``key=value`` pairs as one condition (every key equal; ``key=None``: the file has no value), None for none.

    Raises:
        MetadataError: a key could never name metadata, or a value of a metadata key could never be stored.
    """
    for key, value in equals.items():
        metavalues.validate_key(key, reserved_ok=True)  # never let a non-str or NUL key reach the database
        if key not in FILE_FIELDS and value is not None:
            metavalues.validate_metadata({key: value})
            if metavalues.infer_type(value) == "int" and not metavalues.INT_MIN <= int(value) <= metavalues.INT_MAX:
                raise MetadataError(f"no metadata value can equal {value}: ints are stored in 64 bits", key=key)
    leaves = [Leaf(k, "is_null") if v is None else Leaf(k, "eq", v) for k, v in equals.items()]
    if not leaves:
        return None
    return leaves[0] if len(leaves) == 1 else And(tuple(leaves))


def as_condition(expr: str | Condition) -> Condition:
    """A query as a condition: text is parsed, a condition kept.

    Raises:
        QuerySyntaxError: text that does not parse.
        QueryError: neither text nor a condition.
    """
    if isinstance(expr, str):
        return parse(expr)
    if isinstance(expr, Condition):
        return expr
    if isinstance(expr, Field):
        raise QueryError(f"a field alone is no query: compare it, as in files[{expr.name!r}] == value")
    raise QueryError(f"a query is text or a condition, not {type(expr).__name__}")


def query_files(lake: LakeBase, expr: str | Condition | Mapping[str, Any] | None, latest: bool,
                equals: Mapping[str, Any]) -> Result:
    """``lake.query(expr, latest=..., **equals)``: text, a condition or a dict, and equalities, all of which must hold.

    Raises:
        QuerySyntaxError: query text does not parse.
        QueryError: ``expr`` is none of these.
        MetadataError: an equality's key could never name metadata, or its value could never be stored.
    """
    merged = dict(equals)
    if isinstance(expr, Mapping):
        merged = {**expr, **equals}
        expr = None
    parts = [as_condition(expr)] if expr is not None else []
    pairs = equalities(merged)
    parts += [pairs] if pairs is not None else []
    where = None if not parts else parts[0] if len(parts) == 1 else And(tuple(parts))
    return Result(lake, Query(where), latest=latest)


class _Filtered:
    """What a file view and a result share: the lake, the query and the latest-only flag."""

    def __init__(self, lake: LakeBase, query: Query | None = None, latest: bool = False) -> None:
        self._lake = lake
        self.query = query or Query()
        self._latest = latest

    def _view(self: _V, query: Query, latest: bool | None = None) -> _V:
        return type(self)(self._lake, query, self._latest if latest is None else latest)

    def fields(self) -> dict[str, str]:
        """Every field a query can name, with its type: the automatic fields, then the metadata keys."""
        return {**FILE_FIELDS, **{k: v for k, v in self._lake.catalog.key_types().items() if k not in FILE_FIELDS}}

    def _types(self, names: Iterable[str]) -> dict[str, str]:
        """The metadata types of ``names``; FieldNotFound for a name that is neither a field nor a key."""
        known = self.fields()
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.6)
                hint = (f"; did you mean {', '.join(repr(c) for c in close)}?" if close else
                        f"; the fields are {', '.join(list(known)[:30])}")
                raise FieldNotFound(f"no file has metadata key {name!r} and it is no automatic field{hint}", key=name)
        return {k: v for k, v in known.items() if k not in FILE_FIELDS}

    def where(self: _V, expr: str | Condition) -> _V:
        """This view narrowed to ``expr``: a condition, or query text (``'user == "ana"'``).

        Raises:
            QuerySyntaxError: text that does not parse.
            FieldNotFound: the condition names a field no file has.
        """
        cond = as_condition(expr)
        self._types(cond.fields())
        return self._view(self.query.and_where(cond))

    def select(self: _V, *fields: str) -> _V:
        """A view whose DataFrame holds only these fields (after name, version and id)."""
        self._types(fields)
        return self._view(replace(self.query, select=tuple(fields)))

    def order_by(self: _V, field: str, desc: bool = False) -> _V:
        """A view ordered by ``field`` (missing values last), then by name and version; calls chain."""
        self._types([field])
        return self._view(replace(self.query, order=(*self.query.order, (field, bool(desc)))))

    def limit(self: _V, n: int) -> _V:
        """A view of at most ``n`` file versions (a smaller limit already set stays)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise QueryError(f"limit takes a count >= 0, not {n!r}")
        current = self.query.limit
        return self._view(replace(self.query, limit=n if current is None else min(n, current)))

    def as_of(self: _V, when: dt.datetime) -> _V:
        """A view of the files and metadata values as they were at ``when`` (naive means UTC)."""
        if not isinstance(when, dt.datetime):
            raise QueryError(f"as_of takes a datetime, not {type(when).__name__}")
        return self._view(replace(self.query, as_of=metavalues.to_utc(when)))

    def latest(self: _V) -> _V:
        """A view of only the newest version of each name (at ``as_of``, when set)."""
        return self._view(self.query, latest=True)

    def count(self) -> int:
        """How many file versions the view matches (respecting its limit), in one COUNT query."""
        return count_files(self._lake.catalog, self.query, self._types(self.query.fields()), self._latest)

    def _describe(self) -> str:
        return describe(self.query.where) + (", latest" if self._latest else "")


class FileView(_Filtered):
    """``lake.files``: every file version, narrowed with the datasource query language.

    >>> files = lake.files
    >>> files[(files["user"] == "ana") & files["ticket"].startswith("abc")].order_by("created_at").all()
    """

    def __getitem__(self, key: Any) -> Any:
        """``files["f"]``: a field to compare; ``files[condition]`` or ``files["text query"]``: a narrowed view."""
        if isinstance(key, str):
            if key in self.fields():
                return Field(key)
            if any(ch in key for ch in _QUERY_CHARS):
                return self.where(key)  # text with spaces or operators: a query, not a field name
            self._types([key])  # raises FieldNotFound, with close names
        if isinstance(key, Condition):
            return self.where(key)
        if isinstance(key, (list, tuple)) and all(isinstance(k, str) for k in key):
            return self.select(*key)
        raise QueryError(f"index lake.files with a field name or a condition, not {type(key).__name__}")

    def all(self) -> Result:
        """The file versions the view matches, as a :class:`Result`."""
        return Result(self._lake, self.query, self._latest)

    def head(self, n: int = 5) -> Result:
        """The first ``n`` file versions the view matches."""
        return self.limit(n).all()

    def __iter__(self) -> Iterator[File]:
        return iter(self.all())

    def __len__(self) -> int:
        return self.count()

    @property
    def dataframe(self) -> pd.DataFrame:
        """The matching files as a DataFrame (see :attr:`Result.dataframe`)."""
        return self.all().dataframe

    def __repr__(self) -> str:
        return f"<FileView {self._describe()}>"


class Result(_Filtered):
    """The files matching a query: a lazy list of Files that reads like a DataFrame.

    Iterate it, index it (``result[0]`` is a File, ``result["ticket"]`` a column),
    take its ``len``, ``head()`` it, or read it whole as :attr:`dataframe`. It
    runs when first used, then keeps its files; that is when an unknown key
    raises :class:`~limnos.errors.FieldNotFound` and a value of the wrong type
    :class:`~limnos.errors.SchemaError`. ``select``, ``order_by``, ``limit``,
    ``as_of`` and ``where`` return new results.
    """

    def __init__(self, lake: LakeBase, query: Query | None = None, latest: bool = False) -> None:
        """Hold a query; nothing runs until the result is first used."""
        super().__init__(lake, query, latest)
        self._files: list[File] | None = None
        self._extra: list[dict[str, Any]] = []
        #: the ids of the files of a result that had run before it was pickled: the worker keeps to them
        self._pinned: list[str] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the lake (its address), the query, and the ids of the files if the result has run."""
        ids = [f.id for f in self._files] if self._files is not None else self._pinned
        return (_unpickle_result, (self._lake, self.query, self._latest, ids))

    @property
    def is_latest(self) -> bool:
        """Whether only the newest version of each name matches."""
        return self._latest

    def _load(self) -> list[File]:
        """Run the query once; later calls return the same files."""
        if self._files is None:
            types = self._types(self.query.fields())
            matches = select_files(self._lake.catalog, self.query, types, self._latest)
            if self._pinned is not None:  # the same files as where it was pickled (less any deleted since)
                pinned = set(self._pinned)
                matches = [m for m in matches if m.row.id in pinned]
            rows = [m.row for m in matches]
            meta = self._lake.catalog.metadata_of([r.id for r in rows], self.query.as_of)
            self._extra = [m.extra for m in matches]
            self._files = [File(self._lake, r, meta[r.id]) for r in rows]
        return self._files

    def __iter__(self) -> Iterator[File]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:
        return bool(self._load())

    def __getitem__(self, key: Any) -> Any:
        """``result[0]``: a File; ``result[1:3]``: Files; ``result["col"]``: a column (a pandas Series);
        ``result[["a", "b"]]``: a DataFrame of those columns; ``result[condition]``: a narrowed result."""
        if isinstance(key, Condition):
            return self.where(key)
        if isinstance(key, str):
            key = [key]
            self._types(key)  # FieldNotFound for a field no file has
            return self._frame(key)[key[0]]
        if isinstance(key, list) and all(isinstance(k, str) for k in key):
            self._types(key)
            return self._frame(key)[key]
        return self._load()[key]

    def __repr__(self) -> str:
        n = len(self)
        return f"<Result {self._describe()}: {n} file{'' if n == 1 else 's'}>"

    def _repr_html_(self) -> str:
        """The result as a table in a notebook: a thumbnail for each image already on this machine, the
        file's fields, then its metadata (the selected fields, after ``select``). Reads nothing into lineage."""
        from .. import render_html as h
        from ..errors import LimnosError

        files = self._load()
        shown = files[: h.MAX_ROWS]
        if self.query.select is not None:
            keys = [k for k in self.query.select if k not in ("name", "version")]
        else:
            keys = ["size", "created_at", "user", *sorted({k for f in shown for k in f.metadata})]
        thumbs = []
        for f in shown:
            thumb = ""
            if f.kind == "object" and h.looks_like_image(f.name) and f.is_local:
                try:
                    thumb = h.thumbnail(self._lake.local_object_path(f), alt=f.ref)
                except LimnosError:
                    thumb = ""
            thumbs.append(thumb)
        with_thumbs = any(thumbs)
        rows = []
        for f, extra, thumb in zip(shown, self._extra, thumbs, strict=False):  # _extra runs past the rows shown
            values = {"size": f.size, "created_at": f.created_at, "user": f.user, "id": f.id, "hash": f.hash,
                      **extra, **f.metadata}
            row = [h.raw_cell(thumb)] if with_thumbs else []
            row += [h.cell(f.name), h.cell(f.version), *(h.cell(values.get(k)) for k in keys)]
            rows.append(row)
        columns = ([""] if with_thumbs else []) + ["name", "version", *keys]
        n = len(files)
        return h.card("Result", f"{self._describe()}: {n} file{'' if n == 1 else 's'}", h.table(columns, rows, n))

    def files(self) -> list[File]:
        """The matching files, as a new list."""
        return list(self._load())

    def head(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` rows of :attr:`dataframe`, as ``DataFrame.head`` gives."""
        return self.dataframe.head(n)

    @property
    def columns(self) -> list[str]:
        """The column names of :attr:`dataframe`."""
        return list(self.dataframe.columns)

    @property
    def dataframe(self) -> pd.DataFrame:
        """One row per file: name, version, id, hash, size, created_at, user, then each metadata key.

        With ``select(...)``: name, version, id, then the selected fields only.
        """
        return self._frame(list(self.query.select) if self.query.select is not None else None)

    def _frame(self, fields: list[str] | None) -> pd.DataFrame:
        """The DataFrame of name, version, id and ``fields`` (None: the base columns and every metadata key).

        Raises:
            MissingExtra: pandas is not installed (``pip install 'limnos[pandas]'``).
        """
        pd = require_extra("pandas", "pandas", purpose="a DataFrame")

        records = []
        keys: dict[str, None] = {}
        for f, extra in zip(self._load(), self._extra, strict=True):
            meta = f.metadata
            keys.update(dict.fromkeys(meta))
            records.append({"name": f.name, "version": f.version, "id": f.id, "hash": f.hash, "size": f.size,
                            "created_at": f.created_at, "user": f.user, "kind": f.kind, "uri": f.uri, "run": f.run_id,
                            **{k: extra[k] for k in EXTRA_FIELDS}, **meta})
        columns = list(dict.fromkeys(["name", "version", "id", *fields])) if fields is not None else BASE_COLUMNS + sorted(keys)
        frame = pd.DataFrame.from_records(records, columns=columns)
        if "created_at" in columns and not records:
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame

    def to_dicts(self) -> list[dict[str, Any]]:
        """Each matching file as a JSON-ready dict (:meth:`File.to_dict`)."""
        return [f.to_dict() for f in self._load()]


def _unpickle_result(lake: LakeBase, query: Query, latest: bool, ids: list[str] | None) -> Result:
    """A pickled :class:`Result` in this process: its query on this process's lake, kept to ``ids`` when given."""
    result = Result(lake, query, latest)
    result._pinned = ids
    return result


__all__ = ["BASE_COLUMNS", "FileView", "Result", "as_condition", "equalities", "parse_query", "query_files"]
