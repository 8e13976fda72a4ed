"""The summary mail to the information-management team (issue 14, ``[report] to``).

For one period (a day or a week): message counts by verdict and by recipient class,
held mail waiting, reportable-scale messages, the senders far above their own
usual level (``analysis``), the send log's chain head, and a link to the console.
Only counts, addresses of senders, entry ids and a hash: never a number, a subject
or a file name (subjects and file names are people's free text and may hold a
number, which no mail the filter writes may carry).
Composed here; the CLI sends it through the next hop like any notice.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

from dlp.incident.analysis import Analysis, analyse
from dlp.model import RecipientClass
from dlp.sendlog.redact import scrub
from dlp.sendlog.store import LogFilter, SendLogStore

PERIOD_DAYS = {"daily": 1, "weekly": 7}
MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class Summary:
    since: datetime
    until: datetime
    messages: int
    by_action: dict[str, int]
    by_class: dict[str, int]
    with_attachments: int
    held_waiting: int | None
    reportable: tuple[int, ...]
    analysis: Analysis
    head_seq: int
    head_hash: str
    console_url: str


def build(
    store: SendLogStore,
    *,
    until: datetime,
    period: str,
    held_waiting: int | None,
    console_url: str,
    utc_offset_minutes: int = 0,
) -> Summary:
    days = PERIOD_DAYS[period]
    since = until - timedelta(days=days)
    by_action: Counter[str] = Counter()
    by_class: Counter[str] = Counter()
    messages = with_attachments = 0
    reportable: list[int] = []
    for e in store.iter_entries(LogFilter(since=since, until=until, event="message")):
        rec = e.record
        messages += 1
        by_action[rec.action] += 1
        with_attachments += bool(rec.attachments)
        for klass in {r.klass for r in rec.recipients}:
            by_class[klass] += 1
        if rec.reportable_scale:
            reportable.append(e.id)
    analysis = analyse(
        store,
        until=until,
        window_days=days,
        baseline_weeks=8 if days == 7 else 28,
        utc_offset_minutes=utc_offset_minutes,
    )
    with store.chain_snapshot() as chain:
        state = chain.state()
    return Summary(
        since=since,
        until=until,
        messages=messages,
        by_action=dict(by_action),
        by_class=dict(by_class),
        with_attachments=with_attachments,
        held_waiting=held_waiting,
        reportable=tuple(reportable),
        analysis=analysis,
        head_seq=state.head_seq if state else 0,
        head_hash=state.head_hash if state else "",
        console_url=console_url.rstrip("/"),
    )


def text(s: Summary, tz: tzinfo | None) -> tuple[str, str]:
    """(subject, body), Japanese with the English keys a script can grep."""
    fmt = "%Y-%m-%d %H:%M"
    period = f"{s.since.astimezone(tz).strftime(fmt)} – {s.until.astimezone(tz).strftime(fmt)}"
    lines = [
        "送信監査の定期報告 / DLP send-log summary",
        f"期間 / period: {period}",
        "",
        f"メール / messages: {s.messages}（添付あり / with attachments: {s.with_attachments}）",
        "判定別 / by verdict: "
        + (", ".join(f"{k} {v}" for k, v in sorted(s.by_action.items())) or "0"),
        "宛先区分別 / by recipient class: "
        + (
            ", ".join(
                f"{c.value} {s.by_class[c.value]}" for c in RecipientClass if c.value in s.by_class
            )
            or "0"
        ),
        "保留中 / held waiting: " + ("不明 / unknown" if s.held_waiting is None else str(s.held_waiting)),
        f"報告対象規模 / reportable-scale messages: {len(s.reportable)}"
        + (f"（記録 / entries {', '.join(f'#{i}' for i in s.reportable[:MAX_LISTED])}）" if s.reportable else ""),
        "",
        "いつもより多く外部へ添付送信した送信者 / senders far above their usual level:",
    ]  # fmt: skip
    flagged = s.analysis.flagged
    lines += [
        f"  {x.sender}: {x.outside}（基準 / baseline {x.baseline_outside:.1f}）"
        for x in flagged[:MAX_LISTED]
    ] or ["  なし / none"]
    lines += ["本人の私用アドレスと思われる宛先への送信 / sends to a probable own address:"]
    lines += [f"  {x.sender}: {x.messages}" for x in s.analysis.own_address[:MAX_LISTED]] or [
        "  なし / none"
    ]
    lines += [
        "",
        f"送信ログのチェーン先頭 / chain head: #{s.head_seq} {s.head_hash}",
        f"コンソール / console: {s.console_url}/analysis",
    ]
    subject = f"[DLP] 送信監査の定期報告 {s.since.astimezone(tz).date().isoformat()}〜"
    return scrub(subject), scrub("\n".join(lines) + "\n")


def message(s: Summary, *, sender: str, to: tuple[str, ...], tz: tzinfo | None) -> bytes:
    subject, body = text(s, tz)
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(tz))
    msg["Message-ID"] = f"<{secrets.token_hex(16)}@{sender.rpartition('@')[2] or 'localhost'}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    msg.set_content(body, charset="utf-8", cte="base64")
    return msg.as_bytes()
