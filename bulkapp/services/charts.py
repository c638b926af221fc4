"""Server-side SVG chart geometry: the templates draw rectangles and labels, no JavaScript."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 22, 8


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
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    empty: bool = True


def nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^n at or above ``value`` (an axis that ends on a round number)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= value)


def stacked_bars(
    days: list[date],
    stacks: list[dict[str, float]],
    order: tuple[str, ...],
    *,
    width: int = 720,
    height: int = 220,
    label=lambda value: f"{value:,.0f}",
) -> Chart:
    """One bar per day, its segments stacked in ``order`` (keys missing from a stack count as zero)."""
    top = nice_max(max((sum(s.get(k, 0) for k in order) for s in stacks), default=0))
    plot_w, plot_h = width - PAD_LEFT, height - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 1.0)
    chart = Chart(width, height)
    for i, (day, stack) in enumerate(zip(days, stacks, strict=True)):
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        base = PAD_TOP + plot_h
        for key in order:
            value = float(stack.get(key, 0) or 0)
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            chart.bars.append(Bar(round(x, 1), round(base, 1), round(bar_w, 1), round(h, 1), key,
                                  f"{day:%d %b}: {label(value)} {key}"))  # fmt: skip
            chart.empty = False
    for f in (0, 0.5, 1):
        text = label(top * f)
        if all(text != shown for _, shown in chart.y_ticks):  # a half step that rounds to a whole one is left out
            chart.y_ticks.append((round(PAD_TOP + plot_h * (1 - f), 1), text))
    every = max(1, math.ceil(len(days) / 8))
    chart.x_labels = [
        (round(PAD_LEFT + i * slot + slot / 2, 1), f"{day:%d %b}") for i, day in enumerate(days) if i % every == 0
    ]
    return chart
