"""Small test helpers shared across test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

import os


def age(path: os.PathLike[str] | str, seconds: float = 3600) -> None:
    """Backdate a file's mtime, so the stat cache trusts it (it skips racy, just-written files)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))
