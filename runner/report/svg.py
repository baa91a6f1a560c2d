"""SVG pictures for the HTML run report, drawn in Python from plain data: the timeline of the
export slots and horizontal bar charts.

The output is inline SVG markup (no script, no external reference).  Every text that reaches
it, names from the tenant included, goes through ``esc``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")

WIDTH = 960
COLOURS = {
    "succeeded": "#2e7d32",
    "succeeded_with_exceptions": "#f9a825",
    "failed": "#c62828",
    "stopped": "#6d4c41",
    "abandoned": "#8e24aa",
    "unknown": "#8e24aa",
    "running": "#1565c0",
}
SERIES = ("#c62828", "#ef6c00", "#1565c0", "#2e7d32", "#6a1b9a")


def esc(value: Any) -> str:
    """Text or attribute value, safe inside HTML and SVG (control characters dropped)."""
    return escape(_CONTROL.sub("", str(value)), quote=True)


@dataclass(frozen=True)
class Bar:
    """One job on the timeline: ``start``/``end`` in seconds from the picture's origin."""

    lane: int
    start: float
    end: float
    status: str
    label: str  # short text drawn inside the bar when it fits
    tip: str  # the tooltip (an SVG <title>)


def assign_lanes(spans: Sequence[tuple[float, float]]) -> list[int]:
    """A lane (slot number from 0) for each (start, end): the lowest lane free at its start.

    Spans that never overlap more than five at once get at most five lanes: the same
    picture as the service's five slots, without the scheduler numbering them.
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    free_at: list[float] = []  # per lane: when its last span ends
    lanes = [0] * len(spans)
    for index in order:
        start, end = spans[index]
        lane = next((i for i, busy_until in enumerate(free_at)
                     if busy_until <= start + 1e-6), len(free_at))
        if lane == len(free_at):
            free_at.append(0.0)
        free_at[lane] = end
        lanes[index] = lane
    return lanes


def nice_step(span: float, ticks: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten; minutes and hours too)."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    for unit in (60.0, 3600.0):
        if raw >= unit:
            return unit * nice_step(raw * ticks / unit, ticks)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def seconds_label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def timeline(groups: Sequence[tuple[str, int, Sequence[Bar]]], total: float,
             marks: Sequence[tuple[float, str]] = ()) -> str:
    """The slot timeline: per group (a tenant: its name, slot count, bars), one row per slot.

    ``total``: the seconds the x axis covers (the run's length); ``marks``: labelled
    moments drawn as dashed lines (when this run started, after jobs of an earlier one).
    """
    left, right, lane_h, gap, head = 120, 16, 22, 4, 22
    inner = WIDTH - left - right
    total = max(total, 1e-3)
    scale = inner / total
    rows = sum(max(slots, 1 + max((b.lane for b in bars), default=0)) for _, slots, bars in groups)
    height = 30 + len(groups) * head + rows * (lane_h + gap) + 24
    parts = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">',
             '<title>Export slots over time</title>']
    step = nice_step(total)
    axis_y = height - 20
    tick = 0.0
    while tick <= total + 1e-9:
        x = left + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="24" x2="{x:.1f}" y2="{axis_y}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" '
                     f'font-size="11" fill="#555">{esc(seconds_label(round(tick, 6)))}</text>')
        tick += step
    y = 24
    for name, slots, bars in groups:
        parts.append(f'<text class="group" x="4" y="{y + 15}" font-size="13" '
                     f'font-weight="bold" fill="#222">{esc(name)}</text>')
        y += head
        lanes = max(slots, 1 + max((b.lane for b in bars), default=0))
        for lane in range(lanes):
            top = y + lane * (lane_h + gap)
            over = " (over the limit)" if lane >= slots else ""
            parts.append(f'<text class="lane" x="4" y="{top + 15}" font-size="12" '
                         f'fill="#444">slot {lane + 1}{esc(over)}</text>')
            parts.append(f'<rect class="lane-bg" x="{left}" y="{top}" width="{inner}" '
                         f'height="{lane_h}" fill="#f5f5f5"/>')
        for bar in bars:
            top = y + bar.lane * (lane_h + gap)
            x = left + bar.start * scale
            width = max(1.5, (bar.end - bar.start) * scale)
            colour = COLOURS.get(bar.status, "#757575")
            parts.append(f'<g class="job job-{esc(bar.status)}"><rect x="{x:.1f}" y="{top + 1}" '
                         f'width="{width:.1f}" height="{lane_h - 2}" rx="3" fill="{colour}" '
                         f'stroke="#fff" stroke-width="1"><title>{esc(bar.tip)}</title></rect>')
            room = int((width - 8) / 6.6)
            if room >= 4:
                text = bar.label if len(bar.label) <= room else bar.label[: room - 1] + "…"
                parts.append(f'<text x="{x + 4:.1f}" y="{top + 15}" font-size="11" '
                             f'fill="#fff" pointer-events="none">{esc(text)}</text>')
            parts.append("</g>")
        y += lanes * (lane_h + gap)
    for at, label in marks:
        x = left + at * scale
        parts.append(f'<line class="mark" x1="{x:.1f}" y1="18" x2="{x:.1f}" y2="{axis_y}" '
                     'stroke="#333" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="14" font-size="11" fill="#333">{esc(label)}'
                     '</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, rows: Sequence[tuple[str, Sequence[float]]],
              series: Sequence[str], *, css_class: str = "chart", compact: bool = False) -> str:
    """Horizontal bars: per row (a label), one bar per series, with its value written after.

    ``series`` names the bars of a row (a legend is drawn when there are several);
    ``compact`` charts are narrow enough for three side by side.
    """
    left, right, gap, legend = 230, 60, 8, 22 if len(series) > 1 else 0
    bar_h = 14 if len(series) == 1 else 10
    inner = 460
    if compact:
        left, inner, right = 115, 160, 50
    width = left + inner + right
    per_row = bar_h * len(series) + gap
    height = 28 + legend + max(1, len(rows)) * per_row + 8
    top_value = max((v for _, values in rows for v in values), default=0) or 1
    parts = [f'<svg class="{esc(css_class)}" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f'<title>{esc(title)}</title>',
             f'<text x="4" y="16" font-size="13" font-weight="bold" fill="#222">{esc(title)}'
             '</text>']
    if len(series) > 1:
        x = left
        for index, name in enumerate(series):
            parts.append(f'<rect x="{x}" y="26" width="10" height="10" '
                         f'fill="{SERIES[index % len(SERIES)]}"/>')
            parts.append(f'<text x="{x + 14}" y="35" font-size="11" fill="#333">{esc(name)}'
                         '</text>')
            x += 24 + 7 * len(name)
    y = 28 + legend
    if not rows:
        parts.append(f'<text x="4" y="{y + 12}" font-size="12" fill="#666">no records</text>')
    for label, values in rows:
        room = max(6, int((left - 10) / 6.5))
        shown = label if len(label) <= room else label[: room - 1] + "…"
        middle = y + per_row / 2
        parts.append(f'<text class="label" x="{left - 6}" y="{middle:.1f}" font-size="12" '
                     f'text-anchor="end" fill="#333"><title>{esc(label)}</title>{esc(shown)}'
                     '</text>')
        for index, value in enumerate(values):
            top = y + index * bar_h
            width_of = inner * value / top_value
            colour = SERIES[index % len(SERIES)]
            parts.append(f'<rect class="bar" x="{left}" y="{top}" width="{width_of:.1f}" '
                         f'height="{bar_h - 2}" fill="{colour}"><title>{esc(label)}: '
                         f'{esc(series[index])} {value:g}</title></rect>')
            parts.append(f'<text x="{left + width_of + 4:.1f}" y="{top + bar_h - 3}" '
                         f'font-size="11" fill="#333">{value:g}</text>')
        y += per_row
    parts.append("</svg>")
    return "".join(parts)
