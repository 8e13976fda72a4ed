"""Tiny bar charts drawn as inline SVG on the server.

No chart library and no script: the page must work from the gateway alone (no CDN)
under a Content-Security-Policy that allows no script at all.  Every text that goes
into the SVG is escaped here, and the result is returned as Markup so the template
does not escape it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from dlp.console.mask import scrub_display


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    href: str = ""
    """Where a click on the bar leads (the matching send-log filter)."""


def _nice_max(n: int) -> int:
    """A round axis maximum at or above n (1, 2, 5 x 10^k)."""
    if n <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= n:
                return m * step
        step *= 10


def _text(s: str) -> str:
    return str(escape(scrub_display(s)))


def column_chart(bars: Sequence[Bar], title: str, *, alt: bool = False) -> Markup:
    """Vertical bars over time (one a day), with a light grid and sparse labels."""
    width, height = 640, 200
    left, right, top, bottom = 36, 8, 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((b.value for b in bars), default=0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_text(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_text(title)}</title>",
    ]
    steps = next(n for n in (4, 5, 2, 1) if top_value % n == 0)  # whole-number ticks
    for i in range(steps + 1):
        value = top_value * i // steps
        y = top + plot_h - plot_h * i / steps
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    n = max(len(bars), 1)
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.75)
    label_every = max(1, -(-n // 10))
    cls = "bar alt" if alt else "bar"
    for i, b in enumerate(bars):
        h = plot_h * b.value / top_value
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        rect = (
            f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
            f"<title>{_text(b.label)}: {b.value}</title></rect>"
        )
        parts.append(f'<a href="{_text(b.href)}">{rect}</a>' if b.href else rect)
        if i % label_every == 0 or i == n - 1:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14}" '
                f'text-anchor="middle">{_text(b.label)}</text>'
            )
    base = top + plot_h
    parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_list(bars: Sequence[Bar], title: str, *, alt: bool = False) -> Markup:
    """Horizontal bars, one labelled row per item (top senders, meant domains)."""
    row_h, width = 24, 640
    label_w, value_w = 260, 50
    plot_w = width - label_w - value_w - 8
    height = max(1, len(bars)) * row_h + 4
    top_value = max((b.value for b in bars), default=0) or 1
    cls = "bar alt" if alt else "bar"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_text(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_text(title)}</title>",
    ]
    for i, b in enumerate(bars):
        y = 2 + i * row_h
        w = max(1.0, plot_w * b.value / top_value)
        label = b.label if len(b.label) <= 36 else b.label[:35] + "…"
        text = f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{_text(label)}</text>'
        rect = (
            f'<rect class="{cls}" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}">'
            f"<title>{_text(b.label)}: {b.value}</title></rect>"
        )
        parts.append(f'<a href="{_text(b.href)}">{text}{rect}</a>' if b.href else text + rect)
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{b.value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
