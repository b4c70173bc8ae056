"""Chart geometry: turns a page's numbers into pixel rectangles, lines and labels for inline SVG.

Only arithmetic lives here (scales, nice axis ticks, bar positions); the templates draw the shapes,
so every label passes through Jinja's autoescaping. Nothing here reads frames or writes files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 720
"""Width of every chart's viewBox; the page scales it to the column width."""


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    title: str
    """Tooltip text (an SVG <title>), also read by screen readers."""
    css_class: str = "bar"


@dataclass(frozen=True)
class Gridline:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    css_class: str = "label"


@dataclass(frozen=True)
class Chart:
    """One SVG chart: its viewBox size, its marks (drawn data) and its axis/legend labels."""

    chart_id: str
    description: str
    height: float
    rects: tuple[Rect, ...]
    labels: tuple[Label, ...]
    gridlines: tuple[Gridline, ...] = ()
    width: float = WIDTH


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round axis ticks covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def short_amount(value: float) -> str:
    """An axis label: 1.2M, 350k, 900."""
    size = abs(value)
    if size >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if size >= 1_000:
        return f"{value / 1_000:.1f}k".replace(".0k", "k")
    return f"{value:.0f}"


@dataclass(frozen=True)
class MonthValue:
    """One month of the revenue chart."""

    label: str
    revenue: float | None
    quota: float | None
    title: str


def revenue_chart(months: Sequence[MonthValue]) -> Chart | None:
    """Monthly revenue bars with each month's quota as a dashed target line; None when all is empty."""
    values = [m.revenue for m in months if m.revenue is not None] + [m.quota for m in months if m.quota]
    if not months or not any(values):
        return None
    height, left, right, top, bottom = 260.0, 64.0, 12.0, 14.0, 34.0
    ticks = nice_ticks(min(0.0, *values), max(0.0, *values))
    low, high = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    slot = (WIDTH - left - right) / len(months)
    rects, labels = [], []
    for index, month in enumerate(months):
        x = left + index * slot
        if month.revenue is not None and month.revenue != 0:
            reached = month.quota is None or month.revenue >= month.quota
            rects.append(
                Rect(
                    x=round(x + slot * 0.18, 2),
                    y=round(min(y(month.revenue), y(0.0)), 2),
                    width=round(slot * 0.64, 2),
                    height=round(abs(y(month.revenue) - y(0.0)), 2),
                    title=month.title,
                    css_class="bar" if reached else "bar below",
                )
            )
        if month.quota:
            # A thin rectangle rather than a line: a line's bounding box has no height.
            rects.append(
                Rect(
                    round(x + slot * 0.06, 2),
                    round(y(month.quota) - 1.5, 2),
                    round(slot * 0.88, 2),
                    3.0,
                    month.title,
                    "target",
                )
            )
        labels.append(Label(x + slot / 2, height - bottom + 16, month.label))
    grid = tuple(Gridline(left, y(t), WIDTH - right, y(t)) for t in ticks)
    labels += [Label(left - 6, y(t) + 4, short_amount(t), "end", "axis") for t in ticks]
    return Chart(
        "revenue",
        "Revenue by month (bars) against quota (dark marks)",
        height,
        tuple(rects),
        tuple(labels),
        grid,
    )


def progress_chart(current: float, target: float | None, current_label: str, target_label: str) -> Chart:
    """A progress bar: trailing revenue against the next tier's threshold (full when there is none)."""
    height, left, right, bar_top, bar_height = 64.0, 4.0, 4.0, 8.0, 24.0
    span = WIDTH - left - right
    share = 1.0 if not target else max(0.0, min(1.0, current / target))
    rects = [Rect(left, bar_top, span, bar_height, target_label, "track")]
    if share > 0:
        rects.append(Rect(left, bar_top, round(span * share, 2), bar_height, current_label, "bar"))
    labels = [
        Label(left, bar_top + bar_height + 20, current_label, "start"),
        Label(WIDTH - right, bar_top + bar_height + 20, target_label, "end"),
    ]
    return Chart(
        "tier", "Trailing 12-month revenue against the next tier", height, tuple(rects), tuple(labels)
    )


@dataclass(frozen=True)
class NamedValue:
    label: str
    value: float
    title: str


def ranking_chart(rows: Sequence[NamedValue]) -> Chart | None:
    """Horizontal bars, one row per item, longest first as given; None when every value is zero."""
    if not rows or not any(row.value for row in rows):
        return None
    row_height, left, right, top = 26.0, 250.0, 70.0, 6.0
    low = min(0.0, *(row.value for row in rows))
    high = max(0.0, *(row.value for row in rows))

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * (WIDTH - left - right)

    rects, labels = [], []
    for index, row in enumerate(rows):
        y = top + index * row_height
        if row.value:
            rects.append(
                Rect(
                    round(min(x(row.value), x(0.0)), 2),
                    y + 4,
                    round(abs(x(row.value) - x(0.0)), 2),
                    row_height - 8,
                    row.title,
                )
            )
        name = row.label if len(row.label) <= 36 else row.label[:35] + "…"
        labels.append(Label(left - 8, y + row_height / 2 + 4, name, "end"))
        labels.append(
            Label(max(x(row.value), x(0.0)) + 6, y + row_height / 2 + 4, short_amount(row.value), "start")
        )
    height = top * 2 + row_height * len(rows)
    return Chart("products", "Top products by revenue", height, tuple(rects), tuple(labels))
