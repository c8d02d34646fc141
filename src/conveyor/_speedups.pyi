# The C accelerator of conveyor.Queue (src/conveyor/_speedups.c); optional.
import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

class QueueCore:
    _queue: Any
    _getters: deque[asyncio.Future[bool]]
    _putters: deque[asyncio.Future[bool]]
    _join_waiters: deque[asyncio.Future[bool]]
    _loop: asyncio.AbstractEventLoop | None
    _maxsize: float
    _limit: float
    _is_shutdown: bool
    _got: int
    _dropped: int
    _finished: int
    _peak: int
    def put_nowait(self, item: Any, /) -> None: ...
    def get_nowait(self) -> Any: ...
    def put(self, item: Any, timeout: float | None = None) -> Coroutine[Any, Any, None]: ...
    def get(self, timeout: float | None = None) -> Coroutine[Any, Any, Any]: ...

class QueueOperation(Coroutine[Any, Any, Any]):
    def send(self, value: Any, /) -> Any: ...
    def throw(self, typ: Any, val: Any = ..., tb: Any = ..., /) -> Any: ...
    def close(self) -> None: ...
    def __await__(self) -> Any: ...

def _setup(
    queue_full: type[BaseException],
    queue_empty: type[BaseException],
    queue_shutdown: type[BaseException],
    put_after_shutdown: str,
    get_after_shutdown: str,
    get_running_loop: Callable[[], asyncio.AbstractEventLoop],
    future: type[asyncio.Future[Any]],
    base_event_loop: type[asyncio.BaseEventLoop],
    /,
) -> None: ...
