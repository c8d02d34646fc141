"""Prometheus metrics: ``conveyor metrics URL`` scraped for real, and ``QueueCollector``.

The exporter runs as a real command in a process of its own, on every durable backend;
its ``/metrics`` is fetched over HTTP and read back with ``prometheus_client.parser``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import conveyor
from conveyor._stores import open_existing_store
from conveyor.metrics import QueueCollector
from tests.backends._processes import ROOT, run_cli
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name

__all__ = ["durable_url", "open_durable", "queue_name"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    for (found, found_labels), value in samples.items():
        if found == name and set(labels.items()) <= found_labels:
            return value
    return None


class _Exporter:
    """``conveyor metrics ARGS --port 0`` in a process of its own, and its address."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "metrics", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "serving http://127.0.0.1:" in line, line + self.stop()[1]
        self.url = line.split("serving ")[1].split(" ")[0]

    def scrape(self) -> Samples:
        with urllib.request.urlopen(self.url, timeout=30) as reply:
            return _parse(reply.read().decode())

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


@pytest.fixture
def exporters() -> Iterator[list[_Exporter]]:
    started: list[_Exporter] = []
    yield started
    for exporter in started:
        exporter.stop()


async def _fill(url: str, name: str, open_durable: Any) -> None:
    """Leave queue *name* with 3 ready items, 1 leased and 2 dead (maxsize 10)."""
    await open_durable(maxsize=10)
    async with open_existing_store(url, name) as store:
        assert await store.put([json.dumps(i).encode() for i in range(6)])
        for delivery in await store.claim(2, 60, None):
            assert await store.fail(delivery.receipt, "broken")
        assert len(await store.claim(1, 60, None)) == 1


async def test_the_exporter_serves_every_queue_and_follows_changes(
    durable_url: str, queue_name: str, open_durable: Any, exporters: list[_Exporter]
) -> None:
    put_from = time.time()
    await _fill(durable_url, queue_name, open_durable)
    put_to = time.time()
    exporter = _Exporter(durable_url)
    exporters.append(exporter)
    scraped_from = time.time()
    samples = exporter.scrape()
    scraped_to = time.time()
    assert _value(samples, "conveyor_up") == 1
    mine = {"queue": queue_name}
    expected = {"ready": 3, "delayed": 0, "leased": 1, "dead": 2, "maxsize": 10, "shutdown": 0}
    for name, value in expected.items():
        assert _value(samples, f"conveyor_queue_{name}", **mine) == value, name
    backend = durable_url.split(":")[0].partition("+")[0]  # redis+sentinel: "redis"
    assert _value(samples, "conveyor_queue_ready", queue=queue_name, backend=backend) == 3
    assert _value(samples, "conveyor_queue_put_total", **mine) == 6
    assert _value(samples, "conveyor_queue_delivered_total", **mine) == 3
    assert _value(samples, "conveyor_queue_finished_total", **mine) == 2
    # The age of item 3, ready first, within the put's bounds (Redis: a second coarser).
    age = _value(samples, "conveyor_queue_oldest_ready_age_seconds", **mine)
    assert age is not None
    assert scraped_from - put_to - 0.05 <= age <= scraped_to - put_from + 1.05

    # Read at each scrape: changes and queues made since show.
    q = await open_durable()
    await q.put("more")
    await q.ashutdown()
    async with conveyor.open_queue(durable_url, name=f"{queue_name}-new") as other:
        await other.put("x")
    samples = exporter.scrape()
    assert _value(samples, "conveyor_queue_ready", **mine) == 4
    assert _value(samples, "conveyor_queue_shutdown", **mine) == 1
    assert _value(samples, "conveyor_queue_ready", queue=f"{queue_name}-new") == 1
    status, err = exporter.stop()
    assert (status, err) == (0, "")


async def test_the_exporter_exports_only_the_queues_named(
    durable_url: str, queue_name: str, open_durable: Any, exporters: list[_Exporter]
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    async with conveyor.open_queue(durable_url, name=f"{queue_name}-other") as other:
        await other.put("x")
    exporter = _Exporter(durable_url, "--queue", queue_name)
    exporters.append(exporter)
    samples = exporter.scrape()
    queues = {dict(labels)["queue"] for (name, labels) in samples if name == "conveyor_queue_ready"}
    assert queues == {queue_name}


async def test_the_exporter_refuses_a_missing_queue_or_store(
    durable_url: str, queue_name: str, open_durable: Any, tmp_path: Path
) -> None:
    await open_durable()
    done = run_cli("metrics", durable_url, "--queue", f"{queue_name}-missing", "--port", "0")
    assert done.returncode == 1
    assert done.stderr.startswith("conveyor metrics: error: ")
    assert f"has no queue '{queue_name}-missing'" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    done = run_cli("metrics", f"sqlite:///{tmp_path / 'none.db'}", "--port", "0")
    assert done.returncode == 1
    assert "no SQLite queue file" in done.stderr
    assert not (tmp_path / "none.db").exists()
    for url in ("nosuch://x", "memory://", "redis://:pw@h:x/0"):
        done = run_cli("metrics", url, "--port", "0")
        assert done.returncode == 1
        assert len(done.stderr.splitlines()) == 1
        assert "Traceback" not in done.stderr
        assert ":pw@" not in done.stderr


def test_the_exporter_says_which_extra_it_needs(tmp_path: Path) -> None:
    blocker = tmp_path / "prometheus_client"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('blocked in this test')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT / "src")]))
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "metrics", "sqlite:///x.db"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'conveyor[metrics]'" in done.stderr
    assert len(done.stderr.splitlines()) == 1


async def test_queue_collector_exports_a_running_programs_statistics(
    durable_url: str, queue_name: str
) -> None:
    memory: conveyor.Queue[int] = conveyor.Queue(maxsize=5)
    for i in range(3):
        await memory.put(i)
    await memory.get()
    async with conveyor.open_queue(durable_url, name=queue_name) as durable:
        await durable.put_many(["a", "b"])
        registry = CollectorRegistry()
        registry.register(QueueCollector(memory, "local"))
        registry.register(QueueCollector(durable, "shared"))
        samples = _parse(generate_latest(registry).decode())
    local = {"queue": "local", "backend": "memory"}
    assert _value(samples, "conveyor_process_queue_size", **local) == 2
    assert _value(samples, "conveyor_process_queue_maxsize", **local) == 5
    assert _value(samples, "conveyor_process_queue_peak_size", **local) == 3
    assert _value(samples, "conveyor_process_queue_unfinished_tasks", **local) == 3
    assert _value(samples, "conveyor_process_queue_put_total", **local) == 3
    assert _value(samples, "conveyor_process_queue_got_total", **local) == 1
    assert _value(samples, "conveyor_process_queue_shutdown", **local) == 0
    shared = {"queue": "shared", "backend": durable_url.split(":")[0].partition("+")[0]}
    assert _value(samples, "conveyor_process_queue_size", **shared) == 2
    assert _value(samples, "conveyor_process_queue_maxsize", **shared) == 0
    assert _value(samples, "conveyor_process_queue_put_total", **shared) == 2
    with pytest.raises(TypeError, match="statistics"):
        QueueCollector(object(), "nope")
