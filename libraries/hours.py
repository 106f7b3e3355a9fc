"""Staffing hours: when a queue is open, in the queue's own time zone.

(Being completed: is_open / next_change over weekly hours, closures and special hours.)
"""

from __future__ import annotations

import re

_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def parse_interval(text: str) -> tuple[int, int]:
    """'09:00-17:00' -> (540, 1020). End may be 24:00. Raises ValueError with a readable message."""
    m = _RANGE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f'"{text}" is not HH:MM-HH:MM')
    sh, sm, eh, em = (int(g) for g in m.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f'"{text}" has a time that does not exist')
    start, end = sh * 60 + sm, eh * 60 + em
    if end <= start:
        raise ValueError(f'"{text}" ends before it starts (split an interval that crosses midnight in two)')
    return start, end


def format_interval(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
