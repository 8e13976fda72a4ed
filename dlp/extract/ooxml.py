"""Word (.docx/.docm) and PowerPoint (.pptx/.pptm) via zipfile + lxml.

Reads every part a person can put text in: body, tables (one chunk per column,
header row as ``field_label``), headers, footers, foot/endnotes, comments, text
boxes, SmartArt, slides, speaker notes.  Embedded files (an Excel sheet pasted
into a Word document, ``word/embeddings/*``) are returned as members.

Why not python-docx / python-pptx: their obvious use (``document.paragraphs``)
skips tables, text boxes, headers, comments and ruby text (python-docx returns none of the Japanese of
a furigana paragraph: corpus testWORD_phonetic.docx) and are slower (corpus
bug65649.docx: python-docx 3.3 s, this reader 0.4 s).

A damaged package (a truncated attachment) is read part by part from its
local headers; what could be read is returned with status ``error``.
"""

from __future__ import annotations

import functools
import html
import posixpath
import re
import zipfile

from dlp.extract import forms, xmltext, zipparts
from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member, lines_only_in
from dlp.extract.limits import check_member_count
from dlp.extract.tables import columns_to_chunks, rows_to_columns
from dlp.model import AttachmentStatus, TextChunk

_NUM = re.compile(r"(\d+)")

# (pattern of part names, label prefix, dialect)
_DOCX_PARTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^word/document\d*\.xml$"), "body"),
    (re.compile(r"^word/(header\d*)\.xml$"), ""),
    (re.compile(r"^word/(footer\d*)\.xml$"), ""),
    (re.compile(r"^word/(footnotes)\.xml$"), ""),
    (re.compile(r"^word/(endnotes)\.xml$"), ""),
    (re.compile(r"^word/(comments)\.xml$"), ""),
    (re.compile(r"^word/diagrams/(data\d*)\.xml$"), "smartart-"),
)
_PPTX_PARTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^ppt/slides/(slide\d+)\.xml$"), ""),
    (re.compile(r"^ppt/notesSlides/notesSlide(\d+)\.xml$"), "notes"),
    (re.compile(r"^ppt/comments/(\w*comment\w*?\d*)\.xml$", re.IGNORECASE), ""),
    (re.compile(r"^ppt/diagrams/(data\d*)\.xml$"), "smartart-"),
)
_NOT_TEXT = re.compile(
    r"(^|/)_rels/|/(styles|stylesWithEffects|settings|webSettings|fontTable|numbering|people"
    r"|presProps|viewProps|tableStyles|commentAuthors|vbaData|customizations)\.xml$"
    r"|/(theme|printerSettings|customXml|fonts)/",
    re.IGNORECASE,
)
"""Parts of a package that hold no text anyone reads: formatting, settings, themes."""
EMBED_DIRS = ("word/embeddings/", "ppt/embeddings/", "xl/embeddings/")
_ALT_CHUNK = re.compile(r"^(?:word|ppt)/[^/]+\.(?:html?|mht|txt|rtf)$", re.IGNORECASE)
"""Content Word imports into the document where it stands (``altChunk``: HTML, MHT,
plain text or RTF kept as its own part): a file, read as one."""
MEDIA_DIRS = ("word/media/", "ppt/media/", "xl/media/")
"""Pictures pasted into a document (a scanned form in a Word file, a screenshot on
a slide): returned as members so that they are OCR'd.  Only raster images; EMF/WMF
drawings are skipped, as before (no reader; they would be "unsupported")."""


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    try:
        zf = zipparts.open_zip(data)
    except Exception:
        return _salvaged(data, location, budget)
    with zf:
        zipparts.check_package(zf, budget)
        names = zf.namelist()
        kind = (
            "pptx"
            if "ppt/presentation.xml" in names or any(n.startswith("ppt/") for n in names)
            else "docx"
        )
        chunks: list[TextChunk] = []
        members: list[Member] = []
        defects: list[str] = []
        try:
            for name, label in _parts(names, kind):
                budget.check_time()
                try:
                    xml = zipparts.read_capped(
                        zf, zf.getinfo(name), zipparts.xml_cap(budget), budget
                    )
                except BudgetExceeded:
                    raise
                except Exception as exc:
                    defects.append(f"{name}: unreadable ({type(exc).__name__})")
                    continue
                chunks.extend(part_chunks(xml, f"{location}!{label}", kind, budget))
            chunks.extend(properties_chunks(zf, names, location, budget))
            members.extend(embedded_members(zf, budget))
        except BudgetExceeded as exc:
            return Extracted(
                kind=kind,
                status=exc.status,
                chunks=tuple(chunks),
                members=tuple(members),
                detail=exc.detail,
                defects=tuple(defects),
            )
    status = AttachmentStatus.SCANNED
    detail = ""
    if defects:
        status, detail = AttachmentStatus.ERROR, defects[0]
    return Extracted(
        kind=kind,
        status=status,
        chunks=tuple(chunks),
        members=tuple(members),
        detail=detail,
        defects=tuple(defects),
    )


