"""Policy: a scan report and an envelope become a verdict.

Two entry points:

* ``recipient_refusal`` runs at RCPT time, per recipient: a recipient at a
  lookalike domain is refused (or marked for hold) before anything is relayed.
* ``decide`` runs once the message is scanned: the first ``[[policy.rules]]``
  entry whose conditions all hold decides; when none matches the configured
  ``default_action`` applies.

Every text produced here goes to the sender (in SMTP replies, so possibly into a
bounce) or to reviewers.  It names what was found and where, never a number
(the filter keeps no My Numbers, and a bounce quotes this text): only finding
locations and detector names are used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import assert_never

import idna

from dlp.config import DomainSettings, PolicySettings, Rule, parse_duration
from dlp.detect.mynumber import scrub
from dlp.detect.registry import labels as detector_labels
from dlp.model import (
    Action,
    AttachmentStatus,
    Confidence,
    Finding,
    HoldTerms,
    Recipient,
    RecipientClass,
    ScanReport,
    Verdict,
    class_matches,
)

LOOKALIKE_RULE = "lookalike-recipient"
DEFAULT_RULE = "default"

# An SMTP reply line may be 512 octets including the code (RFC 5321 4.5.3.1.5);
# Japanese text is 3 octets a character, so keep ours well under that.
_MAX_REPLY_OCTETS = 480

_DEFAULT_TEXTS: dict[Action, tuple[str, str]] = {
    Action.HOLD: (
        "確認のため送信を保留しました。",
        "The message has been held for review.",
    ),
    Action.CONFIRM: (
        "送信前の確認のため保留しました。確認のメールをお送りします。",
        "Held for you to confirm; a mail with a link follows.",
    ),
    Action.DELAY: (
        "送信保留中です。時間が来ると送信されます（取り消しはメールのリンクから）。",
        "Held for a short while before it is sent (cancel from the link in the mail).",
    ),
    Action.APPROVE: (
        "承認者の承認を待っています。結果はメールでお知らせします。",
        "Waiting for an approver; you will be told the outcome by mail.",
    ),
    Action.REJECT: (
        "送信ポリシーにより送信できません。",
        "The message was refused by the sending policy.",
    ),
    Action.TEMPFAIL: (
        "一時的に送信できません。しばらくして再送されます。",
        "The message cannot be accepted right now; it will be retried.",
    ),
}

# ---------------------------------------------------------------------------
# RCPT time


def hold_instead_of_bounce(verdict: Verdict) -> Verdict:
    """A refusal turned into a hold, for a message whose envelope sender is outside.

    After-queue Postfix answers a 550 from the filter with a non-delivery
    report to the envelope sender that quotes the message (up to
    ``bounce_size_limit``), and such reports do not pass the content filter:
    refusing mail from an outside sender would carry it out unscanned."""
    if verdict.action is not Action.REJECT:
        return verdict
    return Verdict(
        action=Action.HOLD,
        rule=verdict.rule,
        reasons=(
            *verdict.reasons,
            "held instead of refused: the envelope sender is outside, and the bounce would "
            "carry the message to it unscanned",
        ),
        smtp_code=250,
        smtp_message=_fit(
            "2.6.0",
            "送信ポリシーにより送信できないため、保留しました。",
            "Refused by the sending policy; held for review.",
        ),
    )


def recipient_refusal(recipient: Recipient, domains: DomainSettings) -> Verdict | None:
    """Verdict for one recipient before relaying it, or None to pass it on.

    Only a lookalike domain is acted on here: ``lookalike_action = "reject"``
    refuses this recipient alone with a bilingual ``550 5.7.1`` naming the domain
    that was probably meant; ``"hold"`` accepts it and holds the whole message.
    """
    if recipient.klass is not RecipientClass.LOOKALIKE:
        return None
    meant = recipient.resembles or "?"
    # As the sender typed it (ехр.со.jр), not its A-label (xn--e1awo...): the
    # explanation names the look-alike letters.
    shown = _as_typed(recipient.domain)
    ja = f"宛先ドメイン {shown} は {meant} の誤りの可能性があります"
    en = f"{shown} looks like a mistyped {meant}"
    if recipient.explanation:  # say what differs (issue 12)
        # a sentence of its own: the explanation ends in "(a ↔ b)" already, and
        # parentheses inside parentheses read as machine output
        ja += f"。{recipient.explanation_ja}" if recipient.explanation_ja else ""
        en += f": {recipient.explanation}"
    reason = f"lookalike recipient domain {recipient.domain} (resembles {meant}"
    reason += f", {recipient.technique})" if recipient.technique else ")"
    if domains.lookalike_action == Action.CONFIRM:
        ja_ask, en_ask = f"{ja}。送信してよいか確認してください。", f"{en}. Please confirm."
        return Verdict(
            action=Action.CONFIRM,
            rule=LOOKALIKE_RULE,
            reasons=(reason,),
            smtp_code=250,
            smtp_message=_fit(
                "2.1.5", ja + "（送信前に確認をお願いします）", en + " (held for you to confirm)"
            ),
            terms=HoldTerms(
                wait_seconds=parse_duration(domains.lookalike_timeout),
                on_timeout=domains.lookalike_on_timeout,
                notice_ja=scrub(ja_ask),
                notice_en=scrub(en_ask),
            ),
        )
    if domains.lookalike_action == Action.HOLD:
        return Verdict(
            action=Action.HOLD,
            rule=LOOKALIKE_RULE,
            reasons=(reason,),
            smtp_code=250,
            smtp_message=_fit("2.1.5", ja + "（送信は保留されます）", en + " (held for review)"),
        )
    # What to do when the address is right after all (a partner's own .com beside the
    # .co.jp the allowlist names): the refusal is final, so say who can change it.
    main_ja, _, why_ja = ja.partition("。")
    main_en, _, why_en = en.partition(": ")
    return Verdict(
        action=Action.REJECT,
        rule=LOOKALIKE_RULE,
        reasons=(reason,),
        smtp_code=550,
        smtp_message=_fit(
            "5.7.1",
            f"{main_ja}。正しい宛先なら情報管理担当者に登録を依頼してください"
            + (f"。{why_ja}" if why_ja else ""),
            f"{main_en}. If the address is right, ask your administrator to list the domain"
            + (f". What differs: {why_en}" if why_en else ""),
        ),
    )


# ---------------------------------------------------------------------------
# After the scan


def decide(
    report: ScanReport,
    recipients: Sequence[Recipient],
    sender: str,
    policy: PolicySettings,
) -> Verdict:
    """The verdict of the first rule that matches; the default action otherwise."""
    for rule in policy.rules:
        if _matches(rule, report, recipients, sender):
            return _verdict(rule, report, recipients)
    action = Action(policy.default_action)
    return Verdict(
        action=action,
        rule=DEFAULT_RULE,
        reasons=_describe(report, None),
        smtp_code=250,
        smtp_message="2.0.0 Ok",
    )


def _matches(rule: Rule, report: ScanReport, recipients: Sequence[Recipient], sender: str) -> bool:
    if rule.scan_error is not None and rule.scan_error != bool(report.error):
        return False
    if rule.incomplete is not None and rule.incomplete != report.incomplete:
        return False
    if (rule.detector or rule.min_confidence) and not _matching_findings(rule, report):
        return False
    if rule.min_distinct and _distinct(rule, report) < rule.min_distinct:
        return False
    if rule.attachment_status and not any(
        _status_matches(a.status, rule.attachment_status) for a in report.attachments
    ):
        return False
    if rule.has_attachments is not None and rule.has_attachments != bool(report.attachments):
        return False
    if rule.recipient_class and not any(
        class_matches(r.klass, rule.recipient_class) for r in recipients
    ):
        return False
    if rule.own_address_likely is not None and rule.own_address_likely != any(
        r.own_address_likely for r in recipients
    ):
        return False
    if rule.mynumber_entitled is not None and rule.mynumber_entitled != _all_entitled(recipients):
        return False
    return not rule.sender or _sender_matches(sender, rule.sender)


def _matching_findings(rule: Rule, report: ScanReport) -> list[Finding]:
    floor = Confidence(rule.min_confidence) if rule.min_confidence else Confidence.LOW
    return [
        f
        for f in report.findings
        if (not rule.detector or f.detector == rule.detector) and f.confidence.at_least(floor)
    ]


def _distinct(rule: Rule, report: ScanReport) -> int:
    """Distinct values at or above the rule's confidence: of the rule's detector, or
    of the one with the most when the rule names none (``min_distinct = 100``
    means a hundred of one kind, not a card number and 99 passports)."""
    floor = Confidence(rule.min_confidence) if rule.min_confidence else Confidence.LOW
    if rule.detector:
        return report.summary(rule.detector).distinct_at_least(floor)
    return max(
        [report.mynumber.distinct_at_least(floor)]
        + [s.distinct_at_least(floor) for s in report.summaries.values()]
    )


def _status_matches(status: AttachmentStatus, wanted: tuple[str, ...]) -> bool:
    return status.value in wanted or ("unscannable" in wanted and status.unscannable)


def _all_entitled(recipients: Sequence[Recipient]) -> bool:
    """True when every recipient outside our own domains is an entitled partner.

    Own-domain recipients do not spoil it (a payroll office copying its own
    staff is still sending to the entitled partner); at least one entitled
    partner must be present, or a purely internal message would count too.
    """
    outside = [r for r in recipients if r.klass is not RecipientClass.OWN]
    return bool(outside) and all(
        r.klass is RecipientClass.PARTNER and r.mynumber_entitled for r in outside
    )


def _sender_matches(sender: str, patterns: tuple[str, ...]) -> bool:
    address = sender.strip("<>").lower()
    domain = address.rpartition("@")[2]
    for pattern in patterns:
        p = pattern.strip().lower()
        if p == "<>" and not address:
            return True
        if p.startswith("@") and address and (domain == p[1:] or domain.endswith("." + p[1:])):
            return True
        if p == address and address:
            return True
    return False


def _verdict(rule: Rule, report: ScanReport, recipients: Sequence[Recipient]) -> Verdict:
    action = Action(rule.action)
    reasons = _describe(report, rule) + _recipient_reason(rule, recipients)
    # Exhaustive (mypy checks the assert_never): a new action gets its own reply here
    # instead of falling through to a tempfail.
    match action:
        case Action.DELIVER | Action.TAG:
            return Verdict(action, rule.name, reasons, 250, "2.0.0 Ok")
        case Action.HOLD:
            ja, en = _texts(rule, action, report)
            return Verdict(action, rule.name, reasons, 250, _fit("2.6.0", ja, en))
        case Action.CONFIRM | Action.DELAY | Action.APPROVE:
            ja, en = _texts(rule, action, report)
            terms = _terms(rule, action, report)
            return Verdict(action, rule.name, reasons, 250, _fit("2.6.0", ja, en), terms)
        case Action.REJECT:
            ja, en = _texts(rule, action, report)
            return Verdict(action, rule.name, reasons, 550, _fit("5.7.1", ja, en))
        case Action.TEMPFAIL:
            ja, en = _texts(rule, action, report)
            return Verdict(action, rule.name, reasons, 451, _fit("4.7.1", ja, en))
        case _:
            assert_never(action)


def _terms(rule: Rule, action: Action, report: ScanReport) -> HoldTerms:
    """How long the hold waits, and the plain-words reason its notice quotes: the rule's
    own reason texts (or, without them, what was found and where) - never a number."""
    found = _found_phrase(report, rule)
    ja = rule.reason_ja or (found[0] if found else "")
    en = rule.reason_en or (found[1] if found else "")
    if found and rule.reason_ja:
        ja, en = f"{ja}（{found[0]}）", f"{en} ({found[1]})"
    if not ja and rule.has_attachments:
        names = _places(a.filename for a in report.attachments)
        ja, en = f"社外宛ての添付ファイル: {names}", f"attachments to outside recipients: {names}"
    wait = 0.0
    if action is Action.DELAY:
        wait = parse_duration(rule.delay)
    elif action is Action.CONFIRM:
        wait = parse_duration(rule.timeout or "1h")
    return HoldTerms(
        wait_seconds=wait,
        on_timeout=(rule.on_timeout or "discard") if action is Action.CONFIRM else "",
        notice_ja=scrub(ja),
        notice_en=scrub(en),
    )


def held_for_review_text() -> str:
    """The reply for a message held for the security staff, in the reply's form."""
    ja, en = _DEFAULT_TEXTS[Action.HOLD]
    return _fit("2.6.0", ja, en)


