"""Working copies: reflink, else copy; hard links and symlinks only on request.

DESIGN.md, "Safety comes before disk space": a working copy handed to a user
must not share bytes with a stored object unless the user opted in, because
an in-place edit of a hard link rewrites the object itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from typing import Literal

LinkMode = Literal["copy", "reflink", "hardlink", "symlink"]
LINK_MODES: tuple[str, ...] = ("copy", "reflink", "hardlink", "symlink")

_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
#: errnos that mean "this file system (pair) cannot do that", so fall back.
UNSUPPORTED_ERRNOS = frozenset({errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOTTY, errno.EPERM,
                                errno.ENOSYS})
#: the former private name, still imported by tracking/manifest.py


def reflink(src: str, dst: str) -> None:
    """Clone ``src`` to a new file ``dst`` sharing extents (btrfs, xfs, APFS...)."""
    with open(src, "rb") as s:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(fd, _FICLONE, s.fileno())
        except OSError:
            os.close(fd)
            os.unlink(dst)
            raise
        os.close(fd)


def make_readonly(path: str) -> None:
    """Clear every write bit of ``path``: stored objects and working copies are read-only."""
    mode = os.stat(path).st_mode
    os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def place(src: str, dst: str, link: LinkMode = "copy", readonly: bool = True) -> str:
    """Put the content of ``src`` at ``dst`` and return the method used.

    ``copy`` (the default) means reflink where the file system can, else a real
    copy. ``hardlink`` and ``symlink`` fall back to the same when impossible.
    ``dst`` must not exist.
    """
    if link not in LINK_MODES:
        raise ValueError(f"link must be one of {', '.join(LINK_MODES)}, not {link!r}")
    if link == "symlink":
        os.symlink(os.path.abspath(src), dst)
        return "symlink"
    if link == "hardlink":
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError as exc:
            if exc.errno not in UNSUPPORTED_ERRNOS and exc.errno != errno.EMLINK:
                raise
    try:
        reflink(src, dst)
        method = "reflink"
    except OSError as exc:
        if exc.errno not in UNSUPPORTED_ERRNOS:
            raise
        shutil.copyfile(src, dst)
        method = "copy"
    if readonly:
        make_readonly(dst)
    return method
