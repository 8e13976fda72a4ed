"""dlp.mimetree: the fast parser builds exactly the email package's tree, or declines.

Every comparison is against ``email.message_from_bytes(raw, policy=default)``:
headers (raw values, order), defects, classes, payload strings, preamble,
epilogue and default types, part by part; and the scanner-facing result of
``dlp.mime.parse_message`` with the fast path forced on for every size.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import quopri
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlp.mime
import dlp.mimetree
from dlp.mime import parse_message
from dlp.mimetree import fast_tree

CORPUS = Path("/work/shared/corpus")


def email_tree(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=email.policy.default)


def describe(msg: email.message.Message) -> object:
    """Everything the scanner (and the email package's accessors) read from a part."""
    payload = msg._payload  # type: ignore[attr-defined]
    body: object
    body = [describe(p) for p in payload] if isinstance(payload, list) else payload
    return (
        type(msg).__name__,
        [(k, str(v)) for k, v in msg.raw_items()],
        [type(d).__name__ for d in msg.defects],
        msg.get_default_type(),
        msg.get_unixfrom(),
        msg.preamble,
        msg.epilogue,
        body,
    )


def assert_same(raw: bytes) -> bool:
    """True if the fast path took ``raw`` (and then built the same tree)."""
    fast = fast_tree(raw)
    if fast is None:
        return False
    assert describe(fast) == describe(email_tree(raw))
    return True


def parsed_view(raw: bytes) -> object:
    p = parse_message(raw)
    atts = [
        (a.filename, a.content_type, a.data, a.charset, a.location, a.encrypted)
        for a in p.attachments
    ]
    return (p.chunks, atts, p.defects, p.subject, p.message_id, p.header_from)


# --- hand-written cases ------------------------------------------------------------------------

HEAD = b"From: a@example.jp\r\nTo: b@example.com\r\nSubject: =?utf-8?b?5pyI5qyh?=\r\nMIME-Version: 1.0\r\n"


def test_single_part_body_is_the_bytes_after_the_blank_line() -> None:
    raw = HEAD + b"Content-Type: text/plain\r\n\r\n" + b"1" + b"X" * 78 + b"\r\n" * 3
    assert assert_same(raw)


def test_multipart_with_base64_attachment_preamble_and_epilogue() -> None:
    data = base64.encodebytes(bytes(range(256)) * 40).replace(b"\n", b"\r\n")
    raw = (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="=_b"\r\n\r\n'
        + b"This is a multi-part message.\r\n\r\n--=_b\r\n"
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "本文です\r\n".encode()
        + b"\r\n--=_b  \r\n"
        + b'Content-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + data
        + b"--=_b--\r\nepilogue\r\n"
    )
    assert assert_same(raw)


def test_nested_multiparts() -> None:
    raw = (
        HEAD + b'Content-Type: multipart/mixed; boundary="o"\n\n--o\n'
        b'Content-Type: multipart/alternative; boundary="i"\n\n--i\nContent-Type: text/plain\n\nhi\n'
        b"--i\nContent-Type: text/html\n\n<p>hi</p>\n--i--\n\n--o\n"
        b"Content-Type: text/csv\n\na,b\n--o--\n"
    )
    assert assert_same(raw)


@pytest.mark.parametrize(
    "raw",
    [
        HEAD + b"Content-Type: text/plain\r\n\rbare CR\r\n\r\nbody",  # bare CR
        b"From someone Thu Nov 26\nSubject: x\n\nbody",  # mbox From_ line
        b"Subject: x\nnot a header line\n\nbody",  # missing separator
        HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n',  # no close
        HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\nno delimiter at all\r\n',
        HEAD + b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",  # no boundary
        HEAD
        + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n--b\r\n\r\nx\r\n--b--\r\n',
        HEAD + b'Content-Type: multipart/digest; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n',
        HEAD + b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n",
        HEAD
        + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n--b\r\n',
        HEAD + b"Subject: headers only, no body",
    ],
)
def test_odd_input_is_left_to_the_email_package(raw: bytes) -> None:
    assert fast_tree(raw) is None


# --- generated messages ------------------------------------------------------------------------

_TEXT = st.lists(
    st.sampled_from([*list("ab 1-=:\t\r\n"), "--b0", "--b1", "--", "個人番号", "é"]),
    max_size=40,
).map("".join)


@st.composite
def leaf(draw: st.DrawFn, nl: bytes) -> bytes:
    body = draw(_TEXT).encode("utf-8")
    cte = draw(st.sampled_from(["base64", "quoted-printable", "8bit", "7bit", ""]))
    if cte == "base64":
        enc = base64.encodebytes(body)
        if draw(st.booleans()):
            enc = enc.rstrip(b"=\n") + b"\n"  # broken padding
        body = enc
    elif cte == "quoted-printable":
        body = quopri.encodestring(body)
    body = body.replace(b"\r\n", b"\n").replace(b"\r", b"").replace(b"\n", nl)
    if draw(st.integers(0, 4)) == 0:
        # Raw junk: bare CRs, delimiter-like lines, a CR before a delimiter.
        body = draw(_TEXT).encode("utf-8") + draw(st.sampled_from([b"\r--b0\n", b"--b0\r", b""]))
    ctype = draw(st.sampled_from(["text/plain; charset=utf-8", "application/pdf", "text/csv", ""]))
    head = b""
    if ctype:
        head += b"Content-Type: " + ctype.encode() + nl
    if cte:
        head += b"Content-Transfer-Encoding: " + cte.encode() + nl
    if draw(st.booleans()):
        head += b"Content-Disposition: attachment;" + nl + b' filename="a.bin"' + nl
    return head + nl + body


@st.composite
def multipart(draw: st.DrawFn, nl: bytes, depth: int) -> bytes:
    boundary = f"b{depth}".encode()
    kids = draw(
        st.lists(
            multipart(nl, depth + 1) if depth < 1 and draw(st.booleans()) else leaf(nl),
            min_size=1,
            max_size=3,
        )
    )
    pre = draw(st.sampled_from([b"", b"preamble" + nl, nl]))
    epi = draw(st.sampled_from([b"", nl, b"epilogue" + nl, nl + nl]))
    blanks = draw(st.sampled_from([b"", b" ", b"\t "]))
    close = draw(st.sampled_from([True, True, True, False]))
    out = b"Content-Type: multipart/mixed; boundary=" + boundary + nl + nl + pre
    for k in kids:
        out += b"--" + boundary + blanks + nl + k
        if not k.endswith(nl) or draw(st.booleans()):
            out += nl
    if close:
        out += b"--" + boundary + b"--" + draw(st.sampled_from([nl, b""])) + epi
    return out


@st.composite
def message(draw: st.DrawFn) -> bytes:
    nl = draw(st.sampled_from([b"\r\n", b"\n"]))
    head = HEAD.replace(b"\r\n", nl)
    body = draw(st.one_of(leaf(nl), multipart(nl, 0)))
    return head + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message())
