"""The send log: filtered, sorted, paginated list; one entry; CSV export."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console import fmt
from dlp.console.export import csv_response
from dlp.console.filters import ACTIONS as VERDICTS
from dlp.console.filters import CLASSES, PAGE_SIZES, FilterError, LogQuery
from dlp.console.sorting import MAX_CONSOLE_SORT, is_column_sort, sort_entries, toggled
from dlp.console.users import Role
from dlp.console.web import Ctx, error_page, message_page, page, render, sendlog_down
from dlp.sendlog.record import EVENTS
from dlp.sendlog.store import LogFilter, SendLogError, StoredEntry


@page(Role.REVIEWER)
async def log_list(request: Request, ctx: Ctx) -> Response:
    error = ""
    try:
        q = LogQuery.parse(request.query_params)
    except FilterError as exc:
        q = LogQuery()
        error = ctx.t("log.bad_filter", detail=str(exc))
    flt = q.to_filter()

    def load() -> tuple[int, list[StoredEntry], str]:
        store = ctx.services.sendlog()
        total = store.count(flt)
        last_page = max(1, -(-total // q.per))
        offset = (min(q.page, last_page) - 1) * q.per
        if not is_column_sort(q.sort):
            return total, store.query(flt, limit=q.per, offset=offset, sort=q.sort), ""
        if total > MAX_CONSOLE_SORT:
            rows = store.query(flt, limit=q.per, offset=offset, sort="newest")
            return total, rows, ctx.t("log.sort_too_many", n=f"{MAX_CONSOLE_SORT:,}")
        everything = store.query(flt, limit=total, offset=0, sort="newest")
        return total, sort_entries(everything, q.sort)[offset : offset + q.per], ""

    try:
        total, entries, sort_note = await run_in_threadpool(load)
    except SendLogError as exc:
        return sendlog_down(request, ctx, exc)
    pages = max(1, -(-total // q.per))
    current = min(q.page, pages)
    return render(
        request,
        ctx,
        "log.html",
        {
            "q": q,
            "entries": entries,
            "total": total,
            "page_no": current,
            "pages": pages,
            "error": error,
            "sort_note": sort_note,
            "toggled": toggled,
            "verdicts": VERDICTS,
            "classes": CLASSES,
            "events": EVENTS,
            "page_sizes": PAGE_SIZES,
            "fmt": fmt,
        },
        status_code=400 if error else 200,
    )


@page(Role.REVIEWER)
async def log_entry(request: Request, ctx: Ctx) -> Response:
    entry_id: int = request.path_params["entry_id"]

    def load() -> tuple[StoredEntry | None, list[StoredEntry]]:
        store = ctx.services.sendlog()
        entry = store.get(entry_id)
        if entry is None or not entry.record.audit_key:
            return entry, []
        # The same message's other entries: the next hop's outcome, a release ...
        same = store.query(LogFilter(audit_key=entry.record.audit_key), limit=20, sort="oldest")
        return entry, [e for e in same if e.id != entry.id]

    try:
        entry, related = await run_in_threadpool(load)
    except SendLogError as exc:
        return sendlog_down(request, ctx, exc)
    if entry is None:
        return error_page(request, ctx, 404, "error.not_found")
    back = request.query_params.get("back", "")
    return render(
        request,
        ctx,
        "entry.html",
        {
            "e": entry,
            "r": entry.record,
            "related": related,
            "fmt": fmt,
            "back": back if back.startswith("/log") else "/log",
        },
    )


@page(Role.REVIEWER)
async def log_export(request: Request, ctx: Ctx) -> Response:
    try:
        q = LogQuery.parse(request.query_params)
    except FilterError as exc:
        return message_page(request, ctx, 400, ctx.t("log.bad_filter", detail=str(exc)))
    try:
        store = await run_in_threadpool(ctx.services.sendlog)
    except SendLogError as exc:
        return sendlog_down(request, ctx, exc)
    return csv_response(store, q.to_filter(), japanese_headers=ctx.lang == "ja")
