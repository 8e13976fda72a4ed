"""Account administration for admins: the web twin of `dlp console user ...`."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console.users import Role, UserError, UserStore, parse_role
from dlp.console.web import Ctx, page, render, see_other

_NOTICES = ("users.added", "users.removed", "users.updated")


@page(Role.ADMIN)
async def users_view(request: Request, ctx: Ctx) -> Response:
    return await _show(request, ctx, "")


async def _show(request: Request, ctx: Ctx, error: str) -> Response:
    accounts = await run_in_threadpool(ctx.services.users.users)
    done = request.query_params.get("done", "")
    name = request.query_params.get("name", "")
    notice = ctx.t(done, name=name) if done in _NOTICES else ""
    return render(
        request,
        ctx,
        "users.html",
        {"accounts": accounts, "roles": list(Role), "error": error, "notice": notice},
        status_code=400 if error else 200,
    )


def _is_last_admin(store: UserStore, name: str) -> bool:
    """Removing or demoting NAME would leave nobody able to manage accounts."""
    target = store.get(name)
    return target is not None and target.role is Role.ADMIN and store.count_admins() <= 1


@page(Role.ADMIN)
async def users_add(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    try:
        role = parse_role(ctx.field("role"))
        await run_in_threadpool(ctx.services.users.add, name, ctx.raw("password"), role)
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    return see_other("/users", done="users.added", name=name)


@page(Role.ADMIN)
async def users_remove(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    store = ctx.services.users
    if name == ctx.user.name:
        return await _show(request, ctx, ctx.t("users.self"))
    if await run_in_threadpool(_is_last_admin, store, name):
        return await _show(request, ctx, ctx.t("users.last_admin"))
    try:
        await run_in_threadpool(store.remove, name)
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    return see_other("/users", done="users.removed", name=name)


@page(Role.ADMIN)
async def users_role(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    store = ctx.services.users
    try:
        role = parse_role(ctx.field("role"))
        if role is not Role.ADMIN and await run_in_threadpool(_is_last_admin, store, name):
            return await _show(request, ctx, ctx.t("users.last_admin"))
        await run_in_threadpool(store.set_role, name, role)
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    return see_other("/users", done="users.updated", name=name)


@page(Role.ADMIN)
async def users_password(request: Request, ctx: Ctx) -> Response:
    name = ctx.field("name")
    try:
        await run_in_threadpool(ctx.services.users.set_password, name, ctx.raw("password"))
    except UserError as exc:
        return await _show(request, ctx, ctx.t("users.error", detail=str(exc)))
    return see_other("/users", done="users.updated", name=name)