def test_generated_messages_give_the_email_package_tree(raw: bytes) -> None:
    assert_same(raw)


def test_generated_messages_mostly_take_the_fast_path() -> None:
    # The comparison above only means something if the fast path is taken.
    taken = 0

    @settings(max_examples=200, deadline=None, database=None)
    @given(message())
    def count(raw: bytes) -> None:
        nonlocal taken
        taken += assert_same(raw)

    count()
    assert taken >= 60


# --- the corpus --------------------------------------------------------------------------------


def corpus_messages() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.glob("email-*/**/*")
        if p.is_file() and p.suffix.lower() in (".eml", ".raw", ".txt", ".mbox")
    )


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_corpus_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = 0
    paths = corpus_messages()
    for path in paths:
        raw = path.read_bytes()
        try:
            taken += assert_same(raw)
        except AssertionError as exc:
            raise AssertionError(f"{path}: fast tree differs") from exc
    assert taken >= len(paths) // 4
    # And what the scanner reads, with the fast path forced on at every size.
    for path in paths[:: max(1, len(paths) // 150)]:
        raw = path.read_bytes()
        if fast_tree(raw) is None:
            continue
        monkeypatch.setattr(dlp.mime, "MIN_FAST_BYTES", 0)
        fast = parsed_view(raw)
        monkeypatch.setattr(dlp.mime, "MIN_FAST_BYTES", 1 << 62)
        slow = parsed_view(raw)
        assert fast == slow, path


# --- base64 bodies: dlp.mime decodes them as get_payload(decode=True) does ----------------------

_B64 = st.lists(
    st.sampled_from([*"QUJD", "=", "==", "\r\n", "\n", "\r", " ", "!", "\udcff", "YWJj", "+/9"]),
    max_size=50,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_B64)
def test_base64_payload_and_defects_match_get_payload(payload: str) -> None:
    raw = HEAD + b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    raw += payload.encode("ascii", "surrogateescape")
    ours, theirs = email_tree(raw), email_tree(raw)
    got = dlp.mime._decode_base64(ours, ours._payload)  # type: ignore[attr-defined]
    assert got == theirs.get_payload(decode=True)
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]


def test_deep_nesting_is_left_to_the_email_package() -> None:
    def nest(level: int) -> bytes:
        if level == 0:
            return b"Content-Type: text/plain\r\n\r\nx\r\n"
        b = f"b{level}".encode()
        return (
            b"Content-Type: multipart/mixed; boundary="
            + b
            + b"\r\n\r\n--"
            + b
            + b"\r\n"
            + nest(level - 1)
            + b"\r\n--"
            + b
            + b"--\r\n"
        )

    assert assert_same(HEAD + nest(5))
    assert fast_tree(HEAD + nest(40)) is None


# --- the structure fields read without the header registry --------------------------------------

_CT_PIECES = st.lists(
    st.sampled_from(
        [
            *"abx/;= \t\"\\()<>*%'",
            "multipart/mixed",
            "text/plain",
            "; boundary=",
            ";boundary=",
            "; BOUNDARY=",
            "; charset=utf-8",
            "; boundary*=",
            "; boundary*0=",
            "=====",
            '"=_b0"',
            '"<b>"',
            '"a b "',
            "\r\n ",
            "é",
            "\udcff",
        ]
    ),
    max_size=12,
).map("".join)


_TOKEN = st.text("abzAZ09!#$&^_.+-=/:<>@?'*%`|~", min_size=0, max_size=6)
_PARAM = st.tuples(
    st.sampled_from(["boundary", "BOUNDARY", "charset", "name", "boundary*", "x"]),
    st.sampled_from(["=", " =", "= "]),
    _TOKEN,
    st.sampled_from(["", '"']),
    st.sampled_from([";", "; ", ";\t", " ;", ";\r\n "]),
).map(lambda p: p[4] + p[0] + p[1] + p[3] + p[2] + p[3])
_STRUCTURED_CT = st.tuples(
    st.sampled_from(["multipart/mixed", "Multipart/Alternative", "text/plain", "a/b/c", "text"]),
    st.lists(_PARAM, max_size=3).map("".join),
    st.sampled_from(["", ";", " ", "; "]),
).map("".join)


def _registry_view(value: str | None) -> tuple[object, ...]:
    msg = email.message.EmailMessage(policy=email.policy.default)
    if value is not None:
        msg.set_raw("Content-Type", value)
    return (msg.get_content_maintype(), msg.get_content_subtype(), msg.get_boundary())


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_CT_PIECES, _STRUCTURED_CT))
def test_content_type_read_raw_is_what_the_header_registry_gives(value: str) -> None:
    msg = email.message.EmailMessage(policy=email.policy.default)
    msg.set_raw("Content-Type", value)
    assert _outcome(lambda: dlp.mimetree.content_type(msg)) == _outcome(
        lambda: _registry_view(value)
    )


