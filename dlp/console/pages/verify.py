"""Check the send log's hash chain from the browser: the same ``verify()`` as
``dlp log verify``, with the chain head to note down elsewhere (a ticket, a printout)
so that even a consistent rewrite of every later entry would be noticed.

Verification reads every entry (seconds for a year of mail), so it runs only on an
explicit POST, never on a page view.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dlp.console.users import Role
from dlp.console.web import Ctx, page, render
from dlp.sendlog.store import SendLogError


@page(Role.REVIEWER)
async def verify_page(request: Request, ctx: Ctx) -> Response:
    if request.method == "GET":
        return render(request, ctx, "verify.html", {"result": None, "error": ""})
    started = time.perf_counter()
    try:
        result = await run_in_threadpool(lambda: ctx.services.sendlog().verify())
    except SendLogError as exc:
        return render(
            request, ctx, "verify.html", {"result": None, "error": str(exc)}, status_code=503
        )
    return render(
        request,
        ctx,
        "verify.html",
        {"result": result, "error": "", "seconds": time.perf_counter() - started},
        status_code=200 if result.ok else 409,
    )
