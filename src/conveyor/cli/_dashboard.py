"""``conveyor dashboard URL``: serve the web dashboard of a store's queues (uvicorn).

The store is read once before serving, so a bad URL or a missing store is one line on
standard error and exit status 1, not a page of errors.  The address served is printed
once the socket listens (``--port 0`` picks a free port); the token never is.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
import sys
from types import FrameType
from typing import Any

from .._exceptions import ConveyorError
from .._urls import redacted

__all__ = ["TOKEN_VARIABLE", "add_dashboard_parser", "run_dashboard"]

TOKEN_VARIABLE = "CONVEYOR_DASHBOARD_TOKEN"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, not {text!r}")
    return port


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds from 0.05 to 3600, not {text!r}")
    return value


def add_dashboard_parser(commands: Any) -> None:
    """Add the ``dashboard`` command to *commands* (the parser's subparsers)."""
    dashboard = commands.add_parser(
        "dashboard",
        help="serve a web page of a store's queues: counts, charts, items, dead letters",
        description="Serve a small web app of the store's queues: their counts and charts"
        " (sampled by the server, once a second), their next items, and their dead letters"
        " with requeue and purge buttons.  It listens on 127.0.0.1 unless told otherwise.",
    )
    dashboard.add_argument(
        "url", metavar="URL", help="the store: sqlite:///file.db, redis://host:6379/0"
    )
    dashboard.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    dashboard.add_argument(
        "--port", type=_port, default=8080, help="the port (default: 8080; 0: any free one)"
    )
    dashboard.add_argument(
        "--read-only", action="store_true", help="show the queues, and refuse every change"
    )
    dashboard.add_argument(
        "--token",
        default=None,
        help=f"a secret every request must carry (default: ${TOKEN_VARIABLE}, if set); open"
        " the page once as /?token=TOKEN, or send Authorization: Bearer TOKEN",
    )
    dashboard.add_argument(
        "--interval", type=_interval, default=1.0, metavar="SECONDS", help=argparse.SUPPRESS
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def run_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard as *args* say, until interrupted.

    Returns:
        0 after a clean stop (Ctrl-C); 1 when the store cannot be read, the extra is not
        installed or the address cannot be listened on, with the reason on standard error.
    """
    try:
        return asyncio.run(_serve(args))
    except (ConveyorError, ImportError, OSError) as exc:
        if isinstance(exc, ImportError) and exc.name in ("starlette", "uvicorn"):
            exc = ImportError(f"the dashboard needs {exc.name}: pip install 'conveyor[dashboard]'")
        print(f"conveyor dashboard: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0


async def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..dashboard import DashboardSettings, Sampler, create_app

    class _Server(uvicorn.Server):
        """uvicorn's server, which also ends the event streams when told to stop.

        Otherwise a page left open holds its stream until the graceful shutdown's
        timeout, which then cancels it with a traceback.
        """

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(sampler.end_streams)
            super().handle_exit(sig, frame)

    loop = asyncio.get_running_loop()
    token = args.token if args.token is not None else os.environ.get(TOKEN_VARIABLE) or None
    loopback = _is_loopback(args.host)
    sampler = Sampler(args.url, interval=args.interval)
    await sampler.start()  # a bad URL or a missing store fails here, before serving
    try:
        sock = _listen(args.host, args.port)
        port = sock.getsockname()[1]
        settings = DashboardSettings(
            url=args.url, read_only=args.read_only, token=token, loopback=loopback, port=port
        )
        config = uvicorn.Config(
            create_app(sampler, settings),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        server = _Server(config)
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
        shown = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
        notes = [f"{len(sampler.names())} queues"]
        if args.read_only:
            notes.append("read-only")
        if token:
            notes.append("token required: open /?token=TOKEN once")
        print(
            f"conveyor dashboard of {redacted(args.url)} at http://{shown}:{port}/"
            f" ({', '.join(notes)}); Ctrl-C stops it",
            flush=True,
        )
        if not loopback and not token:
            print(
                f"conveyor dashboard: warning: anyone who reaches {args.host}:{port} can"
                " see these queues"
                + ("" if args.read_only else " and change them")
                + f": give --token (or ${TOKEN_VARIABLE})",
                file=sys.stderr,
                flush=True,
            )
        await server.serve(sockets=[sock])
    finally:
        await sampler.aclose()
    return 0
