"""Bulk reader for the SMTP DATA phase.

aiosmtpd 1.4.6 reads DATA one line at a time (one ``readuntil`` and two joins
a line): about 50 ms of CPU per 2 MB message, which caps even a do-nothing
sink at 20 messages a second (measured with a 2 MB message through a pass-through
relay).  This reader takes whatever
the socket delivered in one go and searches only the newly arrived bytes for
the end marker.  It keeps the three things the line reader guards:

* **Only CRLF "." CRLF ends DATA.**  A bare LF before or after the dot
  (``"\\n.\\r\\n"``, ``"\\r\\n.\\n"``) is content, never the end: that is the
  SMTP smuggling attack (CVE-2024-27305) where a second message hides inside
  the first.  The line ending right after the DATA command counts as the CRLF
  before the dot, so an empty message is a lone ``".\\r\\n"``.
* **Dot-unstuffing** (RFC 5321 4.5.2): a line that starts with "." loses that
  first dot.
* **The size limit.**  Past ``limit`` bytes the content is dropped as it
  arrives (memory stays bounded) and the rest is read until the end marker, so
  the reply ``552`` comes at the right moment in the conversation.

Lines longer than 1000 octets are accepted (aiosmtpd answers a permanent 500
for them, which bounces mail from clients that do not wrap); the next hop is
free to refuse them and its answer is passed back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

_END = b"\r\n.\r\n"


@dataclass(frozen=True, slots=True)
class DataResult:
    content: bytes
    """The message as sent, dot-unstuffed; empty when ``too_large``."""
    size: int
    """Octets received before unstuffing (what the size limit is checked against)."""
    too_large: bool = False


class Inbox:
    """What the client sent that the session has not read yet.

    asyncio's ``StreamReader``, reduced to what an SMTP session needs: a whole
    command line, or whatever arrived (for DATA), with one buffer and one
    waiter.  The stream classes cost more Python per command than parsing the
    command does (issue 17: a third of a 20 KB message's session time).  The
    protocol hands in what the transport delivers (``feed``); reading is paused
    while more than ``pause_above`` bytes wait, so a client that sends without
    reading its replies holds that much of our memory at most.
    """

    __slots__ = ("_buf", "_eof", "_loop", "_paused", "_waiter", "pause_above", "transport")

    def __init__(self, loop: asyncio.AbstractEventLoop, pause_above: int = 65536) -> None:
        # The loop is kept, not looked up per wait: on Python 3.11
        # ``asyncio.get_running_loop()`` makes a getpid() system call each time.
        self._loop = loop
        self._buf = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._paused = False
        self.pause_above = pause_above
        self.transport: asyncio.Transport | None = None
        """Paused and resumed for flow control; replaced after STARTTLS."""

    def feed(self, data: bytes) -> None:
        self._buf += data
        self._wake()
        if len(self._buf) > self.pause_above and not self._paused:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                self._paused = True
                transport.pause_reading()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def unread(self, data: bytes) -> None:
        """Put ``data`` back in front of what is buffered (bytes after DATA's end)."""
        self._buf[:0] = data

    def discard(self) -> None:
        """Forget what is buffered (STARTTLS: nothing sent in clear before the
        handshake may count as a command after it, RFC 3207 section 4.2)."""
        self._buf.clear()

    def has_line(self) -> bool:
        """Whether a whole command line is already here (PIPELINING holds replies)."""
        return b"\n" in self._buf

    async def line(self, limit: int) -> bytes | None:
        """The next line, its line end included; ``None`` when it ran past ``limit``
        bytes (it is then read to its end and dropped).  ``ConnectionResetError``
        when the client closed first."""
        too_long = False
        while True:
            buf = self._buf
            end = buf.find(b"\n")
            if end != -1:
                if too_long or end >= limit:
                    del buf[: end + 1]
                    return None
                line = bytes(buf[: end + 1])
                del buf[: end + 1]
                return line
            if len(buf) >= limit:
                too_long = True
                buf.clear()
            await self._more()

    async def chunk(self) -> bytes | bytearray:
        """Everything buffered (the buffer itself: no copy), waiting for something
        first; ``b""`` at the end."""
        if not self._buf:
            if self._eof:
                return b""
            await self._more()
            if not self._buf:
                return b""
        data, self._buf = self._buf, bytearray()
        return data

    async def _more(self) -> None:
        if self._eof:
            raise ConnectionResetError("connection closed by the client")
        if self._paused:
            self._paused = False
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def read_data(
    inbox: Inbox,
    limit: int | None,
    on_progress: Callable[[], None] | None = None,
) -> DataResult:
    """Read one DATA body from ``inbox`` up to and including the end marker.

    Bytes the client sent after the end marker (a pipelined command) are put
    back into the inbox, so the command loop sees them next.  Raises
    ``ConnectionResetError`` when the client goes away mid-message.
    """
    # The CRLF that ended the DATA command line is the CRLF before a "." on the
    # first line; prefixing it lets one search find the end marker everywhere.
    buf = bytearray(b"\r\n")
    dropped = 0
    too_large = False
    while True:
        chunk = await inbox.chunk()
        if not chunk:
            raise ConnectionResetError("connection closed during DATA")
        if on_progress is not None:
            on_progress()
        start = max(0, len(buf) - len(_END) + 1)
        buf += chunk
        end = _find_end(buf, start)
        if end == -1:
            if limit is not None and not too_large and dropped + len(buf) - 2 > limit:
                too_large = True
            if too_large:
                # Keep only what could be the start of a split end marker.
                keep = len(_END) - 1
                dropped += len(buf) - keep
                del buf[:-keep]
            continue
        rest = bytes(buf[end + len(_END) :])
        if rest:
            inbox.unread(rest)
        content_end = end + 2  # the CRLF before the dot belongs to the content
        size = dropped + content_end - 2
        if too_large or (limit is not None and size > limit):
            return DataResult(b"", size, too_large=True)
        if not _dot_at_line_start(buf, 0, content_end):
            # Nothing stuffed (the usual case): one copy instead of three.
            return DataResult(bytes(memoryview(buf)[2:content_end]), size)
        del buf[content_end:]
        return DataResult(bytes(buf.replace(b"\r\n.", b"\r\n"))[2:], size)


def _find_end(buf: bytearray, start: int) -> int:
    """Index of the first ``_END`` at or after ``start``, or -1.

    ``buf.find(_END)`` costs about 1.2 ms per MB: every CRLF is a partial match.
    The dot is the rare byte, so each "." found by memchr is checked where it
    stands; with many dots (a dotted line of text), one direct search after all.
    """
    seen = 0
    i = buf.find(b".", start + 2)
    while i != -1:
        if buf[i - 2 : i] == b"\r\n" and buf[i + 1 : i + 3] == b"\r\n":
            return i - 2
        seen += 1
        if seen > 64:
            return buf.find(_END, i - 2)
        i = buf.find(b".", i + 1)
    return -1


def dot_stuff(content: bytes) -> bytes:
    """Content ready to follow a DATA command, end marker included.

    Lone CR or LF become CRLF first (as aiosmtplib does), so a bare-LF dot that
    reached us as content can never end the message early at the next hop.
    The common case, a message already in CRLF form, is checked with two
    searches and stuffed with one ``replace`` instead of aiosmtplib's per-line
    regular expressions (27 ms per 2 MB message).
    """
    return b"".join(dot_stuff_parts(content, join_below=None))


# A line end that is not CRLF.  Each pattern starts with its literal byte, so the
# regex engine jumps from one CR (or LF) to the next and looks one byte around
# it: 0.7 ms per 2 MB each, where the three byte counts they replace cost 3.3 ms.
_BARE_LF = re.compile(rb"\n(?<!\r\n)")
_BARE_CR = re.compile(rb"\r(?!\n)")

_JOIN_BELOW = 65536
"""Below this, the end marker is joined to the body (a copy that costs less than
the second ``send()`` a separate write would often need); above it, the body
goes out as it is and the marker after it, one copy of the message fewer."""


def dot_stuff_parts(content: bytes, join_below: int | None = _JOIN_BELOW) -> list[bytes]:
    """``dot_stuff(content)`` as the pieces to write one after the other.

    Unchanged content (CRLF throughout, no line starting with a dot: nearly all
    mail) is not copied when it is ``join_below`` bytes or more."""
    content = with_crlf_line_ends(content)
    if content.startswith(b".") or _dot_at_line_start(content, 0, len(content)):
        content = (b"\r\n" + content).replace(b"\r\n.", b"\r\n..")[2:]
    if join_below is None or len(content) < join_below:
        return [content + b".\r\n"]
    return [content, b".\r\n"]


def has_bare_line_end(content: bytes) -> bool:
    """Whether ``content`` holds a CR without its LF or an LF without its CR.

    The definition, and the fallback where ``dlp.smtp._wire`` is not built: the
    compiled test gives the same answer at memchr speed (the two regular
    expressions cost about 1 ns a byte, more than the rest of the relay)."""
    return bool(_BARE_LF.search(content) or _BARE_CR.search(content))


def _compiled_bare_test() -> Callable[[bytes], bool] | None:
    try:
        from dlp.smtp import _wire
    except ImportError:
        return None
    return _wire.has_bare_line_end if getattr(_wire, "API", None) == 1 else None


_has_bare = _compiled_bare_test() or has_bare_line_end


def with_crlf_line_ends(content: bytes) -> bytes:
    """``content`` with every line, the last one too, ended by CRLF.

    Lone CR or LF become CRLF, so what the next hop receives is the same
    message whether it goes with DATA or with BDAT."""
    if _has_bare(content):
        content = _normalise(content)
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    return content


def _dot_at_line_start(data: bytes | bytearray, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` holds CRLF followed by ".".

    Searching for the three bytes directly costs about 1.6 ms per 2 MB (every
    CRLF is a partial match); looking at each "." found by memchr costs next to
    nothing when dots are few, as in base64 and most bodies.  With many dots,
    one direct search after all.
    """
    i = data.find(b".", start, end)
    seen = 0
    while i != -1:
        if i - start >= 2 and data[i - 2 : i] == b"\r\n":
            return True
        seen += 1
        if seen > 64:
            return data.find(b"\r\n.", max(start, i - 2), end) != -1
        i = data.find(b".", i + 1, end)
    return False


def _normalise(content: bytes) -> bytes:
    return content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
