"""Every error limnos raises, under one root.

Each class also inherits the builtin that matches its meaning, so callers can
catch ``KeyError`` or ``ValueError`` without knowing limnos. Messages are one
line: what is wrong, then how to fix it. They never contain credentials; use
:func:`redact_url` on any URL that goes into a message.
"""

from __future__ import annotations

import re

__all__ = [
    "CatalogError",
    "CatalogVersionError",
    "DatasetNotFound",
    "DatasourceNotFound",
    "FieldNotFound",
    "FileLocked",
    "FileNotFound",
    "FolioError",
    "FolioItemExists",
    "FolioItemNotFound",
    "GcRefused",
    "IntegrityError",
    "InvalidName",
    "InvalidRef",
    "LakeExists",
    "LakeNotFound",
    "LimnosError",
    "ManifestError",
    "MetadataError",
    "MissingExtra",
    "ObjectNotAvailable",
    "PartialResultsWarning",
    "ProjectNotFound",
    "QueryError",
    "QuerySyntaxError",
    "RemoteError",
    "RemoteNotFound",
    "SchemaError",
    "SourceNotFound",
    "StepError",
    "StepOutputError",
    "StepParameterError",
    "StoreError",
    "UnsafeArchive",
    "UntrustedModel",
    "redact_url",
]


class LimnosError(Exception):
    """Root of every error limnos raises on purpose."""


class LakeNotFound(LimnosError, FileNotFoundError):
    """No lake at the given path, in $LIMNOS_LAKE, or above the cwd."""


class LakeExists(LimnosError, FileExistsError):
    """``init`` was asked to create a lake where one already is."""


class FileNotFound(LimnosError, KeyError):
    """A ref (name, name@N or id) names no file in the catalog."""

    def __str__(self) -> str:  # KeyError would repr() the message in quotes
        return str(self.args[0]) if self.args else "file not found"


class SourceNotFound(LimnosError, FileNotFoundError):
    """A local path given to ``add`` or ``status`` does not exist."""


class InvalidName(LimnosError, ValueError):
    """A file name is not a relative POSIX path limnos accepts."""


class InvalidRef(LimnosError, ValueError):
    """A ref is malformed, such as ``name@x``."""


class SchemaError(LimnosError, TypeError):
    """A metadata value's type differs from the type fixed for its key."""


class FieldNotFound(LimnosError, KeyError):
    """A query names a metadata key that no file has."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "field not found"


class MetadataError(LimnosError, ValueError):
    """A metadata key or value cannot be stored."""


class CatalogError(LimnosError, RuntimeError):
    """The catalog database cannot be reached or used."""


class CatalogVersionError(CatalogError):
    """The catalog was written by a newer limnos than this one."""


class StoreError(LimnosError, OSError):
    """The object store cannot be read or written."""


class RemoteError(StoreError):
    """A remote store cannot be reached, listed or written (credentials, URL, network)."""


class RemoteNotFound(LimnosError, KeyError):
    """No remote of that name is configured."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "remote not found"


class ObjectNotAvailable(StoreError):
    """An object is neither local nor on any remote that was asked."""


class FileLocked(LimnosError, PermissionError):
    """The file is locked (protected) and cannot be deleted."""


class IntegrityError(StoreError):
    """Stored bytes do not match their content hash."""


class GcRefused(LimnosError, RuntimeError):
    """``gc`` saw something that makes deleting unsafe, so it deleted nothing."""


class MissingExtra(LimnosError, ImportError):
    """An optional dependency is needed; the message gives the pip command."""


class StepError(LimnosError, RuntimeError):
    """A ``@step`` function is used in a way limnos cannot record (such as ``limnos.output()`` outside a step)."""


class StepParameterError(StepError, TypeError):
    """A step parameter cannot be hashed stably into the cache key; the message names the parameter."""


class StepOutputError(StepError, TypeError):
    """A step returned something limnos cannot store (such as an object without ``allow_pickle=True``)."""


class ProjectNotFound(LimnosError, FileNotFoundError):
    """No ``limnos.lock`` in the folder or above it (``limnos init --project`` creates one)."""


class ManifestError(LimnosError, ValueError):
    """``limnos.lock`` cannot be read or holds an invalid entry."""


class FolioError(LimnosError, ValueError):
    """A folio, its archive or one of its items cannot be written or read."""


class FolioItemExists(FolioError):
    """A folio already has an item of that name (pass ``overwrite=True`` to replace it)."""


class FolioItemNotFound(LimnosError, KeyError):
    """A folio has no item of that name, or not one of the asked type."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "item not found"


class UnsafeArchive(FolioError):
    """An archive member would escape its folder (``..``, an absolute path) or is a link or device."""


class UntrustedModel(LimnosError, PermissionError):
    """Loading a model would run code from a folio that was not marked trusted."""


class DatasourceNotFound(LimnosError, KeyError):
    """No datasource of that name exists (or it was deleted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "datasource not found"


class DatasetNotFound(LimnosError, KeyError):
    """No saved dataset of that name exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "dataset not found"


class QueryError(LimnosError, TypeError):
    """A datasource query is built wrongly (operator precedence, a field compared to a field...)."""


class QuerySyntaxError(QueryError, ValueError):
    """A textual query (``limnos ds query``) does not parse; the message points at the spot."""


class PartialResultsWarning(UserWarning):
    """A datasource is still being scanned, so a query may miss datapoints."""


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@]*):(?P<secret>[^@/]*)@")


def redact_url(url: str) -> str:
    """Return ``url`` with any ``user:password@`` part shown as ``user:***@``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(url))


def require_extra(module: str, extra: str) -> None:
    """Import ``module`` or fail with the exact install command."""
    try:
        __import__(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{module} is not installed; run: pip install 'limnos[{extra}]'"
        ) from exc
