"""Which queue, and which incarnation of it, a Redis store works in; what refusals mean.

The identity holds the queue's epoch (the random incarnation written with its keys, which
every receipt names), moves to a new one when the keys vanish, checks the key layout, the
server's eviction policy and the user's permissions, and turns a Redis error reply into
the exception it means for this queue.  The store's other parts ask it for the current
epoch, for the lease a receipt names, and for the error that reports a reset.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence

import redis.exceptions as rexc

from ..._exceptions import (
    BackendError,
    ForeignReceiptError,
    IncompatibleStoreError,
    StoreResetError,
)
from .._base import StoreCounts, last_seen
from ._connection import RedisConnection
from ._replies import denied_command
from ._scripts import _CHECK_FORMAT

_log = logging.getLogger("conveyor")


FORMAT = 3


"""Version of the key layout (``_store.py``'s docstring); one of a newer layout is refused."""


class QueueIdentity:
    """The queue's name, its current incarnation, and the checks that guard them.

    Args:
        link: The connection layer, for the checks' commands.
        keys: The queue's keys by role (``queue_keys()``).
        name: The queue's name, for messages.
        where: ``host:port``, for messages.
        user: The ACL user, for messages about permissions (``None``: the default one).
    """

    def __init__(
        self,
        link: RedisConnection,
        keys: Mapping[str, str],
        *,
        name: str,
        where: str,
        user: str | None,
    ) -> None:
        self._link = link
        self._name = name
        self._where = where
        self._user = user
        self._format_keys = [keys["meta"], keys["leased"], keys["probe"]]
        self._channel = keys["changed"]
        self._pattern = keys["meta"][: -len("meta")] + "*"
        self._format_script = self._link.script(_CHECK_FORMAT)
        # The queue's incarnation, a random epoch written with its keys; receipts name it.
        self._epoch = ""
        self._past_epochs: set[str] = set()
        self._last_counts: StoreCounts | None = None

    @property
    def epoch(self) -> str:
        """The incarnation this store works in ("" until ``check_format()`` ran)."""
        return self._epoch

    def saw(self, counts: StoreCounts) -> None:
        """Remember *counts* as the last read, for the warning of a reset."""
        self._last_counts = counts

    def lease_of(self, receipt: str) -> list[str]:
        """Return the [item id, delivery number] a receipt names in this incarnation.

        A receipt is "<epoch>:<item id>:<delivery number>".  One of an earlier incarnation
        of this queue names nothing ([]): the same numbers may belong to other items now.

        Raises:
            ForeignReceiptError: The receipt is not one of this queue's.
        """
        epoch, _, lease = receipt.partition(":")
        if epoch == self._epoch:
            item_id, _, delivery = lease.partition(":")
            return [item_id, delivery]
        if epoch in self._past_epochs:
            return []
        raise ForeignReceiptError(
            f"this receipt is not one of queue {self._name!r} in Redis at {self._where}:"
            " it comes from another queue (or from this one before its keys were wiped)"
            " and acknowledges nothing here; nothing was changed"
        )

    async def reply_error(self, exc: rexc.ResponseError) -> BaseException:
        """Return the exception a Redis error reply means for this queue."""
        if str(exc).startswith("EPOCH"):
            return await self.reset(str(exc)[6:].strip())
        denied = denied_command(exc)
        if denied:
            return self.permission_error([denied], f" ({exc})")
        if str(exc).startswith("WRONGTYPE"):
            return IncompatibleStoreError(
                f"Redis at {self._where}: the keys of queue {self._name!r} hold data"
                " that is not a conveyor queue"
            )
        return BackendError(f"Redis at {self._where} failed: {exc}")

    async def check_format(self) -> list[str]:
        """Check that the queue's keys are a conveyor queue of a layout this code reads.

        Returns:
            The commands the queue's scripts run that the user may not run (the layout
            was then not checked); empty when all are allowed.

        Raises:
            IncompatibleStoreError: They are not, or were written by a newer conveyor.
            BackendError: The server is older than Redis 6.2, or the user may not run
                scripts at all.
            BackendUnavailableError: Redis is unreachable.
        """
        keys = self._format_keys
        args = [FORMAT, self._channel, secrets.token_hex(8)]
        stored, epoch, *denied = await self._link.call(
            lambda: self._link.eval(self._format_script, keys, args)
        )
        if stored == b"old server":
            raise BackendError(
                f"Redis at {self._where} lacks the ZMSCORE command: conveyor needs Redis 6.2"
                " or later (or a server that has not renamed or disabled ZMSCORE)"
            )
        if denied:
            return [command.decode() for command in denied]
        try:
            version = int(stored)
        except (TypeError, ValueError):
            version = -1
        if version != FORMAT:
            shown = stored.decode("utf-8", "replace") if isinstance(stored, bytes) else stored
            raise IncompatibleStoreError(
                f"Redis at {self._where}: queue {self._name!r} has layout {shown!r}; this"
                f" conveyor reads layout {FORMAT} (upgrade conveyor, or use another name)"
            )
        self._adopt(epoch.decode())
        return []

    def _adopt(self, epoch: str) -> None:
        """Make *epoch* the incarnation this store works in."""
        if epoch == self._epoch:
            return
        if self._epoch:
            self._past_epochs.add(self._epoch)
        self._epoch = epoch

    async def reset(self, found: str) -> StoreResetError:
        """Move to the queue's new incarnation, and return the error that reports the loss.

        Args:
            found: The epoch in meta when a script refused to run ("" if there was none).
        """
        before = self._epoch
        if not found:
            # The keys vanished: make the new incarnation, or take the one that another
            # client made meanwhile (the script sets the epoch only if there is none).
            missing = await self.check_format()
            if missing:
                raise self.permission_error(missing)
        else:
            self._adopt(found)
        seen = last_seen(self._last_counts)
        text = (
            f"Redis at {self._where}: the keys of queue {self._name!r} vanished while it was"
            " open (the database was flushed, the server restarted without persistence, or"
            f" the keys were deleted or evicted): the items it held are lost ({seen}), and"
            " receipts of earlier deliveries acknowledge nothing; this call changed nothing,"
            " and the queue goes on, empty"
        )
        if self._epoch != before:
            _log.warning("conveyor: %s", text)
        return StoreResetError(text)

    async def check_version(self, minimum: tuple[int, int], needed_for: str) -> None:
        """Refuse a server older than *minimum*, naming what needs it.

        The version is read from ``INFO server``; a server that does not let this user
        run ``INFO`` is let through (the first command that needs the newer server then
        fails with the server's own words).

        Raises:
            BackendError: The server is older than *minimum*.
        """

        async def read() -> bytes | None:
            try:
                info: bytes = await self._link.command("INFO", "server")
            except rexc.ResponseError:
                return None
            return info

        info = await self._link.call(read)
        for line in (info or b"").decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key != "redis_version":
                continue
            found = tuple(int(part) for part in value.strip().split(".")[:2] if part.isdigit())
            if found < minimum:
                raise BackendError(
                    f"Redis at {self._where} is version {value.strip()}: {needed_for} needs"
                    f" Redis {minimum[0]}.{minimum[1]} or newer"
                )

    async def check_eviction(self) -> None:
        """Refuse a server that may evict any key under memory pressure (``allkeys-*``).

        The policy is read with ``CONFIG GET``, or from ``INFO memory`` when that is
        disabled, renamed or not allowed to this user.  When neither can be read, the
        queue opens and a warning is logged: refusing would lock out every least-privilege
        user, and the policy is then the operator's to keep at ``noeviction``.

        Raises:
            BackendError: The server's ``maxmemory-policy`` is an ``allkeys-*`` one.
            BackendUnavailableError: Redis is unreachable.
        """
        policy = await self._link.call(self._read_eviction_policy)
        if policy is None:
            _log.warning(
                "conveyor: cannot read the maxmemory-policy of Redis at %s (CONFIG GET and"
                " INFO are not allowed): make sure it is noeviction, or evicted keys lose"
                " items of queue %r without a trace",
                self._where,
                self._name,
            )
        elif policy.startswith("allkeys-"):
            raise BackendError(
                f"Redis at {self._where} has maxmemory-policy {policy}: under memory"
                " pressure it deletes any key, the items of queues included, which are then"
                " lost without a trace; set maxmemory-policy noeviction (CONFIG SET"
                " maxmemory-policy noeviction, and in redis.conf), or use a Redis of its own"
                " for queues"
            )

    async def _read_eviction_policy(self) -> str | None:
        try:
            reply = await self._link.command("CONFIG", "GET", "maxmemory-policy")
            if isinstance(reply, list) and len(reply) == 2:
                return bytes(reply[1]).decode()
            if isinstance(reply, dict):  # RESP3
                for value in reply.values():
                    return bytes(value).decode()
        except rexc.ResponseError:  # disabled, renamed or forbidden: try INFO
            pass
        try:
            info = await self._link.command("INFO", "memory")
        except rexc.ResponseError:
            return None
        for line in bytes(info).decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key == "maxmemory_policy":
                return value.strip()
        return None

    def permission_error(self, missing: Sequence[str], detail: str = "") -> BackendError:
        """Return the error that names the permissions the user lacks for this queue."""
        user = self._user or "default"
        grants = " ".join(f"+{command}" for command in missing)
        pubsub = "+spublish and +ssubscribe" if self._link.sharded else "+publish and +subscribe"
        return BackendError(
            f"Redis at {self._where}: user {user!r} may not run {', '.join(missing)}, which"
            f" queue {self._name!r} needs{detail} (grant it: ACL SETUSER {user} {grants};"
            " a queue needs +evalsha +script|load, the commands its scripts run,"
            f" {pubsub}, on keys ~{self._pattern} and channels &{self._pattern})"
        )
