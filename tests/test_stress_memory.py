"""Nothing lost, nothing duplicated: randomized producers and consumers under fire.

Each example runs producers and consumers on one queue while getters and putters are
cancelled at random moments, time out, use the non-blocking and batch methods, and the
queue may be shut down mid-stream (gracefully or immediately) or the consumers
abandoned.  At the end every item is accounted for exactly once:

* every item delivered was put, and none was delivered twice;
* every item put was delivered, or left in the queue, or (only with
  ``shutdown(immediate=True)``) discarded by the shutdown, which may discard no more
  than what was in the queue at that moment plus one item per consumer in flight;
* ``statistics()`` agrees: ``total_put`` and ``total_got`` count those same items;
* FIFO queues deliver each producer's items in the order they were put, counting the
  moment each ``get`` *returns*;
* at no moment have more puts returned than gets plus ``maxsize``;
* ``join()`` returns once every delivered item is marked done.

:func:`run_stress` takes any ``make(maxsize, kind)`` factory, so the same scenario can be
pointed at other backends.  ``CONVEYOR_STRESS=long`` raises the example counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import conveyor
from conveyor import QueueShutDown
from conveyor._queue import PurePythonQueue

Make = Callable[[float, str], Awaitable[Any]]

LONG = os.environ.get("CONVEYOR_STRESS") == "long"
EXAMPLES = 3000 if LONG else 300
SCENARIO_LIMIT = 60.0 if LONG else 20.0
"""Seconds one example may take before it is declared stuck (a lost wake-up)."""

SPREAD = 1_000_000
"""Items are ``producer * SPREAD + sequence`` so that any kind of queue can order them."""


FIFO_CLASSES = [
    pytest.param(conveyor.Queue, id="memory"),
    pytest.param(PurePythonQueue, id="memory-py"),
]
"""conveyor.Queue (with its C accelerator where built) and the pure-Python queue."""


def memory_factory(fifo: type[Any]) -> Callable[[float, str], Awaitable[Any]]:
    """Return ``await make(maxsize, kind)`` for in-memory queues, *fifo* for FIFO ones."""

    async def make(maxsize: float, kind: str) -> Any:
        cls: dict[str, type[Any]] = {
            "fifo": fifo,
            "lifo": conveyor.LifoQueue,
            "priority": conveyor.PriorityQueue,
        }
        return cls[kind](maxsize)

    return make


@dataclasses.dataclass(frozen=True)
class Plan:
    """One randomized run.

    Attributes:
        kind: ``"fifo"``, ``"lifo"`` or ``"priority"``.
        maxsize: The queue's ``maxsize``.
        producers: Number of producer tasks.
        consumers: Number of consumer tasks.
        items: Items each producer tries to put.
        end: ``"join"`` (all consumed, then ``join()``), ``"shutdown"`` / ``"immediate"``
            (shut down mid-stream) or ``"abandon"`` (consumers cancelled mid-stream).
        stop_after: Deliveries after which the mid-stream end happens.
        cancel_rate: Chance that a get or put is cancelled a few loop turns after it starts.
        timeout_rate: Chance that a get or put is given a short timeout.
        nowait_rate: Chance that a get or put is the ``_nowait`` variant.
        batch_rate: Chance that a get is ``get_many`` or a put is ``put_many``.
        seed: Seeds every other random choice.
    """

    kind: str
    maxsize: float
    producers: int
    consumers: int
    items: int
    end: str
    stop_after: int
    cancel_rate: float
    timeout_rate: float
    nowait_rate: float
    batch_rate: float
    seed: int


@st.composite
def plans(draw: st.DrawFn, kinds: tuple[str, ...] = ("fifo", "lifo", "priority")) -> Plan:
    """Draw a :class:`Plan`."""
    producers = draw(st.integers(1, 4))
    items = draw(st.integers(0, 40))
    return Plan(
        kind=draw(st.sampled_from(kinds)),
        maxsize=draw(st.sampled_from([0, 1, 2, 3, 10, 1.5])),
        producers=producers,
        consumers=draw(st.integers(1, 4)),
        items=items,
        end=draw(st.sampled_from(["join", "shutdown", "immediate", "abandon"])),
        stop_after=draw(st.integers(0, producers * items)),
        cancel_rate=draw(st.sampled_from([0.0, 0.1, 0.3])),
        timeout_rate=draw(st.sampled_from([0.0, 0.1, 0.3])),
        nowait_rate=draw(st.sampled_from([0.0, 0.2])),
        batch_rate=draw(st.sampled_from([0.0, 0.2, 0.5])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@dataclasses.dataclass
class Ledger:
    """What the run observed, in the order it happened."""

    confirmed: list[int] = dataclasses.field(default_factory=list)
    """Items whose put returned (they are in the queue or beyond)."""
    uncertain: list[list[int]] = dataclasses.field(default_factory=list)
    """``put_many`` batches that raised: some prefix of each may have been put."""
    delivered: list[int] = dataclasses.field(default_factory=list)
    """Items in the order their get returned."""
    left: list[int] = dataclasses.field(default_factory=list)
    """Items drained from the queue after the consumers stopped."""
    discard_bound: int | None = None
    """Most items an immediate shutdown may discard, or ``None`` without one."""
    puts_returned: int = 0
    gets_returned: int = 0
    overfull: list[str] = dataclasses.field(default_factory=list)


def _retrieve(task: asyncio.Task[Any]) -> None:
    # A caller cancelled mid-way never reads its sub-task's outcome (an item already
    # recorded, or an error that no longer matters); read it so asyncio does not log it.
    if not task.cancelled():
        task.exception()


async def _after_turns(task: asyncio.Task[Any], turns: int) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()


async def _finish(task: asyncio.Task[Any], rng: random.Random, cancel_rate: float) -> None:
    # Run *task* to its end, cancelling it a few loop turns in with some probability.
    # The caller's own cancellation is passed on to the task, never left behind.
    task.add_done_callback(_retrieve)
    canceller = None
    if rng.random() < cancel_rate:
        canceller = asyncio.create_task(_after_turns(task, rng.randrange(4)))
    try:
        await asyncio.wait([task])
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait([task])
        raise
    finally:
        if canceller is not None:
            canceller.cancel()
            await asyncio.wait([canceller])


def _timeout(rng: random.Random, rate: float) -> float | None:
    if rng.random() < rate:
        return rng.choice([0, 0.0005, 0.002])
    return None


ALL_CHECKS = frozenset({"once", "order", "bound"})
"""``once``: nothing lost, duplicated or invented; ``order``: FIFO keeps each producer's
order; ``bound``: puts never outrun gets by more than ``maxsize``."""


async def run_stress(make: Make, plan: Plan, checks: frozenset[str] = ALL_CHECKS) -> Ledger:
    """Run *plan* against a queue from *make* and check that every item is accounted for.

    Args:
        make: ``await make(maxsize, kind)`` returns a new, empty queue with conveyor's
            surface (timeouts, ``get_many``/``put_many``, ``statistics()``).
        plan: The scenario.
        checks: Which of :data:`ALL_CHECKS` to assert.

    Returns:
        What happened, for further assertions.

    Raises:
        AssertionError: An item was lost, duplicated, invented or reordered, the queue
            held more than ``maxsize``, or the run got stuck.
    """
    rng = random.Random(plan.seed)
    q = await make(plan.maxsize, plan.kind)
    ledger = Ledger()
    limit = math.inf if plan.maxsize <= 0 else math.ceil(plan.maxsize)

    def note_put(count: int) -> None:
        ledger.puts_returned += count
        if ledger.puts_returned - ledger.gets_returned > limit:
            ledger.overfull.append(f"{ledger.puts_returned} puts vs {ledger.gets_returned} gets")

    def note_got(items: list[int]) -> None:
        ledger.delivered.extend(items)
        ledger.gets_returned += len(items)
        for _ in items:
            q.task_done()

    async def put_one(item: int, timeout: float | None, nowait: bool) -> None:
        if nowait:
            q.put_nowait(item)
        else:
            await q.put(item, timeout=timeout)
        ledger.confirmed.append(item)
        note_put(1)

    async def put_batch(batch: list[int], timeout: float | None) -> None:
        try:
            await q.put_many(batch, timeout=timeout)
        except BaseException:
            ledger.uncertain.append(batch)
            raise
        ledger.confirmed.extend(batch)
        note_put(len(batch))

    async def produce(index: int) -> None:
        prng = random.Random(rng.random())
        seq = 0
        while seq < plan.items:
            timeout = _timeout(prng, plan.timeout_rate)
            if prng.random() < plan.batch_rate:
                size = prng.randint(1, 4)
                batch = [index * SPREAD + s for s in range(seq, min(seq + size, plan.items))]
                task = asyncio.create_task(put_batch(batch, timeout))
                advance = len(batch)
            else:
                nowait = prng.random() < plan.nowait_rate
                task = asyncio.create_task(put_one(index * SPREAD + seq, timeout, nowait))
                advance = 1
            await _finish(task, prng, plan.cancel_rate)
            error = None if task.cancelled() else task.exception()
            if isinstance(error, QueueShutDown):
                return
            if error is not None and not isinstance(error, (TimeoutError, asyncio.QueueFull)):
                raise AssertionError("put failed unexpectedly") from error
            if task.cancelled() or error is not None:
                await asyncio.sleep(0)
                if advance == 1:
                    # A single item that was not put is tried again, keeping producer order.
                    continue
            seq += advance

    async def get_one(timeout: float | None, nowait: bool) -> None:
        item = q.get_nowait() if nowait else await q.get(timeout=timeout)
        note_got([item])

    async def get_batch(max_items: int, timeout: float | None) -> None:
        note_got(await q.get_many(max_items, timeout=timeout))

    async def consume() -> None:
        crng = random.Random(rng.random())
        while True:
            timeout = _timeout(crng, plan.timeout_rate)
            if crng.random() < plan.batch_rate:
                task = asyncio.create_task(get_batch(crng.randint(1, 5), timeout))
            else:
                task = asyncio.create_task(get_one(timeout, crng.random() < plan.nowait_rate))
            await _finish(task, crng, plan.cancel_rate)
            error = None if task.cancelled() else task.exception()
            if isinstance(error, QueueShutDown):
                return
            if error is not None and not isinstance(error, (TimeoutError, asyncio.QueueEmpty)):
                raise AssertionError("get failed unexpectedly") from error
            if task.cancelled() or error is not None:
                await asyncio.sleep(0)

    producers = [asyncio.create_task(produce(i)) for i in range(plan.producers)]
    consumers = [asyncio.create_task(consume()) for _ in range(plan.consumers)]
    everyone = producers + consumers

    async def producers_done() -> None:
        await asyncio.gather(*producers)

    async def until_delivered(count: int) -> None:
        # Polled: it ends on either of two conditions, one of them tasks finishing.
        while len(ledger.delivered) < count and not all(p.done() for p in producers):  # noqa: ASYNC110
            await asyncio.sleep(0)

    try:
        if plan.end == "join":
            await producers_done()
            await q.join()
            await _stop(consumers)
        elif plan.end in ("shutdown", "immediate"):
            await until_delivered(plan.stop_after)
            if plan.end == "immediate":
                ledger.discard_bound = q.qsize() + plan.consumers
            q.shutdown(immediate=plan.end == "immediate")
            await asyncio.gather(*producers, *consumers)
            await q.join()
        else:
            await until_delivered(plan.stop_after)
            await _stop(consumers)
            # Nobody consumes any more: take what is left, letting blocked producers finish.
            while not (q.empty() and all(p.done() for p in producers)):
                if q.empty():
                    await asyncio.sleep(0)
                    continue
                item = q.get_nowait()
                ledger.left.append(item)
                ledger.gets_returned += 1
                q.task_done()
            await producers_done()
            await q.join()
    finally:
        await _stop(everyone)

    _check(plan, q, ledger, checks)
    return ledger


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def _check(plan: Plan, q: Any, ledger: Ledger, checks: frozenset[str]) -> None:
    if "once" in checks:
        _check_once(q, ledger)
    if "order" in checks and plan.kind == "fifo":
        last: dict[int, int] = {}
        for item in ledger.delivered + ledger.left:
            producer, seq = divmod(item, SPREAD)
            assert seq > last.get(producer, -1), f"producer {producer}: {seq} came after {last}"
            last[producer] = seq
    if "bound" in checks:
        assert not ledger.overfull, f"more puts returned than gets + maxsize: {ledger.overfull[:3]}"


def _check_once(q: Any, ledger: Ledger) -> None:
    seen = ledger.delivered + ledger.left
    assert len(seen) == len(set(seen)), "an item was delivered twice"
    confirmed = set(ledger.confirmed)
    maybe = {item for batch in ledger.uncertain for item in batch}
    assert set(seen) <= confirmed | maybe, "an item was delivered that was never put"
    for batch in ledger.uncertain:
        present = [item in set(seen) for item in batch]
        if ledger.discard_bound is None:
            # What put_many put before it raised is a prefix of the batch.
            assert present == sorted(present, reverse=True), f"batch {batch} put out of order"
    missing = confirmed - set(seen)
    stats = q.statistics()
    discarded = stats.total_put - len(seen)
    if ledger.discard_bound is None:
        assert not missing, f"{len(missing)} items put and never delivered: {sorted(missing)[:5]}"
        assert discarded == 0, f"statistics count {discarded} items put that nobody got"
    else:
        assert len(missing) <= discarded <= ledger.discard_bound, (
            f"immediate shutdown discarded {discarded} items ({len(missing)} known), "
            f"at most {ledger.discard_bound} were in the queue or in flight"
        )
    assert stats.total_got == len(seen), (stats.total_got, len(seen))
    assert stats.unfinished_tasks == 0
    assert stats.current_size == 0


def _run(make: Make, plan: Plan, checks: frozenset[str] = ALL_CHECKS) -> Ledger:
    async def bounded() -> Ledger:
        try:
            return await asyncio.wait_for(run_stress(make, plan, checks), SCENARIO_LIMIT)
        except asyncio.TimeoutError:
            raise AssertionError(f"stuck for {SCENARIO_LIMIT}s (a lost wake-up?)") from None

    return asyncio.run(bounded())


STRESS_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=not LONG,
)


@STRESS_SETTINGS
@given(plan=plans())
@pytest.mark.parametrize("fifo", FIFO_CLASSES)
def test_every_item_delivered_exactly_once(fifo: type[Any], plan: Plan) -> None:
    _run(memory_factory(fifo), plan, frozenset({"once"}))


@STRESS_SETTINGS
@given(plan=plans(kinds=("fifo",)))
@pytest.mark.parametrize("fifo", FIFO_CLASSES)
def test_fifo_gets_return_each_producers_items_in_order(fifo: type[Any], plan: Plan) -> None:
    _run(memory_factory(fifo), plan, frozenset({"once", "order"}))


@STRESS_SETTINGS
@given(plan=plans())
@pytest.mark.parametrize("fifo", FIFO_CLASSES)
def test_puts_never_outrun_gets_by_more_than_maxsize(fifo: type[Any], plan: Plan) -> None:
    _run(memory_factory(fifo), plan, frozenset({"once", "bound"}))


@pytest.mark.parametrize("fifo", FIFO_CLASSES)
@pytest.mark.parametrize("end", ["join", "shutdown", "immediate", "abandon"])
@pytest.mark.parametrize("seed", range(3))
def test_heavy_traffic_loses_nothing(fifo: type[Any], end: str, seed: int) -> None:
    plan = Plan(
        kind="fifo",
        maxsize=4,
        producers=6,
        consumers=5,
        items=3000 if LONG else 300,
        end=end,
        stop_after=300,
        cancel_rate=0.2,
        timeout_rate=0.2,
        nowait_rate=0.1,
        batch_rate=0.3,
        seed=seed,
    )
    _run(memory_factory(fifo), plan, frozenset({"once"}))


# -- One task against a model --------------------------------------------------------------
#
# A random sequence of operations from one task (plus getter tasks it spawns) is applied
# to the queue and to a plain-Python model of asyncio's semantics; after every step the
# outcome, the sizes and every ``statistics()`` counter must match the model.  The same
# sequences, without conveyor's extras, are checked against asyncio.Queue itself, which
# keeps the model honest.

Op = tuple[Any, ...]

CORE_OPS = ("put_nowait", "put_bound", "get_nowait", "task_done", "getter", "settle")
"""``put_bound`` calls a ``put_nowait`` taken from the queue when it was made."""
EXTRA_OPS = ("put0", "get0", "get_many0", "put_many0")


@st.composite
def op_lists(draw: st.DrawFn, extras: bool, shutdown: bool) -> list[Op]:
    """Draw a list of operations for :func:`run_model`."""
    names = CORE_OPS + (EXTRA_OPS if extras else ()) + (("shutdown",) if shutdown else ())
    ops: list[Op] = []
    for index in range(draw(st.integers(0, 60))):
        name = draw(st.sampled_from(names))
        if name in ("put_nowait", "put_bound", "put0"):
            ops.append((name, draw(st.integers(0, 9)) * 100 + index))
        elif name == "get_many0":
            ops.append((name, draw(st.integers(1, 4))))
        elif name == "put_many0":
            ops.append((name, [index * 100 + i for i in range(draw(st.integers(0, 3)))]))
        elif name == "shutdown":
            ops.append((name, draw(st.booleans())))
        else:
            ops.append((name,))
    return ops


class Model:
    """asyncio's queue semantics, written as plainly as possible."""

    def __init__(self, kind: str, maxsize: float) -> None:
        self.kind = kind
        self.maxsize = maxsize
        self.items: list[int] = []
        self.is_shutdown = False
        self.unfinished = 0
        self.peak = 0
        self.total_put = 0
        self.total_got = 0
        self.getters: list[int] = []
        """Ids of getter tasks parked and not woken, in the order they will be woken."""
        self.woken: list[int] = []
        """Ids of getter tasks woken and not yet run, in the order they will run."""
        self.finished: dict[int, tuple[str, int | None]] = {}
        """Getter tasks that ended, and how, not yet compared with the real ones."""

    def wake_one(self) -> None:
        if self.getters:
            self.woken.append(self.getters.pop(0))

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self.items)

    def put(self, item: int) -> str:
        if self.is_shutdown:
            return "QueueShutDown"
        if self.full():
            return "full"
        self.items.append(item)
        self.wake_one()
        self.unfinished += 1
        self.total_put += 1
        self.peak = max(self.peak, len(self.items))
        return "ok"

    def take(self) -> int:
        if self.kind == "fifo":
            index = 0
        elif self.kind == "lifo":
            index = len(self.items) - 1
        else:
            index = self.items.index(min(self.items))
        self.total_got += 1
        return self.items.pop(index)

    def get(self) -> tuple[str, int | None]:
        if not self.items:
            return ("QueueShutDown" if self.is_shutdown else "empty", None)
        return ("ok", self.take())

    def shutdown(self, immediate: bool) -> None:
        self.is_shutdown = True
        self.woken += self.getters
        self.getters.clear()
        if immediate:
            self.unfinished = max(0, self.unfinished - len(self.items))
            self.items.clear()

    def settle(self) -> None:
        # Woken getters run in the order they were woken: each takes an item if there is
        # one, leaves with QueueShutDown if the queue is shut down and empty, or parks
        # again at the back of the line.
        finished = self.finished
        woken, self.woken = self.woken, []
        for getter in woken:
            if self.items:
                finished[getter] = ("ok", self.take())
            elif self.is_shutdown:
                finished[getter] = ("QueueShutDown", None)
            else:
                self.getters.append(getter)


