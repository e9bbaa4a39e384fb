"""``File``, the public view of one catalog entry, and ``Writer`` for ``create``."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from ..errors import SourceNotFound
from . import reopen

if TYPE_CHECKING:
    from ..catalog import FileRow
    from ..folio.folio import Folio
    from ..steps.step import StepRecord
    from .base import LakeBase


class File:
    """One immutable version of a name. Reading it marks it as an input of the current run."""

    __slots__ = ("_inputs", "_lake", "_metadata", "_row")

    def __init__(self, lake: LakeBase, row: FileRow, metadata: dict[str, Any] | None = None) -> None:
        self._lake = lake
        self._row = row
        self._metadata = metadata
        self._inputs: list[File] | None = None

    @property
    def lake(self) -> LakeBase:
        """The lake this file version belongs to."""
        return self._lake

    # -- identity ------------------------------------------------------------
    @property
    def id(self) -> str:
        """The file's id (a ULID): names this exact version forever."""
        return self._row.id

    @property
    def name(self) -> str:
        """The file's name in the lake (``raw/a.csv``)."""
        return self._row.name

    @property
    def version(self) -> int:
        """The version number of the name, from 1."""
        return self._row.version

    @property
    def hash(self) -> str | None:
        """The BLAKE3 hash of the bytes (the object's name in the store)."""
        return self._row.hash

    @property
    def size(self) -> int:
        """The size in bytes."""
        return self._row.size

    @property
    def created_at(self) -> dt.datetime:
        """When the version was committed (UTC)."""
        return self._row.created_at

    @property
    def user(self) -> str | None:
        """Who wrote it: the login name of the run that made it."""
        return self._row.user

    @property
    def kind(self) -> str:
        """``object`` (bytes in the store) or ``reference`` (bytes elsewhere, at :attr:`uri`)."""
        return self._row.kind

    @property
    def uri(self) -> str | None:
        """The external URL of a reference, or the object's URL in the store."""
        if self._row.uri:
            return self._row.uri
        return self._lake.object_url(self._row.hash) if self._row.hash else None

    @property
    def ref(self) -> str:
        """``name@version``: a ref that names this version."""
        return f"{self.name}@{self.version}"

    @property
    def run_id(self) -> str | None:
        """The id of the run that made the file."""
        return self._row.run_id

    @property
    def run(self) -> dict[str, Any] | None:
        """The provenance of the run that made this file (user, host, argv, git...)."""
        return self._lake.catalog.run(self._row.run_id) if self._row.run_id else None

    @property
    def step(self) -> StepRecord | None:
        """The ``@step`` execution that made this file (function, code link, params, inputs), or None."""
        return self._lake.step_of(self)

    @property
    def metadata(self) -> dict[str, Any]:
        """The file's current metadata (a copy: change it with ``lake.set_metadata``)."""
        if self._metadata is None:
            self._metadata = self._lake.catalog.metadata_of([self.id])[self.id]
        return dict(self._metadata)

    @property
    def inputs(self) -> list[File]:
        """The files it was made from (its lineage inputs), in the order they were read."""
        if self._inputs is None:
            ids = self._lake.catalog.inputs_of([self.id])[self.id]
            rows = self._lake.catalog.files_by_ids(ids)
            self._inputs = [File(self._lake, rows[i]) for i in ids if i in rows]
        return list(self._inputs)

    @property
    def removed_inputs(self) -> list[File]:
        """The inputs it was made from that were deleted since (``lake.rm(..., keep_dependents=True)``), in read order.

        The catalog keeps their rows, so name, version and hash are known; their
        bytes are gone once ``gc`` has run, and ``lake.get`` no longer finds them.
        """
        ids = self._lake.catalog.inputs_of([self.id])[self.id]
        deleted = self._lake.catalog.deleted_ids(ids)
        rows = self._lake.catalog.files_by_ids([i for i in ids if i in deleted], include_deleted=True)
        return [File(self._lake, rows[i]) for i in ids if i in rows]

    @property
    def is_local(self) -> bool:
        """True when the bytes are on this machine (no download needed to read them)."""
        return self._lake.is_local(self)

    # -- reading -------------------------------------------------------------
    def open(self, mode: str = "rb", encoding: str | None = None) -> IO[Any]:
        """Open for reading ('rb' or 'r'); files never change, so there is no write mode.

        The bytes are checked against the file's hash as they are read: reading
        to the end of a corrupt object raises ``IntegrityError`` there (a read
        that stops early is not checked). The first ``seek`` elsewhere, or
        ``fileno()``, checks the whole object first, so no byte of a corrupt
        object is served after one. A corrupt object is moved to quarantine.
        """
        if mode not in ("rb", "r"):
            raise ValueError(f"a lake file is immutable; open it with 'rb' or 'r', not {mode!r}")
        raw = self._lake_open()
        return io.TextIOWrapper(raw, encoding=encoding or "utf-8") if mode == "r" else raw

    def read_bytes(self) -> bytes:
        """The whole content as bytes (marks the file read), checked against the file's hash.

        Raises:
            IntegrityError: the local bytes are corrupt (the object was moved to quarantine;
                a later read fetches a clean copy from a remote).
            ObjectNotAvailable: the object is not on this machine and no remote has it.
        """
        with self._lake_open() as f:
            return f.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        """The whole content as text (marks the file read), checked as :meth:`read_bytes` does."""
        return self.read_bytes().decode(encoding)

    def _lake_open(self) -> IO[bytes]:
        """Open the bytes for reading, marking the file read."""
        self._lake.mark_read(self)
        return self._lake.open_object(self)

    def local_path(self) -> str:
        """A read-only local path to the bytes, downloaded into the cache if needed.

        The object is checked against the file's hash before the path is
        returned (a cost of one ``stat`` when this machine checked it before and
        it has not changed since). Do not write through the path: the next read
        notices, since any write changes the object's ctime.

        Raises:
            IntegrityError: the local bytes are corrupt (the object was moved to quarantine).
            ObjectNotAvailable: the object is not on this machine and no remote has it.
        """
        self._lake.mark_read(self)
        return self._lake.local_object_path(self)

    def folio(self) -> Folio:
        """The folio this file holds (saved with ``lake.save_folio``); items are read when first used."""
        return self._lake.load_folio(self)

    # -- dunder --------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<File {self.name}@{self.version} {self.size} B {(self.hash or '')[:12]} id={self.id}>"

    def _repr_html_(self) -> str:
        """The file in a notebook: its fields, metadata, provenance and inputs (reading nothing into lineage)."""
        return file_html(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, File) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __fspath__(self) -> str:
        return self.local_path()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the lake's address and the file's id; the unpickling process reopens the lake when first used."""
        return (reopen_file, (reopen.address_of(self._lake), self.id))

    def to_dict(self) -> dict[str, Any]:
        """The file as plain values (for JSON output)."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "hash": self.hash,
            "size": self.size,
            "created_at": self.created_at.isoformat(),
            "user": self.user,
            "run": self.run_id,
            "kind": self.kind,
            "uri": self._row.uri,
            "metadata": self.metadata,
        }


