"""moto's S3 server with atomic conditional creates, for the tests and benchmarks.

moto checks ``If-None-Match: *`` and then stores the object as two steps of a
threaded server (``S3Response.put_object``: ``get_object`` is None, later
``put_object``), so two concurrent creates of one key can both succeed, the
second overwriting the first. Real S3 (and the other servers limnos targets)
makes the check and the write one step; a team lake's commit log relies on
exactly that. Found by tests/test_team_log.py's 8-writer test under load: two
writers both "won" log entry 1006. This launcher serializes the two write
handlers that honour the header, then runs moto's own server main.

Usage: python tests/moto_atomic.py -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import functools
import threading
from typing import Any


def make_conditional_writes_atomic() -> None:
    """Wrap moto's object PUT and multipart-complete handlers in one lock."""
    from moto.s3.responses import S3Response

    lock = threading.Lock()
    for name in ("put_object", "_key_response_post"):
        original = getattr(S3Response, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        setattr(S3Response, name, locked)


if __name__ == "__main__":
    make_conditional_writes_atomic()
    from moto.server import main

    main()
