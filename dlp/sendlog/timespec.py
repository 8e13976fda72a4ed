"""Reading the times a reviewer types: ``2026-11-01``, ``2026-11-01 09:30``,
``7d``, ``24h``, ``today``, ``yesterday``.

A time without a zone is local time (a Japanese server runs in JST, and
that is the day the reviewer means).  A bare date given as an upper bound
means the end of that day, so ``--since 2026-11-01 --until 2026-11-30``
covers all of November's last day too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

from dlp.sendlog.redact import scrub

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def local_tz() -> tzinfo:
    tz = datetime.now().astimezone().tzinfo
    return tz if tz is not None else UTC


def parse_when(
    text: str, *, upper: bool = False, now: datetime | None = None, tz: tzinfo | None = None
) -> datetime:
    """An aware datetime; raises ValueError with the accepted forms."""
    tz = tz or local_tz()
    now = (now or datetime.now(UTC)).astimezone(tz)
    s = text.strip().lower()
    m = _RELATIVE.match(s)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if s in ("today", "yesterday"):
        d = now.date() - timedelta(days=1 if s == "yesterday" else 0)
        return _day_start(d, tz, upper)
    if s == "now":
        return now
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return _day_start(date.fromisoformat(s), tz, upper)
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read {scrub(text)!r} as a time; use YYYY-MM-DD, 'YYYY-MM-DD HH:MM', "
            "an ISO time with zone, 7d / 24h / 30m / 2w (ago), today or yesterday"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=tz)


def _day_start(d: date, tz: tzinfo, upper: bool) -> datetime:
    if upper:
        d += timedelta(days=1)
    return datetime(d.year, d.month, d.day, tzinfo=tz)


def utc_offset_minutes(tz: tzinfo, at: datetime | None = None) -> int:
    off = (at or datetime.now(UTC)).astimezone(tz).utcoffset() or timedelta(0)
    return int(off.total_seconds() // 60)
