"""Plain text, CSV and TSV: bytes → text chunks, with the charsets Japanese mail uses.

``decode_text`` is also what ``dlp.mime`` uses for bodies and headers, so a
charset quirk is handled in one place:

* Shift_JIS labels are read as CP932 (①, ㈱ and the NEC/IBM extensions that
  Windows writes under the Shift_JIS name);
* ISO-2022-JP is read strictly first, then with the CP50220 extensions
  (half-width katakana, NEC row 13, IBM extensions) by our own small decoder;
* EUC-JP, UTF-8, UTF-16/32 with BOM;
* a missing or wrong label is detected (ISO-2022-JP escapes, strict UTF-8,
  then ``charset-normalizer``).  A declared single-byte Western charset on
  bytes that are valid UTF-8 or Japanese multi-byte text counts as wrong.

Tables are one chunk per column (text = the column's cells joined by "\\n",
``field_label`` = its header cell) so a header such as 個人番号 is context for
every number under it.
"""

from __future__ import annotations

import codecs
import csv
import functools
import html
import io
import operator
import re
from collections.abc import Callable

from dlp.extract.base import Budget, Extracted
from dlp.extract.tables import column_name
from dlp.model import AttachmentStatus, TextChunk

__all__ = ["column_name", "decode_text", "extract", "extract_text", "table_chunks"]

_SJIS_LABELS = frozenset(
    {
        "shift_jis",
        "shift-jis",
        "sjis",
        "s_jis",
        "x-sjis",
        "x_sjis",
        "ms_kanji",
        "csshiftjis",
        "shift_jisx0213",
        "shift_jis_2004",
        "windows-31j",
        "cp932",
        "ms932",
        "x-ms-cp932",
        "mskanji",
    }
)
_ISO2022_LABELS = frozenset(
    {
        "iso-2022-jp",
        "iso2022jp",
        "iso2022_jp",
        "csiso2022jp",
        "iso-2022-jp-1",
        "iso-2022-jp-2",
        "iso-2022-jp-3",
        "iso-2022-jp-2004",
        "iso-2022-jp-ms",
        "cp50220",
        "cp50221",
        "cp50222",
        "jis",
    }
)
_EUC_LABELS = frozenset(
    {"euc-jp", "euc_jp", "eucjp", "x-euc-jp", "x-euc", "cseucpkdfmtjapanese", "ujis", "cp51932"}
)
# Labels that any byte string "decodes" under, so success proves nothing.
_PERMISSIVE = frozenset(
    {
        "us-ascii",
        "ascii",
        "iso-8859-1",
        "iso8859-1",
        "latin1",
        "latin-1",
        "windows-1252",
        "cp1252",
        "iso-8859-15",
        "unknown-8bit",
        "x-unknown",
        "8bit",
        "default",
    }
)
_ISO2022_ESC = re.compile(rb"\x1b(?:\$[@B]|\$\([DOPQ]|\([BJI])")
_HIGH = re.compile(rb"[\x80-\xff]")


def decode_text(data: bytes, declared_charset: str | None = None) -> tuple[str, str]:
    """Decode ``data``; return (text, name of the charset actually used).  Never raises."""
    if not data:
        return "", (declared_charset or "ascii").lower()
    bom = _bom(data)
    if bom:
        return data.decode(bom, "replace"), bom.replace("-sig", "")
    wide = unmarked_wide(data)
    if wide:
        return data.decode(wide, "replace"), wide
    # A NUL, an end-of-file byte, a bell: no editor shows them, and one of them must
    # not hide the text around it (what Notepad and Excel show is read).  One pass
    # finds and drops them.
    data = data.translate(None, STRAY_CONTROLS)
    label = (declared_charset or "").strip().strip('"').lower()
    if label and label not in _PERMISSIVE:
        got = _decode_declared(data, label)
        if got is not None:
            return got
    elif label in _PERMISSIVE and _HIGH.search(data) is None and b"\x1b" not in data:
        return data.decode("ascii"), label or "ascii"
    return _detect(data, label)


