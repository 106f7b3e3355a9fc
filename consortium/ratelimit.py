"""Every rate limit of the service, declared here and nowhere else.

Two kinds, each declared one way:
- a `Limit` counts requests per key (a client address, a chat) across every process: Redis in
  production (a fixed window), in the embedded default one process counting in memory, which is all
  there is. Its rate is written "N/s", "N/m" or "N/h", or read from a setting.
- a `Bucket` meters one socket connection (a token bucket, in the connection's own memory): a bad
  frame costs more than a good one, and a client that keeps flooding after being told is closed.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
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
    # Per deployment (two sharing a Redis, or test stacks) as the channel layer is: hourly counts outlive a run.
    name = f"{settings.RATE_LIMIT_PREFIX}:rl:{bucket}:{key}:{slot}"
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
            # Kept until its own window ends: limits of other windows (a minute, an hour) share the dict.
            _memory[name] = (count, (slot + 1) * window)
            for stale in [k for k, (_, ends) in _memory.items() if ends <= now]:
                del _memory[stale]
    return retry if count > limit else 0


@dataclass(frozen=True)
class Limit:
    """At most `rate` requests per key in `bucket`; `setting` names the Django setting holding the rate."""

    bucket: str
    rate: str = ""
    setting: str = ""

    def hit(self, key: str) -> int:
        """Count one request; 0 when allowed, else the seconds to wait (for Retry-After)."""
        return hit(self.bucket, key, self.rate or str(getattr(settings, self.setting)))


# Chats started plus questions left, per client address (docs/protocol.md).
CHAT_START = Limit("start", setting="CHAT_START_RATE")
# Patron typing per chat over the HTTP fallback transport: generous for a person, a wall for a script.
POLL_TYPING = Limit("poll-typing", "40/m")
# Password reset mails asked for, per client address and per address asked for (docs/security.md).
PASSWORD_RESET_CLIENT = Limit("pwreset-client", setting="PASSWORD_RESET_CLIENT_RATE")
PASSWORD_RESET_EMAIL = Limit("pwreset-email", setting="PASSWORD_RESET_EMAIL_RATE")
# Transcript mails asked for, per client address (each chat's own bound is counted in the database:
# routing.services.transcripts).
TRANSCRIPT_MAIL_CLIENT = Limit("transcript-client", setting="TRANSCRIPT_MAIL_CLIENT_RATE")
# The offline question form (docs/security.md). Per client address: past it the question is refused.
# Per address mailed and per consortium: past them the question is kept and only its confirmation mail
# is skipped (a patron must not lose a question because someone else used their address).
QUESTION_CLIENT = Limit("question-client", setting="QUESTION_CLIENT_RATE")
QUESTION_MAIL_EMAIL = Limit("question-mail-email", setting="QUESTION_MAIL_EMAIL_RATE")
QUESTION_MAIL_CONSORTIUM = Limit("question-mail-consortium", setting="QUESTION_MAIL_CONSORTIUM_RATE")
# Files sent into one chat, by the patron and the librarian together (docs/security.md, "Uploads").
CHAT_FILE_UPLOAD = Limit("file-upload", setting="CHAT_FILE_UPLOAD_RATE")
# Searches of the knowledge base's answers (the suggestions while a patron types), per client address:
# generous, since a library's public computers share one address (docs/security.md).
ANSWERS_SEARCH_CLIENT = Limit("answers-client", setting="ANSWERS_SEARCH_RATE")


@dataclass(frozen=True)
class Bucket:
    """A token bucket per connection: `size` frames at once, refilled at `refill_per_second`."""

    size: float
    refill_per_second: float
    bad_frame_cost: float
    strikes_before_close: int


# Each socket (patron and staff): a bad frame costs five good ones; twenty strikes close it with 4429.
SOCKET_FRAMES = Bucket(size=30.0, refill_per_second=10.0, bad_frame_cost=5.0, strikes_before_close=20)


class Meter:
    """One connection's bucket: spend() takes tokens if there are enough, strike() counts a refusal."""

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.tokens = bucket.size
        self.refilled = time.monotonic()
        self.strikes = 0

    def spend(self, cost: float) -> bool:
        now = time.monotonic()
        self.tokens = min(self.bucket.size, self.tokens + (now - self.refilled) * self.bucket.refill_per_second)
        self.refilled = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def charge(self, cost: float) -> None:
        """Take `cost` even past what is left (into debt): for a frame that must not be refused, which
        still slows the frames after it down."""
        self.spend(0.0)  # the refill up to now
        self.tokens -= cost

    def strike(self) -> None:
        self.strikes += 1

    @property
    def exhausted(self) -> bool:
        return self.strikes >= self.bucket.strikes_before_close


# Patron messages per chat, one count shared by the socket and the HTTP fallback (docs/security.md):
# generous for a person, a wall for a script, and opening more sockets does not raise it.
# Counted in the chat's own row by the statement that stores each line (routing.message_store), not by
# Limit.hit: exact under the chat's lock, and no Redis round trip per line.
CHAT_MESSAGE = Limit("chat-msg", "60/m")
# Patron sockets joined to one chat at once, counted across web processes (routing.services.presence).
PATRON_SOCKETS_PER_CHAT = 5
