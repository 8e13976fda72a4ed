"""報告書の下書き: the PPC report draft for one entry or a selection (issue 14).

GET shows the form (entry ids from the entry page's link or the log list's
check boxes); POST drafts it — recorded in the send log like ``dlp incident
report`` — and shows it, or returns it as Markdown or docx to hand on.
"""

from __future__ import annotations

from datetime import date

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console.fmt import JST
from dlp.console.users import Role
from dlp.console.web import Ctx, page, render, sendlog_down
from dlp.incident import render as report_render
from dlp.incident.draft import draft
from dlp.incident.report import IncidentReport, ReportError
from dlp.sendlog.store import SendLogError

MAX_ENTRIES = 200
"""More messages than anyone drafts one report for; keeps the page bounded."""
FORMATS = ("html", "md", "docx")
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _ids(values: list[str]) -> list[int]:
    """Entry ids from form/query values ("12", "12,13", "12 13")."""
    out: list[int] = []
    for v in values:
        for part in v.replace(",", " ").split():
            if not part.isdigit():
                raise ValueError(part)
            out.append(int(part))
    return list(dict.fromkeys(out))


def _form(
    request: Request,
    ctx: Ctx,
    ids: str,
    discovered: str,
    wrongful: bool,
    error: str = "",
    report: IncidentReport | None = None,
    status: int = 200,
) -> Response:
    blocks = report_render.blocks(report) if report is not None else None
    return render(
        request,
        ctx,
        "report.html",
        {
            "ids": ids,
            "discovered": discovered,
            "wrongful": wrongful,
            "error": error,
            "report": report,
            "blocks": blocks,
        },
        status_code=status,
    )


@page(Role.REVIEWER)
async def report_form(request: Request, ctx: Ctx) -> Response:
    ids = " ".join(request.query_params.getlist("ids"))
    from datetime import datetime

    today = datetime.now(JST).date().isoformat()
    return _form(request, ctx, ids, today, False)


@page(Role.REVIEWER)
async def report_draft(request: Request, ctx: Ctx) -> Response:
    ids_text = ctx.field("ids")
    discovered_text = ctx.field("discovered")
    wrongful = ctx.field("wrongful") == "1"
    fmt = ctx.field("format") or "html"
    try:
        ids = _ids([ids_text])
    except ValueError as exc:
        msg = ctx.t("report.bad_id", id=str(exc))
        return _form(request, ctx, ids_text, discovered_text, wrongful, msg, status=400)
    if not ids or len(ids) > MAX_ENTRIES:
        msg = ctx.t("report.need_ids", n=MAX_ENTRIES)
        return _form(request, ctx, ids_text, discovered_text, wrongful, msg, status=400)
    try:
        discovered = date.fromisoformat(discovered_text) if discovered_text else None
    except ValueError:
        msg = ctx.t("report.bad_date")
        return _form(request, ctx, ids_text, discovered_text, wrongful, msg, status=400)
    if fmt not in FORMATS:
        fmt = "html"

    def make() -> IncidentReport:
        return draft(
            ctx.services.sendlog(),
            ids,
            discovered=discovered,
            wrongful_purpose=wrongful,
            actor=ctx.user.name,
            fmt=fmt,
            tz=JST,
        )

    try:
        report = await run_in_threadpool(make)
    except ReportError as exc:
        return _form(request, ctx, ids_text, discovered_text, wrongful, str(exc), status=400)
    except SendLogError as exc:
        return sendlog_down(request, ctx, exc)
    name = f"incident-{report.discovered.isoformat()}-{'-'.join(str(i) for i in ids[:5])}"
    if fmt == "md":
        return Response(
            report_render.markdown(report).encode("utf-8"),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.md"'},
        )
    if fmt == "docx":
        data = await run_in_threadpool(report_render.docx, report)
        return Response(
            data,
            media_type=_DOCX,
            headers={"Content-Disposition": f'attachment; filename="{name}.docx"'},
        )
    return _form(
        request, ctx, " ".join(map(str, ids)), report.discovered.isoformat(), wrongful, "", report
    )
