"""Check the send log's hash chain from the browser: the same check as ``dlp log
verify`` - the whole chain, and, with ``[sendlog] head_key_file`` set, every signed
chain head in the heads file (a consistent rewrite of the database shows there) -
after which the head is written to the application log and signed like a
``dlp log verify`` (``dlp.sendlog.heads``).

Verification reads every entry (seconds for a year of mail), so it runs only on an
explicit POST, never on a page view.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console.services import Services
from dlp.console.users import Role
from dlp.console.web import Ctx, page, render
from dlp.sendlog import head_key
from dlp.sendlog.heads import HeadReport, HeadsFile, HeadsFileError, attest, log_head
from dlp.sendlog.store import SendLogError


def _verify(services: Services) -> HeadReport:
    settings = services.settings
    key, key_error = head_key(settings)
    report = attest(
        services.sendlog(),
        key=key,
        heads_file=HeadsFile(settings.heads_path) if key is not None else None,
        retention_days=settings.sendlog.retention_days,
        source="console",
        now=datetime.now(UTC),
        full=True,
    )
    if key_error:
        report = replace(report, error=key_error)
    log_head(report)
    return report


@page(Role.REVIEWER)
async def verify_page(request: Request, ctx: Ctx) -> Response:
    if request.method == "GET":
        return render(request, ctx, "verify.html", {"result": None, "error": ""})
    started = time.perf_counter()
    try:
        report = await run_in_threadpool(_verify, ctx.services)
    except (SendLogError, HeadsFileError) as exc:
        return render(
            request, ctx, "verify.html", {"result": None, "error": str(exc)}, status_code=503
        )
    return render(
        request,
        ctx,
        "verify.html",
        {
            "result": report.chain,
            "heads": report.heads,
            "report": report,
            "keyed": ctx.services.settings.head_key_path is not None,
            "error": "",
            "seconds": time.perf_counter() - started,
        },
        status_code=200 if report.ok else 409,
    )
