"""The host list of a URL that names several servers: ``host[:port][,host[:port]...]``."""

from __future__ import annotations

import urllib.parse

from ..._exceptions import InvalidURLError
from ..._urls import redacted


def parse_hosts(
    url: urllib.parse.SplitResult, default_port: int, *, each: str, forms: str
) -> list[tuple[str, int]]:
    """Return the ``(host, port)`` pairs of *url*'s comma-separated host list, in order.

    An IPv6 host is written in brackets (``[::1]:7000``); a host without a port takes
    *default_port*.

    Args:
        url: The URL.
        default_port: The port of a host given without one.
        each: What each host is, for the message (``"sentinel"``, ``"node"``).
        forms: The URL's accepted forms, for the message.

    Raises:
        InvalidURLError: One entry is not ``host[:port]`` with a port from 1 to 65535.
    """
    hosts = url.netloc.rpartition("@")[2]
    found: list[tuple[str, int]] = []
    for text in hosts.split(","):
        host, port = _host_port(text, default_port)
        if not host or port is None:
            raise InvalidURLError(
                f"bad {each} address {text!r} in {redacted(url.geturl())!r}: give"
                f" host[:port] for each {each}, separated by commas; accepted: {forms}"
            )
        found.append((host, port))
    return found


def _host_port(text: str, default_port: int) -> tuple[str, int | None]:
    """Split ``host[:port]`` (an IPv6 host in brackets); the port is None when bad."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", None
        port_text = rest[1:]
    else:
        host, _, port_text = text.partition(":")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return host, None
    return host, int(port_text)
