"""Server-rendered charts: plain data the templates draw as inline SVG.

No JavaScript and no chart library: the SVG has no viewBox and places every
shape in percentages of its box, so bars stretch with the page while the axis
labels keep their font size on a phone and on a desktop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

# Vertical layout of the plot, in % of the SVG's height: the top gridline (the
# busiest day) sits below its label, the baseline above the date labels.
_PLOT_TOP = 14.0
_PLOT_BOTTOM = 82.0
# Share of a day's slot its bar fills; the rest is the gap to the next bar.
_BAR_FILL = 0.7


@dataclass(frozen=True)
class DayBar:
    day: dt.date
    count: int
    x: float  # left edge, % of the width
    width: float  # % of the width
    y: float  # top edge, % of the height
    height: float  # % of the height; 0 for a day without searches

    @property
    def label(self) -> str:
        return f"{_short_date(self.day)}: {self.count:,} keyword{_s(self.count)}"


@dataclass(frozen=True)
class DailyChart:
    bars: list[DayBar]
    total: int
    peak: int  # the busiest day's count (0 when there is none)
    busiest: dt.date | None  # the first day with the peak count
    first_label: str
    middle_label: str
    middle_x: float  # % of the width: centre of the middle day's bar
    last_label: str
    plot_top: float = _PLOT_TOP
    baseline: float = _PLOT_BOTTOM

    @property
    def summary(self) -> str:
        """The chart in one sentence: its accessible name."""
        days = len(self.bars)
        if not self.total:
            return f"Keywords searched per day, last {days} days: none yet"
        return (
            f"Keywords searched per day, last {days} days: {self.total:,} in total, "
            f"busiest {_short_date(self.busiest)} ({self.peak:,})"
        )


def _short_date(day: dt.date) -> str:
    return f"{day:%b} {day.day}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def daily_bar_chart(
    counts: Mapping[dt.date, int], *, today: dt.date, days: int = 30
) -> DailyChart:
    """One bar per day for the ``days`` days ending ``today`` (oldest first);
    days missing from ``counts`` are empty bars. Counts for days outside the
    window are ignored."""
    window = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    values = [max(0, int(counts.get(day, 0))) for day in window]
    peak = max(values, default=0)
    slot = 100 / days
    width = round(slot * _BAR_FILL, 3)
    plot = _PLOT_BOTTOM - _PLOT_TOP
    bars = []
    for i, (day, count) in enumerate(zip(window, values, strict=True)):
        height = round(plot * count / peak, 3) if peak else 0.0
        bars.append(
            DayBar(
                day=day,
                count=count,
                x=round(i * slot + (slot - width) / 2, 3),
                width=width,
                y=round(_PLOT_BOTTOM - height, 3),
                height=height,
            )
        )
    busiest = next((b.day for b in bars if peak and b.count == peak), None)
    return DailyChart(
        bars=bars,
        total=sum(values),
        peak=peak,
        busiest=busiest,
        first_label=_short_date(window[0]),
        middle_label=_short_date(window[days // 2]),
        middle_x=round((days // 2 + 0.5) * slot, 3),
        last_label="Today",
    )
