"""The gateway against real SMTP clients and a real aiosmtpd next hop (issue 5).

Each test checks what the client was told *and* what reached the next hop:
after every one, no message is lost (a 250 always means delivered or held)
and none is duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from gwtools import (
    EXTERNAL,
    SENDER,
    InProcessGateway,
    LoopThread,
    Sink,
    fault_scan,
    mime_with_attachment,
    plain,
    sendlog_entries,
    write_config,
)
from support import free_port, my_number

pytestmark = pytest.mark.timeout(60)

EXTERNAL2 = "other@torihikisaki.co.jp"
LOOKALIKE = "aaabb@exp.com"  # the partner is exp.co.jp
N1, N2, N3 = my_number("12345678901"), my_number("23456789012"), my_number("98765432109")


MYNUMBER_BODY = (
    f"職員の個人番号を送ります。\r\n個人番号: {N1}\r\nマイナンバー {N2}\r\n個人番号：{N3}"
)


@pytest.fixture(scope="module")
def gw(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    cfg = write_config(
        tmp_path_factory.mktemp("gw"),
        next_hop_port=sink.port,
        smtp={"next_hop_timeout": 2.0},
        scan={"timeout_seconds": 1.0},
        # OCR runs inside the message budget, so its own limit may not exceed it.
        sections={"ocr": {"timeout_seconds": 1.0}},
    )
    g = InProcessGateway(cfg, lt, scan_fn=fault_scan)
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def fresh_sink(sink: Sink) -> None:
    sink.messages.clear()
    sink.behaviour.__init__()  # type: ignore[misc]


def client(port: int) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", port, timeout=30)
    c.ehlo("mta.example.lg.jp")
    return c


# -- delivery ------------------------------------------------------------------


def test_ehlo_announces_what_postfix_needs(gw: InProcessGateway) -> None:
    with client(gw.port) as c:
        for ext in ("size", "8bitmime", "smtputf8", "enhancedstatuscodes", "dsn", "xforward"):
            assert c.has_extn(ext), ext
        assert int(c.esmtp_features["size"]) == gw.settings.smtp.max_message_size
        assert not c.has_extn("auth")


def test_clean_mail_is_relayed_byte_for_byte(gw: InProcessGateway, sink: Sink) -> None:
    raw = plain("見積書", "お世話になっております。\r\n.leading dot line\r\n..two dots")
    with client(gw.port) as c:
        assert c.mail(SENDER)[0] == 250
        assert c.rcpt(EXTERNAL)[0] == 250
        code2, reply = c.data(raw)
    assert code2 == 250 and reply.startswith(b"2.0.0 Ok")
    got = sink.wait_for(1)
    assert len(got) == 1
    assert got[0].content == raw  # not one byte changed, no header added on deliver
    assert got[0].mail_from == SENDER and got[0].rcpt_tos == [EXTERNAL]
    # Our own audit key reaches the next hop as XFORWARD IDENT, the same as in the
    # client's reply, and holds no digit that a log's masking could take for a number.
    key = got[0].xforward["IDENT"]
    assert re.fullmatch(r"dlp-[a-p]{16}", key) and key in reply.decode()
    assert got[0].xforward["ADDR"] == "127.0.0.1"


def test_several_messages_in_one_session(gw: InProcessGateway, sink: Sink) -> None:
    with client(gw.port) as c:
        for i in range(3):
            c.sendmail(SENDER, [EXTERNAL], plain(f"m{i}", f"body {i}"))
        c.rset()
        c.sendmail(SENDER, [EXTERNAL2], plain("m3", "after RSET"))
    got = sink.wait_for(4)
    assert [m.rcpt_tos for m in got] == [[EXTERNAL]] * 3 + [[EXTERNAL2]]


def test_null_sender(gw: InProcessGateway, sink: Sink) -> None:
    with client(gw.port) as c:
        assert c.docmd("MAIL FROM:<> SIZE=100 BODY=8BITMIME")[0] == 250  # as Postfix sends bounces
        assert c.rcpt(EXTERNAL)[0] == 250
        assert c.data(plain("Undelivered Mail Returned to Sender", "bounce"))[0] == 250
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].mail_from in ("", "<>")


def test_8bit_and_smtputf8_intact(gw: InProcessGateway, sink: Sink) -> None:
    raw = (
        "From: 山田 <山田@例え.jp>\r\nTo: 鈴木@取引先.jp\r\nSubject: 請求書のご送付\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n日本語の本文です。\r\n"
    ).encode()
    with client(gw.port) as c:
        c.sendmail(
            "山田@例え.jp", ["鈴木@取引先.jp"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    got = sink.wait_for(1)
    assert len(got) == 1
    assert got[0].content == raw
    assert got[0].mail_from == "山田@例え.jp" and got[0].rcpt_tos == ["鈴木@取引先.jp"]
    assert "SMTPUTF8" in got[0].mail_options and "BODY=8BITMIME" in got[0].mail_options


def test_dsn_parameters_accepted_and_passed_on(gw: InProcessGateway, sink: Sink) -> None:
    with client(gw.port) as c:
        assert c.docmd(f"MAIL FROM:<{SENDER}> RET=HDRS ENVID=Q123+2Bx")[0] == 250
        code, _ = c.docmd(f"RCPT TO:<{EXTERNAL}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{EXTERNAL}")
        assert code == 250
        assert c.data(plain("dsn", "x"))[0] == 250
    got = sink.wait_for(1)
    assert "RET=HDRS" in got[0].mail_options and "ENVID=Q123+2Bx" in got[0].mail_options
    assert "NOTIFY=SUCCESS,FAILURE" in got[0].rcpt_options
    assert f"ORCPT=rfc822;{EXTERNAL}" in got[0].rcpt_options


def test_an_ident_that_reads_as_a_my_number_is_not_the_audit_key(
    gw: InProcessGateway, sink: Sink
) -> None:
    """The key is echoed in our reply and stored in every record: twelve digits passing
    the check digit would be a number the filter keeps (a review of 3 Dec 2026)."""
    with client(gw.port) as c:
        assert c.docmd("XFORWARD IDENT=621498320257")[0] == 250
        assert c.docmd("MAIL", f"FROM:<{SENDER}>")[0] == 250
        assert c.docmd("RCPT", f"TO:<{EXTERNAL}>")[0] == 250
        code, reply = c.data(plain("ident", "本文"))
    assert code == 250 and b"621498320257" not in reply and b"dlp-" in reply
    assert sink.wait_for(1)[0].xforward["IDENT"].startswith("dlp-")


def test_xforward_ident_is_the_audit_key(gw: InProcessGateway, sink: Sink) -> None:
    with client(gw.port) as c:
        assert c.docmd("XFORWARD NAME=mta.example.lg.jp ADDR=192.0.2.7 IDENT=4FZK81Wc9z")[0] == 250
        assert c.docmd("XFORWARD PROTO=ESMTP HELO=pc12.example.lg.jp")[0] == 250
        c.sendmail(
            SENDER,
            [EXTERNAL],
            mime_with_attachment(
                "a", "見積書を添付します", "見積.csv", "品名,数量\r\nりんご,3\r\n".encode()
            ),
        )
    got = sink.wait_for(1)
    assert got[0].xforward["IDENT"] == "4FZK81Wc9z" and got[0].xforward["ADDR"] == "192.0.2.7"
    # The attachment send was recorded under the upstream queue id.
    time.sleep(0.3)  # the outcome entry is written just after the answer
    stored = [e for e in sendlog_entries(gw.settings) if e.record.audit_key == "4FZK81Wc9z"]
    entries = [e.record for e in stored if e.record.event == "message"]
    assert len(entries) == 1 and entries[0].action == "deliver"
    assert entries[0].attachments[0].filename == "見積.csv"
    assert entries[0].next_hop_reply == "pending"
    outcome = [e.record for e in stored if e.record.event == "outcome"]
    assert len(outcome) == 1 and outcome[0].next_hop_reply.startswith(
        "250 2.0.0 Ok: queued as SINK"
    )
    assert outcome[0].detail["entry"] == next(e.id for e in stored if e.record.event == "message")


# -- policy ----------------------------------------------------------------------


def test_mynumber_to_external_is_held_then_released_once(gw: InProcessGateway, sink: Sink) -> None:
    from dlp.smtp.release import release

    raw = plain("職員名簿", MYNUMBER_BODY)
    with client(gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, reply = c.data(raw)
    assert code == 250 and "2.6.0" in reply.decode() and "保留" in reply.decode()
    assert N1 not in reply.decode() and N1[-4:] not in reply.decode()
    assert sink.messages == []
    held = [h for h in gw.gateway.quarantine.list() if h.subject == "職員名簿"]
    assert len(held) == 1 and held[0].recipients == (EXTERNAL,)
    assert held[0].findings["mynumber_distinct"] == 3
    # At rest the numbers are encrypted.
    for f in gw.settings.quarantine_dir.iterdir():
        assert N1.encode() not in f.read_bytes()
    entry = [
        e.record for e in sendlog_entries(gw.settings) if e.record.audit_key == held[0].audit_key
    ]
    assert entry[0].action == "hold" and entry[0].mynumber_distinct == 3

    answer = release(gw.settings, held[0].id, "reviewer", "確認済み")
    assert answer.startswith("250")
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].content == raw and got[0].rcpt_tos == [EXTERNAL]
    assert gw.gateway.quarantine.get(held[0].id) is None
    events = [e.record for e in sendlog_entries(gw.settings) if e.record.event == "release"]
    assert events[-1].actor == "reviewer" and events[-1].audit_key == held[0].audit_key


def test_release_survives_next_hop_failure(gw: InProcessGateway, sink: Sink) -> None:
    from dlp.holdqueue.decisions import ReleaseError, discard
    from dlp.smtp.release import release

    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("hold-then-fail", MYNUMBER_BODY))
    held = next(h for h in gw.gateway.quarantine.list() if h.subject == "hold-then-fail")
    sink.behaviour.data_reply = "451 4.3.0 try later"
    with pytest.raises(ReleaseError):
        release(gw.settings, held.id, "reviewer", "")
    assert gw.gateway.quarantine.get(held.id) is not None  # still held
    discard(gw.settings, held.id, "reviewer", "誤送信")
    assert gw.gateway.quarantine.get(held.id) is None
    assert sink.messages == []
    assert next(e.record.event for e in sendlog_entries(gw.settings)) == "discard"


def test_medium_confidence_is_tagged_headers_prepended(gw: InProcessGateway, sink: Sink) -> None:
    raw = plain("名簿", f"氏名 山田太郎 {N1}")  # a personal-data word, no My Number keyword: medium
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], raw)
    got = sink.wait_for(1)
    assert len(got) == 1
    content = got[0].content
    assert content.endswith(raw)  # existing headers untouched and in order
    head = content[: -len(raw)].decode()
    assert head.startswith("X-DLP-Verdict: tag; rule=")
    assert "X-DLP-Audit-Key: " in head and N1[4:8] not in head


def test_lookalike_refused_others_delivered(gw: InProcessGateway, sink: Sink) -> None:
    raw = plain("資料", "資料を送ります")
    with client(gw.port) as c:
        c.mail(SENDER)
        code, text = c.rcpt(LOOKALIKE)
        assert code == 550
        assert text.decode() == (
            "5.7.1 宛先ドメイン exp.com は exp.co.jp の誤りの可能性があります"
            "。正しい宛先なら情報管理担当者に登録を依頼してください"
            "。末尾が .co.jp ではなく .com です（exp.com ↔ exp.co.jp）"
            " / exp.com looks like a mistyped exp.co.jp."
            " If the address is right, ask your administrator to list the domain."
            " What differs: the suffix .co.jp became .com (exp.com ↔ exp.co.jp)"
        )
        assert c.rcpt(EXTERNAL)[0] == 250
        assert c.rcpt(EXTERNAL2)[0] == 250
        assert c.data(raw)[0] == 250
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [EXTERNAL, EXTERNAL2]
    refusals = [
        e.record for e in sendlog_entries(gw.settings) if e.record.rule == "lookalike-recipient"
    ]
    assert refusals and refusals[0].recipients[0].resembles == "exp.co.jp"


def test_refusal_for_an_outside_envelope_sender_is_a_hold(gw: InProcessGateway, sink: Sink) -> None:
    """After-queue Postfix would answer our 550 with a bounce quoting the message
    to the envelope sender, past the filter: from an outside sender, hold instead."""
    outsider = "someone@gmail.com"
    raw = plain("外部差出人", "資料を送ります")
    with client(gw.port) as c:
        c.mail(outsider)
        code, text = c.rcpt(LOOKALIKE)
        assert code == 250 and "2.6.0" in text.decode()
        assert c.rcpt("user%evil.example@kaisha-abc.jp")[0] == 250
        assert c.rcpt(EXTERNAL)[0] == 250
        code, reply = c.data(raw)
    assert code == 250 and "2.6.0" in reply.decode()
    assert sink.messages == []
    held = [h for h in gw.gateway.quarantine.list() if h.subject == "外部差出人"]
    assert len(held) == 1 and held[0].sender == outsider
    entry = [
        e.record for e in sendlog_entries(gw.settings) if e.record.audit_key == held[0].audit_key
    ]
    assert entry[0].action == "hold" and any(
        "held instead of refused" in r for r in entry[0].reasons
    )
    # the null sender gets the refusal: a bounce to it goes nowhere
    with client(gw.port) as c:
        c.mail("<>")
        assert c.rcpt(LOOKALIKE)[0] == 550


@pytest.mark.parametrize(
    ("rcpt", "words"),
    [
        ("aaabb@expcojp.com", "exp.co.jp run together without its dots, under .com (expcojp.com)"),
        ("aaabb@exp.co.com", "the suffix .co.jp became .co.com (exp.co.com ↔ exp.co.jp)"),
        ("aaabb@exo.co.jp", "p changed to o (exo.co.jp ↔ exp.co.jp)"),
        (
            "someone@gmiak.com",
            "two letters swapped (ia for ai); l changed to k (gmiak.com ↔ gmail.com)",
        ),
    ],
)
def test_each_lookalike_family_is_refused_naming_the_meant_domain(
    gw: InProcessGateway, sink: Sink, rcpt: str, words: str
) -> None:
    """Issue 12 families at RCPT: a suffix fused into the name, a nested suffix, a slip
    on a three-letter name, two slips on a built-in provider."""
    with client(gw.port) as c:
        c.mail(SENDER)
        code, text = c.rcpt(rcpt)
        assert code == 550
        reply = text.decode()
        assert reply.startswith("5.7.1 ") and reply.endswith(words), reply
        c.rset()


def test_smuggled_message_stays_inside_the_first(gw: InProcessGateway, sink: Sink) -> None:
    """CVE-2024-27305 end to end: a bare-LF dot does not end DATA at us or at the next hop."""
    smuggled = (
        f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: outer\r\n\r\nhello\n.\r\n"
        f"MAIL FROM:<evil@kaisha-abc.jp>\r\nRCPT TO:<{EXTERNAL2}>\r\nDATA\r\n"
        "Subject: smuggled\r\n\r\nboo\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        f = s.makefile("rwb")
        f.readline()
        for cmd in (
            b"EHLO t\r\n",
            f"MAIL FROM:<{SENDER}>\r\n".encode(),
            f"RCPT TO:<{EXTERNAL}>\r\n".encode(),
            b"DATA\r\n",
        ):
            f.write(cmd)
            f.flush()
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    break
        f.write(smuggled + b".\r\n")
        f.flush()
        assert f.readline().startswith(b"250")
        f.write(b"QUIT\r\n")
        f.flush()
        f.readline()
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [EXTERNAL]
    assert b"Subject: smuggled" in got[0].content and b"MAIL FROM:<evil" in got[0].content


def test_a_pipelining_client_gets_every_reply_in_order(gw: InProcessGateway, sink: Sink) -> None:
    """RFC 2920, as Postfix's smtp client sends after-queue: XFORWARD, MAIL, three
    RCPT (one a lookalike) and DATA in one write; the replies come back in order,
    one each, and the 354 is not held back waiting for more."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        f = s.makefile("rwb")

        def reply() -> bytes:
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    return line

        reply()
        f.write(b"EHLO mta.example.lg.jp\r\n")
        f.flush()
        ehlo = []
        while (line := f.readline())[3:4] == b"-":
            ehlo.append(line)
        assert b"250-PIPELINING\r\n" in ehlo
        for round_ in range(2):
            f.write(
                b"XFORWARD NAME=pc1.example.lg.jp ADDR=192.0.2.9 IDENT=PIPE%d\r\n" % round_
                + f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{EXTERNAL}>\r\n".encode()
                + f"RCPT TO:<{LOOKALIKE}>\r\nRCPT TO:<{EXTERNAL2}>\r\nDATA\r\n".encode()
            )
            f.flush()
            codes = [reply()[:3] for _ in range(6)]
            assert codes == [b"250", b"250", b"250", b"550", b"250", b"354"]
            f.write(plain(f"pipelined {round_}", "本文") + b".\r\n")
            f.flush()
            assert reply().startswith(b"250")
        f.write(b"QUIT\r\n")
        f.flush()
        assert reply().startswith(b"221")
    got = sink.wait_for(2)
    assert [m.rcpt_tos for m in got] == [[EXTERNAL, EXTERNAL2]] * 2
    assert [m.xforward["IDENT"] for m in got] == ["PIPE0", "PIPE1"]


