"""The next-hop SMTP client's reply reader (dlp/smtp/client.py).

Pipelining means several replies can arrive in one read, or one reply split
over many: whatever the split, each reply must come out whole, in order, once.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.smtp.client import Reply, ReplyError, SmtpClient, _extensions, _Protocol
from dlp.smtp.relay import xtext

REPLIES = [
    (
        b"250-mx.example.jp\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n",
        Reply(250, "mx.example.jp\nPIPELINING\nCHUNKING\n8BITMIME"),
    ),
    (b"250 2.1.0 Ok\r\n", Reply(250, "2.1.0 Ok")),
    (
        b"550 5.1.1 <a@b.jp>: Recipient address rejected\r\n",
        Reply(550, "5.1.1 <a@b.jp>: Recipient address rejected"),
    ),
    (b"354 End data with <CR><LF>.<CR><LF>\n", Reply(354, "End data with <CR><LF>.<CR><LF>")),
    (b"250\r\n", Reply(250, "")),
    (b"451-4.3.0 first\r\n451 4.3.0 second\r\n", Reply(451, "4.3.0 first\n4.3.0 second")),
]


def _feed(chunks: list[bytes]) -> tuple[list[Reply], Exception | None]:
    loop = asyncio.new_event_loop()
    try:
        p = _Protocol(loop)
        for chunk in chunks:
            p.data_received(chunk)
        return list(p.replies), p.error
    finally:
        loop.close()


@settings(max_examples=300, deadline=None)
@given(
    order=st.lists(st.sampled_from(range(len(REPLIES))), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_replies_come_out_whole_whatever_the_split(order: list[int], cuts: list[int]) -> None:
    stream = b"".join(REPLIES[i][0] for i in order)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    replies, error = _feed(chunks)
    assert error is None
    assert replies == [REPLIES[i][1] for i in order]


@pytest.mark.parametrize(
    "garbage",
    [b"HTTP/1.1 400 Bad Request\r\n", b"25\r\n", b"250x no space\r\n", b"2" + b"5" * 5000],
)
def test_what_is_not_smtp_fails_the_connection(garbage: bytes) -> None:
    replies, error = _feed([garbage])
    assert replies == [] and isinstance(error, ConnectionError)


def test_an_endless_multiline_reply_fails_the_connection() -> None:
    replies, error = _feed([b"250-x\r\n" * 300])
    assert replies == [] and isinstance(error, ConnectionError)


def test_ehlo_extensions() -> None:
    ext = _extensions("mx.example.jp\nPIPELINING\nSIZE 10240000\nXFORWARD NAME ADDR\nchunking")
    assert ext == {"pipelining": "", "size": "10240000", "xforward": "NAME ADDR", "chunking": ""}


async def _server(script: bytes, *, close: bool = False) -> tuple[asyncio.Server, int]:
    """A server that greets, answers EHLO, then sends ``script`` once it has a
    command line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test ESMTP\r\n")
        await reader.readline()
        writer.write(b"250-test\r\n250 PIPELINING\r\n")
        await reader.readline()
        writer.write(script)
        if not close:
            await reader.read(1000)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.asyncio
async def test_pipelined_replies_in_one_segment_are_each_read() -> None:
    server, port = await _server(b"250 2.0.0 xf\r\n250 2.1.0 mail\r\n250 2.1.5 rcpt\r\n")
    async with server:
        c = SmtpClient("127.0.0.1", port, timeout=5, local_hostname="gw.test")
        await c.connect()
        assert c.supports("PIPELINING")
        c.send(b"XFORWARD IDENT=x\r\nMAIL FROM:<a@b.jp>\r\nRCPT TO:<c@d.jp>\r\n")
        got = [await c.reply() for _ in range(3)]
        assert [r.message for r in got] == ["2.0.0 xf", "2.1.0 mail", "2.1.5 rcpt"]
        c.close()


@pytest.mark.asyncio
async def test_a_connection_closed_mid_reply_is_an_error_not_a_reply() -> None:
    server, port = await _server(b"250-half of a\r\n", close=True)
    async with server:
        c = SmtpClient("127.0.0.1", port, timeout=5, local_hostname="gw.test")
        await c.connect()
        with pytest.raises(ConnectionError):
            await c.command(b"MAIL FROM:<a@b.jp>")
        assert not c.is_connected


@pytest.mark.asyncio
async def test_a_silent_next_hop_times_out_and_the_connection_is_not_reused() -> None:
    server, port = await _server(b"")
    async with server:
        c = SmtpClient("127.0.0.1", port, timeout=0.3, local_hostname="gw.test")
        await c.connect()
        with pytest.raises(TimeoutError):
            await c.command(b"MAIL FROM:<a@b.jp>")
        assert not c.is_connected


@pytest.mark.asyncio
async def test_a_refusing_banner_is_a_reply_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.3.2 not accepting mail\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        c = SmtpClient("127.0.0.1", port, timeout=5, local_hostname="gw.test")
        with pytest.raises(ReplyError) as err:
            await c.connect()
        assert err.value.reply.code == 554 and err.value.stage == "banner"


def _xtext_decode(value: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "+":
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(value[i]))
            i += 1
    return bytes(out)


@given(st.text())
def test_xtext_is_one_token_of_printable_ascii_that_decodes_back(value: str) -> None:
    """XFORWARD values (the client's HELO name, which it chose): one token of
    printable ASCII, so no CR, LF or space can end or split the command, and
    the next hop decodes exactly what the client said."""
    encoded = xtext(value)
    assert encoded.isascii() and encoded.isprintable() and " " not in encoded
    assert "=" not in encoded
    assert _xtext_decode(encoded) == value.encode("utf-8", "surrogateescape")
