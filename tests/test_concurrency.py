"""Versions are allocated without races: 4 processes x 200 creates of one name."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import limnos

WRITER = textwrap.dedent(
    """
    import sys, limnos
    lake = limnos.open(sys.argv[1], catalog=sys.argv[2] or None)
    for i in range(int(sys.argv[4])):
        with lake.create("shared/counter.txt") as w:
            w.write_text(f"{sys.argv[3]}-{i}")
    lake.close()
    """
)


@pytest.mark.slow
def test_four_processes_create_same_name(lake, catalog_url):
    procs, per = 4, 200
    lake.close()
    running = [
        subprocess.Popen([sys.executable, "-c", WRITER, lake.path, catalog_url or "", str(p), str(per)],
                         stderr=subprocess.PIPE, text=True)
        for p in range(procs)
    ]
    for proc in running:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    lake = limnos.open(lake.path, catalog=catalog_url)
    history = lake.history("shared/counter.txt")
    assert [f.version for f in history] == list(range(1, procs * per + 1))
    contents = {f.read_text() for f in history}
    assert contents == {f"{p}-{i}" for p in range(procs) for i in range(per)}
    assert lake.fsck().ok
    lake.close()
