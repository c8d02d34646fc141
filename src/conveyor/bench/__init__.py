"""The side-by-side benchmark behind ``conveyor bench`` (needs the ``bench`` extra).

Each group module (``memory``, ``thread``, ``sqlite``, ``redis``, ``cluster``) describes
scenarios (see ``_scenario.py``).  The runner measures every contender of a scenario in the same
process, in alternating rounds whose order rotates, so that noise from the machine
falls on all of them alike.  It reports each contender's median throughput and, for
every other contender, the median over rounds of the per-round ratio conveyor/other.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TextIO

from . import _plot
from ._report import Report, Result, read_json, shown, times, to_markdown, write_json
from ._scenario import BenchOptions, Contender, Scenario

__all__ = [
    "GROUPS",
    "BenchOptions",
    "Contender",
    "Report",
    "Result",
    "Scenario",
    "measure",
    "private_redis",
    "read_json",
    "run_benchmarks",
    "to_markdown",
    "write_json",
]

GROUPS = ("memory", "thread", "sqlite", "redis", "cluster")
ROUNDS = 7
QUICK_ROUNDS = 3
QUICK_SCALE = 0.1


def measure(scenario: Scenario, n: int, rounds: int, loop: str = "asyncio") -> list[Result]:
    """Run every contender of *scenario* for *rounds* rounds and summarise them.

    Each contender first runs once on a tenth of *n*, untimed, to warm caches.  Round
    ``r`` starts with contender ``r mod k`` so that none always runs first or last.

    Args:
        scenario: The workload and its contenders (conveyor first).
        n: Items per round.
        rounds: How many timed rounds.
        loop: The event loop's name, for the rows.

    Returns:
        One row per contender, conveyor's first.
    """
    contenders = list(scenario.contenders)
    failed: dict[str, str] = {}
    times: dict[str, list[float]] = {c.name: [] for c in contenders}

    def attempt(contender: Contender, items: int) -> float | None:
        if contender.name in failed:
            return None
        gc.collect()
        try:
            return contender.run(items)
        except Exception as exc:  # one broken contender must not end the whole run
            failed[contender.name] = f"{type(exc).__name__}: {exc}"
            return None

    for contender in contenders:
        attempt(contender, max(1, n // 10))
    for r in range(rounds):
        shift = r % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            seconds = attempt(contender, n)
            if seconds is not None:
                times[contender.name].append(max(seconds, 1e-9))

    ours = contenders[0].name
    rows: list[Result] = []
    for contender in contenders:
        name = contender.name
        goal = scenario.goals.get(name)
        if name in failed:
            rows.append(
                Result(
                    loop,
                    scenario.group,
                    scenario.name,
                    name,
                    None,
                    None,
                    goal,
                    failed[name],
                    unit=scenario.unit,
                )
            )
            continue
        rates = tuple(n / t for t in times[name])
        ratios: tuple[float, ...] = ()
        if name != ours and ours not in failed:
            ratios = tuple(
                other / mine for mine, other in zip(times[ours], times[name], strict=False)
            )
        rows.append(
            Result(
                loop,
                scenario.group,
                scenario.name,
                name,
                statistics.median(rates),
                statistics.median(ratios) if ratios else None,
                goal,
                rates=rates,
                ratios=ratios,
                unit=scenario.unit,
            )
        )
    for name, why in scenario.missing.items():
        rows.append(
            Result(
                loop, scenario.group, scenario.name, name, None, None, None, why, unit=scenario.unit
            )
        )
    return rows


# -- output -----------------------------------------------------------------------------

_COLUMNS = ("loop", "scenario", "contender", "items/s", "ratio", "goal", "met?")
_WIDTHS = (7, 46, 21, 14, 8, 8, 4)


def _console_cells(row: Result) -> tuple[str, ...]:
    rate = shown(row)
    ratio = "" if row.ratio is None else times(row.ratio)
    goal = "" if row.goal is None else f">= {row.goal:.3g}x"
    met = {None: "", True: "yes", False: "NO"}[row.met]
    return (row.loop, row.scenario, row.contender, rate, ratio, goal, met)


def _print_header(out: TextIO) -> None:
    print("  ".join(c.ljust(w) for c, w in zip(_COLUMNS, _WIDTHS, strict=True)), file=out)
    print("  ".join("-" * w for w in _WIDTHS), file=out)


def _print_rows(rows: Sequence[Result], out: TextIO) -> None:
    for row in rows:
        cells = _console_cells(row)
        line = "  ".join(
            cell.rjust(w) if i in (3, 4) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, _WIDTHS, strict=True))
        )
        print(line.rstrip(), file=out, flush=True)


# -- Redis --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def private_redis(workdir: Path, timeout: float = 10.0) -> Iterator[str | None]:
    """Start a throw-away ``redis-server`` on a free local port, and stop it afterwards.

    Args:
        workdir: Where the server may write (it is started without persistence).
        timeout: Seconds to wait for the server to accept connections.

    Yields:
        The server's URL, or ``None`` when no ``redis-server`` binary is installed.

    Raises:
        RuntimeError: The server did not start within *timeout*.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the command ------------------------------------------------------------------------


