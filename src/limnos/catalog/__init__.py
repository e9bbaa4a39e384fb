"""The SQL catalog (SQLAlchemy Core): schema, migrations, commits and reads.

Every SQL statement of limnos lives in this package. ``CHUNK`` and
``chunks`` bound the ``IN (...)`` lists and batches of all of them.
"""

from .catalog import Catalog, FileRow, StepHit
from .engine import CHUNK, chunks
from .records import Commit
from .values import to_utc

__all__ = ["CHUNK", "Catalog", "Commit", "FileRow", "StepHit", "chunks", "to_utc"]
