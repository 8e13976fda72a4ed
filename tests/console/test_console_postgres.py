"""The console on a PostgreSQL send log (several gateways, one log): the same pages,
and its own records (release, allowlist change) land in PostgreSQL.  Skipped, saying
how to enable it, when no server is reachable at 127.0.0.1:5432."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from console_support import (
    FAST_HASHER,
    PASSWORD,
    ROLES,
    Sink,
    csrf_of,
    hold_message,
    login,
    make_settings,
    seed_log,
)
from sendlog_support import PG_HOWTO, QUARANTINE_KEY, Backend, pg_reachable

from dlp.config import QuarantineSettings, SendLogSettings
from dlp.console.app import create_app
from dlp.console.services import Services
from dlp.console.users import Role, UserStore, users_db_path
from dlp.sendlog import LogFilter

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_services(tmp_path: Path, sink: Sink) -> Iterator[Services]:
    if not pg_reachable():
        pytest.skip(PG_HOWTO)
    backend = Backend("postgresql", tmp_path)
    try:
        settings = replace(
            make_settings(tmp_path, next_hop_port=sink.port),
            sendlog=SendLogSettings(backend="postgresql", postgresql_dsn=backend.dsn),
            quarantine=QuarantineSettings(dir="var/quarantine", encryption_key=QUARANTINE_KEY),
        )
        users = UserStore(users_db_path(settings.var_dir), hasher=FAST_HASHER)
        for role in ROLES:
            users.add(role, PASSWORD, Role(role))
        svc = Services(settings, users=users)
        seed_log(svc.sendlog())
        yield svc
        svc.close()
    finally:
        backend.cleanup()


def test_pages_and_records_on_postgresql(pg_services: Services, sink: Sink) -> None:
    from starlette.testclient import TestClient

    held = hold_message(pg_services.settings)
    with TestClient(
        create_app(pg_services.settings, pg_services),
        base_url="http://127.0.0.1",
        follow_redirects=False,
    ) as c:
        login(c, "admin", PASSWORD)
        page = c.get("/log?findings=yes").text
        assert re.search(r'<span id="total">10\b', page)
        assert c.get("/log/1").status_code == 200
        assert "<svg" in c.get("/").text
        export = c.get("/log/export.csv?verdict=reject")
        assert export.content.startswith(b"\xef\xbb\xbf")
        assert export.content.count(b"\r\n") == 1 + 6

        token = csrf_of(c.get(f"/held/{held.id}").text)
        r = c.post(f"/held/{held.id}/release", data={"csrf_token": token, "comment": "ok"})
        assert r.status_code == 303
        assert sink.wait_for(1)
        r = c.post(
            "/allowlist/add",
            data={
                "csrf_token": token,
                "domain": "pg-partner.co.jp",
                "section": "partner",
                "comment": "pg",
            },
        )
        assert r.status_code == 303
    store = pg_services.sendlog()
    assert store.count(LogFilter(event="release")) == 1
    assert store.count(LogFilter(event="allowlist_add")) == 2  # the seeded one and ours
    assert store.verify().ok
