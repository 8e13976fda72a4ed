"""The draft of a leak report to the Personal Information Protection Commission.

What the regulator asks (個人情報保護委員会への報告, nine items): ① overview
② the items of personal data ③ the number of persons ④ the cause ⑤ secondary
harm or its risk ⑥ what was done for the persons ⑦ publication ⑧ measures
against recurrence ⑨ anything else.  The send log answers ①–④ as far as it
knows; ⑤–⑨ are left as labelled blanks for the people who know.

Numbers of persons: each entry recorded how many *distinct* numbers (or, with
the roster detector, persons) one message held.  The log never keeps the
numbers (the filter keeps no My Numbers), so two messages cannot be unioned: over several
messages the sum is given and marked as an upper bound.

Deadlines: the preliminary report (速報) "promptly", read by the Commission's
guidelines as roughly 3–5 days from learning of the leak; the final report
(確報) within 30 days, 60 when the leak was for a wrongful purpose
(番号法 規則第2条第2号 / 個人情報保護法施行規則第8条第2項).  Thresholds:
番号法 規則第2条第4号, more than 100 persons' My Numbers; 個人情報保護法
施行規則第7条第4号, more than 1,000 persons.

Nothing here ever contains a number: the report is built only from counts,
classes, names and times already in the log, and every text goes through the
send log's scrubber once more on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from dlp.detect.registry import labels
from dlp.model import MYNUMBER, REPORTABLE_DISTINCT_NUMBERS, Action, RecipientClass
from dlp.sendlog.record import SendRecord
from dlp.sendlog.redact import scrub
from dlp.sendlog.store import StoredEntry

ROSTER = "roster"
"""The persons-counting detector (issue 15); used for ③ when an entry has it."""
APPI_REPORTABLE_PERSONS = 1000
"""個人情報保護法施行規則第7条第4号: more than 1,000 persons."""
PRELIMINARY_DAYS = (3, 5)
FINAL_DAYS = 30
FINAL_DAYS_WRONGFUL = 60


def item_name(detector: str) -> str:
    """The item of personal data (②) that detector ``detector`` finds, in Japanese."""
    return labels(detector).item


CLASS_NAMES: Mapping[str, str] = {
    RecipientClass.OWN.value: "組織内",
    RecipientClass.PARTNER.value: "取引先",
    RecipientClass.EXTERNAL.value: "外部",
    RecipientClass.FREEMAIL.value: "フリーメール・携帯",
    RecipientClass.LOOKALIKE.value: "類似ドメイン（誤送信の疑い）",
}

ACTION_NAMES: Mapping[str, str] = {
    Action.DELIVER.value: "送信",
    Action.TAG.value: "送信（警告ヘッダ付き）",
    Action.HOLD.value: "保留",
    Action.CONFIRM.value: "保留（送信者の確認待ち）",
    Action.DELAY.value: "保留（時間をおいて送信）",
    Action.APPROVE.value: "保留（承認者の承認待ち）",
    Action.REJECT.value: "拒否",
    Action.TEMPFAIL.value: "一時エラー",
}

HUMAN_ITEMS: tuple[tuple[str, str], ...] = (
    ("secondary_harm", "⑤ 二次被害又はそのおそれの有無及びその内容"),
    ("response_to_persons", "⑥ 本人への対応の実施状況"),
    ("publication", "⑦ 公表の実施状況"),
    ("recurrence_prevention", "⑧ 再発防止のための措置"),
    ("other", "⑨ その他参考となる事項"),
)
"""What only people know: left blank, labelled, in every format."""


@dataclass(frozen=True, slots=True)
class ReportRecipient:
    address: str
    domain: str
    klass: str
    own_address_likely: bool | None
    resembles: str
    entry_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry_id,
            "address": self.address,
            "domain": self.domain,
            "class": self.klass,
            "own_address_likely": self.own_address_likely,
            "resembles": self.resembles,
        }


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """① for one message: who sent what to whom, when, the verdict, the release."""

    id: int
    time: datetime
    sender: str
    header_from: str
    subject: str
    attachments: tuple[str, ...]
    action: str
    rule: str
    next_hop_reply: str
    persons: int
    mynumber_distinct: int
    released_by: str = ""
    released_at: datetime | None = None
    delivered: bool = False
    """The message (or a release of it) went to the next hop."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time.isoformat(),
            "sender": self.sender,
            "header_from": self.header_from,
            "subject": self.subject,
            "attachments": list(self.attachments),
            "action": self.action,
            "rule": self.rule,
            "next_hop_reply": self.next_hop_reply,
            "persons": self.persons,
            "mynumber_distinct": self.mynumber_distinct,
            "released_by": self.released_by,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "delivered": self.delivered,
        }


