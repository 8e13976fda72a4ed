"""Issue 14 through real SMTP: free-mail recipients, the sender's own private address,
and the PPC report draft built from the send log the gateway wrote.

Real messages go through an in-process gateway (real scanner pool, quarantine and
SQLite send log) to an aiosmtpd sink; the report and the export are made with the
`dlp` command on that store.
"""

from __future__ import annotations

import io
import json
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest
from click.testing import CliRunner
from gwtools import InProcessGateway, LoopThread, Sink, sendlog_entries, write_config
from sendlog_support import QUARANTINE_KEY
from support import my_number

from dlp.cli import main
from dlp.sendlog import open_store
from dlp.sendlog.store import LogFilter

pytestmark = pytest.mark.timeout(120)

SENDER = "taro.yamada@example.lg.jp"
OWN_PRIVATE = "yamada.taro1985@gmail.com"
FRIEND = "suzuki.hanako@docomo.ne.jp"
COLLEAGUE = "somu@example.lg.jp"
BIG = [my_number(f"{10_000_000_000 + 7919 * i:011d}") for i in range(120)]
SMALL = [my_number(b) for b in ("12345678901", "23456789012", "98765432109")]


def roster_csv(numbers: list[str]) -> bytes:
    rows = ["氏名,住所,個人番号"] + [
        f"住民{i},東京都千代田区{i}丁目,{n}" for i, n in enumerate(numbers)
    ]
    return ("\r\n".join(rows) + "\r\n").encode("utf-8")


def message(to: list[str], subject: str, attachment: bytes, name: str) -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"山田 太郎 <{SENDER}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.lg.jp>"
    msg.set_content("資料を送ります。")
    msg.add_attachment(attachment, maintype="text", subtype="csv", filename=name)
    return msg.as_bytes()


