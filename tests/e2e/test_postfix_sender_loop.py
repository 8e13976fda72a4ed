"""The sender in the loop (issue 13) through a real Postfix.

Postfix (after-queue content filter) → `dlp serve` → Postfix re-injection → the sink,
which stands for every mailbox: the sender's notice arrives there through Postfix like
any mail, an HTTP client follows its link to the pages `dlp console` serves on
`[notify] listen` (GET shows, POST decides), and the original reaches its recipient
exactly once — or, for a delay, by itself when the time is up.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_client import build_message, marker, submit
from e2e_gateway import DLP, EXTERNAL_DOMAIN, OWN_DOMAIN, dump_toml, gateway_config, serve_argv
from e2e_postfix import PostfixInstance, PostfixPorts
from e2e_process import ServiceProcess
from e2e_sink import Delivery, Sink
from support import free_ports

pytestmark = pytest.mark.timeout(120)

NOTIFY_FROM = f"dlp-noreply@{OWN_DOMAIN}"
CONFIRMER = f"confirm@{OWN_DOMAIN}"
DELAYER = f"delay@{OWN_DOMAIN}"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/d/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class LoopGateway:
    def __init__(self, root: Path, ports: PostfixPorts) -> None:
        page_port, console_port = free_ports(2)
        path = gateway_config(root, ports)
        cfg = tomllib.loads(path.read_text(encoding="utf-8"))
        cfg["notify"] = {
            "from": NOTIFY_FROM,
            "listen": f"127.0.0.1:{page_port}",
            "check_interval": "1s",
        }
        cfg["console"]["listen"] = f"127.0.0.1:{console_port}"
        rules = [
            {"name": "e2e-confirm", "sender": [CONFIRMER], "action": "confirm", "timeout": "1h",
             "reason_ja": "社外宛てです。送信してよいか確認してください。",
             "reason_en": "It goes outside; please confirm."},
            {"name": "e2e-delay", "sender": [DELAYER], "has_attachments": True,
             "recipient_class": ["external"], "action": "delay", "delay": "8s"},
        ]  # fmt: skip
        cfg["policy"]["rules"] = [*rules, *cfg["policy"]["rules"]]
        path.write_text(dump_toml(cfg), encoding="utf-8")
        self.config = path
        self.gateway = ServiceProcess(
            serve_argv(path, ports), ports.gateway, root / "gateway-loop.log", cwd=root
        )
        self.pages = ServiceProcess(
            [str(DLP), "console", "serve", "--config", str(path)],
            page_port,
            root / "console-loop.log",
            cwd=root,
        )


@pytest.fixture(scope="module")
def loop_gateway(
    e2e_root: Path, ports: PostfixPorts, postfix: PostfixInstance
) -> Iterator[LoopGateway]:
    gw = LoopGateway(e2e_root, ports)
    try:
        gw.gateway.start(timeout=60)
        gw.pages.start(timeout=60)
        yield gw
    finally:
        gw.pages.stop()
        gw.gateway.stop()


def _notice(sink: Sink, to: str, tag: str) -> str:
    """The text of the notice about the message marked ``tag`` in ``to``'s mailbox."""

    def found() -> list[Delivery]:
        return [d for d in sink.to(to) if d.mail_from == NOTIFY_FROM and tag in d.header("Subject")]

    (delivery,) = sink.wait(found, 30, f"the notice about {tag} for {to}")
    body = delivery.message().get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_confirm_notice_through_postfix_link_then_delivered_once(
    postfix: PostfixInstance, sink: Sink, loop_gateway: LoopGateway
) -> None:
    tag = marker()
    rcpt = f"bob@{EXTERNAL_DOMAIN}"
    raw = build_message(sender=CONFIRMER, recipients=[rcpt], subject=tag, body="見積書です。\n")
    submit(postfix.ports.submit, CONFIRMER, [rcpt], raw)
    notice = _notice(sink, CONFIRMER, tag)
    assert "社外宛てです" in notice and rcpt in notice
    postfix.wait_queue_empty()
    assert sink.with_marker(tag) == []
    (link,) = set(LINK.findall(notice))
    with httpx.Client(timeout=30) as http:
        page = http.get(link)
        assert page.status_code == 200 and "送信する" in page.text
        m = CSRF.search(page.text)
        assert m is not None
        assert sink.with_marker(tag) == []  # GET alone never acts
        done = http.post(link, data={"decision": "send", "csrf": m.group(1)})
        assert done.status_code == 200, done.text
        again = http.post(link, data={"decision": "send", "csrf": m.group(1)})
        assert again.status_code == 410
    got = sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} at the sink after send")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1 and got[0].rcpt_tos == (rcpt,)
    assert got[0].mail_from == CONFIRMER


def test_delay_through_postfix_is_delivered_by_itself(
    postfix: PostfixInstance, sink: Sink, loop_gateway: LoopGateway
) -> None:
    tag = marker()
    rcpt = f"carol@{EXTERNAL_DOMAIN}"
    raw = build_message(
        sender=DELAYER, recipients=[rcpt], subject=tag, body="資料を添付します。\n",
        attachment=("memo.txt", b"notes\n", "text/plain"),
    )  # fmt: skip
    submit(postfix.ports.submit, DELAYER, [rcpt], raw)
    # The delay is long enough for the notice to arrive on a loaded machine: a
    # delay that ends before its notice went out is sent without one (by design).
    notice = _notice(sink, DELAYER, tag)
    assert "送信保留" in notice or "will be sent" in notice
    got = sink.wait(lambda: sink.with_marker(tag), 30, f"{tag} delivered when the delay ended")
    postfix.wait_queue_empty()
    assert len(sink.with_marker(tag)) == 1 and got[0].rcpt_tos == (rcpt,)
