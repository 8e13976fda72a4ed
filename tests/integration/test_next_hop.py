"""The next hop as the gateway speaks to it, with and without PIPELINING (issue 17).

Where the next hop offers PIPELINING (Postfix does), MAIL is written with the
first RCPT, in one write, and its reply read with that RCPT's, and DATA goes out
while the client is still sending the message (``relay.NextHop``).  These tests hold both ways of
speaking to the same outcomes: what the client is told, and what reached the
next hop — never a message the client was not told 250 for, never a held one.
BDAT (CHUNKING) is exercised against a real Postfix in tests/e2e.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Callable
from email import message_from_bytes

import pytest
from gwtools import (
    EXTERNAL,
    SENDER,
    InProcessGateway,
    LoopThread,
    RawClient,
    Received,
    Sink,
    plain,
    write_config,
)
from support import my_number

pytestmark = pytest.mark.timeout(60)

EXTERNAL2 = "other@torihikisaki.co.jp"


HELD_BODY = (
    f"個人番号: {my_number('12345678901')}\r\nマイナンバー {my_number('23456789012')}\r\n"
    f"個人番号：{my_number('98765432109')}"
)


@pytest.fixture(autouse=True)
def fresh(hop: Sink) -> None:
    hop.messages.clear()
    hop.behaviour.__init__()  # type: ignore[misc]


def subjects(got: list[Received]) -> list[str]:
    return [str(message_from_bytes(m.content)["Subject"]) for m in got]


def client(port: int) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", port, timeout=30)
    c.ehlo("mta.example.lg.jp")
    return c


def test_several_messages_and_rset_in_one_session(hop_gw: InProcessGateway, hop: Sink) -> None:
    raw = [plain(f"m{i}", f"body {i}\r\n.a line with a leading dot") for i in range(3)]
    with client(hop_gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL, EXTERNAL2], raw[0])
        # MAIL then RSET with no RCPT: the pipelined MAIL's reply is still owed.
        assert c.mail(SENDER)[0] == 250
        assert c.rset()[0] == 250
        c.sendmail(SENDER, [EXTERNAL], raw[1])
        # MAIL, RCPT, then RSET instead of DATA.
        assert c.mail(SENDER)[0] == 250 and c.rcpt(EXTERNAL)[0] == 250
        assert c.rset()[0] == 250
        c.sendmail(SENDER, [EXTERNAL2], raw[2])
    got = hop.wait_for(3)
    assert [m.content for m in got] == raw
    assert [m.rcpt_tos for m in got] == [[EXTERNAL, EXTERNAL2], [EXTERNAL], [EXTERNAL2]]
    assert all(m.xforward["IDENT"].startswith("dlp-") for m in got)


def test_a_transaction_without_recipients_costs_the_next_hop_nothing(
    hop_gw: InProcessGateway, hop: Sink
) -> None:
    """MAIL whose every RCPT the gateway refuses itself, then RSET or QUIT: a
    next hop with PIPELINING never sees that MAIL (it goes with the first RCPT),
    one without sees it in turn and an RSET; either way its connection stays
    usable for the next message (no tear-down, no new connection)."""
    with client(hop_gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("warm", "x"))
    hop.wait_for(1)
    mails, connections = hop.mails, hop.connections
    with client(hop_gw.port) as c:
        assert c.mail(SENDER)[0] == 250
        # Routing syntax: refused here whatever the next hop would say.
        assert c.rcpt("someone%other@kaisha-abc.jp")[0] == 550
        assert c.rset()[0] == 250
        assert c.mail(SENDER)[0] == 250
        assert c.docmd("RCPT", "TO:<a@@kaisha-abc.jp>")[0] == 553
    with client(hop_gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL2], plain("after", "y"))
    got = hop.wait_for(2)
    assert subjects(got) == ["warm", "after"]
    assert got[1].rcpt_tos == [EXTERNAL2]
    assert hop.mails == mails + (1 if hop.pipelining else 3)
    assert hop.connections == connections


REFUSED = "nobody@kaisha-abc.jp"


@pytest.mark.parametrize(
    "walk_away",
    [
        # RSET for the refused recipient's transaction goes out; its reply is late.
        ("rset_delay", [f"MAIL FROM:<{SENDER}>", f"RCPT TO:<{REFUSED}>"], "QUIT"),
        ("rset_delay", [f"MAIL FROM:<{SENDER}>", f"RCPT TO:<{EXTERNAL}>"], "RSET"),
        # MAIL (one by one) or MAIL + RCPT (pipelined) out, their replies late.
        ("mail_delay", [], f"MAIL FROM:<{SENDER}>"),
        ("rcpt_delay", [f"MAIL FROM:<{SENDER}>"], f"RCPT TO:<{EXTERNAL}>"),
    ],
    ids=["quit-after-refused-rcpt", "rset", "mail", "rcpt"],
)
def test_a_client_that_walks_away_leaves_no_reply_owed_to_the_next(
    hop_gw: InProcessGateway, hop: Sink, walk_away: tuple[str, list[str], str]
) -> None:
    """A client that goes while the next hop still owes a reply (a slow RSET,
    MAIL or RCPT) must not leave that reply for the next session on the same
    pooled connection: it would be read as the answer to the next command, and
    a 250 owed to RCPT taken for the message's would tell the next client 250
    for a message that never reached the next hop."""
    delay, commands, last = walk_away
    hop.behaviour.refuse_rcpt = {REFUSED}
    with client(hop_gw.port) as c:  # a pooled connection to reuse
        c.sendmail(SENDER, [EXTERNAL], plain("warm", "x"))
    hop.wait_for(1)
    setattr(hop.behaviour, delay, 0.5)
    a = RawClient(hop_gw.port)
    a.cmd("EHLO mta.example.lg.jp")
    for line in commands:
        a.cmd(line)
    a.leave(last)
    time.sleep(0.2)  # the gateway has seen the client go; the reply is still owed
    setattr(hop.behaviour, delay, 0.0)
    with client(hop_gw.port) as c:
        refused = c.sendmail(SENDER, [EXTERNAL2], plain("after", "y"))
    assert refused == {}
    got = hop.wait_for(2)
    assert subjects(got) == ["warm", "after"]
    assert got[1].rcpt_tos == [EXTERNAL2]


def _scripted_next_hop(
    lt: LoopThread, banner: bytes, answer: Callable[[bytes], bytes]
) -> asyncio.base_events.Server:
    """A next hop that greets with ``banner`` and answers each line with
    ``answer(line)``: for the replies no well-behaved server gives."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        while line := await reader.readline():
            writer.write(answer(line))
        writer.close()

    async def start() -> asyncio.base_events.Server:
        return await asyncio.start_server(serve, "127.0.0.1", 0)

    server: asyncio.base_events.Server = lt.call(start())
    return server


