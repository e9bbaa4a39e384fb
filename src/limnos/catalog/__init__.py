"""The SQL catalog (SQLAlchemy Core): schema, migrations, commits and reads."""

from .catalog import Catalog, FileRow, utc
from .records import Commit

__all__ = ["Catalog", "Commit", "FileRow", "utc"]
