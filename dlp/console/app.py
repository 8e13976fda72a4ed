"""The console's ASGI application: routes, middleware and shared state.

``create_app(settings)`` is what ``dlp console serve`` runs under uvicorn and what the
tests drive with Starlette's TestClient.  Everything but the stylesheet and the login
form needs a signed-in user (see ``web.page``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dlp.config import Settings
from dlp.console.pages import allowlist as allowlist
from dlp.console.pages import analysis as analysis
from dlp.console.pages import auth as auth
from dlp.console.pages import dashboard as dashboard
from dlp.console.pages import held as held
from dlp.console.pages import incident as incident
from dlp.console.pages import log as log
from dlp.console.pages import users as users
from dlp.console.pages import verify as verify
from dlp.console.security import SecurityHeaders
from dlp.console.services import Services
from dlp.console.web import base_ctx, error_page, make_templates

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024
"""Forms here are a few fields; nothing legitimate is larger."""
LOCK_SWEEP_SECONDS = 15.0
"""How often ended account locks are looked for, so the log says when each ended."""

logger = logging.getLogger("dlp.console.app")


def routes() -> list[Route | Mount]:
    return [
        Route("/login", auth.login, methods=["GET", "POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        Route("/lang/{lang}", auth.language, methods=["GET"]),
        Route("/account", auth.account, methods=["GET", "POST"]),
        Route("/", dashboard.dashboard, methods=["GET"]),
        Route("/log", log.log_list, methods=["GET"]),
        Route("/log/export.csv", log.log_export, methods=["GET"]),
        Route("/log/{entry_id:int}", log.log_entry, methods=["GET"]),
        Route("/analysis", analysis.analysis_page, methods=["GET"]),
        Route("/analysis.csv", analysis.analysis_csv, methods=["GET"]),
        Route("/report", incident.report_form, methods=["GET"]),
        Route("/report", incident.report_draft, methods=["POST"]),
        Route("/held", held.held_list, methods=["GET"]),
        Route("/held/{held_id}", held.held_detail, methods=["GET"]),
        Route("/held/{held_id}/release", held.held_release, methods=["POST"]),
        Route("/held/{held_id}/discard", held.held_discard, methods=["POST"]),
        Route("/allowlist", allowlist.allowlist_view, methods=["GET"]),
        Route("/allowlist/add", allowlist.allowlist_add, methods=["POST"]),
        Route("/allowlist/remove", allowlist.allowlist_remove, methods=["POST"]),
        Route("/verify", verify.verify_page, methods=["GET", "POST"]),
        Route("/users", users.users_view, methods=["GET"]),
        Route("/users/add", users.users_add, methods=["POST"]),
        Route("/users/remove", users.users_remove, methods=["POST"]),
        Route("/users/role", users.users_role, methods=["POST"]),
        Route("/users/password", users.users_password, methods=["POST"]),
        Route("/users/unlock", users.users_unlock, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    ctx = base_ctx(request)
    key = "error.not_found" if exc.status_code == 404 else "error.title"
    return error_page(request, ctx, exc.status_code, key)


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    services = services or Services(settings)

    async def sweep_locks() -> None:
        while True:
            await asyncio.sleep(LOCK_SWEEP_SECONDS)
            try:
                await run_in_threadpool(services.users.expire_locks)
            except Exception:  # the next sign-in ends its own lock anyway
                logger.warning("could not look for ended account locks", exc_info=True)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(sweep_locks())
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            services.close()

    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.services = services
    app.state.templates = make_templates()
    return app
