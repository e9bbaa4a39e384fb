"""Every error limnos raises, under one root.

Each class also inherits the builtin that matches its meaning, so callers can
catch ``KeyError`` or ``ValueError`` without knowing limnos. Messages are one
line: what is wrong, then how to fix it. They never contain credentials; use
:func:`redact_url` on any URL that goes into a message.

An error with a subject also carries it as a field (``FileNotFound.ref``,
``SourceNotFound.path``, ``SchemaError.key``, ``RemoteError.url``...), given
as a keyword argument where it is raised: ``FileNotFound(message, ref=ref)``.
"""

from __future__ import annotations

import errno
import importlib
import re
from types import ModuleType

__all__ = [
    "CatalogError",
    "CatalogVersionError",
    "CommitContention",
    "DatasetNotFound",
    "DatasourceNotFound",
    "DestinationExists",
    "DownloadFailed",
    "FieldNotFound",
    "FileHasDependents",
    "FileLocked",
    "FileNotFound",
    "FolderNotEmpty",
    "FolioError",
    "FolioItemExists",
    "FolioItemIncluded",
    "FolioItemNotFound",
    "FolioTypeError",
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
    "PathNotFound",
    "ProjectNotFound",
    "ProvenanceError",
    "QueryError",
    "QuerySyntaxError",
    "RecordsDamaged",
    "RecordsInvalid",
    "RemoteError",
    "RemoteNotFound",
    "SchemaError",
    "SourceNotFound",
    "StepError",
    "StepOutputError",
    "StepParameterError",
    "StepReturnWarning",
    "StoreError",
    "StoreFull",
    "TeamLakeTarget",
    "TeamModeUnsupported",
    "UiError",
    "UnsafeArchive",
    "UnsupportedMode",
    "UnsupportedPlatform",
    "UntrustedModel",
    "WriteRefused",
    "redact_url",
    "require_extra",
    "require_protocol",
]


