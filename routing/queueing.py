"""Waits predicted from staffing: the queueing model of the staffing forecast and of the launcher.

Plain Python with no I/O, like routing.router: given how many chats arrive in an hour, how long a
chat takes, how many librarians are there and how many chats each takes at once, it says how long
a patron who is answered waits before a librarian accepts (p50, p90, as the chat report counts
waits) and the share of all arrivals answered within the service level's threshold (60 s).

The model, and why:

- A librarian who answers up to `capacity` chats at once is `capacity` servers, each working a chat
  for its whole handle time: the handle time measured from history (accepted to ended) is already
  the time a chat takes while its librarian juggles others, so the servers need no slowing down.
- Arrivals are Poisson within the hour and handle times exponential: M/M/c, Erlang C. Its waits
  have a closed form (a patron waits with probability C, and then exponentially with rate
  c*mu - lambda), so a week of hours for every queue costs microseconds each.
- Patrons give up, which Erlang C ignores: at a load near or past the servers (a >= c) it has no
  steady state, the queue growing for ever. With a patience known (from history) the model is
  Erlang A (M/M/c+M): patrons abandon at rate theta (1 / their mean patience), the birth-death
  chain is solved up to a queue long enough to hold all but a negligible share, and the offered
  wait (how long a patron who stays waits) is a mixture over the queue found on arrival, each a
  pure-death chain, evaluated by uniformization. With endless patience it is Erlang C (tested).
- No librarian (c = 0): nobody answers; the caller shows that hour as unstaffed, not as a wait.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SERVICE_LEVEL_SECONDS = 60
GRID_END = 3600  # seconds: a wait past an hour is reported as the hour
WAIT_STEP = 5.0  # seconds: Erlang A's answered waits are added up in steps this long
NEGLIGIBLE = 1e-9


@dataclass(frozen=True)
class Load:
    """One hour of one queue: what comes in and who is there to answer it."""

    arrivals_per_hour: float
    handle_seconds: float  # mean time a chat keeps a librarian's slot, accepted to ended
    librarians: int
    capacity: int  # chats each librarian answers at once
    patience_seconds: float | None = None  # mean time a patron waits before giving up; None: for ever
    answer_within: int = SERVICE_LEVEL_SECONDS  # the service level's threshold

    @property
    def servers(self) -> int:
        return max(0, self.librarians) * max(1, self.capacity)

    @property
    def offered(self) -> float:
        """The load in Erlangs: chats that would be in progress at once if nobody ever waited."""
        return self.arrivals_per_hour / 3600.0 * self.handle_seconds


@dataclass(frozen=True)
class Prediction:
    wait_p50: float  # seconds, of the patrons who are answered (those who give up are not waits)
    wait_p90: float
    service_level: float  # share of arrivals answered within SERVICE_LEVEL_SECONDS
    waits: float  # probability that a patron waits at all
    occupancy: float  # share of the servers' time in use
    model: str  # "erlang_c", "erlang_a", "idle" (nobody comes) or "unstaffed" (nobody answers)

    @property
    def staffed(self) -> bool:
        return self.model != "unstaffed"


def erlang_b(servers: int, offered: float) -> float:
    """The blocking probability of M/M/c/c, by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def erlang_c(servers: int, offered: float) -> float:
    """The probability that an arriving patron waits, in M/M/c with `offered` Erlangs (< servers)."""
    if servers <= 0:
        return 1.0
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = erlang_b(servers, offered)
    return servers * b / (servers - offered * (1 - b))


def erlang_c_waits(load: Load) -> Prediction:
    """M/M/c: the waits in closed form (the load must be below the servers)."""
    c, a = load.servers, load.offered
    mu = 1.0 / load.handle_seconds
    p_wait = erlang_c(c, a)
    drain = c * mu - a * mu  # rate of the exponential tail of the wait: c*mu - lambda

    def quantile(q: float) -> float:
        # P(W > t) = C exp(-drain t): zero when fewer than 1 - q of patrons wait at all.
        return 0.0 if p_wait <= 1 - q else math.log(p_wait / (1 - q)) / drain

    within = 1 - p_wait * math.exp(-drain * load.answer_within)
    return Prediction(quantile(0.5), quantile(0.9), within, p_wait, a / c, "erlang_c")


