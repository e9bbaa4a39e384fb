"""The cache key of a step call: which function, which code, which parameters, which input bytes.

    key = BLAKE3(canonical JSON of {function, code, params, version})

* **function**: the file that defines the function, relative to its project
  root, and its qualname: ``pipe.py:clean``. The *project root* is the
  nearest folder at or above that file holding ``.limnos/``,
  ``limnos.lock``, ``.git`` or ``pyproject.toml`` (else the file's own
  folder). So ``python pipe.py`` (module ``__main__``) and ``import pipe``
  (module ``pipe``) are one step, and a clone elsewhere on disk hits the
  cache of the original. Moving or renaming the file makes a new step. A
  function with no source file (a notebook cell, ``exec``) is keyed by
  ``module.qualname``.
* **code**: a hash of the function's *normalized* source. The source is
  parsed and printed back with :func:`ast.unparse`, without its decorators
  and docstring, so editing comments, blank lines, indentation or line
  breaks, the docstring, or the decorator line does **not** change the key;
  any edit to the code itself (a statement, a constant, a default value, an
  annotation) does. Only the function's own body counts: helpers it calls
  are not followed, so bump ``version=`` when one of them changes. When no
  source can be found (a function made by ``exec`` without a file), the
  compiled code object is hashed instead, which also ignores comments.
* **params**: the call bound to the signature with defaults applied, so
  ``f(a, b=2)``, ``f(a, 2)`` and ``f(b=2, a=a)`` are one call. Values are
  canonical JSON with sorted keys; a lake File stands for its *content hash*
  (not its name, version or id), so re-adding the same bytes under another
  name still hits, and new bytes under the same name miss. A few common
  non-JSON values have stable tagged forms (bytes, datetimes, paths, enums,
  sets, dataclasses, numpy arrays, pandas frames; any object with a
  ``__limnos_key__()`` method); anything else is refused with
  :class:`StepParameterError` naming the parameter.
* **version**: the decorator's ``version=`` option, to force new results.

The code hash is taken once, when the decorator runs (at import), so it
describes the code that actually runs even if the file is edited later.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import datetime as dt
import decimal
import enum
import inspect
import json
import math
import os
import pathlib
import sys
import textwrap
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import blake3

from ..core.files import File
from ..errors import StepParameterError


def _hash(text: str) -> str:
    return blake3.blake3(text.encode("utf-8", "surrogatepass")).hexdigest()


# ------------------------------------------------------------------ code
@dataclass(frozen=True)
class CodeInfo:
    """Where a step function's code is and what it hashes to."""

    hash: str
    source_file: str | None  # absolute path, when the code came from a file
    first_line: int | None  # the first decorator line, as inspect reports it
    last_line: int | None
    from_source: bool  # False: no source was found and the bytecode was hashed
    #: how the key names the function (:func:`key_function`), fixed where it is defined so a worker agrees
    ident: str = ""


def normalize_def(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """Source of a function without decorators, docstring, comments or layout."""
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:] or [ast.Pass()]
    clone = copy.copy(node)  # shallow: the caller's tree keeps its decorators and docstring
    clone.decorator_list = []
    clone.body = body
    return ast.unparse(ast.fix_missing_locations(clone))


def code_hash_of_def(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The code hash of a parsed function definition (its normalized source, see :func:`normalize_def`)."""
    return _hash("limnos-step-code/1\n" + normalize_def(node))


def _bytecode_text(code: types.CodeType) -> str:
    """A stable text of a code object: instructions, constants and names, no file or line numbers."""
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            consts.append("<code " + _bytecode_text(const) + ">")
        elif isinstance(const, frozenset):
            consts.append("frozenset(" + ",".join(sorted(map(repr, const))) + ")")
        else:
            consts.append(repr(const))
    return "|".join([code.co_code.hex(), ";".join(consts), ",".join(code.co_names), ",".join(code.co_varnames),
                     ",".join(code.co_freevars), ",".join(code.co_cellvars),
                     f"{code.co_argcount}/{code.co_kwonlyargcount}/{code.co_flags}"])


def code_info(fn: Callable[..., Any]) -> CodeInfo:
    """Hash a function's normalized source (or its bytecode, without source); see the module doc."""
    source_file: str | None = None
    try:
        found = inspect.getsourcefile(fn)
        # A real file is recorded by its absolute path; a notebook cell or <stdin> as named.
        source_file = (str(pathlib.Path(found).resolve()) if os.path.isfile(found) else found) if found else None
    except TypeError:
        pass
    ident = key_function(fn.__qualname__, getattr(fn, "__module__", None) or "__main__", source_file)
    try:
        lines, first = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
        node = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and n.name == fn.__name__)
    except (OSError, TypeError, SyntaxError, StopIteration, IndentationError):
        code = getattr(fn, "__code__", None)
        digest = _hash("limnos-step-bytecode/1\n" + (_bytecode_text(code) if code else repr(fn)))
        line = code.co_firstlineno if code else None
        return CodeInfo(digest, source_file, line, line, from_source=False, ident=ident)
    return CodeInfo(code_hash_of_def(node), source_file, first or 1, (first or 1) + len(lines) - 1, from_source=True,
                    ident=ident)


