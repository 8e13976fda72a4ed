"""Leading zeros that only a cell's number format shows (xlsx).

Japanese HR sheets keep a My Number such as 012345678901 in a numeric cell
formatted ``000000000000`` (or ``0000-0000-0000``): Excel stores 12345678901
and *displays* twelve digits.  calamine returns the stored value and no
format, so without this the detector would see 11 digits and miss the number.

Only when styles.xml defines such a zero-padding format is anything done: the
style ids that use it are collected, and one regex pass over each sheet finds
the cells carrying them (``<c r="B5" s="3"``, the attribute order every writer
uses).  The result maps sheet name → {(row, column): width}, 0-based.
"""

from __future__ import annotations

import posixpath
import re
import zipfile

from lxml import etree

from dlp.extract import zipparts
from dlp.extract.base import Budget

_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_PARSER = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, recover=True)
_SMALL = 16 << 20

Pads = dict[str, dict[tuple[int, int], int]]


def zero_width(code: str) -> int:
    """Digits a format pads to: "000000000000" → 12, "0000-0000-0000" → 12, "0.00" → 0."""
    code = code.split(";", 1)[0]
    code = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]|[ \-_()]', "", code)
    return len(code) if len(code) >= 2 and set(code) == {"0"} else 0


def _xml(zf: zipfile.ZipFile, name: str, budget: Budget) -> etree._Element | None:
    if name not in zf.namelist():
        return None
    return etree.fromstring(zipparts.read_capped(zf, zf.getinfo(name), _SMALL, budget), _PARSER)


def _padded_styles(zf: zipfile.ZipFile, budget: Budget) -> dict[int, int]:
    styles = _xml(zf, "xl/styles.xml", budget)
    if styles is None:
        return {}
    widths: dict[str, int] = {}
    for fmt in styles.iter(f"{_S}numFmt"):
        w = zero_width(fmt.get("formatCode", ""))
        if w:
            widths[fmt.get("numFmtId", "")] = w
    if not widths:
        return {}
    out: dict[int, int] = {}
    xfs = styles.find(f"{_S}cellXfs")
    for index, xf in enumerate(xfs if xfs is not None else []):
        w = widths.get(xf.get("numFmtId", ""), 0)
        if w:
            out[index] = w
    return out


def _sheet_parts(zf: zipfile.ZipFile, budget: Budget) -> list[tuple[str, str]]:
    book = _xml(zf, "xl/workbook.xml", budget)
    rels = _xml(zf, "xl/_rels/workbook.xml.rels", budget)
    if book is None or rels is None:
        return []
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{_REL}Relationship")}
    out: list[tuple[str, str]] = []
    for sheet in book.iter(f"{_S}sheet"):
        target = targets.get(sheet.get(f"{_R}id"), "")
        if not target:
            continue
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
        out.append((sheet.get("name", ""), part))
    return out


def _col_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n - 1


def zero_padded_cells(zf: zipfile.ZipFile, budget: Budget) -> Pads:
    styles = _padded_styles(zf, budget)
    if not styles:
        return {}
    ids = b"|".join(str(i).encode() for i in sorted(styles))
    cell = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})" s="(' + ids + rb')"')
    pads: Pads = {}
    for sheet_name, part in _sheet_parts(zf, budget):
        if part not in zf.namelist():
            continue
        found: dict[tuple[int, int], int] = {}
        carry = b""
        with zf.open(part) as fh:
            while True:
                block = fh.read(4 << 20)
                if not block:
                    break
                budget.check_time()
                buf = carry + block
                for m in cell.finditer(buf):
                    found[(int(m.group(2)) - 1, _col_index(m.group(1)))] = styles[int(m.group(3))]
                carry = buf[-48:]
        if found:
            pads[sheet_name] = found
    return pads
