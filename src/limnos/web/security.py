"""The guards every ``limnos ui`` response passes: host, access token, CSRF, and strict headers.

* **Host.** On a loopback bind only ``Host: 127.0.0.1`` / ``localhost`` is
  served, so a web page cannot reach the app through DNS rebinding.
* **Token.** On any other bind every request needs the server's token: in the
  URL once (``?token=``, printed by ``limnos ui``), after which it lives in an
  HttpOnly, SameSite=Strict cookie and the URL is cleaned by a redirect.
  Without it: 403, and nothing of the lake is read.
* **CSRF.** A request that writes (POST) must carry the form field ``csrf``
  equal to the server's CSRF token (rendered into its own forms; checked by
  :func:`csrf_ok` when the route reads its form), and an ``Origin``, when the
  browser sends one, must be this server (checked here).
* **Headers.** A strict Content-Security-Policy (scripts, styles and images
  from this server only: no inline script, no eval), ``nosniff``, no referrer to other sites,
  and no framing except by pages on this machine (notebooks).
"""

from __future__ import annotations

import hmac
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from .server import Settings

COOKIE = "limnos_ui_token"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'self' http://127.0.0.1:* http://localhost:* https://127.0.0.1:* https://localhost:*")

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make the Origin of our own forms "null"
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def csrf_ok(settings: Settings, given: object) -> bool:
    """Whether a form's ``csrf`` field is this server's CSRF token."""
    return _same(str(given or ""), settings.csrf)


def host_allowed(settings: Settings, host_header: str) -> bool:
    """Whether a Host header names this server (always true when no list is set: a token guards instead)."""
    if not settings.allowed_hosts:
        return True
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    return host in settings.allowed_hosts


def guard(settings: Settings) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """The HTTP middleware that applies the rules above to every request."""
    from starlette.responses import PlainTextResponse, RedirectResponse

    def refuse(status: int, text: str) -> Response:
        response = PlainTextResponse(text, status_code=status)
        response.headers.update(HEADERS)
        return response

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not host_allowed(settings, request.headers.get("host", "")):
            return refuse(400, "this server answers only to 127.0.0.1 and localhost")
        if settings.token:
            given = request.query_params.get("token")
            if given is not None:
                if not _same(given, settings.token):
                    return refuse(403, "wrong access token: open the URL 'limnos ui' printed")
                query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                clean = request.url.path + ("?" + urllib.parse.urlencode(query) if query else "")
                response: Response = RedirectResponse(clean, status_code=303)
                response.set_cookie(COOKIE, settings.token, httponly=True, samesite="strict", path="/")
                response.headers.update(HEADERS)
                return response
            if not _same(request.cookies.get(COOKIE), settings.token):
                return refuse(403, "this server needs its access token: open the URL 'limnos ui' printed")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and urllib.parse.urlsplit(origin).netloc != request.headers.get("host", ""):
                return refuse(403, "refused: a write from another site")
        response = await call_next(request)
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    return middleware