@dataclass(frozen=True, slots=True)
class IncidentReport:
    entries: tuple[ReportEntry, ...]
    recipients: tuple[ReportRecipient, ...]
    items: tuple[str, ...]
    persons: int
    persons_is_upper_bound: bool
    mynumber_persons: int
    mynumber_act_reportable: bool
    appi_reportable: bool
    mynumber_act_certain: bool
    """One message alone passes the 番号法 threshold (not only the upper-bound sum)."""
    appi_certain: bool
    discovered: date
    preliminary_due: tuple[date, date]
    final_due: date
    wrongful_purpose: bool
    cause: tuple[str, ...]
    drafted_at: datetime
    drafted_by: str
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "discovered": self.discovered.isoformat(),
            "preliminary_due": [d.isoformat() for d in self.preliminary_due],
            "final_due": self.final_due.isoformat(),
            "wrongful_purpose": self.wrongful_purpose,
            "persons": self.persons,
            "persons_is_upper_bound": self.persons_is_upper_bound,
            "mynumber_persons": self.mynumber_persons,
            "mynumber_act_reportable": self.mynumber_act_reportable,
            "appi_reportable": self.appi_reportable,
            "mynumber_act_reportable_certain": self.mynumber_act_certain,
            "appi_reportable_certain": self.appi_certain,
            "items": list(self.items),
            "entries": [e.to_json() for e in self.entries],
            "recipients": [r.to_json() for r in self.recipients],
            "cause": list(self.cause),
            "to_fill_in": {key: "" for key, _ in HUMAN_ITEMS},
            "drafted_at": self.drafted_at.isoformat(),
            "drafted_by": self.drafted_by,
            "notes": list(self.notes),
        }


class ReportError(ValueError):
    """An entry id the report cannot use, phrased for the person asking."""


def due_dates(discovered: date, wrongful_purpose: bool) -> tuple[tuple[date, date], date]:
    lo, hi = PRELIMINARY_DAYS
    final = FINAL_DAYS_WRONGFUL if wrongful_purpose else FINAL_DAYS
    return (
        (discovered + timedelta(days=lo), discovered + timedelta(days=hi)),
        discovered + timedelta(days=final),
    )


def persons_of(rec: SendRecord) -> int:
    """Distinct persons one message held: the roster count when recorded (issue
    15), else the distinct My Numbers — whichever is larger."""
    roster = int((rec.detectors.get(ROSTER) or {}).get("distinct", 0))
    return max(rec.mynumber_distinct, roster)


def items_of(rec: SendRecord) -> list[str]:
    found: list[str] = []
    if rec.mynumber_distinct or any(f.detector == MYNUMBER for f in rec.findings):
        found.append(MYNUMBER)
    for name in [f.detector for f in rec.findings] + list(rec.detectors):
        if name not in found:
            found.append(name)
    # the columns beside the numbers (氏名, 住所 …), recorded as fixed item names
    for item in rec.items:
        if item not in found and item_name(MYNUMBER) != item:
            found.append(item)
    return found