#: What marks a project root, for :func:`key_function`.
ROOT_MARKERS = (".limnos", "limnos.lock", ".git", "pyproject.toml")


def project_root(path: str) -> str:
    """The nearest folder at or above the file ``path`` that holds a project marker; else its folder."""
    start = here = os.path.dirname(os.path.abspath(path))
    while True:
        if any(os.path.exists(os.path.join(here, m)) for m in ROOT_MARKERS):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return start
        here = parent


def key_function(qualname: str, module: str, source_file: str | None) -> str:
    """What names a step function in its cache key: ``relative/path.py:qualname`` (see the module doc).

    Not ``module.qualname``: a script run as ``python pipe.py`` is module
    ``__main__`` and the same file imported is ``pipe``, and both must hit.
    """
    if source_file and os.path.isfile(source_file):
        rel = os.path.relpath(source_file, project_root(source_file))
        return f"{pathlib.PurePath(rel).as_posix()}:{qualname}"
    return f"{module}.{qualname}"


# ---------------------------------------------------------------- params
def file_token(file: File) -> str:
    """What a File contributes to a key: its content hash (a reference: its URL and size)."""
    return file.hash or f"ref:{file.uri}:{file.size}"


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _where(param: str, path: str) -> str:
    return f"parameter {param!r}" + (f" (at {param}{path})" if path else "")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Canonicalizer:
    """Turns bound arguments into canonical JSON, collecting the Files found on the way.

    ``for_key`` True gives the key form (a File is its content hash); False the
    form recorded for people (a File is its ``name@version`` and hash).
    """

    def __init__(self, function: str, for_key: bool = True) -> None:
        self.function = function
        self.for_key = for_key
        self.files: list[tuple[str, File]] = []  # (parameter path, file), in argument order

    def arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Every bound argument (name -> value) in canonical form.

        Raises:
            StepParameterError: a value cannot be hashed stably; the message names the parameter.
        """
        return {name: self.value(v, name, "") for name, v in arguments.items()}

    def _refuse(self, param: str, path: str, why: str) -> StepParameterError:
        return StepParameterError(
            f"{_where(param, path)} of step {self.function} {why}; pass JSON-able values (str, int, float, bool, "
            "None, lists, dicts), lake Files, or an object with a __limnos_key__() method that returns such a value"
        )

    def value(self, v: Any, param: str, path: str) -> Any:
        """One value in canonical form; ``param`` and ``path`` (such as ``[0]['a']``) say where it is, for errors."""
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int) and type(v) in (int, bool):
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"$float": repr(v)}  # JSON has no NaN; PostgreSQL refuses it
        if isinstance(v, File):
            self.files.append((param + path, v))
            if self.for_key:
                return {"$file": file_token(v)}
            return {"$file": v.ref, "hash": v.hash}
        hook = getattr(type(v), "__limnos_key__", None)  # the object says what identifies it
        if hook is not None:
            return {"$key": _type_name(v), "value": self.value(hook(v), param, f"{path}.__limnos_key__()")}
        if isinstance(v, (list, tuple)):
            return [self.value(x, param, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            if all(isinstance(k, str) for k in v):
                return {k: self.value(x, param, f"{path}[{k!r}]") for k, x in v.items()}
            items = []
            for k, x in v.items():
                if not isinstance(k, (str, int, float, bool)) and k is not None:
                    raise self._refuse(param, path, f"has a {_type_name(k)} dict key")
                items.append([self.value(k, param, f"{path}<key>"), self.value(x, param, f"{path}[{k!r}]")])
            return {"$dict": sorted(items, key=_dumps)}
        if isinstance(v, (bytes, bytearray, memoryview)):
            return {"$bytes": blake3.blake3(bytes(v)).hexdigest()}
        if isinstance(v, enum.Enum):
            return {"$enum": _type_name(v), "value": self.value(v.value, param, f"{path}.value")}
        if isinstance(v, (int, float)):  # int/float subclasses such as numpy scalars' Python twins
            return self.value(int(v) if isinstance(v, int) else float(v), param, path)
        if isinstance(v, dt.datetime):
            return {"$datetime": v.isoformat()}
        if isinstance(v, (dt.date, dt.time, dt.timedelta)):
            return {"$" + type(v).__name__: str(v) if isinstance(v, dt.timedelta) else v.isoformat()}
        if isinstance(v, decimal.Decimal):
            return {"$decimal": str(v)}
        if isinstance(v, uuid.UUID):
            return {"$uuid": str(v)}
        if isinstance(v, pathlib.PurePath):
            return {"$path": v.as_posix()}
        if isinstance(v, (set, frozenset)):
            return {"$set": sorted((self.value(x, param, f"{path}<item>") for x in v), key=_dumps)}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {f.name: self.value(getattr(v, f.name), param, f"{path}.{f.name}") for f in dataclasses.fields(v)}
            return {"$dataclass": _type_name(v), "fields": fields}
        special = self._array_like(v, param, path)
        if special is not None:
            return special
        raise self._refuse(param, path, f"is a {_type_name(v)}, which limnos cannot hash stably")

    def _array_like(self, v: Any, param: str, path: str) -> Any:
        """The canonical form of a numpy or pandas value, or None when ``v`` is neither."""
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(v, np.generic):
                return self.value(v.item(), param, path)
            if isinstance(v, np.ndarray):
                if v.dtype.hasobject:
                    raise self._refuse(param, path, "is a numpy array of Python objects")
                data = np.ascontiguousarray(v)
                h = blake3.blake3(f"{data.dtype.str}|{data.shape}|".encode())
                h.update(memoryview(data).cast("B"))
                return {"$ndarray": h.hexdigest()}
        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(v, (pd.DataFrame, pd.Series)):
            try:
                rows = pd.util.hash_pandas_object(v, index=True).to_numpy()
            except TypeError as exc:  # unhashable cells (lists, dicts)
                raise self._refuse(param, path, f"is a pandas object with unhashable cells ({exc})") from None
            if isinstance(v, pd.DataFrame):
                meta = [repr([str(c) for c in v.columns]), repr([str(t) for t in v.dtypes])]
            else:
                meta = [repr(v.name), str(v.dtype)]
            h = blake3.blake3("|".join(meta).encode())
            h.update(memoryview(rows).cast("B"))
            return {"$pandas": h.hexdigest()}
        return None


def make_key(function: str, code_hash: str, params: dict[str, Any], version: Any) -> str:
    """The cache key: BLAKE3 of the canonical JSON of everything that decides the result."""
    return _hash(_dumps({"limnos_step_key": 1, "function": function, "code": code_hash,
                         "params": params, "version": version}))


# ----------------------------------------------------------- finding code
def find_def(source: str, qualname: str, near_line: int | None = None) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The definition of ``qualname`` in a module's source, without running it.

    When several definitions match (one inside ``if``/``else``), the one
    closest to ``near_line`` (the recorded line) wins.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                if name == qualname:
                    found.append(child)
                visit(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    if not found:
        return None

    def first_line(n: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
        return min([n.lineno, *(d.lineno for d in n.decorator_list)])

    return min(found, key=lambda n: abs(first_line(n) - (near_line or 0)))


UNKNOWN = object()


def declared_version(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Any:
    """The literal ``version=`` of a ``...step(...)`` decorator; None without one; UNKNOWN if not a literal."""
    for deco in node.decorator_list:
        if not isinstance(deco, ast.Call):
            continue
        func = deco.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if not name.endswith("step"):
            continue
        for kw in deco.keywords:
            if kw.arg == "version":
                try:
                    return ast.literal_eval(kw.value)
                except ValueError:
                    return UNKNOWN
    return None


__all__ = [
    "UNKNOWN",
    "Canonicalizer",
    "CodeInfo",
    "code_hash_of_def",
    "code_info",
    "declared_version",
    "file_token",
    "find_def",
    "make_key",
    "normalize_def",
]