@pytest.fixture(scope="module")
def gw(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    cfg = write_config(
        tmp_path_factory.mktemp("gw"),
        next_hop_port=sink.port,
        sections={"quarantine": {"encryption_key": QUARANTINE_KEY}},
    )
    g = InProcessGateway(cfg, lt)
    yield g
    g.stop()


def send(port: int, to: list[str], raw: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.ehlo("mta.example.lg.jp")
        c.mail(SENDER)
        for r in to:
            c.rcpt(r)
        code, reply = c.data(raw)
    assert code == 250, reply
    return reply.decode()


def dlp(config: Path, *args: str) -> bytes:
    result = CliRunner().invoke(main, [*args, "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.fixture(scope="module")
def sent(gw: InProcessGateway, sink: Sink) -> dict[str, int]:
    """Three messages: 120 numbers to the sender's own gmail (held by the default
    rules, then released by a reviewer), 3 numbers to a friend's carrier address and
    a colleague (held), and a clean file to the own gmail (delivered)."""
    from dlp.smtp.release import release

    reply = send(
        gw.port, [OWN_PRIVATE], message([OWN_PRIVATE], "名簿", roster_csv(BIG), "名簿.csv")
    )
    assert "保留" in reply
    send(gw.port, [FRIEND, COLLEAGUE], message([FRIEND], "一覧", roster_csv(SMALL), "一覧.csv"))
    send(gw.port, [OWN_PRIVATE], message([OWN_PRIVATE], "予定", "会議は10時".encode(), "予定.csv"))
    held = {h.subject: h for h in gw.gateway.quarantine.list()}
    assert release(gw.settings, held["名簿"].id, "reviewer", "本人の依頼").startswith("250")
    ids = {}
    for e in sendlog_entries(gw.settings):
        if e.record.event == "message":
            ids[e.record.subject] = e.id
    return ids


def test_freemail_class_and_own_address_in_the_log(
    gw: InProcessGateway, sent: dict[str, int]
) -> None:
    entries = {e.id: e.record for e in sendlog_entries(gw.settings)}
    big, small, clean = (entries[sent[s]] for s in ("名簿", "一覧", "予定"))
    # The default rules name "external"; it covers freemail, so My Numbers to gmail.com are held.
    assert big.action == "hold" and big.rule == "mynumber-external"
    assert small.action == "hold" and clean.action == "deliver"
    assert [(r.klass, r.own_address_likely) for r in big.recipients] == [("freemail", True)]
    by_addr = {r.address: r for r in small.recipients}
    assert (by_addr[FRIEND].klass, by_addr[FRIEND].own_address_likely) == ("freemail", False)
    assert (by_addr[COLLEAGUE].klass, by_addr[COLLEAGUE].own_address_likely) == ("own", False)
    with open_store(gw.settings) as store:
        assert store.verify().ok
        free = {e.id for e in store.query(LogFilter(recipient_class="freemail"), limit=100)}
        ext = {e.id for e in store.query(LogFilter(recipient_class="external"), limit=100)}
        assert free == set(sent.values()) and free <= ext
        rows = store.stats(LogFilter(), by="sender")
        assert sum(r.attachments_freemail for r in rows) == 3


def test_jsonl_export_carries_class_and_own_address(
    gw: InProcessGateway, sent: dict[str, int]
) -> None:
    out = dlp(Path(gw.settings.source), "log", "export", "--format", "jsonl", "--class", "freemail")
    lines = [json.loads(x) for x in out.decode().splitlines()]
    got = {x["id"]: [(r["class"], r["own_address_likely"]) for r in x["recipients"]] for x in lines}
    assert got[sent["名簿"]] == [("freemail", True)]
    assert got[sent["予定"]] == [("freemail", True)]
    shown = dlp(Path(gw.settings.source), "log", "show", str(sent["名簿"])).decode()
    assert "freemail (own address?)" in shown
    listed = dlp(Path(gw.settings.source), "log", "list", "--class", "freemail", "--json")
    assert {json.loads(x)["id"] for x in listed.decode().splitlines()} == set(sent.values())
    assert sorted(got[sent["一覧"]], key=str) == sorted(
        [("freemail", False), ("own", False)], key=str
    )


def test_incident_report_json(gw: InProcessGateway, sent: dict[str, int]) -> None:
    cfg = Path(gw.settings.source)
    ids = [str(sent["名簿"]), str(sent["一覧"])]
    out = dlp(cfg, "incident", "report", *ids, "--discovered", "2026-04-01", "--format", "json")
    text = out.decode()
    for n in BIG + SMALL:
        assert n not in text and n[:8] not in text
    r = json.loads(text)
    assert r["persons"] == 123 and r["persons_is_upper_bound"] is True
    assert r["mynumber_act_reportable"] is True and r["appi_reportable"] is False
    assert r["mynumber_act_reportable_certain"] is True  # the 120-number message alone
    # the CSV has 氏名 and 住所 columns: the roster detector (issue 15) counts them,
    # and the columns beside the numbers are named as items of personal data
    assert r["items"] == ["mynumber", "roster", "氏名", "住所"]
    # ... and the note under ② says these were recorded, not that nothing was
    assert "記録された項目" in r["notes"][1] and "記録されていない" not in r["notes"][1]
    assert r["discovered"] == "2026-04-01"
    assert r["preliminary_due"] == ["2026-04-04", "2026-04-06"]
    assert r["final_due"] == "2026-05-01"
    first, second = r["entries"]
    assert (first["persons"], first["delivered"], first["released_by"]) == (120, True, "reviewer")
    assert (second["persons"], second["delivered"], second["released_by"]) == (3, False, "")
    rc = {(x["address"], x["class"], x["own_address_likely"]) for x in r["recipients"]}
    assert (OWN_PRIVATE, "freemail", True) in rc and (FRIEND, "freemail", False) in rc
    assert "reviewer" in r["cause"][0] and "mynumber-external" in r["cause"][1]
    wrongful = json.loads(
        dlp(
            cfg,
            "incident",
            "report",
            ids[1],
            "--discovered",
            "2026-04-01",
            "--format",
            "json",
            "--wrongful-purpose",
        )
    )
    assert wrongful["final_due"] == "2026-05-31"
    assert wrongful["persons"] == 3 and wrongful["persons_is_upper_bound"] is False
    assert wrongful["mynumber_act_reportable"] is False
    drafts = [e.record for e in sendlog_entries(gw.settings) if e.record.event == "incident_report"]
    assert {d.detail["entries"] for d in drafts} == {",".join(ids), ids[1]}
    assert all(d.actor and d.detail["format"] == "json" for d in drafts)


def test_incident_report_markdown_and_docx(
    gw: InProcessGateway, sent: dict[str, int], tmp_path: Path
) -> None:
    import docx

    from dlp.incident.render import HEADINGS

    cfg = Path(gw.settings.source)
    ids = [str(sent["名簿"]), str(sent["一覧"])]
    md = dlp(cfg, "incident", "report", *ids, "--discovered", "2026-04-01").decode()
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(HEADINGS)
    assert "2026年04月04日〜2026年04月06日" in md and "2026年05月01日" in md
    assert "123人（上限値）" in md and "送信者本人の私用アドレスの可能性" in md
    target = tmp_path / "report.docx"
    dlp(
        cfg,
        "incident",
        "report",
        *ids,
        "--discovered",
        "2026-04-01",
        "--format",
        "docx",
        "-o",
        str(target),
    )
    doc = docx.Document(io.BytesIO(target.read_bytes()))
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert headings == list(HEADINGS) and len(headings) == 9
    body = "\n".join(p.text for p in doc.paragraphs)
    for n in BIG + SMALL:
        assert n not in body


def test_incident_report_refuses_a_missing_or_non_message_entry(gw: InProcessGateway) -> None:
    result = CliRunner().invoke(
        main, ["incident", "report", "999999", "--config", str(Path(gw.settings.source))]
    )
    assert result.exit_code == 2 and "no send-log entry 999999" in result.output