#: the run provenance fields a File's notebook display lists, in this order
_RUN_FIELDS = ("name", "user", "host", "started_at", "argv", "script", "notebook", "cwd", "git_commit", "git_dirty",
               "git_remote", "python", "limnos_version", "config")


def local_flags(files: Sequence[File]) -> list[bool]:
    """For each file, whether its bytes are on this machine (:attr:`File.is_local`), looked up together for
    each lake: a listing of 100k files asked each file alone, a stat and a pack query apiece."""
    by_lake: dict[int, tuple[Any, set[str]]] = {}
    for f in files:
        if f.hash:
            by_lake.setdefault(id(f._lake), (f._lake, set()))[1].add(f.hash)
    here = {key: lake.local_hashes(hashes) for key, (lake, hashes) in by_lake.items()}
    return [bool(f.hash) and f.hash in here[id(f._lake)] for f in files]


def file_html(file: File) -> str:
    """The HTML a notebook shows for ``file`` (see :mod:`limnos.render_html`; every value is escaped).

    Nothing is read into the current run's lineage; a thumbnail is drawn only for
    an image whose bytes are already on this machine (verified, never downloaded).
    """
    from .. import render_html as h
    from ..errors import LimnosError

    thumb = ""
    if file.kind == "object" and h.looks_like_image(file.name) and file.is_local:
        try:
            thumb = h.thumbnail(file.lake.local_object_path(file), alt=file.ref)
        except LimnosError:
            thumb = ""  # corrupt bytes (now quarantined) or gone: no picture, the fields still show
    info = h.fields([("name", file.name), ("version", file.version), ("id", file.id), ("hash", file.hash),
                     ("size", f"{file.size:,} B"), ("created_at", file.created_at), ("user", file.user),
                     ("kind", file.kind)] + ([("uri", file.uri)] if file.kind == "reference" else []))
    meta = file.metadata
    parts = [f"<div style=\"display:flex;gap:12px\"><div>{info}</div><div>{thumb}</div></div>",
             h.section(f"metadata ({len(meta)})", h.fields(sorted(meta.items())) if meta else h.muted("no metadata"))]
    run = file.run or {}
    provenance = [(k, run.get(k)) for k in _RUN_FIELDS if run.get(k) not in (None, "", [])]
    step = file.step
    if step is not None:
        provenance = [("step", step.function), ("code", step.code_location), ("params", step.params),
                      ("duration", f"{step.duration:.3f} s" if step.duration is not None else None), *provenance]
    parts.append(h.section("provenance", h.fields(provenance) if provenance else h.muted("no run recorded"), is_open=False))
    inputs = file.inputs
    rows = [[h.cell(i.ref), h.cell(i.id), h.cell(i.hash[:12] if i.hash else None)] for i in inputs]
    parts.append(h.section(f"inputs ({len(inputs)})", h.table(["file", "id", "hash"], rows, len(rows)) if inputs
                           else h.muted("made from no file in the lake"), is_open=bool(inputs)))
    return h.card(file.ref, f"{file.size:,} B, {file.created_at:%Y-%m-%d %H:%M} UTC", *parts)