class LimnosError(Exception):
    """Root of every error limnos raises on purpose.

    Subclasses that have a subject (a ref, a path, a key, a URL...) take it as a
    keyword argument and keep it as an attribute, so code can act on the error
    without parsing its message: ``except FileNotFound as e: print(e.ref)``.
    Every such field is None when the raise site did not know it.

    The message says what is wrong; ``hint`` (optional) says what to do about it,
    in Python (``call lake.fsck()``). ``str()`` joins them with ``; ``. The CLI
    shows :attr:`message` with its own shell advice instead (``cli/errors.py``).

    Attributes:
        hint: what to do about it, in Python terms, or None.
    """

    def __init__(self, *args: object, hint: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.hint = hint

    @property
    def message(self) -> str:
        """What is wrong, without the hint."""
        return super().__str__()

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class _KeyErrorMessage(LimnosError, KeyError):
    """Base of the errors that are also ``KeyError``: ``str()`` is the message itself.

    ``KeyError.__str__`` shows its argument's ``repr()`` (quotes and escaped
    newlines), which suits a missing dict key but not a sentence.
    """

    #: what ``str()`` gives when the error was raised without a message
    empty_message = "not found"

    @property
    def message(self) -> str:
        """What is wrong, without the hint (the message itself, not its ``repr()``)."""
        return str(self.args[0]) if self.args else self.empty_message


class LakeNotFound(LimnosError, FileNotFoundError):
    """No lake at the given path, in $LIMNOS_LAKE, or above the cwd.

    Attributes:
        path: the folder or URL that was searched, when there was one.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class LakeExists(LimnosError, FileExistsError):
    """``init`` was asked to create a lake where one already is.

    Attributes:
        path: where the existing lake is.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class FolderNotEmpty(LimnosError, FileExistsError):
    """``init`` was given a folder that holds other files and is not a lake: a lake needs a folder of its own.

    Attributes:
        path: the folder.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class DestinationExists(LimnosError, FileExistsError):
    """``checkout`` would overwrite a path that already exists.

    Attributes:
        path: the existing destination.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class FileNotFound(_KeyErrorMessage):
    """A ref (name, name@N or id) names no file in the catalog.

    Attributes:
        ref: the ref (or name, or prefix) that named nothing.
    """

    empty_message = "file not found"

    def __init__(self, *args: object, ref: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.ref = ref


class SourceNotFound(LimnosError, FileNotFoundError):
    """A local path given to ``add`` or ``status`` does not exist, or a URL given to ``add`` names no file.

    Attributes:
        path: the path (or URL) that does not exist.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class InvalidName(LimnosError, ValueError):
    """A file name is not a relative POSIX path limnos accepts.

    Attributes:
        name: the rejected name (it may not be a str).
    """

    def __init__(self, *args: object, name: object = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class InvalidRef(LimnosError, ValueError):
    """A ref is malformed, such as ``name@x``.

    Attributes:
        ref: the rejected ref (it may not be a str).
    """

    def __init__(self, *args: object, ref: object = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.ref = ref


class SchemaError(LimnosError, TypeError):
    """A metadata value's type differs from the type fixed for its key.

    Attributes:
        key: the metadata key or datasource field.
    """

    def __init__(self, *args: object, key: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.key = key


class FieldNotFound(_KeyErrorMessage):
    """A query names a metadata key that no file has.

    Attributes:
        key: the unknown key or field.
    """

    empty_message = "field not found"

    def __init__(self, *args: object, key: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.key = key


class MetadataError(LimnosError, ValueError):
    """A metadata key or value cannot be stored.

    Attributes:
        key: the offending key, when one is to blame.
        ref: the file whose metadata was being changed, when known.
    """

    def __init__(self, *args: object, key: str | None = None, ref: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.key = key
        self.ref = ref


class CatalogError(LimnosError, RuntimeError):
    """The catalog database cannot be reached or used.

    Attributes:
        url: the catalog's URL, with any password redacted.
    """

    def __init__(self, *args: object, url: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.url = url


class CatalogVersionError(CatalogError):
    """The catalog was written by a newer limnos than this one."""


class StoreError(LimnosError, OSError):
    """The object store cannot be read or written.

    Attributes:
        url: the store's URL, with any password redacted.
    """

    def __init__(self, *args: object, url: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.url = url


class RemoteError(StoreError):
    """A remote store cannot be reached, listed or written (credentials, URL, network)."""


class TeamLakeTarget(RemoteError):
    """A push to a team lake's bucket: its machines read only its shared log (pull into the team lake instead)."""


class CommitContention(LimnosError, RuntimeError):
    """A commit to a team lake kept losing its place in the shared log to other machines' commits."""


class TeamModeUnsupported(StoreError):
    """A bucket cannot create a key only if it is absent, so machines sharing it could not agree on versions."""


class RemoteNotFound(_KeyErrorMessage):
    """No remote of that name is configured.

    Attributes:
        name: the remote asked for (None: the default, and there is none).
    """

    empty_message = "remote not found"

    def __init__(self, *args: object, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class DownloadFailed(StoreError):
    """A file added from a URL could not be read whole (a refused request, a cut connection); nothing was added.

    Attributes:
        url: the URL, with credentials and secret query parameters masked.
    """


class ObjectNotAvailable(StoreError):
    """An object is neither local nor on any remote that was asked.

    Attributes:
        digest: the object's hash.
        url: where it was looked for, when one place was.
    """

    def __init__(self, *args: object, digest: str | None = None, url: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, url=url, hint=hint)
        self.digest = digest


class FileLocked(LimnosError, PermissionError):
    """The file is locked (protected) and cannot be deleted.

    Attributes:
        refs: the locked files, as ``name@N``.
    """

    def __init__(self, *args: object, refs: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.refs = list(refs or [])


class FileHasDependents(LimnosError, PermissionError):
    """``rm`` of a file that other files were made from, without saying what becomes of them.

    Pass ``cascade=True`` (delete them too) or ``keep_dependents=True`` (keep
    them; their lineage shows this file as removed). Nothing was deleted.

    Attributes:
        ref: the file that was to be deleted, as ``name@N``.
        dependents: every file made from it, directly or through others, as ``name@N``, nearest first.
    """

    def __init__(self, *args: object, ref: str | None = None, dependents: list[str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.ref = ref
        self.dependents = list(dependents or [])


class IntegrityError(StoreError):
    """Stored bytes do not match their content hash.

    Attributes:
        digest: the hash the bytes should have (for a pack: its first bad object).
        url: the store that holds them, when known.
    """

    def __init__(self, *args: object, digest: str | None = None, url: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, url=url, hint=hint)
        self.digest = digest


class GcRefused(LimnosError, RuntimeError):
    """``gc`` saw something that makes deleting unsafe, so it deleted nothing."""


class MissingExtra(LimnosError, ImportError):
    """An optional dependency is needed; the message gives the pip command.

    Attributes:
        name: the module that could not be imported (as on ``ImportError``).
        extra: the limnos extra that installs it (``pip install 'limnos[extra]'``), if there is one.
    """

    def __init__(self, *args: object, module: str | None = None, extra: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, name=module, hint=hint)
        self.extra = extra


class StepError(LimnosError, RuntimeError):
    """A ``@step`` function is used in a way limnos cannot record (such as ``limnos.output()`` outside a step)."""


class StepParameterError(StepError, TypeError):
    """A step parameter cannot be hashed stably into the cache key; the message names the parameter.

    Attributes:
        param: the parameter's name, when known.
    """

    def __init__(self, *args: object, param: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.param = param


class StepOutputError(StepError, TypeError):
    """A step returned something limnos cannot store (such as an object without ``allow_pickle=True``)."""


class ProjectNotFound(LimnosError, FileNotFoundError):
    """No ``limnos.lock`` in the folder or above it (``limnos init --project`` creates one).

    Attributes:
        path: the folder the search started from.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class ManifestError(LimnosError, ValueError):
    """``limnos.lock`` cannot be read or holds an invalid entry.

    Attributes:
        path: the manifest file, when known.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class FolioError(LimnosError, ValueError):
    """A folio, its archive or one of its items cannot be written or read."""


class FolioItemExists(FolioError):
    """A folio already has an item of that name (pass ``overwrite=True`` to replace it).

    Attributes:
        name: the item's name.
    """

    def __init__(self, *args: object, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class FolioItemNotFound(_KeyErrorMessage):
    """A folio has no item of that name, or not one of the asked type.

    Attributes:
        name: the item's name.
    """

    empty_message = "item not found"

    def __init__(self, *args: object, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class FolioTypeError(FolioError, TypeError):
    """A folio item was given a value of the wrong type (``add_table`` of something that is not a DataFrame)."""


class FolioItemIncluded(FolioError):
    """An item is included in the folio, where a reference was expected (``get_data_path`` of an included table).

    Attributes:
        name: the item's name.
    """

    def __init__(self, *args: object, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class UnsafeArchive(FolioError):
    """An archive member would escape its folder (``..``, an absolute path) or is a link or device.

    Attributes:
        member: the archive member's name.
    """

    def __init__(self, *args: object, member: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.member = member


class UntrustedModel(LimnosError, PermissionError):
    """Loading a model would run code from a folio that was not marked trusted.

    Attributes:
        name: the model item's name.
    """

    def __init__(self, *args: object, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class DatasourceNotFound(_KeyErrorMessage):
    """No datasource of that name exists (or it was deleted).

    Attributes:
        name: the datasource's name (or id).
    """

    empty_message = "datasource not found"

    def __init__(self, *args: object, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class DatasetNotFound(_KeyErrorMessage):
    """No saved dataset of that name exists.

    Attributes:
        name: the dataset's name.
    """

    empty_message = "dataset not found"

    def __init__(self, *args: object, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.name = name


class QueryError(LimnosError, TypeError):
    """A datasource query is built wrongly (operator precedence, a field compared to a field...)."""


class QuerySyntaxError(QueryError, ValueError):
    """A textual query (``limnos ds query``) does not parse; the message points at the spot."""


class ProvenanceError(LimnosError, TypeError):
    """A function registered with ``limnos.provenance.register`` failed, or returned no dict of JSON values."""


class PartialResultsWarning(UserWarning):
    """A datasource is still being scanned, so a query may miss datapoints."""


class StepReturnWarning(UserWarning):
    """A ``@step`` wrote outputs but returned None, so its caller gets None (on a hit too)."""


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@]*):(?P<secret>[^@/]*)@")


def redact_url(url: str) -> str:
    """Return ``url`` with any ``user:password@`` part shown as ``user:***@``.

    Use it on every URL that goes into a message, a log line or a ``repr``.
    """
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(url))


def require_extra(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` and return it, or fail with the exact install command.

    Args:
        module: the module to import, such as ``"psycopg"`` or ``"pyarrow.parquet"``.
        extra: the limnos extra that installs it, such as ``"postgres"``.
        purpose: what needs it (``"Result.dataframe"``), for the message.

    Raises:
        MissingExtra: the module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f"{purpose} needs {module.split('.')[0]}, which is not installed" if purpose else f"{module} is not installed"
        raise MissingExtra(f"{what}; run: pip install 'limnos[{extra}]'", module=module, extra=extra) from exc


#: The fsspec file system of each URL scheme limnos advertises: the module it needs and the limnos extra that brings it.
SCHEME_EXTRAS = {
    "s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure"), "adl": ("adlfs", "azure"),
    "ssh": ("paramiko", "ssh"), "sftp": ("paramiko", "ssh"),
    "http": ("aiohttp", "http"), "https": ("aiohttp", "http"),
}


def require_protocol(url: str) -> None:
    """Fail with the limnos extra to install when ``url``'s file system needs a package that is missing.

    fsspec's own errors ("Protocol not known", "Please install gcsfs") do not
    say which limnos extra brings the package; this one does. A scheme limnos
    does not know is left to fsspec.

    Raises:
        MissingExtra: the scheme's package is not installed (the message gives ``pip install 'limnos[...]'``).
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in SCHEME_EXTRAS:
        module, extra = SCHEME_EXTRAS[scheme]
        require_extra(module, extra, purpose=f"a {scheme}:// URL")


class UnsupportedPlatform(LimnosError, OSError):
    """limnos cannot run on this operating system (it needs POSIX file locks: Linux, macOS, BSD).

    Attributes:
        platform: the platform found (``sys.platform``, such as ``win32``).
    """

    def __init__(self, *args: object, platform: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.platform = platform


class RecordsDamaged(IntegrityError):
    """A records file (a commit's write-ahead log) is truncated, altered or malformed.

    Attributes:
        commit_id: the commit the records file is named after (its file name without ``.jsonl``).
    """

    def __init__(self, *args: object, commit_id: str | None = None, url: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(*args, url=url, hint=hint)
        self.commit_id = commit_id


class StoreFull(StoreError):
    """The disk that holds the lake (its objects, records or catalog) has no space left.

    Also an ``OSError`` with ``errno`` ENOSPC, as the bare error it replaces was.

    Attributes:
        path: the folder on the full disk.
    """

    def __init__(self, *args: object, path: str | None = None, url: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(*args, url=url, hint=hint)
        self.path = path
        self.errno = errno.ENOSPC


class RecordsInvalid(RecordsDamaged, ValueError):
    """A records file is malformed or crafted: a row or field is not what limnos writes. Nothing of it is applied.

    Records files are the lake's write-ahead log and what a pull imports, so
    every field of every row is checked before any reaches the catalog or the
    store (see :mod:`limnos.catalog.validate`). A kind of :class:`RecordsDamaged`
    (whoever handles a damaged records file handles a crafted one too), and a
    ``ValueError``, as the parse errors of older versions were.

    Attributes:
        commit_id: the commit the file is named after (or claims, when it has no name yet), when known.
        path: the records file: a local path, or the remote key (credentials redacted).
    """

    def __init__(self, *args: object, commit_id: str | None = None, path: str | None = None,
                 url: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, commit_id=commit_id, url=url, hint=hint)
        self.path = path


class UiError(LimnosError, OSError):
    """The ``limnos ui`` web server cannot start (the address is taken, or not one this machine has).

    Attributes:
        host: the address it was asked to bind.
        port: the port it was asked to bind (0: any free one).
    """

    def __init__(self, *args: object, host: str | None = None, port: int | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.host = host
        self.port = port


class WriteRefused(LimnosError, PermissionError):
    """``limnos ui`` refused a write: the server is read-only (no ``--allow-edit``), or the form's CSRF token is wrong."""
class PathNotFound(LimnosError, FileNotFoundError):
    """A ``limnos://`` path names no file and no folder (a prefix of names) in the lake.

    Attributes:
        path: the path, without ``limnos://``.
    """

    def __init__(self, *args: object, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.path = path


class UnsupportedMode(LimnosError, ValueError):
    """A ``limnos://`` file was opened in a mode a write-once lake has no meaning for (append, update).

    Attributes:
        mode: the mode asked for.
    """

    def __init__(self, *args: object, mode: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args, hint=hint)
        self.mode = mode
