"""fsspec's own abstract test suite (``fsspec.tests.abstract``) against ``limnos://``.

The suite checks copy, get, put, open and pipe the way every fsspec backend
is checked (s3fs, gcsfs, the local and memory filesystems run it too). A
lake is a versioned, write-once filesystem whose folders exist only through
the names under them, so it runs as object stores do: with
``supports_empty_directories`` False. Everything in those five classes
applies and runs; what fsspec's suite leaves out (``mv``: not in its
``__init__``) is tested in tests/test_fs.py. docs/fsspec.md lists what does
not apply to a lake and why.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator

import fsspec
import fsspec.tests.abstract as abstract
import pytest

import limnos
from limnos.fs import LimnosFileSystem

if "limnos" not in fsspec.available_protocols():  # an editable install made before the entry point existed
    fsspec.register_implementation("limnos", LimnosFileSystem, clobber=True)


class LimnosFixtures(abstract.AbstractFixtures):
    """A fresh lake per test, seen as ``limnos://``."""

    @pytest.fixture(scope="class")
    @classmethod
    def fs(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimnosFileSystem]:
        # One lake per class (a lake per test is most of the suite's time); each test has its own folder.
        lake = limnos.init(str(tmp_path_factory.mktemp("lake") / "lake"))
        yield LimnosFileSystem(lake=lake, skip_instance_cache=True)
        lake.close()

    @pytest.fixture
    def fs_path(self) -> str:
        return f"suite-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def fs_join(self):  # type: ignore[no-untyped-def]
        return posixpath.join

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False  # a folder is the names under it, as on S3


# copy, get and put run 135 parametrized cases of about a second each (a commit per file written): make test
# runs them, make test-fast leaves them out; open and pipe stay in the fast run.
@pytest.mark.slow
class TestLimnosCopy(abstract.AbstractCopyTests, LimnosFixtures):
    """``fs.copy``: each copy is a new version made from its source."""


@pytest.mark.slow
class TestLimnosGet(abstract.AbstractGetTests, LimnosFixtures):
    """``fs.get``: versions copied out to local files."""


@pytest.mark.slow
class TestLimnosPut(abstract.AbstractPutTests, LimnosFixtures):
    """``fs.put``: local files added to the lake."""


class TestLimnosOpen(abstract.AbstractOpenTests, LimnosFixtures):
    """``open(..., "xb")`` refuses a name that exists."""


class TestLimnosPipe(abstract.AbstractPipeTests, LimnosFixtures):
    """``pipe_file(mode="create")`` refuses a name that exists; ``overwrite`` writes a new version."""
