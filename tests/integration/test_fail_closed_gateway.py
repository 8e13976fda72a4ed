"""Issue 11 through the real gateway: each trick that once made the scanner read
less is held (never delivered as clean), is in the send log, and leaves no
number in it.  Real SMTP client → gateway → real aiosmtpd next hop."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator

import pytest
from failclosed_support import (
    EXTERNAL,
    NUMBERS,
    SENDER,
    archive_over_member_budget,
    broken_utf8,
    many_parts,
    nested_comment,
    tabbed_subject,
    two_boundaries,
    two_content_types,
    two_transfer_encodings,
)
from gwtools import InProcessGateway, LoopThread, Sink, sendlog_entries, write_config

pytestmark = pytest.mark.timeout(120)
OWN = "colleague@example.lg.jp"


@pytest.fixture(scope="module")
def gw(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    cfg = write_config(
        tmp_path_factory.mktemp("failclosed"), next_hop_port=sink.port, scan={"max_members": 10}
    )
    g = InProcessGateway(cfg, lt)
    yield g
    g.stop()


def _send(gw: InProcessGateway, raw: bytes, rcpt: str = EXTERNAL) -> str:
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as c:
        c.ehlo("mta.example.lg.jp")
        c.mail(SENDER)
        c.rcpt(rcpt)
        code, reply = c.data(raw)
    assert code == 250, reply
    return reply.decode()


TRICKS: dict[str, Callable[[], bytes]] = {
    "nested-comment": nested_comment,
    "many-parts": many_parts,
    "two-boundaries": two_boundaries,
    "two-boundaries-real-first": lambda: two_boundaries(decoy_first=False),
    "two-content-types": two_content_types,
    "two-transfer-encodings": two_transfer_encodings,
    "broken-utf8": broken_utf8,
    "archive-budget": lambda: archive_over_member_budget(12),
    "tabbed-subject": tabbed_subject,
}


@pytest.mark.parametrize("name", list(TRICKS))
def test_trick_is_held_and_recorded_not_delivered(
    name: str, gw: InProcessGateway, sink: Sink
) -> None:
    sink.messages.clear()
    raw = TRICKS[name]()
    reply = _send(gw, raw)
    assert "2.6.0" in reply, f"{name}: not held: {reply}"
    assert sink.messages == []
    mid = re.search(rb"Message-ID: (<[^>]+>)", raw).group(1).decode()  # type: ignore[union-attr]
    held = [h for h in gw.gateway.quarantine.list() if h.message_id == mid]
    assert len(held) == 1
    entries = [
        e.record for e in sendlog_entries(gw.settings) if e.record.audit_key == held[0].audit_key
    ]
    assert [e.action for e in entries if e.event == "message"] == ["hold"]
    # the filter keeps no My Numbers: not one in what the log stored, in any form
    stored = repr([e.to_json() for e in entries])
    # Digests and timestamps hold random digits: a last four may turn up there by chance.
    words = re.sub(r"[0-9a-f]{64}|\d{4}-\d\d-\d\dT[\d:.]+", "", stored)
    for n in NUMBERS:
        assert n not in stored and "\\t".join(n) not in stored and n[-4:] not in words


def test_incomplete_mail_inside_is_delivered_but_recorded(gw: InProcessGateway, sink: Sink) -> None:
    sink.messages.clear()
    raw = many_parts().replace(b"<many-parts@", b"<many-parts-inside@")
    reply = _send(gw, raw, rcpt=OWN)
    assert "2.6.0" not in reply
    assert len(sink.wait_for(1)) == 1
    (entry,) = [
        e.record
        for e in sendlog_entries(gw.settings)
        if e.record.message_id == "<many-parts-inside@example.lg.jp>"
        and e.record.event == "message"
    ]
    assert entry.action == "deliver"
    assert any("5000 MIME parts" in u for u in entry.unread)
