"""The real ``dlp scan`` command on real .eml, mbox, Maildir, CSV and HTML files.

Messages are generated with the ``email`` package (and by hand where Python
cannot write what Japanese clients send: CP50220 ISO-2022-JP), in every
charset and transfer encoding and with every separator the detector accepts.
"""

from __future__ import annotations

import base64
import io
import json
import os
import quopri
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from dlp.detect.mynumber import check_digit

pytestmark = pytest.mark.timeout(120)

DLP = Path(sys.executable).with_name("dlp")
NUMBERS = ["621498320257", "983205673214", "123456789018", "314159265358"]
NUMBERS[3] = NUMBERS[3][:11] + str(check_digit(NUMBERS[3][:11]))
SEPARATORS = ["", " ", "\u3000", "-", "‐", "‑", "–", "—", "−", "－", "ー", "ｰ"]
DIGIT_FORMS = {
    "ascii": str,
    "fullwidth": lambda s: s.translate({ord("0") + i: 0xFF10 + i for i in range(10)}),
}


def run(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DLP_CONFIG": str(Path(__file__).resolve().parents[2] / "config" / "dlp.toml"),
    }
    proc = subprocess.run(
        [str(DLP), "scan", *args],
        input=stdin,
        capture_output=True,
        timeout=100,
        env=env,
        cwd=cwd,
    )
    out = proc.stdout.decode("utf-8")
    err = proc.stderr.decode("utf-8")
    # No number, in any digit form, ever reaches the output (it may end up in a log).
    for n in NUMBERS:
        for form in DIGIT_FORMS.values():
            assert form(n) not in out and form(n) not in err
            assert form(n[:4]) + " " not in out  # not even a group of it
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def lines(proc: subprocess.CompletedProcess[str]) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def grouped(n: str, sep: str) -> str:
    return f"{n[:4]}{sep}{n[4:8]}{sep}{n[8:]}"


def cp50220(text: str) -> bytes:
    """ISO-2022-JP the way Windows writes it (NEC row 13 ① ㈱ inside ESC $ B)."""
    out = bytearray()
    kanji = False
    for ch in text:
        if ord(ch) < 0x80:
            if kanji:
                out += b"\x1b(B"
                kanji = False
            out += ch.encode()
            continue
        s1, s2 = ch.encode("cp932")
        if not kanji:
            out += b"\x1b$B"
            kanji = True
        j1 = (s1 - (0x70 if s1 <= 0x9F else 0xB0)) << 1
        if s2 < 0x9F:
            j1 -= 1
            j2 = s2 - (0x20 if s2 >= 0x80 else 0x1F)
        else:
            j2 = s2 - 0x7E
        out += bytes((j1, j2))
    if kanji:
        out += b"\x1b(B"
    return bytes(out)


