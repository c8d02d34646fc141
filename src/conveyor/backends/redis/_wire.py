"""The wire under the Redis store: RESP encoding, and a protocol that reads replies itself.

redis-py opens each connection (TLS, authentication, the handshake); ``_Wire`` then takes
its transport over, writes commands as they come and parses each reply as its bytes
arrive, completing the future of the oldest command still waiting, so that replies match
commands by order alone, with no task and no read loop per call.  ``_Subscription`` reads
a pub/sub connection the same way.  It relies on two things of redis-py that are not its
public API: the connection's transport (``conn._writer.transport``) and its error parser
(``BaseParser.parse_error``); the Redis tests run against the oldest redis-py that
pyproject.toml accepts and the newest release, so a change there shows up in CI.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions as rexc
from redis._parsers.base import BaseParser


def _pack(*args: Any) -> bytes:
    """Encode one command in RESP; leaner than the client's general encoder for scripts."""
    return b"*%d\r\n" % len(args) + _pack_args(args)


def _pack_args(args: Sequence[Any]) -> bytes:
    """Encode *args* as the RESP bulk strings of a command, without its header."""
    parts: list[bytes] = []
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


def _expire(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(rexc.TimeoutError(f"no reply within {timeout:g} s"))


def _demoted(error: rexc.RedisError) -> bool:
    """Whether *error* is the reply of a primary since demoted to a replica."""
    # UNBLOCKED: what a demoted primary tells the clients it unblocks (WAIT among them).
    return isinstance(error, rexc.ReadOnlyError) or str(error).startswith(("READONLY", "UNBLOCKED"))


def _moved_away(reply: Any) -> bool:
    """Whether a sharded subscription's *reply* says its slot is served elsewhere."""
    if isinstance(reply, list):
        return bool(reply) and reply[0] == b"sunsubscribe"
    return isinstance(reply, REDIRECTIONS)


class _IncompleteError(Exception):
    """The buffer ends before the reply does."""


_PARSE_ERROR: Callable[[str], rexc.ResponseError] = BaseParser.parse_error  # type: ignore[no-untyped-call,unused-ignore]

# A Redis Cluster's redirections, as the exceptions redis-py has for them (its parser
# makes them itself only from 5.1 on; before, its cluster client did).
_CLUSTER_ERRORS: dict[str, type[rexc.ResponseError]] = {
    "MOVED": rexc.MovedError,
    "ASK": rexc.AskError,
    "TRYAGAIN": rexc.TryAgainError,
    "CLUSTERDOWN": rexc.ClusterDownError,
}

REDIRECTIONS = tuple(_CLUSTER_ERRORS.values())
"""What a Cluster node answers instead of running a command whose slot is elsewhere or
not served right now: nothing ran, so the command may be sent again."""


def _error(text: str) -> rexc.ResponseError:
    """The exception redis-py raises for the error reply *text*."""
    code, _, rest = text.partition(" ")
    kind = _CLUSTER_ERRORS.get(code)
    if kind is None:
        return _PARSE_ERROR(text)
    try:
        error = kind(rest)
    except ValueError:  # not "slot host:port" after MOVED or ASK
        return rexc.ResponseError(text)
    error.args = (rest,)  # TryAgainError of redis-py 5.0 keeps no message
    return error


def _parse(buf: bytearray, pos: int) -> tuple[Any, int]:
    """Parse the RESP2/RESP3 reply at *pos* of *buf*; return it and where the next starts.

    Replies come as redis-py's parser gives them to this module: bulk and simple strings
    as bytes, integers as int, arrays (and sets) as lists, maps as dicts, nil as None, an
    error as the exception redis-py would raise for it (returned, not raised).

    Raises:
        _IncompleteError: *buf* holds only part of the reply.
    """
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _IncompleteError
    kind = buf[pos]
    if kind == 36 or kind == 61:  # "$" bulk string, "=" verbatim string
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        stop = end + 2 + n
        if len(buf) < stop + 2:
            raise _IncompleteError
        data = bytes(buf[end + 2 : stop])
        return (data if kind == 36 else data[4:]), stop + 2
    if kind == 42 or kind == 126 or kind == 62:  # "*" array, "~" set, ">" push
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        items = []
        at = end + 2
        for _ in range(n):
            item, at = _parse(buf, at)
            items.append(item)
        return items, at
    if kind == 58 or kind == 40:  # ":" integer, "(" big number
        return int(buf[pos + 1 : end]), end + 2
    if kind == 43:  # "+" simple string
        return bytes(buf[pos + 1 : end]), end + 2
    if kind == 45 or kind == 33:  # "-" simple error, "!" bulk error
        if kind == 33:
            n = int(buf[pos + 1 : end])
            if len(buf) < end + 4 + n:
                raise _IncompleteError
            text, after = bytes(buf[end + 2 : end + 2 + n]), end + 4 + n
        else:
            text, after = bytes(buf[pos + 1 : end]), end + 2
        return _error(text.decode("utf-8", "replace")), after
    if kind == 95:  # "_" null
        return None, end + 2
    if kind == 44:  # "," double
        return float(buf[pos + 1 : end]), end + 2
    if kind == 35:  # "#" boolean
        return buf[pos + 1] == 116, end + 2  # "t"
    if kind == 37 or kind == 124:  # "%" map, "|" attribute (skipped: the reply follows)
        n = int(buf[pos + 1 : end])
        mapping = {}
        at = end + 2
        for _ in range(n):
            key, at = _parse(buf, at)
            value, at = _parse(buf, at)
            mapping[key if not isinstance(key, list) else tuple(key)] = value
        if kind == 124:
            return _parse(buf, at)
        return mapping, at
    raise rexc.InvalidResponse(f"Protocol error, got {chr(kind)!r} as reply type byte")


class _Wire(asyncio.Protocol):
    """One connection of the store's own, read by this protocol rather than redis-py's.

    redis-py makes the connection (TLS, authentication, the handshake); then this
    protocol takes its transport over: commands are written to the transport as they
    come, and each reply, parsed as its bytes arrive, completes the future of the oldest
    command still waiting, so that replies are matched to commands by order alone, with
    no task and no read loop per call.  A reply whose future gave up (a timeout, a
    cancelled caller) is still read and dropped, but the store closes such a connection
    anyway (see ``RedisConnection.eval``).
    """

    def __init__(self, conn: Any, demoted_is_lost: bool = False) -> None:
        self.conn = conn
        self._demoted_is_lost = demoted_is_lost
        self.transport: asyncio.Transport = conn._writer.transport
        self._buffer = bytearray()
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._lost: BaseException | None = None
        self._retired = False
        self.transport.set_protocol(self)

    @property
    def usable(self) -> bool:
        """Whether commands may still be written to it."""
        return self._lost is None and not self._retired and not self.transport.is_closing()

    def retire(self) -> None:
        """Write nothing more on it; close it once the replies still due are read.

        For a connection to a node that no longer serves the queue's slot (``MOVED``):
        the commands sent behind the one redirected get their own replies (redirected
        too, never run), and none is cut off, which would leave its outcome in doubt.
        """
        self._retired = True
        if not self._waiting:
            self.abort("the slot moved to another node")

    def request(self, command: bytes) -> asyncio.Future[Any]:
        """Write *command* and return the future of its reply (an exception for an error)."""
        if not self.usable:
            raise rexc.ConnectionError(f"Connection closed: {self._lost or 'closing'}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self.transport.write(command)
        return future

    async def reply(self, command: bytes, timeout: float) -> Any:
        """Write *command*, wait at most *timeout* seconds for its reply and return it.

        Raises:
            redis.exceptions.RedisError: The reply is an error (a ResponseError, or an
                AuthenticationError for a missing or wrong password).
            redis.exceptions.TimeoutError: No reply in time.
            redis.exceptions.ConnectionError: The connection was lost.
        """
        future = self.request(command)
        timer = asyncio.get_running_loop().call_later(timeout, _expire, future, timeout)
        try:
            reply = await future
        finally:
            timer.cancel()
        # An error reply is the exception redis-py's parser makes of it: a ResponseError,
        # or (by redis-py version) an AuthenticationError for NOAUTH and the like.
        if isinstance(reply, rexc.RedisError):
            if isinstance(reply, rexc.MovedError):
                self.retire()  # a Cluster's slot moved: the next connection goes there
            if self._demoted_is_lost and _demoted(reply):
                # Behind Sentinel: the primary became a replica in a failover.  Lost, like
                # a dropped connection, so that the next one asks the sentinels again;
                # nothing was written (a replica refuses every write).
                lost = rexc.ConnectionError(f"the primary was demoted to a replica: {reply}")
                self._fail(lost)
                self.transport.abort()
                raise lost from reply
            raise reply
        return reply

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        pos = 0
        waiting = self._waiting
        try:
            while pos < len(buffer):
                try:
                    reply, pos_after = _parse(buffer, pos)
                except _IncompleteError:
                    break
                is_push = buffer[pos] == 62
                pos = pos_after
                if is_push or not waiting:
                    continue  # not a reply to a command of ours (e.g. client tracking)
                future = waiting.popleft()
                if not future.done():
                    future.set_result(reply)
                if self._retired and not waiting:
                    self.abort("the slot moved to another node")
                    return
        except Exception as exc:  # unreadable: nothing after it can be trusted
            self._fail(rexc.ConnectionError(f"unreadable reply from Redis: {exc!r}"))
            self.transport.abort()
            return
        if pos:
            del buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(
            rexc.ConnectionError(f"Connection closed by server: {exc}")
            if exc
            else rexc.ConnectionError("Connection closed by server.")
        )

    def _fail(self, exc: BaseException) -> None:
        self._lost = exc
        waiting, self._waiting = self._waiting, collections.deque()
        for future in waiting:
            if not future.done():
                future.set_exception(exc)

    def abort(self, why: str) -> None:
        """Close the connection at once, from a callback; every reply still due fails."""
        self._fail(rexc.ConnectionError(why))
        self.transport.abort()

    async def disconnect(self) -> None:
        """Close the connection; every reply still due fails."""
        self._fail(rexc.ConnectionError("Connection closed by conveyor."))
        self.transport.abort()
        # redis-py forgets the connection; its wait for the close would never end, as
        # its protocol no longer hears of it.
        with contextlib.suppress(Exception):
            await self.conn.disconnect(nowait=True)


class _Subscription(_Wire):
    """A connection that subscribed to channels: every message goes to *heard* at once.

    Read like ``_Wire``, but what arrives is handed to *heard* from the protocol's own
    callback (``[b"message", channel, data]``, ``[b"subscribe", channel, count]``, or an
    error reply), with no task in between: a message wakes its waiters a loop turn after
    its bytes arrive.  ``lost`` completes when the connection ends.
    """

    def __init__(
        self,
        conn: Any,
        heard: Callable[[Any], None],
        redirected: Callable[[rexc.ResponseError], None] | None = None,
    ) -> None:
        self._heard = heard
        self._redirected = redirected
        self.lost: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        super().__init__(conn)

    def subscribe(self, *channels: str) -> None:
        """Ask for the messages of *channels*; the confirmations come to *heard*.

        In a Redis Cluster (*redirected* given), the subscription is sharded
        (``SSUBSCRIBE``): its messages are those published with ``SPUBLISH`` on the
        primary of the channels' slot, which this connection must reach.  A redirection
        (the slot is elsewhere) goes to *redirected*, and ``sunsubscribe`` (the slot
        moved away) ends the subscription, both as a lost connection: the listener
        subscribes again, where the slot is then.
        """
        if not self.usable:
            raise rexc.ConnectionError(f"Connection closed: {self._lost or 'closing'}")
        command = "SSUBSCRIBE" if self._redirected is not None else "SUBSCRIBE"
        self.transport.write(_pack(command, *channels))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        pos = 0
        try:
            while pos < len(buffer):
                try:
                    reply, pos = _parse(buffer, pos)
                except _IncompleteError:
                    break
                if self._redirected is not None and _moved_away(reply):
                    if isinstance(reply, rexc.ResponseError):
                        self._redirected(reply)
                    self.abort(f"the subscription's slot is elsewhere now: {reply!r}")
                    return
                self._heard(reply)
        except Exception as exc:
            self._fail(rexc.ConnectionError(f"unreadable message from Redis: {exc!r}"))
            self.transport.abort()
            return
        if pos:
            del buffer[:pos]

    def _fail(self, exc: BaseException) -> None:
        super()._fail(exc)
        if not self.lost.done():
            self.lost.set_result(exc)
