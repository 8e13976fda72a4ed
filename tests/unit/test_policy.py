"""Policy: rule semantics and the default rules of config/dlp.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.config import DomainSettings, PolicySettings, Rule, load_file
from dlp.model import (
    Action,
    AttachmentInfo,
    AttachmentStatus,
    Confidence,
    Finding,
    MyNumberSummary,
    Recipient,
    RecipientClass,
    ScanReport,
)
from dlp.policy import decide, recipient_refusal

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = load_file(ROOT / "config" / "dlp.toml").policy


def rcpt(
    address: str, klass: RecipientClass, entitled: bool = False, resembles: str | None = None
) -> Recipient:
    return Recipient(
        address,
        address.rpartition("@")[2],
        klass,
        resembles,
        "tld-swap" if resembles else None,
        entitled,
    )


EXTERNAL = rcpt("a@example.com", RecipientClass.EXTERNAL)
OWN = rcpt("b@example.lg.jp", RecipientClass.OWN)
PARTNER_OK = rcpt("c@payroll.example.jp", RecipientClass.PARTNER, entitled=True)
PARTNER = rcpt("d@partner.example.jp", RecipientClass.PARTNER)


def report(
    high: int = 0,
    medium: int = 0,
    low: int = 0,
    error: str = "",
    attachments: tuple[AttachmentInfo, ...] = (),
) -> ScanReport:
    findings = []
    for conf, n in ((Confidence.HIGH, high), (Confidence.MEDIUM, medium), (Confidence.LOW, low)):
        findings += [
            Finding("mynumber", conf, "attachment:名簿.csv!C", "****-****-****") for _ in range(n)
        ]
    summary = MyNumberSummary(
        total=high + medium + low, distinct=high + medium + low, high=high, medium=medium, low=low
    )
    return ScanReport("t", tuple(findings), {"mynumber": summary}, attachments, error=error)


def att(status: AttachmentStatus, name: str = "x.zip") -> AttachmentInfo:
    return AttachmentInfo(name, "application/zip", 10, "0" * 64, status)


def test_clean_mail_is_delivered_by_default() -> None:
    v = decide(report(), [EXTERNAL], "s@example.lg.jp", DEFAULTS)
    assert v.action is Action.DELIVER and v.rule == "default" and v.smtp_code == 250


def test_high_confidence_to_external_is_held_with_bilingual_text_and_no_digits() -> None:
    v = decide(report(high=3), [OWN, EXTERNAL], "s@example.lg.jp", DEFAULTS)
    assert v.action is Action.HOLD and v.rule == "mynumber-external"
    assert "個人番号" in v.smtp_message and "My Number" in v.smtp_message
    assert "名簿.csv" in v.smtp_message  # says where
    assert any("3 distinct" in r for r in v.reasons)  # reviewers get counts
    assert not any(ch.isdigit() for ch in v.smtp_message.split(" ", 1)[1].replace("2.6.0", ""))


def test_high_confidence_to_own_only_is_delivered() -> None:
    assert decide(report(high=3), [OWN], "s@x", DEFAULTS).action is Action.DELIVER


def test_entitled_partner_gets_my_numbers_even_with_own_copy() -> None:
    v = decide(report(high=5), [PARTNER_OK, OWN], "s@x", DEFAULTS)
    assert v.action is Action.DELIVER and v.rule == "mynumber-to-entitled-partner"


def test_entitled_partner_plus_external_is_held() -> None:
    v = decide(report(high=5), [PARTNER_OK, EXTERNAL], "s@x", DEFAULTS)
    assert v.action is Action.HOLD


def test_unentitled_partner_is_held() -> None:
    assert decide(report(high=1), [PARTNER], "s@x", DEFAULTS).action is Action.HOLD


def test_medium_confidence_external_is_tagged() -> None:
    v = decide(report(medium=2), [EXTERNAL], "s@x", DEFAULTS)
    assert v.action is Action.TAG and v.rule == "mynumber-medium-external"


def test_low_confidence_is_delivered() -> None:
    assert decide(report(low=4), [EXTERNAL], "s@x", DEFAULTS).action is Action.DELIVER


def test_scan_error_tempfails_first() -> None:
    v = decide(report(high=1, error="timeout after 60 s"), [EXTERNAL], "s@x", DEFAULTS)
    assert v.action is Action.TEMPFAIL and v.smtp_code == 451
    assert v.smtp_message.startswith("4.7.1 ")


def test_encrypted_attachment_external_is_held_internal_delivered() -> None:
    r = report(attachments=(att(AttachmentStatus.ENCRYPTED, "給与.zip"),))
    v = decide(r, [EXTERNAL], "s@x", DEFAULTS)
    assert v.action is Action.HOLD and "給与.zip" in v.smtp_message
    assert decide(r, [OWN], "s@x", DEFAULTS).action is Action.DELIVER


def test_first_match_wins_and_conditions_combine() -> None:
    policy = PolicySettings(
        rules=(
            Rule(name="ceo", action="deliver", sender=("@boss.example.jp",)),
            Rule(name="many", action="reject", detector="mynumber", min_distinct=10),
            Rule(name="some", action="hold", detector="mynumber"),
        )
    )
    assert decide(report(high=50), [EXTERNAL], "ceo@sub.boss.example.jp", policy).rule == "ceo"
    v = decide(report(high=10), [EXTERNAL], "x@y", policy)
    assert v.action is Action.REJECT and v.smtp_code == 550 and v.smtp_message.startswith("5.7.1 ")
    assert decide(report(high=9), [EXTERNAL], "x@y", policy).rule == "some"
    assert decide(report(), [EXTERNAL], "x@y", policy).rule == "default"


def test_min_distinct_counts_only_at_the_rule_confidence() -> None:
    policy = PolicySettings(
        rules=(Rule(name="r", action="reject", min_confidence="high", min_distinct=2),)
    )
    assert decide(report(high=1, medium=5), [EXTERNAL], "x@y", policy).action is Action.DELIVER
    assert decide(report(high=2), [EXTERNAL], "x@y", policy).action is Action.REJECT


def test_unscannable_matches_any_status_but_scanned() -> None:
    policy = PolicySettings(
        rules=(Rule(name="u", action="tag", attachment_status=("unscannable",)),)
    )
    assert (
        decide(report(attachments=(att(AttachmentStatus.SCANNED),)), [EXTERNAL], "x", policy).rule
        == "default"
    )
    assert (
        decide(report(attachments=(att(AttachmentStatus.TOO_DEEP),)), [EXTERNAL], "x", policy).rule
        == "u"
    )


def test_null_sender_pattern() -> None:
    policy = PolicySettings(rules=(Rule(name="bounces", action="tag", sender=("<>",)),))
    assert decide(report(), [EXTERNAL], "", policy).rule == "bounces"
    assert decide(report(), [EXTERNAL], "a@b", policy).rule == "default"


def test_default_action_tag() -> None:
    v = decide(report(), [EXTERNAL], "x", PolicySettings(default_action="tag"))
    assert v.action is Action.TAG


def test_lookalike_refusal_names_the_meant_domain() -> None:
    r = rcpt("aaabb@exp.com", RecipientClass.LOOKALIKE, resembles="exp.co.jp")
    v = recipient_refusal(r, DomainSettings())
    assert v is not None and v.action is Action.REJECT and v.smtp_code == 550
    assert v.smtp_message == (
        "5.7.1 宛先ドメイン exp.com は exp.co.jp の誤りの可能性があります"
        "。正しい宛先なら情報管理担当者に登録を依頼してください"
        " / exp.com looks like a mistyped exp.co.jp."
        " If the address is right, ask your administrator to list the domain"
    )


def test_lookalike_hold_option() -> None:
    r = rcpt("aaabb@exp.com", RecipientClass.LOOKALIKE, resembles="exp.co.jp")
    v = recipient_refusal(r, DomainSettings(lookalike_action="hold"))
    assert v is not None and v.action is Action.HOLD and v.smtp_code == 250


@pytest.mark.parametrize("r", [EXTERNAL, OWN, PARTNER, PARTNER_OK])
def test_non_lookalike_recipients_pass_rcpt(r: Recipient) -> None:
    assert recipient_refusal(r, DomainSettings()) is None


def test_reply_fits_one_smtp_line() -> None:
    long_names = tuple(
        att(AttachmentStatus.ENCRYPTED, "とても長いファイル名" * 10 + f"{i}.zip") for i in range(10)
    )
    v = decide(report(attachments=long_names), [EXTERNAL], "x", DEFAULTS)
    assert len(f"{v.smtp_code} {v.smtp_message}".encode()) <= 512


# -- issue 11: what was not read is held for outside recipients ------------------------------


def _att(status: AttachmentStatus) -> AttachmentInfo:
    return AttachmentInfo("docs.zip", "application/zip", 10, "", status, "attachment:docs.zip")


@pytest.mark.parametrize(
    "report",
    [
        ScanReport("m", unread=("more than 5000 MIME parts; the rest was not read",)),
        ScanReport("m", attachments=(_att(AttachmentStatus.PARTIAL),)),
        ScanReport("m", attachments=(_att(AttachmentStatus.TOO_LARGE),)),
        ScanReport("m", attachments=(_att(AttachmentStatus.ERROR),)),
        ScanReport("m", attachments=(_att(AttachmentStatus.TOO_DEEP),)),
    ],
)
def test_unread_content_is_held_outside_and_delivered_inside(report: ScanReport) -> None:
    assert report.incomplete
    v = decide(report, [EXTERNAL], "s@example.lg.jp", DEFAULTS)
    assert v.action is Action.HOLD and v.rule == "incomplete-external"
    assert any(r.startswith("not ") for r in v.reasons)
    assert "2.6.0" in v.smtp_message and "検査できなかった" in v.smtp_message
    own = rcpt("b@example.lg.jp", RecipientClass.OWN)
    assert decide(report, [own], "s@example.lg.jp", DEFAULTS).action is Action.DELIVER


def test_an_image_or_unknown_format_alone_is_not_incomplete() -> None:
    for status in (AttachmentStatus.IMAGE, AttachmentStatus.UNSUPPORTED, AttachmentStatus.SCANNED):
        assert not ScanReport("m", attachments=(_att(status),)).incomplete


def test_incomplete_condition_and_partial_status_validate() -> None:
    rule = Rule(name="r", action="hold", incomplete=True, attachment_status=("partial",))
    assert rule.incomplete is True
    with pytest.raises(ValueError, match=r"unknown attachment status 'parital'.*partial"):
        Rule(name="r", action="hold", attachment_status=("parital",))
