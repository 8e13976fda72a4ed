"""PDF: pypdfium2 for speed, pdfminer.six for the pages pdfium cannot map.

Measured on the corpus (bench/RESULTS-extract.md, docs/attachments.md):
pdfium is 5x faster than pdfminer on the 100-page bench PDF and 30x on corpus
testPDF_protected.pdf, and equal on every PDF with embedded
or Unicode-mapped fonts, including reportlab's non-embedded HeiseiKakuGo-W5;
but on text set in a *non-embedded* font with a legacy predefined CMap (JIS
"H", Identity-V without ToUnicode — corpus simple3.pdf and jo.pdf) pdfium
silently drops the glyphs, where pdfminer maps them through its Adobe-Japan1
tables.  So every page is read with pdfium, and a page on which a text object
in a non-embedded, non-Latin font yields no text at all is read again with
pdfminer (vertical writing detected) and the longer result kept.

Also read: filled-in form fields (value, with the field name as
``field_label`` — a field named 個人番号 is context for its value), annotation
and comment text, and embedded files (returned as members).

An encrypted PDF that needs a password to open is ``encrypted``; one with only
an owner password (printing/copying restrictions) opens without one and is
read like any other.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import re

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from dlp.extract import ocr, sandbox
from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.extract.limits import check_member_count
from dlp.model import AttachmentStatus, TextChunk

# pdfminer logs a warning per odd font; the scan report carries what matters.
logging.getLogger("pdfminer").setLevel(logging.ERROR)

_CLEAN = re.compile("[\r\ufffe\x02\x00]")
"""What pdfium puts in page text besides the text (a regex: ``str.translate`` with
a table looks up every character, ~40 ns each on Japanese text)."""


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    """pdfium is C++ fed hostile input: it runs in a forked child (sandbox.py)."""
    limits = budget.ocr
    if limits and limits.here and b"/Image" in data and not ocr.unavailable(limits.languages):
        # Loaded here once per worker so that every child inherits it (0.3 s each
        # otherwise).  An image hidden in a compressed object stream is still
        # read: the child then loads the engine itself.
        with contextlib.suppress(Exception):  # the child says why, page by page
            ocr.engine(limits.languages)
    return sandbox.extract_isolated(extract_inline, data, filename, location, budget, "pdf")


def extract_inline(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            return _encrypted()
        # pdfium repairs most broken xref tables; what it cannot open pdfminer may
        return _pdfminer_only(data, location, budget, f"pdfium could not open it: {exc}")
    try:
        return _read(doc, data, location, budget)
    finally:
        doc.close()


def _encrypted() -> Extracted:
    return Extracted(kind="pdf", status=AttachmentStatus.ENCRYPTED, detail="password-protected PDF")


def _read(doc: pdfium.PdfDocument, data: bytes, location: str, budget: Budget) -> Extracted:
    chunks: list[TextChunk] = []
    members: list[Member] = []
    defects: list[str] = []
    texts: dict[int, str] = {}
    retry: set[int] = set()
    failed: set[int] = set()
    scanned: dict[int, str] = {}
    not_ocred: list[str] = []
    skipped: list[int] = []
    pictures: list[str] = []
    try:
        try:
            doc.init_forms()
        except Exception:
            defects.append("form fields not readable")
        form = getattr(doc, "formenv", None)
        for i in range(len(doc)):
            budget.check_time()
            page = doc[i]
            try:
                textpage = page.get_textpage()
                try:
                    texts[i] = _CLEAN.sub("", textpage.get_text_range())
                    if _has_unmapped_text(page, textpage):
                        retry.add(i)
                finally:
                    textpage.close()
                if _weight(texts[i]) < OCR_BELOW_CHARS and _has_image(page):
                    _ocr_page(page, i, budget, scanned, not_ocred, skipped)
                elif _CARD_CONTEXT.search(texts[i]):
                    chunks.extend(
                        _ocr_pictures(page, i, location, budget, not_ocred, defects, pictures)
                    )
                chunks.extend(_annotations(page, form, f"{location}!p{i + 1}"))
                drawn = _drawn_annotations(doc, i, page, texts[i])
                if drawn:
                    chunks.append(TextChunk(drawn, f"{location}!p{i + 1} (annotations as drawn)"))
            except BudgetExceeded:
                raise
            except Exception as exc:
                defects.append(f"page {i + 1} unreadable ({type(exc).__name__})")
                retry.add(i)
                failed.add(i)
            finally:
                page.close()
        members.extend(_attachments(doc, budget))
        outline = _outline(doc)
        if outline:
            chunks.append(TextChunk(outline, f"{location}!bookmarks"))
        better: dict[int, str] = {}
        if retry:
            try:
                better = _pdfminer_pages(data, retry, budget, defects)
            except _Encrypted:
                better = {}
            for i, text in better.items():
                if _weight(text) > _weight(texts.get(i, "")):
                    texts[i] = text
    except BudgetExceeded as exc:
        page_chunks = _page_chunks(texts, location) + _ocr_chunks(scanned, location)
        return Extracted(
            kind="pdf",
            status=exc.status,
            chunks=tuple(page_chunks + chunks),
            members=tuple(members),
            detail=exc.detail,
            defects=tuple(defects),
        )
    return Extracted(
        kind="pdf",
        status=AttachmentStatus.SCANNED,
        chunks=tuple(_page_chunks(texts, location) + _ocr_chunks(scanned, location) + chunks),
        members=tuple(members),
        detail=_ocr_detail(scanned, skipped, pictures, budget),
        defects=tuple(defects),
        # Pages neither pdfium nor pdfminer could read, and scanned pages OCR
        # could not read within its budget: the file is only partly scanned.
        unread=tuple(f"page {i + 1} not read" for i in sorted(failed - better.keys()))
        + _summarised(not_ocred),
    )


def _summarised(not_ocred: list[str]) -> tuple[str, ...]:
    """A 500-page scan past the budget: the first page said in full, then a count,
    not 450 lines in the report and the send log."""
    if len(not_ocred) <= 3:
        return tuple(not_ocred)
    return (not_ocred[0], f"{len(not_ocred) - 1} more scanned pages not read")


def _ocr_detail(
    scanned: dict[int, str], skipped: list[int], pictures: list[str], budget: Budget
) -> str:
    parts = []
    if scanned:
        parts.append(f"ocr ({len(scanned)} page{'s' if len(scanned) > 1 else ''})")
    if pictures:
        parts.append(f"ocr ({len(pictures)} picture{'s' if len(pictures) > 1 else ''})")
    if skipped:
        why = (
            "ocr disabled"
            if budget.ocr is None
            else f"ocr unavailable: {ocr.unavailable(budget.ocr.languages)}"
        )
        pages = ", ".join(str(i + 1) for i in skipped[:20]) + (" …" if len(skipped) > 20 else "")
        parts.append(f"scanned page(s) {pages} not read: {why}")
    return "; ".join(parts)


_CARD_CONTEXT = re.compile(r"個人番号|マイナンバー|通知カード|番号カード|本人確認|扶養控除")
"""On a page with a text layer, pictures are OCR'd only when the text speaks of
My Numbers or identity documents (a Word file with a pasted photo of the card,
exported to PDF): the charts and photos of every other report are not, or they
would spend the page budget and hold picture-heavy PDFs."""
PICTURE_MIN_PIXELS = 40_000
"""Smaller pictures (logos, stamps, icons) on a text page are not OCR'd."""


