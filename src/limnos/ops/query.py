"""Query results: iterate Files, or take them as a pandas DataFrame.

``Result`` is lazy and holds its filters, so later query languages
(comparisons, ``&``/``|``, ``as_of``) can grow it without changing callers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..catalog.values import validate_key
from ..core.files import File

if TYPE_CHECKING:
    import pandas as pd

    from ..core.base import LakeBase

#: the columns every :attr:`Result.dataframe` starts with, before the metadata keys
BASE_COLUMNS = ["name", "version", "id", "hash", "size", "created_at", "user"]
#: filters on a file's own fields rather than its metadata: ``user``, the originator of the run that made it
FIELD_FILTERS = ("user",)


class Result:
    """The files matching a query. Evaluated when first used, then kept.

    Iterate it, index it, take its ``len``, or read it as :attr:`dataframe`.

    Attributes:
        filters: metadata key -> the value a file must have; ``user`` filters on the
            originator of the run that made it (an email, or an OS login name).
        latest: only the newest version of each name matches.
    """

    def __init__(self, lake: LakeBase, equals: dict[str, Any], latest: bool = False) -> None:
        """Hold a query; nothing runs until the result is first used.

        Using it then raises :class:`~limnos.errors.FieldNotFound` when a key is
        no file's metadata key, and :class:`~limnos.errors.SchemaError` when a
        value's type differs from its key's type.

        Raises:
            MetadataError: a key could never name metadata (not a str, empty, a NUL...).
        """
        self._lake = lake
        for key in equals:
            validate_key(key, reserved_ok=True)  # never let a non-str or NUL key reach the database
        self.filters = dict(equals)
        self.latest = latest
        self._files: list[File] | None = None

    def _load(self) -> list[File]:
        """Run the query once; later calls return the same files."""
        if self._files is None:
            metadata = {k: v for k, v in self.filters.items() if k not in FIELD_FILTERS}
            rows = self._lake.catalog.query_equals(metadata, latest_only=self.latest)
            if "user" in self.filters:  # "user" is a reserved key, never metadata: the run's originator
                rows = [r for r in rows if r.user == self.filters["user"]]
            meta = self._lake.catalog.metadata_of([r.id for r in rows])
            self._files = [File(self._lake, r, meta[r.id]) for r in rows]
        return self._files

    def __iter__(self) -> Iterator[File]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __getitem__(self, index: int) -> File:
        return self._load()[index]

    def __bool__(self) -> bool:
        return bool(self._load())

    def __repr__(self) -> str:
        where = ", ".join(f"{k}={v!r}" for k, v in self.filters.items()) or "all"
        return f"<Result {where}: {len(self)} files>"

    def files(self) -> list[File]:
        """The matching files, as a new list."""
        return list(self._load())

    @property
    def dataframe(self) -> pd.DataFrame:
        """One row per file: name, version, id, hash, size, created_at, user, then each metadata key."""
        import pandas as pd

        records = []
        keys: dict[str, None] = {}
        for f in self._load():
            meta = f.metadata
            keys.update(dict.fromkeys(meta))
            records.append({"name": f.name, "version": f.version, "id": f.id, "hash": f.hash, "size": f.size,
                            "created_at": f.created_at, "user": f.user, **meta})
        columns = BASE_COLUMNS + sorted(keys)
        frame = pd.DataFrame.from_records(records, columns=columns)
        if not records:
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        return frame

    def to_dicts(self) -> list[dict[str, Any]]:
        """Each matching file as a JSON-ready dict (:meth:`File.to_dict`)."""
        return [f.to_dict() for f in self._load()]

