"""Bar charts as inline SVG, drawn on the server: no JavaScript library, nothing from a CDN.

Each chart stands on its own for a screen reader: ``role="img"`` labelled by a ``<title>`` and a
``<desc>`` that lists every value in words; each bar carries its own ``<title>`` (the tooltip a
pointer shows), and both axes are labelled. Styling comes from ``console.css`` (``.chart``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from markupsafe import Markup, escape

LEFT, RIGHT, TOP, BOTTOM = 52, 12, 24, 30
GROUP_SHARE = Decimal("0.72")  # of each label's band, the rest is the gap between groups
NICE_STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


def plain(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Decimal | int]
    text: Callable[[Decimal], str] = plain  # a value in words: "14 milestones", "$120.00"
    css_class: str = "bar"


@dataclass(frozen=True)
class BarChart:
    chart_id: str
    title: str
    labels: Sequence[str]  # under each group of bars: "Nov 2"
    series: Sequence[Series]
    long_labels: Sequence[str] = field(default_factory=tuple)  # in titles and the description
    tick_text: Callable[[Decimal], str] = plain  # the y axis: "$200"
    y_label: str = ""
    width: int = 640
    height: int = 240
    integer: bool = True  # ticks at whole numbers (counts)


def nice_ticks(maximum: Decimal | int, count: int = 4, integer: bool = True) -> list[Decimal]:
    """0 and evenly spaced round values up to at least ``maximum``: 1, 2, 2.5 or 5 × 10ⁿ apart."""
    top = Decimal(maximum)
    if top <= 0:
        return [Decimal(0), Decimal(1)]
    raw = top / count
    magnitude = Decimal(10) ** (raw.adjusted())
    allowed = [s for s in NICE_STEPS if not integer or s != Decimal("2.5")]  # counts step in whole numbers
    step = next(magnitude * s for s in allowed if magnitude * s >= raw)
    if integer:
        step = max(Decimal(1), step.to_integral_value(rounding=ROUND_CEILING))
    steps = int((top / step).to_integral_value(rounding=ROUND_CEILING))
    return [step * i for i in range(steps + 1)]


def render(chart: BarChart) -> Markup:
    values = [[Decimal(v) for v in s.values] for s in chart.series]
    labels = list(chart.labels)
    long_labels = list(chart.long_labels) or labels
    ticks = nice_ticks(max((v for vs in values for v in vs), default=Decimal(0)), integer=chart.integer)
    top = ticks[-1]
    plot_w = Decimal(chart.width - LEFT - RIGHT)
    plot_h = Decimal(chart.height - TOP - BOTTOM)
    base_y = TOP + plot_h
    band = plot_w / max(len(labels), 1)
    bar_w = band * GROUP_SHARE / max(len(values), 1)
    ident = escape(chart.chart_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {chart.width} {chart.height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" id="{ident}">',
        f'<title id="{ident}-title">{escape(chart.title)}</title>',
        f'<desc id="{ident}-desc">{escape(describe(chart))}</desc>',
    ]
    for tick in ticks:
        y = base_y - tick / top * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{chart.width - RIGHT}" y1="{_n(y)}" y2="{_n(y)}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">'
                     f'{escape(chart.tick_text(tick))}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{chart.width - RIGHT}" y1="{_n(base_y)}" y2="{_n(base_y)}"/>')
    if chart.y_label:
        parts.append(f'<text class="axis-label" x="4" y="{TOP - 10}">{escape(chart.y_label)}</text>')
    every = max(1, -(-len(labels) // 12))  # at most 12 labels under the axis
    for i, label in enumerate(labels):
        left = LEFT + band * i + (band - bar_w * len(values)) / 2
        for j, series in enumerate(chart.series):
            value = values[j][i] if i < len(values[j]) else Decimal(0)
            height = value / top * plot_h if value > 0 else Decimal(0)
            x = left + bar_w * j
            parts.append(
                f'<rect class="{escape(series.css_class)}" x="{_n(x)}" y="{_n(base_y - height)}" '
                f'width="{_n(max(bar_w - 2, Decimal(1)))}" height="{_n(height)}" rx="2">'
                f'<title>{escape(long_labels[i])}: {escape(series.text(value))}</title></rect>'
            )
            if len(values) == 1 and value > 0:
                parts.append(f'<text class="value" x="{_n(x + bar_w / 2)}" y="{_n(base_y - height - 5)}" '
                             f'text-anchor="middle">{escape(chart.tick_text(value))}</text>')
        if i % every == 0:
            parts.append(f'<text class="label" x="{_n(LEFT + band * i + band / 2)}" y="{chart.height - 10}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    if len(values) > 1:
        for j, series in enumerate(chart.series):
            key_x = chart.width - RIGHT - 110 * (len(values) - j)
            parts.append(f'<rect class="{escape(series.css_class)}" x="{key_x}" y="4" width="10" height="10" rx="2"/>'
                         f'<text class="legend" x="{key_x + 14}" y="13">{escape(series.name)}</text>')
    if not any(v > 0 for vs in values for v in vs):
        parts.append(f'<text class="empty-note" x="{_n(LEFT + plot_w / 2)}" y="{_n(TOP + plot_h / 2)}" '
                     f'text-anchor="middle">Nothing in this period yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def describe(chart: BarChart) -> str:
    """Every value in words, for the chart's ``<desc>``."""
    long_labels = list(chart.long_labels) or list(chart.labels)
    entries = []
    for i, label in enumerate(long_labels):
        said = [
            (f"{s.name} " if len(chart.series) > 1 else "") + s.text(Decimal(s.values[i]) if i < len(s.values) else Decimal(0))
            for s in chart.series
        ]
        entries.append(f"{label}: {', '.join(said)}")
    return f"{chart.title}. " + "; ".join(entries) + "."


def _n(value: Decimal | int) -> str:
    return f"{Decimal(value):.1f}".rstrip("0").rstrip(".")