STRAY_CONTROLS = bytes(b for b in range(0x20) if b not in (9, 10, 12, 13, 0x1B))
"""C0 control bytes no text needs (tab, line ends, form feed and ISO-2022's escape are
kept)."""


def unmarked_wide(data: bytes) -> str:
    """``utf-16-le``/``-be`` or ``utf-32-le``/``-be`` for text in them without a byte-order
    mark, else "".  Told by where the NULs fall: ASCII characters (digits, punctuation,
    line ends) in UTF-16 have one on every other byte, in UTF-32 three in four."""
    sample = data[:8192]
    n = len(sample) // 4 * 4
    if n < 8 or b"\x00" not in sample:
        return ""
    sample = sample[:n]
    lanes = [sample[i::4].count(0) for i in range(4)]
    quarter = n // 4
    # UTF-32: the top byte of every character is 0, the next one nearly always (only
    # characters beyond U+FFFF set it)
    if lanes[3] == quarter and lanes[2] >= 0.9 * quarter and lanes[0] < 0.2 * quarter:
        return "utf-32-le"
    if lanes[0] == quarter and lanes[1] >= 0.9 * quarter and lanes[3] < 0.2 * quarter:
        return "utf-32-be"
    odd, even = lanes[1] + lanes[3], lanes[0] + lanes[2]
    half = n // 2
    if odd >= 0.2 * half and even <= 0.02 * half:
        return "utf-16-le"
    if even >= 0.2 * half and odd <= 0.02 * half:
        return "utf-16-be"
    return ""