def default_texts(action: Action) -> tuple[str, str]:
    """The sender-facing (ja, en) texts of an action whose rule gives none."""
    return _DEFAULT_TEXTS.get(action, ("", ""))


def _texts(rule: Rule, action: Action, report: ScanReport) -> tuple[str, str]:
    """The sender-facing Japanese and English texts: the rule's, plus what and where."""
    ja, en = _DEFAULT_TEXTS[action]
    ja, en = rule.reason_ja or ja, rule.reason_en or en
    if action is Action.TEMPFAIL:
        return ja, en
    found = _found_phrase(report, rule)
    if found:
        ja, en = f"{ja}（{found[0]}）", f"{en} ({found[1]})"
    return ja, en


def _found_phrase(report: ScanReport, rule: Rule) -> tuple[str, str] | None:
    findings = _matching_findings(rule, report) if (rule.detector or rule.min_confidence) else []
    if findings:
        found = detector_labels(findings[0].detector)
        name_ja, name_en = found.ja_found, found.en_found
        locations = [f.location for f in findings]
        return (
            f"{name_ja}: {_places(map(_place_ja, locations))}",
            f"{name_en}: {_places(locations)}",
        )
    if rule.attachment_status:
        names = [
            a.filename
            for a in report.attachments
            if _status_matches(a.status, rule.attachment_status)
        ]
        if names:
            where = _places(names)
            return f"添付ファイル {where}", f"attachment {where}"
    if rule.incomplete:
        names = [a.filename for a in report.attachments if a.status.left_unread]
        if names:
            where = _places(names)
            return f"読めなかった部分: {where}", f"not read: {where}"
        if report.unread:
            return (
                "メールの構造を最後まで読めませんでした",
                "the message structure could not be read in full",
            )
    return None


