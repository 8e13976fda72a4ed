"""The dashboard: the weekly review of a 保護責任者 at a glance.

Small charts over the chosen period (Japan days): attachment sends to external
domains per day, to free-mail and carrier addresses per day, messages with findings per day, lookalike recipients by the domain
that was meant, and the senders with the most external attachment sends.  Each bar
links to the send-log filter that lists the entries behind it.
"""

from __future__ import annotations

import contextlib
import statistics
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console.charts import Bar, bar_list, column_chart
from dlp.console.filters import LogQuery
from dlp.console.fmt import JST_OFFSET_MINUTES, jst_day_start, today_jst
from dlp.console.users import Role
from dlp.console.web import Ctx, held_count, page, render, sendlog_down
from dlp.holdqueue.store import open_quarantine
from dlp.model import RecipientClass
from dlp.sendlog.store import LogFilter, SendLogError, SendLogStore, StatsRow

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
TOP_N = 10
CACHE_SECONDS = 60.0
LOOKALIKE_SCAN_LIMIT = 20_000
"""Entries read to count lookalike recipients by meant domain; they are rare, and a
cap keeps the page fast even if a misconfiguration floods the log with them."""


@dataclass(frozen=True)
class DashboardData:
    days: list[date]
    per_day: dict[str, StatsRow]
    top_senders: list[tuple[str, int]]
    lookalikes: list[tuple[str, int]]
    decision_seconds: list[int]
    """How long each sender / approver decision by link took (issue 13)."""


def _per_day(store: SendLogStore, flt: LogFilter) -> dict[str, StatsRow]:
    return {r.day: r for r in store.stats(flt, by="day", utc_offset_minutes=JST_OFFSET_MINUTES)}


def _top_senders(store: SendLogStore, flt: LogFilter) -> list[tuple[str, int]]:
    senders = [
        (r.sender, r.attachments_outside)
        for r in store.stats(flt, by="sender")
        if r.attachments_outside > 0
    ]
    senders.sort(key=lambda s: (-s[1], s[0]))
    return senders[:TOP_N]


def _lookalikes(store: SendLogStore, flt: LogFilter) -> list[tuple[str, int]]:
    meant: Counter[str] = Counter()
    looks = replace(flt, recipient_class=RecipientClass.LOOKALIKE.value, event="message")
    # query() walks the time index; iter_entries() walks ids and is far slower for a
    # rare class inside a period (measured: 12 ms vs 340 ms over 1 million entries).
    for entry in store.query(looks, limit=LOOKALIKE_SCAN_LIMIT):
        for rc in entry.record.recipients:
            if rc.klass == RecipientClass.LOOKALIKE:
                meant[rc.resembles or rc.domain] += 1
    return sorted(meant.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]


def _load(store: SendLogStore, first: date, last: date) -> DashboardData:
    flt = LogFilter(since=jst_day_start(first), until=jst_day_start(last + timedelta(days=1)))
    return DashboardData(
        days=[first + timedelta(days=i) for i in range((last - first).days + 1)],
        per_day=_per_day(store, flt),
        top_senders=_top_senders(store, flt),
        lookalikes=_lookalikes(store, flt),
        decision_seconds=_decision_seconds(store, flt),
    )


def _decision_seconds(store: SendLogStore, flt: LogFilter) -> list[int]:
    """Waits of the decisions taken by one-click link in the period (releases and discards
    whose detail says ``via = link``); timers are not somebody deciding."""
    out: list[int] = []
    for event in ("release", "discard"):
        for entry in store.query(replace(flt, event=event), limit=LOOKALIKE_SCAN_LIMIT):
            detail = entry.record.detail
            waited = detail.get("waited_seconds")
            if detail.get("via") == "link" and isinstance(waited, int):
                out.append(waited)
    return out


def _waiting(ctx: Ctx) -> dict[str, int] | None:
    """Held messages waiting for their sender or an approver, by kind."""
    try:
        held = open_quarantine(ctx.services.settings).list()
    except Exception:
        return None
    return dict(Counter(h.kind for h in held if h.kind != "hold"))


def _median_text(seconds: list[int]) -> str:
    if not seconds:
        return ""
    m = int(statistics.median(seconds))
    if m < 120:
        return f"{m} s"
    if m < 7200:
        return f"{m // 60} min"
    return f"{m / 3600:.1f} h"


@page(Role.REVIEWER)
async def dashboard(request: Request, ctx: Ctx) -> Response:
    raw = request.query_params.get("days", "")
    period = int(raw) if raw.isdigit() and int(raw) in PERIODS else DEFAULT_PERIOD
    last = today_jst()
    # ?end=2026-03-31: the period ending on that day (looking back at a past month)
    with contextlib.suppress(ValueError):
        last = min(last, date.fromisoformat(request.query_params.get("end", "")))
    first = last - timedelta(days=period - 1)

    def load() -> tuple[DashboardData, int | None, dict[str, int] | None]:
        # Three scans of the period cost up to a second at 90 days over a big log; the
        # picture of a past period barely moves, so it is kept for CACHE_SECONDS.
        data = ctx.services.cached(
            ("dashboard", first, last),
            CACHE_SECONDS,
            lambda: _load(ctx.services.sendlog(), first, last),
        )
        return data, held_count(ctx), _waiting(ctx)  # None when the queue is unreadable

    try:
        data, held_now, waiting = await run_in_threadpool(load)
    except SendLogError as exc:
        return sendlog_down(request, ctx, exc)

    def day_bars(value: str, link: LogQuery) -> list[Bar]:
        bars = []
        for d in data.days:
            row = data.per_day.get(d.isoformat())
            n = int(getattr(row, value)) if row else 0
            href = link.url(since=d.isoformat(), until=d.isoformat())
            bars.append(Bar(d.strftime("%m/%d"), n, href))
        return bars

    external = day_bars("attachments_outside", LogQuery(rclass=RecipientClass.EXTERNAL.value))
    findings = day_bars("with_findings", LogQuery(findings="yes"))
    # Personal mailboxes (issue 14): the home-PC incident's pattern, counted on its own.
    freemail = day_bars("attachments_freemail", LogQuery(rclass=RecipientClass.FREEMAIL.value))
    in_period = LogQuery(since=first.isoformat(), until=last.isoformat())
    senders = [
        Bar(s, n, in_period.url(sender=s, rclass=RecipientClass.EXTERNAL.value))
        for s, n in data.top_senders
    ]
    lookalikes = [
        Bar(d, n, in_period.url(rclass=RecipientClass.LOOKALIKE.value)) for d, n in data.lookalikes
    ]
    charts = {
        "external": column_chart(external, ctx.t("dash.external_sends")),
        "findings": column_chart(findings, ctx.t("dash.findings"), alt=True),
        "freemail": column_chart(freemail, ctx.t("dash.freemail_sends")),
        "senders": bar_list(senders, ctx.t("dash.top_senders")) if senders else None,
        "lookalikes": bar_list(lookalikes, ctx.t("dash.lookalike"), alt=True)
        if lookalikes
        else None,
    }
    return render(
        request,
        ctx,
        "dashboard.html",
        {
            "period": period,
            "periods": PERIODS,
            "first": first,
            "last": last,
            "is_today": last == today_jst(),
            "charts": charts,
            "external_total": sum(b.value for b in external),
            "findings_total": sum(b.value for b in findings),
            "freemail_total": sum(b.value for b in freemail),
            "lookalike_total": sum(b.value for b in lookalikes),
            "held_now": held_now,
            "waiting": waiting,
            "decisions": len(data.decision_seconds),
            "decision_median": _median_text(data.decision_seconds),
        },
    )