def _ocr_pictures(
    page: pdfium.PdfPage,
    i: int,
    location: str,
    budget: Budget,
    not_ocred: list[str],
    defects: list[str],
    read: list[str],
) -> list[TextChunk]:
    limits = budget.ocr
    if limits is None or ocr.unavailable(limits.languages):
        return []
    chunks: list[TextChunk] = []
    pictures = page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3)
    for k, picture in enumerate(pictures, 1):
        w, h = picture.get_px_size()
        if w * h < PICTURE_MIN_PIXELS or min(w, h) < 32:
            continue
        where = f"page {i + 1} picture {k}"
        if w * h > limits.max_pixels:
            not_ocred.append(f"{where}: {w}x{h} pixels exceeds [ocr] max_pixels")
            continue
        why = ocr.page_budget_left(budget)
        if why:
            not_ocred.append(f"{where} not read ({why})")
            break
        try:
            bitmap = picture.get_bitmap(render=False)
            try:
                image = bitmap.to_pil()
            finally:
                bitmap.close()
        except Exception as exc:
            defects.append(f"{where}: not decoded ({type(exc).__name__})")
            continue
        budget.ocr_pages += 1
        got = ocr.read_page(image, limits)
        if got is None:
            not_ocred.append(f"{where} not read ({ocr.time_up(budget)})")
            break
        read.append(where)
        if got.text.strip():
            chunks.append(
                TextChunk(text=got.text, location=f"{location}!p{i + 1}!picture{k} (ocr)")
            )
    return chunks


OCR_BELOW_CHARS = 32
"""A page with an image and fewer characters than this in its text layer is
OCR'd: a scan, perhaps with a stamped date or a page number on top."""


def _has_image(page: pdfium.PdfPage) -> bool:
    return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3))