def hand_made(body: bytes, charset: str, cte: str, subject: str = "ご連絡") -> bytes:
    subj = "=?UTF-8?B?" + base64.b64encode(subject.encode()).decode() + "?="
    if cte == "base64":
        body = base64.encodebytes(body)
    elif cte == "quoted-printable":
        body = quopri.encodestring(body)
    head = (
        f"From: sender@example.lg.jp\r\nTo: someone@example.com\r\nSubject: {subj}\r\n"
        f"Message-ID: <x@example.lg.jp>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    )
    return head.encode() + body


ENCODINGS = {
    "iso-2022-jp": cp50220,
    "shift_jis": lambda t: t.encode("cp932"),
    "euc-jp": lambda t: t.replace("－", "−").replace("①", "").encode("euc_jp"),
    "utf-8": lambda t: t.encode("utf-8"),
    "utf-16": lambda t: t.encode("utf-16"),
}


EXPECTED: dict[str, int] = {}
"""Numbers written into each generated message (one per separator and digit form)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scan")
    files: dict[str, Path] = {}
    # Every charset x transfer encoding, each with every separator and digit form.
    for cs, enc in ENCODINGS.items():
        for cte in ("base64", "quoted-printable", "8bit", "7bit"):
            if cte in ("8bit", "7bit") and cs == "utf-16":
                continue
            if cte == "7bit" and cs != "iso-2022-jp":
                continue
            lines_ = []
            for sep in SEPARATORS:
                if cs == "euc-jp" and sep in ("－", "‐", "‑", "–", "—", "ｰ"):
                    continue  # not representable in EUC-JP
                if cs == "shift_jis" and sep in ("‐", "‑", "–", "—", "−"):
                    continue  # not representable in CP932
                if cs == "iso-2022-jp" and sep in ("‐", "‑", "–", "—", "−", "ｰ"):
                    continue
                for form in DIGIT_FORMS.values():
                    lines_.append(f"個人番号①：{form(grouped(NUMBERS[0], sep))}\r\n")
            EXPECTED[f"{cs}-{cte}"] = len(lines_)
            body = "山田様\r\n" + "".join(lines_) + "よろしくお願いします。\r\n"
            p = root / f"{cs}-{cte}.eml"
            p.write_bytes(hand_made(enc(body), cs, cte))
            files[f"{cs}-{cte}"] = p
    # A clean message with tempting look-alikes (order number, phone, corporate number).
    clean = EmailMessage()
    clean["From"] = "a@example.lg.jp"
    clean["To"] = "b@example.com"
    clean["Subject"] = "ご注文ありがとうございます"
    base = "20261016000"
    clean.set_content(
        f"注文番号: {base}{check_digit(base)}\n電話 03-1234-5678\n法人番号 5835678256246\n"
        "登録番号 T5835678256246\nカード 4111 1111 1111 1111\n"
    )
    files["clean"] = root / "clean.eml"
    files["clean"].write_bytes(clean.as_bytes())
    # A message with a CP932 CSV attachment whose header names the column, and a nested message.
    m = EmailMessage()
    m["From"] = "hr@example.lg.jp"
    m["To"] = "payroll@example.com"
    m["Subject"] = "名簿の送付"
    m.set_content("資料を送ります。")
    csv_rows = "氏名,個人番号,電話\r\n" + "".join(
        f"社員{i},{n},03-0000-000{i}\r\n" for i, n in enumerate(NUMBERS)
    )
    m.add_attachment(
        csv_rows.encode("cp932"), maintype="text", subtype="csv", filename="社員名簿①.csv"
    )
    inner = EmailMessage()
    inner["Subject"] = "転送"
    inner.set_content(f"マイナンバー {grouped(NUMBERS[1], '-')}")
    m.add_attachment(inner)
    m.add_attachment(
        f"<p>個人番号 {NUMBERS[2][:4]}<span>{NUMBERS[2][4:8]}</span>{NUMBERS[2][8:]}</p>".encode(
            "cp932"
        ),
        maintype="text",
        subtype="html",
        filename="page.html",
    )
    files["attachments"] = root / "attachments.eml"
    files["attachments"].write_bytes(m.as_bytes())
    # Standalone files: a TSV in UTF-16, a CSV in CP932, a text without keyword.
    tsv = "番号\tマイナンバー\n" + "".join(f"{i}\t{n}\n" for i, n in enumerate(NUMBERS))
    files["tsv"] = root / "list.tsv"
    files["tsv"].write_bytes(tsv.encode("utf-16"))
    files["csv"] = root / "名簿.csv"
    files["csv"].write_bytes(csv_rows.encode("cp932"))
    files["plain"] = root / "memo.txt"
    files["plain"].write_bytes(f"連絡 {NUMBERS[3]} まで\n".encode())
    return files


def test_every_charset_transfer_encoding_and_separator(corpus: dict[str, Path]) -> None:
    keys = [k for k in corpus if k.startswith(tuple(ENCODINGS))]
    assert len(keys) == 15
    proc = run("--json", *(str(corpus[k]) for k in keys))
    assert proc.returncode == 1, proc.stderr
    reports = lines(proc)
    assert len(reports) == len(keys)
    for k, r in zip(keys, reports, strict=True):
        assert r["source"] == str(corpus[k])
        body = [f for f in r["findings"] if f["location"] == "body:text/plain"]
        assert body, k
        assert all(f["confidence"] == "high" and f["detector"] == "mynumber" for f in body), k
        assert all(set(f["masked"]) <= {"*", "-"} for f in body)
        s = r["summary"]["mynumber"]
        assert s["distinct"] == 1 and s["by_confidence"] == {"high": 1, "medium": 0, "low": 0}, k
        assert s["total"] == len(body) == EXPECTED[k], k
        assert r["subject"] == "ご連絡"
    by_name = dict(zip(keys, reports, strict=True))
    # UTF-8 carries every separator in both digit forms: 12 separators x 2 forms.
    assert by_name["utf-8-base64"]["summary"]["mynumber"]["total"] == len(SEPARATORS) * 2


def test_clean_message_exits_zero(corpus: dict[str, Path]) -> None:
    proc = run("--json", str(corpus["clean"]))
    assert proc.returncode == 0, proc.stdout
    (r,) = lines(proc)
    assert r["findings"] == [] and r["summary"]["mynumber"]["total"] == 0


def test_attachments_nested_message_and_html(corpus: dict[str, Path]) -> None:
    proc = run("--json", str(corpus["attachments"]))
    assert proc.returncode == 1
    (r,) = lines(proc)
    names = [a["filename"] for a in r["attachments"]]
    assert "社員名簿①.csv" in names and "page.html" in names
    assert any(a["content_type"] == "message/rfc822" for a in r["attachments"])
    for a in r["attachments"]:
        assert a["status"] == "scanned" and a["size"] > 0
        if a["filename"] == "page.html":
            # A tiny file with one number: its hash would stand in for the number.
            assert a["sha256"] == "" and "withheld" in a["detail"]
        else:
            assert len(a["sha256"]) == 64
    locs = {f["location"]: f["confidence"] for f in r["findings"]}
    assert locs["attachment:社員名簿①.csv!B"] == "high"
    assert any(loc.endswith("body:text/plain") and "attachment:" in loc for loc in locs)
    assert locs["attachment:page.html"] == "high"
    s = r["summary"]["mynumber"]
    assert s["distinct"] == 4 and s["by_confidence"]["high"] == 4


def test_standalone_files_are_scanned_as_attachments(corpus: dict[str, Path]) -> None:
    proc = run("--json", str(corpus["tsv"]), str(corpus["csv"]), str(corpus["plain"]))
    assert proc.returncode == 1
    tsv, csv_, plain = lines(proc)
    assert tsv["attachments"][0]["filename"] == "list.tsv"
    assert tsv["summary"]["mynumber"]["by_confidence"]["high"] == 4
    assert csv_["summary"]["mynumber"]["by_confidence"]["high"] == 4
    assert plain["summary"]["mynumber"]["by_confidence"] == {"high": 0, "medium": 0, "low": 1}


def test_min_confidence_filters_findings_and_exit_status(corpus: dict[str, Path]) -> None:
    proc = run("--json", "--min-confidence", "medium", str(corpus["plain"]))
    assert proc.returncode == 0
    assert lines(proc)[0]["findings"] == []


def test_mbox_maildir_and_stdin(corpus: dict[str, Path], tmp_path: Path) -> None:
    raws = [
        corpus["clean"].read_bytes(),
        corpus["attachments"].read_bytes(),
        corpus["utf-8-base64"].read_bytes(),
    ]
    mbox = tmp_path / "sent.mbox"
    with mbox.open("wb") as fh:
        for raw in raws:
            fh.write(b"From sender@example.lg.jp Thu Nov 26 10:00:00 2026\n")
            fh.write(raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From "))
            fh.write(b"\n")
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1.host:2,S").write_bytes(raws[0])
    (maildir / "new" / "2.host").write_bytes(raws[1])
    (maildir / ".Sent" / "cur" / "3.host:2,S").write_bytes(raws[2])
    proc = run("--json", str(mbox), str(maildir))
    reports = lines(proc)
    assert [r["source"] for r in reports[:3]] == [f"{mbox}#1", f"{mbox}#2", f"{mbox}#3"]
    assert [bool(r["findings"]) for r in reports[:3]] == [False, True, True]
    assert len(reports) == 6
    assert sorted(bool(r["findings"]) for r in reports[3:]) == [False, True, True]
    assert proc.returncode == 1
    # A Maildir found inside another folder is read once, with its subfolders.
    outer = tmp_path / "outer"
    outer.mkdir()
    maildir.rename(outer / "Maildir")
    (outer / "note.txt").write_bytes(b"hello")
    nested = lines(run("--json", str(outer)))
    assert len(nested) == 4
    assert sorted(r["source"].rsplit("/", 1)[-1] for r in nested) == [
        "1.host:2,S",
        "2.host",
        "3.host:2,S",
        "note.txt",
    ]
    piped = run("--json", "-", stdin=raws[1])
    (r,) = lines(piped)
    assert r["source"] == "<stdin>" and r["summary"]["mynumber"]["distinct"] == 4


def test_missing_file_is_exit_two(corpus: dict[str, Path], tmp_path: Path) -> None:
    proc = run("--json", str(corpus["clean"]), str(tmp_path / "nope.eml"))
    assert proc.returncode == 2
    assert "nope.eml" in proc.stderr
    assert len(lines(proc)) == 1
    # Alone, in the table form: the error and nothing else (no empty table above it).
    alone = run(str(tmp_path / "nope.eml"))
    assert alone.returncode == 2 and "nope.eml" in alone.stderr and alone.stdout == ""


def test_human_output_is_a_table(corpus: dict[str, Path]) -> None:
    proc = run(str(corpus["attachments"]), str(corpus["clean"]))
    assert proc.returncode == 1
    assert "attachments.eml" in proc.stdout and "clean.eml" in proc.stdout
    assert "high" in proc.stdout and "************" in proc.stdout
    assert "4/0/0" in proc.stdout


def test_config_extra_keywords(corpus: dict[str, Path], tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = (root / "config" / "dlp.toml").read_text(encoding="utf-8")
    cfg = cfg.replace("extra_keywords = []", 'extra_keywords = ["連絡"]')
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "dlp.toml").write_text(cfg, encoding="utf-8")
    proc = run("--config", str(tmp_path / "config" / "dlp.toml"), "--json", str(corpus["plain"]))
    assert lines(proc)[0]["summary"]["mynumber"]["by_confidence"]["high"] == 1
    bad = run("--config", str(tmp_path / "missing.toml"), str(corpus["plain"]))
    assert bad.returncode == 2


def test_extra_keywords_label_form_rows_and_digit_boxes(tmp_path: Path) -> None:
    """A label configured in ``extra_keywords`` works where the label sits beside the
    value (a CSV form row) and over twelve one-digit cells (a spreadsheet form): the
    table and form readers use the configured words, not only the built-in ones."""
    openpyxl = pytest.importorskip("openpyxl")
    number = NUMBERS[2]
    (tmp_path / "form.csv").write_text(
        f"氏名,山田太郎\n職員識別,{number}\n住所,東京都千代田区1-1\n", encoding="utf-8"
    )
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["B1"], ws["A2"] = "氏名", "山田太郎", "職員識別"
    for i, digit in enumerate(number):
        ws.cell(row=2, column=2 + i, value=int(digit))
    wb.save(tmp_path / "boxes.xlsx")
    files = [str(tmp_path / "form.csv"), str(tmp_path / "boxes.xlsx")]

    def high_by_file(config: Path | None) -> dict[str, int]:
        args = ("--config", str(config)) if config else ()
        out = lines(run(*args, "--json", "--min-confidence", "low", *files))
        return {
            Path(r["source"]).name: r["summary"]["mynumber"]["by_confidence"]["high"] for r in out
        }

    assert high_by_file(None) == {"form.csv": 0, "boxes.xlsx": 0}
    root = Path(__file__).resolve().parents[2]
    cfg = (root / "config" / "dlp.toml").read_text(encoding="utf-8")
    (tmp_path / "config").mkdir()
    configured = tmp_path / "config" / "dlp.toml"
    configured.write_text(
        cfg.replace("extra_keywords = []", 'extra_keywords = ["職員識別"]'), encoding="utf-8"
    )
    assert high_by_file(configured) == {"form.csv": 1, "boxes.xlsx": 1}


def test_archives_and_spreadsheets_through_the_registry(tmp_path: Path) -> None:
    import io
    import zipfile

    import openpyxl
    import pyzipper

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "名簿"
    ws.append(["氏名", "個人番号"])
    ws.append(["山田", NUMBERS[0]])
    ws.append(["田中", int(NUMBERS[1])])  # stored as a number, as Excel users do
    xlsx = io.BytesIO()
    wb.save(xlsx)
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as zf:
        zf.writestr("dir/名簿.xlsx", xlsx.getvalue())
        zf.writestr("list.csv", f"no,マイナンバー\n1,{NUMBERS[2]}\n")
    locked = io.BytesIO()
    with pyzipper.AESZipFile(locked, "w", encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(b"secret")
        zf.writestr("hidden.csv", f"個人番号\n{NUMBERS[3]}\n")
    m = EmailMessage()
    m["From"] = "a@example.lg.jp"
    m["Subject"] = "files"
    m.set_content("添付します")
    m.add_attachment(
        plain_zip.getvalue(), maintype="application", subtype="zip", filename="files.zip"
    )
    m.add_attachment(
        locked.getvalue(), maintype="application", subtype="zip", filename="locked.zip"
    )
    path = tmp_path / "archives.eml"
    path.write_bytes(m.as_bytes())
    proc = run("--json", str(path))
    assert proc.returncode == 1
    (r,) = lines(proc)
    status = {a["filename"]: a["status"] for a in r["attachments"]}
    assert status["files.zip"] == "scanned"
    assert status["files.zip/dir/名簿.xlsx"] == "scanned"
    assert status["files.zip/list.csv"] == "scanned"
    assert status["locked.zip"] == "encrypted" or status.get("locked.zip/hidden.csv") == "encrypted"
    assert r["summary"]["mynumber"]["by_confidence"] == {"high": 3, "medium": 0, "low": 0}
    assert {f["location"] for f in r["findings"]} == {
        "attachment:files.zip/dir/名簿.xlsx!名簿!B",
        "attachment:files.zip/list.csv!B",
    }


def test_recipient_evaluates_policy(corpus: dict[str, Path]) -> None:
    found = run("--json", "--recipient", "someone@example.net", str(corpus["attachments"]))
    (r,) = lines(found)
    assert r["verdict"]["action"] == "hold" and r["verdict"]["rule"]
    clean = run("--json", "--recipient", "someone@example.net", str(corpus["clean"]))
    (c,) = lines(clean)
    assert c["verdict"]["action"] == "deliver"


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import pty

    for i in range(12):
        m = EmailMessage()
        m["Subject"] = f"s{i}"
        m.set_content("こんにちは")
        (tmp_path / f"{i}.eml").write_bytes(m.as_bytes())
    env = {
        **os.environ,
        "DLP_CONFIG": str(Path(__file__).resolve().parents[2] / "config" / "dlp.toml"),
    }
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [str(DLP), "scan", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            timeout=100,
        )
    finally:
        os.close(slave)
    seen = b""
    try:
        while chunk := os.read(master, 65536):
            seen += chunk
    except OSError:
        pass  # EIO once the other side is closed
    os.close(master)
    assert proc.returncode == 0
    assert b"scanning" in seen and b"12/12" in seen
    assert b"scanning" not in proc.stdout  # the table on stdout stays clean
    piped = run(str(tmp_path))  # stderr not a terminal: no bar
    assert "scanning" not in piped.stderr


def test_a_number_in_every_metadata_slot_never_reaches_the_output(tmp_path: Path) -> None:
    import io
    import zipfile

    import openpyxl

    n = NUMBERS[0]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = n  # sheet names end up in locations
    ws.append(["個人番号"])
    ws.append([n])
    xlsx = io.BytesIO()
    wb.save(xlsx)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr(f"{n}/{n}.txt", f"マイナンバー {n}")
    m = EmailMessage()
    m["From"] = f"{n} <{n}@example.lg.jp>"
    m["To"] = f"{grouped(n, '-')} <b@example.com>"
    m["Subject"] = f"マイナンバー {grouped(n, ' ')} {DIGIT_FORMS['fullwidth'](n)}"
    m["Message-ID"] = f"<{n}@example.lg.jp>"
    m["Content-Description"] = n
    m.set_content(f"個人番号 {n}")
    m.add_attachment(
        xlsx.getvalue(), maintype="application", subtype="octet-stream", filename=f"{n}.xlsx"
    )
    m.add_attachment(
        zbuf.getvalue(), maintype="application", subtype="zip", filename=f"{grouped(n, '-')}.zip"
    )
    m.add_attachment(b"%PDF-1.4 broken", maintype="application", subtype="pdf", filename=f"{n}.pdf")
    path = tmp_path / f"{n}.eml"
    path.write_bytes(m.as_bytes())
    # run() asserts that no number (ASCII or full-width, nor a 4-digit group of it) is in stdout/stderr.
    proc = run("--json", str(path))
    assert proc.returncode == 1
    (r,) = lines(proc)
    assert r["summary"]["mynumber"]["distinct"] == 1
    assert len(r["attachments"]) >= 4
    human = run(str(path))
    assert human.returncode == 1


def test_json_names_the_detector_of_a_card_number(tmp_path: Path) -> None:
    """Issue 15: ``summary.<name>`` for every enabled detector, ``findings[].detector``."""
    card = "3530111333300000"  # JCB
    f = tmp_path / "支払い.txt"
    f.write_text(f"ご利用のクレジットカード\nカード番号 {card}\n有効期限 12/28\n", encoding="utf-8")
    proc = run("--json", str(f))
    assert proc.returncode == 1, proc.stderr  # something found
    assert card not in proc.stdout and card[:4] + " " not in proc.stdout
    (report,) = lines(proc)
    assert report["summary"]["credit_card"] == {
        "total": 1,
        "distinct": 1,
        "by_confidence": {"high": 1, "medium": 0, "low": 0},
    }
    assert report["summary"]["mynumber"]["total"] == 0
    assert set(report["summary"]) >= {"mynumber", "credit_card", "drivers_license", "passport"}
    (finding,) = report["findings"]
    assert finding["detector"] == "credit_card" and finding["confidence"] == "high"
    assert finding["masked"] == "****-****-****-****"


def test_extra_keywords_reach_every_body_and_table(tmp_path: Path) -> None:
    """A made-up label in ``[scan] extra_keywords`` makes a number beside it ``high``
    in an HTML body (a sentence, and the number split 4-4-4 over three cells), a
    plain body, a CSV column header and a Word table (label cell beside the number,
    and one digit a box): every reader of bodies and tables takes the configured
    words, not only the built-in ones."""
    docx = pytest.importorskip("docx")
    word, n = "職員識別コード", NUMBERS
    html = (
        f"<html><body><p>{word}は {grouped(n[0], '-')} です。</p>"
        f"<table><tr><th>{word}</th></tr><tr><td>{n[1][:4]}</td><td>{n[1][4:8]}</td>"
        f"<td>{n[1][8:]}</td></tr></table></body></html>"
    )
    doc = docx.Document()
    table = doc.add_table(rows=2, cols=13)
    table.cell(0, 0).text, table.cell(0, 1).text = word, grouped(n[3], " ")
    table.cell(1, 0).text = word
    for i, digit in enumerate(n[2]):
        table.cell(1, 1 + i).text = digit
    word_file = io.BytesIO()
    doc.save(word_file)
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.lg.jp", "b@example.com", "ご連絡"
    m.set_content(f"お疲れさまです。\n{word}：{grouped(n[2], ' ')}\n")
    m.add_alternative(html, subtype="html")
    m.add_attachment(
        f"{word},備考\n{n[3]},\n".encode(), maintype="text", subtype="csv", filename="一覧.csv"
    )
    m.add_attachment(
        word_file.getvalue(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="様式.docx",
    )
    path = tmp_path / "extra.eml"
    path.write_bytes(m.as_bytes())

    def high_places(config: Path | None) -> list[str]:
        args = ("--config", str(config)) if config else ()
        (r,) = lines(run(*args, "--json", "--min-confidence", "low", str(path)))
        return sorted(f["location"] for f in r["findings"] if f["confidence"] == "high")

    assert high_places(None) == []  # none of those places says My Number by itself
    cfg = (Path(__file__).resolve().parents[2] / "config" / "dlp.toml").read_text("utf-8")
    (tmp_path / "config").mkdir()
    configured = tmp_path / "config" / "dlp.toml"
    configured.write_text(
        cfg.replace("extra_keywords = []", f'extra_keywords = ["{word}"]'), encoding="utf-8"
    )
    assert high_places(configured) == sorted(
        [
            "body:text/plain",
            "body:text/html",  # the sentence
            "body:text/html",  # the three cells
            "attachment:一覧.csv!A",
            "attachment:様式.docx!body!table1!B",  # the label cell beside the number
            "attachment:様式.docx!body!table1!B",  # the twelve boxes, joined
        ]
    )
