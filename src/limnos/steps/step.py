"""``@step``: functions whose outputs are lake files, never computed twice.

    @limnos.step                       # or @lake.step, @limnos.step(version=2, allow_pickle=True)
    def clean(raw: limnos.File, threshold: float = 0.5) -> pandas.DataFrame:
        ...

A call computes its cache key (see :mod:`limnos.steps.key`) and asks the
catalog for a successful execution with that key:

* **hit**: the recorded outputs come back (Files, or the stored data loaded
  back as the same type) and the function does not run. No git call, no
  download: one indexed query.
* **miss**: the function runs. Its outputs (files it wrote with
  :func:`output` or ``lake.create``, and the plain data it returned) are
  stored as objects, then one commit records the output files, their lineage
  edges and the step row (code, git link, parameters, inputs, who, where,
  when). A second writer of the same key that committed first wins: ours is
  dropped and theirs is returned, so there is never a doubled output.
* **failure**: nothing of the outputs is committed; a ``failed`` step row is
  recorded in its own commit (``limnos steps --failed``) and the exception
  propagates unchanged.

Which lake: the one of ``@lake.step``; else the lake of the File arguments;
else, inside another step, that step's lake; else :func:`limnos.open`.

For type checkers a step is its function: ``Step[P, R]`` keeps the wrapped
function's parameters ``P`` and return type ``R`` (``ParamSpec``), so a call
with wrong arguments is a type error and ``clean(raw)`` has ``clean``'s
return type. (A returned :class:`Writer` comes back as the File it became.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import json
import logging
import os
import sys
import time
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeAlias, TypeVar, cast, overload

from ..core.files import File, PendingFile, Writer
from ..core.runs import StagedOutput, StepExecution, current_call, current_execution, executing, note_read, now, unlink_quietly
from ..errors import LakeNotFound, StepError, StepOutputError, StepReturnWarning, redact_url
from ..names import new_id, plural
from . import formats as data_formats
from .key import Canonicalizer, CodeInfo, code_info, key_function, make_key

if TYPE_CHECKING:
    from ..catalog.catalog import StepHit
    from ..core.base import LakeBase
    from ..core.commits import CommitBuilder

log = logging.getLogger("limnos")
P = ParamSpec("P")
R = TypeVar("R")
P2 = ParamSpec("P2")
R2 = TypeVar("R2")
T = TypeVar("T")
#: What ``version=`` accepts: part of the cache key, recorded as text.
Version: TypeAlias = "str | int | float | None"


@contextlib.contextmanager
def output(name: str | None = None, metadata: Mapping[str, Any] | None = None) -> Iterator[Writer]:
    """Inside a step, write one output file (like ``lake.create``), committed with the step.

    Without ``name`` the output is named ``steps/<module.function>/<key[:16]>/<position>``.
    Return the Writer (or nothing) from the step; on a hit the File comes back in its place.

    >>> with limnos.output("reports/summary.csv") as w:
    ...     df.to_csv(w.path)
    """
    call = current_execution.get()
    if call is None:
        raise StepError("limnos.output() works only inside a @limnos.step function; use lake.create(name) elsewhere")
    with call.output(name, metadata) as writer:
        yield writer


# -------------------------------------------------------------- the result
@dataclass
class StepCall:
    """What one call of a step did: its key, hit or not, the execution, its output Files."""

    key: str
    hit: bool
    step_id: str
    files: list[File]
    _value: Any = field(default=None, repr=False)
    _loader: Callable[[], Any] | None = field(default=None, repr=False)

    @property
    def value(self) -> Any:
        """The step's return value (on a hit, rebuilt from its outputs: data is read on first access)."""
        if self._loader is not None:
            self._value, self._loader = self._loader(), None
        return self._value


