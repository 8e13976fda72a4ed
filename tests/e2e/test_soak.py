"""The short soak: 200 messages through a real Postfix and ``dlp serve`` (two serving
processes, PostgreSQL send log and hold queue) to a sink, while two serving processes are
killed with SIGKILL, the gateway's database connections are cut and the sink hangs.

The database fault here is ``pg_terminate_backend`` on the soak's own database, not a
server restart, so PostgreSQL tests running beside this one are not disturbed;
``bench/soak.py --pg restart`` restarts the whole server (BENCHMARKS.md).  Faults fire at
fractions of the mail done, not at fixed times, so a slow machine gets the same run.
"""

from __future__ import annotations

import pytest
from e2e_gateway import why_gateway_unusable
from e2e_postfix import why_unavailable
from e2e_soak import PG_ADMIN, FaultPlan, Soak, corpus

pytestmark = [pytest.mark.timeout(240), pytest.mark.postgres]


def _why_not() -> str | None:
    reason = why_unavailable() or why_gateway_unusable()
    if reason:
        return reason
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True):
            pass
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at 127.0.0.1:5432 (user postgres, trust) not reachable: {exc}"
    return None


def test_no_message_is_lost_under_kills_a_database_cut_and_a_stalled_next_hop() -> None:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    soak = Soak(processes=2, workers=1, next_hop_timeout=3.0)
    plan = FaultPlan(
        kill_at=(0.15, 0.55), pg_at=0.35, pg_mode="terminate", stall_at=0.75, stall_seconds=4.0
    )
    try:
        soak.start()
        outcome = soak.run(corpus(200, seed=11), plan, timeout=180)
    finally:
        soak.close()
    report = outcome.summary()
    print(report)  # shown with -s, and on failure
    # Every fault really happened: two serving processes died (and were restarted),
    # the gateway lost its database connections, the sink went silent.
    kills = [f for f in outcome.faults if f.kind == "kill"]
    assert len(kills) == 2 and all("serving process" in f.detail for f in kills), report
    assert outcome.restarts >= 2, report
    (pg,) = [f for f in outcome.faults if f.kind == "pg"]
    assert not pg.detail.endswith(": 0 connections"), report
    assert [f.kind for f in outcome.faults].count("stall") == 1, report
    # None lost, none where it must not be (a held message at the sink is a leak).
    assert outcome.lost == [] and outcome.misplaced == [], report
    assert len(outcome.at_sink) + len(outcome.held) + len(outcome.bounced) == 200, report
    # Every send the log must have is there: delivered attachments and findings, holds,
    # refusals - also for the messages whose first attempt a fault cut short.
    assert outcome.unrecorded == [], report
    # A duplicate only ever comes from the ack window: Postfix deferred the hop to the
    # gateway ("may be sent more than once") after the sink already had the message.
    assert all(d["where"] == "sink" and d["explained"] for d in outcome.duplicates), report
    # No half-held copy left behind, and the send log's chain survived the kills.
    assert outcome.pending_rows == 0, report
    assert outcome.log_verified, outcome.log_verify_output
