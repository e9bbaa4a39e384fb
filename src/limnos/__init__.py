"""limnos: turn any folder or object store into a data lake for data science.

>>> import limnos
>>> lake = limnos.init("/tmp/lake")
>>> with lake.create("raw/hello.txt", metadata={"project": "demo"}) as w:
...     w.write_text("hello")
>>> lake.query(project="demo").dataframe
"""

__version__ = "0.1.0"

from .api import find_lake, init, open  # noqa: E402
from .errors import *  # noqa: E402,F403
from .errors import __all__ as _errors
from .files import File, Writer  # noqa: E402
from .lake import Lake  # noqa: E402
from .query import Result  # noqa: E402

__all__ = ["File", "Lake", "Result", "Writer", "__version__", "find_lake", "init", "open", *_errors]
