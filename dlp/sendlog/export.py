"""Send-log exports: CSV for Excel, JSON Lines for SIEM tools.

CSV is UTF-8 with a byte-order mark by default, which is what makes Excel
on a Japanese Windows open it without mojibake; ``shift_jis`` writes CP932
(Microsoft's Shift_JIS, which has the NEC/IBM extensions people actually
type), replacing the rare character it cannot hold with ``?`` rather than
failing the export.  Cells that Excel would run as a formula (starting with
``= + - @``) get a leading apostrophe: a subject line is attacker-controlled.

JSON Lines carries every recorded field of each entry plus its id and
hashes, one entry a line, UTF-8 without BOM.

Every text cell and field passes through ``scrub`` on the way out (no number may
leave in an export), hex digests and client IP addresses excepted: entries are scrubbed before they are
recorded, so this changes nothing for them, but an entry written before the scrubber
knew a shape (one digit per cell, invisible characters) is masked here instead of
being copied into a file that leaves the log's access control.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from datetime import tzinfo
from typing import IO

from dlp.sendlog.record import SendRecord
from dlp.sendlog.redact import is_ip_address, scrub, scrub_tree
from dlp.sendlog.store import StoredEntry

ENCODINGS = {"utf-8": "utf-8-sig", "shift_jis": "cp932"}
"""Option value -> Python codec."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_AS_IS = frozenset({"attachment_sha256", "hash"})
"""Columns of hex digests, never masked."""


def _cell(name: str, value: str) -> str:
    if name not in _AS_IS and not (name == "client_address" and is_ip_address(value)):
        value = scrub(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def _recipients(r: SendRecord) -> str:
    return "; ".join(f"{x.address} ({x.klass})" for x in r.recipients)


def _attachments(r: SendRecord) -> str:
    return "; ".join(
        f"{a.filename} ({a.content_type}, {a.size} B, {a.status})" for a in r.attachments
    )


def _findings(r: SendRecord) -> str:
    return "; ".join(
        f"{f.detector}/{f.confidence}: {f.count}"
        + (f" (distinct {f.distinct})" if f.distinct else "")
        for f in r.findings
    )


Column = tuple[str, str, Callable[[StoredEntry, tzinfo | None], object]]
COLUMNS: tuple[Column, ...] = (
    ("id", "ID", lambda e, tz: e.id),
    ("time_utc", "日時(UTC)", lambda e, tz: e.record.time.strftime("%Y-%m-%d %H:%M:%S")),
    (
        "time_local",
        "日時",
        lambda e, tz: e.record.time.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
    ),
    ("event", "種別", lambda e, tz: e.record.event),
    ("audit_key", "監査キー", lambda e, tz: e.record.audit_key),
    ("message_id", "Message-ID", lambda e, tz: e.record.message_id),
    ("client_address", "送信元IP", lambda e, tz: e.record.client_address),
    ("sender", "送信者", lambda e, tz: e.record.sender),
    ("header_from", "From", lambda e, tz: e.record.header_from),
    ("subject", "件名", lambda e, tz: e.record.subject),
    ("recipients", "宛先", lambda e, tz: _recipients(e.record)),
    (
        "recipient_domains",
        "宛先ドメイン",
        lambda e, tz: "; ".join(sorted({x.domain for x in e.record.recipients})),
    ),
    ("attachments", "添付ファイル", lambda e, tz: _attachments(e.record)),
    (
        "attachment_sha256",
        "添付SHA-256",
        lambda e, tz: "; ".join(a.sha256 for a in e.record.attachments),
    ),
    ("findings", "検出", lambda e, tz: _findings(e.record)),
    ("mynumber_total", "個人番号(件)", lambda e, tz: e.record.mynumber_total),
    ("mynumber_distinct", "個人番号(人)", lambda e, tz: e.record.mynumber_distinct),
    ("reportable_scale", "報告対象規模", lambda e, tz: int(e.record.reportable_scale)),
    ("action", "判定", lambda e, tz: e.record.action),
    ("rule", "ルール", lambda e, tz: e.record.rule),
    ("reasons", "理由", lambda e, tz: " / ".join(e.record.reasons)),
    ("next_hop_reply", "次ホップ応答", lambda e, tz: e.record.next_hop_reply),
    ("scan_error", "検査エラー", lambda e, tz: e.record.scan_error),
    ("unread", "未検査の部分", lambda e, tz: " / ".join(e.record.unread)),
    ("items", "個人データの項目", lambda e, tz: "、".join(e.record.items)),
    ("actor", "操作者", lambda e, tz: e.record.actor),
    ("comment", "コメント", lambda e, tz: e.record.comment),
    (
        "detail",
        "詳細",
        lambda e, tz: (
            json.dumps(dict(e.record.detail), ensure_ascii=False, sort_keys=True)
            if e.record.detail
            else ""
        ),
    ),
    ("hash", "ハッシュ", lambda e, tz: e.hash),
)


def write_csv(
    entries: Iterable[StoredEntry],
    out: IO[bytes],
    *,
    encoding: str = "utf-8",
    japanese_headers: bool = False,
    tz: tzinfo | None = None,
) -> int:
    """Write entries as CSV (CRLF rows, as Excel writes them); how many."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
    text = io.TextIOWrapper(out, encoding=ENCODINGS[encoding], errors="replace", newline="")
    try:
        w = csv.writer(text, lineterminator="\r\n")
        w.writerow([c[1] if japanese_headers else c[0] for c in COLUMNS])
        n = 0
        for e in entries:
            row = []
            for name, _, get in COLUMNS:
                v = get(e, tz)
                row.append(_cell(name, v) if isinstance(v, str) else v)
            w.writerow(row)
            n += 1
        text.flush()
        return n
    finally:
        text.detach()  # leave the caller's stream open


def write_jsonl(entries: Iterable[StoredEntry], out: IO[bytes]) -> int:
    """One JSON object per entry and line: every recorded field, id and hashes."""
    n = 0
    for e in entries:
        data = scrub_tree(e.to_json())
        out.write(json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        out.write(b"\n")
        n += 1
    out.flush()
    return n
