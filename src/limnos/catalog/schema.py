"""Catalog tables (SQLAlchemy Core).

``files`` rows never change once written; a new version is a new row.
``metadata_log`` is append-only so any past state can be read back
(``as_of``); ``metadata`` holds the current value of each (file, key) and is
what indexed queries hit. ``names`` keeps each name's last version number so
that versions are allocated under a row lock, without races.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata_obj = sa.MetaData()
UTCDateTime = sa.DateTime(timezone=True)

schema_version = sa.Table(
    "limnos_schema_version",
    metadata_obj,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", UTCDateTime, nullable=False),
    sa.Column("limnos_version", sa.String(64), nullable=False),
)

commits = sa.Table(
    "commits",
    metadata_obj,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(26)),
    # A team lake's shared log position (log/<seq>.jsonl); NULL for commits of lakes without a shared log.
    sa.Column("seq", sa.BigInteger),
)
sa.Index("ix_commits_seq", commits.c.seq, unique=True)

#: Entries of a team lake's shared log that this catalog could not apply (damaged or refused by the database):
#: the position moves past them, so one bad entry never stops a machine from catching up.
log_refused = sa.Table(
    "log_refused",
    metadata_obj,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("refused_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata_obj,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("user", sa.Text),
    sa.Column("host", sa.Text),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("argv", sa.JSON),
    sa.Column("cwd", sa.Text),
    sa.Column("script", sa.Text),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("git_diff_hash", sa.String(64)),
    sa.Column("git_remote", sa.Text),
    sa.Column("python", sa.String(64)),
    sa.Column("limnos_version", sa.String(64)),
    sa.Column("notebook", sa.Text),
    sa.Column("packages", sa.JSON),
    sa.Column("config", sa.JSON),
)

names = sa.Table(
    "names",
    metadata_obj,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("latest", sa.Integer, nullable=False),  # the highest version ever allocated
    sa.Column("current", sa.Integer),  # the newest version not deleted (schema v2); NULL if none
)

files = sa.Table(
    "files",
    metadata_obj,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64)),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.String(26), sa.ForeignKey("runs.id")),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="object"),
    sa.Column("uri", sa.Text),
    sa.UniqueConstraint("name", "version", name="uq_files_name_version"),
    sa.Index("ix_files_hash", "hash"),
    sa.Index("ix_files_run", "run_id"),
)

inputs = sa.Table(
    "inputs",
    metadata_obj,
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("input_id", sa.String(26), sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Index("ix_inputs_input", "input_id"),
)

key_types = sa.Table(
    "metadata_schema",
    metadata_obj,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
)


def _value_columns() -> list[sa.Column[Any]]:
    # One typed column per storage class, so that each can carry an index.
    return [
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("v_int", sa.BigInteger),
        sa.Column("v_float", sa.Float(precision=53)),
        sa.Column("v_str", sa.Text),
    ]


metadata_log = sa.Table(
    "metadata_log",
    metadata_obj,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    *_value_columns(),
    sa.Column("set_at", UTCDateTime, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
    sa.Index("ix_metadata_log_file_key", "file_id", "key", "set_at"),
)

metadata_current = sa.Table(
    "metadata",
    metadata_obj,
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    *_value_columns(),
    sa.Column("set_at", UTCDateTime, nullable=False),
    sa.Index("ix_metadata_key_int", "key", "v_int"),
    sa.Index("ix_metadata_key_float", "key", "v_float"),
    # PostgreSQL's btree rejects index rows over ~2.7 kB, and a str value may be
    # longer; a hash index has no such limit and serves equality filters.
    sa.Index("ix_metadata_key_str", "key", "v_str").ddl_if(dialect="sqlite"),
)


def _postgresql_hash_index(table: sa.Table, name: str, column: str) -> None:
    """A ``USING hash`` index made with ``table`` on PostgreSQL only.

    Written as DDL rather than ``sa.Index(..., postgresql_using="hash")``: that
    keyword makes SQLAlchemy import its whole PostgreSQL dialect as this module
    loads, a cost every command on a SQLite catalog would pay at start-up.
    """
    ddl = sa.DDL(f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} USING hash ({column})")  # type: ignore[no-untyped-call]  # (SQLAlchemy leaves DDL untyped)
    sa.event.listen(table, "after_create", ddl.execute_if(dialect="postgresql"))


_postgresql_hash_index(metadata_current, "ix_metadata_str_hash", "v_str")

# ---------------------------------------------------------------- schema v2
# Deletions, locks and step executions. Like every catalog row they arrive
# through commits, so records files carry them and ``reindex`` restores them.

tombstones = sa.Table(
    "tombstones",
    metadata_obj,
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("deleted_at", UTCDateTime, nullable=False),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
)

locks = sa.Table(
    "locks",
    metadata_obj,
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("locked_at", UTCDateTime, nullable=False),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
)

steps = sa.Table(
    "steps",
    metadata_obj,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),  # the cache key
    sa.Column("function", sa.Text, nullable=False),  # module.qualname
    sa.Column("module", sa.Text),
    sa.Column("code_hash", sa.String(64)),
    sa.Column("version", sa.Text),  # the decorator's version= option
    sa.Column("source_file", sa.Text),
    sa.Column("source_line", sa.Integer),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_remote", sa.Text),
    sa.Column("permalink", sa.Text),
    sa.Column("params", sa.JSON),
    sa.Column("inputs", sa.JSON),  # [{id, name, version, hash}]
    sa.Column("user", sa.Text),
    sa.Column("host", sa.Text),
    sa.Column("limnos_version", sa.String(64)),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("duration", sa.Float(precision=53)),
    sa.Column("status", sa.String(16), nullable=False),  # ok | failed
    sa.Column("error", sa.Text),
    sa.Column("output_kind", sa.Text),  # how to rebuild the return value on a hit
    sa.Column("run_id", sa.String(26)),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
    sa.Index("ix_steps_key", "key", "status"),
)

step_outputs = sa.Table(
    "step_outputs",
    metadata_obj,
    sa.Column("step_id", sa.String(26), sa.ForeignKey("steps.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), nullable=False),
    sa.Column("label", sa.Text),  # dict key or explicit output name, for rebuilding the return value
    sa.Index("ix_step_outputs_file", "file_id"),
)

# ---------------------------------------------------------------- schema v3
# Datasources (DagsHub Data Engine style): a named set of datapoints, each a
# path under the source's root backed by a file (a lake file, or a reference
# to bytes outside the store). A datapoint row is one span of time; a rescan
# that sees new content ends it and starts another, so ``as_of`` can replay
# membership. Field values are ordinary file metadata. Every row arrives
# through a commit (extra rows), so records files carry it and reindex restores it.

datasources = sa.Table(
    "datasources",
    metadata_obj,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("root", sa.Text, nullable=False),  # a lake prefix ("raw/img/") or an external URL, never a credential
    sa.Column("kind", sa.String(16), nullable=False),  # lake | external
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("scanned_at", UTCDateTime),  # end of the last complete scan; NULL until the first one ends
    sa.Column("deleted_at", UTCDateTime),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
    sa.Index("ix_datasources_name", "name"),
)

datapoints = sa.Table(
    "datapoints",
    metadata_obj,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("datasource_id", sa.String(26), sa.ForeignKey("datasources.id"), nullable=False),
    sa.Column("path", sa.Text, nullable=False),  # relative to the datasource's root
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), nullable=False),
    sa.Column("fingerprint", sa.Text),  # the source's etag, or size:mtime, when scanned
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Column("removed_at", UTCDateTime),  # NULL while current
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
    sa.Index("ix_datapoints_source_path", "datasource_id", "path"),
    sa.Index("ix_datapoints_file", "file_id"),
)

datasource_fields = sa.Table(
    "datasource_fields",
    metadata_obj,
    sa.Column("datasource_id", sa.String(26), sa.ForeignKey("datasources.id"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    # Fixed by the field's first value, per datasource (schema v5). NULL: registered by a commit written
    # before v5, whose values are file metadata until adopted (catalog/datasources.adopt_legacy_fields).
    sa.Column("type", sa.String(16)),
)

datasets = sa.Table(
    "datasets",
    metadata_obj,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("datasource_id", sa.String(26), sa.ForeignKey("datasources.id"), nullable=False),
    sa.Column("query", sa.JSON, nullable=False),  # the serialized query (filter, select, order, limit)
    sa.Column("as_of", UTCDateTime),  # pinned time, or NULL for the live view
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
)

# ---------------------------------------------------------------- schema v5
# A datasource's own field values, apart from every other datasource's and
# from the lake's file metadata (which a datasource shows as read-only
# ``lake.<key>`` fields). Same shape as metadata_log/metadata, keyed also by
# the datasource; rows arrive as "ds_value" extra rows of commits.

ds_values_log = sa.Table(
    "ds_values_log",
    metadata_obj,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("datasource_id", sa.String(26), sa.ForeignKey("datasources.id"), nullable=False),
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    *_value_columns(),
    sa.Column("set_at", UTCDateTime, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("commit_id", sa.String(26), sa.ForeignKey("commits.id"), nullable=False),
    sa.Index("ix_ds_values_log_file_key", "datasource_id", "file_id", "key", "set_at"),
)

ds_values = sa.Table(
    "ds_values",
    metadata_obj,
    sa.Column("datasource_id", sa.String(26), sa.ForeignKey("datasources.id"), primary_key=True),
    sa.Column("file_id", sa.String(26), sa.ForeignKey("files.id"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    *_value_columns(),
    sa.Column("set_at", UTCDateTime, nullable=False),
    sa.Index("ix_ds_values_key_int", "datasource_id", "key", "v_int"),
    sa.Index("ix_ds_values_key_float", "datasource_id", "key", "v_float"),
    sa.Index("ix_ds_values_key_str", "datasource_id", "key", "v_str").ddl_if(dialect="sqlite"),
)

_postgresql_hash_index(ds_values, "ix_ds_values_str_hash", "v_str")