async def run_model(q: Any, kind: str, maxsize: float, ops: list[Op], extras: bool) -> None:
    """Apply *ops* to *q* and to a :class:`Model`, asserting they agree at every step.

    Args:
        q: A new, empty queue of *kind* and *maxsize*.
        kind: ``"fifo"``, ``"lifo"`` or ``"priority"``.
        maxsize: The queue's ``maxsize``.
        ops: From :func:`op_lists`.
        extras: Whether *q* has conveyor's extras (they are compared too).
    """
    model = Model(kind, maxsize)
    getters: dict[int, asyncio.Task[Any]] = {}
    put_bound = q.put_nowait

    async def settle(where: str) -> None:
        # Let every woken getter run, in the queue and in the model, and compare.
        for _ in range(3):
            await asyncio.sleep(0)
        model.settle()
        finished, model.finished = model.finished, {}
        for getter, (expected, item) in finished.items():
            task = getters.pop(getter)
            assert task.done(), f"getter {getter} still waits at {where}"
            error = task.exception()
            got = "ok" if error is None else type(error).__name__
            if isinstance(error, QueueShutDown):
                got = "QueueShutDown"
            assert (got, task.result() if error is None else None) == (expected, item), where
        for getter, task in getters.items():
            assert not task.done(), f"getter {getter} finished at {where}; the model waits"

    def status(error: Exception | None, refused: str) -> str:
        # Map an outcome to the model's words; *refused* is "full" or "empty".
        if error is None:
            return "ok"
        if isinstance(error, QueueShutDown):
            return "QueueShutDown"
        if isinstance(error, (asyncio.QueueFull, asyncio.QueueEmpty, TimeoutError)):
            return refused
        return type(error).__name__

    for step, op in enumerate(ops):
        name = op[0]
        where = f"step {step} {op} of {ops}"
        awaited = name in EXTRA_OPS or name in ("getter", "settle")
        if awaited:
            await settle(where)
        error: Exception | None = None
        result: Any = None
        try:
            if name == "put_nowait":
                q.put_nowait(op[1])
            elif name == "put_bound":
                put_bound(op[1])
            elif name == "put0":
                await q.put(op[1], timeout=0)
            elif name == "put_many0":
                await q.put_many(op[1], timeout=0)
            elif name == "get_nowait":
                result = q.get_nowait()
            elif name == "get0":
                result = await q.get(timeout=0)
            elif name == "get_many0":
                result = await q.get_many(op[1], timeout=0)
            elif name == "task_done":
                q.task_done()
            elif name == "shutdown":
                q.shutdown(immediate=op[1])
            elif name == "getter" and model.items == [] and not model.is_shutdown:
                getters[step] = asyncio.create_task(q.get())
                model.getters.append(step)
        except Exception as exc:
            error = exc

        if name in ("put_nowait", "put_bound", "put0"):
            assert status(error, "full") == model.put(op[1]), where
        elif name == "put_many0":
            expected = "ok"
            for item in op[1]:
                expected = model.put(item)
                if expected == "full":
                    # timeout=0 still lets the loop turn once: getters woken by this
                    # batch's own items run, and may free a slot.
                    model.settle()
                    expected = model.put(item)
                if expected != "ok":
                    break
            assert status(error, "full") == expected, where
        elif name in ("get_nowait", "get0"):
            assert (status(error, "empty"), result) == model.get(), where
        elif name == "get_many0":
            expected, item = model.get()
            batch = None if item is None else [item]
            while batch is not None and len(batch) < op[1] and model.items:
                batch.append(model.take())
            assert (status(error, "empty"), result) == (expected, batch), where
        elif name == "task_done":
            assert status(error, "") == ("ValueError" if model.unfinished == 0 else "ok"), where
            model.unfinished = max(0, model.unfinished - 1)
        elif name == "shutdown":
            model.shutdown(op[1])
        else:
            assert error is None, where
        if awaited:
            await settle(where)

        assert q.qsize() == len(model.items), where
        assert q.empty() == (not model.items), where
        assert q.full() == model.full(), where
        if extras:
            stats = q.statistics()
            counters = (stats.current_size, stats.peak_size, stats.total_put, stats.total_got)
            assert counters == (len(model.items), model.peak, model.total_put, model.total_got), (
                where
            )
            assert stats.unfinished_tasks == model.unfinished, where
            assert stats.is_shutdown == model.is_shutdown, where
            assert stats.tasks_waiting_get == len(model.getters), where

    await _stop(list(getters.values()))


