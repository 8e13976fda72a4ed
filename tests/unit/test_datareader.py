"""The bulk DATA reader keeps what aiosmtpd's line reader guards (issue 5).

``async def`` tests (pytest-asyncio): each runs on its own event loop, the reader
fed chunk by chunk from a task as a socket would."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.smtp.datareader import (
    DataResult,
    Inbox,
    dot_stuff,
    dot_stuff_parts,
    has_bare_line_end,
    read_data,
)


async def _read(chunks: list[bytes], limit: int | None = None) -> tuple[DataResult, bytes]:
    """Feed the chunks one by one (as a socket would) and read one DATA body."""
    inbox = Inbox(asyncio.get_running_loop())

    async def feed() -> None:
        for c in chunks:
            inbox.feed(c)
            await asyncio.sleep(0)

    feeder = asyncio.create_task(feed())
    result = await asyncio.wait_for(read_data(inbox, limit), 5)
    await feeder
    inbox.feed_eof()
    rest = await inbox.chunk()  # what the command loop would read next
    return result, rest


@pytest.mark.asyncio
async def test_plain_message_ends_at_crlf_dot_crlf() -> None:
    result, rest = await _read([b"Subject: hi\r\n\r\nbody\r\n.\r\n"])
    assert result.content == b"Subject: hi\r\n\r\nbody\r\n"
    assert not result.too_large and rest == b""


@pytest.mark.asyncio
async def test_empty_message_is_a_lone_dot() -> None:
    result, _ = await _read([b".\r\n"])
    assert result.content == b""


@pytest.mark.parametrize(
    "smuggled",
    [
        b"line\n.\r\nMAIL FROM:<evil@x>\r\n",  # bare LF before the dot
        b"line\r\n.\nMAIL FROM:<evil@x>\r\n",  # bare LF after the dot
        b"line\n.\nMAIL FROM:<evil@x>\r\n",  # bare LFs both sides
        b"line\r.\r\nMAIL FROM:<evil@x>\r\n",  # bare CR before the dot
    ],
)
@pytest.mark.asyncio
async def test_only_crlf_dot_crlf_ends_data(smuggled: bytes) -> None:
    """CVE-2024-27305: a bare-LF dot must not end DATA, the rest stays content."""
    sent = b"Subject: s\r\n\r\n" + smuggled + b"tail\r\n"
    result, rest = await _read([sent + b".\r\n"])
    # Still one message; a CRLF-preceded dot line is merely unstuffed.
    assert result.content == sent.replace(b"\r\n.\n", b"\r\n\n")
    assert b"MAIL FROM:<evil@x>" in result.content
    assert rest == b""


@pytest.mark.asyncio
async def test_end_marker_split_across_chunks() -> None:
    data = b"Subject: s\r\n\r\nabc\r\n.\r\n"
    for cut in range(1, len(data)):
        result, _ = await _read([data[:cut], data[cut:]])
        assert result.content == b"Subject: s\r\n\r\nabc\r\n", cut


@pytest.mark.asyncio
async def test_byte_by_byte() -> None:
    data = b"a\r\n..b\r\n.\r\n"
    result, _ = await _read([data[i : i + 1] for i in range(len(data))])
    assert result.content == b"a\r\n.b\r\n"


@pytest.mark.asyncio
async def test_dot_unstuffing() -> None:
    result, _ = await _read([b"..first\r\nmid\r\n...\r\n..\r\n.x\r\n.\r\n"])
    assert result.content == b".first\r\nmid\r\n..\r\n.\r\nx\r\n"


@pytest.mark.asyncio
async def test_bytes_after_the_end_are_left_for_the_command_loop() -> None:
    result, rest = await _read([b"body\r\n.\r\nQUIT\r\n"])
    assert result.content == b"body\r\n"
    assert rest == b"QUIT\r\n"


@pytest.mark.asyncio
async def test_size_limit_drops_content_but_reads_to_the_end() -> None:
    body = b"x" * 998 + b"\r\n"
    result, rest = await _read([body] * 50 + [b".\r\nNOOP\r\n"], limit=10_000)
    assert result.too_large and result.content == b""
    assert result.size >= 10_000
    assert rest == b"NOOP\r\n"  # the conversation stays in step


@pytest.mark.asyncio
async def test_exactly_at_the_limit_is_accepted() -> None:
    body = b"y" * 8 + b"\r\n"
    result, _ = await _read([body + b".\r\n"], limit=len(body))
    assert not result.too_large and result.content == body
    result, _ = await _read([body + b".\r\n"], limit=len(body) - 1)
    assert result.too_large


@pytest.mark.asyncio
async def test_eof_mid_message_raises() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    inbox.feed(b"partial\r\n")
    inbox.feed_eof()
    with pytest.raises(ConnectionResetError):
        await read_data(inbox, None)


def test_dot_stuff_round_trip_and_normalises_bare_line_ends() -> None:
    assert dot_stuff(b".a\r\nb\r\n.\r\n") == b"..a\r\nb\r\n..\r\n.\r\n"
    assert dot_stuff(b"") == b".\r\n"
    assert dot_stuff(b"no newline") == b"no newline\r\n.\r\n"
    # A bare-LF dot that reached us as content must not end the message downstream.
    assert dot_stuff(b"a\n.\nb\r\n") == b"a\r\n..\r\nb\r\n.\r\n"
    assert dot_stuff(b"a\r.\r\n") == b"a\r\n..\r\n.\r\n"


@pytest.mark.asyncio
async def test_dot_stuff_inverts_read_data() -> None:
    original = b"From: a\r\n\r\n.\r\n..\r\nx.\r\n.y\r\n"
    result, _ = await _read([dot_stuff(original)])
    assert result.content == original


@pytest.mark.parametrize(
    "body",
    [
        b"a.b\r\n.c\r\n",  # a stuffed line after a dotted one
        b"x" * 100 + b"\r\n" + b"." * 200 + b"\r\n.end\r\n",  # many dots: the fallback search
        b"." * 70 + b"\r\n",
        b"no dots at all\r\n",
        b"dots. in. text.\r\nbut none at a line start\r\n",
    ],
)
@pytest.mark.asyncio
async def test_fast_paths_agree_with_plain_stuffing(body: bytes) -> None:
    plain = (b"\r\n" + body).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"
    assert dot_stuff(body) == plain
    result, _ = await _read([plain])
    assert result.content == body


_PIECES = st.sampled_from(
    [b".", b"..", b"\r\n", b"\r", b"\n", b"a", b"\r\n.", b".\r\n", b"\r\n.\r\n"]
)


@given(
    st.lists(_PIECES, max_size=120),
    st.lists(st.integers(1, 40), max_size=12),
)
@settings(max_examples=400, deadline=None)
def test_end_found_where_a_plain_search_finds_it(pieces: list[bytes], cuts: list[int]) -> None:
    """The dot-first search for the end marker (many dots, few, split anywhere)
    ends DATA exactly where searching for CRLF "." CRLF itself does."""
    stream = b"".join(pieces) + b"\r\n.\r\nQUIT\r\n"
    framed = b"\r\n" + stream
    end = framed.find(b"\r\n.\r\n")
    expected = framed[: end + 2].replace(b"\r\n.", b"\r\n")[2:]
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(stream[pos : pos + cut])
        pos += cut
    chunks.append(stream[pos:])
    result, rest = asyncio.run(_read([c for c in chunks if c]))
    assert result.content == expected
    assert rest.endswith(framed[end + 5 :]) and framed[end + 5 :].endswith(b"QUIT\r\n")


def test_many_dots_before_the_end_use_the_fallback_search() -> None:
    body = b"x" + b"." * 100 + b"\r\n" + b"a." * 100 + b"\r\n"
    result, _ = asyncio.run(_read([body + b".\r\n"]))
    assert result.content == body


@pytest.mark.parametrize("size", [10, 65535, 65536, 300_000])
def test_large_content_goes_out_uncopied_and_whole(size: int) -> None:
    body = (b"x" * 98 + b"\r\n") * (size // 100)
    parts = dot_stuff_parts(body)
    assert b"".join(parts) == dot_stuff(body) == body + b".\r\n"
    if len(body) >= 65536:
        assert parts[0] is body  # the message itself, not a copy


@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"\n\r"]), max_size=40))
@settings(max_examples=400, deadline=None)
def test_line_ends_normalised_exactly_when_one_is_not_crlf(pieces: list[bytes]) -> None:
    body = b"".join(pieces)
    crlf = body.count(b"\r\n")
    clean = body.count(b"\n") == crlf and body.count(b"\r") == crlf
    normalised = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    expected = body if clean else normalised
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    expected = (b"\r\n" + expected).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"
    assert dot_stuff(body) == expected


@settings(max_examples=2000, deadline=None)
@given(
    st.binary(max_size=64).map(lambda b: b.replace(b"\x00", b"\r"))
    | st.text("\r\n.a", max_size=40).map(str.encode)
)
def test_the_compiled_bare_line_end_test_is_the_regex(data: bytes) -> None:
    """dlp.smtp._wire answers as the regular expressions that define it."""
    wire = pytest.importorskip("dlp.smtp._wire", reason="dlp.smtp._wire is not built here")
    assert wire.has_bare_line_end(data) is has_bare_line_end(data)
    assert wire.has_bare_line_end(bytearray(data)) is has_bare_line_end(data)
