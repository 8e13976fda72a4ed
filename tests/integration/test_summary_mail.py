"""The team's summary mail (issue 14): built from a send log the real gateway wrote and
sent through the next hop to an SMTP sink by `dlp incident summary --send`."""

from __future__ import annotations

import email
import smtplib
import uuid
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default

import pytest
from click.testing import CliRunner
from gwtools import InProcessGateway, LoopThread, Sink, write_config
from sendlog_support import QUARANTINE_KEY
from support import my_number

from dlp.cli import main

pytestmark = pytest.mark.timeout(120)

TEAM = "joho-kanri@example.lg.jp"
NUMBERS = [my_number(f"{20_000_000_000 + 7919 * i:011d}") for i in range(101)]


def test_summary_mail_reaches_the_team(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cfg = write_config(
        tmp_path_factory.mktemp("gw"),
        next_hop_port=sink.port,
        sections={
            "quarantine": {"encryption_key": QUARANTINE_KEY},
            "notify": {"from": "dlp-noreply@example.lg.jp"},
            "report": {
                "to": [TEAM],
                "schedule": "daily",
                "console_url": "https://dlp.example.lg.jp",
            },
        },
    )
    gw = InProcessGateway(cfg, lt)
    try:
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = "taro.yamada@example.lg.jp"
        msg["To"] = "yamada.taro@gmail.com"
        msg["Subject"] = "名簿"
        msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.lg.jp>"
        msg.set_content("送ります")
        rows = ["氏名,個人番号"] + [f"住民{i},{n}" for i, n in enumerate(NUMBERS)]
        msg.add_attachment(
            "\r\n".join(rows).encode(), maintype="text", subtype="csv", filename="a.csv"
        )
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as c:
            c.sendmail("taro.yamada@example.lg.jp", ["yamada.taro@gmail.com"], msg.as_bytes())
    finally:
        gw.stop()
    assert sink.messages == []  # held: My Numbers to gmail.com
    result = CliRunner().invoke(main, ["incident", "summary", "--send", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [TEAM]
    mail = email.message_from_bytes(got[0].content, policy=default)
    assert mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert "messages: 1" in body and "hold 1" in body and "freemail 1" in body
    assert "held waiting: 1" in body
    assert "reportable-scale messages: 1" in body
    assert "taro.yamada@example.lg.jp: 1" in body  # the own-address list
    assert "chain head: #1 " in body and "https://dlp.example.lg.jp/analysis" in body
    for n in NUMBERS:
        assert n not in body
    assert "名簿" not in body and "a.csv" not in body  # no subject, no file name


def test_summary_refuses_without_a_from(tmp_path_factory: pytest.TempPathFactory) -> None:
    cfg = write_config(
        tmp_path_factory.mktemp("gw2"), next_hop_port=1, sections={"report": {"to": [TEAM]}}
    )
    result = CliRunner().invoke(main, ["incident", "summary", "--config", str(cfg)])
    assert result.exit_code == 2 and "[notify] from" in result.output
