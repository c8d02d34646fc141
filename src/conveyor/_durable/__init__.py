"""The durable queue: the whole asyncio queue surface, built once on top of any backend Store.

A ``DurableQueue`` turns a ``Store`` (an SQLite file, a
Redis database) into a queue with the methods of ``asyncio.Queue``, shared by every
process that opens the same store, with at-least-once delivery.

How the pieces fit:

* **Puts share commits.**  Every ``put()`` appends its encoded item to a local list and
  waits; one writer task at a time hands everything waiting to ``Store.put`` in a single
  transaction (group commit).  ``put()`` returns once its item is committed.  A store
  that applies concurrent puts in order (``Store.put_depth`` above 1: Redis) may have
  several commits under way: puts that pile up while one is awaited go as the next.
* **Gets claim in batches, for the getters that wait.**  One claimer task leases, in one
  ``Store.claim``, as many items as this process's getters want (at least as many as were
  taken since the previous claim, plus one when more are known to wait) and wakes those
  getters; each takes its item from a small local buffer when it runs.  An item claimed
  for nobody (its getter was cancelled or timed out, or it is the extra one) goes to the
  next getter or ``get_nowait()``, or back to the store after at most
  ``min(0.5 s, lease_timeout / 4)`` and on ``aclose()``: nothing is lost, duplicated or
  kept from other processes for long.  At most ``Store.max_claim`` items (64 unless the
  backend says) are claimed at once.
* **Acknowledgements are batched too.**  ``task_done()`` is synchronous: it picks the
  delivery to acknowledge at once and schedules the write (several share one, or ride
  along with the next claim); ``join()``, ``flush()`` and ``aclose()`` wait for them.
* **The nowait forms do no I/O.**  ``put_nowait()`` decides on the last known size and
  hands the item to the background writer (durable after ``flush()``, which raises if the
  write failed); ``get_nowait()`` serves items already in this process (claimed, put with
  ``put_nowait()`` and not yet committed, or committed by this process and, as far as it
  knows, still the oldest waiting: handed out at once and leased in the background) and
  otherwise raises ``QueueEmpty`` after starting a background claim (even when the view
  says empty: another process may have put since).
* **Waiting never polls hard.**  Blocked getters, putters and ``join()`` wake on this
  process's own changes at once and on other processes' through ``Store.wait_changed``,
  with a slow safety re-check (at most every second) for the rare missed notification and
  for leases that expire in a crashed process.

The synchronous methods (``qsize()``, ``empty()``, ``full()``, ``statistics()``) cannot do
I/O, so they report a local view: the shared counters as last read, updated after each of
this process's own operations.  With no other process writing, the view is exact after
every awaited operation; ``DurableQueue.refresh()`` and ``DurableQueue.aqsize()`` read
the shared state exactly.

The parts, one module each, share one ``QueueState`` (``_state``: the settings, the
local view, change notification, shutdown state, the items this process committed):

* ``_writer``: the put list, the writer task and its group commits, put deadlines,
  ``flush()`` and the errors of ``put_nowait()`` writes; ``_retract``: a put cancelled
  while its commit was in the store's hands.
* ``_claimer``: the getters waiting, the claimer task, the local buffer, hand-off of
  uncommitted items and release of claims nobody took.
* ``_acknowledger``: what this process holds, ``task_done()`` batching and the leases of
  the items ``get_nowait()`` took from its own commits.
* ``_view``: reading the shared counters into the local view (``refresh()``).
* ``_lifecycle``: shutdown, resume and close.
* ``_receipts`` and ``_shared_state``: the durable queue's own public methods (receipts
  and dead letters; reading and changing the shared state on demand).
* ``_face``: ``DurableQueue``, which composes them.
"""

from __future__ import annotations

from ._face import DurableQueue
from ._receipts import DeadItem, Receipt

__all__ = ["DeadItem", "DurableQueue", "Receipt"]