def test_an_ehlo_ending_a_pipelined_group_is_answered_after_the_rest(
    gw: InProcessGateway, sink: Sink
) -> None:
    """RFC 2920 lets EHLO end a group: MAIL's and RCPT's replies, held while EHLO
    waited in the buffer, go out before EHLO's, not after the next command's."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        f = s.makefile("rwb")

        def reply() -> bytes:
            while (line := f.readline())[3:4] == b"-":
                pass
            return line

        reply()
        f.write(b"EHLO mta.example.lg.jp\r\n")
        f.flush()
        reply()
        f.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{EXTERNAL}>\r\n".encode() + b"EHLO again\r\n")
        f.flush()
        s.settimeout(5)  # a lost reply shows as a timeout here, not as a hang
        assert [reply()[:3] for _ in range(3)] == [b"250", b"250", b"250"]
        f.write(b"NOOP\r\n")
        f.flush()
        assert reply().startswith(b"250 2.0.0")  # NOOP's own, nothing left over


def test_the_client_helo_reaches_the_next_hop_as_xtext(gw: InProcessGateway, sink: Sink) -> None:
    """Without an upstream XFORWARD, the gateway sends the client's HELO name
    itself; XFORWARD values are xtext, so "+" and "=" (and any control or
    non-ASCII octet) are hex-escaped, never written raw into the command line."""
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
        c.ehlo("pc+1=x.example.lg.jp")
        c.sendmail(SENDER, [EXTERNAL], plain("xtext", "x"))
    got = sink.wait_for(1)
    assert got[0].xforward["HELO"] == "pc+2B1+3Dx.example.lg.jp"


def test_size_limits(gw: InProcessGateway, sink: Sink) -> None:
    limit = gw.settings.smtp.max_message_size
    with client(gw.port) as c:
        code, text = c.docmd(f"MAIL FROM:<{SENDER}> SIZE={limit + 1}")
        assert code == 552 and text.startswith(b"5.3.4")
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, text = c.data(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (limit // 1000 + 10))
        assert code == 552 and text.startswith(b"5.3.4")
        # The session is still in step: the next message goes through.
        c.sendmail(SENDER, [EXTERNAL], plain("small", "ok"))
    assert len(sink.wait_for(1)) == 1


# -- next-hop trouble ------------------------------------------------------------


def test_next_hop_refuses_one_recipient(gw: InProcessGateway, sink: Sink) -> None:
    sink.behaviour.refuse_rcpt = {EXTERNAL2}
    with client(gw.port) as c:
        c.mail(SENDER)
        assert c.rcpt(EXTERNAL)[0] == 250
        code, text = c.rcpt(EXTERNAL2)
        assert code == 550 and b"User unknown" in text  # the next hop's own answer
        assert c.data(plain("partial", "x"))[0] == 250
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [EXTERNAL]


@pytest.mark.parametrize("reply", ["554 5.7.0 content refused", "452 4.3.1 insufficient storage"])
def test_next_hop_refuses_data(gw: InProcessGateway, sink: Sink, reply: str) -> None:
    sink.behaviour.data_reply = reply
    with client(gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, text = c.data(plain("refused", "x"))
    assert (code, text.decode()) == (int(reply[:3]), reply[4:])
    assert sink.messages == []


def test_next_hop_slow_is_a_tempfail(gw: InProcessGateway, sink: Sink) -> None:
    sink.behaviour.data_delay = 4.0  # next_hop_timeout is 2 s
    with client(gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, text = c.data(plain("slow", "x"))
        assert code == 451 and text.startswith(b"4.4.2")
        sink.behaviour.data_delay = 0
        # The upstream retries; exactly one copy arrives.
        c.sendmail(SENDER, [EXTERNAL], plain("slow", "x"))
    assert len(sink.wait_for(1)) == 1
    time.sleep(0.5)  # a second copy would arrive within this
    assert len(sink.messages) == 1


def test_next_hop_down_is_a_tempfail(lt: LoopThread, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, next_hop_port=free_port())
    g = InProcessGateway(cfg, lt)
    try:
        with client(g.port) as c:
            code, text = c.docmd(f"MAIL FROM:<{SENDER}>")
            assert code == 451 and text.startswith(b"4.4.1")
    finally:
        g.stop()


def test_scan_timeout_tempfails_and_replaces_the_worker(gw: InProcessGateway, sink: Sink) -> None:
    before = gw.gateway.pool.replaced
    stuck = mime_with_attachment(
        "stuck", "x", "a.bin", b"\0" * 100, extra_headers="X-Test-Sleep: yes\r\n"
    )
    with client(gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, text = c.data(stuck)
        assert code == 451 and text.startswith(b"4.7.1")
        # The replacement worker scans the next message.
        c.sendmail(SENDER, [EXTERNAL], mime_with_attachment("after", "x", "b.bin", b"\1" * 100))
    assert gw.gateway.pool.replaced == before + 1
    got = sink.wait_for(1)
    assert len(got) == 1 and b"Subject: after" in got[0].content


def test_worker_crash_tempfails_and_replaces_the_worker(gw: InProcessGateway, sink: Sink) -> None:
    before = gw.gateway.pool.replaced
    bomb = mime_with_attachment(
        "crash", "x", "a.bin", b"\0" * 100, extra_headers="X-Test-Crash: yes\r\n"
    )
    with client(gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, _text = c.data(bomb)
        assert code == 451
        c.sendmail(
            SENDER, [EXTERNAL], mime_with_attachment("after crash", "x", "b.bin", b"\1" * 100)
        )
    assert gw.gateway.pool.replaced == before + 1
    assert len(sink.wait_for(1)) == 1


def test_internal_error_is_451_never_500(gw: InProcessGateway, sink: Sink) -> None:
    class Broken:
        def classify(self, address: str) -> None:
            raise RuntimeError("simulated classifier failure")

        def maybe_reload(self) -> None:
            pass

    real = gw.gateway.classifier
    gw.gateway.classifier = Broken()
    try:
        with client(gw.port) as c:
            c.mail(SENDER)
            code, text = c.rcpt(EXTERNAL)
            assert code == 451 and text.startswith(b"4.3.0")
    finally:
        gw.gateway.classifier = real
    assert sink.messages == []


def test_send_log_down_tempfails_before_anything_is_sent(
    lt: LoopThread, sink: Sink, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, next_hop_port=sink.port)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "sendlog.db").mkdir()  # a directory: the store cannot open
    g = InProcessGateway(cfg, lt)
    try:
        with client(g.port) as c:
            c.mail(SENDER)
            c.rcpt(EXTERNAL)
            code, text = c.data(mime_with_attachment("a", "x", "a.pdf", b"%PDF-1.4"))
            assert code == 451 and text.startswith(b"4.3.0")
            # Clean mail needs no record and still flows.
            c.sendmail(SENDER, [EXTERNAL], plain("clean", "x"))
    finally:
        g.stop()
    got = sink.wait_for(1)
    assert len(got) == 1 and b"Subject: clean" in got[0].content


# -- sessions ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fifty_concurrent_sessions(gw: InProcessGateway, sink: Sink) -> None:
    """Fifty clients at once from this test's event loop; the gateway serves them
    from its own loop thread."""

    async def one(i: int) -> None:
        body = plain(f"concurrent {i}", f"message {i}")
        await aiosmtplib.send(
            body,
            sender=SENDER,
            recipients=[EXTERNAL],
            hostname="127.0.0.1",
            port=gw.port,
            timeout=30,
        )

    await asyncio.gather(*(one(i) for i in range(50)))
    got = await asyncio.to_thread(sink.wait_for, 50)
    subjects = sorted(m.content.split(b"Subject: ")[1].split(b"\r\n")[0] for m in got)
    assert subjects == sorted(f"concurrent {i}".encode() for i in range(50))


def test_forbidden_client_network_gets_554_and_nothing_else(
    lt: LoopThread, sink: Sink, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path, next_hop_port=sink.port, smtp={"allowed_clients": ["127.0.0.1/32"]}
    )
    g = InProcessGateway(cfg, lt)
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", g.port))
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data.startswith(b"554 5.7.1") and data.count(b"\r\n") == 1
        with pytest.raises(smtplib.SMTPException):
            smtplib.SMTP("127.0.0.1", g.port, source_address=("127.0.0.2", 0), timeout=5).sendmail(
                SENDER, [EXTERNAL], b"Subject: x\r\n\r\nx\r\n"
            )
        with client(g.port) as c:  # 127.0.0.1 is allowed
            c.sendmail(SENDER, [EXTERNAL], plain("allowed", "x"))
    finally:
        g.stop()
    assert len(sink.wait_for(1)) == 1


def test_lookalike_hold_mode_holds_the_whole_message(
    lt: LoopThread, sink: Sink, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, next_hop_port=sink.port, domains={"lookalike_action": "hold"})
    g = InProcessGateway(cfg, lt)
    try:
        with client(g.port) as c:
            c.mail(SENDER)
            assert c.rcpt(LOOKALIKE)[0] == 250
            assert c.rcpt(EXTERNAL)[0] == 250
            code, text = c.data(plain("to lookalike", "x"))
        assert code == 250 and b"exp.co.jp" in text
        held = g.gateway.quarantine.list()
        assert len(held) == 1 and held[0].recipients == (LOOKALIKE, EXTERNAL)
        assert held[0].rule == "lookalike-recipient"
    finally:
        g.stop()
    assert sink.messages == []


def _self_signed(path: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )


@pytest.fixture(params=["asyncio", "uvloop"])
def any_loop(request: pytest.FixtureRequest) -> Iterator[LoopThread]:
    """Both event loops `dlp serve` may run on ([smtp] event_loop)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        thread = LoopThread(uvloop.new_event_loop())
    else:
        thread = LoopThread()
    yield thread
    thread.stop()


