"""Send-log pages: filters, sorting, pagination, entry detail, CSV export, dashboard."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from console_support import csrf_of
from starlette.testclient import TestClient
from support import my_number

from dlp.console.services import Services
from dlp.model import Action, Recipient, RecipientClass, ScanReport, Verdict
from dlp.sendlog import record_for_message

ROW = re.compile(r'<a href="/log/(\d+)\?back=')


def ids(html: str) -> list[int]:
    return [int(x) for x in ROW.findall(html)]


def total(html: str) -> int:
    m = re.search(r'<span id="total">([\d,]+)', html)
    assert m, "no total on the page"
    return int(m.group(1).replace(",", ""))


def test_list_newest_first_with_total(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    page = client_for("reviewer").get("/log")
    assert page.status_code == 200
    assert total(page.text) == 31
    shown = ids(page.text)
    assert shown[0] == 31 and len(shown) == 31  # the event, then messages newest first
    assert shown[1:] == list(range(1, 31))  # seq 1 is the newest message (0 hours ago)


def test_filters_narrow_the_list(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for("reviewer")
    # i % 3 == 0: 10 messages with findings
    assert total(c.get("/log?findings=yes").text) == 10
    assert total(c.get("/log?findings=no").text) == 21  # 20 messages and the event
    assert total(c.get("/log?verdict=reject").text) == 6  # i % 5 == 0
    assert total(c.get("/log?rclass=lookalike").text) == 6
    assert total(c.get("/log?rdomain=client1.co.jp").text) == len(
        [i for i in range(30) if i % 5 and i % 4 == 1]
    )
    assert total(c.get("/log?sender=user1@example.lg.jp").text) == 10
    assert total(c.get("/log?sender=@example.lg.jp").text) == 30
    assert total(c.get("/log?attachment=名簿7.csv").text) == 1
    assert total(c.get(f"/log?attachment={7:064x}").text) == 1
    assert total(c.get("/log?event=allowlist_add").text) == 1
    today = datetime.now(UTC).date().isoformat()
    assert 0 < total(c.get(f"/log?since=2000-01-01&until={today}").text) <= 31
    assert total(c.get("/log?since=2000-01-01&until=2000-01-02").text) == 0
    combined = c.get("/log?findings=yes&verdict=hold&sender=user0@example.lg.jp").text
    assert total(combined) == len([i for i in range(30) if i % 3 == 0 and i % 5 and i % 3 == 0])


def test_bad_filter_says_what_is_wrong(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for("reviewer")
    r = c.get("/log?since=yesterday")
    assert r.status_code == 400 and "since" in r.text
    r = c.get("/log?verdict=explode")
    assert r.status_code == 400 and "verdict" in r.text
    r = c.get("/log?since=2026-02-01&until=2026-01-01")
    assert r.status_code == 400


def test_sort_and_pagination(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for("reviewer")
    p1 = c.get("/log?per=25&event=message").text
    p2 = c.get("/log?per=25&event=message&page=2").text
    assert ids(p1) == list(range(1, 26))
    assert ids(p2) == list(range(26, 31))
    assert "page=2" in p1 and 'rel="next"' in p1 and 'rel="prev"' not in p1
    assert 'rel="prev"' in p2 and 'rel="next"' not in p2
    oldest = c.get("/log?per=25&event=message&sort=oldest").text
    assert ids(oldest) == list(range(30, 5, -1))
    # a page past the end shows the last page rather than nothing
    assert ids(c.get("/log?per=25&event=message&page=99").text) == list(range(26, 31))
    # the filter survives in the page and sort links
    assert "event=message" in re.search(r'href="([^"]*)" rel="next"', p1).group(1)


def test_entry_detail(client_for: Callable[[str | None], TestClient], seeded: Services) -> None:
    c = client_for("reviewer")
    page = c.get("/log/1?back=/log%3Ffindings%3Dyes")
    assert page.status_code == 200
    text = page.text
    for expected in (
        "QUEUE0000",  # the audit key, to find it in the MTA's log
        "&lt;m0@example.lg.jp&gt;",
        "staff0@exp.com",
        "exp.co.jp",  # the domain it resembles
        "名簿0.csv",
        f"{0:064x}",
        "mynumber",
        "<td>個人番号（マイナンバー） <small>mynumber</small></td>",  # the detector's own name
        "test-rule",
        'href="/log?findings=yes"',
    ):
        assert expected in text, expected
    assert c.get("/log/9999").status_code == 404
    event = c.get("/log/31").text
    assert "x.co.jp" in event and "seed" in event


def test_no_my_number_is_rendered_even_if_a_subject_holds_one(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    number = my_number("12345678901")
    store = seeded.sendlog()
    store.append(
        record_for_message(
            audit_key="Q",
            client_address="127.0.0.1",
            sender="a@example.lg.jp",
            recipients=[Recipient("b@x.co.jp", "x.co.jp", RecipientClass.EXTERNAL)],
            report=ScanReport(source="s", subject=f"番号 {number}"),
            verdict=Verdict(Action.DELIVER, "r"),
            next_hop_reply="250",
        )
    )
    c = client_for("reviewer")
    for url in ("/log", "/log/32", "/log/export.csv"):
        body = c.get(url).content.decode("utf-8-sig")
        assert number not in body
        assert "****-****-****" in body


def test_csv_export_is_the_current_filter_with_bom(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for("reviewer")
    page = c.get("/log?findings=yes&verdict=hold").text
    link = re.search(r'href="(/log/export\.csv[^"]*)"', page).group(1).replace("&amp;", "&")
    assert "findings=yes" in link and "verdict=hold" in link
    r = c.get(link)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "ID" and "件名" in rows[0]  # Japanese headers on the Japanese UI
    assert len(rows) - 1 == total(page)
    assert all("hold" in row for row in rows[1:])
    # English UI: the CLI's column names
    c.get("/lang/en")
    rows = list(csv.reader(io.StringIO(c.get(link).content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["id", "time_utc", "time_local"]


def test_dashboard_counts_and_links(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    page = client_for("reviewer").get("/?days=7")
    assert page.status_code == 200
    text = page.text
    assert text.count("<svg") == 5  # issue 14 added the free-mail chart
    # 30 attachment sends outside (24 external + 6 lookalike), 10 with findings
    assert "合計 30 件" in text
    assert "合計 10 件" in text
    # lookalikes by meant domain: exp.co.jp six times
    assert re.search(r"exp\.co\.jp</text>.*?>6</text>", text, re.S)
    # top senders: each of the three senders made ten external attachment sends
    for s in ("user0@example.lg.jp", "user1@example.lg.jp", "user2@example.lg.jp"):
        assert s in text
    # bars link to the matching send-log filter
    assert "/log?since=" in text and "findings=yes" in text
    assert "<script" not in text


def test_dashboard_in_english(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for("reviewer")
    r = c.get("/lang/en?next=/")
    assert r.status_code == 303 and r.headers["location"] == "/"
    text = c.get("/").text
    assert "Attachment sends to external domains" in text
    assert '<html lang="en">' in text


def test_entry_lists_other_entries_of_the_same_message(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    from dlp.sendlog import record_for_event

    rid = seeded.sendlog().append(
        record_for_event(
            event="release", actor="approver", comment="承認済み", audit_key="QUEUE0003"
        )
    )
    c = client_for("reviewer")
    page = c.get("/log/4").text  # seq 4 = message i=3, audit key QUEUE0003
    assert 'id="related"' in page and f'href="/log/{rid}"' in page and "承認済み" in page
    assert 'href="/log?audit=QUEUE0003"' in page
    assert ids(c.get("/log?audit=QUEUE0003").text) == [rid, 4]
    assert 'id="related"' not in c.get("/log/5").text


def test_dashboard_for_a_past_period(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for("reviewer")
    page = c.get("/?days=7&end=2020-01-31").text
    assert "2020-01-25 – 2020-01-31" in page
    assert "合計 0 件" in page
    assert "end=2020-01-31" in page  # the period links keep the end day
    assert c.get("/?end=garbage").status_code == 200


def _column(html: str, index: int) -> list[str]:
    rows = re.findall(r"<tr>\s*(.*?)</tr>", html.split("<tbody>")[1], re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [re.sub(r"<[^>]+>", "", c[index]).strip() for c in cells if len(c) > index]


def test_sort_by_columns(client_for: Callable[[str | None], TestClient], seeded: Services) -> None:
    c = client_for("reviewer")
    base = "/log?event=message&per=100"
    senders = _column(c.get(base + "&sort=sender").text, 1)
    assert senders == sorted(senders) and senders[0] == "user0@example.lg.jp"
    assert _column(c.get(base + "&sort=-sender").text, 1)[0] == "user2@example.lg.jp"
    # ties keep newest first: user0's messages are i = 0, 3, 6 ... -> seq 1, 4, 7 ...
    assert ids(c.get(base + "&sort=sender").text)[:3] == [1, 4, 7]
    verdicts = _column(c.get(base + "&sort=-verdict").text, 6)
    # 6 rejected (i % 5 == 0), 8 held (i % 3 == 0 otherwise), 16 delivered
    assert verdicts == ["拒否"] * 6 + ["保留"] * 8 + ["配送"] * 16
    first = _column(c.get(base + "&sort=-findings").text, 5)
    assert all("mynumber" in f for f in first[:10]) and "mynumber" not in first[10]
    # the active column shows its direction, and a second click reverses it
    page = c.get(base + "&sort=subject").text
    assert re.search(r'sort=-subject[^"]*"[^>]*class="sort active">件名 ▲', page)


def test_column_sort_refused_for_huge_sets(
    client_for: Callable[[str | None], TestClient],
    seeded: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("dlp.console.pages.log.MAX_CONSOLE_SORT", 5)
    page = client_for("reviewer").get("/log?event=message&sort=sender").text
    assert "並べ替えできません" in page
    assert ids(page)[:3] == [1, 2, 3]  # shown by time instead


def test_verify_page_reports_intact_and_tampered_chain(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    import sqlite3

    c = client_for("reviewer")
    page = c.get("/verify")
    assert page.status_code == 200 and 'id="verify-result"' not in page.text  # only on POST
    token = csrf_of(page.text)
    r = c.post("/verify", data={"csrf_token": token})
    assert r.status_code == 200
    assert "改ざんはありません: 31 件" in r.text
    head = seeded.sendlog().verify().head_hash
    assert head in r.text
    # a tamperer edits one entry behind the store's back
    with sqlite3.connect(seeded.settings.sqlite_path) as db:
        db.execute(
            "UPDATE sendlog_entry SET payload = replace(payload, '送付資料 7', '送付資料 X')"
            " WHERE seq = 8"
        )
    r = c.post("/verify", data={"csrf_token": token})
    assert r.status_code == 409
    assert "改ざんされています" in r.text and 'href="/log/8"' in r.text


def test_entry_says_what_differs_in_a_lookalike_recipient(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    """The reviewer sees the same words as the sender's bounce (issue 12)."""
    c = client_for("reviewer")
    text = c.get("/log/1").text
    assert '<small class="explanation">' in text
    assert (
        "末尾が .co.jp ではなく .com です（exp.com ↔ exp.co.jp）" in text
        or "the suffix .co.jp became .com (exp.com ↔ exp.co.jp)" in text
    ), text


def test_dashboard_counts_what_waits_for_senders_and_approvers_and_the_median_wait(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    """Issue 13: messages waiting for their sender or an approver, by kind, and the median
    time the decisions by link took (from their send-log entries)."""
    from dataclasses import replace as dc_replace

    from console_support import hold_message

    from dlp.holdqueue.store import open_quarantine
    from dlp.sendlog import record_for_event

    queue = open_quarantine(seeded.settings)
    held = hold_message(seeded.settings)
    with queue.claim(held.id):
        queue.update(dc_replace(held, kind="delay", waiting_for=("taro@example.lg.jp",)))
    for waited in (60, 600, 6000):
        seeded.sendlog().append(
            record_for_event(
                event="release",
                actor="sender taro@example.lg.jp",
                comment="send by one-click link",
                detail={"via": "link", "waited_seconds": waited, "decision": "send"},
            )
        )
    text = client_for("reviewer").get("/?days=7").text
    section = text[text.index('id="sender-loop"') :]
    assert "送信保留（時間で送信）" in section and '<a href="/held">1</a>' in section
    assert "判断 3 件" in section and "10 min" in section
