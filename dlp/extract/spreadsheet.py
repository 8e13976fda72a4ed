"""Workbooks (xlsx/xlsm, xlsb, xls, ods) via python-calamine: every sheet, every cell.

Why calamine: it parses in Rust and hands back typed cell values, about 9x
faster than openpyxl read-only (bench/RESULTS-extract.md), at the price of
holding the sheet in memory (its span is bounded first: cellguard.py; it runs
in a forked child: sandbox.py).  Numbers
come back as floats; a whole number is rendered as the integer the user typed
(``123456789018``, never ``1.23457E+11``), which is what the detector needs.

Output: one TextChunk per column (``<location>!<sheet>!<column letter>``) with
the column's heading as ``field_label`` (dlp/extract/tables.py).  Password
protected workbooks are tried with Excel's built-in "VelvetSweatshop" key
(used when a workbook is only write-protected, which Excel opens without a
prompt) and otherwise reported ``encrypted``.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import itertools
import re
import zipfile
from collections.abc import Sequence
from typing import Any

import python_calamine
from lxml import etree

from dlp.extract import cellguard, forms, opendoc, sandbox, xmltext, zeropad, zipparts
from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.extract.officecrypto import decrypt_default, is_encrypted_ole
from dlp.extract.ooxml import embedded_members, properties_chunks
from dlp.extract.tables import columns_to_chunks
from dlp.model import AttachmentStatus, TextChunk

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def render(value: object) -> str:
    """A cell value as the user sees it, whole numbers without exponent or ``.0``."""
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]
    if t is float:
        f: float = value  # type: ignore[assignment]
        if f.is_integer():
            return str(int(f))
        return repr(f)
    if t is bool:
        return "TRUE" if value else "FALSE"
    if t is int:
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if value is None:
        return ""
    return str(value)


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    kind = "xls" if data.startswith(_OLE_MAGIC) else _zip_kind(data)
    defects: list[str] = []
    extras: list[TextChunk] = []
    members: list[Member] = []
    pads: zeropad.Pads = {}
    if kind == "xls" and is_encrypted_ole(data):
        plain = decrypt_default(data)
        if plain is None:
            return Extracted(
                kind=kind, status=AttachmentStatus.ENCRYPTED, detail="password-protected workbook"
            )
        data = plain
        defects.append("decrypted with Excel's default password (write-protected workbook)")
    if kind != "xls":
        try:
            with zipparts.open_zip(data) as zf:
                zipparts.check_package(zf, budget)
                if kind == "xlsx":
                    cellguard.check_xlsx(zf, budget)
                    extras, members = _xlsx_extras(zf, location, budget)
                    pads = zeropad.zero_padded_cells(zf, budget)
                elif kind == "ods":
                    if opendoc.is_encrypted(zf, budget):
                        return Extracted(
                            kind=kind,
                            status=AttachmentStatus.ENCRYPTED,
                            detail="password-protected workbook",
                        )
                    cellguard.check_ods(zf, budget)
                    extras = _ods_extras(zf, location, budget)
        except BudgetExceeded:
            raise
        except Exception as exc:
            return Extracted(kind=kind, status=AttachmentStatus.ERROR, detail=_zip_error(exc))
    try:
        got = sandbox.run_isolated(_read_workbook, data, location, pads, budget, budget=budget)
    except sandbox.ParserCrashed as exc:
        return Extracted(
            kind=kind,
            status=AttachmentStatus.ERROR,
            chunks=tuple(extras),
            members=tuple(members),
            detail=str(exc),
            defects=tuple(defects),
        )
    chunks = [TextChunk(text, loc, label) for text, loc, label in got["chunks"]]
    defects.extend(got["defects"])
    return Extracted(
        kind=kind,
        status=AttachmentStatus(got["status"]),
        chunks=tuple(chunks + extras),
        members=tuple(members),
        detail=got["detail"],
        defects=tuple(defects),
    )


def _read_workbook(
    data: bytes, location: str, pads: zeropad.Pads, budget: Budget
) -> dict[str, Any]:
    """calamine's part, run in a forked child (sandbox.py): plain data out."""
    chunks: list[TextChunk] = []
    defects: list[str] = []

    def result(status: AttachmentStatus, detail: str = "") -> dict[str, Any]:
        return {
            "status": status.value,
            "detail": detail,
            "chunks": [[c.text, c.location, c.field_label] for c in chunks],
            "defects": defects,
        }

    try:
        wb = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except python_calamine.PasswordError:
        return result(AttachmentStatus.ENCRYPTED, "password-protected workbook")
    except Exception as exc:
        return result(AttachmentStatus.ERROR, _calamine_error(exc))
    sheet_names = list(wb.sheet_names)
    try:
        for index, name in enumerate(sheet_names):
            budget.check_time()
            try:
                sheet = wb.get_sheet_by_index(index)
                rows = sheet.to_python(skip_empty_area=True)
                first_row, first_col = sheet.start if rows and sheet.start else (0, 0)
                del sheet  # calamine's copy of the cells
            except Exception as exc:  # one damaged sheet must not hide the others
                defects.append(f"sheet {index + 1} unreadable: {_calamine_error(exc)}")
                continue
            columns = _columns(rows, first_col, budget)
            del rows  # peak memory: never the typed rows and the joined text at once
            _apply_pads(columns, pads.get(name, {}), first_row)
            chunks.extend(
                columns_to_chunks(
                    columns,
                    f"{location}!{name}",
                    prepare=functools.partial(forms.apply, keywords=budget.keywords),
                    title=name,
                    names_my_number=forms.keyword_matcher(budget.keywords),
                )
            )
            del columns
    except BudgetExceeded as exc:
        return result(exc.status, exc.detail)
    finally:
        wb.close()
    if any(ch.isdigit() for name in sheet_names for ch in name):
        # On every tab, read as a title is (a keyword in one heads the sheet's 番号 column).
        chunks.append(TextChunk("\n".join(sheet_names), f"{location} (sheet names)"))
    unreadable = [d for d in defects if "unreadable" in d]
    if unreadable:  # what is in that sheet was not scanned: policy must see it
        return result(AttachmentStatus.ERROR, unreadable[0])
    return result(AttachmentStatus.SCANNED)