MODEL_KINDS: dict[str, dict[str, type[Any]]] = {
    "asyncio": {
        "fifo": asyncio.Queue,
        "lifo": asyncio.LifoQueue,
        "priority": asyncio.PriorityQueue,
    },
    "memory": {
        "fifo": conveyor.Queue,
        "lifo": conveyor.LifoQueue,
        "priority": conveyor.PriorityQueue,
    },
    "memory-py": {
        "fifo": PurePythonQueue,
        "lifo": conveyor.LifoQueue,
        "priority": conveyor.PriorityQueue,
    },
}
ASYNCIO_HAS_SHUTDOWN = hasattr(asyncio.Queue, "shutdown")


@settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=not LONG)
@given(
    kind=st.sampled_from(["fifo", "lifo", "priority"]),
    maxsize=st.sampled_from([0, 1, 2, 3, 1.5]),
    ops=op_lists(extras=False, shutdown=ASYNCIO_HAS_SHUTDOWN),
)
def test_the_model_matches_asyncio(kind: str, maxsize: float, ops: list[Op]) -> None:
    async def main() -> None:
        await run_model(MODEL_KINDS["asyncio"][kind](maxsize), kind, maxsize, ops, extras=False)

    asyncio.run(main())


@settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=not LONG)
@given(
    kind=st.sampled_from(["fifo", "lifo", "priority"]),
    maxsize=st.sampled_from([0, 1, 2, 3, 1.5]),
    ops=op_lists(extras=True, shutdown=True),
)
@pytest.mark.parametrize("impl", ["memory", "memory-py"])
def test_one_task_matches_the_model(impl: str, kind: str, maxsize: float, ops: list[Op]) -> None:
    async def main() -> None:
        await run_model(MODEL_KINDS[impl][kind](maxsize), kind, maxsize, ops, extras=True)

    asyncio.run(main())
