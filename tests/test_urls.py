"""Passwords in queue URLs never show: not in messages, tracebacks, reprs nor CLI output.

The URLs are built from many shapes (user:pw@, :pw@, pw@, passwords holding ``/ @ : ? #
%`` raw or percent-encoded, ``?password=`` in the query, unknown and mistyped schemes,
malformed ports), and every password is made of distinctive pieces: no piece may appear
anywhere in what conveyor prints.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import traceback
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import conveyor
from conveyor._open import redacted as redacted_from_open
from conveyor._urls import redacted

# Letters that no message, host or keyword of conveyor holds four of in a row.
PIECE = st.text(alphabet="QXZJKVW", min_size=4, max_size=8)
SEPARATORS = ["/", "@", ":", "?", "#", "%", "%2F", "%40", "%3A", "%25", "[", "]", "&", "=", ""]


@st.composite
def passwords(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A password and the pieces of it that must never be shown."""
    pieces = draw(st.lists(PIECE, min_size=1, max_size=3))
    text = pieces[0]
    for piece in pieces[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + piece
    return text, pieces


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A queue URL holding a password somewhere, and the pieces of that password."""
    password, pieces = draw(passwords())
    scheme = draw(
        st.sampled_from(
            ["redis", "rediss", "sqlite", "memory", "redsi", "REDIS", "http", "redis+sentinel"]
        )
    )
    after_scheme = draw(st.sampled_from(["://", "://", "://", ":/", ":", ":///", "//"]))
    user = draw(st.sampled_from(["", "alice", "bob.b"]))
    in_query = draw(st.booleans())
    if in_query:
        userinfo = draw(st.sampled_from(["", "alice@"]))
    else:
        forms = [f"{user}:{password}@", f":{password}@"]
        if ":" not in password:  # else its first piece is, by the URL's form, a user name
            forms.append(f"{password}@")
        userinfo = draw(st.sampled_from(forms))
    # Never a default port: a Redis may listen there, and it must not see these URLs.
    host = draw(st.sampled_from(["127.0.0.1", "localhost", "[::1]", "", "[::1"]))
    port = draw(st.sampled_from([":1", ":99999", ":x", ":-1", ":1:2"]))
    path = draw(st.sampled_from(["", "/0", "/x.db", "/0/extra", "/%2F"]))
    quoted = urllib.parse.quote(password, safe="")
    query = draw(
        st.sampled_from(
            [f"?password={quoted}", f"?prefix=a&password={quoted}", f"?PASSWORD={quoted}#x"]
            if in_query
            else ["", "?socket_timeout=1", "?x", "?a=b&c", "#frag"]
        )
    )
    return f"{scheme}{after_scheme}{userinfo}{host}{port}{path}{query}", pieces


def _assert_hidden(pieces: list[str], *texts: str) -> None:
    for text in texts:
        for piece in pieces:
            assert piece.lower() not in text.lower(), f"{piece!r} shows in {text!r}"


def _everything_said(exc: BaseException) -> str:
    # What a traceback says of the error and of every cause and context (not the source
    # lines, which may be the caller's own, quoting its URL).
    said: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        said += traceback.format_exception_only(type(seen), seen)
        said += [repr(seen), *getattr(seen, "__notes__", [])]
        context = None if seen.__suppress_context__ else seen.__context__
        seen = seen.__cause__ or context
    return "".join(said)


@settings(max_examples=400, deadline=None)
@given(urls())
def test_redacted_never_shows_a_password(case: tuple[str, list[str]]) -> None:
    url, pieces = case
    _assert_hidden(pieces, redacted(url))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(urls())
def test_open_queue_errors_never_show_a_password(case: tuple[str, list[str]]) -> None:
    url, pieces = case

    async def attempt() -> BaseException | None:
        try:
            # Port 1 refuses at once; no retries, so an unreachable server fails fast.
            queue = await conveyor.open_queue(url, name="q", retry_timeout=0)
        except Exception as exc:
            return exc
        await queue.aclose()  # pragma: no cover - every generated URL is refused
        return None

    exc = asyncio.run(attempt())
    assert exc is not None, url
    _assert_hidden(pieces, str(exc), _everything_said(exc))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redsi://:QXZJ@host", "redsi://***@host"),
        ("redis://:QX/ZJ@127.0.0.1:1/0", "redis://***@127.0.0.1:1/0"),
        ("sqlite://:QXZJ@host/x.db", "sqlite://***@host/x.db"),
        ("redis://alice:QX:ZJ@h:1/0?password=KVWQ&prefix=p", "redis://alice:***@h:1/0"),
        ("redis:/:QXZJ@h", "redis:/***@h"),
        ("redis://bob@h/0", "redis://***@h/0"),
        ("redis://h:1/0", "redis://h:1/0"),
        ("redis://h:QXZJ/0", "redis://h:***/0"),  # a password typed without its "@"
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
        ("sqlite:////tmp/queue.db", "sqlite:////tmp/queue.db"),
    ],
)
def test_redacted_keeps_what_is_safe(url: str, shown: str) -> None:
    assert redacted(url).startswith(shown)
    assert "QX" not in redacted(url)
    assert "KVWQ" not in redacted(url)
    assert redacted_from_open is redacted  # still importable from where it was


async def test_a_password_with_an_unencoded_slash_is_refused_with_a_clear_error() -> None:
    with pytest.raises(conveyor.InvalidURLError, match="percent-encode") as caught:
        await conveyor.open_queue("redis://:123/456@127.0.0.1:1/0", name="q")
    assert "456" not in _everything_said(caught.value)


async def test_an_open_queue_shows_no_password_in_repr_or_statistics(
    request: pytest.FixtureRequest,
) -> None:
    from tests.backends.redis_backend import RedisServer

    password = "QXZJ/KV@W:Q?J#K%Z"
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir, password=password)
    server.start()
    try:
        url = f"redis://:{urllib.parse.quote(password, safe='')}@127.0.0.1:{server.port}/0"
        async with conveyor.open_queue(url, name="secret-test") as q:
            assert isinstance(q, conveyor.DurableQueue)
            await q.put("x")
            assert await q.get() == "x"
            q.task_done()
            said = [repr(q), str(q), repr(q.statistics()), repr(await q.refresh())]
            _assert_hidden(["QXZJ", "QXZJ%2F", password], *said)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


CLI_CASES = [
    ["demo", "--backend", "redsi://:QXZJKV@127.0.0.1:1/0", "--plain"],
    ["demo", "--backend", "redis://:QXZ/JKV@127.0.0.1:1/0", "--plain"],
    ["demo", "--backend", "sqlite://:QXZJKV@host/x.db", "--plain"],
    ["demo", "--backend", "redis://alice:QXZJKV@127.0.0.1:1/0?retry_timeout=0", "--plain"],
    ["demo", "--backend", "redis://127.0.0.1:1/0?password=QXZJKV&retry_timeout=0", "--plain"],
    ["demo", "--role", "producer", "--backend", "memory://:QXZJKV@h"],
    ["demo", "--backendd", "redis://:QXZJKV@127.0.0.1:1/0"],
    ["demo", "redis://:QXZJKV@127.0.0.1:1/0"],
]


@pytest.mark.parametrize("args", CLI_CASES, ids=[" ".join(a[1:3]) for a in CLI_CASES])
def test_cli_output_never_shows_a_password(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout + done.stderr  # it said something
    _assert_hidden(["QXZ", "JKV"], done.stdout, done.stderr)


def test_demo_banner_on_a_real_server_shows_no_password() -> None:
    from tests.backends.redis_backend import RedisServer

    workdir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
    server = RedisServer(workdir, password="QXZJKVW")
    server.start()
    command = [sys.executable, "-m", "conveyor", "demo", "basic", "--speed", "100", "--plain"]
    try:
        done = subprocess.run(
            [*command, "--backend", server.url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert "redis://***@127.0.0.1" in done.stdout
    _assert_hidden(["QXZJKVW"], done.stdout, done.stderr)