def _apply_pads(columns: list[list[str]], pads: dict[tuple[int, int], int], first_row: int) -> None:
    """Restore the leading zeros a ``000000000000`` number format displays (zeropad.py)."""
    for (row, col), width in pads.items():
        r = row - first_row
        if 0 <= col < len(columns) and 0 <= r < len(columns[col]):
            value = columns[col][r]
            if value.isdigit() and len(value) < width:
                columns[col][r] = value.zfill(width)


def _columns(rows: Sequence[Sequence[object]], first_col: int, budget: Budget) -> list[list[str]]:
    """Rendered cells by column, padded with empty columns left of the used area."""
    if not rows:
        return []
    columns: list[list[str]] = [[] for _ in range(first_col)]
    str_, float_ = str, float
    # transpose in C; strings and whole floats (the bulk of any sheet) inline, no call
    for c, col in enumerate(itertools.zip_longest(*rows, fillvalue="")):
        if c % 16 == 0:
            budget.check_time()
        columns.append(
            [
                v
                if type(v) is str_
                else (str_(int(v)) if type(v) is float_ and v.is_integer() else render(v))
                for v in col
            ]
        )
    return columns


# Part names come from relationships and vary by writer (Excel: xl/comments1.xml;
# openpyxl: xl/comments/comment1.xml), so match on the file name.
_EXTRA_PART = re.compile(
    r"^xl/(?:[^/]+/)*(comments?\d*|threadedComment\d*|drawing\d+)\.xml$", re.IGNORECASE
)


def _xlsx_extras(
    zf: zipfile.ZipFile, location: str, budget: Budget
) -> tuple[list[TextChunk], list[Member]]:
    """Comments and text boxes (calamine reads cells only) and embedded files."""
    chunks: list[TextChunk] = []
    for info in zf.infolist():
        m = _EXTRA_PART.match(info.filename)
        if not m:
            continue
        budget.check_time()
        xml = zipparts.read_capped(zf, info, zipparts.xml_cap(budget), budget)
        root = xmltext.parse(xml)
        if root is None:
            continue
        text = xmltext.joined(xmltext.collect(root, xmltext.SHEET_EXTRAS, budget).text)
        if text:
            label = m.group(1).rsplit("/", 1)[-1]
            chunks.append(TextChunk(text=text, location=f"{location}!{label}"))
    for info in zf.infolist():
        if _SHEET_PART.match(info.filename):
            text = _printed_and_offered(zf, info, budget)
            if text:
                sheet = info.filename.rsplit("/", 1)[-1][:-4]
                chunks.append(TextChunk(text=text, location=f"{location}!{sheet} (header, lists)"))
    chunks.extend(properties_chunks(zf, zf.namelist(), location, budget))
    return chunks, embedded_members(zf, budget)