def _ocr_page(
    page: pdfium.PdfPage,
    i: int,
    budget: Budget,
    scanned: dict[int, str],
    not_ocred: list[str],
    skipped: list[int],
) -> None:
    limits = budget.ocr
    off = "ocr disabled" if limits is None else ocr.unavailable(limits.languages)
    if off:
        # Like an image without OCR (status image): said, not held.  Only a budget
        # that runs out while OCR works makes the file partial.
        skipped.append(i)
        return
    assert limits is not None
    why = ocr.page_budget_left(budget)
    if why:
        not_ocred.append(f"page {i + 1}: scanned page not read ({why})")
        return
    width, height = page.get_size()
    scale = limits.pdf_dpi / 72
    pixels = width * scale * height * scale
    if pixels > limits.max_pixels:  # a poster-sized page: fewer dpi, not more memory
        scale *= (limits.max_pixels / pixels) ** 0.5
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        image = bitmap.to_pil()
    finally:
        bitmap.close()
    budget.ocr_pages += 1
    got = ocr.read_page(image, limits)
    if got is None:
        not_ocred.append(f"page {i + 1}: scanned page not read ({ocr.time_up(budget)})")
        return
    scanned[i] = got.text


def _ocr_chunks(scanned: dict[int, str], location: str) -> list[TextChunk]:
    return [
        TextChunk(text=t, location=f"{location}!p{i + 1} (ocr)")
        for i, t in sorted(scanned.items())
        if t.strip()
    ]


