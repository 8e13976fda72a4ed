"""Sign in, sign out, the language switch and changing one's own password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

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
from dlp.console.throttle import Busy
from dlp.console.users import Role, User, UserError
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
    refused, user = await checked_login(request, ctx, name, password)
    if refused is not None:
        return _login_form(request, ctx, target, "", refused=refused)
    if user is None:
        n = ctx.services.settings.console.max_failed_logins
        return _login_form(request, ctx, target, "login.failed", status=401, n=n)
    token = await run_in_threadpool(ctx.services.users.open_session, user)
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, token)
    clear_cookie(response, request, PRELOGIN_COOKIE)
    return response


_NOTICES = frozenset({"users.password_changed_ok"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """A sign-in not even tried: 429 (this address, too often) or 503 (too many at once)."""

    status: int
    key: str
    retry_after: int


async def checked_login(
    request: Request, ctx: Ctx, name: str, password: str
) -> tuple[Refusal | None, User | None]:
    """Every password check a request can cause goes through here: the address's
    rate first, then the bounded Argon2 pool (dlp/console/throttle.py)."""
    gate = ctx.services.login
    wait = gate.admit(request.client.host if request.client else "")
    if wait is not None:
        return Refusal(429, "login.throttled", wait), None
    try:
        return None, await gate.run(ctx.services.users.authenticate, name, password)
    except Busy as exc:
        return Refusal(503, "login.busy", exc.retry_after), None


def _login_form(
    request: Request,
    ctx: Ctx,
    target: str,
    error: str,
    status: int = 200,
    notice: str = "",
    refused: Refusal | None = None,
    **values: object,
) -> Response:
    error_text, error_also = (ctx.t(error, **values) if error else ""), ""
    if refused is not None:
        # Both languages, Japanese first: the client may be a script, or a person
        # whose language cookie we never saw.
        error_text, error_also = i18n.both(refused.key, seconds=refused.retry_after)
        status = refused.status
    # A fresh nonce for each form shown: a token seen once cannot be replayed later.
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        ctx,
        "login.html",
        {
            "login_token": prelogin_token(ctx.services.key, nonce),
            "next": target,
            "error": error_text,
            "error_also": error_also,
            "notice": notice,
        },
        status_code=status,
    )
    if refused is not None:
        response.headers["Retry-After"] = str(refused.retry_after)  # RFC 9110 §10.2.3
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
        refused, ok = await checked_login(request, ctx, ctx.user.name, current)
        if refused is not None:
            page_ = render(
                request,
                ctx,
                "error.html",
                {"status": refused.status, "message": ctx.t(refused.key,
                                                            seconds=refused.retry_after)},
                status_code=refused.status,
            )  # fmt: skip
            page_.headers["Retry-After"] = str(refused.retry_after)
            return page_
        if ok is None:
            error = ctx.t("users.wrong_password")
        else:
            try:
                await ctx.services.login.run(users.set_password, ctx.user.name, new)
            except UserError as exc:
                error = ctx.t("users.error", detail=str(exc))
            except Busy as exc:
                error = ctx.t("login.busy", seconds=exc.retry_after)
            else:
                # set_password ended every session, this one included.
                response = see_other("/login", msg="users.password_changed_ok")
                clear_cookie(response, request, SESSION_COOKIE)
                return response
    return render(request, ctx, "account.html", {"error": error}, status_code=400 if error else 200)
