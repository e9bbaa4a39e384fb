"""Plain data a step returns, stored as files: which format, how to write, how to read back.

A step may return data instead of lake files. Each value becomes one output
file in a format chosen by its type, so that a cache hit can hand back a
value of the same type without running the step:

========================  ==========  =======================================
value                     format      read back with
========================  ==========  =======================================
pandas ``DataFrame``      parquet     ``pandas.read_parquet``
numpy ``ndarray``         npy         ``numpy.load(allow_pickle=False)``
dict / list / str / int   json        ``json.load`` (strict JSON types only)
float / bool / None
``bytes``/``bytearray``   bytes       the raw bytes
anything else             pickle      only with ``allow_pickle=True``
========================  ==========  =======================================

JSON is checked strictly (str keys; no tuples, sets or objects inside), so
the value read back equals the value returned; anything looser would come
back as a different type on a hit. pandas and numpy are only imported when a
value of theirs is seen, so steps that never use them do not pay the import.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any

from ..errors import MissingExtra, StepOutputError, require_extra

FORMATS = ("parquet", "npy", "json", "bytes", "bytearray", "pickle")

_JSON_SCALARS = (str, int, float, bool, type(None))


def _is_dataframe(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def _is_ndarray(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.ndarray)


def is_data_leaf(value: Any) -> bool:
    """Values that are always one output of their own (never a container of outputs)."""
    return isinstance(value, (bytes, bytearray, memoryview)) or _is_dataframe(value) or _is_ndarray(value)


def json_problem(value: Any, path: str = "") -> str | None:
    """Where ``value`` stops being strict JSON (a path and the offending type), or None if it is JSON."""
    if isinstance(value, float):
        return None  # NaN and infinities round-trip through Python's json module
    if isinstance(value, _JSON_SCALARS):
        return None
    if type(value) is list:
        for i, item in enumerate(value):
            problem = json_problem(item, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if type(value) is dict:
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path or 'the value'} has a {type(key).__name__} key {key!r} (JSON keys are str)"
            problem = json_problem(item, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{path or 'the value'} is a {type(value).__module__}.{type(value).__qualname__}"


def choose_format(value: Any, allow_pickle: bool, where: str) -> str:
    """The storage format for one returned value, or a StepOutputError that says what to do."""
    if isinstance(value, bytearray):
        return "bytearray"
    if isinstance(value, (bytes, memoryview)):
        return "bytes"
    if _is_dataframe(value):
        return "parquet"
    if _is_ndarray(value):
        if value.dtype.hasobject:
            if allow_pickle:
                return "pickle"
            raise StepOutputError(f"{where} is a numpy array of Python objects, which only pickle can store; "
                                  "use a numeric/str dtype or pass allow_pickle=True to the step")
        return "npy"
    problem = json_problem(value)
    if problem is None:
        return "json"
    if allow_pickle:
        return "pickle"
    raise StepOutputError(
        f"{where} cannot be stored as a file: {problem}; return a File, a DataFrame, a numpy array, bytes "
        "or strict JSON (dict with str keys, list, str, number, bool, None), or pass allow_pickle=True to the step"
    )


def write(value: Any, fmt: str, path: str, where: str, allow_pickle: bool) -> str:
    """Write ``value`` to ``path`` in ``fmt``; returns the format used (parquet/npy may fall back to pickle)."""
    try:
        if fmt == "parquet":
            require_extra("pyarrow", "pandas", purpose=f"{where} as parquet")
            value.to_parquet(path)
        elif fmt == "npy":
            import numpy as np

            with open(path, "wb") as f:
                np.save(f, value, allow_pickle=False)
        elif fmt == "json":
            # allow_nan: Python's own json reads NaN/Infinity back; sort_keys would reorder the dict.
            with open(path, "w", encoding="utf-8") as f:
                json.dump(value, f, ensure_ascii=False, allow_nan=True)
        elif fmt in ("bytes", "bytearray"):
            with open(path, "wb") as f:
                f.write(bytes(value))
        elif fmt == "pickle":
            with open(path, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        else:  # pragma: no cover - choose_format only returns FORMATS
            raise ValueError(f"unknown output format {fmt!r}")
    except (StepOutputError, MissingExtra):
        raise
    except Exception as exc:
        # e.g. parquet refuses non-str column names or mixed-type object columns.
        if fmt in ("parquet", "npy") and allow_pickle:
            return write(value, "pickle", path, where, allow_pickle)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StepOutputError(f"{where} could not be written as {fmt}: {first}; "
                              "fix the value or pass allow_pickle=True to the step") from exc
    return fmt


def read(path: str, fmt: str, allow_pickle: bool, where: str) -> Any:
    """Read back a value written by :func:`write`."""
    if fmt == "parquet":
        pd = require_extra("pandas", "pandas", purpose=f"{where} (a DataFrame)")
        require_extra("pyarrow", "pandas", purpose=f"{where} (parquet)")
        return pd.read_parquet(path)
    if fmt == "npy":
        np = require_extra("numpy", "pandas", purpose=f"{where} (a numpy array)")
        return np.load(path, allow_pickle=False)
    if fmt == "json":
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    if fmt == "bytes":
        with open(path, "rb") as f:
            return f.read()
    if fmt == "bytearray":
        with open(path, "rb") as f:
            return bytearray(f.read())
    if fmt == "pickle":
        if not allow_pickle:
            # Unpickling runs code, and a shared lake's files may come from anyone.
            raise StepOutputError(f"{where} was stored as pickle; loading it runs code, so the step must say "
                                  "allow_pickle=True (or read the File itself)")
        with open(path, "rb") as f:
            return pickle.load(f)
    raise StepOutputError(f"{where} has format {fmt!r}, which this limnos does not know; upgrade limnos")



__all__ = ["FORMATS", "choose_format", "is_data_leaf", "json_problem", "read", "write"]
