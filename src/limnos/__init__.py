"""limnos: turn any folder or object store into a data lake for data science.

>>> import limnos
>>> lake = limnos.init("/tmp/lake")
>>> with lake.create("raw/hello.txt", metadata={"project": "demo"}) as w:
...     w.write_text("hello")
>>> lake.query(project="demo").dataframe
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import *  # noqa: F403  (errors are light and always wanted)
from .errors import __all__ as _errors
from .version import __version__

try:  # every writer is guarded by POSIX file locks (catalog, store, limnos.lock): Linux, macOS, BSD
    import fcntl  # noqa: F401
except ImportError:  # Windows: refuse here, with the way out, not with a bare ModuleNotFoundError deep in a write
    import sys

    raise UnsupportedPlatform(  # noqa: F405
        f"limnos needs POSIX file locks (fcntl), which {sys.platform} lacks: it runs on Linux and macOS",
        hint="on Windows, run it under WSL 2", platform=sys.platform) from None

# The rest loads on first use (PEP 562), so `import limnos` and `limnos --help`
# do not pay for SQLAlchemy, fsspec and friends until a lake is touched.
_LAZY = {
    "init": "lake",
    "open": "lake",
    "find_lake": "lake",
    "Lake": "lake",
    "File": "core.files",
    "Writer": "core.files",
    "Result": "ops.query",
    "FileView": "ops.query",
    "parse_query": "ops.query",
    "AddResult": "ops.add",
    "step": "steps.step",
    "output": "steps.step",
    "Step": "steps.step",
    "track": "tracking.project",
    "Folio": "folio.folio",
    "Datasource": "datasources.source",
    "QueryResult": "datasources.results",
    "Datapoint": "datasources.results",
}

if TYPE_CHECKING:
    from .core import provenance
    from .core.files import File, Writer
    from .datasources.results import Datapoint, QueryResult
    from .datasources.source import Datasource
    from .folio.folio import Folio
    from .lake import Lake, find_lake, init, open
    from .ops.add import AddResult
    from .ops.query import FileView, Result, parse_query
    from .steps.step import Step, output, step
    from .tracking.project import track


#: Public modules, loaded on first use: ``limnos.provenance.register(fn)``.
_MODULES = {"provenance": "core.provenance"}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name in _MODULES:
        import importlib

        loaded = importlib.import_module(f".{_MODULES[name]}", __name__)
        globals()[name] = loaded
        return loaded
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'limnos' has no attribute {name!r}")
    import importlib

    # The facade first: it registers itself as the class features open lakes with.
    importlib.import_module(".lake", __name__)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, lazy ones included."""
    return sorted(__all__)


__all__ = ["AddResult", "Datapoint", "Datasource", "File", "FileView", "Folio", "Lake", "QueryResult", "Result", "Step", "Writer",
           "__version__", "find_lake", "init", "open", "output", "parse_query", "provenance", "step", "track", *_errors]