class PendingFile(File):
    """``w.file`` of an output written inside a ``@step``: the File the step's commit makes real.

    A step commits all its outputs at once, when the function returns, so
    inside the step the file has no id, version or bytes in the store yet.
    Returning it (``return w.file``) is the same as returning the Writer: the
    step commits the output and the caller gets the real File. After the
    commit this object *is* that File (same id, name, version); before it (or
    when the step failed) using it raises :class:`~limnos.errors.StepOutputError`.
    """

    __slots__ = ("_real", "writer")

    def __init__(self, lake: LakeBase, writer: Writer) -> None:
        self._lake = lake
        self._metadata = None
        self._inputs = None
        self._real: FileRow | None = None
        #: the Writer whose staging file becomes this File
        self.writer = writer

    @property
    def _row(self) -> FileRow:  # type: ignore[override]
        if self._real is None:
            from ..errors import StepOutputError

            raise StepOutputError(f"output {self.writer.name!r} is committed when its step returns; return it "
                                  "from the step and use the File the call gives back")
        return self._real

    @property
    def resolved(self) -> bool:
        """True once the step's commit made the file real."""
        return self._real is not None

    def resolve(self, file: File) -> None:
        """Become ``file`` (called by the step after its commit, or with the output of a writer that won)."""
        self._lake = file.lake
        self._real = file._row
        self._metadata = None

    def __repr__(self) -> str:
        return super().__repr__() if self._real is not None else f"<File {self.writer.name} (pending: committed with its step)>"

    def __eq__(self, other: object) -> bool:
        if self._real is None:
            return self is other
        return super().__eq__(other)

    def __hash__(self) -> int:
        return id(self) if self._real is None else super().__hash__()


class UnpickledFile(File):
    """A File that arrived pickled (in a Dask or Ray worker, a ``multiprocessing`` pool...).

    It knows its lake's address and its id. The lake is opened on first use,
    once per process (see :mod:`limnos.core.reopen`), and the file's row is read
    then; everything else is a File's. A file deleted since raises
    :class:`~limnos.errors.FileNotFound` at that first use.
    """

    __slots__ = ("_address", "_file_id", "_loaded_lake", "_loaded_row")

    def __init__(self, address: reopen.LakeAddress, file_id: str) -> None:
        self._address = address
        self._file_id = file_id
        self._loaded_lake: LakeBase | None = None
        self._loaded_row: FileRow | None = None
        self._metadata = None
        self._inputs = None

    @property
    def _lake(self) -> LakeBase:  # type: ignore[override]
        if self._loaded_lake is None:
            self._loaded_lake = reopen.lake_for(self._address)
        return self._loaded_lake

    @property
    def _row(self) -> FileRow:  # type: ignore[override]
        if self._loaded_row is None:
            self._loaded_row = self._lake.resolve(self._file_id)._row
        return self._loaded_row

    @property
    def id(self) -> str:
        """The file's id (known without opening the lake)."""
        return self._file_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (reopen_file, (self._address, self._file_id))

    def __repr__(self) -> str:
        return super().__repr__() if self._loaded_row is not None else f"<File id={self._file_id} (unpickled: loads on use)>"


def reopen_file(address: reopen.LakeAddress, file_id: str) -> File:
    """What a pickled File becomes: an :class:`UnpickledFile` of the lake at ``address`` in this process."""
    return UnpickledFile(address, file_id)


class Writer:
    """What ``lake.create(name)`` yields: a staging file to fill, committed on a clean exit."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        #: a local staging path, for libraries that want one: ``df.to_csv(w.path)``
        self.path = path
        #: the committed File, set when the ``with`` block exits cleanly; inside a ``@step``, a
        #: :class:`PendingFile` that becomes the committed File when the step commits
        self.file: File | None = None

    def open(self, mode: str = "wb", encoding: str | None = None) -> IO[Any]:
        """Open the staging file for writing (``w``, ``wb``, ``a`` or ``ab``)."""
        if mode not in ("w", "wb", "a", "ab"):
            raise ValueError(f"a writer opens for writing ('w', 'wb', 'a', 'ab'), not {mode!r}")
        if "b" in mode:
            return open(self.path, mode)
        return open(self.path, mode, encoding=encoding or "utf-8")

    def write_bytes(self, data: bytes) -> None:
        """Write the whole content as bytes."""
        with open(self.path, "wb") as f:
            f.write(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        """Write the whole content as text."""
        with open(self.path, "w", encoding=encoding) as f:
            f.write(text)

    def upload(self, local_path: str | os.PathLike[str]) -> None:
        """Take the whole content from a local file (ElliptIO's ``model.upload(path)``); the file is left as it is.

        Raises:
            SourceNotFound: ``local_path`` is not a file.
        """
        source = os.fspath(local_path)
        if not os.path.isfile(source):
            raise SourceNotFound(f"cannot upload {source!r}: no such file", path=source)
        shutil.copyfile(source, self.path)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<Writer {self.name} staging={os.path.basename(self.path)}>"
