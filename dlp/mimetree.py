"""Raw message bytes → the same ``email`` message tree the feed parser builds, faster.

The stdlib feed parser reads a message line by line in Python: a 2 MB message
is 26,000 lines and about 10 ms of CPU before anything is decoded, most of it
spent on base64 lines that are only joined up again.  Here the header blocks
become ``email`` messages (policy ``default``, its message class) field by
field as the feed parser stores them; the part boundaries are found with ``bytes.find`` and each body is
stored as the feed parser would store it (the ASCII/surrogate-escape string
of its bytes, the line break before a delimiter line removed, preamble and
epilogue likewise).

A header block is split into fields the way the feed parser does it (the same
``policy.header_source_parse`` on the same lines), and the structure is
read from the raw Content-Type and Content-Transfer-Encoding values when they
are plain (``content_type``, ``transfer_encoding``): the ``email`` header
registry builds a new class and a full parse tree on every ``get`` (≈40 µs for
one Content-Type, three of them per part), which was most of the cost of a
20 KB message.  Anything less plain is asked of the ``email`` package itself.

Only plainly well-formed mail takes this path.  Anything the feed parser
treats specially — a bare CR, a ``From `` line, a header block that does not
end in a blank line, a missing or repeated boundary, a part without a close
delimiter, ``message/*`` and ``multipart/digest`` parts, a multipart with a
transfer encoding — makes :func:`fast_tree` return ``None`` and the caller
parses with the ``email`` package as before.  tests/unit/test_mime_fastpath.py
checks that both give the same tree, on generated mail and on the corpus.
"""

from __future__ import annotations

import email.policy
import itertools
import re
from email.message import Message

__all__ = ["MIN_FAST_BYTES", "content_type", "fast_tree", "transfer_encoding"]

MIN_FAST_BYTES = 0
"""Messages from this size take the fast path.  0: every size — the tree is the
same, and it is cheaper from the smallest multipart up (a 20 KB message: 90 →
28 µs; a three-part 500-byte one: 530 → 340 µs; a 2 MB one: 9 → 2 ms)."""

_MAX_PARTS = 2000
"""More parts than this: leave it to the email package (and its defect handling)."""

_MAX_DEPTH = 20
"""Deeper multipart nesting: the email package.  Each level searches its whole
region for its boundary, so depth times size is the cost; real mail nests 3–4."""

_POLICY = email.policy.default
# One header line: a field name and a colon, or a folded continuation.  Stricter
# than the feed parser's own test (it also takes an empty name and "From ").
_HEADER_LINE = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:|[ \t])[^\r\n]*\r?\n")
_PLAIN_CTE = ("7bit", "8bit", "binary")


class _Odd(Exception):
    """Input the fast path does not handle; parse it with the email package."""


def fast_tree(raw: bytes) -> Message | None:
    """The message tree of ``raw``, or ``None`` if it needs the email package."""
    try:
        return _message(raw, 0, len(raw), [0])
    except _Odd:
        return None
    except Exception:  # a header the email package chokes on: it decides what to do
        return None


def _message(
    raw: bytes, start: int, end: int, parts: list[int], in_multipart: bool = False
) -> Message:
    """``parts``: the part count so far, then one entry per enclosing multipart.
    ``in_multipart``: a leaf's body loses the line break before the next
    delimiter (cut from the bytes: a 2 MB part is not copied twice)."""
    parts[0] += 1
    if parts[0] > _MAX_PARTS:
        raise _Odd
    body = _header_end(raw, start, end)
    msg = _headers_only(raw[start:body].decode("ascii", "surrogateescape"))
    maintype, subtype, boundary = content_type(msg)
    if maintype == "message":
        raise _Odd
    if maintype == "multipart":
        _multipart(msg, subtype, boundary, raw, body, end, parts)
    else:
        stop = end
        if in_multipart:  # as _strip_eol does on the text (one byte is one character)
            if raw.endswith(b"\r\n", body, stop):
                stop -= 2
            elif raw.endswith((b"\n", b"\r"), body, stop):
                stop -= 1
        msg._payload = str(memoryview(raw)[body:stop], "ascii", "surrogateescape")  # type: ignore[attr-defined]
    return msg


def _headers_only(block: str) -> Message:
    """What ``BytesHeaderParser(policy=default)`` returns for ``block``, a header
    block that ``_header_end`` accepted (every line a field or its continuation,
    the first not a continuation, no ``From `` line, no bare CR, then the blank
    line).  The feed parser's own steps for such lines: a field is its first line
    and the continuation lines after it, stored with ``policy.header_source_parse``;
    no defects; the (empty) rest becomes the payload."""
    msg = _POLICY.message_factory(policy=_POLICY)  # type: ignore[misc]
    field: list[str] = []
    for line in _LINE.findall(block):
        if line[0] in " \t":
            field.append(line)
            continue
        if field:
            msg.set_raw(*_POLICY.header_source_parse(field))
        if line in ("\n", "\r\n"):
            break
        field = [line]
    msg.set_payload("")
    return msg


# Lines as the feed parser cracks them (it splits at CR, LF and CRLF; a bare CR
# never gets here).  Not str.splitlines, which also splits at FF, VT, \x1c …
_LINE = re.compile(r"[^\n]*\n")

_SIMPLE_TYPE = re.compile(
    r"[ \t]*[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+[ \t]*"
    r"(?:;[ \t]*[A-Za-z0-9_.-]+=(?:[A-Za-z0-9!#$&+.^_`|~-]+|\"[ !#-\[\]-~]+\")[ \t]*)*;?[ \t]*"
)
"""A Content-Type of plain tokens and quoted strings (no comments, no RFC 2231
``*`` names, no escapes, ASCII): the ``email`` package's own accessors give
the same type, subtype and boundary on the raw text as on its parsed header
(tests/unit/test_mime_fastpath.py checks it on generated values)."""
_SIMPLE_CTE = re.compile(r"[A-Za-z0-9-]+")
"""A Content-Transfer-Encoding that the parsed header prints back unchanged."""