def _cluster_refused(url: str) -> str | None:
    # Why --cluster URL cannot be used, if it cannot: said before anything runs.
    try:
        from ._cluster_nodes import refused
    except ImportError as exc:  # redis-py missing: the group would be left out anyway
        return f"--cluster needs redis-py: {exc}"
    return refused(url)


def _load_group(group: str, notes: list[str]) -> ModuleType | None:
    name = f"{__name__}.{group}"
    if importlib.util.find_spec(name) is None:
        notes.append(f"{group} left out: its scenarios are not in this version")
        return None
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        notes.append(f"{group} left out: {exc}")
        return None


def run_benchmarks(
    *,
    groups: Sequence[str] = GROUPS,
    loops: Sequence[str] = ("asyncio",),
    quick: bool = False,
    redis_url: str | None = None,
    cluster_url: str | None = None,
    markdown: str | os.PathLike[str] | None = None,
    rounds: int | None = None,
    scale: float = 1.0,
    out: TextIO | None = None,
    command: str = "conveyor bench",
    json_file: str | os.PathLike[str] | None = None,
    plot_dir: str | os.PathLike[str] | None = None,
    from_json: str | os.PathLike[str] | None = None,
) -> int:
    """Run the benchmark and print the table (what ``conveyor bench`` does).

    Args:
        groups: Which scenario groups to run, among ``GROUPS``.
        loops: ``"asyncio"`` and/or ``"uvloop"``.
        quick: Fewer rounds and a tenth of the items.
        redis_url: A Redis server for the ``redis`` group; ``None`` starts a private
            ``redis-server`` if one is installed, else leaves the group out.
        cluster_url: A Redis Cluster, ``redis+cluster://host:port[,host:port,...]``, for
            the ``cluster`` group; ``None`` leaves the group out.
        markdown: A file to also write the table to, as Markdown.
        rounds: Timed rounds per scenario (default 7, or 3 when *quick*).
        scale: Multiplies every scenario's item count (on top of *quick*).
        out: Where to print; ``sys.stdout`` by default.
        command: The command line to quote in the Markdown file.
        json_file: A file to also write every row to, as JSON (rewritten after each
            scenario, so that a run stopped half-way keeps what it measured).
        plot_dir: A directory to draw the growth curves into, as PNG files (needs
            matplotlib; without it the run goes on and says the plots were skipped).
        from_json: Run nothing: read the rows of an earlier run from this file (written
            by *json_file*) and print and write them as that run would have.

    Returns:
        The exit status: 0, or 2 for bad usage (an unknown group or loop, a results
        file that cannot be read, a *cluster_url* that is not a ``redis+cluster://``
        URL).
    """
    out = out if out is not None else sys.stdout
    for option, path in (("--markdown", markdown), ("--json", json_file)):
        # Refused now, not after a run that may take an hour.
        if path is not None and not Path(path).absolute().parent.is_dir():
            print(
                f"conveyor bench: cannot write {option} {path}: no such directory",
                file=sys.stderr,
            )
            return 2
    if cluster_url is not None and (why := _cluster_refused(cluster_url)) is not None:
        print(f"conveyor bench: {why}", file=sys.stderr)
        return 2
    if from_json is not None:
        try:
            report = read_json(from_json)
        except (OSError, ValueError) as exc:
            print(f"conveyor bench: cannot read the results: {exc}", file=sys.stderr)
            return 2
        print(f"\nconveyor bench: the results of `{report.command}`, {report.started}\n", file=out)
        _print_header(out)
        _print_rows(report.rows, out)
    else:
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            print(
                f"conveyor bench: unknown group {', '.join(unknown)};"
                f" choose from {', '.join(GROUPS)}",
                file=sys.stderr,
            )
            return 2
        bad_loops = [name for name in loops if name not in ("asyncio", "uvloop")]
        if bad_loops or not loops:
            print(f"conveyor bench: unknown loop {', '.join(bad_loops)}", file=sys.stderr)
            return 2
        rounds = rounds if rounds is not None else (QUICK_ROUNDS if quick else ROUNDS)
        if rounds < 1:
            print("conveyor bench: --rounds must be at least 1", file=sys.stderr)
            return 2
        if plot_dir is not None and (why := _plot.unavailable()) is not None:
            # Said before a run that may take an hour, not only after it.
            print(f"note: plots will be skipped: {why}", file=out)
        report = Report.begin(command, rounds)
        _run(
            report,
            groups=groups,
            loops=loops,
            scale=scale * (QUICK_SCALE if quick else 1.0),
            redis_url=redis_url,
            cluster_url=cluster_url,
            out=out,
            json_file=json_file,
        )
        report.finish()
    return _write(report, out, markdown=markdown, json_file=json_file, plot_dir=plot_dir)


