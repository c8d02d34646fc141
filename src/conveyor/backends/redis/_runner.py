"""Running a Redis queue's scripts: what every change sends along, and who hears of it.

Every change script starts its arguments alike: ``<kind>@<epoch>`` (the kind of batch
whose reply the script records in this client's ops key, "" for none, and the incarnation
it expects), the batch's token, the ops key's TTL and the queue's channel; it replies with
a last flag saying whether it published a change.  The runner adds that head, drops that
flag (waking this process's waiters when set) and runs the script through the connection
layer's retries with the words that say what may have happened when no reply came.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from ._connection import RedisConnection, _Lane, _Script
from ._identity import QueueIdentity
from ._wakeups import ChangeListener


class ScriptRunner:
    """Run the queue's scripts over the connection layer, changes with their head.

    Args:
        link: The connection layer.
        identity: Whose epoch a change expects.
        listener: Told of every change this store published.
        channel: The queue's channel.
        retry_timeout: The connection layer's budget, which the ops key's TTL outlives.
    """

    def __init__(
        self,
        link: RedisConnection,
        identity: QueueIdentity,
        listener: ChangeListener,
        *,
        channel: str,
        retry_timeout: float,
    ) -> None:
        self._link = link
        self._identity = identity
        self._listener = listener
        self.after_token = (str(int(retry_timeout) + 120), channel)
        """The head's arguments after the token: the ops key's TTL and the channel."""
        # One count a kind: a field's tokens follow one another, as chaining needs (see
        # lua/head.lua), however the batches of other kinds interleave.
        self._tokens: dict[str, Iterator[int]] = {}
        self._used_ops = False  # whether a batch may have written the ops key

    @property
    def used_ops(self) -> bool:
        """Whether a batch may have written this client's ops key, so it is worth deleting."""
        return self._used_ops

    def script(self, source: str) -> _Script:
        """Return the script of *source* as this server runs it (``RedisConnection.script``)."""
        return self._link.script(source)

    def lane(self) -> _Lane:
        """Return a new lane of the connection layer (see ``_Lane``)."""
        return self._link.lane()

    def token(self, kind: str) -> str:
        """Return a new token for a batch of *kind*: unique within its field of the ops key.

        Tokens of a kind follow one another (1, 2, 3...), all a replay needs.
        """
        self._used_ops = True
        counter = self._tokens.get(kind)
        if counter is None:
            counter = self._tokens[kind] = itertools.count(1)
        return str(next(counter))

    def head(self, kind: str = "", epoch: str = "") -> list[str]:
        """Return the arguments a change starts with: a batch of *kind* draws a token.

        Args:
            kind: The batch kind its reply is recorded under; "" records none.
            epoch: The incarnation the change expects; "" for the current one.
        """
        token = self.token(kind) if kind else ""
        return [f"{kind}@{epoch or self._identity.epoch}", token, *self.after_token]

    def read(self, script: _Script, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """Run a script that changes nothing, with retries, and return its reply."""
        return self._link.call(lambda: self._link.eval(script, keys, args))

    def change(
        self, script: _Script, keys: Sequence[str], args: Sequence[Any], doubt: str
    ) -> Awaitable[Any]:
        """Run a changing script, with retries, and return its reply without the flag.

        Args:
            doubt: What may have happened when it was sent and no reply came.
        """
        return self._link.call(lambda: self._change(script, keys, args), doubt)

    def send(
        self, script: _Script, keys: Sequence[str], command: bytes, doubt: str
    ) -> Awaitable[Any]:
        """Run a script whose ``EVALSHA`` the caller encoded, with retries; return its reply.

        The reply comes whole, published flag included: the caller reads it.
        """
        args: list[Any] = []  # in command already; eval packs them only when it is empty
        return self._link.call(lambda: self._link.eval(script, keys, args, command), doubt)

    async def send_in_lane(
        self, lane: _Lane, script: _Script, encode: Callable[[bool], bytes], doubt: str
    ) -> Any:
        """Run a script whose ``EVALSHA`` *encode* makes, in *lane*, with retries.

        The batch joins the lane before anything is awaited, so batches go in the order
        their calls were made; several may be in flight at once (see ``_Lane``).  The
        reply comes whole, published flag included: the caller reads it.
        """
        entry = lane.join(encode)
        try:
            return await self._link.call(lambda: self._link.lane_eval(lane, entry, script), doubt)
        finally:
            lane.leave(entry)

    async def _change(self, script: _Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        reply = await self._link.eval(script, keys, args)
        if reply.pop():
            self._listener.wake_soon()
        return reply


class OperationContext(NamedTuple):
    """What each of the store's operation parts works with, in the order parts unpack it."""

    runner: ScriptRunner
    """Runs the scripts."""
    identity: QueueIdentity
    """The epoch a change expects, and the lease a receipt names."""
    listener: ChangeListener
    """Told of each look at the queue, of changes published and of deadlines."""
    keys: Mapping[str, str]
    """The queue's keys by role, this client's ``ops`` key included."""
