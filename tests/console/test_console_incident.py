"""The console's 報告書の下書き page and the free-mail badges (issue 14), on a real
store whose entries are written from real scans by ``record_for_message``."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from console_support import csrf_of, held_numbers, held_raw
from starlette.testclient import TestClient

from dlp.console.services import Services
from dlp.incident.render import HEADINGS
from dlp.model import Action, ScanReport, Verdict
from dlp.ownaddress import mark
from dlp.recipients import RecipientClassifier
from dlp.scanner import scan_message
from dlp.sendlog import record_for_message

SENDER = "taro@example.lg.jp"


def _write(services: Services, numbers: int, to: str, key: str) -> int:
    settings = services.settings
    raw = held_raw(numbers)
    report = scan_message(raw, settings.scan, source="test")
    classifier = RecipientClassifier(None)
    rcpts = mark([classifier.classify(to)], SENDER, report.header_from)
    rec = record_for_message(
        audit_key=key,
        client_address="127.0.0.1",
        sender=SENDER,
        recipients=rcpts,
        report=report,
        verdict=Verdict(Action.HOLD, "mynumber-external"),
        next_hop_reply="held",
    )
    return services.sendlog().append(rec)


def test_report_page_for_a_selection(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    a = _write(services, 101, "taro1985@gmail.com", "K1")
    b = _write(services, 3, "someone@client.co.jp", "K2")
    c = client_for("reviewer")
    # the log list offers the selection, the entry page the single-entry link
    listing = c.get("/log")
    assert f'form="selection" name="ids" value="{a}"' in listing.text
    assert "フリーメール" in listing.text or "free mail" in listing.text
    assert "badge own-address" in listing.text  # taro1985@gmail.com from taro@
    dash = c.get("/?days=7").text
    card = dash[dash.index('id="chart-freemail"') : dash.index('id="chart-lookalike"')]
    assert "合計 1 件" in card and "rclass=freemail" in card  # one attachment to gmail.com
    entry = c.get(f"/log/{a}")
    assert f'href="/report?ids={a}"' in entry.text
    form = c.get(f"/report?ids={a}&ids={b}")
    assert form.status_code == 200 and f'value="{a} {b}"' in form.text
    token = csrf_of(form.text)
    page = c.post(
        "/report",
        data={"csrf_token": token, "ids": f"{a} {b}", "discovered": "2026-04-01", "format": "html"},
    )
    assert page.status_code == 200, page.text
    for h in HEADINGS:
        assert h in page.text
    assert "2026年04月04日〜2026年04月06日" in page.text and "2026年05月01日" in page.text
    assert "104人（上限値）" in page.text
    for n in held_numbers(101):
        assert n not in page.text
    docx_resp = c.post(
        "/report",
        data={"csrf_token": token, "ids": str(b), "discovered": "2026-04-01",
              "wrongful": "1", "format": "docx"},
    )  # fmt: skip
    assert docx_resp.status_code == 200
    import docx

    doc = docx.Document(io.BytesIO(docx_resp.content))
    assert [p.text for p in doc.paragraphs if p.style.name == "Heading 1"] == list(HEADINGS)
    assert any("2026年05月31日" in p.text for p in doc.paragraphs)
    drafts = [
        e for e in services.sendlog().query(None, limit=50) if e.record.event == "incident_report"
    ]
    assert {d.record.detail["entries"] for d in drafts} == {f"{a},{b}", str(b)}
    assert {d.record.actor for d in drafts} == {"reviewer"}


def test_report_page_refuses_bad_input_and_needs_a_reviewer(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for("reviewer")
    token = csrf_of(c.get("/report").text)
    bad = c.post("/report", data={"csrf_token": token, "ids": "12x", "discovered": ""})
    assert bad.status_code == 400 and "12x" in bad.text
    missing = c.post("/report", data={"csrf_token": token, "ids": "999", "discovered": ""})
    assert missing.status_code == 400 and "999" in missing.text
    assert c.post("/report", data={"ids": "1"}).status_code == 403  # no CSRF token
    anon = client_for(None).get("/report")
    assert anon.status_code == 303


def _send_at(services: Services, sender: str, to: str, when: datetime, report: ScanReport) -> int:
    classifier = RecipientClassifier(None)
    rcpts = mark([classifier.classify(to)], sender, report.header_from)
    return services.sendlog().append(
        record_for_message(
            audit_key="",
            client_address="127.0.0.1",
            sender=sender,
            recipients=rcpts,
            report=report,
            verdict=Verdict(Action.DELIVER, "default"),
            next_hop_reply="250 ok",
            when=when,
        )
    )


def test_analysis_flags_a_sender_far_above_their_own_level(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    """a@ sends one file outside a week for eight weeks, then six in the last week (one
    to a domain new to them) - flagged; b@ sends five a week and six now - not flagged;
    c@ mails a file to their own gmail."""
    report = scan_message(held_raw(0), services.settings.scan, source="t")
    assert report.attachments
    now = datetime.now(UTC) - timedelta(hours=1)
    for week in range(1, 9):
        t = now - timedelta(days=7 * week + 1)
        _send_at(services, "a@example.lg.jp", "x@kaisha-abc.jp", t, report)
        for k in range(5):
            _send_at(services, "b@example.lg.jp", "x@kaisha-abc.jp", t - timedelta(hours=k), report)
    for k in range(6):
        to = "x@newco.co.jp" if k == 0 else "x@kaisha-abc.jp"
        _send_at(services, "a@example.lg.jp", to, now - timedelta(hours=k), report)
        _send_at(services, "b@example.lg.jp", "x@kaisha-abc.jp", now - timedelta(hours=k), report)
    own = _send_at(services, "hanako.sato@example.lg.jp", "sato.hanako@gmail.com", now, report)
    c = client_for("reviewer")
    page = c.get("/analysis?days=7")
    assert page.status_code == 200, page.text
    levels = page.text[page.text.index('id="levels"') : page.text.index('id="first-domains"')]
    flagged = re.findall(r'<tr class="flagged"><td><a href="[^"]*">([^<]+)</a>', levels)
    assert flagged == ["a@example.lg.jp"]
    assert "b@example.lg.jp" in levels
    first = page.text[page.text.index('id="first-domains"') : page.text.index('id="own-address"')]
    assert "newco.co.jp" in first and "kaisha-abc.jp" not in first
    owners = page.text[page.text.index('id="own-address"') :]
    assert "hanako.sato@example.lg.jp" in owners and f'href="/log/{own}"' in owners
    exported = c.get("/analysis.csv?list=levels&days=7")
    assert exported.status_code == 200 and exported.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][0] == "sender"
    by_sender = {r[0]: r for r in rows[1:]}
    assert by_sender["a@example.lg.jp"][1:] == ["6", "1.0", "0", "0.0", "1"]
    assert by_sender["b@example.lg.jp"][1:] == ["6", "5.0", "0", "0.0", "0"]
    assert c.get("/analysis.csv?list=nope").status_code == 404


def test_a_threshold_passed_only_by_the_sum_is_a_possibility(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    """Two messages with 60 and 50 numbers - the same residents, as it happens: the log
    cannot tell, so 110 is an upper bound and 番号法 'may' apply, to be checked."""
    a = _write(services, 60, "someone@client.co.jp", "K1")
    b = _write(services, 50, "someone@client.co.jp", "K2")
    c = client_for("reviewer")
    token = csrf_of(c.get("/report").text)
    page = c.post(
        "/report",
        data={"csrf_token": token, "ids": f"{a},{b}", "discovered": "2026-04-01", "format": "html"},
    )
    assert page.status_code == 200
    assert "110人（上限値）" in page.text
    assert (
        "該当する可能性がある（合計が上限値のため要確認）（個人番号 110人（上限値））" in page.text
    )