async def _close(server: asyncio.base_events.Server) -> None:
    server.close()
    await server.wait_closed()


def test_a_next_hop_refusing_to_talk_is_a_tempfail(
    lt: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A next hop whose greeting is 5xx (busy, or refusing us) is this hop's
    fault, not the message's: the client is told 4xx and tries again later,
    never a 5xx that would bounce every message."""
    server = _scripted_next_hop(
        lt, b"554 5.3.2 busy, come back later\r\n", lambda line: b"503 5.5.1 no\r\n"
    )
    port = server.sockets[0].getsockname()[1]
    g = InProcessGateway(write_config(tmp_path_factory.mktemp("hop_gw"), next_hop_port=port), lt)
    try:
        with client(g.port) as c:
            code, text = c.mail(SENDER)
        assert code == 451 and text.startswith(b"4.4.1") and b"554 5.3.2 busy" in text
    finally:
        g.stop()
        lt.call(_close(server))


def test_a_next_hop_answering_data_out_of_step_is_a_tempfail(
    lt: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """DATA is answered 354 or refused.  A 250 there (a reply out of step) must
    never be taken for the answer to the message: the client is told 4xx."""

    def answer(line: bytes) -> bytes:
        if line.upper().startswith(b"EHLO"):
            return b"250-next.test\r\n250 PIPELINING\r\n"
        return b"250 2.0.0 Ok\r\n"  # DATA included

    server = _scripted_next_hop(lt, b"220 next.test ESMTP\r\n", answer)
    port = server.sockets[0].getsockname()[1]
    g = InProcessGateway(write_config(tmp_path_factory.mktemp("hop_gw"), next_hop_port=port), lt)
    try:
        with client(g.port) as c:
            assert c.mail(SENDER)[0] == 250 and c.rcpt(EXTERNAL)[0] == 250
            code, text = c.data(plain("out of step", "x"))
        assert code == 451, text
    finally:
        g.stop()
        lt.call(_close(server))


def test_sender_refused_by_the_next_hop(hop_gw: InProcessGateway, hop: Sink) -> None:
    hop.behaviour.refuse_mail = "550 5.7.1 <sender@example.lg.jp>: Sender address rejected"
    with client(hop_gw.port) as c:
        mail = c.mail(SENDER)
        if mail[0] == 250:
            # Pipelined: the sender's refusal is each recipient's answer.
            for rcpt in (EXTERNAL, EXTERNAL2):
                code, text = c.rcpt(rcpt)
                assert code == 550 and b"Sender address rejected" in text
        else:
            assert mail[0] == 550 and b"Sender address rejected" in mail[1]
        assert c.docmd("DATA")[0] == 503  # no recipient was accepted
        c.rset()
        hop.behaviour.refuse_mail = ""
        c.sendmail(SENDER, [EXTERNAL], plain("after", "the next transaction"))
    got = hop.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [EXTERNAL]


def test_recipient_refused_by_the_next_hop(hop_gw: InProcessGateway, hop: Sink) -> None:
    hop.behaviour.refuse_rcpt = {EXTERNAL}
    with client(hop_gw.port) as c:
        assert c.mail(SENDER)[0] == 250
        code, text = c.rcpt(EXTERNAL)  # the first RCPT: read with MAIL's reply
        assert code == 550 and b"User unknown" in text
        assert c.rcpt(EXTERNAL2)[0] == 250
        assert c.data(plain("one of two", "x"))[0] == 250
    got = hop.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [EXTERNAL2]


def test_held_after_data_went_out_reaches_nobody(hop_gw: InProcessGateway, hop: Sink) -> None:
    """The next hop's DATA was sent when the client sent DATA; the scan then
    holds the message, so it must never be ended at the next hop."""
    with client(hop_gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, reply = c.data(plain("名簿", HELD_BODY))
        assert code == 250 and b"2.6.0" in reply
        # The same session goes on: the next message is relayed.
        c.sendmail(SENDER, [EXTERNAL], plain("next", "nothing to hold"))
    got = hop.wait_for(1)
    assert subjects(got) == ["next"]
    hop.wait_for(2, timeout=0.5)
    assert len(hop.messages) == 1


def test_next_hop_gone_from_the_pool_is_replaced(hop_gw: InProcessGateway, hop: Sink) -> None:
    """A pooled connection the next hop closed while idle (its timeout, a
    restart): the next message is sent on a new one, not tempfailed."""
    with client(hop_gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("first", "x"))
    hop.wait_for(1)
    hop.drop_connections()
    for i in range(2):
        with client(hop_gw.port) as c:
            c.sendmail(SENDER, [EXTERNAL], plain(f"after {i}", "y"))
    got = hop.wait_for(3)
    assert subjects(got) == ["first", "after 0", "after 1"]


def test_next_hop_refusing_data(hop_gw: InProcessGateway, hop: Sink) -> None:
    hop.behaviour.data_reply = "554 5.6.0 content refused here"
    with client(hop_gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, text = c.data(plain("refused", "x"))
        assert code == 554 and b"content refused here" in text
        hop.behaviour.data_reply = ""
        c.sendmail(SENDER, [EXTERNAL], plain("accepted", "y"))
    got = hop.wait_for(1)
    assert subjects(got) == ["accepted"]


def _send_body_after(c: smtplib.SMTP, hop: Sink, raw: bytes) -> tuple[int, bytes]:
    """DATA, then the next hop's connection is closed (as a next hop that timed
    out waiting for our DATA would), then the message."""
    assert c.docmd("DATA")[0] == 354
    time.sleep(0.2)  # our DATA reached the next hop
    hop.drop_connections()
    time.sleep(0.2)
    c.send(raw + b".\r\n")
    return c.getreply()


def test_next_hop_lost_while_the_client_sends_is_opened_again(
    hop_gw: InProcessGateway, hop: Sink
) -> None:
    """Nothing was delivered on the lost connection (it never saw the end of the
    message): the transaction is opened again on a new one, and sent once."""
    with client(hop_gw.port) as c:
        assert c.mail(SENDER)[0] == 250
        assert c.rcpt(EXTERNAL)[0] == 250 and c.rcpt(EXTERNAL2)[0] == 250
        code, _ = _send_body_after(c, hop, plain("reopened", "x"))
        assert code == 250
    got = hop.wait_for(1)
    hop.wait_for(2, timeout=0.5)
    assert subjects(hop.messages) == ["reopened"]
    assert got[0].rcpt_tos == [EXTERNAL, EXTERNAL2] and got[0].mail_from == SENDER


def test_next_hop_answering_otherwise_on_the_new_connection_is_a_tempfail(
    hop_gw: InProcessGateway, hop: Sink
) -> None:
    with client(hop_gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        c.rcpt(EXTERNAL2)
        hop.behaviour.refuse_rcpt = {EXTERNAL2}  # only the new connection is asked again
        code, text = _send_body_after(c, hop, plain("not now", "x"))
        assert code == 451 and b"answered differently" in text
    hop.wait_for(1, timeout=0.5)
    assert hop.messages == []


def test_a_client_gone_while_the_next_hop_answers_leaves_a_complete_record(
    hop_gw: InProcessGateway, hop: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    """The message is with the next hop when the client goes: the gateway finishes it -
    its log line and its send-log outcome are written, the next hop has it once (the MTA,
    with no answer, retries it: the documented duplicate window).  Before, the session
    was cancelled mid-relay and the entry stayed "pending" with no log line (a review of
    3 Dec 2026)."""
    from gwtools import sendlog_entries

    hop.behaviour.data_delay = 0.5
    raw = (
        f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: gone\r\nMessage-ID: <gone@example.lg.jp>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: text/plain; "
        'name="a.txt"\r\nContent-Disposition: attachment; filename="a.txt"\r\n\r\nhello\r\n--b--\r\n'
    ).encode()
    a = RawClient(hop_gw.port)
    a.cmd("EHLO mta.example.lg.jp")
    assert a.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    assert a.cmd(f"RCPT TO:<{EXTERNAL}>")[0] == 250
    assert a.cmd("DATA")[0] == 354
    started = hop.data_started
    a.send(raw + b".\r\n")
    deadline = time.monotonic() + 10
    while hop.data_started == started and time.monotonic() < deadline:
        time.sleep(0.01)  # until the message is with the next hop, its answer 0.5 s away
    with caplog.at_level("INFO", logger="dlp.smtp"):
        a.leave()
        assert len(hop.wait_for(1)) == 1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            getattr(r, "dlp", {}).get("event") == "message" for r in caplog.records
        ):
            time.sleep(0.05)
    assert [
        r.dlp["action"] for r in caplog.records if getattr(r, "dlp", {}).get("event") == "message"
    ] == ["deliver"]
    deadline = time.monotonic() + 5
    while True:
        entries = [e.record for e in sendlog_entries(hop_gw.settings)]
        key = next(e.audit_key for e in entries if e.event == "message" and e.subject == "gone")
        outcome = [e for e in entries if e.audit_key == key and e.event == "outcome"]
        if outcome or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [o.next_hop_reply[:3] for o in outcome] == ["250"]
