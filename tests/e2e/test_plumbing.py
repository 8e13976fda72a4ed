"""The test instance itself: Postfix ─▶ pass-through filter ─▶ re-injection ─▶ sink.

Independent of the gateway: if these fail, the fault is in the harness (or the
deploy/postfix configuration), not in ``dlp serve``.
"""

from __future__ import annotations

import pytest
from e2e_client import build_message, marker, submit
from e2e_postfix import PostfixInstance
from e2e_process import ServiceProcess
from e2e_sink import Sink

pytestmark = pytest.mark.timeout(60)

SENDER = "alice@city.example.lg.jp"


def test_after_queue_path_delivers_once_via_the_filter(
    postfix: PostfixInstance, sink: Sink, passthrough: ServiceProcess
) -> None:
    tag = marker()
    rcpt = "bob@partner-plumbing.example"
    sub = submit(
        postfix.ports.submit,
        SENDER,
        [rcpt],
        build_message(sender=SENDER, recipients=[rcpt], subject=tag, body="plumbing test\n"),
    )
    assert sub.data_reply and sub.data_reply[0] == 250
    qid = sub.queue_id
    got = sink.wait(lambda: sink.with_marker(tag), 20, f"{tag} at the sink")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1
    assert got[0].rcpt_tos == (rcpt,)
    # The first hop went through the `scan` transport to the filter port, then re-injected.
    sent = list(postfix.status_lines(qid))
    assert any(
        "postfix/scan/smtp" in line
        and f":{postfix.ports.gateway}," in line
        and "status=sent" in line
        for line in sent
    ), sent
    assert f"[127.0.0.1]:{postfix.ports.sink}" not in "".join(sent)


def test_before_queue_path_delivers_via_the_proxy(
    postfix: PostfixInstance, sink: Sink, passthrough: ServiceProcess
) -> None:
    tag = marker()
    rcpt = "carol@partner-plumbing.example"
    sub = submit(
        postfix.ports.before_queue,
        SENDER,
        [rcpt],
        build_message(sender=SENDER, recipients=[rcpt], subject=tag, body="before-queue\n"),
    )
    assert sub.data_reply and sub.data_reply[0] == 250, sub
    sink.wait(lambda: sink.with_marker(tag), 20, f"{tag} at the sink")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1
    # The front smtpd queued nothing itself: it logged the proxy's acceptance for this mail.
    accepted = [
        line
        for line in postfix.log().splitlines()
        if "postfix/bq/smtpd" in line and "proxy-accept: END-OF-MESSAGE: 250" in line
    ]
    assert any(f"to=<{rcpt}>" in line for line in accepted), accepted
