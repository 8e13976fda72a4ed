"""Remove header fields a sender must not be able to set: the gateway's own verdict fields.

A ``tag`` verdict prepends ``X-DLP-Verdict``, ``X-DLP-Audit-Key`` … and the
recipient side (a filter rule, a mail client's view, a downstream archive) may
trust them.  A sender who writes ``X-DLP-Verdict: deliver`` into a message
must not get that trust, so every message leaves the gateway (relayed,
tagged or released from the hold queue) without any incoming field of that
family.  The held copy keeps them: it is evidence.

Only the message's own header section is touched (a forwarded message inside
the body keeps its fields), and nothing else in it changes.  The field name is
matched without regard to case, a field's folded continuation lines go with
it, and the obsolete form with white space before the colon (RFC 5322 4.5.3,
which Postfix still reads as a header) counts as a field too.  The header
section is taken to run to the first empty line, even past a line that is
not a field: Postfix and Python's ``email`` package start the body at such a
line, but a more lenient reader may not, and a line shaped like one of our
fields has no business there either way.  Lines end at CRLF, LF or a lone
CR, as the relay will write them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# field-name = 1*ftext (printable US-ASCII except ":"), then obs-FWS, then ":".
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
# Lines as the next hop will see them: the relay turns a lone CR or LF into CRLF
# (datareader.dot_stuff), so "X-A: 1\rX-DLP-Verdict: 2" arrives as two fields.
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")

ALWAYS = "X-DLP-"
"""The default ``tag_header_prefix``: removed even when another prefix is configured,
since downstream rules written for the default may still read it."""


@dataclass(frozen=True, slots=True)
class Stripped:
    content: bytes
    removed: tuple[str, ...]
    """Names of the fields removed, in order (for the log)."""


def strip_fields(content: bytes, prefixes: Iterable[str]) -> Stripped:
    """``content`` without header fields whose name starts with one of ``prefixes``."""
    wanted = tuple({p.lower().encode("ascii") for p in prefixes if p})
    end = _header_end(content)
    if not wanted or not any(p in content[:end].lower() for p in wanted):
        return Stripped(content, ())  # the usual case: one search, no copy
    kept: list[bytes] = []
    removed: list[str] = []
    dropping = False
    pos = 0
    for m in _LINE.finditer(content):
        line = m.group()
        if not line.rstrip(b"\r\n"):
            break  # the empty line: the body starts after it
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
        else:
            field = _FIELD.match(line)
            dropping = field is not None and field.group(1).lower().startswith(wanted)
            if field is not None and dropping:
                removed.append(field.group(1).decode("ascii"))
            else:
                kept.append(line)
        pos = m.end()
    if not removed:
        return Stripped(content, ())
    return Stripped(b"".join(kept) + content[pos:], tuple(removed))


def _header_end(content: bytes) -> int:
    """A cheap upper bound for the header section: its first LF-based empty line.

    Every such line is also an empty line for ``_LINE`` (which also splits on a
    lone CR), so the header section ends there or earlier."""
    if content.startswith((b"\r\n", b"\n")):
        return 0
    # A two-byte find over a 2 MB body costs ~2 ms (measured): search for the
    # bare-LF blank line only up to the CRLF one, i.e. within the header.
    crlf = content.find(b"\n\r\n")
    limit = len(content) if crlf == -1 else crlf + 1
    lf = content.find(b"\n\n", 0, limit)
    return lf + 1 if lf != -1 else limit
