"""The SQLite scenarios across processes of ``conveyor bench`` run end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.bench import sqlite
from conveyor.bench._scenario import BenchOptions

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(
    "name",
    [
        "4 processes x 1 task: put, one at a time",
        "4 processes x 1 task: get + ack, one at a time",
        "cross-process put -> get: p99 latency",
    ],
)
def test_a_scenario_across_processes_runs_every_contender(name: str, tmp_path: Path) -> None:
    options = BenchOptions(scale=0.01, workdir=tmp_path)
    (scenario,) = [s for s in sqlite.scenarios(options) if s.name == name]
    for contender in scenario.contenders:
        seconds = contender.run(40)
        assert 0 < seconds < 60, contender.name