def _bom(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return ""


def _decode_declared(data: bytes, label: str) -> tuple[str, str] | None:
    """Decode strictly with the declared charset; None if the bytes disagree."""
    if label in _ISO2022_LABELS:
        # isascii: a C check, where findall walks 64 KB in the regex engine (7bit
        # mail, which ISO-2022-JP is, has no 8-bit byte at all).
        high = 0 if data.isascii() else len(_HIGH.findall(data, 0, 1 << 16))
        if high and (high > max(1, len(data) // 1000) or not _ISO2022_ESC.search(data)):
            return None  # 8-bit text: not ISO-2022-JP whatever the label says
        # A stray 8-bit byte or two in real ISO-2022-JP (a relay's damage):
        # lose those bytes, not the part.
        return decode_iso2022jp(_HIGH.sub(b"?", data) if high else data), "iso-2022-jp"
    if label in _SJIS_LABELS:
        codec = "cp932"
    elif label in _EUC_LABELS:
        codec = "euc_jp"
    else:
        try:
            codec = codecs.lookup(label).name
        except LookupError:
            return None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        # One bad byte (Postfix folding a line inside a character) must cost
        # that character, not the part: keep the label when nearly all of the
        # text reads under it.  Otherwise it is mislabelled: detect.
        mostly = _mostly(data, codec, ratio=4, least=1)
        if mostly is None or (codec in ("cp932", "euc_jp") and not _looks_japanese(mostly)):
            return None
        return mostly, codec
    if codec in ("cp932", "euc_jp") and _HIGH.search(data) and not _looks_japanese(text):
        score = _japanese_score(text)
        if score <= 0:
            # EUC-JP bytes also "decode" as CP932 (as half-width katakana soup):
            # prefer the other reading if it gives real Japanese (with kana).
            other = "euc_jp" if codec == "cp932" else "cp932"
            try:
                alt = data.decode(other)
            except UnicodeDecodeError:
                return text, codec
            if _HIRAGANA.search(alt) and _japanese_score(alt) > score:
                return alt, other
    return text, codec


_KANA_KANJI = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uff01-\uff5e\u3000-\u303f]")
_HIRAGANA = re.compile(r"[\u3041-\u3093]")
_HALFWIDTH = re.compile(r"[\uff61-\uff9f]")
_COMMON = re.compile(r"[\u3041-\u3093\u30a1-\u30f3\u3001\u3002]")


def _japanese_score(text: str) -> int:
    """Positive when ``text`` reads as Japanese rather than as mis-decoded bytes.

    Judged on the first 64 Ki characters: enough to tell, and a 20 MB body
    does not cost three full passes."""
    text = text[:65536]
    return (
        len(_KANA_KANJI.findall(text))
        + 2 * len(_COMMON.findall(text))
        - 3 * len(_HALFWIDTH.findall(text))
    )


def _looks_japanese(text: str) -> bool:
    """``_japanese_score(text) > 0``, mostly without counting: with no half-width
    katakana the score is positive exactly when one kana, kanji or Japanese
    punctuation character is there (counting them took ~0.2 ms per 8 KB)."""
    text = text[:65536]
    if _HALFWIDTH.search(text) is None:
        return _KANA_KANJI.search(text) is not None
    return _japanese_score(text) > 0


def _detect(data: bytes, label: str) -> tuple[str, str]:
    if _HIGH.search(data) is None:
        if _ISO2022_ESC.search(data):
            return decode_iso2022jp(data), "iso-2022-jp"
        return data.decode("ascii"), "ascii"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # UTF-8 with a damaged character or two: nothing else reads such bytes
    # strictly, and a guess would lose the rest.  Unlabelled, so ask for much
    # valid UTF-8 around the damage (short CP932 strings never qualify).
    mostly = _mostly(data, "utf-8", ratio=10, least=8)
    if mostly is not None:
        return mostly, "utf-8"
    # Japanese multi-byte: whichever of CP932 / EUC-JP reads the bytes strictly
    # and looks more like Japanese (EUC-JP read as CP932 turns into half-width
    # katakana soup, CP932 read as EUC-JP fails or yields rare kanji).
    best: tuple[int, str, str] | None = None
    only: tuple[str, str] | None = None  # the first reading, scored only if a second one comes
    # euc_jis_2004 also holds the NEC/IBM extensions Windows writes as EUC-JP.
    for codec in ("cp932", "euc_jp", "euc_jis_2004"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if best is None and only is None:
            only = (text, codec)
            continue
        if only is not None:
            best = (_japanese_score(only[0]), *only)
            only = None
        score = _japanese_score(text)
        if best is None or score > best[0]:
            best = (score, text, codec)
    if only is not None and _looks_japanese(only[0]):
        return only  # the one reading: taken if it is Japanese at all, as best[0] > 0 is
    if best is not None and best[0] > 0:
        return best[1], best[2]
    guess = _normalizer_guess(data)
    if guess:
        try:
            return data.decode(guess), guess
        except (UnicodeDecodeError, LookupError):
            pass
    # Last resort: CP932 with replacement keeps ASCII digits and most Japanese.
    for codec in ("cp932", "euc_jp"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    if label in _PERMISSIVE and label:
        try:
            return data.decode(codecs.lookup(label).name, "replace"), codecs.lookup(label).name
        except LookupError:
            pass
    return data.decode("cp932", "replace"), "cp932"


def _mostly(data: bytes, codec: str, *, ratio: int, least: int) -> str | None:
    """``data`` decoded with bad bytes replaced, if at least ``ratio`` valid
    non-ASCII characters (and ``least`` in all) stand beside each replacement."""
    text = data.decode(codec, "replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    if good < least or good < ratio * bad:
        return None
    return text


def _normalizer_guess(data: bytes) -> str:
    try:
        from charset_normalizer import from_bytes

        # A 64 KiB sample is plenty to tell encodings apart and keeps it fast.
        best = from_bytes(data[:65536], steps=5, chunk_size=512, threshold=0.3).best()
    except Exception:
        return ""
    if best is None:
        return ""
    enc = str(best.encoding).lower()
    # The normaliser names Shift_JIS but Windows writes CP932.
    return "cp932" if enc in {"shift_jis", "shift_jis_2004", "shift_jisx0213"} else enc


# --- ISO-2022-JP with CP50220 extensions ---------------------------------------------------------

_ESC_SEQ = re.compile(rb"\x1b(\$[@B]|\$\([DOPQ]|\([BJI]|\$A|\.A|\.F|N.)")


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP as Microsoft's CP50220 reads it.

    Python's ``iso2022_jp`` refuses NEC row 13 (①, ㈱, №) and half-width
    katakana (ESC ( I, SO/SI), both common in mail from Windows clients.  Try it
    strictly; on failure convert each JIS X 0208 run to Shift_JIS bytes and read
    them as CP932, which holds those extensions."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("iso2022_jp_ext")
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    mode = "ascii"
    pos = 0
    for m in _ESC_SEQ.finditer(data):
        out.append(_decode_run(data[pos : m.start()], mode))
        seq = m.group(1)
        if seq in (b"$@", b"$B"):
            mode = "jis0208"
        elif seq == b"(I":
            mode = "kana"
        elif seq == b"$(D":
            mode = "jis0212"
        elif seq in (b"$(O", b"$(P", b"$(Q"):
            mode = "jis0213"
        else:
            mode = "ascii"
        pos = m.end()
    out.append(_decode_run(data[pos:], mode))
    return "".join(out)


def _decode_run(run: bytes, mode: str) -> str:
    if not run:
        return ""
    if mode == "ascii":
        return _decode_shifted(run)
    if mode == "kana":
        return bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in run).decode("cp932", "replace")
    if mode == "jis0212":
        buf = bytearray()
        for i in range(0, len(run) - 1, 2):
            buf += bytes((0x8F, run[i] | 0x80, run[i + 1] | 0x80))
        return buf.decode("euc_jp", "replace")
    if mode == "jis0213":
        return bytes(b | 0x80 for b in run).decode("euc_jis_2004", "replace")
    # JIS X 0208 (and NEC/IBM rows): convert to Shift_JIS, read as CP932.
    buf = bytearray()
    text: list[str] = []
    i = 0
    n = len(run)
    while i < n:
        j1 = run[i]
        if j1 in (0x0A, 0x0D):  # a line end inside a kanji run: keep it, stay in mode
            text.append(bytes(buf).decode("cp932", "replace"))
            buf.clear()
            text.append(chr(j1))
            i += 1
            continue
        if i + 1 >= n:
            break
        j2 = run[i + 1]
        i += 2
        s1 = ((j1 - 0x21) >> 1) + 0x81
        if s1 > 0x9F:
            s1 += 0x40
        if j1 & 1:
            s2 = j2 + 0x1F
            if s2 >= 0x7F:
                s2 += 1
        else:
            s2 = j2 + 0x7E
        if 0x81 <= s1 <= 0xFC and 0x40 <= s2 <= 0xFC:
            buf += bytes((s1, s2))
        else:
            buf += b"?"
    text.append(bytes(buf).decode("cp932", "replace"))
    return "".join(text)


def _decode_shifted(run: bytes) -> str:
    """ASCII, with SO/SI half-width katakana (CP50221/2 style) if present."""
    if b"\x0e" not in run:
        return run.decode("ascii", "replace")
    res: list[str] = []
    shifted = False
    start = 0
    for i, b in enumerate(run):
        if b in (0x0E, 0x0F):
            seg = run[start:i]
            res.append(_decode_run(seg, "kana") if shifted else seg.decode("ascii", "replace"))
            shifted = b == 0x0E
            start = i + 1
    seg = run[start:]
    res.append(_decode_run(seg, "kana") if shifted else seg.decode("ascii", "replace"))
    return "".join(res)


# --- extraction ----------------------------------------------------------------------------------

_TABLE_EXT = (".csv", ".tsv", ".tab")


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    """Registry entry point for kinds ``text`` and ``csv``."""
    return extract_text(data, filename, location, budget, None)


def extract_text(
    data: bytes, filename: str, location: str, budget: Budget, charset: str | None
) -> Extracted:
    """As ``extract``, with the charset the MIME part declared (if any)."""
    budget.check_time()
    text, used = decode_text(data, charset)
    if text[:64].lstrip().upper().startswith(("BEGIN:VCALENDAR", "BEGIN:VCARD")):
        text = _unfolded(text)
    elif "&#" in text and text.lstrip()[:1] == "<":
        # XML (or markup read as text) shows &#54; as 6: read it as shown.
        text = html.unescape(text)
    if filename.lower().endswith(_TABLE_EXT) or _looks_tabular(text):
        chunks = table_chunks(
            text,
            location,
            delimiter="\t" if _tab_separated(filename, text) else ",",
            keywords=budget.keywords,
        )
        if chunks:
            return Extracted(
                kind="csv", status=AttachmentStatus.SCANNED, chunks=chunks, detail=f"charset {used}"
            )
    return Extracted(
        kind="text",
        status=AttachmentStatus.SCANNED,
        chunks=(TextChunk(text=text, location=location),),
        detail=f"charset {used}",
    )


_FOLD = re.compile(r"\r?\n[ \t]")
_ICS_ESCAPE = re.compile(r"\\([nN,;\\])")


def _unfolded(text: str) -> str:
    """An iCalendar or vCard text as a calendar or an address book shows it (RFC 5545
    3.1, RFC 6350 3.2): a line break followed by a space or tab is no break (a long
    DESCRIPTION is folded every 75 octets, through a number as anywhere), and
    ``\\n`` ``\\,`` ``\\;`` are a line break and the characters themselves."""
    return _ICS_ESCAPE.sub(
        lambda m: "\n" if m.group(1) in "nN" else m.group(1), _FOLD.sub("", text)
    )


def _tab_separated(filename: str, text: str) -> bool:
    if filename.lower().endswith((".tsv", ".tab")):
        return True
    first = text[:4096].split("\n", 1)[0]
    return first.count("\t") > first.count(",")


def _looks_tabular(text: str) -> bool:
    lines = [ln for ln in text[:8192].splitlines()[:30] if ln.strip()]
    if len(lines) < 2:
        return False
    if len(text) > 8192:
        lines = lines[:-1]
    for sep in ("\t", ","):
        counts = [ln.count(sep) for ln in lines]
        if counts and counts[0] >= 1 and all(c == counts[0] for c in counts):
            return True
    return False


def table_chunks(
    text: str, location: str, delimiter: str = ",", keywords: tuple[str, ...] = ()
) -> tuple[TextChunk, ...]:
    """One chunk per column: the column's cells joined by newlines, labelled by
    its header cell (``dlp.extract.tables``: the header row need not be the first).

    Forms exported as tables put the label in the row, not the column
    (``個人番号,621498320257``).  A cell to the right of a short cell that names
    My Number becomes its own chunk (location ``…!B7``) with that label as its
    ``field_label``, and is left out of its column's chunk so it counts once.
    ``keywords``: ``[scan] extra_keywords``, which name such a cell too."""
    from dlp.extract.forms import apply, keyword_matcher

    has_keyword = keyword_matcher(keywords)
    # Ragged rows are padded to the widest row so far, so one very wide row
    # among many short ones would make (rows x widest) cells out of a few KB.
    max_cells = max(_CELLS_PER_CHAR * len(text), _MIN_CELL_CAP)
    named = has_keyword(text)
    try:
        if named:
            read = _columns_and_labelled(text, location, delimiter, max_cells, has_keyword)
        else:
            read = _columns(text, delimiter, max_cells), []
    except csv.Error:
        return ()
    columns, labelled = read
    if columns is None:
        return ()  # not a table: read as plain text
    # The shared table helper finds the header row (office exports often start
    # with a title and a date line) and labels each column the same way the
    # spreadsheet extractors do.
    from dlp.extract.tables import columns_to_chunks

    # A number typed 4-4-4 (or one digit a cell) under its heading or behind its
    # label is joined as in a spreadsheet (forms.py; a CSV has no merged cells, so
    # a heading sits over the first box with empty cells right of it).  The
    # labelled cells are out of ``columns`` already: nothing is read twice.
    prepare = functools.partial(apply, keywords=keywords) if named else None
    return (*columns_to_chunks(columns, location, prepare=prepare), *labelled)


def _columns(text: str, delimiter: str, max_cells: int) -> list[list[str]] | None:
    """The columns of a table none of whose rows can hold a label (the text names
    no My Number): every row padded on the right to the widest, then transposed.
    The same columns as ``_columns_and_labelled`` builds row by row, from C loops
    (a 1.4 MB CSV: 70 → 25 ms).  None past ``max_cells``: (rows so far) x (widest
    so far) is largest at the last row, so one check at the end is the same test."""
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=False))
    widths = set(map(len, rows))
    width = max(widths, default=0)
    if len(rows) * width > max_cells:
        return None
    if len(widths) > 1:
        rows = [row + [""] * (width - len(row)) for row in rows]
    return [list(map(operator.itemgetter(j), rows)) for j in range(width)]


def _columns_and_labelled(
    text: str, location: str, delimiter: str, max_cells: int, has_keyword: Callable[[str], bool]
) -> tuple[list[list[str]] | None, list[TextChunk]]:
    """The columns, and the cells right of a row label as chunks of their own."""
    columns: list[list[str]] = []
    labelled: list[TextChunk] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=False)
    for r, row in enumerate(reader):
        if (r + 1) * max(len(columns), len(row)) > max_cells:
            return None, []
        label = _row_label(row, has_keyword)
        here: list[TextChunk] = []
        for j, cell in enumerate(row):
            if len(columns) <= j:
                columns.append([""] * r)  # a ragged row: earlier rows had no such cell
            if label is not None and j > label[0] and _HAS_DIGIT.search(cell):
                here.append(TextChunk(cell, f"{location}!{column_name(j)}{r + 1}", label[1]))
                cell = ""
            columns[j].append(cell)
        labelled.extend(_split_number(here))
        for col in columns[len(row) :]:
            col.append("")
    return columns, labelled


_CELLS_PER_CHAR = 8
_MIN_CELL_CAP = 1_000_000
"""A real table has at most one cell per character (each needs a separator);
``table_chunks`` gives up past eight per character, or a million cells."""

_HAS_DIGIT = re.compile(r"\d")
_LABEL_MAX = 40
"""A row label is a short cell; a long one is prose, not a field name."""


_QUAD = re.compile(r"\s*\d{4}\s*")
_ONE = re.compile(r"\s*\d\s*")


def _split_number(cells: list[TextChunk]) -> list[TextChunk]:
    """The labelled cells of one row; a number typed into boxes (4 + 4 + 4 digits
    over three cells, or one digit in each of twelve) becomes one chunk."""
    n = len(cells)
    if (n == 3 and all(_QUAD.fullmatch(c.text) for c in cells)) or (
        n == 12 and all(_ONE.fullmatch(c.text) for c in cells)
    ):
        sep = " " if n == 3 else ""
        joined = sep.join(c.text.strip() for c in cells)
        return [TextChunk(joined, cells[0].location, cells[0].field_label)]
    return cells


def _row_label(row: list[str], has_keyword: Callable[[str], bool]) -> tuple[int, str] | None:
    """(index, text) of the first short cell in ``row`` naming My Number, if any."""
    if len(row) < 2 or not has_keyword("\t".join(row)):
        return None
    for k, cell in enumerate(row[:-1]):
        c = cell.strip()
        if c and len(c) <= _LABEL_MAX and not _HAS_DIGIT.search(c) and has_keyword(c):
            return k, c
    return None
