"""Sign in, sign out, the language switch and changing one's own password."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dlp.console import i18n
from dlp.console.security import (
    CSRF_FIELD,
    LANG_COOKIE,
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    prelogin_token,
    set_cookie,
    tokens_match,
)
from dlp.console.users import Role, UserError
from dlp.console.web import Ctx, base_ctx, page, render, safe_next, see_other


async def login(request: Request) -> Response:
    ctx = base_ctx(request)
    key = ctx.services.key
    if request.method == "GET":
        msg = request.query_params.get("msg", "")
        notice = ctx.t(msg) if msg in _NOTICES else ""
        return _login_form(
            request, ctx, safe_next(request.query_params.get("next")), "", notice=notice
        )
    form = await request.form(max_fields=10, max_files=0)
    nonce = request.cookies.get(PRELOGIN_COOKIE, "")
    given = form.get(CSRF_FIELD, "")
    target = safe_next(str(form.get("next", "")))
    if (
        not nonce
        or not isinstance(given, str)
        or not tokens_match(prelogin_token(key, nonce), given)
    ):
        return _login_form(request, ctx, target, "login.expired", status=403)
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    user = await run_in_threadpool(ctx.services.users.authenticate, name, password)
    if user is None:
        return _login_form(request, ctx, target, "login.failed", status=401)
    token = await run_in_threadpool(ctx.services.users.open_session, user)
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, token)
    clear_cookie(response, request, PRELOGIN_COOKIE)
    return response


_NOTICES = frozenset({"users.password_changed_ok"})


def _login_form(
    request: Request, ctx: Ctx, target: str, error: str, status: int = 200, notice: str = ""
) -> Response:
    # A fresh nonce for each form shown: a token seen once cannot be replayed later.
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        ctx,
        "login.html",
        {
            "login_token": prelogin_token(ctx.services.key, nonce),
            "next": target,
            "error": ctx.t(error) if error else "",
            "notice": notice,
        },
        status_code=status,
    )
    set_cookie(response, request, PRELOGIN_COOKIE, nonce, max_age=3600)
    return response


@page(Role.REVIEWER)
async def logout(request: Request, ctx: Ctx) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await run_in_threadpool(ctx.services.users.close_session, token)
    response = see_other("/login")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


async def language(request: Request) -> Response:
    """Switching language needs no login: the login page has the switch too."""
    lang = request.path_params["lang"]
    target = safe_next(request.query_params.get("next"))
    response = RedirectResponse(target, status_code=303)
    if lang in i18n.LANGUAGES:
        set_cookie(response, request, LANG_COOKIE, lang, max_age=365 * 86400)
    return response


@page(Role.REVIEWER)
async def account(request: Request, ctx: Ctx) -> Response:
    """Any signed-in user may change their own password (knowing the current one)."""
    error = ""
    if request.method == "POST":
        users = ctx.services.users
        current = ctx.raw("current")
        new = ctx.raw("password")
        ok = await run_in_threadpool(users.authenticate, ctx.user.name, current)
        if ok is None:
            error = ctx.t("users.wrong_password")
        else:
            try:
                await run_in_threadpool(users.set_password, ctx.user.name, new)
            except UserError as exc:
                error = ctx.t("users.error", detail=str(exc))
            else:
                # set_password ended every session, this one included.
                response = see_other("/login", msg="users.password_changed_ok")
                clear_cookie(response, request, SESSION_COOKIE)
                return response
    return render(request, ctx, "account.html", {"error": error}, status_code=400 if error else 200)
