"""The Redis scenarios at scale of ``conveyor bench`` run end to end, on a private server."""

from __future__ import annotations

import re
import shutil

import pytest

from conveyor.cli import main
from tests.backends.redis_backend import RedisServer, redis_server

pytestmark = pytest.mark.timeout(300)

__all__ = ["redis_server"]


def test_the_redis_scenarios_at_scale_print_their_rows(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
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
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "failed" not in out
    for scenario in (
        "memory: queued 5-byte items per MB",
        "cross-process put -> get: 1 / p50 latency",
        "16 processes x 1 task: get + ack, one at a time",
        "backlog 2,000: get + ack, join() waiting",
        "put_many(100) + get_many(100) + ack, 1 task each",
    ):
        assert scenario in out
    contenders = ["redis-py list", "redis-py streams", "redis-py BLMOVE"]
    contenders += ["redis-benchmark -P 50 LPUSH"] if shutil.which("redis-benchmark") else []
    for contender in contenders:
        assert re.search(rf"{re.escape(contender)}\s+[\d,]+\s+[\d.]+x", out), contender
