"""``ThreadQueue``: one queue shared by threads and any number of event loops.

A ``ThreadQueue`` is one shared state object (a deque of items, counters, and the
queues of blocked waiters) behind one ``threading.Lock``, seen through two thin
faces: ``ThreadQueue.sync_q`` with the blocking API of ``queue.Queue``, and
``ThreadQueue.async_q`` with conveyor's asyncio surface.  Every face may be used from
any thread and any event loop at the same time; the queue belongs to no loop.

The lock only ever guards a short critical section, so taking it on an event loop's
thread never stalls the loop.  Nobody ever waits *on* it: a blocked thread waits on a
lock of its own (which the waker releases), and a blocked task on a future of its own
loop (which the waker resolves directly when it runs on that loop, and through
``loop.call_soon_threadsafe`` otherwise).  No one polls.

Cancellation safety follows asyncio's design: an item is never handed to a waiter.  It
goes into the deque and one waiter is *woken*; the waiter takes an item when it runs.
A waker removes the waiter from its waiting list, so a waiter that leaves (cancelled,
timed out, interrupted) can tell whether it had been woken: if it is no longer listed,
it was, and it passes the wake-up on to the next waiter, or the item (or free slot) it
was woken for could wait with nobody coming for it.

The kinds of queue (FIFO, LIFO, priority) differ only in the container of their items:
the fast paths put with ``append()`` and take with ``popleft()`` (where asyncio's queue
calls ``_put``/``_get``), a deque does both in FIFO order, and the LIFO and priority
containers in theirs.

Speed: the put/get fast paths are written out inline on each face (no helper calls),
take the lock with ``acquire()``/``try``/``finally`` (measured ~100 ns cheaper than
``with`` on 3.13), and fold "shut down" into the room check (``limit`` drops to -1).

The parts: ``_state.py`` (the shared state, and how waiters wait and wake), ``_faces.py``
(the two faces), ``_queue.py`` (``ThreadQueue`` and its LIFO and priority kinds).
"""

from __future__ import annotations

from ._faces import AsyncFace, SyncFace
from ._queue import LifoThreadQueue, PriorityThreadQueue, ThreadQueue

__all__ = ["AsyncFace", "LifoThreadQueue", "PriorityThreadQueue", "SyncFace", "ThreadQueue"]
