"""The ``conveyor`` command line: ``demo`` (plain and live) and ``bench``."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.bench import private_redis
from conveyor.cli import main

SCRIPT = Path(sys.executable).with_name("conveyor")
TIMESTAMPED = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (Producer|Consumer|>got|Main)")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("COLUMNS", "LINES", "FORCE_COLOR", "TERM"):
        env.pop(name, None)
    env.update(extra)
    return env


def _demo(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=_env(**env), check=False
    )


def _assert_plain_bounded_run(out: str) -> None:
    lines = out.splitlines()
    assert lines[0].startswith("conveyor demo: program 5 (bounded)")
    body = [line for line in lines[1:-1] if not line.startswith("(")]
    assert body, out
    assert all(TIMESTAMPED.match(line) for line in body), out
    assert sum(" >got " in line for line in body) == 50
    assert re.match(r"done in [\d.]+ s: 50 items put, 50 got, peak depth 2/2$", lines[-1])


@pytest.mark.parametrize(
    "command",
    [[str(SCRIPT)], [sys.executable, "-m", "conveyor"]],
    ids=["console-script", "python-m"],
)
def test_demo_runs_to_the_end_with_plain_lines(command: list[str]) -> None:
    if not Path(command[0]).exists():
        pytest.skip(f"{command[0]} is not installed")
    done = _demo([*command, "demo", "--speed", "50"])
    assert done.returncode == 0, done.stderr
    _assert_plain_bounded_run(done.stdout)


def test_demo_at_its_default_pace_ends_within_15_seconds() -> None:
    done = _demo([sys.executable, "-m", "conveyor", "demo"])
    assert done.returncode == 0, done.stderr
    _assert_plain_bounded_run(done.stdout)
    assert "speed 2.5x" in done.stdout.splitlines()[0]
    seconds = float(done.stdout.splitlines()[-1].split()[2])
    assert seconds < 15


@pytest.mark.parametrize("example", ["1", "nowait", "wait_for", "4"])
def test_demo_runs_every_example(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", example, "--speed", "100", "--seed", "5", "--plain"]) == 0
    out = capsys.readouterr().out
    assert sum(" >got " in line for line in out.splitlines()) == 10
    assert "done in" in out.splitlines()[-1]


def test_demo_live_view_renders_under_a_pseudo_terminal() -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "demo", "--speed", "50"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=_env(TERM="xterm-256color", COLUMNS="100", LINES="40"),
        close_fds=True,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
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
    os.close(controller)
    assert process.wait(timeout=30) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    for expected in (
        "queue depth",
        "blocked in put()",
        # The view keeps the last lines printed; the final frame always has this one.
        "Main: every item is processed",
        "finished",
    ):
        assert expected in screen
    assert "50" in screen


def test_live_view_shows_depth_counts_and_waiters() -> None:
    import asyncio

    from rich.console import Console

    from conveyor.cli._live import run_live

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    stage = asyncio.run(run_live("bounded", "memory://", "both", 50.0, 5, "title", console))
    screen = buffer.getvalue()
    assert sum(line.startswith(">got ") for line in stage.lines) == 50
    assert "maxsize=2, five producers, one slow consumer" in screen  # the subtitle
    assert "queue depth" in screen
    assert "/2" in screen
    assert re.search(r"put\s+50", screen)
    assert re.search(r"got\s+50", screen)
    assert "Main: every item is processed" in screen
    # At some frame producers were seen waiting for room in the full queue.
    assert re.search(r"[1-5] blocked in put\(\)", screen)


def test_demo_falls_back_to_plain_lines_without_rich(tmp_path: Path) -> None:
    blocker = tmp_path / "rich"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('rich is blocked in this test')\n")
    done = _demo(
        [sys.executable, "-m", "conveyor", "demo", "--live", "--speed", "50"],
        PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]),
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'conveyor[cli]'" in done.stdout
    _assert_plain_bounded_run(done.stdout)


def test_demo_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "seven"])
    assert exited.value.code == 2
    assert "no example called 'seven'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--speed", "0"])
    assert "must be a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--role", "producer"])
    assert "--role producer needs a queue other processes can reach" in capsys.readouterr().err
    assert main(["demo", "--backend", "bogus://nowhere", "--speed", "100", "--plain"]) == 1
    assert "conveyor demo: error: unknown queue URL scheme 'bogus'" in capsys.readouterr().err


def test_core_never_imports_the_cli_or_rich() -> None:
    code = (
        "import sys, conveyor; q = conveyor.Queue(); "
        "bad = [m for m in sys.modules if m.startswith(('conveyor.cli', 'conveyor.bench',"
        " 'conveyor.examples', 'rich'))]; print(bad); assert not bad"
    )
    done = _demo([sys.executable, "-c", code])
    assert done.returncode == 0, done.stdout + done.stderr


def test_bench_quick_prints_the_table_and_writes_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "RESULTS.md"
    status = main(
        [
            "bench",
            "--quick",
            "--group",
            "memory",
            "--scale",
            "0.02",
            "--rounds",
            "1",
            "--markdown",
            str(target),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    header = out.splitlines()[3]
    for column in ("scenario", "contender", "items/s", "ratio", "goal", "met?"):
        assert column in header
    for scenario in ("put_nowait + get_nowait", "ping-pong", "get_many(100)"):
        assert scenario in out
    assert re.search(r"asyncio\.Queue\s+[\d,]+\s+[\d.]+x\s+>= 2.5x\s+(yes|NO)", out)
    text = target.read_text()
    assert text.startswith("# Benchmark results")
    assert "| scenario | contender | items/s | ratio | ratio range | goal | met? |" in text
    assert re.search(r"\| asyncio\.Queue \| [\d,]+ \| [\d.]+x \|  \| >= 2\.5x \| (yes|NO) \|", text)
    assert "## Noise" in text


def test_bench_refuses_an_unknown_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--group", "memory,carrier-pigeon"]) == 2
    assert "unknown group carrier-pigeon" in capsys.readouterr().err


def test_private_redis_starts_and_stops(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with private_redis(tmp_path) as url:
        assert url is not None
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(16).startswith(b"+PONG")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port)).close()
