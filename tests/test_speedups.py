"""The C accelerator: built where CI runs, and switched off by ``CONVEYOR_PURE_PYTHON=1``.

Its behaviour is tested by the conformance suite and the stress tests, which run every
body against ``conveyor.Queue`` (accelerated) and ``PurePythonQueue`` (the fallback).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import conveyor
from conveyor._queue import SPEEDUPS, PurePythonQueue

_REPORT = (
    "import conveyor, conveyor._queue as m; "
    "print(m.SPEEDUPS, conveyor.Queue is m.PurePythonQueue, type(conveyor.Queue().get()).__name__)"
)


def _report(**env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore::RuntimeWarning", "-c", _REPORT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI must build the accelerator")
def test_ci_builds_the_accelerator() -> None:
    # A machine with a compiler (CI's) must not fall back silently: the suite would then
    # test the pure-Python queue twice.
    assert SPEEDUPS


@pytest.mark.skipif(not SPEEDUPS, reason="the C accelerator is not built here")
def test_the_accelerated_queue_is_the_pure_one_with_c_hot_paths() -> None:
    assert issubclass(conveyor.Queue, PurePythonQueue)
    assert conveyor.Queue is not PurePythonQueue
    assert _report() == ["True", "False", "QueueOperation"]


def test_conveyor_pure_python_switches_it_off() -> None:
    assert _report(CONVEYOR_PURE_PYTHON="1") == ["False", "True", "coroutine"]


def test_both_are_named_queue() -> None:
    assert conveyor.Queue.__name__ == PurePythonQueue.__name__ == "Queue"
    assert repr(PurePythonQueue(3)).startswith("<Queue at ")
    assert str(conveyor.Queue(3)) == "<Queue maxsize=3>"
