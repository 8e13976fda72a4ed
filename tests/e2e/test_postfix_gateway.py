"""``dlp serve`` behind a real Postfix: what reaches the Internet, what Postfix did about
it (queue and log), and what the gateway recorded (send log, hold queue).

After-queue cases submit to the ``submit`` smtpd (main.cf's content_filter sends the mail
through the gateway); before-queue cases submit to the smtpd_proxy_filter smtpd.  Every
message carries a unique marker in its Subject so each test finds its own mail.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess

import pytest
from e2e_client import build_message, marker, submit
from e2e_gateway import (
    DLP,
    EXTERNAL_DOMAIN,
    LOOKALIKE_DOMAIN,
    PARTNER_DOMAIN,
    REJECT_EN,
    REJECT_JA,
    REJECT_RULE,
    REJECT_SENDER,
    SENDER,
    Gateway,
)
from e2e_postfix import PostfixInstance, wait_until
from e2e_sink import Sink

pytestmark = pytest.mark.timeout(90)

# A syntactically valid My Number (check digit correct) made up for the tests.
MY_NUMBER = "123456789018"
MY_NUMBER_SPACED = "1234 5678 9018"


def _status(postfix: PostfixInstance, qid: str, needle: str, timeout: float = 30) -> list[str]:
    """Wait for a delivery-status line of ``qid`` containing ``needle``."""
    return wait_until(
        lambda: [line for line in postfix.status_lines(qid) if needle in line],
        timeout=timeout,
        what=f"a '{needle}' status line for {qid}",
        on_timeout=postfix.log_tail,
    )


def _scan_hop(postfix: PostfixInstance, qid: str, status: str) -> str:
    """The line of the hop from Postfix to the gateway (the `scan` transport)."""
    lines = _status(postfix, qid, f"status={status}")
    hops = [line for line in lines if "postfix/scan/smtp" in line]
    assert hops, lines
    assert f"relay=127.0.0.1[127.0.0.1]:{postfix.ports.gateway}" in hops[-1]
    return hops[-1]


def _no_number_leaked(*texts: str) -> None:
    for text in texts:
        assert MY_NUMBER not in text.replace(" ", "").replace("-", "")


# ---------------------------------------------------------------------------
# After-queue content filter


def test_clean_mail_is_delivered_once(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    sub = submit(
        postfix.ports.submit,
        SENDER,
        [rcpt],
        build_message(sender=SENDER, recipients=[rcpt], subject=tag, body="会議の資料です。\n"),
    )
    qid = sub.queue_id
    hop = _scan_hop(postfix, qid, "sent")
    assert "(250 " in hop
    sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink")
    postfix.wait_queue_empty()
    got = sink.with_marker(tag)
    assert len(got) == 1 and got[0].rcpt_tos == (rcpt,) and got[0].mail_from == SENDER
    assert not sink.bounces_about(tag)
    # A clean message without attachments is not send-log material.
    assert gateway.sendlog_for(qid) == []


def test_my_number_mail_is_held_not_delivered(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"payroll@{EXTERNAL_DOMAIN}"
    body = f"従業員の個人番号: {MY_NUMBER_SPACED} をお送りします。\n"
    sub = submit(
        postfix.ports.submit,
        SENDER,
        [rcpt],
        build_message(sender=SENDER, recipients=[rcpt], subject=tag, body=body),
    )
    qid = sub.queue_id
    # Postfix handed it over and got 250 (the gateway holds it durably) ...
    hop = _scan_hop(postfix, qid, "sent")
    assert "2.6.0" in hop, hop
    postfix.wait_queue_empty()
    # ... and once Postfix's queue is empty nothing can still reach the sink.
    assert sink.with_marker(tag) == [] and not sink.bounces_about(tag)
    held = [h for h in gateway.quarantine() if h.get("audit_key") == qid]
    assert len(held) == 1, gateway.quarantine()
    assert held[0]["recipients"] == [rcpt]
    assert held[0]["rule"] == "mynumber-external"
    entries = gateway.messages_for(qid)
    assert len(entries) == 1, entries
    assert entries[0]["verdict"]["action"] == "hold" and entries[0]["mynumber_distinct"] == 1
    _no_number_leaked(str(entries), str(held), postfix.log(), gateway.log_text())


def test_released_hold_is_delivered_once(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"payroll@{EXTERNAL_DOMAIN}"
    body = f"個人番号 {MY_NUMBER_SPACED}（承認済み）\n"
    sub = submit(
        postfix.ports.submit,
        SENDER,
        [rcpt],
        build_message(sender=SENDER, recipients=[rcpt], subject=tag, body=body),
    )
    qid = sub.queue_id
    _scan_hop(postfix, qid, "sent")
    postfix.wait_queue_empty()
    held = [h for h in gateway.quarantine() if h.get("audit_key") == qid]
    assert len(held) == 1 and sink.with_marker(tag) == []
    # An approver releases it: the gateway sends it to Postfix's re-injection port.
    done = subprocess.run(
        [
            str(DLP),
            "quarantine",
            "release",
            held[0]["id"],
            "--config",
            str(gateway.config),
            "--comment",
            "e2e approval",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink after release")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1 and got[0].rcpt_tos == (rcpt,)
    assert MY_NUMBER_SPACED.encode() in got[0].data  # released as held, unchanged
    assert [h for h in gateway.quarantine() if h.get("audit_key") == qid] == []
    events = [e["event"] for e in gateway.sendlog_for(qid)]
    assert events.count("message") == 1 and events.count("release") == 1, events


def test_rejected_mail_bounces_to_sender_with_bilingual_reason(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    sub = submit(
        postfix.ports.submit,
        REJECT_SENDER,
        [rcpt],
        build_message(
            sender=REJECT_SENDER, recipients=[rcpt], subject=tag, body="拒否されるはず\n"
        ),
    )
    qid = sub.queue_id
    hop = _scan_hop(postfix, qid, "bounced")
    assert "dsn=5.7.1" in hop and "550 5.7.1" in hop
    bounce = sink.wait(lambda: sink.bounces_about(tag), 30, f"the bounce of {tag}")
    postfix.wait_queue_empty()
    assert len(bounce) == 1 and bounce[0].rcpt_tos == (REJECT_SENDER,)
    report = bounce[0].message()
    text = "\n".join(
        part.get_content()
        for part in report.walk()
        if part.get_content_type() in ("text/plain", "message/delivery-status")
        and not part.is_multipart()
    )
    assert REJECT_EN in " ".join(text.split()), text
    assert REJECT_JA in text.replace("\n", "").replace(" ", ""), text
    assert sink.with_marker(tag) == []
    entries = gateway.messages_for(qid)
    assert len(entries) == 1 and entries[0]["verdict"]["action"] == "reject"
    assert entries[0]["verdict"]["rule"] == REJECT_RULE


def test_lookalike_recipient_bounced_other_recipient_delivered(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    wrong = f"taro@{LOOKALIKE_DOMAIN}"
    right = f"hanako@{EXTERNAL_DOMAIN}"
    sub = submit(
        postfix.ports.submit,
        SENDER,
        [wrong, right],
        build_message(sender=SENDER, recipients=[wrong, right], subject=tag, body="資料送付\n"),
    )
    qid = sub.queue_id
    bounced = _status(postfix, qid, "status=bounced")
    assert any(f"to=<{wrong}>" in line and "dsn=5.7.1" in line for line in bounced), bounced
    sent = _status(postfix, qid, "status=sent")
    assert any(f"to=<{right}>" in line for line in sent), sent
    delivered = sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink")
    bounce = sink.wait(lambda: sink.bounces_about(tag), 30, f"the bounce of {tag}")
    postfix.wait_queue_empty()
    assert len(delivered) == 1 and delivered[0].rcpt_tos == (right,)
    assert len(bounce) == 1 and bounce[0].rcpt_tos == (SENDER,)
    dsn = bounce[0].data.decode("utf-8", "replace")
    assert wrong in dsn and PARTNER_DOMAIN in dsn
    # The refused recipient is on record, under the same audit key, with the domain it mimics.
    refusals = [
        e for e in gateway.sendlog_for(qid) if e["verdict"]["rule"] == "lookalike-recipient"
    ]
    assert len(refusals) == 1, gateway.sendlog_for(qid)
    assert refusals[0]["verdict"]["action"] == "reject"
    assert [(r["address"], r["class"], r["resembles"]) for r in refusals[0]["recipients"]] == [
        (wrong, "lookalike", PARTNER_DOMAIN)
    ]


def test_smtputf8_recipient_and_8bit_body_arrive_intact(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"山田太郎@{EXTERNAL_DOMAIN}"
    body = "お世話になっております。①②③ 髙橋 𠮷野家 — 8ビットのまま届くこと。\n"
    data = build_message(
        sender=SENDER, recipients=[rcpt], subject=f"{tag} 件名も日本語", body=body, cte_8bit=True
    )
    sub = submit(postfix.ports.submit, SENDER, [rcpt], data, smtputf8=True)
    qid = sub.queue_id
    _scan_hop(postfix, qid, "sent")
    got = sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink")
    postfix.wait_queue_empty()
    assert len(got) == 1
    assert got[0].rcpt_tos == (rcpt,) and got[0].smtputf8
    # The body is byte-for-byte what was submitted: no quoted-printable, no re-encoding.
    sent_body = data.split(b"\r\n\r\n", 1)[1]
    got_body = got[0].data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
    assert got_body == sent_body.replace(b"\r\n", b"\n")
    assert body.encode("utf-8") in got[0].data.replace(b"\r\n", b"\n")
    assert f"{tag} 件名も日本語" in got[0].header("Subject")


def test_xforward_ident_is_the_audit_key(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    csv = "品名,数量\nりんご,3\n".encode()
    sub = submit(
        postfix.ports.submit,
        SENDER,
        [rcpt],
        build_message(
            sender=SENDER,
            recipients=[rcpt],
            subject=tag,
            body="見積書を添付します。\n",
            attachment=("見積.csv", csv, "text/csv"),
        ),
    )
    qid = sub.queue_id
    _scan_hop(postfix, qid, "sent")
    sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink")
    postfix.wait_queue_empty()
    # The send-log entry carries Postfix's queue id of the submission (XFORWARD IDENT) ...
    entries = gateway.messages_for(qid)
    assert len(entries) == 1, [(e["event"], e["audit_key"]) for e in gateway.sendlog()]
    entry = entries[0]
    assert entry["verdict"]["action"] == "deliver" and entry["sender"] == SENDER
    assert [a["sha256"] for a in entry["attachments"]] == [hashlib.sha256(csv).hexdigest()]
    # ... which the mail log ties to the client and to the re-injected copy ...
    assert postfix.log_lines(qid), f"{qid} not in the Postfix log"
    reinjected = [
        m.group(1)
        for line in postfix.log().splitlines()
        if (m := re.search(rf"postfix/reinject/smtpd\[\d+\]: (\w+): .*orig_queue_id={qid}\b", line))
    ]
    assert len(reinjected) == 1, postfix.log_tail()
    # ... whose queue id the gateway recorded as the next hop's answer.
    outcome = wait_until(
        lambda: [e for e in gateway.sendlog_for(qid) if e["event"] == "outcome"],
        timeout=10,
        what=f"the outcome entry of {qid}",
    )
    assert f"queued as {reinjected[0]}" in outcome[0]["next_hop_reply"], outcome


def test_gateway_down_defers_then_delivers_once(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    gateway.process.stop()
    try:
        sub = submit(
            postfix.ports.submit,
            SENDER,
            [rcpt],
            build_message(sender=SENDER, recipients=[rcpt], subject=tag, body="再送テスト\n"),
        )
        qid = sub.queue_id
        _status(postfix, qid, "status=deferred")
        deferred = wait_until(
            lambda: [
                m for m in postfix.queue() if m["queue_id"] == qid and m["queue_name"] == "deferred"
            ],
            timeout=30,
            what=f"{qid} in the deferred queue",
            on_timeout=postfix.log_tail,
        )
        reasons = " ".join(r.get("delay_reason", "") for r in deferred[0]["recipients"])
        assert "Connection refused" in reasons, deferred
        assert sink.with_marker(tag) == [] and not sink.bounces_about(tag)
    finally:
        gateway.process.start(timeout=60)
    postfix.flush()
    sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink after the gateway returned")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1
    assert not sink.bounces_about(tag)


# ---------------------------------------------------------------------------
# Before-queue proxy filter


def test_before_queue_refusal_reaches_client_and_no_bounce(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    sub = submit(
        postfix.ports.before_queue,
        REJECT_SENDER,
        [rcpt],
        build_message(sender=REJECT_SENDER, recipients=[rcpt], subject=tag, body="拒否\n"),
    )
    assert sub.data_reply is not None
    code, text = sub.data_reply
    assert code == 550 and text.startswith("5.7.1"), sub.data_reply
    assert REJECT_JA in text and REJECT_EN in text
    # Nothing was queued, so Postfix has nothing to bounce.
    refused = [
        line
        for line in postfix.log().splitlines()
        if "postfix/bq/smtpd" in line and "proxy-reject: END-OF-MESSAGE" in line
    ]
    assert any(f"from=<{REJECT_SENDER}>" in line for line in refused), postfix.log_tail()
    assert not re.search(rf"\b{re.escape(REJECT_SENDER)}\b.*status=bounced", postfix.log())
    assert postfix.queue() == []
    assert sink.with_marker(tag) == [] and sink.bounces_about(tag) == []


def test_before_queue_lookalike_refused_at_rcpt_other_delivered(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    wrong = f"taro@{LOOKALIKE_DOMAIN}"
    right = f"hanako@{EXTERNAL_DOMAIN}"
    sub = submit(
        postfix.ports.before_queue,
        SENDER,
        [wrong, right],
        build_message(sender=SENDER, recipients=[wrong, right], subject=tag, body="資料送付\n"),
    )
    code, text = sub.rcpt_replies[wrong]
    assert code == 550 and "5.7.1" in text and PARTNER_DOMAIN in text, sub.rcpt_replies
    assert sub.rcpt_replies[right][0] == 250
    assert sub.data_reply is not None and sub.data_reply[0] == 250, sub
    got = sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink")
    postfix.wait_queue_empty()
    assert len(got) == 1 and got[0].rcpt_tos == (right,)
    assert not sink.bounces_about(tag)


def test_before_queue_dsn_request_survives_the_proxy(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    sub = submit(
        postfix.ports.before_queue,
        SENDER,
        [rcpt],
        build_message(sender=SENDER, recipients=[rcpt], subject=tag, body="配達通知つき\n"),
        rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{rcpt}"],
    )
    # Postfix passed NOTIFY/ORCPT to the gateway verbatim; a filter without DSN would 555.
    assert sub.rcpt_replies[rcpt][0] == 250, sub.rcpt_replies
    assert sub.data_reply is not None and sub.data_reply[0] == 250, sub
    sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink")
    # The sink does not speak DSN, so Postfix tells the sender "relayed" - which it only
    # does because NOTIFY=SUCCESS travelled client -> Postfix -> gateway -> Postfix.
    notice = sink.wait(lambda: sink.bounces_about(tag), 30, f"the DSN for {tag}")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1
    assert len(notice) == 1 and notice[0].rcpt_tos == (SENDER,)
    status = notice[0].data.decode("utf-8", "replace")
    assert re.search(r"Action:\s*relayed", status), status
    assert f"Original-Recipient: rfc822;{rcpt}" in status


def test_before_queue_gateway_down_tempfails_the_client(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    gateway.process.stop()
    try:
        sub = submit(
            postfix.ports.before_queue,
            SENDER,
            [rcpt],
            build_message(sender=SENDER, recipients=[rcpt], subject=tag, body="停止中\n"),
        )
    finally:
        gateway.process.start(timeout=60)
    # Postfix reaches for the proxy at the first RCPT; the client is told to retry then
    # (Postfix's own wording), DATA is never sent, nothing is queued on its behalf.
    assert sub.mail_reply[0] == 250
    code, text = sub.rcpt_replies[rcpt]
    assert code == 451 and text.startswith("4.3.0"), sub
    assert sub.data_reply is None
    assert postfix.queue() == []
    assert sink.with_marker(tag) == [] and sink.bounces_about(tag) == []


def test_message_near_postfix_size_limit_is_delivered(
    postfix: PostfixInstance, sink: Sink, gateway: Gateway
) -> None:
    """The gateway announces a SIZE above Postfix's message_size_limit (10240000), so the
    biggest mail Postfix accepts is never bounced at the filter hop (5.3.4)."""
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    blob = os.urandom(7_000_000)  # about 9.5 MB once base64-encoded, under the 10240000 limit
    data = build_message(
        sender=SENDER,
        recipients=[rcpt],
        subject=tag,
        body="大きな添付ファイル\n",
        attachment=("archive.bin", blob, "application/octet-stream"),
    )
    assert 9_000_000 < len(data) < 10_240_000
    qid = submit(postfix.ports.submit, SENDER, [rcpt], data).queue_id
    _scan_hop(postfix, qid, "sent")
    got = sink.wait(lambda: sink.with_marker(tag), 60, f"{tag} at the sink")
    postfix.wait_queue_empty()
    assert len(got) == 1
    part = next(p for p in got[0].message().walk() if p.get_filename() == "archive.bin")
    assert part.get_content() == blob
    entries = gateway.messages_for(qid)
    assert len(entries) == 1 and entries[0]["attachments"][0]["size"] == len(blob)
