"""The notice mails: to the sender (confirm, delay), to approvers (approve), outcomes.

Japanese first, then English.  They carry what the sender needs to decide -
the (masked) subject, the recipients, why in plain words (the rule's reason
texts and what was found where, as in a bounce), the deadline and one link -
and never a number or anything of the attachments (a notice is mail that leaves
the filter, which keeps no My Numbers: every text passes through ``scrub``).
``Auto-Submitted: auto-generated`` (RFC 3834) keeps auto-responders from answering
them.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import formatdate

from dlp.detect.mynumber import scrub

JST = timezone(timedelta(hours=9), "JST")


@dataclass(frozen=True, slots=True)
class Notice:
    to: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class HoldFacts:
    """What a notice says about one held message (all of it masked already)."""

    kind: str
    sender: str
    subject: str
    recipients: tuple[str, ...]
    why_ja: str
    why_en: str
    deadline: datetime | None
    meant: tuple[tuple[str, str], ...] = ()
    on_timeout: str = ""
    held_at: datetime | None = None


def _when(t: datetime | None) -> str:
    return t.astimezone(JST).strftime("%Y-%m-%d %H:%M JST") if t else "-"


_TIMEOUT_JA = {
    "discard": "期限までにご回答がない場合、このメールは破棄されます。",
    "deliver": "期限までにご回答がない場合、このメールはそのまま送信されます。",
    "hold": "期限までにご回答がない場合、情報管理担当者の確認に回ります。",
}
_TIMEOUT_EN = {
    "discard": "Unanswered by then, the message is discarded.",
    "deliver": "Unanswered by then, the message is sent as it is.",
    "hold": "Unanswered by then, it goes to the security staff for review.",
}


def _about(facts: HoldFacts, subject: str, rcpts: str, ja: list[str], en: list[str]) -> None:
    """The lines every notice has: the subject, the recipients, why (masked)."""
    ja += [f"件名: {subject}", f"宛先: {rcpts}"]
    en += [f"Subject: {subject}", f"To: {rcpts}"]
    if facts.why_ja:
        ja.append(f"理由: {scrub(facts.why_ja)}")
    if facts.why_en:
        en.append(f"Why: {scrub(facts.why_en)}")


def sender_notice(facts: HoldFacts, link: str, sender_from: str) -> Notice:
    """confirm / delay: the sender is told why and gets one link to decide."""
    subject = scrub(facts.subject) or "(件名なし / no subject)"
    rcpts = ", ".join(scrub(r) for r in facts.recipients)
    ja: list[str] = []
    en: list[str] = []
    if facts.kind == "delay":
        title = f"[送信保留] {subject} / Held before sending"
        ja.append(f"次のメールは {_when(facts.deadline)} に送信されます。")
        ja.append("今すぐ送信、または取り消しは下のリンクから行えます。")
        en.append(f"This message will be sent at {_when(facts.deadline)}.")
        en.append("To send it now or cancel it, open the link below.")
    else:
        title = f"[送信確認] {subject} / Please confirm before it is sent"
        ja.append("次のメールの送信を保留しました。送信してよいか確認してください。")
        en.append("This message is held. Please check whether it should be sent.")
    _about(facts, subject, rcpts, ja, en)
    for wrong, meant in facts.meant:
        ja.append(f"{scrub(wrong)} ではなく {scrub(meant)} ではありませんか？")
        en.append(f"Did you mean {scrub(meant)} instead of {scrub(wrong)}?")
    if facts.kind == "confirm":
        ja.append(f"回答期限: {_when(facts.deadline)}  {_TIMEOUT_JA.get(facts.on_timeout, '')}")
        en.append(f"Answer by: {_when(facts.deadline)}  {_TIMEOUT_EN.get(facts.on_timeout, '')}")
    return _mail(sender_from, facts.sender, title, ja, en, link)


def approver_notice(
    facts: HoldFacts,
    approver: str,
    link: str,
    notify_from: str,
    *,
    reminder: bool = False,
    escalated_from: tuple[str, ...] = (),
) -> Notice:
    """approve: one approver is asked to approve or reject.  ``escalated_from``: the
    approvers who did not answer in time (this one is asked in addition)."""
    subject = scrub(facts.subject) or "(件名なし / no subject)"
    mark_ja = "[再通知] " if reminder else "[エスカレーション] " if escalated_from else ""
    title = f"{mark_ja}[承認依頼] {subject} / Approval requested"
    rcpts = ", ".join(scrub(r) for r in facts.recipients)
    ja = [f"{scrub(facts.sender)} さんのメールが承認待ちです。承認または却下してください。"]
    en = [f"A message from {scrub(facts.sender)} waits for your approval."]
    if escalated_from:
        first = ", ".join(scrub(a) for a in escalated_from)
        ja.append(
            f"{_when(facts.held_at)} から承認を待っていますが、{first} から期限までに回答が"
            "なかったため、あなたにも依頼しています。"
        )
        en.append(
            f"It has waited since {_when(facts.held_at)}; {first} did not answer in time, "
            "so you are asked as well."
        )
    _about(facts, subject, rcpts, ja, en)
    return _mail(notify_from, approver, title, ja, en, link)


def waiting_notice(facts: HoldFacts, approvers: tuple[str, ...], notify_from: str) -> Notice:
    """approve: the sender is told that the message waits for an approver, and whose
    (no link: the approvers decide; the sender hears the outcome)."""
    subject = scrub(facts.subject) or "(件名なし / no subject)"
    rcpts = ", ".join(scrub(r) for r in facts.recipients)
    who = ", ".join(scrub(a) for a in approvers)
    ja = [f"次のメールは上長承認が必要なため、承認されるまで送信されません。承認者: {who}"]
    en = [f"This message needs approval and is not sent until it is approved. Approvers: {who}"]
    _about(facts, subject, rcpts, ja, en)
    ja.append("承認・却下の結果はメールでお知らせします。")
    en.append("You will be told by mail when it is approved or rejected.")
    return _mail(
        notify_from, facts.sender, f"[承認待ち] {subject} / Waiting for approval", ja, en, ""
    )


def outcome_notice(
    facts: HoldFacts, outcome: str, by: str, comment: str, notify_from: str
) -> Notice:
    """The sender is told what became of a message an approver (or time) decided."""
    subject = scrub(facts.subject) or "(件名なし / no subject)"
    texts = {
        "approved": ("承認され、送信されました。", "It was approved and sent."),
        "approved, pending": (
            "承認されました。次の中継サーバーが受け取りしだい送信されます。",
            "It was approved; it is sent as soon as the next mail server takes it.",
        ),
        "rejected": ("却下され、送信されませんでした。", "It was rejected and not sent."),
        # "sent" and "discarded" are what a confirm's timeout did: say why
        "sent": (
            "期限までに回答がなかったため、設定どおり送信されました。",
            "Unanswered in time, it was sent, as configured.",
        ),
        "discarded": (
            "期限までに回答がなかったため、送信されず破棄されました。",
            "Unanswered in time, it was not sent; it was discarded.",
        ),
        "handed over": (
            "期限までに回答がなかったため、情報管理担当者の確認に回りました。",
            "Unanswered in time, it went to the security staff for review.",
        ),
    }
    ja_t, en_t = texts.get(outcome, (outcome, outcome))
    ja = [f"メール「{subject}」は{ja_t}"]
    en = [f'Your message "{subject}": {en_t}']
    if by:
        ja.append(f"判断: {scrub(by)}")
        en.append(f"Decided by: {scrub(by)}")
    if comment:
        ja.append(f"コメント: {scrub(comment)}")
        en.append(f"Comment: {scrub(comment)}")
    return _mail(notify_from, facts.sender, f"[送信結果] {subject} / {en_t}", ja, en, "")


def _mail(
    sender_from: str,
    to: str,
    title: str,
    ja: list[str],
    en: list[str],
    link: str,
) -> Notice:
    body = "\n".join(ja)
    if link:
        body += f"\n\n確認・操作はこちら:\n{link}\n"
    body += "\n----------------------------------------\n" + "\n".join(en)
    if link:
        body += f"\n\nOpen this link to decide:\n{link}\n"
    body += (
        "\n\nこのメールは送信専用アドレスから自動送信されています。"
        "\nThis is an automatic message; replies are not read.\n"
    )
    # Written out rather than through email.message.EmailMessage, which took 3.8 ms a
    # notice (bench/sender_loop.py: `delay` on every message must stay cheap).  The
    # body is base64 (any next hop takes 7-bit), the subject an RFC 2047 encoded word.
    domain = sender_from.rpartition("@")[2] or "localhost"
    head = (
        f"From: {sender_from}\r\n"
        f"To: {to}\r\n"
        f"Subject: {_encoded_word(title)}\r\n"
        f"Date: {formatdate(localtime=False)}\r\n"
        f"Message-ID: <{secrets.token_hex(16)}@{domain}>\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    encoded = base64.encodebytes(body.replace("\n", "\r\n").encode("utf-8"))
    return Notice(to=to, raw=head.encode("utf-8") + encoded.replace(b"\n", b"\r\n"))


def _encoded_word(text: str) -> str:
    """RFC 2047 B-encoded words of at most 75 characters, folded (never mid-character)."""
    words, chunk = [], ""
    for ch in text:
        if len((chunk + ch).encode("utf-8")) > 45:
            words.append(chunk)
            chunk = ""
        chunk += ch
    words.append(chunk)
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?=" for w in words
    )