def build(
    entries: Sequence[StoredEntry],
    related: Mapping[int, Sequence[StoredEntry]],
    *,
    discovered: date,
    wrongful_purpose: bool = False,
    drafted_by: str,
    now: datetime,
    tz: tzinfo | None = None,
) -> IncidentReport:
    """The report for message ``entries``; ``related[id]``: the entries sharing
    that message's audit key (releases, discards, outcomes), oldest first."""
    if not entries:
        raise ReportError("no entries given")
    for e in entries:
        if e.record.event != "message":
            raise ReportError(
                f"entry {e.id} is a {e.record.event!r} entry, not a message; "
                "give the id of the message entry (dlp log search --audit-key)"
            )
    out_entries: list[ReportEntry] = []
    recipients: list[ReportRecipient] = []
    items: list[str] = []
    causes: list[str] = []
    for e in sorted(entries, key=lambda x: x.id):
        rec = e.record
        released_by, released_at = "", None
        delivered = rec.action in (Action.DELIVER.value, Action.TAG.value)
        for other in related.get(e.id, ()):
            if other.record.event == "release" and other.id > e.id:
                released_by, released_at = other.record.actor, other.record.time
                delivered = True
        out_entries.append(
            ReportEntry(
                id=e.id,
                time=rec.time.astimezone(tz),
                sender=rec.sender,
                header_from=rec.header_from,
                subject=rec.subject,
                attachments=tuple(a.filename for a in rec.attachments),
                action=rec.action,
                rule=rec.rule,
                next_hop_reply=rec.next_hop_reply,
                persons=persons_of(rec),
                mynumber_distinct=rec.mynumber_distinct,
                released_by=released_by,
                released_at=released_at.astimezone(tz) if released_at else None,
                delivered=delivered,
            )
        )
        for r in rec.recipients:
            recipients.append(
                ReportRecipient(
                    r.address, r.domain, r.klass, r.own_address_likely, r.resembles, e.id
                )
            )
        for name in items_of(rec):
            if name not in items:
                items.append(name)
        causes.append(_cause(e.id, rec, released_by, released_at, tz))
    with_persons = [x for x in out_entries if x.persons]
    persons = sum(x.persons for x in out_entries)
    mynumber_persons = sum(x.mynumber_distinct for x in out_entries)
    preliminary, final = due_dates(discovered, wrongful_purpose)
    notes = [
        "件数は送信ログに記録された各メールの重複を除いた件数です。"
        "ログは番号そのものを保存しないため、複数のメールにまたがる重複は除けません"
        "（合計は上限値です）。"
        if len(with_persons) > 1
        else "件数は送信ログに記録されたメール内の重複を除いた件数です。",
        # The send log records the items a scan read from column headers (items_of),
        # never the values; what no header named is not there.
        "② は送信ログに記録された項目（スキャン時に列見出しなどから判定したもの）です。"
        "見出しのない項目は記録されないため、添付ファイルを確認して補ってください。"
        if items
        else "送信ログにはこの送信の項目（氏名、住所、生年月日など）が記録されていないため、"
        "② は添付ファイルを確認して補ってください。",
    ]
    return IncidentReport(
        entries=tuple(out_entries),
        recipients=tuple(recipients),
        items=tuple(items),
        persons=persons,
        persons_is_upper_bound=len(with_persons) > 1,
        mynumber_persons=mynumber_persons,
        mynumber_act_reportable=mynumber_persons > REPORTABLE_DISTINCT_NUMBERS,
        appi_reportable=persons > APPI_REPORTABLE_PERSONS,
        mynumber_act_certain=any(
            x.mynumber_distinct > REPORTABLE_DISTINCT_NUMBERS for x in out_entries
        ),
        appi_certain=any(x.persons > APPI_REPORTABLE_PERSONS for x in out_entries),
        discovered=discovered,
        preliminary_due=preliminary,
        final_due=final,
        wrongful_purpose=wrongful_purpose,
        cause=tuple(scrub(c) for c in causes),
        drafted_at=now.astimezone(tz),
        drafted_by=drafted_by,
        notes=tuple(notes),
    )


def _cause(
    entry_id: int,
    rec: SendRecord,
    released_by: str,
    released_at: datetime | None,
    tz: tzinfo | None,
) -> str:
    """④ as far as the log knows: which rule decided, who released it, or that
    no rule matched."""
    head = f"記録 {entry_id}: "
    action = ACTION_NAMES.get(rec.action, rec.action)
    if released_by and released_at is not None:
        when = released_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        return (
            head + f"ルール「{rec.rule}」により{action}されたメールを、"
            f"{released_by} が {when} に解除（送信）しました。"
        )
    if rec.rule == "default":
        return head + f"どのルールにも該当せず、既定の動作（{action}）で処理されました。"
    return head + f"ルール「{rec.rule}」が適用され、{action}となりました。"


def related_ids(report: IncidentReport) -> str:
    """The entry ids, for the send-log record of the draft (a JSON scalar)."""
    return ",".join(str(e.id) for e in report.entries)