# ----------------------------------------------------------- step records
@dataclass
class StepRecord:
    """One recorded step execution (a row of ``steps`` plus its outputs)."""

    id: str
    key: str
    function: str
    module: str | None
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration: float | None
    code_hash: str | None
    version: str | None
    source_file: str | None
    source_line: int | None
    git_commit: str | None
    git_remote: str | None
    permalink: str | None
    params: Any
    inputs: list[dict[str, Any]]
    user: str | None
    host: str | None
    limnos_version: str | None
    error: str | None
    run_id: str | None
    commit_id: str | None
    outputs: list[dict[str, Any]]  # [{position, file_id, label}]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRecord:
        """Build a record from a catalog row of ``steps`` (unknown columns are ignored)."""
        names = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in row.items() if k in names}
        values.setdefault("outputs", [])
        values["inputs"] = values.get("inputs") or []
        return cls(**values)

    @property
    def code_location(self) -> str | None:
        """The permalink when there is one, else ``file:line``."""
        if self.permalink:
            return self.permalink
        if self.source_file:
            return f"{self.source_file}:{self.source_line}" if self.source_line else self.source_file
        return None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (times as ISO 8601 text), for ``--json`` output."""
        out = asdict(self)
        for key in ("started_at", "ended_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out


def list_steps(lake: LakeBase, failed: bool | None = None, function: str | None = None,
               limit: int | None = None) -> list[StepRecord]:
    """Recorded step executions, oldest first.

    Args:
        lake: the lake whose catalog is read.
        failed: True for failures only, False for successes only, None for both.
        function: only executions of this ``module.qualname``.
        limit: at most this many records.
    """
    return [StepRecord.from_row(r) for r in lake.catalog.steps(failed=failed, function=function, limit=limit)]


def step_of(lake: LakeBase, file: File) -> StepRecord | None:
    """The step execution that made ``file``, or None (made by ``add``/``create``)."""
    row = lake.catalog.steps_of_files([file.id]).get(file.id)
    if row is None:
        return None
    row["outputs"] = lake.catalog.step_outputs([row["id"]])[row["id"]]
    return StepRecord.from_row(row)


# ------------------------------------------------------------ default lake
_default_lakes: dict[tuple[int, str], LakeBase] = {}


def default_lake() -> LakeBase:
    """``limnos.open()`` once per process and lake folder (a Dask worker opens it once, not per task).

    Raises:
        LakeNotFound: no ``$LIMNOS_LAKE`` and no ``.limnos/`` lake at or above the working folder.
    """
    from ..core import opening

    path = os.environ.get("LIMNOS_LAKE") or opening.find_lake()
    if path is None:
        raise LakeNotFound("a @limnos.step with no File arguments needs a lake: open one and decorate with "
                           "@lake.step, set LIMNOS_LAKE, or run inside a folder with a .limnos/ lake")
    ident = (os.getpid(), path)
    lake = _default_lakes.get(ident)
    if lake is None:
        lake = _default_lakes[ident] = opening.open_default(path)
    return lake


def _same_lake(a: LakeBase, b: LakeBase) -> bool:
    return a is b or (a.path == b.path and a.catalog.url == b.catalog.url)


# ---------------------------------------------------------------- the step
class Step(Generic[P, R]):
    """A function wrapped by ``@step``; calling it returns the (possibly cached) result.

    ``fn.call(...)`` returns a :class:`StepCall` (hit or miss, the output Files,
    the key) and ``fn.key(...)`` only computes the cache key. All three take
    the wrapped function's arguments (``P``); calling returns its type ``R``.

    Args:
        fn: a plain function (not async, not a generator, not a class).
        lake: the lake to record in; None: found per call (see the module docs).
        version: part of the cache key: change it to force new results.
        cache: False always runs the function (and still records it).
        allow_pickle: let the step store, and load back, values only pickle can hold.

    Raises:
        StepError: ``fn`` cannot be a step, or ``version`` is not a str or a number.
    """

    __wrapped__: Callable[P, R]  # set by functools.update_wrapper, with __qualname__ and __doc__
    __qualname__: str

    def __init__(self, fn: Callable[P, R], *, lake: LakeBase | None = None, version: Version = None,
                 cache: bool = True, allow_pickle: bool = False, _code: CodeInfo | None = None) -> None:
        if not callable(fn) or isinstance(fn, (type, Step)):
            raise StepError(f"@step decorates a function, not {fn!r}")
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            raise StepError(f"@step cannot decorate {fn.__qualname__}: async and generator functions are not "
                            "supported; make it a plain function that returns its outputs")
        if version is not None and not isinstance(version, (str, int, float)):
            raise StepError(f"version= must be a str or a number, not {type(version).__name__}")
        functools.update_wrapper(self, fn)
        self.module: str = getattr(fn, "__module__", None) or "__main__"
        self.function = f"{self.module}.{fn.__qualname__}"
        self.version = version
        self.cache = bool(cache)
        self.allow_pickle = bool(allow_pickle)
        self._lake = lake
        self._signature = inspect.signature(fn)
        self._returns_file = _returns_file(fn)
        # Taken now, at import, so it describes the code that runs even if the file is edited later.
        # A step shipped by value to a worker keeps the code hash it had where it was defined.
        self.code: CodeInfo = _code or code_info(fn)
        #: how the cache key names the function: its file relative to the project root, and its qualname
        self.key_function = self.code.ident or key_function(fn.__qualname__, self.module, self.code.source_file)

    def __repr__(self) -> str:
        return f"<step {self.function}>"

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Step[P, R]: ...

    @overload
    def __get__(self: Step[Concatenate[T, P2], R2], instance: T, owner: type | None = None) -> Callable[P2, R2]: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> Step[P, R] | Callable[..., Any]:
        # A step defined in a class body binds like a method: the instance becomes its first argument.
        return self if instance is None else types.MethodType(self, instance)

    def __reduce__(self) -> Any:
        # Like a plain function under cloudpickle (Dask, Ray): by reference when a worker can
        # import it, else (a script's __main__, a local function) by value, code hash included.
        # A step bound to a Lake cannot travel: the lake is an open database connection.
        obj: Any = sys.modules.get(self.module)
        for part in self.__qualname__.split("."):
            obj = getattr(obj, part, None)
        if obj is self and self.module != "__main__":
            return self.__qualname__
        if self._lake is not None:
            raise TypeError(f"{self!r} is bound to an open Lake and cannot be pickled; use @limnos.step on a "
                            "module-level function and open the lake in the worker")
        return (_rebuild, (self.__wrapped__, self.version, self.cache, self.allow_pickle, self.code))

    # -- the call ------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the step (or, on a cache hit, load its recorded result) and return the function's result."""
        return cast(R, self.call(*args, **kwargs).value)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.__qualname__}(): {exc}") from None
        bound.apply_defaults()
        return bound

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key of a call with these arguments (nothing runs, nothing is read).

        Raises:
            StepParameterError: an argument cannot be hashed stably.
        """
        canon = Canonicalizer(self.function)
        params = canon.arguments(self._bind(args, kwargs).arguments)
        return make_key(self.key_function, self.code.hash, params, self.version)

    def call(self, *args: P.args, **kwargs: P.kwargs) -> StepCall:
        """Call the step and say what happened: hit or miss, the key, the output Files and the value.

        Raises:
            StepParameterError: an argument cannot be hashed stably into the key.
            StepError: a File argument belongs to another lake.
            StepOutputError: the function returned something that cannot be stored.
            Exception: whatever the function raised (recorded as a failed execution first).
        """
        bound = self._bind(args, kwargs)
        canon = Canonicalizer(self.function)
        params = canon.arguments(bound.arguments)
        key = make_key(self.key_function, self.code.hash, params, self.version)
        lake = self._lake_for(canon.files)
        if self.cache:
            lake.catch_up()  # a team lake: a step another machine just ran is a hit here
            hit = lake.catalog.step_hit(key)
            if hit is not None:
                log.info("step %s: already computed (key %s); skipping it", self.function, key[:12])
                return self._from_record(lake, key, hit, was_hit=True)
        return self._run(lake, key, bound, canon.files)

    def _lake_for(self, files: list[tuple[str, File]]) -> LakeBase:
        if self._lake is not None:
            lake = self._lake
        elif files:
            lake = files[0][1].lake
        else:
            outer = current_execution.get()
            lake = outer.lake if outer is not None else default_lake()
        for where, f in files:
            if not _same_lake(f.lake, lake):
                raise StepError(f"parameter {where!r} of step {self.function} is a File of another lake "
                                f"({redact_url(f.lake.path)}); a step's inputs must be in its lake ({redact_url(lake.path)})")
        return lake

    # -- hit -----------------------------------------------------------------
    def _from_record(self, lake: LakeBase, key: str, hit: StepHit, was_hit: bool) -> StepCall:
        files = {pos: File(lake, row) for pos, _label, row in hit.outputs}
        spec = json.loads(hit.output_kind) if hit.output_kind else None
        ordered = [files[p] for p in sorted(files)]
        return StepCall(key, was_hit, hit.step_id, ordered,
                        _loader=lambda: self._rebuild_value(spec, files))

    def _rebuild_value(self, spec: Any, files: dict[int, File]) -> Any:
        if spec is None:
            return None
        return self._node_value(spec["return"], files)

    def _node_value(self, node: Any, files: dict[int, File]) -> Any:
        if node is None:
            return None
        if "o" in node:
            file = files[node["o"]]
            fmt = node["as"]
            if fmt == "file":
                return file
            where = f"output {node['o']} of step {self.function} ({file.ref})"
            if fmt == "bytes":
                return file.read_bytes()
            return data_formats.read(file.local_path(), fmt, self.allow_pickle, where)
        if "tuple" in node:
            return tuple(self._node_value(n, files) for n in node["tuple"])
        if "list" in node:
            return [self._node_value(n, files) for n in node["list"]]
        if "dict" in node:
            return {json.loads(k): self._node_value(n, files) for k, n in node["dict"]}
        raise StepOutputError(f"the record of step {self.function} has an output shape this limnos does not know; upgrade limnos")

    # -- miss ----------------------------------------------------------------
    def _run(self, lake: LakeBase, key: str, bound: inspect.BoundArguments, files: list[tuple[str, File]]) -> StepCall:
        call = StepExecution(lake, self, key)
        started, t0 = now(), time.perf_counter()
        ended: dt.datetime | None = None
        plan: _Plan | None = None
        try:
            with executing(call):
                value = self.__wrapped__(*bound.args, **bound.kwargs)
            ended, duration = now(), time.perf_counter() - t0
            if value is None:
                self._check_none(call)
            plan = _Plan(self, call)
            spec = None if value is None else {"return": plan.node(value, "the return value")}
            plan.add_unreturned()
            plan.materialize()
            with lake.writing():  # gc keeps the outputs' objects, new or reused, until the commit names them
                commit, rows = self._commit_for(lake, call, plan, spec, bound, files, started, ended, duration)
                winner = commit.write_step(key if self.cache else None)
        except Exception as exc:
            self._record_failure(lake, key, bound, files, call, started, ended or now(), time.perf_counter() - t0, exc)
            raise
        finally:
            call.discard()  # staging files left behind: none after a success, all after a failure
            for path in plan.data_paths if plan is not None else ():
                unlink_quietly(path)
        if winner is not None:
            # Another process recorded this key while we computed: theirs is the result, ours is dropped.
            log.info("step %s: another writer recorded key %s first; using its outputs", self.function, key[:12])
            result = self._from_record(lake, key, winner, was_hit=False)
            _resolve_pending(call, plan, dict(enumerate(result.files)))
            return result
        made = {pos: commit.file(row) for pos, row in rows.items()}
        _resolve_pending(call, plan, made)
        out_files = [made.get(p) or plan.existing[p] for p in range(len(plan.outs))]
        return StepCall(key, False, commit.extra[0]["id"], out_files, _value=plan.returned_value(value, made))

    def _check_none(self, call: StepExecution) -> None:
        """A step that returned None: an error when annotated ``-> File``, a warning when it wrote outputs."""
        if self._returns_file:
            raise StepOutputError(f"step {self.function} is annotated to return a File but returned None; "
                                  "return the output (the Writer, or its .file)")
        if call.staged:
            names = ", ".join(repr(s.name or s.writer.name) for s in call.staged)
            warnings.warn(f"step {self.function} wrote {plural(len(call.staged), 'output')} ({names}) but returned "
                          "None, so the caller gets None (on a cache hit too); return the Writer or its .file",
                          StepReturnWarning, stacklevel=4)

    def _step_row(self, lake: LakeBase, key: str, bound: inspect.BoundArguments, files: list[tuple[str, File]],
                  call: StepExecution, started: dt.datetime, ended: dt.datetime, duration: float, run: Mapping[str, Any],
                  run_id: str | None) -> dict[str, Any]:
        from ..core import provenance
        from ..version import __version__

        shown = Canonicalizer(self.function, for_key=False).arguments(bound.arguments)
        link = provenance.source_link(self.code.source_file, self.code.first_line, self.code.last_line)
        return {
            "type": "step", "id": new_id(), "key": key, "function": self.function, "module": self.module,
            "code_hash": self.code.hash, "version": None if self.version is None else str(self.version),
            "source_file": self.code.source_file, "source_line": self.code.first_line, **link,
            "params": shown, "inputs": _inputs_list(files, call), "user": run.get("user"), "host": run.get("host"),
            "limnos_version": __version__, "started_at": started, "ended_at": ended, "duration": duration,
            "status": "ok", "error": None, "output_kind": None, "run_id": run_id,
        }

    def _commit_for(self, lake: LakeBase, call: StepExecution, plan: _Plan, spec: Any, bound: inspect.BoundArguments,
                    files: list[tuple[str, File]], started: dt.datetime, ended: dt.datetime,
                    duration: float) -> tuple[CommitBuilder, dict[int, dict[str, Any]]]:
        stored = plan.store(lake)  # objects first: a crash from here on leaves only unreferenced objects
        commit = lake.new_commit("step")
        input_ids = list(dict.fromkeys([f.id for _, f in files] + list(call.reads)))
        rows: dict[int, dict[str, Any]] = {}
        for pos, out in enumerate(plan.outs):
            if out.existing is not None:
                continue
            digest, size = stored[pos]
            name = out.name or f"steps/{self.function}/{call.key[:16]}/{pos}"
            rows[pos] = commit.add_file(name, digest, size, inputs=input_ids, metadata=out.metadata)
        step_row = self._step_row(lake, call.key, bound, files, call, started, ended, duration,
                                  commit.run or {}, commit.run_id)
        step_row["output_kind"] = json.dumps(spec, separators=(",", ":")) if spec is not None else None
        commit.extra.append(step_row)
        for pos, out in enumerate(plan.outs):
            file_id = out.existing.id if out.existing is not None else rows[pos]["id"]
            commit.extra.append({"type": "step_output", "step_id": step_row["id"], "position": pos,
                                 "file_id": file_id, "label": out.label})
        return commit, rows

    def _record_failure(self, lake: LakeBase, key: str, bound: inspect.BoundArguments, files: list[tuple[str, File]],
                        call: StepExecution, started: dt.datetime, ended: dt.datetime, duration: float,
                        exc: BaseException) -> None:
        """A failed step row in a commit of its own; never masks the step's own exception."""
        try:
            commit = lake.new_commit("step")
            row = self._step_row(lake, key, bound, files, call, started, ended, duration, commit.run or {}, commit.run_id)
            first = (str(exc).strip().splitlines() or [""])[0]
            row["status"] = "failed"
            row["error"] = redact_url(f"{type(exc).__qualname__}: {first}".rstrip(": "))[:2000]
            commit.extra.append(row)
            commit.write()
        except Exception as secondary:  # the catalog may be what failed; the caller must see the first error
            log.warning("step %s failed and its failure could not be recorded: %s", self.function, secondary)


