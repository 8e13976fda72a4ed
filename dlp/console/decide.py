"""The sender / approver decision pages (issue 13), on ``[notify] listen``.

Served by ``dlp console`` on a listener of their own, so the admin console can
stay on loopback while senders on the LAN open their links.  Nobody signs in:
the link's signed token is the credential (``dlp.notify.tokens``).

* ``GET /d/<token>``  only *shows*: mail security scanners and link previews
  fetch every link in a mail, and such a fetch must never send or discard.
* ``POST /d/<token>`` with ``decision`` and ``csrf`` (an HMAC of the token, so
  only a page that showed the link can post) acts, through
  ``dlp.smtp.senderloop.decide`` (the first decision wins, under the hold's claim).

Every outcome - done, already decided, expired, forged - is a page in both
languages; nothing but the decision changes anything.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dlp.config import Settings
from dlp.console.mask import scrub_display
from dlp.console.security import SecurityHeaders
from dlp.notify.notices import JST
from dlp.notify.tokens import csrf_token, notify_key
from dlp.smtp import senderloop

_DIR = Path(__file__).parent
MAX_BODY_BYTES = 8192

_CHOICES = {
    "send": ("送信する", "Send"),
    "discard": ("送信しない（破棄）", "Do not send (discard)"),
    "send_meant": ("正しい宛先に送信する", "Send to the address I meant"),
    "send_now": ("今すぐ送信", "Send now"),
    "cancel": ("取り消す", "Cancel"),
    "approve": ("承認する", "Approve"),
    "reject": ("却下する", "Reject"),
}
_TITLES = {
    "confirm": ("送信前の確認", "Please confirm this message"),
    "delay": ("送信保留中のメール", "A message waiting to be sent"),
    "approve": ("承認依頼", "Approval requested"),
}
_NOT_SHOWN = {
    "expired": ("このリンクは期限切れです。", "This link has expired.", 410),
    "invalid": ("このリンクは無効です。", "This link is not valid.", 404),
    "refused": ("このリンクは無効です。", "This link is not valid.", 404),
    "decided": (
        "このメールはすでに処理済みです。何も変更していません。",
        "This message has already been decided; nothing was changed.",
        410,
    ),
}
_STATUS = {
    "done": 200,
    "decided": 410,
    "expired": 410,
    "invalid": 404,
    "busy": 409,
    "refused": 403,
    "error": 503,
}


def create_decision_app(settings: Settings) -> Starlette:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_DIR / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    # What the page shows of the held message passes the scrubber: the recipients
    # and sender are kept as they are for delivery (402893716522@… included), and
    # this page is served to the LAN without a sign-in.
    env.filters["masked"] = scrub_display
    template = env.get_template("decide.html")
    key = notify_key(settings)

    def page(status: int, **values: object) -> HTMLResponse:
        base: dict[str, object] = {"held": None, "bad": False, "title_ja": "", "title_en": ""}
        return HTMLResponse(template.render(**{**base, **values}), status_code=status)

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        held, _grant, why = await run_in_threadpool(senderloop.describe_link, settings, token)
        if held is None:
            ja, en, status = _NOT_SHOWN.get(why, _NOT_SHOWN["invalid"])
            return page(
                status, title_ja="送信の確認", title_en="Held message", message_ja=ja,
                message_en=en, bad=True,
            )  # fmt: skip
        title_ja, title_en = _TITLES[held.kind]
        return page(
            200,
            held=held,
            title_ja=title_ja,
            title_en=title_en,
            action=f"/d/{token}",
            csrf=csrf_token(key, token),
            deadline=held.expires_at.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")
            if held.expires_at
            else "",
            choices=[
                (c, *_CHOICES[c])
                for c in senderloop.DECISIONS[held.kind]
                if c != "send_meant" or held.meant
            ],
        )

    async def act(request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form()
        csrf, decision = str(form.get("csrf", "")), str(form.get("decision", ""))
        comment = str(form.get("comment", ""))
        if not hmac.compare_digest(csrf, csrf_token(key, token)):
            return page(
                403, title_ja="送信の確認", title_en="Held message", bad=True,
                message_ja="フォームが無効です。リンクを開き直してください。",
                message_en="The form is not valid; open the link again.",
            )  # fmt: skip
        client = request.client.host if request.client else ""
        outcome = await run_in_threadpool(
            senderloop.decide, settings, token, decision, client, comment
        )
        return page(
            _STATUS.get(outcome.state, 200),
            title_ja="送信の確認",
            title_en="Held message",
            message_ja=outcome.ja,
            message_en=outcome.en,
            bad=outcome.state != "done",
        )

    return Starlette(
        routes=[
            Route("/d/{token}", show, methods=["GET"]),
            Route("/d/{token}", act, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(_DIR / "static")), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        max_body_size=MAX_BODY_BYTES,
    )
