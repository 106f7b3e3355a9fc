"""Charts as server-rendered SVG: no script, printable, and readable by a screen reader (role=img with a
label, and the same figures in a table next to each chart).

Colours are SVG presentation attributes (fill=...), not style attributes, so the pages' Content
Security Policy has nothing to allow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BAR = "#1d4e89"
# Light to dark, for counts from low to high (the first is "nothing").
SCALE = ("#f1f4f7", "#d2e3f3", "#a6c8e6", "#6fa5d4", "#3c7fbd", "#1d4e89")


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def bar_chart(items: Sequence[tuple[str, float]], *, label: str, width: int = 560, bar_height: int = 20,
              label_width: int = 170) -> SafeString:
    """Horizontal bars, one per (label, value), with the value written at the end of each bar."""
    if not items:
        return mark_safe(f'<p class="empty">{escape(label)}: {escape(_("nothing in this period."))}</p>')
    peak = max(v for _, v in items) or 1
    room = width - label_width - 60
    gap = 6
    height = len(items) * (bar_height + gap) + gap
    parts = [f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>']
    for i, (name, value) in enumerate(items):
        y = gap + i * (bar_height + gap)
        length = max(1, round(room * value / peak)) if value else 0
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar_height - 6}" text-anchor="end" font-size="13" '
            f'fill="#1b1f24">{escape(name[:28])}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length}" height="{bar_height}" rx="3" fill="{BAR}"/>'
            f'<text x="{label_width + length + 6}" y="{y + bar_height - 6}" font-size="13" '
            f'fill="#1b1f24">{escape(_number(value))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every value above is escaped


def level(value: float, peak: float) -> int:
    """0 (nothing) .. 5 (the peak), for a colour of SCALE."""
    if value <= 0 or peak <= 0:
        return 0
    return max(1, min(5, math.ceil(5 * value / peak)))  # any activity is at least level 1


def week_heat(grid: Sequence[Sequence[float]], *, label: str, cell: int = 22) -> SafeString:
    """A 7 x 24 grid (rows Monday..Sunday, columns hours), darker where there is more."""
    peak = max((v for row in grid for v in row), default=0)
    left, top = 40, 18
    width, height = left + 24 * cell + 4, top + 7 * (cell + 2) + 4
    parts = [f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>']
    for hour in range(0, 24, 3):
        parts.append(f'<text x="{left + hour * cell + 2}" y="12" font-size="11" fill="#4f5b66">{hour:02d}</text>')
    for day, row in enumerate(grid):
        y = top + day * (cell + 2)
        parts.append(f'<text x="0" y="{y + cell - 7}" font-size="12" fill="#1b1f24">{DAY_NAMES[day]}</text>')
        for hour, value in enumerate(row):
            parts.append(f'<rect x="{left + hour * cell}" y="{y}" width="{cell - 2}" height="{cell}" rx="2" '
                         f'fill="{SCALE[int(level(value, peak))]}"><title>{DAY_NAMES[day]} {hour:02d}:00: '
                         f'{escape(_number(value))}</title></rect>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every value above is escaped
