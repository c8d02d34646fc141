"""``conveyor queues|stats|peek|dead|requeue|purge|watch``, run as real commands on real stores.

Every test runs on every durable backend (a real SQLite file, a private redis-server),
through ``python -m conveyor`` in a process of its own, as an operator would.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor._stores import list_queues, open_existing_store
from tests.backends._processes import ROOT, run_cli
from tests.backends.durable_fixtures import durable_url, open_durable, queue_name
from tests.backends.redis_backend import RedisServer, free_port, private_server

__all__ = ["durable_url", "open_durable", "private_server", "queue_name"]

READING = ("queues", "stats", "peek", "dead", "watch")


def _ok(*args: str) -> subprocess.CompletedProcess[str]:
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done


def _json(*args: str) -> Any:
    return json.loads(_ok(*args, "--json").stdout)


def _one_line_error(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode != 0
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"conveyor {command}: ")
    return lines[0]


async def _fill(url: str, name: str, open_durable: Any) -> None:
    """Leave queue *name* with ready "a", "b", "c" and dead "x", "y" (maxsize 10)."""
    await open_durable(maxsize=10)
    async with open_existing_store(url, name) as store:
        assert await store.put([json.dumps(v).encode() for v in ("x", "y", "a", "b", "c")])
        for delivery in await store.claim(2, 60, None):
            assert await store.fail(delivery.receipt, f"broken {delivery.item_id}")


async def _counts(url: str, name: str) -> tuple[int, int, int, int]:
    async with open_existing_store(url, name) as store:
        counts = await store.counts()
    return counts.ready, counts.delayed, counts.leased, counts.dead


async def test_queues_and_stats_show_the_counts(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    other = f"{queue_name}-other"
    async with conveyor.open_queue(durable_url, name=other) as q:
        await q.put("z")
    listed = {entry["queue"]: entry for entry in _json("queues", durable_url)}
    mine = listed[queue_name]
    assert (mine["ready"], mine["delayed"], mine["leased"], mine["dead"]) == (3, 0, 0, 2)
    assert (mine["maxsize"], mine["shutdown"], mine["unfinished"]) == (10, False, 3)
    assert "oldest_ready_age" in mine
    assert (listed[other]["ready"], listed[other]["maxsize"]) == (1, 0)
    # Seconds since "a" was put, which is ready first; no rates before a minute of use.
    assert mine["oldest_ready_age"] >= 0.0
    assert (mine["put_per_minute"], mine["finished_per_minute"]) == (None, None)
    table = _ok("queues", durable_url).stdout.splitlines()
    assert table[0] == f"queues at {durable_url}"
    assert table[1].split() == [
        "queue", "ready", "delayed", "leased", "dead", "maxsize", "shutdown", "oldest",
        "in/min", "out/min",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in table[2:]}
    assert rows[queue_name][:7] == f"{queue_name} 3 0 0 2 10 no".split()
    assert rows[other][:7] == f"{other} 1 0 0 0 unbounded no".split()
    assert rows[queue_name][7].endswith("s")  # an age, e.g. "0.4s"
    assert rows[queue_name][8:] == ["-", "-"]  # the store cannot tell yet, and says so

    stats = _json("stats", durable_url, queue_name)
    assert {k: stats[k] for k in ("queue", "ready", "dead", "maxsize")} == {
        "queue": queue_name,
        "ready": 3,
        "dead": 2,
        "maxsize": 10,
    }
    assert (stats["put_total"], stats["delivered_total"], stats["finished_total"]) == (5, 2, 2)
    plain = _ok("stats", durable_url, queue_name).stdout
    assert plain.splitlines()[0] == f"queue {queue_name!r} at {durable_url}"
    assert "ready:" in plain
    assert "dead:             2" in plain
    assert "in/min:           -" in plain
    assert "out/min:          -" in plain
    assert "finished (ever):  2" in plain


async def test_peek_shows_the_next_items_and_changes_nothing(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    before = await _counts(durable_url, queue_name)
    peeked = _json("peek", durable_url, queue_name, "-n", "2")
    assert [item["item"] for item in peeked] == ["a", "b"]
    assert [item["attempts"] for item in peeked] == [0, 0]
    plain = _ok("peek", durable_url, queue_name).stdout.splitlines()
    assert plain[0].endswith("the next 3 ready item(s), not claimed")
    assert [line.split()[-1] for line in plain[2:]] == ['"a"', '"b"', '"c"']
    assert await _counts(durable_url, queue_name) == before
    q = await open_durable()
    assert await q.get(timeout=30) == "a"


async def test_dead_lists_and_requeue_puts_back(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    dead = _json("dead", durable_url, queue_name)
    assert [d["item"] for d in dead] == ["x", "y"]
    assert [d["attempts"] for d in dead] == [1, 1]
    assert [d["error"] for d in dead] == [f"broken {d['id']}" for d in dead]
    assert all(abs(d["failed_at"] - time.time()) < 300 for d in dead)
    plain = _ok("dead", durable_url, queue_name).stdout.splitlines()
    assert plain[0].endswith("2 dead letter(s), oldest first")
    assert "broken" in plain[2]
    assert _json("requeue", durable_url, queue_name, dead[0]["id"]) == {"requeued": 1}
    assert _json("requeue", durable_url, queue_name, dead[0]["id"]) == {"requeued": 0}
    done = _ok("requeue", durable_url, queue_name, "--all")
    assert done.stdout.strip().endswith("requeued 1 dead letter(s) (all dead letters)")
    assert await _counts(durable_url, queue_name) == (5, 0, 0, 0)
    assert _ok("dead", durable_url, queue_name).stdout.strip().endswith("no dead letters")


def test_requeue_needs_ids_or_all() -> None:
    done = run_cli("requeue", "sqlite:///x.db", "jobs")
    assert done.returncode == 2
    assert "give the ids of dead letters, or --all" in done.stderr
    done = run_cli("requeue", "sqlite:///x.db", "jobs", "7", "--all")
    assert done.returncode == 2


async def test_purge_needs_yes_off_a_terminal_and_says_how_many(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    for which in ("--ready", "--dead", "--all"):
        done = run_cli("purge", durable_url, queue_name, which)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            "conveyor purge: refusing to purge without --yes when not on a terminal"
            " (nothing was deleted)"
        )
    assert await _counts(durable_url, queue_name) == (3, 0, 0, 2)
    done = _ok("purge", durable_url, queue_name, "--dead", "--yes")
    assert done.stdout.strip().endswith("purged 2 dead letters")
    assert await _counts(durable_url, queue_name) == (3, 0, 0, 0)
    assert _json("purge", durable_url, queue_name, "--ready", "-y") == {
        "purged": 3,
        "which": "ready",
    }
    assert _json("purge", durable_url, queue_name, "--all", "-y") == {"purged": 0, "which": "all"}
    done = run_cli("purge", durable_url, queue_name, "--yes")
    assert done.returncode == 2
    assert "one of the arguments --ready --dead --all is required" in done.stderr


def _on_a_terminal(*args: str, answer: bytes = b"") -> tuple[int, str]:
    """Run ``conveyor ARGS`` on a pseudo-terminal, typing *answer* when it asks."""
    controller, terminal = pty.openpty()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        cwd=ROOT,
        close_fds=True,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
        if answer and not answered and b"[y/N]" in b"".join(chunks):
            os.write(controller, answer)
            answered = True
    os.close(controller)
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


async def test_purge_asks_on_a_terminal(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    status, screen = _on_a_terminal("purge", durable_url, queue_name, "--all", answer=b"n\n")
    assert status == 1
    assert f"Delete the 5 waiting items and dead letters of queue {queue_name!r}" in screen
    assert "nothing was deleted" in screen
    assert await _counts(durable_url, queue_name) == (3, 0, 0, 2)
    status, screen = _on_a_terminal("purge", durable_url, queue_name, "--ready", answer=b"y\n")
    assert status == 0, screen
    assert "purged 3 waiting items (ready and delayed)" in screen
    assert await _counts(durable_url, queue_name) == (0, 0, 0, 2)


async def test_queues_shows_a_table_on_a_terminal(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    status, screen = _on_a_terminal("queues", durable_url)
    assert status == 0, screen
    assert queue_name in screen
    assert "│" in screen  # rich's table borders


async def test_watch_prints_a_line_an_update(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    lines = _ok(
        "watch", durable_url, queue_name, "--count", "2", "--interval", "0.2"
    ).stdout.splitlines()
    assert len(lines) == 2
    assert (
        f"queue {queue_name!r} at {durable_url}: ready 3/10 delayed 0 leased 0 dead 2" in (lines[1])
    )
    updates = [
        json.loads(line)
        for line in _ok(
            "watch", durable_url, queue_name, "--count", "2", "--interval", "0.2", "--json"
        ).stdout.splitlines()
    ]
    assert [u["ready"] for u in updates] == [3, 3]
    assert updates[0]["rate_in"] is None
    assert updates[1]["rate_in"] == 0.0  # counted, and nothing was put meanwhile
    assert updates[1]["rate_out"] == 0.0


async def test_watch_makes_three_store_reads_an_update(
    private_server: RedisServer, queue_name: str
) -> None:
    # What README says watch costs: counted on a server of the test's own, as the
    # scripts run on it (EVALSHA calls), between two runs that differ by 4 updates only.
    async with conveyor.open_queue(private_server.url, name=queue_name) as q:
        await q.put("x")

    def evalsha_calls() -> int:
        stats = private_server.info("commandstats").get("cmdstat_evalsha", "calls=0")
        return int(stats.split("calls=")[1].split(",")[0])

    def watch(count: int) -> int:
        before = evalsha_calls()
        args = ("--count", str(count), "--interval", "0.01", "--json")
        _ok("watch", private_server.url, queue_name, *args)
        return evalsha_calls() - before

    watch(1)  # the scripts loaded once: later runs find them
    assert (watch(6) - watch(2)) / 4 == 3


async def test_watch_draws_the_live_view_on_a_terminal(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await _fill(durable_url, queue_name, open_durable)
    status, screen = _on_a_terminal(
        "watch", durable_url, queue_name, "--count", "2", "--interval", "0.2"
    )
    assert status == 0, screen
    for expected in ("conveyor watch", "queue depth", "3/10", "2 dead", "rates", "oldest ready"):
        assert expected in screen


async def test_every_command_refuses_a_missing_queue(
    durable_url: str, queue_name: str, open_durable: Any
) -> None:
    await open_durable()  # the store exists; the queue asked for does not
    missing = f"{queue_name}-missing"
    for args in (
        ["stats"],
        ["peek"],
        ["dead"],
        ["requeue", "--all"],
        ["purge", "--all", "--yes"],
        ["watch", "--count", "1"],
        ["shutdown"],
        ["resume"],
        ["maxsize"],
        ["maxsize", "5"],
    ):
        line = _one_line_error(run_cli(args[0], durable_url, missing, *args[1:]), args[0])
        assert f"has no queue {missing!r}" in line
    assert missing not in await list_queues(durable_url)


def test_every_command_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    url = f"sqlite:///{path}"
    for args in (["queues", url], ["stats", url, "jobs"], ["purge", url, "jobs", "--all", "-y"],
                 ["watch", url, "jobs"], ["shutdown", url, "jobs"], ["maxsize", url, "jobs", "3"],
                 ["peek", url, "jobs"], ["dead", url, "jobs"], ["requeue", url, "jobs", "--all"],
                 ["resume", url, "jobs"]):  # fmt: skip
        line = _one_line_error(run_cli(*args), args[0])
        assert line.endswith(f"error: no SQLite queue file at {str(path)!r}")
    assert not path.exists()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nosuch://host/0", "unknown queue URL scheme 'nosuch'"),
        ("memory://", "in-memory queue"),
        ("sqlite://host/x.db", "sqlite URL must have an empty host"),
        ("redis://:s3cret@host:port/0", "the port is not a number"),
        ("redis://127.0.0.1:6379/x", "the path of a Redis URL is the database number"),
        ("jobs.db", "has no scheme"),
    ],
)
def test_bad_urls_are_one_line_errors(url: str, says: str) -> None:
    for args in (["queues", url], ["stats", url, "jobs"], ["peek", url, "jobs"],
                 ["purge", url, "jobs", "--dead", "--yes"], ["watch", url, "jobs"]):  # fmt: skip
        done = run_cli(*args)
        assert done.returncode == 1
        line = _one_line_error(done, args[0])
        assert says in line
        assert "s3cret" not in line


def test_an_unreachable_server_is_a_one_line_error() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0?retry_timeout=0.2&connect_timeout=0.5"
    for args in (["queues", url], ["stats", url, "jobs"]):
        line = _one_line_error(run_cli(*args), args[0])
        assert "is unreachable" in line
