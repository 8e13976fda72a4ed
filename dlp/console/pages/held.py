"""Held mail: the list with reason and age, one message with its findings, and the
two decisions (release, discard), each with a required comment.

Both decisions go through ``dlp.smtp.release`` / ``dlp.holdqueue.decisions`` - the same code as
``dlp quarantine release|delete`` - which records the event (who, when, comment)
in the send log before the message leaves the queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.config import Settings
from dlp.console import fmt
from dlp.console.users import Role
from dlp.console.web import Ctx, error_page, message_page, page, render, see_other
from dlp.holdqueue.decisions import ReleaseBusy, ReleaseError, discard
from dlp.holdqueue.store import HeldMessage, QuarantineError, open_quarantine
from dlp.model import Finding, ScanReport
from dlp.scanner import scan_message
from dlp.sendlog.store import SendLogError
from dlp.smtp.release import release

MAX_COMMENT = 2000
_NOTICES = ("held.released", "held.discarded", "held.gone")


def _age(ctx: Ctx, held: HeldMessage, now: datetime) -> str:
    unit, n = fmt.age_parts(held.held_at, now)
    return ctx.t(f"held.age.{unit}", n=n)


@page(Role.REVIEWER)
async def held_list(request: Request, ctx: Ctx) -> Response:
    try:
        items = await run_in_threadpool(lambda: open_quarantine(ctx.services.settings).list())
    except QuarantineError as exc:
        return _queue_down(request, ctx, exc)
    now = datetime.now(UTC)
    items.sort(key=lambda h: h.held_at)  # oldest first: the one waiting longest
    done = request.query_params.get("done", "")
    notice = ctx.t(done, reply=request.query_params.get("reply", "")) if done in _NOTICES else ""
    return render(
        request,
        ctx,
        "held.html",
        {
            "items": [(h, _age(ctx, h, now)) for h in items],
            "notice": notice,
            "retention_days": ctx.services.settings.quarantine.retention_days,
            "fmt": fmt,
        },
    )


@page(Role.REVIEWER)
async def held_detail(request: Request, ctx: Ctx) -> Response:
    return await _detail(request, ctx, "", 200)


async def _detail(request: Request, ctx: Ctx, error: str, status: int) -> Response:
    held_id = request.path_params["held_id"]

    def load() -> tuple[HeldMessage | None, ScanReport | None]:
        queue = open_quarantine(ctx.services.settings)
        held = queue.get(held_id)
        if held is None:
            return None, None
        return held, _rescan(ctx, queue.read(held_id), held_id)

    try:
        held, report = await run_in_threadpool(load)
    except QuarantineError as exc:
        if "not a held-message id" in str(exc) or "no held message" in str(exc):
            return error_page(request, ctx, 404, "error.not_found")
        return _queue_down(request, ctx, exc)
    if held is None or report is None:
        return error_page(request, ctx, 404, "error.not_found")
    context: dict[str, Any] = {
        "h": held,
        "age": _age(ctx, held, datetime.now(UTC)),
        "findings": group_findings(report.findings),
        "attachments": report.attachments,
        "rescan_problem": report.error,
        "error": error,
        "can_decide": ctx.user.role.allows(Role.APPROVER),
        "fmt": fmt,
        "comment": ctx.field("comment"),
    }
    return render(request, ctx, "held_detail.html", context, status_code=status)


def _rescan(ctx: Ctx, raw: bytes, held_id: str) -> ScanReport:
    """Scan the held message again to show where the findings are and what it carries.

    The hold queue keeps counts only; the locations and masked displays come from
    scanning the held copy now with the same scanner and settings the gateway uses.
    Findings carry masked displays only: a page must show no number."""
    return scan_message(raw, ctx.services.settings.scan, source=f"held:{held_id}")


@dataclass(frozen=True, slots=True)
class FindingRow:
    """Findings alike in all but their offset, counted: a file of 500 numbers is one
    row per column, not 500 rows."""

    detector: str
    confidence: str
    location: str
    masked: str
    reason: str
    count: int


def group_findings(findings: Sequence[Finding]) -> list[FindingRow]:
    counts: Counter[tuple[str, str, str, str, str]] = Counter(
        (f.detector, f.confidence.value, f.location, f.masked, f.reason) for f in findings
    )
    return [FindingRow(*key, count=n) for key, n in counts.items()]


def _is_held(settings: Settings, held_id: str) -> bool:
    return open_quarantine(settings).get(held_id) is not None


def _comment(ctx: Ctx) -> str:
    return ctx.field("comment")[:MAX_COMMENT]


@page(Role.APPROVER)
async def held_release(request: Request, ctx: Ctx) -> Response:
    held_id = request.path_params["held_id"]
    comment = _comment(ctx)
    if not comment:
        return await _detail(request, ctx, ctx.t("common.comment_required"), 400)
    settings = ctx.services.settings
    try:
        if not await run_in_threadpool(_is_held, settings, held_id):
            return see_other("/held", done="held.gone")
        reply = await run_in_threadpool(release, settings, held_id, ctx.user.name, comment)
    except ReleaseBusy:
        return await _detail(request, ctx, ctx.t("held.busy"), 409)
    except (ReleaseError, QuarantineError, SendLogError) as exc:
        if not await run_in_threadpool(_is_held, settings, held_id):
            # Sent, but something after it failed (e.g. the record): say exactly that.
            return _queue_down(request, ctx, exc)
        return await _detail(request, ctx, ctx.t("held.release_failed", detail=str(exc)), 502)
    return see_other("/held", done="held.released", reply=str(reply))


@page(Role.APPROVER)
async def held_discard(request: Request, ctx: Ctx) -> Response:
    held_id = request.path_params["held_id"]
    comment = _comment(ctx)
    if not comment:
        return await _detail(request, ctx, ctx.t("common.comment_required"), 400)
    settings = ctx.services.settings
    try:
        if not await run_in_threadpool(_is_held, settings, held_id):
            return see_other("/held", done="held.gone")
        await run_in_threadpool(discard, settings, held_id, ctx.user.name, comment)
    except ReleaseBusy:
        return await _detail(request, ctx, ctx.t("held.busy"), 409)
    except (ReleaseError, QuarantineError, SendLogError) as exc:
        return _queue_down(request, ctx, exc)
    return see_other("/held", done="held.discarded")


def _queue_down(request: Request, ctx: Ctx, exc: Exception) -> Response:
    return message_page(request, ctx, 503, str(exc))
