"""What a benchmark run produced, and how it is written down: Markdown and JSON.

A ``Report`` holds every row of a run with the details a reader needs to judge it (the
command, when it ran, the versions, the machine and how busy it was).  ``--json`` saves
it; ``--from-json`` reads it back, so the Markdown and the plots of one long run can be
written again without running it again.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Report", "Result", "read_json", "shown", "times", "to_markdown", "write_json"]

_FORMAT = 1  # of the JSON file; bumped when a field changes meaning


@dataclasses.dataclass(frozen=True)
class Result:
    """One row of the table: a contender's throughput in one scenario.

    Attributes:
        loop: The event loop the scenario ran on.
        group: The scenario's group.
        scenario: The scenario's name.
        contender: The contender's name.
        items_per_s: Median throughput over the rounds.
        ratio: Median over rounds of conveyor's throughput divided by this contender's
            (``None`` on conveyor's own row, or when this contender failed).
        goal: The ratio conveyor aims for against this contender, if any.
        error: Why the contender has no numbers, if it failed.
        rates: The throughput of each timed round, in the order they ran.
        ratios: The per-round ratios the median *ratio* is taken from.
        unit: How *items_per_s* is shown (see ``Scenario.unit``).
    """

    loop: str
    group: str
    scenario: str
    contender: str
    items_per_s: float | None
    ratio: float | None = None
    goal: float | None = None
    error: str | None = None
    rates: tuple[float, ...] = ()
    ratios: tuple[float, ...] = ()
    unit: str = "items/s"

    @property
    def met(self) -> bool | None:
        """Whether the goal is met (``None`` when there is no goal or no ratio)."""
        if self.goal is None or self.ratio is None:
            return None
        return self.ratio >= self.goal


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on Windows
        return None


@dataclasses.dataclass
class Report:
    """A benchmark run: its rows, and what a reader needs to judge them.

    Attributes:
        command: The command line that ran it (passwords redacted).
        started: When it started, e.g. ``"2026-12-05 01:02 UTC"``.
        conveyor: conveyor's version.
        python: The interpreter, e.g. ``"3.11.7 (CPython)"``.
        system: The operating system and architecture, e.g. ``"Linux x86_64"``.
        cpus: The machine's CPU count.
        rounds: Timed rounds per scenario.
        load: The 1-minute load average at the start and, once finished, at the end
            (empty where the system has none).
        rows: Every row, in the order measured.
        notes: Remarks (groups left out, and why).
    """

    command: str
    started: str
    conveyor: str
    python: str
    system: str
    cpus: int | None
    rounds: int
    load: list[float] = dataclasses.field(default_factory=list)
    rows: list[Result] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def begin(cls, command: str, rounds: int) -> Report:
        """Return an empty report of a run starting now on this machine."""
        import conveyor

        load = _load_average()
        return cls(
            command=command,
            started=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            conveyor=conveyor.__version__,
            python=f"{platform.python_version()} ({platform.python_implementation()})",
            system=f"{platform.system()} {platform.machine()}",
            cpus=os.cpu_count(),
            rounds=rounds,
            load=[] if load is None else [load],
        )

    def finish(self) -> None:
        """Record the load average at the end of the run."""
        load = _load_average()
        if load is not None and len(self.load) == 1:
            self.load.append(load)


def write_json(report: Report, path: str | os.PathLike[str]) -> None:
    """Write *report* to *path* as JSON (what ``--json FILE`` writes).

    The file is replaced whole (written beside it, then renamed), so that a reader, or
    a run stopped half-way, never sees half a file.

    Args:
        report: The run so far.
        path: The file to write.
    """
    document = {"format": _FORMAT, **dataclasses.asdict(report)}
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    partial.replace(target)


def read_json(path: str | os.PathLike[str]) -> Report:
    """Read a report that ``write_json`` wrote.

    Args:
        path: The file.

    Returns:
        The report, as it was written.

    Raises:
        ValueError: The file is not such a report (the message says why).
        OSError: The file cannot be read.
    """
    try:
        document: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a results file of conveyor bench --json")
    try:
        rows = [
            Result(
                **{
                    **row,
                    "rates": tuple(row.get("rates", ())),
                    "ratios": tuple(row.get("ratios", ())),
                }
            )
            for row in document.pop("rows")
        ]
        document.pop("format")
        return Report(**document, rows=rows)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a results file of conveyor bench --json: {exc}") from exc


# -- Markdown ---------------------------------------------------------------------------


def times(ratio: float) -> str:
    """Return *ratio* as ``"1.23x"``, rounded down.

    Rounded down so that a ratio shown as reaching its goal really reaches it.
    """
    return f"{math.floor(ratio * 100) / 100:.2f}x"


def _spread(values: Sequence[float]) -> float | None:
    # (slowest - fastest) / median: how far apart the rounds of one measurement were.
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def _ratio_range(row: Result) -> str:
    if len(row.ratios) < 2:
        return ""
    return f"{times(min(row.ratios))[:-1]}-{times(max(row.ratios))}"


def _noise(report: Report) -> list[str]:
    spreads = [
        (spread, row)
        for row in report.rows
        if row.contender == "conveyor"
        for spread in [_spread(row.rates)]
        if spread is not None
    ]
    lines = []
    if report.load:
        during = " to ".join(f"{load:g}" for load in report.load)
        lines.append(
            f"- Load average (1 minute) {during} at the start and the end of the run, on"
            f" {report.cpus} CPUs (the benchmark itself keeps about one busy)."
        )
    if spreads:
        spreads.sort(key=lambda pair: pair[0])
        median = statistics.median(spread for spread, _ in spreads)
        worst, row = spreads[-1]
        lines.append(
            f"- conveyor's own throughput from round to round (slowest to fastest, over"
            f" the median): {median:.0%} in the median scenario, {worst:.0%} at worst"
            f" ({row.scenario}, {row.loop})."
        )
    if lines:
        lines.append(
            "- Each ratio is taken round by round, both contenders measured back to back,"
            " so a slow spell of the machine falls on both; the *ratio range* column shows"
            " the rounds' lowest and highest. Judge a goal by the range as well as the"
            " median."
        )
    return lines


def shown(row: Result) -> str:
    """Return *row*'s rate as the tables show it, in its scenario's unit."""
    if row.error is not None:
        return f"- ({row.error})"
    if row.items_per_s is None:
        return "-"
    if row.unit == "latency":
        return f"{1000 / row.items_per_s:.3f} ms"
    if row.unit == "memory":
        return f"{1e6 / row.items_per_s:.1f} B/item"
    return f"{row.items_per_s:,.0f}"


def _cells(row: Result) -> tuple[str, ...]:
    rate = shown(row)
    ratio = "" if row.ratio is None else times(row.ratio)
    goal = "" if row.goal is None else f">= {row.goal:.3g}x"
    met = {None: "", True: "yes", False: "NO"}[row.met]
    return (row.scenario, row.contender, rate, ratio, _ratio_range(row), goal, met)


def to_markdown(report: Report, plots: Sequence[Path] = (), relative_to: Path | None = None) -> str:
    """Return the results as a Markdown document (what ``--markdown FILE`` writes).

    Args:
        report: The run.
        plots: Pictures to show under the goals (the growth curves).
        relative_to: The directory the document will be in, so that the pictures'
            links are relative to it.

    Returns:
        The document.
    """
    rows = report.rows
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{report.command}` on {report.started}: conveyor {report.conveyor},"
        f" Python {report.python}, {report.system}, {report.cpus} CPUs.",
        "",
        f"Contenders run in alternating rounds in one process ({report.rounds} timed rounds"
        " each); *items/s* is the median throughput over the rounds, *ratio* the median of"
        " the per-round ratios conveyor / contender (above 1: conveyor is faster).",
        "",
    ]
    loops = list(dict.fromkeys(row.loop for row in rows))
    goals = {(r.group, r.scenario, r.contender): r.goal for r in rows if r.goal is not None}
    if goals:
        lines += ["## Goals", ""]
        lines.append("| scenario | against | goal | " + " | ".join(loops) + " |")
        lines.append("|---|---|---|" + "---:|" * len(loops))
        for (group, scenario, contender), goal in goals.items():
            verdicts: list[str] = []
            for loop in loops:
                found = [
                    r
                    for r in rows
                    if (r.loop, r.group, r.scenario, r.contender)
                    == (loop, group, scenario, contender)
                ]
                if not found or found[0].ratio is None:
                    verdicts.append("-")
                else:
                    verdict = "met" if found[0].met else "**missed**"
                    verdicts.append(f"{times(found[0].ratio)} {verdict}")
            lines.append(
                f"| {scenario} | {contender} | >= {goal:.3g}x | " + " | ".join(verdicts) + " |"
            )
        lines.append("")
    if plots:
        lines += ["## Growth", ""]
        for plot in plots:
            link = Path(os.path.relpath(plot, relative_to)) if relative_to else plot
            lines += [f"![{plot.stem}]({link.as_posix()})", ""]
    noise = _noise(report)
    if noise:
        lines += ["## Noise", "", *noise, ""]
    for loop in loops:
        lines += [f"## Event loop: {loop}", ""]
        lines.append("| scenario | contender | items/s | ratio | ratio range | goal | met? |")
        lines.append("|---|---|---:|---:|---:|---|---|")
        for row in rows:
            if row.loop == loop:
                cells = _cells(row)
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    return "\n".join(lines)
