"""Folio items as they are kept in memory and in manifests, and the folio's self-stamping metadata.

An :class:`Item` is one entry of a folio: its type and format, hash and size,
description, lineage inputs and per-type ``info`` (a table's rows, columns and
dtypes, a model's class and hyperparameters, a reference's path and
version...), plus where its bytes are. ``info`` and the base fields are what
the manifest stores, so a new field needs no format change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import FolioError, FolioTypeError

if TYPE_CHECKING:
    from ..core.files import File

TABLE_FORMATS = ("parquet", "csv", "delta")
MODEL_FORMATS = ("joblib", "skops")
_EXT = {"parquet": ".parquet", "joblib": ".joblib", "skops": ".skops", "npy": ".npy", "json": ".json", "tar": ".tar"}


def item_extension(format: str, suffix: str | None = None) -> str:
    """The file extension of an item's bytes: its format's (``.parquet``...), else an artifact's own ``suffix``."""
    return _EXT.get(format, suffix or "")


def now_iso() -> str:
    """The current UTC time as ISO 8601, as folios stamp ``created_at`` and ``updated_at``."""
    return datetime.now(timezone.utc).isoformat()


def plain(value: Any) -> Any:
    """``value`` with every folio metadata dict inside it (``{"parent": other.metadata}``) made a plain dict."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class FolioMetadata(dict):  # type: ignore[type-arg]
    """A folio's metadata: a dict whose every change stamps ``updated_at`` (as datafolio's does).

    ``created_at`` and ``updated_at`` (ISO 8601, UTC) are set when the folio is
    made, kept when it is saved and loaded, and ``updated_at`` moves on every
    change of the metadata or of an item. A change inside a nested value
    (``metadata["params"]["lr"] = 1``) is not seen.
    """

    def _touch(self) -> None:
        dict.__setitem__(self, "updated_at", now_iso())

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        if key != "updated_at":
            self._touch()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._touch()

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Like dict.update, then stamp ``updated_at``."""
        super().update(*args, **kwargs)
        if "updated_at" not in dict(*args, **kwargs):
            self._touch()

    def pop(self, key: Any, *default: Any) -> Any:
        """Like dict.pop, then stamp ``updated_at``."""
        value = super().pop(key, *default)
        self._touch()
        return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Like dict.setdefault, stamping ``updated_at`` when it adds the key."""
        if key in self:
            return self[key]
        self[key] = default
        return default

    def clear(self) -> None:
        """Like dict.clear, then stamp ``updated_at``."""
        super().clear()
        self._touch()


def skops_available() -> bool:
    """True when skops is installed (scikit-learn models are then saved with it)."""
    try:
        import skops.io  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(eq=False)
class Item:
    """One folio item: its record (type, format, hash, size, description, inputs, info) and where its bytes are."""
    name: str
    type: str
    format: str
    hash: str | None = None
    size: int | None = None
    description: str | None = None
    inputs: list[Any] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # per type: library, num_rows, category, path...
    member: str | None = None  # where the bytes are in an archive
    offset: int | None = None
    file_id: str | None = None  # or the lake file that holds them
    local: str | None = None  # a local path of the bytes, once written or extracted
    trusted: bool = False  # written by this process: loading it runs no one else's code
    ref_file: File | None = None  # a referenced lake file, while in memory
    options: dict[str, Any] = field(default_factory=dict)  # storage options of a reference, secrets included

    def input_names(self) -> list[str]:
        """The item's inputs as names: other items, paths, URLs, and lake files as ``name@version``."""
        return [f"{i.get('name')}@{i.get('version')}" if isinstance(i, dict) else str(i) for i in self.inputs]

    def to_manifest(self) -> dict[str, Any]:
        """The item's manifest entry: the base fields, then its ``info``."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "format": self.format, "hash": self.hash,
                               "size": self.size, "description": self.description, "inputs": list(self.inputs)}
        out.update(self.info)
        return out


def item_inputs(inputs: Any) -> list[Any]:
    """Inputs as stored: lake Files become {id, name, version, hash}; anything else must be a str."""
    from ..core.files import File

    if inputs is None:
        return []
    if isinstance(inputs, (str, File)):
        inputs = [inputs]
    out: list[Any] = []
    for value in inputs:
        if isinstance(value, File):
            out.append({"id": value.id, "name": value.name, "version": value.version, "hash": value.hash})
        elif isinstance(value, (str, os.PathLike)):
            out.append(os.fspath(value))
        else:
            raise FolioError(f"inputs are lake Files or str (paths, URLs, names), not {type(value).__name__}")
    return out


def check_code(code: object) -> None:
    """Refuse a ``code=`` that is not text.

    Raises:
        FolioTypeError: ``code`` is neither None nor a str.
    """
    if code is not None and not isinstance(code, str):
        raise FolioTypeError(f"code is the source text that made the item, not {type(code).__name__}")


def drop_secrets(options: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
    """Storage options without the values in ``secrets`` (credentials are never saved)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            value = drop_secrets(value, secrets)
        elif isinstance(value, str) and value in secrets:
            continue
        out[key] = value
    return out


def importable(module: str) -> bool:
    """True when ``module`` can be imported."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


__all__ = ["MODEL_FORMATS", "TABLE_FORMATS", "FolioMetadata", "Item", "check_code", "drop_secrets", "importable",
           "item_extension", "item_inputs", "now_iso", "plain", "skops_available"]