def _resolve_pending(call: StepExecution, plan: _Plan, made: Mapping[int, File]) -> None:
    """Make each output's ``w.file`` (a :class:`PendingFile`) the File committed at its position."""
    for s in call.staged:
        pos = plan.position_of(s.writer)
        file = made.get(pos) if pos is not None else None
        if file is None:
            continue
        s.writer.name = file.name
        if isinstance(s.writer.file, PendingFile):
            s.writer.file.resolve(file)
        else:
            s.writer.file = file


def _returns_file(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is annotated to return a File (``-> limnos.File``; ``File | None`` does not count)."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable names under ``from __future__ import annotations``: read the text
        hint = inspect.signature(fn).return_annotation
    if isinstance(hint, str):
        return hint.strip() == "File" or hint.strip().endswith(".File")
    return isinstance(hint, type) and issubclass(hint, File)


def _inputs_list(files: list[tuple[str, File]], call: StepExecution) -> list[dict[str, Any]]:
    out, seen = [], set()
    for where, f in files:
        out.append({"param": where, "id": f.id, "name": f.name, "version": f.version, "hash": f.hash})
        seen.add(f.id)
    for fid, f in call.reads.items():
        if fid not in seen:  # read inside the step by name: lineage, though not part of the key
            out.append({"param": None, "id": f.id, "name": f.name, "version": f.version, "hash": f.hash})
    return out


def _rebuild(fn: Callable[P, R], version: Version, cache: bool, allow_pickle: bool,
             code: CodeInfo | None = None) -> Step[P, R]:
    return Step(fn, version=version, cache=cache, allow_pickle=allow_pickle, _code=code)


# ------------------------------------------------------------ output plans
@dataclass
class _Out:
    """One output position: a staged writer, plain data to store, or a File that already exists."""

    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # the staging file (writer's, or the data written out)
    data: Any = None
    fmt: str | None = None
    where: str = ""
    existing: File | None = None
    label: str | None = None
    node: dict[str, Any] | None = None


class _Plan:
    """Maps a step's return value onto numbered outputs and back.

    Positions follow the return value depth first (tuple/list order, dict
    insertion order), then outputs written with :func:`output` but not
    returned, in the order they were written.
    """

    def __init__(self, step: Step[..., Any], call: StepExecution) -> None:
        self.step = step
        self.call = call
        self.outs: list[_Out] = []
        self.existing: dict[int, File] = {}
        self.data_paths: list[str] = []
        self._by_obj: dict[int, int] = {}  # id(writer or file) -> position

    def position_of(self, obj: Any) -> int | None:
        return self._by_obj.get(id(obj))

    def _add(self, obj: Any, out: _Out) -> int:
        if obj is not None and id(obj) in self._by_obj:
            return self._by_obj[id(obj)]
        self.outs.append(out)
        pos = len(self.outs) - 1
        if obj is not None:
            self._by_obj[id(obj)] = pos
        if out.existing is not None:
            self.existing[pos] = out.existing
        return pos

    def _staged_for(self, writer: Writer) -> StagedOutput | None:
        return next((s for s in self.call.staged if s.writer is writer), None)

    def node(self, value: Any, where: str, label: str = "") -> dict[str, Any]:
        if isinstance(value, PendingFile) and not value.resolved:
            value = value.writer  # ``return w.file``: the output of that writer
        if isinstance(value, Writer):
            staged = self._staged_for(value)
            if staged is None:
                raise StepOutputError(f"{where} of step {self.step.function} is a Writer that this call did not "
                                      "finish; write outputs with limnos.output() inside the step and return them "
                                      "after their with-block")
            pos = self._add(value, _Out(name=staged.name, metadata=staged.metadata, path=value.path, label=label or None))
            return {"o": pos, "as": "file"}
        if isinstance(value, File):
            if not _same_lake(value.lake, self.call.lake):
                raise StepOutputError(f"{where} of step {self.step.function} is a File of another lake")
            return {"o": self._add(value, _Out(existing=value, label=label or None)), "as": "file"}
        if data_formats.is_data_leaf(value):
            return self._data(value, where, label)
        if type(value) is tuple:
            return {"tuple": [self.node(v, f"{where}[{i}]", f"{label}[{i}]") for i, v in enumerate(value)]}
        if type(value) in (list, dict) and _holds_outputs(value):
            if type(value) is list:
                return {"list": [self.node(v, f"{where}[{i}]", f"{label}[{i}]") for i, v in enumerate(value)]}
            items = []
            for k, v in value.items():
                if not isinstance(k, (str, int, float, bool)) and k is not None:
                    raise StepOutputError(f"{where} of step {self.step.function} has a {type(k).__name__} key; "
                                          "a dict of outputs needs str, int, float, bool or None keys")
                items.append([json.dumps(k), self.node(v, f"{where}[{k!r}]", f"{label}[{k!r}]")])
            return {"dict": items}
        return self._data(value, where, label)

    def _data(self, value: Any, where: str, label: str) -> dict[str, Any]:
        where = f"{where} of step {self.step.function}"
        fmt = data_formats.choose_format(value, self.step.allow_pickle, where)
        out = _Out(data=value, fmt=fmt, where=where, label=label or None)
        out.node = {"o": self._add(None, out), "as": fmt}
        return out.node

    def add_unreturned(self) -> None:
        for s in self.call.staged:
            if id(s.writer) not in self._by_obj:
                self._add(s.writer, _Out(name=s.name, metadata=s.metadata, path=s.writer.path))

    def materialize(self) -> None:
        """Write returned data to staging files (parquet, npy, JSON, bytes or pickle)."""
        for out in self.outs:
            if out.fmt is None:
                continue
            out.path = self.call.lake.staging_path()
            self.data_paths.append(out.path)
            used = data_formats.write(out.data, out.fmt, out.path, out.where, self.step.allow_pickle)
            if used != out.fmt and out.node is not None:
                out.fmt = out.node["as"] = used

    def store(self, lake: LakeBase) -> dict[int, tuple[str, int]]:
        """Store every new output's staging file as an object; position -> (hash, size)."""
        todo: dict[int, str] = {}
        for pos, out in enumerate(self.outs):
            if out.existing is not None:
                continue
            assert out.path is not None
            if not os.path.exists(out.path):  # an output opened but never written: an empty file
                open(out.path, "wb").close()
            todo[pos] = out.path
        # many small outputs of one step: one pack (see LakeBase.store_staged_many)
        return dict(zip(todo, lake.store_staged_many(list(todo.values())), strict=True))

    def returned_value(self, value: Any, made: dict[int, File]) -> Any:
        """The function's return value with each Writer swapped for the File it became."""
        if isinstance(value, PendingFile) and self.position_of(value.writer) is not None:
            value = value.writer
        if isinstance(value, Writer):
            pos = self.position_of(value)
            return made.get(pos) if pos is not None else value
        if type(value) is tuple:
            return tuple(self.returned_value(v, made) for v in value)
        if type(value) is list and _holds_outputs(value):
            return [self.returned_value(v, made) for v in value]
        if type(value) is dict and _holds_outputs(value):
            return {k: self.returned_value(v, made) for k, v in value.items()}
        return value


def _holds_outputs(value: Any) -> bool:
    """Whether a list/dict is a container of outputs (holds a File, Writer, frame, array or bytes) or plain JSON."""
    items = value.values() if type(value) is dict else value
    for v in items:
        if isinstance(v, (File, Writer)) or data_formats.is_data_leaf(v):
            return True
        if type(v) in (list, dict, tuple) and _holds_outputs(v if type(v) is not tuple else list(v)):
            return True
    return False


# -------------------------------------------------------------- decorator
class StepDecorator(Protocol):
    """What ``@step(...)`` (the factory form) returns: it turns a function into a :class:`Step` of its signature."""

    def __call__(self, fn: Callable[P2, R2], /) -> Step[P2, R2]:
        """Wrap ``fn`` as a step with the options given to the factory."""
        ...


@overload
def step(fn: Callable[P, R], *, lake: LakeBase | None = None, version: Version = None, cache: bool = True,
         allow_pickle: bool = False) -> Step[P, R]: ...


@overload
def step(fn: None = None, *, lake: LakeBase | None = None, version: Version = None, cache: bool = True,
         allow_pickle: bool = False) -> StepDecorator: ...


def step(fn: Callable[P, R] | None = None, *, lake: LakeBase | None = None, version: Version = None,
         cache: bool = True, allow_pickle: bool = False) -> Step[P, R] | StepDecorator:
    """Make a function a cached, recorded pipeline step (``@limnos.step`` or ``@limnos.step(...)``).

    Args:
        fn: the function, when used as ``@limnos.step`` without parentheses.
        lake: the lake to record in (``@lake.step`` passes its own); None: found per call.
        version: part of the cache key: change it to force new results.
        cache: False always runs (and still records).
        allow_pickle: let the step return (and load back) values that only pickle can store.

    Returns:
        The :class:`Step` (typed as the function: same parameters, same return type), or,
        without ``fn``, a decorator that makes one.

    Raises:
        StepError: the function cannot be a step (async, a generator, a class), or ``version`` is not a str or a number.
    """
    def wrap(f: Callable[P2, R2]) -> Step[P2, R2]:
        return Step(f, lake=lake, version=version, cache=cache, allow_pickle=allow_pickle)

    return wrap(fn) if fn is not None else wrap


__all__ = [
    "Step",
    "StepCall",
    "StepDecorator",
    "StepRecord",
    "Version",
    "current_call",
    "default_lake",
    "list_steps",
    "note_read",
    "output",
    "step",
    "step_of",
]
