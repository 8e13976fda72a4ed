"""The send-log page's query string <-> ``LogFilter``, with validation.

The same parsed form drives the list, its page links, the sort links and the CSV
export, so "export the current filter" exports exactly what is on screen.
Dates are Japan dates: a reviewer who picks 2026-04-01..2026-04-30 means April in
Japan, so ``until`` is the day after the last day, 00:00 JST (the store's until is
exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from dlp.console.fmt import jst_day_start
from dlp.console.sorting import SORTS
from dlp.model import Action, RecipientClass
from dlp.sendlog.record import EVENTS
from dlp.sendlog.store import LogFilter

ACTIONS = tuple(a.value for a in Action)
CLASSES = tuple(c.value for c in RecipientClass)
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 100_000
_MAX_TEXT = 320


class FilterError(ValueError):
    """A query string value a person typed that makes no sense."""


@dataclass(frozen=True)
class LogQuery:
    since: str = ""
    until: str = ""
    sender: str = ""
    rdomain: str = ""
    rclass: str = ""
    verdict: str = ""
    findings: str = ""
    attachment: str = ""
    event: str = ""
    audit: str = ""
    sort: str = "newest"
    page: int = 1
    per: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, params: QueryParams) -> LogQuery:
        def text(name: str) -> str:
            value = params.get(name, "").strip()
            if len(value) > _MAX_TEXT:
                raise FilterError(f"{name}: too long")
            return value

        def choice(name: str, allowed: tuple[str, ...], default: str = "") -> str:
            value = text(name) or default
            if value and value not in allowed:
                raise FilterError(f"{name}: expected one of {', '.join(allowed)}")
            return value

        def number(name: str, default: int, lo: int, hi: int) -> int:
            value = text(name)
            if not value:
                return default
            if not value.isdigit():
                raise FilterError(f"{name}: not a number")
            return min(max(int(value), lo), hi)

        q = cls(
            since=text("since"),
            until=text("until"),
            sender=text("sender"),
            rdomain=text("rdomain").lower().lstrip("@"),
            rclass=choice("rclass", CLASSES),
            verdict=choice("verdict", ACTIONS),
            findings=choice("findings", ("yes", "no")),
            attachment=text("attachment"),
            event=choice("event", EVENTS),
            audit=text("audit"),
            sort=choice("sort", SORTS, "newest"),
            page=number("page", 1, 1, MAX_PAGE),
            per=number("per", DEFAULT_PAGE_SIZE, 1, max(PAGE_SIZES)),
        )
        if q.per not in PAGE_SIZES:
            q = replace(q, per=DEFAULT_PAGE_SIZE)
        q.to_filter()  # validate dates now, so the page can say what is wrong
        return q

    def to_filter(self) -> LogFilter:
        since = _day(self.since, "since")
        until = _day(self.until, "until")
        if since and until and until < since:
            raise FilterError("until: before since")
        return LogFilter(
            since=jst_day_start(since) if since else None,
            until=jst_day_start(until + timedelta(days=1)) if until else None,
            sender=self.sender,
            recipient_domain=self.rdomain,
            recipient_class=self.rclass,
            has_findings={"yes": True, "no": False}.get(self.findings),
            verdict=self.verdict,
            attachment=self.attachment,
            event=self.event,
            audit_key=self.audit,
        )

    def params(self, **overrides: object) -> dict[str, str]:
        """Non-default values as query parameters (short, shareable URLs)."""
        q = replace(self, **overrides)  # type: ignore[arg-type]
        out: dict[str, str] = {}
        for name in (
            "since", "until", "sender", "rdomain", "rclass", "verdict", "findings",
            "attachment", "event", "audit",
        ):  # fmt: skip
            value = getattr(q, name)
            if value:
                out[name] = value
        if q.sort != "newest":
            out["sort"] = q.sort
        if q.page != 1:
            out["page"] = str(q.page)
        if q.per != DEFAULT_PAGE_SIZE:
            out["per"] = str(q.per)
        return out

    def url(self, path: str = "/log", **overrides: object) -> str:
        p = self.params(**overrides)
        return path + ("?" + urlencode(p) if p else "")

    @property
    def is_filtered(self) -> bool:
        return bool(self.params(sort="newest", page=1, per=DEFAULT_PAGE_SIZE))


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name}: expected a date like 2026-04-01") from None