_SHEET_PART = re.compile(r"^xl/worksheets/[^/]+\.xml$", re.IGNORECASE)
_SHEET_TEXT = re.compile(rb"<(headerFooter|dataValidations)\b.*?</\1>", re.S)
_HEADER_CODES = re.compile(r'&(?:"[^"]*"|\d+|[A-Za-z])')
_SHOWN_ATTRIBUTES = ("promptTitle", "prompt", "errorTitle", "error")


def _printed_and_offered(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> str:
    """A sheet's page header and footer (printed on every page) and its data-validation
    lists and messages (offered in a drop-down, shown as a prompt): text calamine does
    not read.  Both sit after the cells, so the part is streamed and only they parsed."""
    found: list[bytes] = []
    tail = b""
    with zf.open(info) as part:
        while block := part.read(1 << 20):
            budget.check_time()
            buf = tail + block
            last = 0
            for m in _SHEET_TEXT.finditer(buf):
                found.append(m.group())
                last = m.end()
            tail = buf[max(last, len(buf) - 65536) :]
    lines: list[str] = []
    for snippet in found:
        root = xmltext.parse(snippet)
        if root is None:
            continue
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            lines += [el.get(a, "") for a in _SHOWN_ATTRIBUTES if el.get(a)]
            text = (el.text or "").strip()
            if not text:
                continue
            tag = el.tag.lower()
            # &C, &"MS Gothic,Bold", &12: the header's codes, not its text.
            is_header = "header" in tag or "footer" in tag
            lines.append(_HEADER_CODES.sub(" ", text) if is_header else text.strip('"'))
    return "\n".join(lines)


_ODF_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ODF_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_ODS_SHOWN = (f"{{{_ODF_OFFICE}}}annotation", f"{{{_ODF_DRAW}}}text-box")


def _ods_extras(zf: zipfile.ZipFile, location: str, budget: Budget) -> list[TextChunk]:
    """What a spreadsheet shows besides its cells, which calamine reads alone: comments
    and text boxes (content.xml, streamed: it holds every cell too), and the page headers
    and footers (styles.xml)."""
    chunks: list[TextChunk] = []
    names = set(zf.namelist())
    if "content.xml" in names:
        lines: list[str] = []
        with zf.open("content.xml") as part:
            for _, el in etree.iterparse(
                part, events=("end",), tag=_ODS_SHOWN, resolve_entities=False, no_network=True
            ):
                text = " ".join(t.strip() for t in el.itertext() if t.strip())
                if text:
                    lines.append(text)
                el.clear()
                budget.check_time()
        if lines:
            chunks.append(TextChunk("\n".join(lines), f"{location}!comments, text boxes"))
    if "styles.xml" in names:
        xml = zipparts.read_capped(zf, zf.getinfo("styles.xml"), zipparts.xml_cap(budget), budget)
        root = xmltext.parse(xml)
        if root is not None:
            text = xmltext.joined(xmltext.collect(root, xmltext.OPENDOC, budget).text)
            if text:
                chunks.append(TextChunk(text, f"{location}!headers, footers"))
    return chunks


def _zip_kind(data: bytes) -> str:
    if data[30:38] == b"mimetype":
        return "ods"
    try:
        with zipparts.open_zip(data) as zf:
            names = set(zf.namelist())
    except Exception:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "content.xml" in names:
        return "ods"
    return "xlsx"


def _zip_error(exc: Exception) -> str:
    return f"damaged ZIP package ({type(exc).__name__})"


def _calamine_error(exc: Exception) -> str:
    # calamine messages name XML positions, never cell contents; keep them short.
    from dlp.extract.registry import safe_reason

    return safe_reason(exc, limit=100)
