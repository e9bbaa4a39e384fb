"""The catalog: commits in, files, metadata and lineage out.

Writes go through :meth:`Catalog.commit` (a new commit from this process)
or :meth:`Catalog.replay` (a commit read back from its records file, for
``reindex`` and roll-forward). Both run in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from ..errors import CatalogError, SchemaError, redact_url
from . import schema as t
from . import values
from .datasources import adopt_legacy_fields, apply_field_rows
from .engine import atomic, chunks, execute_many, insert_ignore, is_data_error, make_engine, run_atomic, upsert
from .locks import WriterGuard
from .migrations import migrate
from .records import Commit
from .rows import FILE_COLUMNS, FileRow, file_row, file_select, is_current
from .steps import StepHit, StepReads, step_hit
from .values import to_utc

__all__ = ["FILE_COLUMNS", "Catalog", "FileRow", "StepHit", "file_select", "is_current"]


_TIME_COLUMNS = ("deleted_at", "locked_at", "started_at", "ended_at")


def _insert_commit_row(conn: sa.Connection, commit: Commit) -> None:
    conn.execute(t.commits.insert().values(id=commit.id, created_at=commit.created_at, kind=commit.kind,
                                           run_id=commit.run_id, seq=commit.seq))


def _log_position(conn: sa.Connection) -> int:
    """The number of the last shared-log entry this catalog applied or refused (0 for none)."""
    applied = sa.select(sa.func.max(t.commits.c.seq)).scalar_subquery()
    refused = sa.select(sa.func.max(t.log_refused.c.seq)).scalar_subquery()
    row = conn.execute(sa.select(sa.func.coalesce(applied, 0), sa.func.coalesce(refused, 0))).one()
    return int(max(row[0], row[1]))


def _table_row(table: sa.Table, row: dict[str, Any], commit_id: str) -> dict[str, Any]:
    """A records row as a table row: known columns only, times parsed, the commit filled in."""
    out = {k: v for k, v in row.items() if k in table.c}
    for key in _TIME_COLUMNS:
        if isinstance(out.get(key), str):
            out[key] = values.parse_timestamp(out[key])
    if "commit_id" in table.c:
        out["commit_id"] = commit_id
    return out


def unreachable(url: str, exc: sa.exc.OperationalError) -> CatalogError:
    """The error for a catalog that cannot be connected to: its URL (password masked), the reason, what to check."""
    shown = redact_url(url.replace("postgresql+psycopg://", "postgresql://", 1))  # as the user wrote it
    reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    if url.startswith("sqlite"):
        hint = "check that the lake's folder exists and this user can write there"
    else:
        hint = ("check that the PostgreSQL server is running and reachable at that host and port, that the database "
                "and user exist, and the password (in PGPASSWORD or ~/.pgpass)")
    return CatalogError(f"cannot connect to the catalog at {shown}: {redact_url(reason)}", hint=hint, url=shown)


class Catalog(StepReads):
    """A lake's catalog on SQLite or PostgreSQL: every SQL read and write of the kernel.

    Opening it brings the schema up to date (see :mod:`~limnos.catalog.migrations`).

    Raises:
        CatalogError: the URL is not a supported database.
        CatalogVersionError: the catalog was written by a newer limnos.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            self.schema_version = migrate(self.engine)
        except sa.exc.OperationalError as exc:  # the first connection: say which database, never its password
            self.engine.dispose()
            raise unreachable(url, exc) from None
        #: writers hold it shared from storing an object until their commit is done; gc deletes holding it alone
        self.guard = WriterGuard(self.engine)

    def __repr__(self) -> str:
        return f"Catalog({redact_url(self.url)!r})"

    def close(self) -> None:
        """Close every pooled connection (the catalog opens new ones if used again)."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writes
    def key_types(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """key -> its fixed metadata type, for the given keys that have one (all keys when None)."""
        stmt = sa.select(t.key_types.c.key, t.key_types.c.type)
        if keys is not None:
            stmt = stmt.where(t.key_types.c.key.in_(list(keys)))
        with self.engine.connect() as conn:
            return {k: ty for k, ty in conn.execute(stmt)}

    def commit(self, commit: Commit, write_records: Callable[[Commit], None], sequenced: bool = False) -> Commit:
        """Allocate versions, insert every row, write the records file, then COMMIT.

        Rows are inserted before the records file is written, so any
        constraint or type failure aborts before the write-ahead log exists.
        With ``sequenced`` (a team lake), ``commit.seq`` is set to the shared
        log entry after the last one applied, for ``write_records`` to publish.
        """

        def txn(conn: sa.Connection) -> Commit:
            if sequenced:
                commit.seq = _log_position(conn) + 1
            self._allocate_versions(conn, commit.files)
            self._fix_key_types(conn, commit.metadata)
            self._insert(conn, commit)
            write_records(commit)
            return commit

        return run_atomic(self.engine, txn)

    def _allocate_versions(self, conn: sa.Connection, files: list[dict[str, Any]]) -> None:
        if not files:
            return
        # Sorted, so two writers lock name rows in the same order and cannot deadlock.
        wanted = sorted({f["name"] for f in files})
        latest: dict[str, int] = {}
        postgres = conn.dialect.name == "postgresql"
        for chunk in chunks(wanted):
            if postgres:
                # Make every row exist so that FOR UPDATE can lock it; SQLite needs
                # none of this, as BEGIN IMMEDIATE already holds the database lock.
                insert_ignore(conn, t.names, [{"name": n, "latest": 0} for n in chunk])
            stmt = sa.select(t.names.c.name, t.names.c.latest).where(t.names.c.name.in_(chunk)).with_for_update()
            latest.update({n: v for n, v in conn.execute(stmt)})
        for f in files:
            latest[f["name"]] = latest.get(f["name"], 0) + 1
            f["version"] = latest[f["name"]]
        upsert(conn, t.names, [{"name": n, "latest": latest[n], "current": latest[n]} for n in wanted], ["name"])

    def _store_latest(self, conn: sa.Connection, latest: dict[str, int]) -> None:
        stmt = (
            sa.update(t.names)
            .where(t.names.c.name == sa.bindparam("b_name"))
            .values(latest=sa.bindparam("b_latest"), current=sa.bindparam("b_latest"))
        )
        conn.execute(stmt, [{"b_name": n, "b_latest": v} for n, v in latest.items()])

    def _fix_key_types(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        wanted = {r["key"]: r["vtype"] for r in rows if not r.get("deleted")}
        if not wanted:
            return
        insert_ignore(conn, t.key_types, [{"key": k, "type": v} for k, v in sorted(wanted.items())])
        stmt = sa.select(t.key_types.c.key, t.key_types.c.type).where(t.key_types.c.key.in_(list(wanted)))
        fixed: dict[str, str] = {key: vtype for key, vtype in conn.execute(stmt)}
        for key, vtype in wanted.items():
            if fixed[key] != vtype:
                # Another writer fixed the key's type first, between our check and this transaction.
                raise SchemaError(f"metadata key {key!r} holds {fixed[key]} values, not {vtype}; "
                                  f"pass a {fixed[key]} or use a new key")

    def _insert(self, conn: sa.Connection, commit: Commit) -> None:
        if commit.run:
            insert_ignore(conn, t.runs, [commit.run])
        _insert_commit_row(conn, commit)
        for f in commit.files:
            f.setdefault("created_at", commit.created_at)
            f["commit_id"] = commit.id
        for chunk in chunks(commit.files, 5000):
            execute_many(conn, t.files.insert(), t.files, list(chunk))
        if commit.inputs:
            execute_many(conn, t.inputs.insert(), t.inputs, commit.inputs)
        self._insert_metadata(conn, commit)
        self._apply_extra(conn, commit)

    # Rows beyond files, edges and metadata: type -> table they go to.
    _EXTRA_TABLES: ClassVar[dict[str, sa.Table]] = {
        "tombstone": t.tombstones, "lock": t.locks, "step": t.steps, "step_output": t.step_outputs,
    }

    def _apply_extra(self, conn: sa.Connection, commit: Commit) -> None:
        if not commit.extra:
            return
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in commit.extra:
            grouped.setdefault(row["type"], []).append(row)
        for kind in ("step", "step_output", "lock", "tombstone"):
            table = self._EXTRA_TABLES[kind]
            rows = [_table_row(table, r, commit.id) for r in grouped.get(kind, [])]
            insert_ignore(conn, table, rows)
        unlocked = [r["file_id"] for r in grouped.get("unlock", [])]
        for chunk in chunks(unlocked):
            conn.execute(sa.delete(t.locks).where(t.locks.c.file_id.in_(chunk)))
        deleted = [r["file_id"] for r in grouped.get("tombstone", [])]
        if deleted:
            self._refresh_current(conn, deleted)
        self._apply_datasource_rows(conn, grouped, commit)

    def _apply_datasource_rows(self, conn: sa.Connection, grouped: dict[str, list[dict[str, Any]]], commit: Commit) -> None:
        """Schema v3 rows (see datasources.py). Their times are the commit's, as metadata's are."""
        when = commit.created_at
        ds, dp = t.datasources, t.datapoints
        insert_ignore(conn, ds, [dict(_table_row(ds, r, commit.id), created_at=when) for r in grouped.get("datasource", [])])
        insert_ignore(conn, dp, [dict(_table_row(dp, r, commit.id), added_at=when) for r in grouped.get("datapoint", [])])
        for chunk in chunks([r["id"] for r in grouped.get("datapoint_end", [])]):
            conn.execute(sa.update(dp).where(dp.c.id.in_(chunk), dp.c.removed_at.is_(None)).values(removed_at=when))
        for kind, column in (("datasource_scan", "scanned_at"), ("datasource_delete", "deleted_at")):
            for r in grouped.get(kind, []):
                conn.execute(sa.update(ds).where(ds.c.id == r["datasource_id"]).values({column: when}))
        apply_field_rows(conn, grouped.get("datasource_field", []), grouped.get("ds_value", []), commit.id, when)
        for r in grouped.get("dataset", []):
            row = dict(_table_row(t.datasets, r, commit.id), created_at=when)
            if isinstance(row.get("as_of"), str):
                row["as_of"] = values.parse_timestamp(row["as_of"])
            upsert(conn, t.datasets, [row], ["name"])
        for r in grouped.get("dataset_delete", []):
            conn.execute(sa.delete(t.datasets).where(t.datasets.c.name == r["name"]))

    def _refresh_current(self, conn: sa.Connection, file_ids: list[str]) -> None:
        """After deletions, point each affected name at its newest surviving version."""
        names: set[str] = set()
        for chunk in chunks(file_ids):
            names.update(conn.execute(sa.select(t.files.c.name).where(t.files.c.id.in_(chunk))).scalars())
        alive = ~sa.exists().where(t.tombstones.c.file_id == t.files.c.id)
        for name in sorted(names):
            newest = conn.execute(sa.select(sa.func.max(t.files.c.version)).where(t.files.c.name == name, alive)).scalar()
            conn.execute(sa.update(t.names).where(t.names.c.name == name).values(current=newest))

    def _insert_metadata(self, conn: sa.Connection, commit: Commit) -> None:
        if not commit.metadata:
            return
        log_rows: list[dict[str, Any]] = []
        current: dict[tuple[str, str], dict[str, Any]] = {}
        gone: set[tuple[str, str]] = set()
        for r in commit.metadata:
            row = {
                "file_id": r["file_id"],
                "key": r["key"],
                "type": r["vtype"],
                "v_int": r.get("v_int"),
                "v_float": r.get("v_float"),
                "v_str": r.get("v_str"),
                "set_at": commit.created_at,
                "deleted": bool(r.get("deleted")),
                "commit_id": commit.id,
            }
            log_rows.append(row)
            ident = (r["file_id"], r["key"])
            if row["deleted"]:
                current.pop(ident, None)
                gone.add(ident)
            else:
                gone.discard(ident)
                current[ident] = {k: row[k] for k in ("file_id", "key", "type", "v_int", "v_float", "v_str", "set_at")}
        for chunk in chunks(log_rows, 5000):
            execute_many(conn, t.metadata_log.insert(), t.metadata_log, list(chunk))
        for file_id, key in gone:
            conn.execute(
                sa.delete(t.metadata_current).where(
                    t.metadata_current.c.file_id == file_id, t.metadata_current.c.key == key
                )
            )
        rows = list(current.values())
        for chunk in chunks(rows, 5000):
            upsert(conn, t.metadata_current, list(chunk), ["file_id", "key"])

    # ------------------------------------------------------------ the shared log
    def log_position(self) -> int:
        """The number of the last shared-log entry this catalog applied or refused (0 for none)."""
        with self.engine.connect() as conn:
            return _log_position(conn)

    def refuse_log_entries(self, reasons: dict[int, str]) -> None:
        """Remember shared-log entries that cannot be applied, so the position moves past them."""
        if not reasons:
            return
        now = dt.datetime.now(dt.timezone.utc)
        rows = [{"seq": seq, "reason": why[:1000], "refused_at": now} for seq, why in sorted(reasons.items())]
        run_atomic(self.engine, lambda conn: insert_ignore(conn, t.log_refused, rows))

    def commit_seqs(self, commit_ids: Sequence[str]) -> dict[str, int | None]:
        """commit id -> its shared-log entry (None when it has none), for those of ``commit_ids`` present."""
        out: dict[str, int | None] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(commit_ids)):
                stmt = sa.select(t.commits.c.id, t.commits.c.seq).where(t.commits.c.id.in_(chunk))
                out.update({i: (int(s) if s is not None else None) for i, s in conn.execute(stmt)})
        return out

    def commit_positions(self, commit_ids: Iterable[str]) -> dict[str, int]:
        """commit id -> its shared-log entry, for those of ``commit_ids`` that have one."""
        return {c: s for c, s in self.commit_seqs(list(commit_ids)).items() if s is not None}

    def refused_log_entries(self) -> dict[int, str]:
        """seq -> why, for every shared-log entry this catalog could not apply."""
        with self.engine.connect() as conn:
            return {int(s): r for s, r in conn.execute(sa.select(t.log_refused.c.seq, t.log_refused.c.reason))}

    # ------------------------------------------------------------ replaying
    def commit_ids(self) -> set[str]:
        """The id of every commit in the catalog."""
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(t.commits.c.id)).scalars())

    def has_commit(self, commit_id: str) -> bool:
        """True when the commit is in the catalog (asked on a fresh connection)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.commits.c.id).where(t.commits.c.id == commit_id)).first() is not None

    def replay_each(self, commits: Sequence[Commit]) -> tuple[list[tuple[str, int, int]], dict[str, str]]:
        """:meth:`replay`, and when a commit's rows do not fit the catalog, each commit on its own.

        A crafted or damaged commit (a size beyond 64 bits, a type the database
        refuses) then fails alone and the others go in.

        Returns:
            (renumbered versions as :meth:`replay` gives them, id -> why for each commit refused).

        Raises:
            sqlalchemy.exc.OperationalError: the database itself failed (nothing is refused for that).
        """
        try:
            return self.replay(commits), {}
        except Exception as exc:
            if not is_data_error(exc):
                raise
        renumbered: list[tuple[str, int, int]] = []
        refused: dict[str, str] = {}
        for commit in commits:
            try:
                renumbered += self.replay([commit])
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                if not self.has_commit(commit.id):  # else another process applied it first: no fault of its own
                    refused[commit.id] = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        return renumbered, refused

    def replay(self, commits: Sequence[Commit]) -> list[tuple[str, int, int]]:
        """Apply commits read from records files, in the order given, in one transaction.

        Commits already present are skipped. A recorded version that another
        file already holds (two offline writers) is renumbered after the
        latest; the returned list says (name, recorded, assigned) for each.
        """
        renumbered: list[tuple[str, int, int]] = []

        def txn(conn: sa.Connection) -> None:
            present: set[str] = set()
            ids = [c.id for c in commits]
            for chunk in chunks(ids):
                present.update(conn.execute(sa.select(t.commits.c.id).where(t.commits.c.id.in_(chunk))).scalars())
            todo = [c for c in commits if c.id not in present]
            # Pass 1: every file, so that lineage edges and metadata find their files.
            for commit in todo:
                if commit.run:
                    insert_ignore(conn, t.runs, [commit.run])
                _insert_commit_row(conn, commit)
                renumbered.extend(self._replay_files(conn, commit))
            # Pass 2: edges and metadata, in commit order.
            known: set[str] = set()
            for commit in todo:
                wanted = {e["input_id"] for e in commit.inputs} | {e["file_id"] for e in commit.inputs}
                missing = wanted - known
                for chunk in chunks(sorted(missing)):
                    known.update(conn.execute(sa.select(t.files.c.id).where(t.files.c.id.in_(chunk))).scalars())
                edges = [e for e in commit.inputs if e["input_id"] in known and e["file_id"] in known]
                insert_ignore(conn, t.inputs, edges)
                self._fix_key_types(conn, commit.metadata)
                self._insert_metadata(conn, commit)
                self._apply_extra(conn, commit)
            adopt_legacy_fields(conn)  # fields registered by records written before schema v5

        run_atomic(self.engine, txn)
        return renumbered

    def _replay_files(self, conn: sa.Connection, commit: Commit) -> list[tuple[str, int, int]]:
        renumbered: list[tuple[str, int, int]] = []
        if not commit.files:
            return renumbered
        names = sorted({f["name"] for f in commit.files})
        insert_ignore(conn, t.names, [{"name": n, "latest": 0} for n in names])
        latest: dict[str, int] = {}
        taken: set[tuple[str, int]] = set()
        for chunk in chunks(names):
            stmt = sa.select(t.names.c.name, t.names.c.latest).where(t.names.c.name.in_(chunk)).with_for_update()
            latest.update({name: version for name, version in conn.execute(stmt)})
        # Versions already held, by name: one indexed IN query per chunk, matched in Python
        # (an OR of 500 (name, version) pairs costs more to build than to run).
        wanted = {(f["name"], f["version"]) for f in commit.files}
        stmt = sa.select(t.files.c.name, t.files.c.version)
        for chunk in chunks(names):
            held = (tuple(pair) for pair in conn.execute(stmt.where(t.files.c.name.in_(chunk))))
            taken.update(pair for pair in held if pair in wanted)
        rows = []
        for f in commit.files:
            row = dict(f)
            if (row["name"], row["version"]) in taken:
                new = latest[row["name"]] + 1
                renumbered.append((row["name"], row["version"], new))
                row["version"] = new
            latest[row["name"]] = max(latest[row["name"]], row["version"])
            taken.add((row["name"], row["version"]))
            rows.append(row)
        for chunk in chunks(rows, 5000):
            insert_ignore(conn, t.files, list(chunk))
        self._store_latest(conn, {n: latest[n] for n in names})
        return renumbered

    # ----------------------------------------------------------------- reads
    def file_by_id(self, file_id: str) -> FileRow | None:
        """The file with this id, or None (also when it was deleted)."""
        with self.engine.connect() as conn:
            r = conn.execute(file_select().where(t.files.c.id == file_id)).first()
        return file_row(r) if r else None

    def files_by_ids(self, ids: Sequence[str], include_deleted: bool = False) -> dict[str, FileRow]:
        """id -> file, for the given ids that name a file not deleted (``include_deleted``: deleted ones too)."""
        out: dict[str, FileRow] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(ids)):
                stmt = file_select(include_deleted).where(t.files.c.id.in_(chunk))
                out.update((r.id, file_row(r)) for r in conn.execute(stmt))
        return out

    def file_by_name(self, name: str, version: int | None = None) -> FileRow | None:
        """Version ``version`` of ``name`` (the newest not deleted when None), or None."""
        stmt = file_select().where(t.files.c.name == name)
        stmt = stmt.where(t.files.c.version == version) if version else stmt.order_by(t.files.c.version.desc()).limit(1)
        with self.engine.connect() as conn:
            r = conn.execute(stmt).first()
        return file_row(r) if r else None

    def latest(self, prefix: str = "") -> list[FileRow]:
        """The current version of every name that starts with ``prefix``, by name."""
        stmt = file_select().join(
            t.names, is_current()
        )
        if prefix:
            stmt = stmt.where(t.files.c.name.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return [file_row(r) for r in conn.execute(stmt.order_by(t.files.c.name))]

    def latest_pages(self, prefix: str = "", page: int = 1000, after: str | None = None) -> Iterator[list[FileRow]]:
        """What :meth:`latest` returns, ``page`` rows at a time, by name, for listings too long to hold at once.

        Each page is its own query that starts after the last name of the one
        before (keyset paging on the names table's key), so no connection or
        read transaction stays open while the caller prints, and a name is
        never listed twice nor skipped when writers commit between pages.
        ``after``: start after this name (a page of a listing the caller resumes).
        """
        while True:
            stmt = file_select().join(t.names, is_current())
            if prefix:
                stmt = stmt.where(t.names.c.name.startswith(prefix, autoescape=True))
            if after is not None:
                stmt = stmt.where(t.names.c.name > after)
            with self.engine.connect() as conn:
                rows = [file_row(r) for r in conn.execute(stmt.order_by(t.names.c.name).limit(page))]
            if rows:
                yield rows
            if len(rows) < page:
                return
            after = rows[-1].name

    def latest_rows(self, names: Sequence[str]) -> dict[str, FileRow]:
        """name -> latest FileRow, for the given names that exist."""
        out: dict[str, FileRow] = {}
        stmt = file_select().join(
            t.names, is_current()
        )
        with self.engine.connect() as conn:
            for chunk in chunks(list(names)):
                out.update((r.name, file_row(r)) for r in conn.execute(stmt.where(t.files.c.name.in_(chunk))))
        return out

    def latest_under(self, prefix: str) -> dict[str, str | None]:
        """name -> hash of the latest version of every name under a prefix."""
        stmt = sa.select(t.files.c.name, t.files.c.hash).join(
            t.names, is_current()
        )
        if prefix:
            stmt = stmt.where(t.files.c.name.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return {name: digest for name, digest in conn.execute(stmt)}

    def history(self, name: str) -> list[FileRow]:
        """Every version of ``name`` not deleted, oldest first."""
        with self.engine.connect() as conn:
            return [file_row(r) for r in conn.execute(file_select().where(t.files.c.name == name).order_by(t.files.c.version))]

    def inputs_of(self, file_ids: Sequence[str]) -> dict[str, list[str]]:
        """file id -> the ids of its lineage inputs, in the order they were read."""
        out: dict[str, list[str]] = {i: [] for i in file_ids}
        stmt = sa.select(t.inputs.c.file_id, t.inputs.c.input_id).order_by(t.inputs.c.file_id, t.inputs.c.position)
        with self.engine.connect() as conn:
            for chunk in chunks(list(file_ids)):
                for fid, iid in conn.execute(stmt.where(t.inputs.c.file_id.in_(chunk))):
                    out[fid].append(iid)
        return out

    def outputs_of(self, file_ids: Sequence[str]) -> dict[str, list[str]]:
        """The files that list each given file as an input (one step downstream)."""
        out: dict[str, list[str]] = {i: [] for i in file_ids}
        stmt = sa.select(t.inputs.c.input_id, t.inputs.c.file_id).order_by(t.inputs.c.file_id)
        with self.engine.connect() as conn:
            for chunk in chunks(list(file_ids)):
                for iid, fid in conn.execute(stmt.where(t.inputs.c.input_id.in_(chunk))):
                    out[iid].append(fid)
        return out

    def metadata_of(self, file_ids: Sequence[str], as_of: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
        """file id -> its metadata (key -> value): the current values, or as they were at ``as_of``."""
        out: dict[str, dict[str, Any]] = {i: {} for i in file_ids}
        with self.engine.connect() as conn:
            for chunk in chunks(list(file_ids)):
                if as_of is None:
                    m = t.metadata_current
                    current = (sa.select(m.c.file_id, m.c.key, m.c.type, m.c.v_int, m.c.v_float, m.c.v_str)
                               .where(m.c.file_id.in_(chunk)))
                    for r in conn.execute(current.order_by(m.c.key)):
                        out[r.file_id][r.key] = values.decode(r.type, r.v_int, r.v_float, r.v_str)
                else:
                    log = t.metadata_log
                    stmt = (
                        sa.select(log.c.file_id, log.c.key, log.c.type, log.c.v_int, log.c.v_float, log.c.v_str, log.c.deleted)
                        .where(log.c.file_id.in_(chunk), log.c.set_at <= as_of)
                        .order_by(log.c.seq)
                    )
                    for e in conn.execute(stmt):
                        if e.deleted:
                            out[e.file_id].pop(e.key, None)
                        else:
                            out[e.file_id][e.key] = values.decode(e.type, e.v_int, e.v_float, e.v_str)
        return out

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The provenance row of a run (user, host, argv, git...), or None."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()
        if r is None:
            return None
        row = dict(r._mapping)
        row["started_at"] = to_utc(row["started_at"])
        return row

    def locked_ids(self, file_ids: Sequence[str]) -> set[str]:
        """The given file ids that are locked."""
        return self._ids_in(t.locks.c.file_id, file_ids)

    def deleted_ids(self, file_ids: Sequence[str]) -> set[str]:
        """The given file ids that were deleted (``rm``: a tombstone)."""
        return self._ids_in(t.tombstones.c.file_id, file_ids)

    def _ids_in(self, column: sa.Column[Any], file_ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(list(file_ids)):
                out.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
        return out

    def all_files(self) -> list[FileRow]:
        """Every version of every name (not deleted)."""
        with self.engine.connect() as conn:
            return [file_row(r) for r in conn.execute(file_select().order_by(t.files.c.name, t.files.c.version))]

    def runs_with_script(self) -> list[tuple[str, str | None]]:
        """(run id, script path) of every run that was started from a script."""
        with self.engine.connect() as conn:
            return [(i, s) for i, s in conn.execute(sa.select(t.runs.c.id, t.runs.c.script).where(t.runs.c.script.isnot(None)))]

    def inputs_of_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Ids of the files read by the given runs (the inputs of what they wrote), first-read order."""
        out: dict[str, None] = {}
        stmt = (
            sa.select(t.inputs.c.input_id)
            .join(t.files, t.files.c.id == t.inputs.c.file_id)
            .order_by(t.files.c.created_at, t.inputs.c.position)
        )
        with self.engine.connect() as conn:
            for chunk in chunks(list(run_ids)):
                out.update(dict.fromkeys(conn.execute(stmt.where(t.files.c.run_id.in_(chunk))).scalars()))
        return list(out)

    def blob_hashes(self, file_ids: Sequence[str]) -> set[str]:
        """The object hashes of every blob metadata value ever set on the given files."""
        out: set[str] = set()
        log = t.metadata_log
        with self.engine.connect() as conn:
            for chunk in chunks(list(file_ids)):
                for table in (log, t.ds_values_log):
                    stmt = sa.select(table.c.v_str).where(table.c.file_id.in_(chunk), table.c.type == "blob").distinct()
                    out.update(h for h in conn.execute(stmt).scalars() if h)
        return out

    # ------------------------------------------------------------ checking
    def referenced_hashes(self, deleted_since: dt.datetime | None = None) -> set[str]:
        """Objects that some live file (or a blob value) refers to: what gc must keep.

        With ``deleted_since``, also the objects of files deleted at or after that time.
        """
        tomb = t.tombstones.c
        gone = sa.exists().where(tomb.file_id == t.files.c.id)
        if deleted_since is not None:
            gone = sa.exists().where(tomb.file_id == t.files.c.id, tomb.deleted_at < deleted_since)
        alive = ~gone
        with self.engine.connect() as conn:
            hashes = set(conn.execute(sa.select(t.files.c.hash).where(t.files.c.hash.isnot(None), alive).distinct()).scalars())
            for log in (t.metadata_log, t.ds_values_log):
                blobs = conn.execute(sa.select(log.c.v_str).where(log.c.type == "blob").distinct()).scalars()
                hashes.update(b for b in blobs if b)
        return hashes

    def live_hashes(self, hashes: Iterable[str]) -> set[str]:
        """The given object hashes that a file not deleted (or any blob value) refers to."""
        alive = ~sa.exists().where(t.tombstones.c.file_id == t.files.c.id)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(hashes))):
                found.update(conn.execute(sa.select(t.files.c.hash).where(t.files.c.hash.in_(chunk), alive)
                                          .distinct()).scalars())
                log = t.metadata_log.c
                blobs = sa.select(log.v_str).where(log.type == "blob", log.v_str.in_(chunk))
                found.update(v for v in conn.execute(blobs.distinct()).scalars() if v)
        return found

    def hashes_in_use(self, hashes: Sequence[str]) -> set[str]:
        """The given object hashes that some file (deleted or not) or blob value refers to."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(hashes))):
                found.update(conn.execute(sa.select(t.files.c.hash).where(t.files.c.hash.in_(chunk)).distinct()).scalars())
                log = t.metadata_log.c
                blobs = sa.select(log.v_str).where(log.type == "blob", log.v_str.in_(chunk))
                found.update(v for v in conn.execute(blobs.distinct()).scalars() if v)
        return found

    def object_sizes(self) -> dict[str, int]:
        """hash -> size of every object a file (deleted or not) refers to."""
        with self.engine.connect() as conn:
            stmt = sa.select(t.files.c.hash, t.files.c.size).where(t.files.c.kind == "object").distinct()
            return {h: s for h, s in conn.execute(stmt) if h}

    def count_files(self) -> int:
        """The number of file versions, deleted ones included."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.files)).scalar() or 0)

    def is_empty(self) -> bool:
        """True when the catalog holds no commit (new, or lost and recreated)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.commits.c.id).limit(1)).first() is None

    def wipe(self) -> None:
        """Delete every row (for ``reindex`` into an existing catalog)."""
        def txn(conn: sa.Connection) -> None:
            for table in reversed(t.metadata_obj.sorted_tables):
                if table is not t.schema_version:
                    conn.execute(table.delete())

        with atomic(self.engine) as conn:
            txn(conn)

    # ------------------------------------------------------------------ steps
    # Step executions arrive as "step"/"step_output" extra rows of a commit
    # (see _apply_extra); these are the reads the @step decorator and lineage need.

    def step_hit(self, key: str) -> StepHit | None:
        """The newest successful execution of a cache key with its outputs, or None.

        One indexed query (steps(key, status), then its outputs by primary key).
        An execution whose outputs were deleted since is no hit: the step runs again.
        """
        with self.engine.connect() as conn:
            return step_hit(conn, key)

    def commit_step(self, commit: Commit, key: str | None, write_records: Callable[[Commit], None],
                    sequenced: bool = False) -> StepHit | None:
        """Commit a step's outputs and record, unless ``key`` was recorded meanwhile.

        The lookup runs inside the write transaction: SQLite's BEGIN IMMEDIATE and,
        on PostgreSQL, an advisory lock on the key serialize writers of one key, so
        two processes that computed the same key record it once. Returns the
        execution that won (nothing of ours is written), or None once ours is in.
        """

        def txn(conn: sa.Connection) -> StepHit | None:
            if key is not None:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(key[:15], 16)})
                found = step_hit(conn, key)
                if found is not None:
                    return found
            if sequenced:
                commit.seq = _log_position(conn) + 1
            self._allocate_versions(conn, commit.files)
            self._fix_key_types(conn, commit.metadata)
            self._insert(conn, commit)
            write_records(commit)
            return None

        return run_atomic(self.engine, txn)
