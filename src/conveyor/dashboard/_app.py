"""The dashboard's web app (Starlette): one page, a JSON API, event streams, two changes.

Routes (the queue's name is a query parameter, so any name works in a URL):

- ``GET /`` and ``GET /queue?name=N``: the page (the queues; one queue in detail);
- ``GET /api/overview``, ``GET /api/events``: every queue's counts and history, as JSON
  and as a server-sent event stream;
- ``GET /api/queue?name=N``, ``GET /api/queue/events?name=N``: one queue, with its next
  items (peek) and its dead letters;
- ``POST /api/queue/requeue?name=N`` (form: ``id=...`` repeated, or ``all=1``) and
  ``POST /api/queue/purge?name=N`` (form: ``which=ready|dead|all``): the only changes,
  refused without the page's CSRF token and refused outright with ``read_only``.

Every response is guarded (``_Guard``): with a token, nothing is served without it; on a
loopback address, a request whose ``Host`` is not a loopback name is refused (a web page
elsewhere cannot reach the dashboard by rebinding its DNS name to 127.0.0.1).
"""

from __future__ import annotations

import dataclasses
import hmac
import html
import json
import secrets
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import ConveyorError, QueueNotFoundError
from .._urls import redacted
from ..backends._base import PURGEABLE
from ._sampler import Sampler

__all__ = ["DashboardSettings", "create_app"]

STATIC = Path(__file__).parent / "static"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_FORM = 256 * 1024
KEEP_ALIVE = 15.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclasses.dataclass(frozen=True)
class DashboardSettings:
    """How the dashboard serves.

    Attributes:
        url: The store's URL (shown redacted).
        read_only: Refuse every change and hide its buttons.
        token: A secret every request must carry (``None``: none needed).
        loopback: Whether the server listens on a loopback address only (then requests
            must name a loopback host).
        port: The port served, which names the token's cookie.
        csrf: The token the page sends with each change (random per process by default).
    """

    url: str
    read_only: bool = False
    token: str | None = None
    loopback: bool = True
    port: int = 0
    csrf: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def cookie(self) -> str:
        """Return the name of the cookie that carries the token (one per port)."""
        return f"conveyor_dashboard_{self.port}"


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)