_HEADER_JA = {"subject": "件名", "from": "差出人", "to": "宛先", "cc": "Cc"}


def _place_ja(location: str) -> str:
    """A finding's location as a Japanese reader says it: 添付ファイル「名簿.csv」 for
    ``attachment:名簿.csv!B``, 件名 for ``header:Subject``, 本文 for ``body:text/plain``."""
    kind, _, rest = location.partition(":")
    if kind == "attachment":
        name = rest.split("!", 1)[0]
        return f"添付ファイル「{name}」"
    if kind == "header":
        return _HEADER_JA.get(rest.lower(), f"ヘッダー「{rest}」")
    if kind == "body" or location.startswith("body"):
        return "本文"
    if kind == "filename":
        return f"ファイル名「{rest}」"
    return location


def _places(locations: Iterable[str]) -> str:
    """Up to three distinct locations, in order of first appearance."""
    seen: list[str] = []
    for raw in locations:
        # A file name or label can itself be a number (123456789018.csv).
        text = scrub(raw)
        if text not in seen:
            seen.append(text)
    shown = ", ".join(seen[:3])
    return shown + (", …" if len(seen) > 3 else "")


def _describe(report: ScanReport, rule: Rule | None) -> tuple[str, ...]:
    """Reviewer-facing reasons: counts and locations, never the numbers."""
    reasons: list[str] = []
    if report.error:
        reasons.append(f"scan incomplete: {report.error}")
    # Every reading of the message that was left out, whatever rule matched:
    # a reviewer must know what the scan could not vouch for.
    reasons.extend(f"not read: {scrub(u)}" for u in report.unread)
    unread_files = [
        f"{a.filename} ({a.status.value})" for a in report.attachments if a.status.left_unread
    ]
    if unread_files:
        reasons.append(f"not fully read: {_places(unread_files)}")
    summaries = {"mynumber": report.mynumber, **report.summaries}
    for name, s in summaries.items():
        if s.distinct:
            where = _places(f.location for f in report.findings if f.detector == name)
            reasons.append(
                f"{detector_labels(name).en}: {s.distinct} distinct"
                f" (high {s.high}, medium {s.medium}, low {s.low}) in {where}"
            )
    others = [f for f in report.findings if f.detector not in summaries]
    if others:
        reasons.append(f"other findings: {_places(f'{f.detector}@{f.location}' for f in others)}")
    if rule is not None and rule.attachment_status:
        hit = [
            f"{a.filename} ({a.status.value})"
            for a in report.attachments
            if _status_matches(a.status, rule.attachment_status)
        ]
        if hit:
            reasons.append(f"attachments: {_places(hit)}")
    return tuple(reasons)


