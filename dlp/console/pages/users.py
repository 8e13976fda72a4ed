"""Account administration for admins: the web twin of `dlp console user ...`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console.fmt import jst
from dlp.console.throttle import Busy
from dlp.console.users import LastAdminError, Role, UserError, parse_role
from dlp.console.web import Ctx, page, render, see_other

_NOTICES = ("users.added", "users.removed", "users.updated", "users.unlocked")


@page(Role.ADMIN)
async def users_view(request: Request, ctx: Ctx) -> Response:
    return await _show(request, ctx, "")


async def _show(request: Request, ctx: Ctx, error: str) -> Response:
    accounts = await run_in_threadpool(ctx.services.users.users)
    done = request.query_params.get("done", "")
    name = request.query_params.get("name", "")
    notice = ctx.t(done, name=name) if done in _NOTICES else ""
    now = time.time()
    locked = {
        a.name: jst(datetime.fromtimestamp(a.locked_until, UTC))
        for a in accounts
        if a.locked_until > now
    }
    return render(
        request,
        ctx,
        "users.html",
        {
            "accounts": accounts,
            "locked": locked,
            "roles": list(Role),
            "error": error,
            "notice": notice,
        },
        status_code=400 if error else 200,
    )


@page(Role.ADMIN)
async def users_add(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    try:
        role = parse_role(ctx.field("role"))
        # Hashing is Argon2 work: it waits for the same bounded pool as sign-ins.
        await ctx.services.login.run(ctx.services.users.add, name, ctx.raw("password"), role)
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    except Busy as exc:
        return await _show(request, ctx, ctx.t("login.busy", seconds=exc.retry_after))
    return see_other("/users", done="users.added", name=name)


@page(Role.ADMIN)
async def users_remove(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    store = ctx.services.users
    if name == ctx.user.name:
        return await _show(request, ctx, ctx.t("users.self"))
    return await _change(
        request, ctx, partial(store.remove, name, keep_an_admin=True), "users.removed", name
    )


@page(Role.ADMIN)
async def users_role(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    store = ctx.services.users
    try:
        role = parse_role(ctx.field("role"))
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    change = partial(store.set_role, name, role, keep_an_admin=True)
    return await _change(request, ctx, change, "users.updated", name)


async def _change(
    request: Request, ctx: Ctx, change: Callable[[], None], done: str, name: str
) -> Response:
    """Run an account change that must keep an admin; show why it was refused."""
    try:
        await run_in_threadpool(change)
    except LastAdminError:
        return await _show(request, ctx, ctx.t("users.last_admin"))
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    return see_other("/users", done=done, name=name)


@page(Role.ADMIN)
async def users_unlock(request: Request, ctx: Ctx) -> Response:
    """The web twin of `dlp console user unlock`: lift a sign-in lock now (logged)."""
    name = ctx.field("name")
    try:
        await run_in_threadpool(ctx.services.users.unlock, name)
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    return see_other("/users", done="users.unlocked", name=name)


@page(Role.ADMIN)
async def users_password(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    try:
        await ctx.services.login.run(ctx.services.users.set_password, name, ctx.raw("password"))
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    except Busy as exc:
        return await _show(request, ctx, ctx.t("login.busy", seconds=exc.retry_after))
    return see_other("/users", done="users.updated", name=name)
