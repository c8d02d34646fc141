"""``conveyor bench --json / --from-json / --plot``: results saved, read back and drawn.

The plots are drawn from a small fixed run into ``tmp_path`` with the real matplotlib.
Without it those tests skip with the reason, except under ``CI=true``, where they fail:
CI installs the ``dev`` extra, which has the ``bench`` extra and so matplotlib.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.bench import Report, Result, _plot, read_json, write_json
from conveyor.cli import main


def _needs_matplotlib() -> None:
    why = _plot.unavailable()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, yet {why}: the dev extra must install it")
    pytest.skip(why)


def _row(group: str, scenario: str, contender: str, rate: float, *spread: float) -> Result:
    rates = (rate, *spread) if spread else (rate * 0.9, rate, rate * 1.2)
    return Result("asyncio", group, scenario, contender, rate, rates=rates)


def _fixed_run() -> Report:
    rows = [_row("memory", "put_nowait + get_nowait", "conveyor", 1.5e7)]
    for backlog, (bounded, unbounded) in {
        0: (44_000, 46_000),
        100_000: (41_000, 45_000),
        1_000_000: (39_000, 43_000),
    }.items():
        rows += [
            _row("sqlite", f"backlog {backlog:,}: bounded put (8 tasks)", "conveyor", bounded),
            _row(
                "sqlite", f"backlog {backlog:,}: bounded put (8 tasks)", "unbounded put", unbounded
            ),
        ]
    for procs, (ours, plain, streams) in {
        1: (6_600, 9_500, 8_900),
        4: (6_600, 3_900, 6_300),
        16: (6_900, 3_200, 3_500),
    }.items():
        name = f"{procs} process{'' if procs == 1 else 'es'} x 1 task: put, one at a time"
        rows += [
            _row("redis", name, "conveyor", ours),
            _row("redis", name, "redis-py list", plain),
            _row("redis", name, "redis-py streams", streams),
        ]
    rows += [
        Result("asyncio", "redis", "backlog 0: 8 tasks put", "saq", None, error="boom: it broke"),
        Result("asyncio", "redis", "p50 latency", "conveyor", 1 / 150e-6, unit="latency"),
        Result("asyncio", "redis", "5-byte item", "redis-py list", 1e6 / 7.1, 0.99, unit="memory"),
    ]
    return Report(
        command="conveyor bench --loop both --markdown benchmarks/RESULTS.md",
        started="2026-12-05 01:02 UTC",
        conveyor="0.1.0",
        python="3.11.7 (CPython)",
        system="Linux x86_64",
        cpus=2,
        rounds=3,
        load=[2.5, 3.0],
        rows=rows,
        notes=["redis: a private redis-server was started for this run"],
    )


def test_the_growth_scenarios_are_grouped_into_figures_by_their_names() -> None:
    found = {(f.group, f.kind): f for f in _plot.figures(_fixed_run().rows)}
    assert set(found) == {("sqlite", "backlog"), ("redis", "processes")}
    backlog = found["sqlite", "backlog"]
    assert backlog.filename == "sqlite-backlog.png"
    assert list(backlog.panels) == ["bounded put (8 tasks)"]
    curves = backlog.panels["bounded put (8 tasks)"]
    assert [c.contender for c in curves] == ["conveyor", "unbounded put"]
    assert {x: row.items_per_s for x, row in curves[0].points.items()} == {
        0: 44_000,
        100_000: 41_000,
        1_000_000: 39_000,
    }
    processes = found["redis", "processes"]
    assert list(processes.panels) == ["put, one at a time"]
    lines = processes.panels["put, one at a time"]
    assert [c.contender for c in lines] == ["conveyor", "redis-py list", "redis-py streams"]
    assert sorted(lines[2].points) == [1, 4, 16]
    # The failed saq row has no throughput, so no point anywhere.
    assert not any(f.group == "redis" and f.kind == "backlog" for f in found.values())


def test_the_plots_are_drawn_from_a_fixed_run(tmp_path: Path) -> None:
    _needs_matplotlib()
    from matplotlib.image import imread

    written = _plot.draw(_fixed_run(), tmp_path / "plots")
    assert [p.name for p in written] == ["sqlite-backlog.png", "redis-processes.png"]
    for path in written:
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        height, width, _ = imread(path).shape
        assert width >= 400
        assert height >= 300


def test_results_written_as_json_read_back_the_same(tmp_path: Path) -> None:
    report = _fixed_run()
    write_json(report, tmp_path / "run.json")
    assert read_json(tmp_path / "run.json") == report
    assert not list(tmp_path.glob("*.partial"))


def test_from_json_writes_the_markdown_and_the_plots_of_that_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _needs_matplotlib()
    write_json(_fixed_run(), tmp_path / "run.json")
    markdown = tmp_path / "RESULTS.md"
    status = main(
        [
            "bench",
            "--from-json",
            str(tmp_path / "run.json"),
            "--markdown",
            str(markdown),
            "--plot",
            str(tmp_path / "plots"),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert re.search(r"redis-py streams\s+3,500\s", out)
    assert f"wrote {tmp_path / 'plots' / 'redis-processes.png'}" in out
    text = markdown.read_text()
    # The run it quotes is the one that measured, not this command.
    assert text.startswith(
        "# Benchmark results\n\nProduced by `conveyor bench --loop both --markdown"
        " benchmarks/RESULTS.md` on 2026-12-05 01:02 UTC: conveyor 0.1.0, Python 3.11.7"
        " (CPython), Linux x86_64, 2 CPUs."
    )
    assert "![sqlite-backlog](plots/sqlite-backlog.png)" in text
    assert "![redis-processes](plots/redis-processes.png)" in text
    assert "Load average (1 minute) 2.5 to 3 at the start and the end of the run" in text
    assert "| backlog 0: bounded put (8 tasks) | conveyor | 44,000 |  |  |  |  |" in text
    assert "| backlog 0: 8 tasks put | saq | - (boom: it broke) |  |  |  |  |" in text
    # A latency and a memory footprint are shown in their own units.
    assert "| p50 latency | conveyor | 0.150 ms |" in text
    assert "| 5-byte item | redis-py list | 7.1 B/item | 0.99x |" in text


def test_without_matplotlib_the_bench_runs_and_says_the_plots_were_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module set to None in sys.modules cannot be imported: matplotlib is not there.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    markdown = tmp_path / "RESULTS.md"
    status = main(
        [
            "bench",
            "--group",
            "memory",
            "--scale",
            "0.002",
            "--rounds",
            "1",
            "--plot",
            str(tmp_path / "plots"),
            "--json",
            str(tmp_path / "run.json"),
            "--markdown",
            str(markdown),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    why = "matplotlib is not installed (pip install 'conveyor[bench]')"
    assert out.startswith(f"note: plots will be skipped: {why}\n")
    assert f"note: plots skipped: {why}" in out
    assert not (tmp_path / "plots").exists()
    assert "## Growth" not in markdown.read_text()
    rows = json.loads((tmp_path / "run.json").read_text())["rows"]
    assert {row["group"] for row in rows} == {"memory"}
    assert all(len(row["rates"]) == 1 for row in rows if row["items_per_s"] is not None)


def test_a_run_without_growth_scenarios_draws_nothing_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _needs_matplotlib()
    report = _fixed_run()
    report.rows = report.rows[:1]
    write_json(report, tmp_path / "run.json")
    plots = tmp_path / "plots"
    assert main(["bench", "--from-json", str(tmp_path / "run.json"), "--plot", str(plots)]) == 0
    assert "note: no plot drawn: no scenario of this run is a point of a growth curve" in (
        capsys.readouterr().out
    )
    assert not plots.exists()


def test_bad_results_files_and_missing_directories_are_refused_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not JSON at all")
    assert main(["bench", "--from-json", str(tmp_path / "notes.txt")]) == 2
    assert "conveyor bench: cannot read the results: " in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"rows": []}')
    assert main(["bench", "--from-json", str(tmp_path / "other.json")]) == 2
    assert "is not a results file of conveyor bench --json" in capsys.readouterr().err
    assert main(["bench", "--from-json", str(tmp_path / "absent.json")]) == 2
    assert "No such file" in capsys.readouterr().err
    for option in ("--json", "--markdown"):
        missing = tmp_path / "no-such-dir" / "out"
        assert main(["bench", "--group", "memory", option, str(missing)]) == 2
        assert f"cannot write {option} {missing}: no such directory" in capsys.readouterr().err


def test_the_benchmark_imports_matplotlib_only_to_draw() -> None:
    code = (
        "import sys\n"
        "import conveyor.bench, conveyor.bench._plot\n"
        "from conveyor.cli import build_parser\n"
        "build_parser().parse_args(['bench', '--plot', 'benchmarks'])\n"
        "print(sorted({'matplotlib', 'numpy'} & {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