def test_starttls_offered_when_configured(any_loop: LoopThread, tmp_path: Path) -> None:
    # aiosmtpd swaps the transport's protocol for STARTTLS; uvloop's transports
    # must take that as asyncio's do.
    sink = Sink(any_loop).start()
    pem = tmp_path / "gw.pem"
    _self_signed(pem)
    cfg = write_config(
        tmp_path, next_hop_port=sink.port, smtp={"tls_cert": str(pem), "tls_key": str(pem)}
    )
    g = InProcessGateway(cfg, any_loop)
    try:
        ctx = ssl.create_default_context(cafile=str(pem))
        ctx.check_hostname = False
        with client(g.port) as c:
            assert c.has_extn("starttls")
            c.starttls(context=ctx)
            c.ehlo("mta")
            c.sendmail(SENDER, [EXTERNAL], plain("over tls", "x"))
    finally:
        g.stop()
    assert len(sink.wait_for(1)) == 1
    sink.stop()


def test_next_hop_connections_are_reused_across_sessions(gw: InProcessGateway, sink: Sink) -> None:
    before = sink.connections
    for i in range(5):
        with client(gw.port) as c:
            c.sendmail(SENDER, [EXTERNAL], plain(f"pooled {i}", "x"))
    assert len(sink.wait_for(5)) == 5
    assert sink.connections - before <= 1