class _Guard:
    """ASGI middleware: the Host check, the token, and the security headers of each reply."""

    def __init__(self, app: ASGIApp, settings: DashboardSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        token = self.settings.token
        if token is not None and _same(request.query_params.get("token"), token):
            # The token came in the address: keep it in a cookie, and out of the address
            # bar and the browser's history.
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urllib.parse.urlencode(query) if query else "")
            response = Response(status_code=303, headers={"Location": target, **SECURITY_HEADERS})
            response.set_cookie(
                self.settings.cookie, token, httponly=True, samesite="strict", path="/"
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if self.settings.loopback:
            host = request.headers.get("host", "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.strip("[]") not in LOOPBACK_NAMES:
                return _error(421, "this dashboard answers on a loopback address only")
        token = self.settings.token
        if token is None:
            return None
        authorization = request.headers.get("authorization", "")
        bearer = authorization[7:] if authorization.lower().startswith("bearer ") else None
        if (
            _same(bearer, token)
            or _same(request.cookies.get(self.settings.cookie), token)
            or _same(request.query_params.get("token"), token)
        ):
            return None
        if request.url.path.startswith("/api/"):
            return _error(401, "this dashboard needs its token (Authorization: Bearer TOKEN)")
        return HTMLResponse(
            "<!doctype html><title>conveyor dashboard</title><p>This dashboard needs its"
            " token: open it once as <code>/?token=TOKEN</code>.</p>",
            status_code=401,
            headers=SECURITY_HEADERS,
        )


def create_app(sampler: Sampler, settings: DashboardSettings) -> ASGIApp:
    """Return the dashboard's ASGI app over *sampler* (which the caller starts and closes).

    Args:
        sampler: The store's sampler, already started.
        settings: How to serve: read-only, token, loopback.
    """
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = (
        page.replace("{{csrf}}", html.escape(settings.csrf))
        .replace("{{read_only}}", "1" if settings.read_only else "0")
        .replace("{{store}}", html.escape(redacted(settings.url)))
    )

    async def show_page(request: Request) -> Response:
        status = 200
        if request.url.path == "/queue":
            name = request.query_params.get("name", "")
            status = 200 if await _find(name) else 404
        return HTMLResponse(page, status_code=status)

    async def _find(name: str) -> bool:
        if sampler.view(name) is not None:
            return True
        return name in await sampler.relist()

    async def overview(request: Request) -> Response:
        return JSONResponse(sampler.overview())

    async def overview_events(request: Request) -> Response:
        return _stream(None)

    async def queue(request: Request) -> Response:
        name = request.query_params.get("name", "")
        if not await _find(name):
            return _missing(name)
        with sampler.watching(name):
            await sampler.next_version(sampler.version, sampler.interval * 3)
            if sampler.view(name) is None:
                return _missing(name)
            return JSONResponse(_payload(name, first=True))

    async def queue_events(request: Request) -> Response:
        name = request.query_params.get("name", "")
        if not await _find(name):
            return _missing(name)
        return _stream(name)

    def _missing(name: str) -> Response:
        return _error(404, f"no queue {name!r} in {redacted(settings.url)}")

    def _stream(name: str | None) -> Response:
        async def events() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            if name is not None:
                # watching() asked for a sample at once: the first event carries the
                # queue's items and dead letters as they are now, not as last watched.
                await sampler.next_version(sampler.version, sampler.interval * 3)
            seen = -1
            while not sampler.closing:
                if sampler.version == seen:
                    yield ": still here\n\n"  # keeps proxies from closing the stream
                else:
                    first, seen = seen < 0, sampler.version
                    yield f"data: {json.dumps(_payload(name, first=first))}\n\n"
                await sampler.next_version(seen, KEEP_ALIVE)

        async def watched() -> AsyncIterator[str]:
            if name is None:
                async for event in events():
                    yield event
            else:
                with sampler.watching(name):
                    async for event in events():
                        yield event

        return StreamingResponse(
            watched(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    def _payload(name: str | None, *, first: bool) -> dict[str, Any]:
        if name is None:
            return sampler.overview() if first else sampler.latest()
        view = sampler.view(name)
        payload: dict[str, Any] = {"version": sampler.version, "gone": view is None}
        if view is not None:
            payload.update(view.detail())
            if first:
                payload["history"] = [p.as_json() for p in view.history]
            else:
                last = view.history[-1] if view.history else None
                payload["point"] = last.as_json() if last else None
        return payload

    async def change(request: Request) -> Response:
        if settings.read_only:
            return _error(403, "this dashboard is read-only (conveyor dashboard --read-only)")
        if not _same(request.headers.get("x-csrf-token"), settings.csrf):
            return _error(403, "refused: the CSRF token is missing or wrong (reload the page)")
        origin = request.headers.get("origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != request.headers.get(
            "host"
        ):
            return _error(403, "refused: the request came from another site")
        body = await request.body()
        if len(body) > MAX_FORM:
            return _error(413, "the form is too large")
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        name = request.query_params.get("name", "")
        try:
            if request.url.path.endswith("/requeue"):
                ids = None if form.get("all") == ["1"] else form.get("id", [])
                if ids == []:
                    return _error(400, "requeue needs id=ID (repeated) or all=1")
                return JSONResponse({"requeued": await sampler.requeue(name, ids)})
            which = form.get("which", [""])[0]
            if which not in PURGEABLE:
                return _error(400, f"purge needs which= one of {', '.join(PURGEABLE)}")
            return JSONResponse({"purged": await sampler.purge(name, which)})
        except QueueNotFoundError:
            return _missing(name)
        except ConveyorError as exc:
            return _error(502, str(exc))

    return _Guard(
        Starlette(
            routes=[
                Route("/", show_page),
                Route("/queue", show_page),
                Route("/api/overview", overview),
                Route("/api/events", overview_events),
                Route("/api/queue", queue),
                Route("/api/queue/events", queue_events),
                Route("/api/queue/requeue", change, methods=["POST"]),
                Route("/api/queue/purge", change, methods=["POST"]),
                Mount("/static", StaticFiles(directory=STATIC), name="static"),
            ]
        ),
        settings,
    )
