"""Charts of recorded metrics for the database dashboard, drawn server-side.

Plain data a template turns into inline SVG: no script, no chart library, no
CDN. The SVG's ``viewBox`` is a fixed 100 by 40 plot stretched to its box
(``preserveAspectRatio="none"``; strokes keep their width through
``vector-effect``); axis labels are HTML around it, so they keep their font
size at any width. Each chart has a one-sentence summary: its accessible name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 100.0
HEIGHT = 40.0
# Share of a day's slot its bar fills; the rest is the gap to the next bar.
_BAR_FILL = 0.7


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the bar's tooltip (an SVG <title>)


@dataclass(frozen=True)
class Chart:
    slug: str
    title: str
    unit: str
    summary: str
    empty: bool
    y_max_label: str = ""
    x_first_label: str = ""
    x_last_label: str = ""
    points: str = ""  # a line chart's polyline
    bars: tuple[Bar, ...] = ()
    latest_label: str = ""

    @property
    def width(self) -> float:
        return WIDTH

    @property
    def height(self) -> float:
        return HEIGHT


def _number(value: float, unit: str) -> str:
    text = f"{value:,.1f}" if value < 100 and value != int(value) else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def _when(moment: dt.datetime) -> str:
    return f"{moment:%b} {moment.day}, {moment:%H:%M}"


def _day(day: dt.date) -> str:
    return f"{day:%b} {day.day}"


def line_chart(
    slug: str,
    title: str,
    unit: str,
    series: Sequence[tuple[dt.datetime, float]],
    *,
    start: dt.datetime,
    end: dt.datetime,
) -> Chart:
    """A line of ``(moment, value)`` points between ``start`` and ``end``
    (x by time, so a gap in the recordings shows as a straight stretch);
    y from 0 to the largest value."""
    points = [(at, float(value)) for at, value in series if start <= at <= end]
    window = f"{_when(start)} to {_when(end)} (UTC)"
    if not points:
        return Chart(
            slug=slug,
            title=title,
            unit=unit,
            summary=f"{title}: no measurements recorded from {window}",
            empty=True,
            x_first_label=_when(start),
            x_last_label=_when(end),
        )
    span = (end - start).total_seconds() or 1.0
    peak = max(value for _, value in points) or 1.0
    coords = " ".join(
        f"{round(WIDTH * (at - start).total_seconds() / span, 2)},"
        f"{round(HEIGHT - HEIGHT * value / peak, 2)}"
        for at, value in points
    )
    values = [value for _, value in points]
    low, high, latest = min(values), max(values), values[-1]
    return Chart(
        slug=slug,
        title=title,
        unit=unit,
        summary=(
            f"{title}, {window}: {len(points)} measurements, lowest "
            f"{_number(low, unit)}, highest {_number(high, unit)}, latest "
            f"{_number(latest, unit)}"
        ),
        empty=False,
        y_max_label=_number(peak, unit),
        x_first_label=_when(start),
        x_last_label=_when(end),
        points=coords,
        latest_label=f"latest {_number(latest, unit)}",
    )


def daily_bar_chart(
    slug: str,
    title: str,
    unit: str,
    counts: Mapping[dt.date, float],
    *,
    today: dt.date,
    days: int = 30,
) -> Chart:
    """One bar per day for the ``days`` days ending ``today`` (oldest first).
    A day without a recorded value has no bar; ``empty`` when no day has one."""
    window = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    recorded = {day: counts[day] for day in window if day in counts}
    period = f"last {days} days ({_day(window[0])} to {_day(today)})"
    if not recorded:
        return Chart(
            slug=slug,
            title=title,
            unit=unit,
            summary=f"{title}: nothing recorded yet for the {period}",
            empty=True,
            x_first_label=_day(window[0]),
            x_last_label="Today",
        )
    peak = max(recorded.values()) or 1.0
    slot = WIDTH / days
    width = round(slot * _BAR_FILL, 3)
    bars = []
    for i, day in enumerate(window):
        if day not in recorded:
            continue
        value = recorded[day]
        height = round(HEIGHT * value / peak, 3)
        bars.append(
            Bar(
                x=round(i * slot + (slot - width) / 2, 3),
                y=round(HEIGHT - height, 3),
                width=width,
                height=height,
                label=f"{_day(day)}: {value:,.0f} {unit}",
            )
        )
    total = sum(recorded.values())
    busiest = max(recorded, key=lambda day: (recorded[day], day))
    return Chart(
        slug=slug,
        title=title,
        unit=unit,
        summary=(
            f"{title}, {period}: {total:,.0f} {unit} on {len(recorded)} recorded "
            f"days, busiest {_day(busiest)} ({recorded[busiest]:,.0f})"
        ),
        empty=False,
        y_max_label=f"{peak:,.0f}",
        x_first_label=_day(window[0]),
        x_last_label="Today",
        bars=tuple(bars),
        latest_label=f"today {recorded.get(today, 0):,.0f}",
    )