def test_a_pooled_connection_the_next_hop_closed_is_replaced(
    gw: InProcessGateway, sink: Sink
) -> None:
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("before drop", "x"))
    sink.wait_for(1)
    sink.drop_connections()  # the idle pooled connection dies under us
    time.sleep(0.2)
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("after drop", "x"))
    got = sink.wait_for(2)
    assert [m.content.split(b"Subject: ")[1].split(b"\r\n")[0] for m in got] == [
        b"before drop",
        b"after drop",
    ]


@pytest.mark.parametrize(
    "arg",
    [
        "<a@b.c>",
        "<a.b+c@例え.jp> SIZE=5 BODY=8BITMIME",
        "<山田@例え.jp>",
        '<"a b"@c.d>',
        "<@relay:a@b>",
        "<a@[127.0.0.1]>",
        "<>",
        "<a@b",
        "a@b.c SIZE=1",
        "<a<b@c>",
    ],
)
@pytest.mark.asyncio
async def test_fast_address_parse_agrees_with_aiosmtpd(gw: InProcessGateway, arg: str) -> None:
    from aiosmtpd.smtp import SMTP

    from dlp.smtp.server import GatewaySMTP

    ours = GatewaySMTP(gw.gateway)
    stock = SMTP(object(), enable_SMTPUTF8=True, loop=asyncio.get_running_loop())
    assert ours._getaddr(arg) == stock._getaddr(arg)