def _outcome(fn: Callable[[], object]) -> object:
    """The result, or the exception type (the stdlib raises on some RFC 2231 junk)."""
    try:
        return fn()
    except Exception as exc:
        return type(exc)


def test_plain_content_types_take_the_raw_path() -> None:
    # The comparison above only means something if plain values are read raw.
    for value in (
        'multipart/mixed;\r\n boundary="===============0123456789=="',
        "multipart/alternative; boundary=000000000000abcdef",
        "TEXT/Plain ;  charset=UTF-8 ; format=flowed",
        'application/octet-stream; name="a b.pdf"',
        'multipart/mixed; boundary="<b>"',
    ):
        assert dlp.mimetree._SIMPLE_TYPE.fullmatch(value.replace("\r\n", ""))
        msg = email.message.EmailMessage(policy=email.policy.default)
        msg.set_raw("Content-Type", value)
        assert dlp.mimetree.content_type(msg) == _registry_view(value)
    assert dlp.mimetree.content_type(email.message.EmailMessage()) == _registry_view(None)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"abB4 \t-()x", "base64", "7bit", "quoted-printable", "\r\n "]), max_size=6
    ).map("".join)
)
def test_transfer_encoding_read_raw_is_what_the_header_registry_gives(value: str) -> None:
    msg = email.message.EmailMessage(policy=email.policy.default)
    msg.set_raw("Content-Transfer-Encoding", value)
    assert dlp.mimetree.transfer_encoding(msg) == str(msg.get("content-transfer-encoding"))
    assert dlp.mimetree.transfer_encoding(email.message.EmailMessage()) is None


_QP = st.lists(
    st.sampled_from([*"ab=3D\r\n \t", "=\r\n", "=E3=81=82", "\udcff", "é"]), max_size=30
).map("".join)


