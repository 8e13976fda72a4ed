"""The analysis the information-management team runs on the send log (ログ分析, issue 14).

Three lists over a recent window (default the last 7 days), each sender compared with
their own past rather than with everyone:

* **above their baseline** — attachment sends to outside (external, free mail,
  lookalike) and to free mail in the window, against the sender's average for a
  window of the same length over the preceding weeks.  Flagged when the window has
  at least ``MIN_SENDS`` such sends and ``FACTOR`` times the baseline (a baseline
  below one counts as one, so a sender who never sent outside is flagged at
  ``MIN_SENDS``).
* **first-time outside domains** — (sender, recipient domain) pairs in the window that
  the sender never mailed in the look-back before it.
* **own-address sends** — senders with messages to a free-mail address that is
  probably their own (``own_address_likely``).

Counts come from the store's per-day-and-sender statistics (one query); the two
lists that need recipients read the message entries of the look-back once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from dlp.model import RecipientClass
from dlp.sendlog.store import LogFilter, SendLogStore

FACTOR = 3.0
MIN_SENDS = 5
SCAN_LIMIT = 200_000
"""Message entries read at most for the recipient lists (a bounded page)."""


@dataclass(frozen=True, slots=True)
class SenderLevel:
    sender: str
    outside: int
    freemail: int
    baseline_outside: float
    baseline_freemail: float
    flagged: bool

    def to_row(self) -> list[object]:
        return [self.sender, self.outside, round(self.baseline_outside, 2), self.freemail,
                round(self.baseline_freemail, 2), int(self.flagged)]  # fmt: skip


@dataclass(frozen=True, slots=True)
class FirstDomain:
    sender: str
    domain: str
    klass: str
    first_seen: datetime
    entry_id: int

    def to_row(self) -> list[object]:
        return [self.sender, self.domain, self.klass, self.first_seen.isoformat(), self.entry_id]


@dataclass(frozen=True, slots=True)
class OwnAddressSender:
    sender: str
    messages: int
    addresses: tuple[str, ...]
    last_entry: int

    def to_row(self) -> list[object]:
        return [self.sender, self.messages, " ".join(self.addresses), self.last_entry]


@dataclass(frozen=True, slots=True)
class Analysis:
    since: datetime
    until: datetime
    baseline_since: datetime
    levels: tuple[SenderLevel, ...]
    first_domains: tuple[FirstDomain, ...]
    own_address: tuple[OwnAddressSender, ...]
    truncated: bool = False

    @property
    def flagged(self) -> tuple[SenderLevel, ...]:
        return tuple(x for x in self.levels if x.flagged)


HEADERS = {
    "levels": ["sender", "outside", "baseline_outside", "freemail", "baseline_freemail", "flagged"],
    "first_domains": ["sender", "domain", "class", "first_seen", "entry"],
    "own_address": ["sender", "messages", "addresses", "last_entry"],
}


def analyse(
    store: SendLogStore,
    *,
    until: datetime,
    window_days: int = 7,
    baseline_weeks: int = 8,
    utc_offset_minutes: int = 0,
) -> Analysis:
    since = until - timedelta(days=window_days)
    base_since = since - timedelta(days=window_days * baseline_weeks)
    periods = baseline_weeks  # the baseline is this many windows long
    recent: Counter[str] = Counter()
    recent_free: Counter[str] = Counter()
    past: Counter[str] = Counter()
    past_free: Counter[str] = Counter()
    rows = store.stats(
        LogFilter(since=base_since, until=until), by="day+sender",
        utc_offset_minutes=utc_offset_minutes,
    )  # fmt: skip
    window_first_day = (since + timedelta(minutes=utc_offset_minutes)).date().isoformat()
    for r in rows:
        if r.day >= window_first_day:
            recent[r.sender] += r.attachments_outside
            recent_free[r.sender] += r.attachments_freemail
        else:
            past[r.sender] += r.attachments_outside
            past_free[r.sender] += r.attachments_freemail
    levels = []
    for sender in set(recent) | set(past):
        base = past[sender] / periods
        base_free = past_free[sender] / periods
        n = recent[sender]
        flagged = n >= MIN_SENDS and n >= FACTOR * max(base, 1.0)
        if n or recent_free[sender]:
            levels.append(SenderLevel(sender, n, recent_free[sender], base, base_free, flagged))
    levels.sort(key=lambda x: (not x.flagged, -x.outside / max(x.baseline_outside, 1.0), x.sender))

    seen: set[tuple[str, str]] = set()
    first: dict[tuple[str, str], FirstDomain] = {}
    own: dict[str, list[tuple[int, str]]] = defaultdict(list)
    n_read = 0
    truncated = False
    for e in store.iter_entries(LogFilter(since=base_since, until=until, event="message")):
        n_read += 1
        if n_read > SCAN_LIMIT:
            truncated = True
            break
        rec = e.record
        sender = rec.sender.lower()
        in_window = rec.time >= since
        for rc in rec.recipients:
            if not RecipientClass(rc.klass).outside:
                continue
            key = (sender, rc.domain)
            if not in_window:
                seen.add(key)
            elif key not in seen and key not in first:
                first[key] = FirstDomain(sender, rc.domain, rc.klass, rec.time, e.id)
            if in_window and rc.own_address_likely:
                own[sender].append((e.id, rc.address))
    owners = []
    for sender, hits in own.items():
        ids = sorted({i for i, _ in hits})
        owners.append(
            OwnAddressSender(sender, len(ids), tuple(sorted({a for _, a in hits})), ids[-1])
        )
    owners.sort(key=lambda x: (-x.messages, x.sender))
    return Analysis(
        since=since,
        until=until,
        baseline_since=base_since,
        levels=tuple(levels),
        first_domains=tuple(sorted(first.values(), key=lambda x: (x.sender, x.first_seen))),
        own_address=tuple(owners),
        truncated=truncated,
    )