def test_held_mail_expires_after_retention(gw: InProcessGateway) -> None:
    from datetime import UTC, datetime, timedelta

    from dlp.holdqueue.decisions import expire_held

    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("old hold", MYNUMBER_BODY))
    q = gw.gateway.quarantine
    held = next(h for h in q.list() if h.subject == "old hold")
    assert expire_held(gw.settings, datetime.now(UTC) + timedelta(days=29)).expired == 0
    assert q.get(held.id) is not None
    assert expire_held(gw.settings, datetime.now(UTC) + timedelta(days=31)).expired >= 1
    assert q.get(held.id) is None
    # One expire entry, by retention, under the message's own audit key.
    mine = [e.record for e in sendlog_entries(gw.settings) if e.record.audit_key == held.audit_key]
    assert sorted(r.event for r in mine) == ["expire", "message"]
    (exp,) = [r for r in mine if r.event == "expire"]
    assert exp.actor == "retention" and "retention period" in exp.comment
    assert exp.detail["held_id"] == held.id and exp.detail["state"] == "held"


def test_quarantine_cli_show_and_delete(gw: InProcessGateway, sink: Sink) -> None:
    from click.testing import CliRunner

    from dlp.cli import main

    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("cli-show", MYNUMBER_BODY))
    held = next(h for h in gw.gateway.quarantine.list() if h.subject == "cli-show")
    cfg = str(Path(gw.settings.source))
    runner = CliRunner()
    shown = runner.invoke(main, ["quarantine", "show", held.id, "--config", cfg])
    assert shown.exit_code == 0 and "mynumber-external" in shown.output and N1 not in shown.output
    assert runner.invoke(main, ["quarantine", "show", "nope", "--config", cfg]).exit_code == 1
    deleted = runner.invoke(
        main, ["quarantine", "delete", held.id, "--config", cfg, "--comment", "誤送信"]
    )
    assert deleted.exit_code == 0, deleted.output
    assert gw.gateway.quarantine.get(held.id) is None
    assert runner.invoke(main, ["quarantine", "delete", held.id, "--config", cfg]).exit_code == 1
    events = [e.record for e in sendlog_entries(gw.settings) if e.record.event == "discard"]
    assert events[0].audit_key == held.audit_key and events[0].comment == "誤送信"
    assert sink.messages == []


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_tls_to_the_next_hop(any_loop: LoopThread, tmp_path: Path, mode: str) -> None:
    lt = any_loop
    pem = tmp_path / "sink.pem"
    _self_signed(pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pem))
    tls_sink = Sink(lt, tls_context=ctx, implicit_tls=mode == "tls").start()
    cfg = write_config(
        tmp_path,
        next_hop_port=tls_sink.port,
        smtp={"next_hop_tls": mode, "next_hop_tls_verify": False},
    )
    g = InProcessGateway(cfg, lt)
    try:
        with client(g.port) as c:
            c.sendmail(SENDER, [EXTERNAL], plain("tls next hop", "x"))
        assert len(tls_sink.wait_for(1)) == 1
        assert tls_sink.tls_seen == [True]
    finally:
        g.stop()
        tls_sink.stop()


