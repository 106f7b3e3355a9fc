"""Per-address limits on starting chats and leaving questions, counted together by every process.

Redis in production (a fixed window per address); in the embedded default, one process counts in
memory, which is all there is.
"""

from __future__ import annotations

import re
import threading
import time
from functools import cache

from django.conf import settings


def parse_rate(text: str) -> tuple[int, int]:
    """'20/m' -> (20, 60). Raises ValueError for anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*([smh])\s*", text)
    if not m:
        raise ValueError(f"rate {text!r}: use N/s, N/m or N/h")
    return int(m[1]), {"s": 1, "m": 60, "h": 3600}[m[2]]


_memory: dict[str, tuple[int, float]] = {}
_lock = threading.Lock()


@cache
def _redis():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def hit(bucket: str, key: str, rate: str) -> int:
    """Count one request; returns 0 when allowed, else the seconds to wait (for Retry-After)."""
    limit, window = parse_rate(rate)
    now = time.time()
    slot = int(now // window)
    name = f"vr:rl:{bucket}:{key}:{slot}"
    retry = max(1, int((slot + 1) * window - now))
    if settings.REDIS_URL:
        try:
            pipe = _redis().pipeline()
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count = int(pipe.execute()[0])
        except Exception:
            return 0  # a limiter that fails must not stop patrons from asking
    else:
        with _lock:
            old_count, _ = _memory.get(name, (0, 0.0))
            count = old_count + 1
            _memory[name] = (count, now)
            for stale in [k for k in _memory if not k.endswith(f":{slot}")]:
                del _memory[stale]
    return retry if count > limit else 0
