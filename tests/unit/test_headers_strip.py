"""Edge cases of removing incoming verdict fields (dlp/smtp/headers.py); the gateway
tests in tests/integration/test_gateway_hardening.py cover the usual shapes end to end."""

from __future__ import annotations

from dlp.smtp.headers import ALWAYS, strip_fields


def test_nothing_to_remove_returns_the_same_object() -> None:
    raw = b"From: a@b\r\nSubject: x-dlp- in a value\r\n\r\nX-DLP-Verdict: body\r\n"
    out = strip_fields(raw, [ALWAYS])
    assert out.content is raw and out.removed == ()


def test_a_message_that_is_all_header() -> None:
    out = strip_fields(b"Subject: s\r\nX-DLP-Verdict: forged\r\n cont", [ALWAYS])
    assert out.content == b"Subject: s\r\n" and out.removed == ("X-DLP-Verdict",)


def test_an_empty_header_section_leaves_the_body_alone() -> None:
    raw = b"\r\nX-DLP-Verdict: body\r\n"
    assert strip_fields(raw, [ALWAYS]).content is raw


def test_a_line_that_is_not_a_field_does_not_end_the_search() -> None:
    """Postfix starts the body at "not a field"; a lenient reader may not."""
    raw = b"Subject: s\r\nnot a field\r\nX-DLP-Verdict: forged\r\n\r\nX-DLP-Verdict: body\r\n"
    out = strip_fields(raw, [ALWAYS])
    assert out.content == b"Subject: s\r\nnot a field\r\n\r\nX-DLP-Verdict: body\r\n"


def test_a_lone_cr_separates_fields_as_the_relay_will_write_them() -> None:
    """dot_stuff turns a lone CR into CRLF, so what hides behind one is a field downstream."""
    raw = b"Subject: s\rX-DLP-Verdict: forged\r folded\rX-Other: k\r\n\r\nbody\r\n"
    out = strip_fields(raw, [ALWAYS])
    assert out.content == b"Subject: s\rX-Other: k\r\n\r\nbody\r\n"
    assert strip_fields(b"Subject: s\r\rX-DLP-Verdict: body\r\n", [ALWAYS]).removed == ()


def test_a_configured_prefix_and_the_default_are_both_removed() -> None:
    raw = b"X-Acme-Scan: forged\r\nX-DLP-Verdict: forged\r\nSubject: s\r\n\r\nb\r\n"
    out = strip_fields(raw, [ALWAYS, "X-Acme-"])
    assert out.content == b"Subject: s\r\n\r\nb\r\n"
