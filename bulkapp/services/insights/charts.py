"""Server-side chart geometry: the templates draw SVG bars and HTML labels, no JavaScript.

The plot is an SVG stretched to its box, so its coordinates are plot units; the axis labels are HTML placed by
percentage, so they keep a readable font size at any width (SVG text would shrink with the plot on a phone)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

PAD_TOP = 6  # plot units kept free above the tallest bar, so the top tick label is not cut


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)  # (percent from the top, label)
    x_labels: list[tuple[float, str]] = field(default_factory=list)  # (percent from the left, label)
    empty: bool = True


def nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above ``value`` (an axis that ends on a round number)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= value)


def _short_day(day: date) -> str:
    return f"{day:%d %b}"


def stacked_bars(
    days: list[date],
    stacks: list[dict[str, float]],
    order: tuple[str, ...],
    *,
    width: int = 600,
    height: int = 160,
    label: Callable[[float], str] = lambda value: f"{value:,.0f}",
    day_label: Callable[[date], str] = _short_day,
    series_label: Callable[[str], str] = str,
) -> Chart:
    """One bar per day, its segments stacked in ``order`` (keys missing from a stack count as zero).

    ``day_label`` and ``series_label`` word the axis and the bar titles (the caller passes the page's language)."""
    top = nice_max(max((sum(s.get(k, 0) for k in order) for s in stacks), default=0))
    plot_h = height - PAD_TOP
    slot = width / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    chart = Chart(width, height)
    for i, (day, stack) in enumerate(zip(days, stacks, strict=True)):
        x = i * slot + (slot - bar_w) / 2
        base = float(height)
        for key in order:
            value = float(stack.get(key, 0) or 0)
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            chart.bars.append(Bar(round(x, 1), round(base, 1), round(bar_w, 1), round(h, 1), key,
                                  f"{day_label(day)}: {label(value)} {series_label(key)}"))  # fmt: skip
            chart.empty = False
    for f in (0, 0.5, 1):
        text = label(top * f)
        if all(text != shown for _, shown in chart.y_ticks):  # a half step that rounds to a whole one is left out
            chart.y_ticks.append((round(100 * (PAD_TOP + plot_h * (1 - f)) / height, 2), text))
    every = max(1, math.ceil(len(days) / 6))
    chart.x_labels = [
        (round(100 * (i * slot + slot / 2) / width, 2), day_label(day)) for i, day in enumerate(days) if i % every == 0
    ]
    return chart