def _weight(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def _page_chunks(texts: dict[int, str], location: str) -> list[TextChunk]:
    return [
        TextChunk(text=t, location=f"{location}!p{i + 1}")
        for i, t in sorted(texts.items())
        if t.strip()
    ]


# Non-embedded Latin fonts always map through standard encodings; their
# "empty" text objects are whitespace.  Anything else that yields no text is a
# CJK font pdfium could not map.
_LATIN_FONT = re.compile(
    rb"times|arial|helvetica|courier|symbol|zapf|calibri|cambria|verdana|georgia|tahoma|"
    rb"segoe|century|garamond|bookman|palatino|trebuchet|consolas|wingdings",
    re.IGNORECASE,
)


def _has_unmapped_text(page: pdfium.PdfPage, textpage: pdfium.PdfTextPage) -> bool:
    """True when a text object in a non-embedded, non-Latin font gives pdfium no characters."""
    name = ctypes.create_string_buffer(128)
    for obj in page.get_objects(max_depth=2):
        if obj.type != pdfium_c.FPDF_PAGEOBJ_TEXT:
            continue
        if pdfium_c.FPDFTextObj_GetText(obj.raw, textpage.raw, None, 0) > 2:
            continue  # more than the UTF-16 terminator: pdfium mapped it
        font = pdfium_c.FPDFTextObj_GetFont(obj.raw)
        if not font or pdfium_c.FPDFFont_GetIsEmbedded(font):
            continue
        pdfium_c.FPDFFont_GetBaseFontName(font, name, 128)
        if not _LATIN_FONT.search(name.value):
            return True
    return False


def _utf16(fn: object, *args: object) -> str:
    """Call a pdfium getter that fills a UTF-16LE buffer (two-call protocol)."""
    n = fn(*args, None, 0)  # type: ignore[operator]
    if n <= 2:
        return ""
    n = min(n, 1 << 20)
    buf = (ctypes.c_ushort * (n // 2))()
    fn(*args, buf, n)  # type: ignore[operator]
    return bytes(buf)[: n - 2].decode("utf-16-le", "replace")


def _annotations(page: pdfium.PdfPage, form: object, location: str) -> list[TextChunk]:
    chunks: list[TextChunk] = []
    count = pdfium_c.FPDFPage_GetAnnotCount(page.raw)
    form_raw = getattr(form, "raw", None)
    for k in range(min(count, 10_000)):
        annot = pdfium_c.FPDFPage_GetAnnot(page.raw, k)
        if not annot:
            continue
        try:
            subtype = pdfium_c.FPDFAnnot_GetSubtype(annot)
            if subtype == pdfium_c.FPDF_ANNOT_WIDGET and form_raw is not None:
                value = _utf16(pdfium_c.FPDFAnnot_GetFormFieldValue, form_raw, annot)
                if value.strip():
                    name = _utf16(pdfium_c.FPDFAnnot_GetFormFieldName, form_raw, annot)
                    chunks.append(
                        TextChunk(
                            text=value, location=f"{location}!field", field_label=name or None
                        )
                    )
            else:
                contents = _utf16(pdfium_c.FPDFAnnot_GetStringValue, annot, b"Contents")
                if contents.strip():
                    chunks.append(TextChunk(text=contents, location=f"{location}!annotation"))
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annot)
    return chunks


def _drawn_annotations(doc: pdfium.PdfDocument, i: int, page: pdfium.PdfPage, text: str) -> str:
    """The lines a page's annotations add as they are drawn: a stamp, a text box whose
    /Contents is empty, a form field shown without a value.  Their appearance streams
    are merged into the page (``FPDFPage_Flatten``, this copy of the document only) and
    the page read again."""
    if pdfium_c.FPDFPage_GetAnnotCount(page.raw) <= 0:
        return ""
    if pdfium_c.FPDFPage_Flatten(page.raw, 0) != pdfium_c.FLATTEN_SUCCESS:
        return ""
    flat = doc[i]  # the flattened content is seen by the page loaded again
    try:
        textpage = flat.get_textpage()
        try:
            return _with_labels(_CLEAN.sub("", textpage.get_text_range()), text)
        finally:
            textpage.close()
    finally:
        flat.close()


def _with_labels(shown: str, text: str) -> str:
    """The lines of ``shown`` that ``text`` lacks, each after the line drawn before it
    when that is page text without digits: a form field's value (621498320257) keeps
    the label printed beside it (個人番号), as on the filled-in form (a content review
    of 3 Dec 2026: the value alone was ``low``).  Only label lines are repeated, so
    no number counts twice."""
    seen = set(text.split("\n"))
    lines = shown.split("\n")
    out: list[str] = []
    for k, line in enumerate(lines):
        if line in seen:
            continue
        prev = lines[k - 1] if k else ""
        if prev.strip() and prev in seen and not any(ch.isdigit() for ch in prev):
            out.append(prev)
        out.append(line)
    return "\n".join(out)


def _outline(doc: pdfium.PdfDocument) -> str:
    """Bookmark titles, shown in the viewer's sidebar."""
    try:
        return "\n".join(t for b in doc.get_toc() if (t := b.get_title()))
    except Exception:  # a broken outline is no reason to lose the pages
        return ""


def _attachments(doc: pdfium.PdfDocument, budget: Budget) -> list[Member]:
    members: list[Member] = []
    for k in range(doc.count_attachments()):
        budget.check_time()
        att = doc.get_attachment(k)
        name = att.get_name() or f"attachment{k + 1}"
        payload = bytes(att.get_data())
        if len(payload) > budget.max_file_bytes:
            raise BudgetExceeded(AttachmentStatus.TOO_LARGE, "embedded file exceeds max_file_bytes")
        check_member_count(budget, len(members))
        members.append(Member(name, payload))
    return members


# --- pdfminer.six -----------------------------------------------------------------------------


def _pdfminer_pages(
    data: bytes, pages: set[int] | None, budget: Budget, defects: list[str]
) -> dict[int, str]:
    from pdfminer.converter import TextConverter
    from pdfminer.layout import LAParams
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    out: dict[int, str] = {}
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)))
        manager = PDFResourceManager(caching=True)
        sink = io.StringIO()
        device = TextConverter(manager, sink, laparams=LAParams(detect_vertical=True))
        interpreter = PDFPageInterpreter(manager, device)
        for i, page in enumerate(PDFPage.create_pages(document)):
            if pages is not None and i not in pages:
                continue
            budget.check_time()
            sink.seek(0)
            sink.truncate()
            try:
                interpreter.process_page(page)
            except BudgetExceeded:
                raise
            except Exception as exc:
                defects.append(f"page {i + 1}: pdfminer failed ({type(exc).__name__})")
                continue
            out[i] = sink.getvalue().replace("\x0c", "")
            if pages is not None and len(out) == len(pages):
                break
        device.close()
    except BudgetExceeded:
        raise
    except Exception as exc:
        name = type(exc).__name__
        if "Password" in name or "Encrypt" in name:
            raise _Encrypted() from exc
        defects.append(f"pdfminer could not parse it ({name})")
    return out


class _Encrypted(Exception):
    pass


def _pdfminer_only(data: bytes, location: str, budget: Budget, why: str) -> Extracted:
    from dlp.extract.registry import safe_reason

    defects: list[str] = [safe_reason(Exception(why))]
    try:
        texts = _pdfminer_pages(data, None, budget, defects)
    except _Encrypted:
        return _encrypted()
    chunks = _page_chunks(texts, location)
    if not texts:
        return Extracted(
            kind="pdf", status=AttachmentStatus.ERROR, detail="damaged PDF", defects=tuple(defects)
        )
    return Extracted(
        kind="pdf",
        status=AttachmentStatus.SCANNED,
        chunks=tuple(chunks),
        defects=tuple(defects),
    )