def _run(
    report: Report,
    *,
    groups: Sequence[str],
    loops: Sequence[str],
    scale: float,
    redis_url: str | None,
    cluster_url: str | None,
    out: TextIO,
    json_file: str | os.PathLike[str] | None,
) -> None:
    # Measures every scenario of every group on every loop into the report.
    notes = report.notes
    usable_loops = []
    for name in loops:
        if name == "uvloop" and importlib.util.find_spec("uvloop") is None:
            notes.append("uvloop left out: not installed (pip install uvloop)")
        else:
            usable_loops.append(name)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-bench-")))
        modules: dict[str, ModuleType] = {}
        for group in groups:
            module = _load_group(group, notes)
            if module is not None:
                modules[group] = module
        if "redis" in modules and redis_url is None:
            redis_url = stack.enter_context(private_redis(workdir))
            if redis_url is None:
                del modules["redis"]
                notes.append("redis left out: no --redis-url given and no redis-server installed")
            else:
                notes.append("redis: a private redis-server was started for this run")
        if "cluster" in modules and cluster_url is None:
            del modules["cluster"]
            notes.append(
                "cluster left out: it needs --cluster URL, the redis+cluster:// URL of a"
                " Redis Cluster (7 or newer) with 3 primaries or more"
            )
        for loop in usable_loops:
            print(
                f"\nconveyor bench: event loop {loop}, {report.rounds} rounds, scale {scale:g}\n",
                file=out,
            )
            _print_header(out)
            for group, module in modules.items():
                loop_dir = workdir / f"{loop}-{group}"
                loop_dir.mkdir(exist_ok=True)
                options = BenchOptions(
                    loop=loop,
                    scale=scale,
                    workdir=loop_dir,
                    redis_url=redis_url,
                    cluster_url=cluster_url,
                )
                try:
                    found: list[Scenario] = module.scenarios(options)
                except Exception as exc:  # a broken group is reported, the others still run
                    notes.append(f"{group} ({loop}) failed to set up: {type(exc).__name__}: {exc}")
                    continue
                for scenario in found:
                    n = max(1, round(scenario.n * scale))
                    result = measure(scenario, n, report.rounds, loop)
                    _print_rows(result, out)
                    report.rows.extend(result)
                    if scenario.remarks is not None:
                        notes.extend(scenario.remarks())
                    if json_file is not None:
                        write_json(report, json_file)


def _write(
    report: Report,
    out: TextIO,
    *,
    markdown: str | os.PathLike[str] | None,
    json_file: str | os.PathLike[str] | None,
    plot_dir: str | os.PathLike[str] | None,
) -> int:
    # The summary, then every file asked for.
    for note in report.notes:
        print(f"note: {note}", file=out)
    rows = report.rows
    missed = [r for r in rows if r.met is False]
    print(f"\n{sum(r.met is True for r in rows)} goals met, {len(missed)} missed.", file=out)
    if json_file is not None:
        write_json(report, json_file)
        print(f"wrote {json_file}", file=out)
    plots: list[Path] = []
    if plot_dir is not None:
        why = _plot.unavailable()
        if why is not None:
            print(f"note: plots skipped: {why}", file=out)
        elif not _plot.figures(rows):
            print(
                "note: no plot drawn: no scenario of this run is a point of a growth curve"
                " ('backlog N: ...' or 'N processes ...')",
                file=out,
            )
        else:
            plots = _plot.draw(report, plot_dir)
            for path in plots:
                print(f"wrote {path}", file=out)
    if markdown is not None:
        document = to_markdown(report, plots, relative_to=Path(markdown).absolute().parent)
        Path(markdown).write_text(document, encoding="utf-8")
        print(f"wrote {markdown}", file=out)
    return 0
