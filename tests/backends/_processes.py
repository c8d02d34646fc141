"""Worker processes for the cross-process tests: started, watched line by line, SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m conveyor ARGS`` in a process of its own, as an operator would."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )


class Worker:
    """One ``tests.backends.durable_worker`` process and the lines it printed so far."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.backends.durable_worker", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.strip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[str]], bool], timeout: float = 60) -> None:
        """Block until *condition(lines)* holds; fail if the process ends first or time runs out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self.lines):
                if not self._reader.is_alive():
                    raise AssertionError(f"worker ended early: {self.lines[-5:]} {self.stderr()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"worker did not get there in time: {self.lines[-5:]}")
                self._changed.wait(left)

    def kill(self) -> None:
        """SIGKILL the process and collect every line it printed before dying."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._reader.join(30)

    def finish(self, timeout: float = 60) -> list[str]:
        """Wait for a normal exit and return the lines."""
        code = self.process.wait(timeout)
        self._reader.join(30)
        assert code == 0, f"worker failed with {code}: {self.stderr()}"
        return self.lines

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()[-3000:]

    def values(self, tag: str) -> list[int]:
        """The numbers of the lines ``TAG N``."""
        return [int(line.split()[1]) for line in self.lines if line.startswith(tag + " ")]
