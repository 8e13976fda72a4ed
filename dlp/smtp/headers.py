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
section ends at the first empty line or the first line that is neither a
field nor a continuation, where Postfix and Python's ``email`` package also
start the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# field-name = 1*ftext (printable US-ASCII except ":"), then obs-FWS, then ":".
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_LINE = re.compile(rb"[^\n]*\n|[^\n]+")

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
    head = content[:end].lower()
    if not wanted or not any(p in head for p in wanted):
        return Stripped(content, ())  # the usual case: one search, no copy
    kept: list[bytes] = []
    removed: list[str] = []
    dropping = False
    pos = 0
    for m in _LINE.finditer(content, 0, end):
        line = m.group()
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            pos = m.end()
            continue
        field = _FIELD.match(line)
        if field is None:
            break  # the body starts here
        name = field.group(1)
        dropping = name.lower().startswith(wanted)
        if dropping:
            removed.append(name.decode("ascii"))
        else:
            kept.append(line)
        pos = m.end()
    if not removed:
        return Stripped(content, ())
    return Stripped(b"".join(kept) + content[pos:], tuple(removed))


def _header_end(content: bytes) -> int:
    """Offset just past the header section's last line (before the empty line)."""
    if content.startswith((b"\r\n", b"\n")):
        return 0
    # A two-byte find over a 2 MB body costs ~2 ms (measured): search for the
    # bare-LF blank line only up to the CRLF one, i.e. within the header.
    crlf = content.find(b"\n\r\n")
    limit = len(content) if crlf == -1 else crlf + 1
    lf = content.find(b"\n\n", 0, limit)
    return lf + 1 if lf != -1 else limit
