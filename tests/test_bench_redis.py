"""The Redis scenarios at scale of ``conveyor bench`` run end to end, on a private server."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conveyor.bench import _plot, read_json
from conveyor.cli import main
from tests.backends.redis_backend import RedisServer, redis_server

pytestmark = pytest.mark.timeout(300)

__all__ = ["redis_server"]


def test_the_redis_scenarios_at_scale_print_their_rows_and_draw_their_curves(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plots = _plot.unavailable() is None
    status = main(
        [
            "bench",
            "--group",
            "redis",
            "--redis-url",
            redis_server.url,
            "--scale",
            "0.002",
            "--rounds",
            "1",
            "--json",
            str(tmp_path / "run.json"),
            *(["--plot", str(tmp_path)] if plots else []),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "failed" not in out
    for scenario in (
        "memory: a queued 5-byte item (goal: at most 80 B)",
        "cross-process put -> get: p50 latency",
        "1 process x 1 task: put, one at a time",
        "16 processes x 1 task: get + ack, one at a time",
        "backlog 2,000: get + ack, join() waiting",
        "put_many(100) + get_many(100) + ack, 1 task each",
    ):
        assert scenario in out
    contenders = ["redis-py list", "redis-py streams"]
    contenders += ["redis-benchmark -P 50 LPUSH"] if shutil.which("redis-benchmark") else []
    for contender in contenders:
        assert re.search(rf"{re.escape(contender)}\s+[\d,]+\s+[\d.]+x", out), contender
    assert re.search(r"p99 latency\s+redis-py BLMOVE\s+\d+\.\d{3} ms\s+[\d.]+x", out)
    assert re.search(r"5-byte item .*\s+redis-py streams\s+\d+\.\d B/item\s+[\d.]+x", out)
    report = read_json(tmp_path / "run.json")
    assert {row.group for row in report.rows} == {"redis"}
    assert not [row for row in report.rows if row.error is not None]
    # Every growth figure has all three backlogs or process counts, for every contender.
    found = {
        (f.kind, panel): curves
        for f in _plot.figures(report.rows)
        for panel, curves in f.panels.items()
    }
    assert ("processes", "put, one at a time") in found
    assert ("backlog", "8 tasks get + ack") in found
    assert len(found) == 2 + 4
    for curves in found.values():
        assert all(len(curve.points) == 3 for curve in curves)
    if plots:  # without matplotlib, test_bench_plot.py says why (and fails under CI=true)
        for name in ("redis-backlog.png", "redis-processes.png"):
            assert f"wrote {tmp_path / name}" in out
