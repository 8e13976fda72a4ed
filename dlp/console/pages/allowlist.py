"""The allowlist: everyone may read it, admins change it.

Adding uses the CLI's own validation (``dlp.allowlist.validate_domain``) and its
warnings (``dlp.allowlist.entry_warnings``: the entry looks like a protected domain,
is already trusted, or is a public mail service).  Where the CLI asks "Add anyway?" at
the terminal, the page shows the warning and asks for an explicit confirmation.
Every change is written with ``update_allowlist`` (locked, atomic) and recorded in
the send log as ``allowlist_add`` / ``allowlist_remove`` with the console user as
actor; a running gateway picks the file up by itself.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.allowlist import (
    EXTERNAL,
    FREEMAIL,
    OWN,
    PARTNER,
    SECTIONS,
    Allowlist,
    AllowlistError,
    entry_warnings,
    load_allowlist,
    update_allowlist,
    validate_domain,
)
from dlp.console.users import Role
from dlp.console.web import Ctx, page, render, see_other
from dlp.sendlog.record import record_for_event
from dlp.sendlog.store import SendLogError

MAX_COMMENT = 2000
_NOTICES = ("allow.added", "allow.removed")


def _load(ctx: Ctx) -> Allowlist:
    path = ctx.services.settings.allowlist_path
    return load_allowlist(path) if path.exists() else Allowlist()


async def _show(
    request: Request, ctx: Ctx, *, error: str = "", form: dict[str, Any] | None = None
) -> Response:
    status = 400 if error or (form and form.get("warnings")) else 200
    try:
        current = await run_in_threadpool(_load, ctx)
        load_error = ""
    except AllowlistError as exc:
        current, load_error = Allowlist(), ctx.t("allow.error", detail=str(exc))
        status = 500
    done = request.query_params.get("done", "")
    notice = ctx.t(done, domain=request.query_params.get("domain", "")) if done in _NOTICES else ""
    return render(
        request,
        ctx,
        "allowlist.html",
        {
            "al": current,
            "path": str(ctx.services.settings.allowlist_path),
            "error": error or load_error,
            "notice": notice,
            "form": form or {"domain": "", "section": PARTNER, "mynumber": False, "comment": ""},
            "sections": SECTIONS,
            "can_edit": ctx.user.role.allows(Role.ADMIN),
        },
        status_code=status,
    )


@page(Role.REVIEWER)
async def allowlist_view(request: Request, ctx: Ctx) -> Response:
    return await _show(request, ctx)


def _record(ctx: Ctx, event: str, domain: str, section: str, comment: str) -> None:
    detail = {"domain": domain, "via": "console"}
    if section:
        detail["section"] = section
    ctx.services.sendlog().append(
        record_for_event(event=event, actor=ctx.user.name, comment=comment, detail=detail)
    )


@page(Role.ADMIN)
async def allowlist_add(request: Request, ctx: Ctx) -> Response:
    section = ctx.field("section") or PARTNER
    mynumber = ctx.field("mynumber") == "on"
    comment = ctx.field("comment")[:MAX_COMMENT]
    form: dict[str, Any] = {
        "domain": ctx.field("domain"),
        "section": section,
        "mynumber": mynumber,
        "comment": comment,
    }
    if section not in (OWN, PARTNER, EXTERNAL, FREEMAIL):
        return await _show(request, ctx, error=ctx.t("allow.invalid", detail=section), form=form)
    if mynumber and section != PARTNER:
        detail = "mynumber applies to partners only"
        return await _show(request, ctx, error=ctx.t("allow.invalid", detail=detail), form=form)
    try:
        domain = validate_domain(form["domain"])
    except ValueError as exc:
        return await _show(request, ctx, error=ctx.t("allow.invalid", detail=str(exc)), form=form)
    if not comment:
        return await _show(request, ctx, error=ctx.t("common.comment_required"), form=form)
    settings = ctx.services.settings
    try:
        current = await run_in_threadpool(_load, ctx)
    except AllowlistError:
        return await _show(request, ctx)
    if current.section_of(domain) == section and (domain in current.mynumber_partners) == mynumber:
        return see_other("/allowlist", done="allow.added", domain=domain)
    warnings = entry_warnings(domain, section, current, settings.domains.builtin_protected)
    if warnings and ctx.field("confirm") != "yes":
        form = {**form, "domain": domain, "warnings": warnings}
        return await _show(request, ctx, form=form)

    try:
        await run_in_threadpool(
            update_allowlist,
            settings.allowlist_path,
            lambda al: al.with_entry(section, domain, mynumber=mynumber),
        )
    except (AllowlistError, OSError) as exc:
        return await _show(request, ctx, error=ctx.t("allow.invalid", detail=str(exc)), form=form)
    return await _recorded(request, ctx, "allowlist_add", domain, section, comment)


@page(Role.ADMIN)
async def allowlist_remove(request: Request, ctx: Ctx) -> Response:
    comment = ctx.field("comment")[:MAX_COMMENT]
    try:
        domain = validate_domain(ctx.field("domain"))
    except ValueError as exc:
        return await _show(request, ctx, error=ctx.t("allow.invalid", detail=str(exc)))
    if not comment:
        return await _show(request, ctx, error=ctx.t("common.comment_required"))
    settings = ctx.services.settings
    try:
        current = await run_in_threadpool(_load, ctx)
    except AllowlistError:
        return await _show(request, ctx)
    if current.section_of(domain) is None:
        return await _show(request, ctx, error=ctx.t("allow.not_listed", domain=domain))

    try:
        await run_in_threadpool(
            update_allowlist, settings.allowlist_path, lambda al: al.without(domain)
        )
    except (AllowlistError, OSError) as exc:
        return await _show(request, ctx, error=ctx.t("allow.invalid", detail=str(exc)))
    return await _recorded(request, ctx, "allowlist_remove", domain, "", comment)


async def _recorded(
    request: Request, ctx: Ctx, event: str, domain: str, section: str, comment: str
) -> Response:
    """Record a change already made.  The file and the log cannot share a transaction,
    so the change comes first (as in the CLI) and a failed record is said plainly."""
    try:
        await run_in_threadpool(_record, ctx, event, domain, section, comment)
    except SendLogError as exc:
        return await _show(request, ctx, error=ctx.t("allow.not_recorded", detail=str(exc)))
    done = "allow.added" if event == "allowlist_add" else "allow.removed"
    return see_other("/allowlist", done=done, domain=domain)