def test_large_message_through_a_worker_byte_for_byte(gw: InProcessGateway, sink: Sink) -> None:
    att = bytes(range(256)) * 8192  # 2 MiB of binary: goes to a worker process
    raw = mime_with_attachment("large", "大きな添付", "data.bin", att)
    assert len(raw) > gw.settings.smtp.inline_scan_max_bytes
    with client(gw.port) as c:  # to our own domain: an unreadable .bin is no reason to tag
        c.sendmail(SENDER, ["colleague@example.lg.jp"], raw)
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].content == raw


def test_large_message_through_a_worker_on_either_loop(
    any_loop: LoopThread, tmp_path: Path
) -> None:
    """The worker pipe (add_reader), the bulk DATA reader and the two-part relay
    write of a message past 64 KB, on asyncio's loop and on uvloop."""
    sink = Sink(any_loop).start()
    g = InProcessGateway(write_config(tmp_path, next_hop_port=sink.port), any_loop)
    try:
        att = bytes(range(256)) * 8192
        raw = mime_with_attachment("large", "大きな添付", "data.bin", att)
        with client(g.port) as c:
            c.sendmail(SENDER, ["colleague@example.lg.jp"], raw)
        got = sink.wait_for(1)
        assert len(got) == 1 and got[0].content == raw
    finally:
        g.stop()
        sink.stop()


def test_client_vanishing_mid_scan_sends_nothing(gw: InProcessGateway, sink: Sink) -> None:
    before = gw.gateway.pool.replaced
    stuck = mime_with_attachment(
        "vanish", "x", "a.bin", b"\0" * 100, extra_headers="X-Test-Sleep: yes\r\n"
    )
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        f = s.makefile("rwb")
        f.readline()
        for cmd in (
            b"EHLO t\r\n",
            f"MAIL FROM:<{SENDER}>\r\n".encode(),
            f"RCPT TO:<{EXTERNAL}>\r\n".encode(),
            b"DATA\r\n",
        ):
            f.write(cmd)
            f.flush()
            while f.readline()[3:4] == b"-":
                pass
        f.write(stuck.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n") + b".\r\n")
        f.flush()
        time.sleep(0.3)  # now being scanned in a worker
    deadline = time.monotonic() + 10
    while gw.gateway.pool.replaced == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.gateway.pool.replaced == before + 1  # the abandoned scan's worker was replaced
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], mime_with_attachment("next", "x", "b.bin", b"\1" * 10))
    got = sink.wait_for(1)
    assert len(got) == 1 and b"Subject: next" in got[0].content


