"""Small display helpers shared by the pages: Japan time, sizes, ages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")
"""Japan has no daylight saving time, so a fixed offset is exact (and needs no tzdata)."""
JST_OFFSET_MINUTES = 9 * 60


def jst(t: datetime) -> str:
    return t.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


def jst_day_start(d: date) -> datetime:
    return datetime.combine(d, time(0, 0), JST).astimezone(UTC)


def today_jst(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(JST).date()


def size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    for unit in ("KB", "MB", "GB"):
        n_f = n / 1024
        if n_f < 1024 or unit == "GB":
            return f"{n_f:.1f} {unit}"
        n = int(n_f)
    return f"{n} B"  # pragma: no cover


def age_parts(held_at: datetime, now: datetime | None = None) -> tuple[str, int]:
    """("minutes"|"hours"|"days", n) for a translated 'how long ago'."""
    seconds = max(0, int(((now or datetime.now(UTC)) - held_at).total_seconds()))
    if seconds < 3600:
        return "minutes", seconds // 60
    if seconds < 86400:
        return "hours", seconds // 3600
    return "days", seconds // 86400
