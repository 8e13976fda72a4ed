"""ログ分析: senders far above their own usual level, first-time outside domains, and
senders with sends to their probable own private address (issue 14).

Each list links to the send-log entries behind it and downloads as CSV.  The
computation lives in ``dlp.incident.analysis``; this page picks the window (Japan
days) and draws it.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Sequence
from datetime import date, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console.filters import LogQuery
from dlp.console.fmt import JST_OFFSET_MINUTES, jst_day_start, today_jst
from dlp.console.users import Role
from dlp.console.web import Ctx, error_page, page, render, sendlog_down
from dlp.incident.analysis import (
    HEADERS,
    Analysis,
    FirstDomain,
    OwnAddressSender,
    SenderLevel,
    analyse,
)
from dlp.model import RecipientClass
from dlp.sendlog.redact import scrub
from dlp.sendlog.store import SendLogError

WINDOWS = (7, 14, 30)
CACHE_SECONDS = 60.0


def _params(request: Request) -> tuple[int, date]:
    raw = request.query_params.get("days", "")
    days = int(raw) if raw.isdigit() and int(raw) in WINDOWS else WINDOWS[0]
    last = today_jst()
    with contextlib.suppress(ValueError):
        last = min(last, date.fromisoformat(request.query_params.get("end", "")))
    return days, last


async def _load(ctx: Ctx, days: int, last: date) -> Analysis:
    until = jst_day_start(last + timedelta(days=1))

    def compute() -> Analysis:
        return ctx.services.cached(
            ("analysis", days, last),
            CACHE_SECONDS,
            lambda: analyse(
                ctx.services.sendlog(),
                until=until,
                window_days=days,
                utc_offset_minutes=JST_OFFSET_MINUTES,
            ),
        )

    return await run_in_threadpool(compute)


@page(Role.REVIEWER)
async def analysis_page(request: Request, ctx: Ctx) -> Response:
    days, last = _params(request)
    try:
        a = await _load(ctx, days, last)
    except SendLogError as exc:
        return sendlog_down(request, ctx, exc)
    first = last - timedelta(days=days - 1)
    window = LogQuery(since=first.isoformat(), until=last.isoformat())
    return render(
        request,
        ctx,
        "analysis.html",
        {
            "a": a,
            "days": days,
            "windows": WINDOWS,
            "first": first,
            "last": last,
            "window": window,
            "external": RecipientClass.EXTERNAL.value,
            "freemail": RecipientClass.FREEMAIL.value,
            "csv_query": f"days={days}&end={last.isoformat()}",
        },
    )


@page(Role.REVIEWER)
async def analysis_csv(request: Request, ctx: Ctx) -> Response:
    which = request.query_params.get("list", "")
    if which not in HEADERS:
        return error_page(request, ctx, 404, "error.not_found")
    days, last = _params(request)
    try:
        a = await _load(ctx, days, last)
    except SendLogError as exc:
        return sendlog_down(request, ctx, exc)
    rows: dict[str, Sequence[SenderLevel | FirstDomain | OwnAddressSender]] = {
        "levels": a.levels,
        "first_domains": a.first_domains,
        "own_address": a.own_address,
    }
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\r\n")
    w.writerow(HEADERS[which])
    for item in rows[which]:
        w.writerow([scrub(v) if isinstance(v, str) else v for v in item.to_row()])
    name = f"analysis-{which}-{last.isoformat()}-{days}d.csv"
    return Response(
        text.getvalue().encode("utf-8-sig"),  # Excel on Japanese Windows: UTF-8 with BOM
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
