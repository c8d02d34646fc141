"""``rediss://``: a queue over TLS, against a private ``redis-server`` that speaks only TLS.

The module makes a throwaway CA and a server certificate (for the IP address 127.0.0.1
only) with the ``openssl`` command, and starts ``redis-server --port 0 --tls-port N``: no
plain-text port, so every test that gets an item through talked TLS.  Without
``redis-server``, ``openssl``, or a ``redis-server`` built with TLS, the tests skip with the
reason, except under ``CI=true``, where they fail (the rule of ``redis_backend.py``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from tests.backends.redis_backend import (
    START_LIMIT,
    RedisServer,
    require_redis_server,
    unique_name,
)

pytestmark = pytest.mark.timeout(60)

# Bound on how long a failing open may take with retry_timeout=0.5: a hang fails the test.
FAIL_WITHIN = 10.0

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = conveyor test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the Redis TLS tests")
    pytest.skip(reason)


def make_certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """Write a CA and a server certificate signed by it; return (ca, cert, key) paths.

    The extensions are spelled out because Python 3.13's default context checks them
    strictly (``VERIFY_X509_STRICT``).
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        _skip_or_fail("the openssl command is not installed (apt install openssl)")
    assert openssl is not None
    config = workdir / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG)
    ca, ca_key = workdir / "ca.crt", workdir / "ca.key"
    cert, key, request = workdir / "server.crt", workdir / "server.key", workdir / "server.csr"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        [openssl, "req", "-x509", "-config", config, "-extensions", "ca", *ec,
         "-keyout", ca_key, "-out", ca, "-days", "2"],
        [openssl, "req", "-new", "-config", config, *ec, "-subj", "/CN=127.0.0.1",
         "-keyout", key, "-out", request],
        [openssl, "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key,
         "-set_serial", "2", "-days", "2", "-extfile", config, "-extensions", "server",
         "-out", cert],
    ]  # fmt: skip
    for command in commands:
        done = subprocess.run(list(map(str, command)), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{command[1]} failed: {done.stderr[-2000:]}")
    return ca, cert, key


class TLSRedisServer(RedisServer):
    """A private ``redis-server`` that listens for TLS only, with a certificate of our CA."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.ca, self.cert, self.key = make_certificates(workdir)

    def address(self, query: str = "", scheme: str = "rediss") -> str:
        """The URL (``rediss://`` unless *scheme* says) of database 0, then ``?query``."""
        return f"{scheme}://127.0.0.1:{self.port}/0" + (f"?{query}" if query else "")

    def trust(self) -> str:
        """The query that makes a client trust the throwaway CA."""
        return urllib.parse.urlencode({"ssl_ca_certs": str(self.ca)})

    def start(self) -> None:
        """Start the server and return once it answers ``PING`` over TLS."""
        log = self.workdir / "redis.log"
        args = [
            self.binary,
            "--port", "0",
            "--tls-port", str(self.port),
            "--bind", "127.0.0.1",
            "--tls-cert-file", str(self.cert),
            "--tls-key-file", str(self.key),
            "--tls-ca-cert-file", str(self.ca),
            "--tls-auth-clients", "no",
            "--dir", str(self.workdir),
            "--appendonly", "no",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(log),
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_LIMIT
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                if "tls" in text.lower():
                    # A build without TLS refuses or cannot serve the tls-* options.
                    self.stop()
                    _skip_or_fail(f"{self.binary} cannot serve TLS (built without it?): {text}")
                raise RuntimeError(f"TLS redis-server on port {self.port} did not start: {text}")
            time.sleep(0.02)

    def answers(self) -> bool:
        """Return whether the server answers ``PING`` over TLS with our CA's certificate."""
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
            ):
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRedisServer]:
    """A TLS-only ``redis-server`` for this module, stopped at the end even on failure."""
    require_redis_server()
    server = TLSRedisServer(tmp_path_factory.mktemp("redis-tls"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


async def _open_and_close(url: str, name: str, **options: Any) -> None:
    queue = await conveyor.open_queue(url, name=name, **options)
    await queue.aclose()


async def _opening_fails(url: str, name: str) -> conveyor.BackendError:
    """Open *url* and return the error it raises; fail if it opens or takes too long."""
    started = time.monotonic()
    with pytest.raises(conveyor.BackendError) as caught:
        await asyncio.wait_for(_open_and_close(url, name), FAIL_WITHIN)
    assert time.monotonic() - started < FAIL_WITHIN
    return caught.value


@pytest.mark.parametrize("where", ["url", "keyword"])
async def test_a_queue_works_end_to_end_over_tls(
    tls_server: TLSRedisServer, request: pytest.FixtureRequest, where: str
) -> None:
    name = unique_name(request)
    options: dict[str, Any] = {}
    if where == "url":
        url = tls_server.address(tls_server.trust())
    else:
        url, options["ssl_ca_certs"] = tls_server.address(), str(tls_server.ca)
    total = 40
    async with (
        conveyor.open_queue(url, name=name, maxsize=3, **options) as producer,
        conveyor.open_queue(url, name=name, maxsize=3, **options) as consumer,
    ):

        async def produce() -> None:
            for i in range(total):
                await producer.put(i)  # blocks on the shared maxsize=3 until the consumer gets

        async def consume() -> list[int]:
            got = []
            for _ in range(total):
                got.append(await consumer.get())
                consumer.task_done()
            return got

        _, got = await asyncio.wait_for(asyncio.gather(produce(), consume()), 30)
        await producer.join(timeout=30)  # the producer's join sees the consumer's acks
        stats = producer.statistics()
    assert got == list(range(total))
    assert stats.backend == "redis"
    assert stats.unfinished_tasks == 0
    assert stats.peak_size <= 3


async def test_a_certificate_from_an_unknown_ca_is_refused(
    tls_server: TLSRedisServer, request: pytest.FixtureRequest
) -> None:
    # No CA given: the system's CAs do not know the throwaway one.  Retrying cannot
    # help, so it fails at once (not after the 10 s retry budget) and is not reported as
    # the server being unavailable.
    url = tls_server.address("ssl_cert_reqs=required")
    started = time.monotonic()
    error = await _opening_fails(url, unique_name(request))
    assert time.monotonic() - started < 5
    assert not isinstance(error, conveyor.BackendUnavailableError)
    assert "certificate" in str(error).lower()
    assert "ssl_ca_certs" in str(error)
    assert f"127.0.0.1:{tls_server.port}" in str(error)


async def test_the_host_name_is_checked_unless_switched_off(
    tls_server: TLSRedisServer, request: pytest.FixtureRequest
) -> None:
    # The certificate names IP 127.0.0.1 only, so "localhost" does not match it.
    url = f"rediss://localhost:{tls_server.port}/0?{tls_server.trust()}&retry_timeout=0.5"
    error = await _opening_fails(url, unique_name(request))
    assert "certificate" in str(error).lower() or "hostname" in str(error).lower()
    async with conveyor.open_queue(
        url + "&ssl_check_hostname=false", name=unique_name(request)
    ) as q:
        await q.put("trusted CA, name not checked")
        assert await q.get() == "trusted CA, name not checked"
        q.task_done()


async def test_a_plain_url_to_the_tls_port_fails_within_the_retry_budget(
    tls_server: TLSRedisServer, request: pytest.FixtureRequest
) -> None:
    error = await _opening_fails(
        tls_server.address("retry_timeout=0.5", scheme="redis"), unique_name(request)
    )
    assert isinstance(error, conveyor.BackendUnavailableError)
    assert f"127.0.0.1:{tls_server.port}" in str(error)
    assert "retry_timeout" in str(error)


@pytest.mark.parametrize(
    ("url", "options", "error", "words"),
    [
        ("redis://127.0.0.1:1/0?ssl_ca_certs=/ca.pem", {}, ValueError, "rediss://"),
        ("redis://127.0.0.1:1/0", {"ssl_cert_reqs": "none"}, ValueError, "rediss://"),
        ("rediss://127.0.0.1:1/0?ssl_cert_reqs=sometimes", {}, ValueError, "ssl_cert_reqs"),
        ("rediss://127.0.0.1:1/0?ssl_check_hostname=maybe", {}, conveyor.InvalidURLError, "maybe"),
        ("rediss://127.0.0.1:1/0?retry_timeout=soon", {}, conveyor.InvalidURLError, "soon"),
        ("rediss://127.0.0.1:1/0?ssl_ca=/ca.pem", {}, conveyor.InvalidURLError, "ssl_ca_certs"),
        ("rediss://127.0.0.1:1/0?prefix=a&prefix=b", {}, conveyor.InvalidURLError, "twice"),
        ("rediss://127.0.0.1:1/0?prefix=a", {"prefix": "b"}, ValueError, "both"),
        ("rediss://:s3cret@127.0.0.1:1/0?nonsense", {}, conveyor.InvalidURLError, "query"),
        ("rediss://:s3cret@127.0.0.1:port/0", {}, conveyor.InvalidURLError, "port"),
        ("rediss://s3cret@127.0.0.1:port/0", {}, conveyor.InvalidURLError, "port"),
        ("rediss://127.0.0.1:1/0", {"ssl_check_hostname": "false"}, TypeError, "True or False"),
    ],
)
async def test_options_in_the_url_are_checked_before_connecting(
    url: str, options: dict[str, str], error: type[Exception], words: str
) -> None:
    # Port 1 has no server: each case must be refused before any connection is tried.
    with pytest.raises(error, match=words) as caught:
        await asyncio.wait_for(_open_and_close(url, "never-opened", **options), FAIL_WITHIN)
    assert "s3cret" not in str(caught.value)
