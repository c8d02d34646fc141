"""Queue URLs made safe to show: no message, repr or output of conveyor quotes a password.

Low in the layers on purpose: the URL dispatch (``_open``), the backends and the command
line all quote URLs in their messages, and all of them import ``redacted()`` from here.
"""

from __future__ import annotations

import re

__all__ = ["redacted"]

_HIDDEN = "***"

# A scheme as RFC 3986 spells it, then the colon; the "//" is optional here because a
# mistyped URL ("redis:/:pw@host") must be redacted as carefully as a well-formed one.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")

# A query or fragment parameter whose name says it holds a secret, up to the next
# separator: "?password=...", "&auth_token=...", "#passwd=...".
_SECRET_PARAM = re.compile(
    r"(?i)(?P<name>[?&;#][^=&;#]*(?:pass|pwd|secret|token|auth|key)[^=&;#]*=)[^&;#]*"
)


def redacted(url: str) -> str:
    """Return *url* with every password in it replaced by ``***``: safe for messages.

    Whatever the URL looks like (unknown scheme, no ``//``, a password holding ``/``,
    ``@``, ``?`` or ``#`` unencoded), everything between the scheme and the last ``@`` is
    taken for credentials: only a plain user name before a ``:`` is kept.  Query and
    fragment parameters named like secrets (``password=``, ``token=``...) are hidden too.
    Hiding too much is preferred to showing a secret.
    """
    if not isinstance(url, str):
        return f"<{type(url).__name__}>"
    url = _SECRET_PARAM.sub(lambda m: m.group("name") + _HIDDEN, url)
    at = url.rfind("@")
    if at < 0:
        return _port_hidden(url)
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    while start < at and url[start] == "/":
        start += 1
    if start > at:  # pragma: no cover - the scheme match cannot pass the "@"
        start = 0
    userinfo = url[start:at]
    user, colon, _ = userinfo.partition(":")
    # "user:password@" keeps the user; a lone "secret@" may be a password: all hidden.
    if colon and user and not any(c in user for c in "/?#[]"):
        shown = f"{user}:{_HIDDEN}"
    else:
        shown = _HIDDEN
    return f"{url[:start]}{shown}{url[at:]}"


def _port_hidden(url: str) -> str:
    # No "@": no credentials by the URL's form, but a "port" that is not a number may be
    # a password typed without its "@" ("redis://host:secret"): hidden as well.
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    while start < len(url) and url[start] == "/":
        start += 1
    end = start
    while end < len(url) and url[end] not in "/?#":
        end += 1
    # A Sentinel URL names several hosts, comma-separated: each is checked alone.
    hosts = [_host_port_hidden(host) for host in url[start:end].split(",")]
    return f"{url[:start]}{','.join(hosts)}{url[end:]}"


def _host_port_hidden(authority: str) -> str:
    if authority.startswith("[") and "]" not in authority:
        return authority  # an unclosed IPv6 host: all colons are its own
    bracket = authority.rfind("]")  # an IPv6 host holds colons of its own
    colon = authority.find(":", bracket + 1)
    port = authority[colon + 1 :]
    if colon < 0 or not port or port.isdigit():
        return authority
    return f"{authority[: colon + 1]}{_HIDDEN}"
