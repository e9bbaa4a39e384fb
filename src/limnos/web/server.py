"""Start and stop the ``limnos ui`` web app: a uvicorn server in a thread, over one open lake.

:func:`launch` is what ``limnos ui``, ``lake.ui()`` and ``ds.visualize()`` call.
It binds 127.0.0.1 unless told otherwise; any other host gets a random access
token, printed once in the URL and kept in a cookie after the first visit
(see :mod:`.security`). The handle it returns knows its URL, stops the server,
and shows the page in a notebook as an iframe.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import socket
import threading
import time
import urllib.parse
import webbrowser
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtra, UiError

if TYPE_CHECKING:
    from ..lake import Lake


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Settings:
    """How one server runs: where it listens, whether it edits, its secrets.

    Attributes:
        host: the address it binds (127.0.0.1 by default).
        port: the port it binds (0: a free one, known once bound).
        allow_edit: whether pages offer edits (metadata, lock, saved datasets).
        token: the access token every request needs (None: none needed, loopback only).
        csrf: the token every form that writes carries.
        allowed_hosts: the Host header values accepted (DNS rebinding defence); empty: any.
    """

    host: str = "127.0.0.1"
    port: int = 0
    allow_edit: bool = False
    token: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    allowed_hosts: set[str] = field(default_factory=set)

    @classmethod
    def for_host(cls, host: str = "127.0.0.1", port: int = 0, allow_edit: bool = False,
                 token: str | None = None) -> Settings:
        """Settings for binding ``host``: a token is made (or kept) for any host that is not loopback."""
        if not is_loopback(host) and not token:
            token = secrets.token_urlsafe(24)
        return cls(host=host, port=port, allow_edit=allow_edit, token=token)


class UiServer:
    """A running ``limnos ui`` server: ``.url``, ``.stop()``; shown as an iframe in a notebook."""

    def __init__(self, server: Any, thread: threading.Thread, settings: Settings, path: str = "/") -> None:
        """Wrap a started uvicorn ``server`` running in ``thread``."""
        self._server = server
        self._thread = thread
        self.settings = settings
        self.path = path

    @property
    def base_url(self) -> str:
        """The server's root URL (without the token)."""
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        return f"http://{shown}:{self.settings.port}"

    @property
    def url(self) -> str:
        """The URL of the page it was opened on, with the access token when one is needed."""
        url = self.base_url + self.path
        if self.settings.token:
            url += ("&" if "?" in url else "?") + "token=" + urllib.parse.quote(self.settings.token)
        return url

    def view(self, path: str) -> UiServer:
        """A handle on another page of the same server (``path`` such as ``/files``)."""
        return UiServer(self._server, self._thread, self.settings, path)

    @property
    def running(self) -> bool:
        """Whether the server thread still runs."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()

    def __repr__(self) -> str:
        return f"<limnos ui {self.url}>"

    def _repr_html_(self) -> str:
        """The page in an iframe, for notebooks."""
        from html import escape

        return (f'<iframe src="{escape(self.url, quote=True)}" width="100%" height="720" '
                'style="border:1px solid #ddd;border-radius:6px"></iframe>')


def _free_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port), made here so the port is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UiError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another port or port=0",
                      host=host, port=port) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def launch(lake: Lake, path: str = "/files", *, host: str = "127.0.0.1", port: int = 0, allow_edit: bool = False,
           token: str | None = None, open_browser: bool = False) -> UiServer:
    """Serve the web app over ``lake`` in a background thread; return its handle, opened on ``path``.

    Raises:
        MissingExtra: the web extra (fastapi, uvicorn, jinja2, Pillow) is not installed.
        UiError: the address cannot be bound.
    """
    try:
        import uvicorn
    except ImportError:
        raise MissingExtra("limnos ui needs the web extra: pip install 'limnos[web]'",
                           module="uvicorn", extra="web") from None
    from .app import create_app

    settings = Settings.for_host(host, port, allow_edit, token)
    sock = _free_socket(host, port)
    settings.port = sock.getsockname()[1]
    if is_loopback(host):
        settings.allowed_hosts = {"127.0.0.1", "localhost", "[::1]", host}
    app = create_app(lake, settings)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="limnos-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        raise UiError(f"the web server on {host}:{settings.port} did not start", host=host, port=settings.port)
    handle = UiServer(server, thread, settings, path)
    if open_browser:
        with contextlib.suppress(webbrowser.Error, OSError):  # no browser here: the URL is printed anyway
            webbrowser.open(handle.url)
    return handle


def view_path(page: str, **params: Any) -> str:
    """The path of a page with its query parameters (None values left out)."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None and v != ""})
    return f"/{page}" + (f"?{query}" if query else "")


__all__ = ["Settings", "UiServer", "is_loopback", "launch", "view_path"]