@settings(max_examples=600, deadline=None)
@given(
    _QP,
    st.sampled_from(
        [
            "quoted-printable",
            "Quoted-Printable",
            "quoted-printable ",
            "7bit",
            "8bit",
            "",
            "x-uue",
            None,
        ]
    ),
)
def test_other_payloads_decode_as_get_payload_does(payload: str, cte: str | None) -> None:
    head = HEAD + b"Content-Type: text/plain; charset=utf-8\r\n"
    if cte is not None:
        head += b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n"
    raw = head + b"\r\n" + payload.encode("utf-8", "surrogateescape")
    # Where the field is not the bare token (a trailing space), the email package
    # leaves the payload encoded and every mail client decodes it: so do we.
    clean = (cte or "").strip().lower()
    theirs_raw = (
        raw if cte is None or clean == cte.lower() else raw.replace(cte.encode(), clean.encode(), 1)
    )
    ours, theirs = email_tree(raw), email_tree(theirs_raw)
    got = dlp.mime._decode_other(ours, ours._payload)  # type: ignore[attr-defined]
    assert got == theirs.get_payload(decode=True)


def test_header_fields_split_as_the_feed_parser_splits_them() -> None:
    # Form feed, vertical tab, \x1c and \x85 are line breaks to str.splitlines,
    # not to the feed parser; folded fields, 8-bit bytes and tabs stay one field.
    raw = (
        b"From: a@example.jp\r\nSubject: x\x0cy\x0bz\x1cw \x85 \xe5\x80\x8b\r\n"
        b"X-Folded: one\r\n two\r\n\tthree\r\nTo: b@example.com\r\n"
        b"Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nbody\r\n"
    )
    assert assert_same(raw)
    assert assert_same(raw.replace(b"\r\n", b"\n"))


_B64_BYTES = st.lists(
    st.sampled_from([*"QUJDRabc09+/", "=", "==", "===", "\r\n", " ", "!", "QR==", "QUI=", "AB=="]),
    max_size=40,
).map(lambda s: "".join(s).encode("ascii"))


@settings(max_examples=1500, deadline=None)
@given(_B64_BYTES)
def test_decode_b_is_the_email_packages_decode_b(encoded: bytes) -> None:
    ours, theirs = dlp.mime._decode_b(encoded), dlp.mime._encoded_words.decode_b(encoded)
    assert ours[0] == theirs[0]
    assert [type(d) for d in ours[1]] == [type(d) for d in theirs[1]]


def test_decode_b_of_a_real_attachment() -> None:
    data = bytes(range(256)) * 2000 + b"x"
    for cut in (0, 1, 2):  # with, and without, the padding a sender should write
        encoded = base64.b64encode(data)[: len(base64.b64encode(data)) - cut]
        ours, theirs = dlp.mime._decode_b(encoded), dlp.mime._encoded_words.decode_b(encoded)
        assert ours[0] == theirs[0] and [type(d) for d in ours[1]] == [type(d) for d in theirs[1]]
    assert dlp.mime._decode_b(base64.b64encode(data))[0] == data


# --- plain ASCII bodies: the stored payload is the text -----------------------------------------

_BODY = st.lists(
    st.sampled_from(
        ["abc", "123 ", "\r\n", "=3D", "=\r\n", "\x1b$B", "%PDF-", "GIF89a", "é", "\t"]
    ),
    max_size=12,
).map("".join)


@settings(max_examples=800, deadline=None)
@given(
    _BODY,
    st.sampled_from(
        [None, "", "7bit", "8bit", "binary", "quoted-printable", "x-uue", " 7bit", "Base64"]
    ),
    st.sampled_from([None, "us-ascii", "utf-8", "iso-2022-jp", '"US-ASCII"', "latin1"]),
)
def test_ascii_body_as_sent_is_the_long_way(
    body: str, cte: str | None, charset: str | None
) -> None:
    head = (
        HEAD + b"Content-Type: text/plain" + (f"; charset={charset}".encode() if charset else b"")
    )
    head += b"\r\n" + (f"Content-Transfer-Encoding: {cte}\r\n".encode() if cte is not None else b"")
    part = email_tree(head + b"\r\n" + body.encode("utf-8"))
    label = dlp.mime._charset(part)
    short, long = dlp.mime._Walk(""), dlp.mime._Walk("")
    got = dlp.mime._ascii_as_sent(part, label, short, "1")
    if got is None:
        return
    want = dlp.mime._decode_body(dlp.mime._payload(part, long, "1")[0], label)
    assert got == want
    assert (short.defects, short.unread) == (long.defects, long.unread)


def test_smtp_source_body_takes_the_short_way() -> None:
    raw = b"From: <a@example.jp>\r\nTo: <b@example.com>\r\n\r\n" + b"1XXX\r\n" * 100
    part = email_tree(raw)
    assert dlp.mime._ascii_as_sent(part, None, dlp.mime._Walk(""), "1") == "1XXX\r\n" * 100
    assert parse_message(raw).chunks[-1].text == "1XXX\r\n" * 100
