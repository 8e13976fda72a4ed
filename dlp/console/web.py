"""The plumbing every page shares: who is asking, may they, CSRF, and rendering.

Each page handler is wrapped by ``page(role)``.  The wrapper resolves the session
cookie, sends strangers to the login form, answers 403 to a signed-in user whose role
is too low, and on POST refuses a missing or wrong CSRF token before the handler runs.
Doing this in one place is what lets the tests walk every route for every role.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from dlp.console import i18n
from dlp.console.mask import scrub_display
from dlp.console.security import CSRF_FIELD, LANG_COOKIE, SESSION_COOKIE, tokens_match
from dlp.console.services import Services
from dlp.console.users import Role, Session, User
from dlp.detect.registry import display_name
from dlp.holdqueue.store import open_quarantine

TEMPLATES_DIR = Path(__file__).parent / "templates"
MAX_FORM_FIELDS = 50

_SAFE_NEXT = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to; anything else (another host, //evil) becomes default."""
    if value and _SAFE_NEXT.match(value):
        return value
    return default


def _finalize(value: Any) -> Any:
    """Applied to every ``{{ ... }}`` output: a last guard so a My Number in any field
    (a subject typed by a person, a file name) is never rendered.
    Markup (our own SVG charts and widgets) has already been built from guarded parts."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    return scrub_display(str(value))


def _lookalike_explanation(domain: str, resembles: str, lang: str) -> str:
    """What differs between a lookalike recipient and the domain it resembles."""
    from dlp.detect.lookalike import explain_pair

    words = explain_pair(domain, resembles)
    return words.en if lang == "en" else words.ja


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Masked before quoting: once quoted, a tab between digits is "%09" and the
    # finalize guard above would no longer see the number.
    env.filters["urlq"] = lambda v: quote(scrub_display(str(v)), safe="")
    env.globals["lookalike_explanation"] = _lookalike_explanation
    # What each detector is called comes from the detector's own module.
    env.globals["detector_name"] = display_name
    return Jinja2Templates(env=env)


@dataclass
class Ctx:
    """What a page handler knows about the request beyond the request itself."""

    services: Services
    lang: str
    t: i18n.Translator
    session: Session | None = None
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> User:
        assert self.session is not None  # page() guarantees it for signed-in pages
        return self.session.user

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token if self.session else ""

    def field(self, name: str) -> str:
        """A form field, trimmed (names, domains, comments)."""
        return self.raw(name).strip()

    def raw(self, name: str) -> str:
        """A form field as typed (passwords: spaces count)."""
        if self.form is None:
            return ""
        value = self.form.get(name, "")
        return value if isinstance(value, str) else ""


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def language_of(request: Request, services: Services) -> str:
    lang = request.cookies.get(LANG_COOKIE, "")
    return lang if lang in i18n.LANGUAGES else services.settings.console.language


def base_ctx(request: Request) -> Ctx:
    services = services_of(request)
    lang = language_of(request, services)
    return Ctx(services=services, lang=lang, t=i18n.translator(lang))


def page(role: Role) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: login required, role at least ``role``, CSRF on POST."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ctx = base_ctx(request)
            token = request.cookies.get(SESSION_COOKIE, "")
            ctx.session = await run_in_threadpool(ctx.services.users.session, token)
            if ctx.session is None:
                if request.method == "GET":
                    target = request.url.path + (
                        "?" + request.url.query if request.url.query else ""
                    )
                    return RedirectResponse("/login?" + urlencode({"next": target}), 303)
                return error_page(request, ctx, 401, "error.login_required")
            if request.method == "POST":
                ctx.form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
                given = ctx.form.get(CSRF_FIELD, "")
                if not isinstance(given, str) or not tokens_match(ctx.csrf_token, given):
                    return error_page(request, ctx, 403, "error.csrf")
            if not ctx.user.role.allows(role):
                return error_page(request, ctx, 403, "error.forbidden")
            return await handler(request, ctx)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


def _rule_reason(ctx: Ctx, name: str) -> str:
    """Why a rule holds mail, in the page's language: the rule's own reason text (as
    the sender's notice and the SMTP reply give it), or its action's default.  The
    held message's ``reasons`` are the gateway's technical record, in English."""
    from dlp.model import Action
    from dlp.policy import default_texts

    for rule in ctx.services.settings.policy.rules:
        if rule.name == name:
            try:
                ja, en = default_texts(Action(rule.action))
            except ValueError:
                ja, en = "", ""
            ja, en = rule.reason_ja or ja, rule.reason_en or en
            return en if ctx.lang == "en" else ja
    return ""


def render(
    request: Request,
    ctx: Ctx,
    template: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    full: dict[str, Any] = {
        "t": ctx.t,
        "lang": ctx.lang,
        "session": ctx.session,
        "user": ctx.session.user if ctx.session else None,
        "csrf_field": CSRF_FIELD,
        "csrf_token": ctx.csrf_token,
        "path": request.url.path,
        "here": request.url.path + ("?" + request.url.query if request.url.query else ""),
        "Role": Role,
        "rule_reason": lambda rule: _rule_reason(ctx, rule),
    }
    if ctx.session is not None:
        full["held_count"] = held_count(ctx)
    if context:
        full.update(context)
    response: HTMLResponse = templates.TemplateResponse(
        request, template, full, status_code=status_code
    )
    return response


def held_count(ctx: Ctx) -> int | None:
    """For the badge on the 保留メール tab: held mail is the daily work."""
    try:
        return open_quarantine(ctx.services.settings).depth()
    except Exception:  # the page itself says what is wrong with the queue
        return None


def error_page(request: Request, ctx: Ctx, status: int, message_key: str) -> HTMLResponse:
    return message_page(request, ctx, status, ctx.t(message_key))


def message_page(request: Request, ctx: Ctx, status: int, message: str) -> HTMLResponse:
    """The error page with a message already worded (e.g. with an exception's reason)."""
    return render(
        request, ctx, "error.html", {"status": status, "message": message}, status_code=status
    )


def sendlog_down(request: Request, ctx: Ctx, exc: Exception) -> HTMLResponse:
    """503 naming why the send log cannot be read."""
    return message_page(request, ctx, 503, ctx.t("error.sendlog", detail=str(exc)))


def see_other(path: str, **params: str) -> RedirectResponse:
    """Post/Redirect/Get: after a change, land on a page that a reload cannot repeat."""
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(path + ("?" + query if query else ""), status_code=303)