def test_a_number_in_a_file_name_or_subject_never_comes_back(
    gw: InProcessGateway, sink: Sink
) -> None:
    csv = f"氏名,個人番号\r\n山田,{N2}\r\n鈴木,{N3}\r\n".encode()
    raw = mime_with_attachment(f"{N1} の件", "名簿です", f"{N1}.csv", csv)
    with client(gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, text = c.data(raw)
    assert code == 250 and b"2.6.0" in text
    for n in (N1, N2, N3):
        assert n.encode() not in text
    held = next(h for h in gw.gateway.quarantine.list() if h.subject.endswith("の件"))
    blob = json.dumps(held.to_json(), ensure_ascii=False)
    assert N1 not in blob and "の件" in blob
    for e in sendlog_entries(gw.settings):
        assert N1 not in json.dumps(e.record.to_json(), ensure_ascii=False)
    assert sink.messages == []


def test_untrusted_next_hop_certificate_is_a_tempfail(lt: LoopThread, tmp_path: Path) -> None:
    pem = tmp_path / "sink.pem"
    _self_signed(pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pem))
    tls_sink = Sink(lt, tls_context=ctx).start()
    cfg = write_config(tmp_path, next_hop_port=tls_sink.port, smtp={"next_hop_tls": "starttls"})
    g = InProcessGateway(cfg, lt)
    try:
        with client(g.port) as c:
            code, text = c.docmd(f"MAIL FROM:<{SENDER}>")
            assert code == 451 and text.startswith(b"4.4.")
        assert tls_sink.messages == []
    finally:
        g.stop()
        tls_sink.stop()


def test_small_plain_mail_is_scanned_inline_attachments_in_a_worker(
    gw: InProcessGateway, sink: Sink
) -> None:
    """Routing: the fault header only acts inside a worker process, so a plain
    message carrying it is delivered (scanned inline) while the same header on a
    message with an attachment costs that message its worker."""
    before = gw.gateway.pool.replaced
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("inline", "x", extra="X-Test-Crash: yes\r\n"))
    assert gw.gateway.pool.replaced == before
    got = sink.wait_for(1)
    assert len(got) == 1 and b"Subject: inline" in got[0].content


def test_inline_scan_over_its_budget_is_finished_in_a_worker(
    gw: InProcessGateway, sink: Sink
) -> None:
    raw = plain("slow inline", "x", extra="X-Test-Inline-Timeout: yes\r\n")
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], raw)
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].content == raw  # delivered, not tempfailed


def test_one_held_message_cannot_be_released_twice_at_once(
    gw: InProcessGateway, sink: Sink
) -> None:
    from dlp.holdqueue.decisions import ReleaseError
    from dlp.smtp.release import release

    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("double release", MYNUMBER_BODY))
    held = next(h for h in gw.gateway.quarantine.list() if h.subject == "double release")
    # Another reviewer is releasing it right now.
    with gw.gateway.quarantine.claim(held.id), pytest.raises(ReleaseError, match="someone else"):
        release(gw.settings, held.id, "reviewer2", "")
    assert sink.messages == []
    release(gw.settings, held.id, "reviewer1", "")
    assert len(sink.wait_for(1)) == 1
    with pytest.raises(ReleaseError, match="no held message"):
        release(gw.settings, held.id, "reviewer2", "")
    assert len(sink.messages) == 1


def test_command_loop_answers_bad_lines_as_aiosmtpd_does(gw: InProcessGateway) -> None:
    """Every reply of the command loop that no mail takes (the loop is ours, written
    after aiosmtpd's): a line that is empty, not ASCII, over a command's size or over
    the line limit; unknown verbs until the fifth closes the session."""

    def raw_session() -> tuple[socket.socket, Any]:
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 gw.test ESMTP dlp")
        return s, f

    def ask(s: socket.socket, f: Any, line: bytes) -> bytes:
        s.sendall(line + b"\r\n")
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
        return reply.rstrip(b"\r\n")

    s, f = raw_session()
    with s:
        assert ask(s, f, b"") == b"500 Error: bad syntax"
        assert ask(s, f, "NÖOP".encode()) == b"500 Error: bad syntax"
        assert ask(s, f, b"NOOP " + b"x" * 600) == b"500 Command line too long"  # 512 before EHLO
        assert ask(s, f, b"EHLO mta").startswith(b"250 ")
        assert ask(s, f, b"NOOP " + b"x" * 600) == b"250 2.0.0 Ok"  # 1024 after EHLO
        assert ask(s, f, b"NOOP " + b"x" * 1100) == b"500 Command line too long"
        long_mail = b"MAIL FROM:<" + b"a" * 2100 + b"@example.lg.jp>"
        assert ask(s, f, long_mail) == b"500 Command line too long"  # MAIL's own, 2084
        assert ask(s, f, b"NOOP " + b"x" * 5000) == b"500 Command line too long"  # line limit
        assert ask(s, f, b"  ") == b'500 Error: command "" not recognized'
        assert ask(s, f, b"noop") == b"250 2.0.0 Ok"
        verbs = b"DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY XFORWARD"
        assert ask(s, f, b"HELP") == b"250 Supported commands: " + verbs
        assert ask(s, f, b"HELP vrfy") == b"250 Syntax: VRFY <address>"
        assert ask(s, f, b"HELP nope") == b"501 Supported commands: " + verbs
        assert ask(s, f, b"AUTH PLAIN") == b"503 5.5.1 Error: authentication not enabled"
        assert ask(s, f, b"EXPN x") == b"502 EXPN not implemented"
        assert ask(s, f, b"VRFY <a@b.c>").startswith(b"252 ")
        assert ask(s, f, b"STARTTLS") == b"454 TLS not available"
        assert ask(s, f, b"QUIT") == b"221 2.0.0 Bye"
    s, f = raw_session()
    with s:
        for n in range(1, 5):
            assert ask(s, f, b"FOO%d bar" % n) == b'500 Error: command "FOO%d" not recognized' % n
        assert ask(s, f, b"FOO5") == b"502 5.5.1 Too many unrecognized commands, goodbye."
        assert f.readline() == b""  # closed


def test_require_tls_refuses_mail_before_starttls(
    lt: LoopThread, sink: Sink, tmp_path: Path
) -> None:
    pem = tmp_path / "gw.pem"
    _self_signed(pem)
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        smtp={"tls_cert": str(pem), "tls_key": str(pem), "require_tls": True},
    )
    g = InProcessGateway(cfg, lt)
    try:
        with client(g.port) as c:
            code, _ = c.docmd(f"MAIL FROM:<{SENDER}>")
            assert code == 530
            ctx = ssl.create_default_context(cafile=str(pem))
            ctx.check_hostname = False
            c.starttls(context=ctx)
            c.ehlo("mta")
            c.sendmail(SENDER, [EXTERNAL], plain("after starttls", "x"))
    finally:
        g.stop()
    assert len(sink.wait_for(1)) == 1