def erlang_a(load: Load) -> Prediction:
    """M/M/c+M: the waits of patrons who give up after an exponential patience (any load)."""
    c = load.servers
    lam = load.arrivals_per_hour / 3600.0
    mu = 1.0 / load.handle_seconds
    theta = 1.0 / load.patience_seconds if load.patience_seconds else 0.0
    # The birth-death chain of M/M/c+M, in ratios to state 0; from state c on, j patrons wait. The
    # chain is cut where the next state's share would be negligible.
    below = [1.0]
    for n in range(1, c):
        below.append(below[-1] * lam / (n * mu))
    queue = [below[-1] * lam / (c * mu)]
    while len(queue) < 5000:
        j = len(queue)
        nxt = queue[-1] * lam / (c * mu + j * theta)
        if nxt < NEGLIGIBLE * (sum(queue) + sum(below)) and j > 1:
            break
        queue.append(nxt)
    total = sum(below) + sum(queue)
    found = [q / total for q in queue]  # P(an arrival finds every slot busy and j waiting), by PASTA
    p_wait = sum(found)
    survival = _offered_wait_survival(found, c * mu, theta)
    # Answered within the threshold: those who wait less than it and have not given up by then.
    pieces = 12
    width = load.answer_within / pieces
    answered_late = sum((survival(i * width) - survival((i + 1) * width)) * math.exp(-theta * (i + 0.5) * width)
                        for i in range(pieces))
    busy = (sum(n * below[n] for n in range(c)) + c * sum(queue)) / total / c

    # The waits quoted are those of the patrons who are answered (as a chat report counts them): of all
    # arrivals a share theta E[queue] / lambda gives up, the rest are answered, at once or after waiting.
    answered = 1.0 - theta * sum(j * share for j, share in enumerate(found)) / lam if theta else 1.0

    def quantile(q: float) -> float:
        target, got = q * answered, 1.0 - p_wait
        if got >= target:
            return 0.0
        t, before = 0.0, survival(0.0)
        while t < GRID_END:
            after = survival(t + WAIT_STEP)
            gained = (before - after) * math.exp(-theta * (t + WAIT_STEP / 2))
            if gained > 0 and got + gained >= target:
                return t + WAIT_STEP * (target - got) / gained
            got, t, before = got + gained, t + WAIT_STEP, after
        return float(GRID_END)

    return Prediction(quantile(0.5), quantile(0.9), (1 - p_wait) + answered_late, p_wait, min(1.0, busy), "erlang_a")


def _offered_wait_survival(found: Sequence[float], service_rate: float, theta: float) -> Callable[[float], float]:
    """t -> P(V > t), for the wait V a patient patron would have.

    A patron who finds j others waiting is answered after j+1 moves of the queue's head; with m
    patrons ahead the next move comes at rate c*mu + m*theta (a slot frees, or one of them gives up).
    Uniformized at the fastest rate, the chain moves down one place with probability rate/fastest at
    each tick of a Poisson clock; after n ticks a share still_waiting[n] of patrons waits, and
    P(V > t) is that share averaged over the Poisson number of ticks by t."""
    fastest = service_rate + (len(found) - 1) * theta
    moves = [(service_rate + m * theta) / fastest for m in range(len(found))]
    mass = list(found)
    still_waiting = [sum(mass)]
    horizon = fastest * GRID_END
    most_ticks = int(horizon + 10 * math.sqrt(horizon) + 20)
    while still_waiting[-1] > NEGLIGIBLE and len(still_waiting) <= most_ticks:
        moved = [share * move for share, move in zip(mass, moves, strict=True)]
        mass = [mass[m] - moved[m] + (moved[m + 1] if m + 1 < len(mass) else 0.0) for m in range(len(mass))]
        still_waiting.append(sum(mass))

    def survival(t: float) -> float:
        x = fastest * t
        if x <= 0:
            return still_waiting[0]
        spread = 10 * math.sqrt(x) + 10
        log_x = math.log(x)
        return sum(math.exp(n * log_x - x - math.lgamma(n + 1)) * still_waiting[n]
                   for n in range(max(0, int(x - spread)), min(len(still_waiting), int(x + spread) + 1)))

    return survival


def predict(load: Load) -> Prediction:
    """The waits of one hour: Erlang A when patrons' patience is known, else Erlang C."""
    if load.arrivals_per_hour <= 0:
        return Prediction(0.0, 0.0, 1.0, 0.0, 0.0, "idle")
    if load.servers == 0:
        return Prediction(math.inf, math.inf, 0.0, 1.0, 1.0, "unstaffed")
    if load.patience_seconds:
        return erlang_a(load)
    if load.offered >= load.servers:  # nobody gives up: the queue only grows; say so at the horizon
        return Prediction(float(GRID_END), float(GRID_END), 0.0, 1.0, 1.0, "erlang_c")
    return erlang_c_waits(load)


def conditional_wait(ahead: int, servers: int, handle_seconds: float) -> float:
    """The expected wait of a patron who finds every slot taken and `ahead` patrons already waiting:
    ahead + 1 slots must free up, each after handle_seconds / servers on average (M/M/c)."""
    if servers <= 0:
        return math.inf
    return (ahead + 1) * handle_seconds / servers
