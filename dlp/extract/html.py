"""HTML → text that keeps numbers whole.

Inline markup (``<span>``, ``<b>``, ``<font>``, ``<a>`` …) and invisible
characters are removed without leaving a gap, so ``1234<span>5678</span>9012``
reads as one number; block and cell boundaries (``<td>``, ``<br>``, ``<p>``,
``<div>``, ``<li>`` …) become line breaks or tabs so two adjacent table cells
never merge into one.  ``&nbsp;`` becomes a plain space.  Script and style
bodies and comments are dropped; ``alt``/``title``/``value`` attributes are
kept (a number in a form field or an image caption is still a number).

A regex pass (C speed, tolerant of broken markup) rather than a DOM parser:
mail HTML is frequently malformed and we need text, not structure.
"""

from __future__ import annotations

import html
import re

from dlp.extract.base import Budget, Extracted
from dlp.extract.text import decode_text
from dlp.model import AttachmentStatus, TextChunk

__all__ = ["extract", "extract_html", "html_to_text", "sniff_charset"]

# No "<" inside a tag (quoted or not, here and in _TAG): a "<" that never finds
# its ">" must not make every later "<" scan to the end too (quadratic: 20 KB
# of "<a" took 10 s).  Likewise a CDATA section ends before the next one starts.
_DROP = re.compile(
    r"<!--.*?(?:-->|$)|<(script|style|template)\b[^<>]*>.*?(?:</\1\s*>|$)|<!\[CDATA\[(?:(?!<!\[CDATA\[).)*?\]\]>",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9:-]*)((?:[^<>\"']|\"[^<\"]*\"|'[^<']*')*)>|<![^<>]*>|<\?[^<>]*>"
)
_ATTR = re.compile(
    r"\b(alt|title|value|placeholder)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE
)
_CELL = frozenset({"td", "th"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
        "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head",
        "header", "hr", "html", "iframe", "img", "input", "legend", "li", "main", "menu",
        "nav", "noscript", "ol", "option", "p", "pre", "section", "select", "summary",
        "table", "tbody", "textarea", "tfoot", "thead", "title", "tr", "ul", "button",
    }
)  # fmt: skip
# Zero-width and soft-hyphen characters hide inside a number to break naive matching.
_INVISIBLE = {ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"}
_NBSP = {0xA0: " "}
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_BLANKS = re.compile(r"[ \t]*\n[ \t\n]*")


def html_to_text(markup: str) -> str:
    """Visible text of ``markup``; never raises."""
    markup = _DROP.sub("", markup)

    def tag(m: re.Match[str]) -> str:
        name = (m.group(2) or "").lower()
        attrs = m.group(3) or ""
        extra = ""
        if attrs and not m.group(1):
            found = [html.unescape(v.strip("\"'")) for _, v in _ATTR.findall(attrs)]
            if found:
                extra = "\n" + "\n".join(found) + "\n"
        if name in _CELL:
            return "\t" + extra
        if name in _BLOCK:
            return "\n" + extra
        return extra

    text = _TAG.sub(tag, markup)
    text = html.unescape(text).translate(_INVISIBLE).translate(_NBSP)
    return _BLANKS.sub("\n", text)


def sniff_charset(data: bytes) -> str | None:
    """The charset a ``<meta>`` tag in the first few KiB declares, if any."""
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    """Registry entry point for kind ``html``."""
    return extract_html(data, filename, location, budget, None)


def extract_html(
    data: bytes, filename: str, location: str, budget: Budget, charset: str | None
) -> Extracted:
    """As ``extract``, with the charset the MIME part declared (if any)."""
    del filename
    budget.check_time()
    text, used = decode_text(data, charset or sniff_charset(data))
    return Extracted(
        kind="html",
        status=AttachmentStatus.SCANNED,
        chunks=(TextChunk(text=html_to_text(text), location=location),),
        detail=f"charset {used}",
    )
