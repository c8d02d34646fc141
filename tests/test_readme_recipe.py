"""README's recipe for several processes runs as printed, on SQLite and on Redis.

The test copies the recipe's files out of README.md (each fenced block that starts with a
``# file.py`` or ``# run.sh`` line), runs ``run.sh`` twice in a fresh folder, and checks
what a reader would: every job was worked exactly once (no process crashed, so nothing
was delivered twice), both consumers stopped, and the second run worked after the first
one's stored shutdown (``conveyor resume``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends.redis_backend import shared_server

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Recipe: producers and consumers in separate processes"
JOBS = 1000


def recipe_files() -> dict[str, str]:
    """Return the recipe's files, by name, exactly as README prints them."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    files = {}
    for block in re.findall(r"```(?:python|sh)\n(.*?)```", section, flags=re.DOTALL):
        first = block.splitlines()[0]
        match = re.match(r"# (\w+\.(?:py|sh))\b", first)
        assert match, f"a recipe block must start with its file name, not {first!r}"
        files[match.group(1)] = block
    return files


def test_the_recipe_has_its_four_files() -> None:
    assert sorted(recipe_files()) == ["consumer.py", "finish.py", "producer.py", "run.sh"]


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_the_recipe_runs_as_printed(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for name, text in recipe_files().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    if store == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        # A database of its own on the session's server, so that "jobs" is this test's.
        server = shared_server(request.config)
        url = server.url.rsplit("/", 1)[0] + "/7"
    # "python" and "conveyor" are this interpreter's, as in the reader's virtualenv.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "QUEUE_URL": url, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    if store == "redis":
        import redis

        redis.Redis(host="127.0.0.1", port=server.port, db=7).flushdb()
    for run in (1, 2):
        result = subprocess.run(
            ["sh", "run.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
        )
        assert result.returncode == 0, result.stderr
        assert "error" not in result.stderr, result.stderr
        # Concurrent processes share one pipe, and an unbuffered print() writes a line and
        # its newline apart: read the messages out of the text, not line by line.
        out = result.stdout
        consumed = [int(count) for count in re.findall(r"consumer: (\d+) jobs", out)]
        assert len(consumed) == 2, (run, out, result.stderr)
        assert sum(consumed) == JOBS, (run, out)
        assert "finish: all jobs done, queue shut down" in out
        assert "producer: put jobs 0 to 499" in out
        assert "producer: put jobs 500 to 999" in out
