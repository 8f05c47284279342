"""Charts as SVG drawn on the server: no script, no library fetched by the browser.

``stacked_bars`` draws one bar per label, its series stacked, with a legend and a <title> on every
bar (the browser shows it on hover; screen readers read it). Text is escaped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

PALETTE = {"allow": "#2e7d32", "reject": "#c62828", "monitored": "#f9a825"}
_OTHER = ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#4e342e", "#37474f", "#ad1457", "#558b2f")


def color_of(name: str, index: int) -> str:
    return PALETTE.get(name, _OTHER[index % len(_OTHER)])


def stacked_bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]], *,
                 width: int = 720, height: int = 180, every: int = 10) -> Markup:
    """``series``: name -> one value per label. ``every``: label every n-th bar on the axis."""
    count = max(len(labels), 1)
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    left, bottom, plot_h = 40, 20, height - 40
    step = (width - left - 10) / count
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {width} {height + 20}" width="100%" class="chart"><title>{escape(title)}</title>',
             f'<text x="{left}" y="12" class="axis">{top}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" class="axis"/>']
    for i, label in enumerate(labels):
        y = float(height - bottom)
        for k, (name, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = value / top * plot_h
            y -= h
            parts.append(f'<rect x="{left + i * step:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{color_of(name, k)}"><title>{escape(label)} {escape(name)}: '
                         f'{value}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - 4}" class="axis">{escape(label)}</text>')
    x = left
    for k, name in enumerate(series):
        parts.append(f'<rect x="{x}" y="{height + 6}" width="10" height="10" fill="{color_of(name, k)}"/>'
                     f'<text x="{x + 14}" y="{height + 15}" class="legend">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every text in it is escaped above
