"""Two gateways starting together on an empty PostgreSQL database.

Both create the send-log and hold-queue tables on first use; the second must
wait for the first and then find the work done, not fail with "relation
already exists" (which tempfailed the first messages of a fresh deployment).
"""

from __future__ import annotations

import multiprocessing as mp
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sendlog_support import PG_BASE, PG_HOWTO, QUARANTINE_KEY, pg_dsn, pg_reachable

from dlp.holdqueue.pg_store import PgQuarantine
from dlp.sendlog.pg_store import PostgresStore
from dlp.sendlog.record import SendRecord

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture()
def schema() -> Iterator[str]:
    if not pg_reachable():
        pytest.skip(PG_HOWTO)
    import psycopg

    name = "first_start_" + uuid.uuid4().hex[:10]
    with psycopg.connect(PG_BASE, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{name}" CASCADE')


def _first_start(dsn: str, barrier: object, results: object) -> None:
    barrier.wait(timeout=30)  # type: ignore[attr-defined]
    try:
        store = PostgresStore(dsn)
        store.append(SendRecord(time=datetime.now(UTC), audit_key="K", sender="a@b.jp"))
        store.close()
        queue = PgQuarantine(dsn, QUARANTINE_KEY.encode(), 30)
        queue.list()
        queue.close()
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


@pytest.mark.parametrize("attempt", range(3))
def test_two_gateways_create_the_tables_once(schema: str, attempt: int) -> None:
    del attempt  # the race is timing-dependent: a few tries
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(target=_first_start, args=(pg_dsn(schema), barrier, results)) for _ in range(3)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert outcomes == ["ok", "ok", "ok"]
    store = PostgresStore(pg_dsn(schema))
    try:
        result = store.verify()
        assert result.ok, result.message
        assert store.count() == 3
    finally:
        store.close()