def test_commands_sent_in_clear_behind_starttls_are_dropped(lt: LoopThread, tmp_path: Path) -> None:
    """CVE-2011-0411: a MAIL injected after STARTTLS in the same packet must not run
    inside the TLS session (RFC 3207 4.2); the client starts again from EHLO."""
    g, pem = _tls_gateway(lt, tmp_path)
    try:
        raw = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220 ")
        raw.sendall(b"EHLO mta\r\n")
        while f.readline()[3:4] == b"-":
            pass
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.net>\r\n")
        assert f.readline() == b"220 Ready to start TLS\r\n"
        ctx = ssl.create_default_context(cafile=str(pem))
        ctx.check_hostname = False
        with ctx.wrap_socket(raw) as tls:
            tf = tls.makefile("rb")
            tls.sendall(b"RCPT TO:<someone@example.net>\r\n")
            assert tf.readline() == b"503 Error: send HELO first\r\n"
            tls.sendall(b"EHLO mta\r\n")
            lines = [tf.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(tf.readline())
            assert b"250-STARTTLS\r\n" not in lines
            tls.sendall(b"RCPT TO:<someone@example.net>\r\n")
            assert tf.readline() == b"503 5.5.1 Error: need MAIL command\r\n"
            tls.sendall(b"STARTTLS\r\n")
            assert tf.readline() == b"503 5.5.1 Error: TLS already active\r\n"
    finally:
        g.stop()


def test_a_client_that_sends_without_reading_gets_every_reply(gw: InProcessGateway) -> None:
    """Flow control both ways: the gateway stops reading commands while its replies
    pile up unread, and answers every one, in order, once the client reads."""
    import threading

    count = 80_000  # 6.7 MB of replies: more than the kernel buffers on loopback
    s = socket.socket()
    s.settimeout(30)
    # A small window, so that the replies back up into the gateway within seconds.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", gw.port))
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    # HELO: not one of the commands the junk limit counts (NOOP, RSET, VRFY, HELP)
    sender = threading.Thread(target=s.sendall, args=(b"HELO mta.example\r\n" * count,))
    sender.start()
    time.sleep(1.0)  # let both sides' buffers fill before reading anything
    replies = [f.readline() for _ in range(count)]
    sender.join(30)
    assert replies == [replies[0]] * count and replies[0].startswith(b"250 ")
    s.sendall(b"QUIT\r\n")
    assert f.readline() == b"221 2.0.0 Bye\r\n"
    s.close()


def _tls_gateway(loop: LoopThread, tmp_path: Path, **smtp: Any) -> tuple[InProcessGateway, Path]:
    pem = tmp_path / "gw.pem"
    _self_signed(pem)
    cfg = write_config(
        tmp_path,
        next_hop_port=free_port(),  # never reached: these sessions send no mail
        smtp={"tls_cert": str(pem), "tls_key": str(pem), "next_hop_timeout": 0.3, **smtp},
        scan={"timeout_seconds": 0.3},
        sections={"ocr": {"timeout_seconds": 0.1}},
    )
    return InProcessGateway(cfg, loop), pem


def _counted(g: InProcessGateway) -> tuple[int, dict[str, int]]:
    async def read() -> tuple[int, dict[str, int]]:
        return len(g.gateway.sessions), dict(g.gateway._per_client)

    return g.lt.call(read())


def _until_counted_out(g: InProcessGateway, seconds: float) -> float:
    started = time.monotonic()
    while _counted(g) != (0, {}) and time.monotonic() - started < seconds:
        time.sleep(0.05)
    assert _counted(g) == (0, {}), "the session is still counted against the caps"
    return time.monotonic() - started


def test_a_drain_ends_a_session_stuck_in_its_tls_handshake(
    any_loop: LoopThread, tmp_path: Path
) -> None:
    """SIGTERM while a client has said STARTTLS and sent nothing since: the drain must
    not wait for it (uvloop hands back a closing transport instead of None)."""
    g, _ = _tls_gateway(any_loop, tmp_path)
    try:
        s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO mta\r\nSTARTTLS\r\n")
        while f.readline()[3:4] == b"-":
            pass
        assert f.readline() == b"220 Ready to start TLS\r\n"

        async def drain() -> bool:
            g.gateway.begin_drain()
            return await g.gateway.wait_drained(5.0)

        assert g.lt.call(drain()) is True
        assert _counted(g) == (0, {})
        s.close()
    finally:
        g.stop()


def test_a_client_that_never_reads_is_cut_off_at_the_idle_timeout(
    any_loop: LoopThread, tmp_path: Path
) -> None:
    """Its replies back up, so a close could never finish: the connection is aborted."""
    g, _ = _tls_gateway(any_loop, tmp_path, idle_timeout=2.0)
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", g.port))
        s.settimeout(5)
        assert s.recv(4096).startswith(b"220 ")  # accepted and counted in
        s.settimeout(0.5)
        with contextlib.suppress(OSError):
            for _ in range(400):
                s.sendall(b"HELP\r\n" * 100)  # until the gateway stops reading
        _until_counted_out(g, 6.0)
        s.close()
    finally:
        g.stop()


def test_quit_under_tls_frees_the_session_at_once(any_loop: LoopThread, tmp_path: Path) -> None:
    """Not after TLS's 30 s wait for the client's close_notify (smtplib sends none)."""
    g, pem = _tls_gateway(any_loop, tmp_path)
    try:
        ctx = ssl.create_default_context(cafile=str(pem))
        ctx.check_hostname = False
        c = smtplib.SMTP("127.0.0.1", g.port, timeout=10)
        c.starttls(context=ctx)
        c.ehlo("mta")
        assert c.docmd("QUIT")[0] == 221
        assert _until_counted_out(g, 5.0) < 5.0
        c.close()
    finally:
        g.stop()