def _parts(names: list[str], kind: str) -> list[tuple[str, str]]:
    """The text parts in reading order (pptx: each slide followed by its notes)."""
    table = _PPTX_PARTS if kind == "pptx" else _DOCX_PARTS
    found: list[tuple[tuple[int, int, int], str, str]] = []
    for order, (pattern, prefix) in enumerate(table):
        for name in names:
            m = pattern.match(name)
            if not m:
                continue
            if prefix == "notes":
                label = f"slide{m.group(1)}!notes"
            elif prefix == "body":
                label = "body"
            else:
                label = prefix + m.group(1)
            num = _NUM.search(posixpath.basename(name))
            n = int(num.group(1)) if num else 0
            if kind == "pptx" and order < 2:
                key = (n, order, 0)
            else:
                key = (1 << 30 if kind == "pptx" else 0, order, n)
            found.append((key, name, label))
    found.sort()
    parts = [(name, label) for _, name, label in found]
    # Every other XML part of the document, whatever it is called: Word and
    # PowerPoint find parts through the package's relationships, not by name, so a
    # main document saved as word/main.xml is shown all the same; and slide layouts
    # and masters, charts and text boxes in their own parts are on the screen too.
    known = {name for name, _ in parts}
    root = "ppt/" if kind == "pptx" else "word/"
    for name in sorted(names):
        if (
            name.startswith(root)
            and name.lower().endswith(".xml")
            and name not in known
            and not _NOT_TEXT.search(name)
        ):
            parts.append((name, name[len(root) : -4]))
    return parts


_PROPERTY_PARTS = ("docProps/core.xml", "docProps/custom.xml")
_ELEMENT_TEXT = re.compile(rb">([^<>]+)</")


def properties_chunks(
    zf: zipfile.ZipFile, names: list[str], location: str, budget: Budget
) -> list[TextChunk]:
    """The document's properties (title, subject, keywords, comments, custom
    properties): File > Info shows them, and they travel with the file."""
    out: list[TextChunk] = []
    for name in _PROPERTY_PARTS:
        if name not in names:
            continue
        try:
            xml = zipparts.read_capped(zf, zf.getinfo(name), zipparts.xml_cap(budget), budget)
        except BudgetExceeded:
            raise
        except Exception:
            continue
        values = [
            html.unescape(v.decode("utf-8", "replace")).strip() for v in _ELEMENT_TEXT.findall(xml)
        ]
        text = "\n".join(v for v in values if v)
        if text:
            out.append(TextChunk(text=text, location=f"{location}!properties"))
    return out


def part_chunks(xml: bytes, location: str, kind: str, budget: Budget) -> list[TextChunk]:
    root = xmltext.parse(xml)
    if root is None:
        return []
    dialect = xmltext.DRAWING if kind == "pptx" else xmltext.WORD
    got = xmltext.collect(root, dialect, budget)
    chunks: list[TextChunk] = []
    text = xmltext.joined(got.text)
    if text:
        chunks.append(TextChunk(text=text, location=location))
    # Second readings, each adding only the lines that read differently: a digit in a
    # hidden or one-point run (thirteen digits stored, twelve on the screen), and what
    # an application that does not know the preferred content shows instead.
    readings = []
    if dialect is xmltext.WORD and xmltext.has_unseen_runs(xml):
        readings.append(("as shown", xmltext.collect(root, dialect, budget, shown=True)))
    if b"Fallback" in xml:
        readings.append(("fallback", xmltext.collect(root, dialect, budget, fallback=True)))
    for suffix, other in readings:
        extra = lines_only_in(xmltext.joined(other.text), text)
        if extra:
            chunks.append(TextChunk(text=extra, location=f"{location} ({suffix})"))
    for i, rows in enumerate(got.tables, 1):
        # Word forms give each digit of a My Number its own box, like Excel templates.
        chunks.extend(
            columns_to_chunks(
                rows_to_columns(rows),
                f"{location}!table{i}",
                prepare=functools.partial(forms.apply, keywords=budget.keywords),
            )
        )
    return chunks


def embedded_members(zf: zipfile.ZipFile, budget: Budget) -> list[Member]:
    """Files embedded in an office package (OLE objects, pasted workbooks) as members."""
    from dlp.extract.registry import sniff

    members: list[Member] = []
    for info in zf.infolist():
        media = info.filename.startswith(MEDIA_DIRS)
        if info.is_dir() or not (
            media or info.filename.startswith(EMBED_DIRS) or _ALT_CHUNK.match(info.filename)
        ):
            continue
        budget.check_time()
        check_member_count(budget, len(members))
        payload = zipparts.read_capped(zf, info, budget.max_file_bytes, budget)
        if media and sniff(payload, info.filename) != "image":
            continue
        members.append(Member(posixpath.basename(info.filename), payload))
    return members


def _salvaged(data: bytes, location: str, budget: Budget) -> Extracted:
    kind = "docx"
    chunks: list[TextChunk] = []
    try:
        parts = zipparts.salvage(data, budget, zipparts.xml_cap(budget))
    except zipparts.EncryptedMember:
        return Extracted(kind=kind, status=AttachmentStatus.ENCRYPTED, detail="encrypted package")
    names = [n for n, _ in parts]
    if any(n.startswith("ppt/") for n in names):
        kind = "pptx"
    content = dict(parts)
    for name, label in _parts(names, kind):
        try:
            chunks.extend(part_chunks(content[name], f"{location}!{label}", kind, budget))
        except BudgetExceeded:
            raise
        except Exception:
            continue
    return Extracted(
        kind=kind,
        status=AttachmentStatus.ERROR,
        chunks=tuple(chunks),
        detail=f"damaged or truncated ZIP package; {len(parts)} parts read from local headers",
    )
