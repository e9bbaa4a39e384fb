"""Step executions in the catalog: the cache-hit lookup and the reads of ``@step`` and lineage.

Step executions arrive as ``step``/``step_output`` extra rows of a commit
(see :meth:`Catalog._apply_extra <limnos.catalog.catalog.Catalog._apply_extra>`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import schema as t
from .engine import chunks
from .rows import FILE_COLUMNS, FileRow, file_row, file_select, is_current
from .values import to_utc


class StepReads:
    """The step reads of :class:`~limnos.catalog.catalog.Catalog` (a mixin over its engine)."""

    engine: sa.Engine

    def steps(self, *, failed: bool | None = None, function: str | None = None, ids: Sequence[str] | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        """Step executions, oldest first (with ``limit``: the newest ``limit``), each with its ``outputs``."""
        s = t.steps
        stmt = sa.select(s)
        if failed is not None:
            stmt = stmt.where(s.c.status == ("failed" if failed else "ok"))
        if function:
            stmt = stmt.where(sa.or_(s.c.function == function, s.c.function.endswith("." + function, autoescape=True)))
        if ids is not None:
            stmt = stmt.where(s.c.id.in_(list(ids)))
        stmt = stmt.order_by(s.c.started_at.desc(), s.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = [step_dict(r) for r in conn.execute(stmt)]
        rows.reverse()
        outputs = self.step_outputs([r["id"] for r in rows])
        for row in rows:
            row["outputs"] = outputs[row["id"]]
        return rows

    def step_outputs(self, step_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """step id -> its outputs [{position, file_id, label}] in position order."""
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in step_ids}
        o = t.step_outputs
        stmt = sa.select(o.c.step_id, o.c.position, o.c.file_id, o.c.label).order_by(o.c.step_id, o.c.position)
        with self.engine.connect() as conn:
            for chunk in chunks(list(step_ids)):
                for r in conn.execute(stmt.where(o.c.step_id.in_(chunk))):
                    out[r.step_id].append({"position": r.position, "file_id": r.file_id, "label": r.label})
        return out

    def steps_of_files(self, file_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """file id -> the step execution that made it (recorded in the file's own commit)."""
        s, o, f = t.steps, t.step_outputs, t.files
        stmt = (sa.select(o.c.file_id, s).select_from(s.join(o, o.c.step_id == s.c.id).join(f, f.c.id == o.c.file_id))
                .where(f.c.commit_id == s.c.commit_id))
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(file_ids)):
                for r in conn.execute(stmt.where(o.c.file_id.in_(chunk))):
                    row = step_dict(r)
                    out[row.pop("file_id")] = row
        return out

    def current_step_files(self) -> list[tuple[FileRow, dict[str, Any]]]:
        """Every current (latest, not deleted) file that a step made, with that step's row."""
        # Driven from the step outputs, then their files by id: one join over every current name made
        # SQLite walk all files (0.13 s at 100k files with no step at all), for what is usually a few rows.
        s, o = t.steps, t.step_outputs
        made = sa.select(o.c.file_id, *[c.label(f"step_{c.name}") for c in s.c]).join(s, s.c.id == o.c.step_id)
        out = []
        with self.engine.connect() as conn:
            steps: dict[str, dict[str, Any]] = {}
            for r in conn.execute(made.where(s.c.status == "ok")):
                m = r._mapping
                step = {c.name: m[f"step_{c.name}"] for c in s.c}
                for key in ("started_at", "ended_at"):
                    step[key] = to_utc(step[key])
                steps[m["file_id"]] = step
            current = file_select().join(t.names, is_current()).add_columns(t.files.c.commit_id.label("made_in"))
            for chunk in chunks(list(steps)):
                for r in conn.execute(current.where(t.files.c.id.in_(chunk))):
                    row = file_row(r)
                    step = steps[row.id]
                    if step["commit_id"] == r._mapping["made_in"]:  # made in that step's own commit
                        out.append((row, step))
        out.sort(key=lambda pair: pair[0].name)
        return out


@dataclass(frozen=True)
class StepHit:
    """A recorded step execution found by its cache key: its id, how to rebuild its
    return value, and its outputs as (position, label, file row) in position order."""

    step_id: str
    output_kind: str | None
    outputs: list[tuple[int, str | None, FileRow]]


def step_dict(r: Any) -> dict[str, Any]:
    """A ``steps`` row as a dict, its times in UTC."""
    row = dict(r._mapping)
    for key in ("started_at", "ended_at"):
        if key in row:
            row[key] = to_utc(row[key])
    return row


_STEP_HIT: list[sa.Select[Any]] = []  # built once: a step cache hit must cost well under 5 ms


def _step_hit_stmt() -> sa.Select[Any]:
    if not _STEP_HIT:
        s, o, f = t.steps, t.step_outputs, t.files
        newest = (sa.select(s.c.id).where(s.c.key == sa.bindparam("key"), s.c.status == "ok")
                  .order_by(s.c.id.desc()).limit(1).scalar_subquery())
        _STEP_HIT.append(
            sa.select(s.c.id.label("step_id"), s.c.output_kind, o.c.position, o.c.label, *FILE_COLUMNS,
                      sa.exists().where(t.tombstones.c.file_id == f.c.id).label("deleted"))
            .select_from(s.outerjoin(o, o.c.step_id == s.c.id).outerjoin(f, f.c.id == o.c.file_id)
                         .outerjoin(t.runs, t.runs.c.id == f.c.run_id))
            .where(s.c.id == newest)
            .order_by(o.c.position)
        )
    return _STEP_HIT[0]


def step_hit(conn: sa.Connection, key: str) -> StepHit | None:
    """The newest successful execution of ``key`` whose outputs all exist, read on ``conn``; else None."""
    rows = conn.execute(_step_hit_stmt(), {"key": key}).all()
    if not rows:
        return None
    outputs = []
    for r in rows:
        if r.position is None:  # a step with no outputs: one row, no output columns
            continue
        if r.id is None or r.deleted:
            return None  # an output is gone: recompute rather than hand back a hole
        outputs.append((r.position, r.label, file_row(r)))
    return StepHit(rows[0].step_id, rows[0].output_kind, outputs)
