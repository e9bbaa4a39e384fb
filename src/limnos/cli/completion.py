"""Shell completion of what is in the lake: file names and refs, remote names, datasource names.

``limnos --install-completion`` (typer's) installs completion for bash, zsh,
fish or PowerShell; the shell then runs ``limnos`` with ``_LIMNOS_COMPLETE``
set, and click calls these functions for the word being typed. Each opens
the lake the command line names (``--lake``, else ``$LIMNOS_LAKE``, else the
nearest ``.limnos`` above the cwd), reads only what the word needs, and
returns nothing on any failure: a completion must never print an error into
the user's command line.

File names complete one folder level at a time, as a shell completes paths
(``raw/`` before ``raw/2024/a.csv``), so a lake of 100k files lists only the
names under the prefix typed; after ``name@`` come that name's versions.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from limnos.lake import Lake

#: The most candidates offered for one word: a shell shows no more usefully, and reading stops there.
MAX_CANDIDATES = 500


@contextlib.contextmanager
def _lake(ctx: typer.Context) -> Iterator[Lake]:
    """The lake the partial command line names, opened for the completion and closed after it."""
    import limnos

    root = ctx.find_root()
    path = root.params.get("lake") if root.params else None
    lake = limnos.open(path if isinstance(path, str) and path else os.environ.get("LIMNOS_LAKE") or None)
    try:
        yield lake
    finally:
        lake.close()


def _safely(read: Callable[[], list[str]]) -> list[str]:
    """``read()``, or no candidates when it fails (no lake here, a locked catalog, a bad --lake)."""
    try:
        return read()
    except Exception:  # completion runs inside the user's shell: an error must never reach it
        return []


def ref_candidates(lake: Lake, incomplete: str) -> list[str]:
    """File names starting with ``incomplete``, one folder level deeper than it; after ``@``, ``name@N`` refs.

    Args:
        lake: The lake to read.
        incomplete: The word typed so far (``ra``, ``raw/``, ``raw/a.csv@``).
    """
    if "@" in incomplete:
        name = incomplete.partition("@")[0]
        refs = (f"{f.name}@{f.version}" for f in reversed(lake.history(name)))
        return [r for r in refs if r.startswith(incomplete)][:MAX_CANDIDATES]
    folder = incomplete[: incomplete.rfind("/") + 1]
    seen: dict[str, None] = {}
    for f in lake.iter_ls(folder):
        if not f.name.startswith(incomplete):
            continue
        cut = f.name.find("/", len(incomplete))
        seen[f.name if cut < 0 else f.name[: cut + 1]] = None
        if len(seen) >= MAX_CANDIDATES:
            break
    return list(seen)


def complete_ref(ctx: typer.Context, incomplete: str) -> list[str]:
    """Complete a file name or ref (``name``, ``name@N``) from the lake."""
    def read() -> list[str]:
        with _lake(ctx) as lake:
            return ref_candidates(lake, incomplete)

    return _safely(read)


def complete_remote(ctx: typer.Context, incomplete: str) -> list[str]:
    """Complete a remote's name from the lake's remotes."""
    def read() -> list[str]:
        with _lake(ctx) as lake:
            return [r.name for r in lake.remotes.list() if r.name.startswith(incomplete)]

    return _safely(read)


def complete_datasource(ctx: typer.Context, incomplete: str) -> list[str]:
    """Complete a datasource's name."""
    def read() -> list[str]:
        with _lake(ctx) as lake:
            names = (ds.name for ds in lake.datasources())
            return list(itertools.islice((n for n in names if n.startswith(incomplete)), MAX_CANDIDATES))

    return _safely(read)


__all__ = ["MAX_CANDIDATES", "complete_datasource", "complete_ref", "complete_remote", "ref_candidates"]