def _recipient_reason(rule: Rule, recipients: Sequence[Recipient]) -> tuple[str, ...]:
    if not rule.recipient_class:
        return ()
    hit = [r for r in recipients if class_matches(r.klass, rule.recipient_class)]
    return (f"recipients: {_places(f'{r.domain} ({r.klass.value})' for r in hit)}",)


def _as_typed(domain: str) -> str:
    if "xn--" not in domain:
        return domain
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain


def _fit(enhanced: str, ja: str, en: str) -> str:
    """``enhanced ja / en`` cut to fit one SMTP reply line (never mid-character)."""
    # The rule's own texts and the places quoted into them (file names) are masked as
    # a whole: the reply reaches the sender's bounce and the MTA's log, where no number
    # may go.
    ja, en = (scrub(t.replace("\r", " ").replace("\n", " ")) for t in (ja, en))
    text = f"{enhanced} {ja} / {en}"
    room = _MAX_REPLY_OCTETS - len(enhanced) - 4
    if len(text.encode("utf-8")) <= _MAX_REPLY_OCTETS:
        return text
    # Each language keeps a part of its own (cut where it must, with "..."): a sender
    # who reads only one of them must not lose it to the other's length.
    en_room = min(len(en.encode("utf-8")), room // 3)
    ja_room = room - en_room
    if len(ja.encode("utf-8")) < ja_room:
        en_room += ja_room - len(ja.encode("utf-8"))
        ja_room = len(ja.encode("utf-8"))
    return f"{enhanced} {_cut(ja, ja_room)} / {_cut(en, en_room)}"


def _cut(text: str, room: int) -> str:
    """``text`` in at most ``room`` octets of UTF-8, never mid-character."""
    raw = text.encode("utf-8")
    if len(raw) <= room:
        return text
    cut = raw[: max(room - 3, 0)].decode("utf-8", "ignore")
    # Cutting a longer digit run can leave twelve digits that are a number on their own.
    while scrub(cut) != cut:
        cut = cut[:-1]
    return cut + "..."
