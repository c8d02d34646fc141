"""The growth curves of a benchmark run, drawn with matplotlib (``conveyor bench --plot``).

A scenario is a point of a curve when its name says where: ``"backlog 100,000: WHAT"``
(items already queued) or ``"16 processes x 1 task: WHAT"`` (processes working the queue
at once); the names the tables show, so a new scenario named that way is drawn without
more wiring.  Each group and kind makes one picture, ``GROUP-backlog.png`` or
``GROUP-processes.png`` (with ``-uvloop`` for that loop): one panel per *WHAT*, items/s
against the backlog or the processes, one line per contender, a bar from the slowest to
the fastest round under each median.

matplotlib is optional (the ``bench`` extra): ``unavailable()`` says why it cannot draw,
and nothing here imports it before ``draw()``.  The core never imports this module.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._report import Report, Result

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Curve", "Figure", "draw", "figures", "unavailable"]

_KINDS = (
    ("backlog", re.compile(r"^backlog ([\d,]+): (.+)$"), "items already queued"),
    ("processes", re.compile(r"^(\d+) process(?:es)?\b[^:]*: (.+)$"), "processes"),
)
_GROUP_TITLES = {"sqlite": "SQLite", "redis": "Redis", "memory": "In memory", "thread": "Threads"}


@dataclasses.dataclass
class Curve:
    """One contender's line in one panel: items/s at each x.

    Attributes:
        contender: The contender's name (the legend's label).
        points: x -> the row measured there.
    """

    contender: str
    points: dict[int, Result] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Figure:
    """One picture: a group's scenarios of one kind, on one event loop.

    Attributes:
        loop: The event loop.
        group: The scenarios' group.
        kind: ``"backlog"`` or ``"processes"``: what the x axis counts.
        x_label: The x axis's label.
        panels: Panel title (the scenario's *WHAT*) -> its curves, in the order measured.
    """

    loop: str
    group: str
    kind: str
    x_label: str
    panels: dict[str, list[Curve]] = dataclasses.field(default_factory=dict)

    @property
    def filename(self) -> str:
        """Return the picture's file name, e.g. ``"redis-backlog.png"``."""
        suffix = "" if self.loop == "asyncio" else f"-{self.loop}"
        return f"{self.group}-{self.kind}{suffix}.png"

    @property
    def title(self) -> str:
        """Return the picture's title."""
        group = _GROUP_TITLES.get(self.group, self.group)
        against = "backlog" if self.kind == "backlog" else "processes"
        return f"{group}: items/s against {against} ({self.loop} event loop)"


def figures(rows: Sequence[Result]) -> list[Figure]:
    """Return the pictures the rows make, without drawing them.

    Args:
        rows: A run's rows; those of scenarios not named as a point of a curve, and
            those with no throughput (a contender that failed), are left out.

    Returns:
        One figure per event loop, group and kind that has any point, in the order
        measured.
    """
    found: dict[tuple[str, str, str], Figure] = {}
    for row in rows:
        if row.items_per_s is None:
            continue
        for kind, pattern, x_label in _KINDS:
            match = pattern.match(row.scenario)
            if match is None:
                continue
            x, panel = int(match.group(1).replace(",", "")), match.group(2)
            key = (row.loop, row.group, kind)
            figure = found.setdefault(key, Figure(row.loop, row.group, kind, x_label))
            curves = figure.panels.setdefault(panel, [])
            curve = next((c for c in curves if c.contender == row.contender), None)
            if curve is None:
                curve = Curve(row.contender)
                curves.append(curve)
            curve.points[x] = row
            break
    return list(found.values())


def unavailable() -> str | None:
    """Return why plots cannot be drawn here, or ``None`` when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'conveyor[bench]')"
    return None


def _label(kind: str, x: int) -> str:
    if kind != "backlog" or x < 1000:
        return str(x)
    if x >= 1_000_000 and x % 100_000 == 0:
        return f"{x / 1_000_000:g}M"
    return f"{x / 1000:g}k"


def _per_second(value: float, _position: object = None) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _draw_panel(
    axes: Axes, kind: str, title: str, curves: list[Curve], colors: dict[str, str]
) -> None:
    from matplotlib.ticker import FuncFormatter

    xs = sorted({x for curve in curves for x in curve.points})
    # Evenly spaced, whatever the values: a backlog of 0 has no place on a log axis, and
    # 1 / 4 / 16 read best side by side.
    position = {x: i for i, x in enumerate(xs)}
    for curve in curves:
        points = sorted(curve.points.items())
        at = [position[x] for x, _ in points]
        medians = [row.items_per_s or 0.0 for _, row in points]
        low = [m - min(row.rates, default=m) for m, (_, row) in zip(medians, points, strict=True)]
        high = [max(row.rates, default=m) - m for m, (_, row) in zip(medians, points, strict=True)]
        ours = curve.contender == "conveyor"
        axes.errorbar(
            at,
            medians,
            yerr=[low, high],
            label=curve.contender,
            color=colors[curve.contender],
            marker="o",
            linewidth=2.5 if ours else 1.5,
            capsize=3,
            zorder=3 if ours else 2,
        )
    axes.set_title(title, fontsize=10)
    axes.set_xticks(range(len(xs)), [_label(kind, x) for x in xs])
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(FuncFormatter(_per_second))
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)


def draw(report: Report, directory: str | os.PathLike[str]) -> list[Path]:
    """Draw the growth curves of *report* into *directory*, one PNG file per figure.

    Args:
        report: The run (its rows and details; the details go under each picture).
        directory: Where to write the pictures; made if missing.

    Returns:
        The files written, in the order of ``figures()``.

    Raises:
        ImportError: matplotlib is not installed (``unavailable()`` says so first).
    """
    # The object interface, not pyplot: no global backend or figure state to change in a
    # program that imports this.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as Picture

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f"]
    written = []
    for figure in figures(report.rows):
        names = list(
            dict.fromkeys(c.contender for curves in figure.panels.values() for c in curves)
        )
        names.sort(key=lambda name: name != "conveyor")
        colors = {name: palette[i % len(palette)] for i, name in enumerate(names)}
        count = len(figure.panels)
        columns = min(2, count)
        rows = (count + columns - 1) // columns
        picture = Picture(figsize=(5.2 * columns, 3.6 * rows + 0.9), layout="constrained")
        FigureCanvasAgg(picture)
        grid = picture.subplots(rows, columns, squeeze=False)
        for axes, (title, curves) in zip(grid.flat, figure.panels.items(), strict=False):
            _draw_panel(axes, figure.kind, title, curves, colors)
            axes.set_xlabel(figure.x_label)
            axes.set_ylabel("items/s")
        for axes in list(grid.flat)[count:]:
            axes.set_visible(False)
        picture.suptitle(figure.title)
        picture.supxlabel(
            f"Median of {report.rounds} rounds; bars from the slowest to the fastest round."
            f"  conveyor bench, {report.started}, Python {report.python}, {report.cpus} CPUs",
            fontsize=8,
        )
        path = target / figure.filename
        picture.savefig(path, dpi=90)
        written.append(path)
    return written
