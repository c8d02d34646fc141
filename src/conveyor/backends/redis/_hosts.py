"""The host list of a URL that names several servers: ``host[:port][,host[:port]...]``."""

from __future__ import annotations

import urllib.parse


def parse_hosts(url: urllib.parse.SplitResult, default_port: int) -> list[tuple[str, int]]:
    """Return the ``(host, port)`` pairs of *url*'s comma-separated host list, in order.

    An IPv6 host is written in brackets (``[::1]:7000``); a host without a port takes
    *default_port*.

    Raises:
        ValueError: One entry is not ``host[:port]`` with a port from 1 to 65535; the
            message is that entry (the caller adds the URL's accepted forms).
    """
    hosts = url.netloc.rpartition("@")[2]
    found: list[tuple[str, int]] = []
    for text in hosts.split(","):
        host, port = _host_port(text, default_port)
        if not host or port is None:
            raise ValueError(text)
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
