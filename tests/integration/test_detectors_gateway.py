"""Issue 15 through real SMTP: a card number to outside is tagged by the
identifiers-external rule of config/dlp.toml and counted per detector in the send log."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from gwtools import (
    EXTERNAL,
    SENDER,
    InProcessGateway,
    LoopThread,
    Sink,
    plain,
    sendlog_entries,
    write_config,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def gw(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    cfg = write_config(tmp_path_factory.mktemp("gw"), next_hop_port=sink.port)
    g = InProcessGateway(cfg, lt)
    yield g
    g.stop()


def client(port: int) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", port, timeout=30)
    c.ehlo("mta.example.lg.jp")
    return c


def test_a_card_number_to_outside_is_tagged_and_counted(gw: InProcessGateway, sink: Sink) -> None:
    """Issue 15: the identifiers-external rule of config/dlp.toml, through real SMTP."""
    card = "4539148803436467"
    raw = plain("お支払い", f"カード番号：{card[:4]}-{card[4:8]}-{card[8:12]}-{card[12:]}")
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], raw)
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].content.endswith(raw)
    head = got[0].content[: -len(raw)].decode()
    assert head.startswith("X-DLP-Verdict: tag; rule=identifiers-external")
    assert "X-DLP-Found: credit_card; distinct=1; high=1" in head
    assert card[:4] + "-" not in head and card not in head
    entry = next(
        e for e in reversed(sendlog_entries(gw.settings)) if e.record.rule == "identifiers-external"
    )
    assert entry.record.detectors == {"credit_card": {"total": 1, "distinct": 1}}
    assert [(f.detector, f.confidence) for f in entry.record.findings] == [("credit_card", "high")]
    # What a reviewer reads: `dlp log show` names the detector and its counts.
    env = {**os.environ, "DLP_CONFIG": gw.settings.source, "COLUMNS": "200"}
    shown = subprocess.run(
        [sys.executable, "-c", "from dlp.cli import main; main()", "log", "show", str(entry.id)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    assert "credit_card 1 found, 1 distinct" in shown
    assert card not in shown and card[:4] + "-" not in shown
