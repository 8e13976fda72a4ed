"""Two Postfix machines, each with its own gateway on loopback, one PostgreSQL send log
and hold queue: the topology deploy/postfix/README.md recommends for several gateways.

The second "machine" is a second private Postfix instance with its own queue and ports;
both deliver to the same sink.  Both gateways write to one schema of the test database,
and the log must come out as one hash chain holding both messages, readable and
verifiable from either gateway.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from e2e_client import build_message, marker, submit
from e2e_gateway import DLP, EXTERNAL_DOMAIN, SENDER, Gateway, why_gateway_unusable
from e2e_postfix import PostfixInstance, PostfixPorts, keep_logs
from e2e_sink import Sink
from support import free_ports

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

PG_CONNINFO = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"dlp_e2e_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database test) not reachable: {exc}")
    try:
        yield f"{PG_CONNINFO} options=-csearch_path={schema}"
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def second_postfix(sink: Sink, postfix: PostfixInstance) -> Iterator[PostfixInstance]:
    """Another Postfix "machine": own configuration, queue and ports; same Internet."""
    root = Path(tempfile.mkdtemp(prefix="dlp-e2e-b-"))
    submit_port, before_queue, reinject, gateway = free_ports(4)
    instance = PostfixInstance(
        root, PostfixPorts(submit_port, before_queue, reinject, gateway, sink.port)
    )
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        keep_logs(root, prefix="second-")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def two_gateways(
    e2e_root: Path, postfix: PostfixInstance, second_postfix: PostfixInstance, pg_schema: str
) -> Iterator[tuple[Gateway, Gateway]]:
    reason = why_gateway_unusable()
    if reason:
        pytest.skip(reason)
    gateways = []
    # Held messages live in the shared database too: every gateway needs the same key.
    key = Fernet.generate_key().decode()
    try:
        for name, instance in (("gw-a", postfix), ("gw-b", second_postfix)):
            root = e2e_root / name
            root.mkdir(exist_ok=True)
            gateways.append(
                Gateway(root, instance.ports, postgresql_dsn=pg_schema, quarantine_key=key)
            )
        # The install step deploy/postfix/README.md prescribes: create the tables once,
        # from one gateway, before mail flows.  (Two gateways whose *first* messages
        # arrive together on an empty database race to create them; the loser
        # tempfails that message, which Postfix retries.)
        _dlp_ok(gateways[0], "log", "verify")
        for gw in gateways:
            gw.process.start(timeout=60)
        yield gateways[0], gateways[1]
    finally:
        for gw in gateways:
            gw.process.stop()


def test_two_postfix_machines_two_gateways_one_send_log(
    postfix: PostfixInstance,
    second_postfix: PostfixInstance,
    sink: Sink,
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    sent: dict[str, tuple[str, bytes]] = {}
    for instance in (postfix, second_postfix):
        tag = marker()
        rcpt = f"bob@{EXTERNAL_DOMAIN}"
        attachment = f"{tag},1\n".encode()
        sub = submit(
            instance.ports.submit,
            SENDER,
            [rcpt],
            build_message(
                sender=SENDER,
                recipients=[rcpt],
                subject=tag,
                body="添付あり\n",
                attachment=("list.csv", attachment, "text/csv"),
            ),
        )
        sent[sub.queue_id] = (tag, attachment)
    for tag, _ in sent.values():
        sink.wait(lambda tag=tag: sink.with_marker(tag), 30, f"{tag} at the sink")
    postfix.wait_queue_empty()
    second_postfix.wait_queue_empty()

    a, b = two_gateways
    # Either gateway reads the one log and finds both machines' messages under their
    # own Postfix queue ids.
    for gw in (a, b):
        entries = [e for e in gw.sendlog("--event", "message") if e["audit_key"] in sent]
        assert sorted(e["audit_key"] for e in entries) == sorted(sent)
        for e in entries:
            _tag, data = sent[e["audit_key"]]
            assert [x["sha256"] for x in e["attachments"]] == [hashlib.sha256(data).hexdigest()]
    # One chain: the second entry links to the first, whichever gateway wrote it.
    first, second = sorted(a.sendlog("--oldest"), key=lambda e: e["id"])[-2:]
    assert second["prev_hash"] == first["hash"]
    for gw in (a, b):
        _dlp_ok(gw, "log", "verify")


def _dlp_ok(gw: Gateway, *args: str) -> None:
    done = subprocess.run(
        [str(DLP), *args, "--config", str(gw.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_held_on_one_machine_released_from_the_other(
    postfix: PostfixInstance,
    second_postfix: PostfixInstance,
    sink: Sink,
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    a, b = two_gateways
    tag = marker()
    rcpt = f"payroll@{EXTERNAL_DOMAIN}"
    body = "従業員の個人番号: 1234 5678 9018\n"
    sub = submit(
        second_postfix.ports.submit,
        SENDER,
        [rcpt],
        build_message(sender=SENDER, recipients=[rcpt], subject=tag, body=body),
    )
    qid = sub.queue_id
    second_postfix.wait_queue_empty()
    # Held by gateway B, seen (and released) from gateway A: one shared hold queue.
    held = [h for h in a.quarantine() if h.get("audit_key") == qid]
    assert len(held) == 1, a.quarantine()
    assert sink.with_marker(tag) == []
    _dlp_ok(a, "quarantine", "release", str(held[0]["id"]), "--comment", "e2e")
    got = sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink after release")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1 and got[0].rcpt_tos == (rcpt,)
    assert [h for h in b.quarantine() if h.get("audit_key") == qid] == []
    events = [e["event"] for e in b.sendlog_for(qid)]
    assert events.count("message") == 1 and events.count("release") == 1, events