def content_type(msg: Message) -> tuple[str, str, str | None]:
    """``msg.get_content_maintype()``, ``get_content_subtype()`` and
    ``get_boundary()``: for a plain value the same accessors run on the raw
    text (a compat32 message holds it as a string), not on three parses."""
    value = _first(msg, "content-type")
    if msg.policy is _POLICY and (value is None or isinstance(value, str)):
        plain = None if value is None else value.replace("\r", "").replace("\n", "")
        if plain is None or _SIMPLE_TYPE.fullmatch(plain):
            probe = Message()
            probe.set_default_type(msg.get_default_type())
            if plain is not None:
                probe["Content-Type"] = plain
            return probe.get_content_maintype(), probe.get_content_subtype(), probe.get_boundary()
    return msg.get_content_maintype(), msg.get_content_subtype(), msg.get_boundary()


def transfer_encoding(msg: Message) -> str | None:
    """``str(msg.get("content-transfer-encoding"))``, None when there is none."""
    value = _first(msg, "content-transfer-encoding")
    if value is None:
        return None
    if msg.policy is _POLICY and isinstance(value, str):
        plain = value.replace("\r", "").replace("\n", "")
        if _SIMPLE_CTE.fullmatch(plain):
            return plain
    got = msg.get("content-transfer-encoding")
    return None if got is None else str(got)


def _first(msg: Message, name: str) -> object:
    """The stored value of the first ``name`` field (what ``Message.get`` parses)."""
    for key, value in msg.raw_items():
        if key.lower() == name:
            return value
    return None


def _header_end(raw: bytes, start: int, end: int) -> int:
    """Offset just past the blank line that ends the header block at ``start``.

    Line by line over the headers only: each line must be a header or its
    continuation (no bare CR, which would end a line for the feed parser)."""
    pos = start
    while True:
        if raw.startswith(b"\n", pos, end):
            return pos + 1
        if raw.startswith(b"\r\n", pos, end):
            return pos + 2
        m = _HEADER_LINE.match(raw, pos, end)
        if m is None or (pos == start and raw[pos] in b" \t") or raw.startswith(b"From ", pos):
            raise _Odd  # not a header line, or headers up to the end
        pos = m.end()


def _multipart(
    msg: Message,
    subtype: str,
    boundary: str | None,
    raw: bytes,
    start: int,
    end: int,
    parts: list[int],
) -> None:
    if subtype == "digest":
        raise _Odd  # its parts default to message/rfc822
    cte = transfer_encoding(msg)
    if cte is not None and cte.lower() not in _PLAIN_CTE:
        raise _Odd
    if not boundary:
        raise _Odd
    delims = _delimiters(raw, ("--" + boundary).encode("ascii", "surrogateescape"), start, end)
    if len(delims) < 2 or delims[-1][2] is False or any(d[2] for d in delims[:-1]):
        raise _Odd  # no start, no close, or text after the close delimiter line
    first_at = delims[0][0]
    if first_at > start:
        # RFC 2046: the line break before a delimiter belongs to the delimiter.
        msg.preamble = _strip_eol(raw[start:first_at].decode("ascii", "surrogateescape"))
    subparts: list[Message] = []
    for (_, after, _close), (next_at, _, _) in itertools.pairwise(delims):
        if after >= next_at:
            raise _Odd  # an empty part or two delimiters in a row
        if len(parts) > _MAX_DEPTH:
            raise _Odd
        parts.append(0)
        sub = _message(raw, after, next_at, parts, in_multipart=True)
        parts.pop()
        if sub.is_multipart():
            epilogue = sub.epilogue
            sub.epilogue = None if epilogue == "" else _strip_eol(epilogue or "")
        subparts.append(sub)
    msg._payload = subparts  # type: ignore[attr-defined]
    close_end = delims[-1][1]
    msg.epilogue = raw[close_end:end].decode("ascii", "surrogateescape")


def _delimiters(raw: bytes, sep: bytes, start: int, end: int) -> list[tuple[int, int, bool]]:
    """Delimiter lines in [start, end): (line start, offset after its line break, is close).

    A line is a delimiter when it is ``sep``, optionally ``--``, optional
    blanks, then the line break (the feed parser's boundary expression)."""
    out: list[tuple[int, int, bool]] = []
    pos = start
    n = len(sep)
    while True:
        at = raw.find(sep, pos, end)
        if at < 0:
            return out
        pos = at + n
        if at > start and raw[at - 1] != 0x0A:
            if raw[at - 1] == 0x0D:
                raise _Odd  # a bare CR: to the feed parser a line starts here
            continue
        eol = raw.find(b"\n", pos, end)
        line_end = end if eol < 0 else eol + 1
        rest = raw[pos:line_end]
        if rest.count(b"\r") != rest.count(b"\r\n"):
            raise _Odd  # a bare CR in a would-be delimiter line
        close = rest.startswith(b"--")
        tail = rest[2:] if close else rest
        if tail.lstrip(b" \t") not in (b"", b"\n", b"\r\n"):
            continue  # "--boundaryX" or text after it: not a delimiter line
        out.append((at, line_end, close))
        if close:
            # The close delimiter ends this multipart; a later delimiter line
            # would be epilogue to the feed parser: check there is none.
            if raw.find(b"\n" + sep, line_end - 1, end) >= 0:
                raise _Odd
            return out
        pos = line_end


def _strip_eol(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text
