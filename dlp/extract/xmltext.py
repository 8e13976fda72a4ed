"""Text out of office XML (WordprocessingML, DrawingML, OpenDocument) without a DOM library.

One walker serves docx, pptx, odt and odp: it knows which elements carry
text, which break lines, which are tables (emitted separately, one chunk per
column, so the header row is context for every cell under it) and which must
be skipped because they duplicate text (``mc:Fallback`` repeats a text box's
content for old readers; ``w:rt`` is the furigana above a word, which would
otherwise split 個人番号 into 個人(こじん)番号(ばんごう)).

XML is parsed with entity resolution, DTD loading and network access off
(no XXE, no billion laughs), from bytes that were already read with a cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from dlp.extract.base import Budget

_PARSER = etree.XMLParser(
    resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False, recover=True
)


def parse(xml: bytes) -> etree._Element | None:
    """Parse capped bytes; ``recover`` keeps what precedes damage (truncated parts)."""
    return etree.fromstring(xml, parser=_PARSER)


@dataclass(frozen=True)
class Dialect:
    text: frozenset[str]
    """Elements whose .text is document text."""
    para: frozenset[str]
    """Elements that end a line."""
    tab: frozenset[str]
    brk: frozenset[str]
    skip: frozenset[str]
    """Subtrees that are not document text or duplicate it."""
    table: frozenset[str]
    row: frozenset[str]
    cell: frozenset[str]
    """Cells, including ODF's covered (merged-away) cells."""
    space: str = ""
    """ODF <text:s text:c="n"/>: n spaces."""
    repeat_attr: str = ""
    """ODF table:number-columns-repeated on cells."""


def _ns(uris: tuple[str, ...], *names: str) -> frozenset[str]:
    return frozenset(f"{{{u}}}{n}" for u in uris for n in names)


_W = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
)
_A = (
    "http://schemas.openxmlformats.org/drawingml/2006/main",
    "http://purl.oclc.org/ooxml/drawingml/main",
)
_P = (
    "http://schemas.openxmlformats.org/presentationml/2006/main",
    "http://purl.oclc.org/ooxml/presentationml/main",
)
_MC = ("http://schemas.openxmlformats.org/markup-compatibility/2006",)
_T = ("urn:oasis:names:tc:opendocument:xmlns:text:1.0",)
_TBL = ("urn:oasis:names:tc:opendocument:xmlns:table:1.0",)

WORD = Dialect(
    text=_ns(_W, "t", "delText") | _ns(_A, "t"),
    para=_ns(_W, "p") | _ns(_A, "p"),
    tab=_ns(_W, "tab", "ptab") | _ns(_A, "tab"),
    brk=_ns(_W, "br", "cr") | _ns(_A, "br"),
    skip=_ns(_W, "rt", "instrText", "delInstrText", "rPr", "pPr", "sectPr", "tblPr", "tcPr")
    | _ns(_MC, "Fallback"),
    table=_ns(_W, "tbl"),
    row=_ns(_W, "tr"),
    cell=_ns(_W, "tc"),
)
DRAWING = Dialect(
    text=_ns(_A, "t") | _ns(_P, "text"),
    para=_ns(_A, "p") | _ns(_P, "text"),
    tab=_ns(_A, "tab"),
    brk=_ns(_A, "br"),
    skip=_ns(_A, "rPr", "pPr", "endParaRPr", "bodyPr", "lstStyle") | _ns(_MC, "Fallback"),
    table=_ns(_A, "tbl"),
    row=_ns(_A, "tr"),
    cell=_ns(_A, "tc"),
)
_S = (
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "http://purl.oclc.org/ooxml/spreadsheetml/main",
)
_TC = ("http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments",)
SHEET_EXTRAS = Dialect(
    # cell comments (legacy and threaded) and the text of shapes / text boxes on a sheet;
    # rPh is the furigana of a run
    text=_ns(_S, "t") | _ns(_A, "t") | _ns(_TC, "text"),
    para=_ns(_S, "comment") | _ns(_A, "p") | _ns(_TC, "threadedComment"),
    tab=_ns(_A, "tab"),
    brk=_ns(_A, "br"),
    skip=_ns(_S, "rPh", "rPr") | _ns(_A, "rPr", "pPr", "bodyPr") | _ns(_MC, "Fallback"),
    table=_ns(_A, "tbl"),
    row=_ns(_A, "tr"),
    cell=_ns(_A, "tc"),
)
OPENDOC = Dialect(
    text=frozenset(),
    para=_ns(_T, "p", "h"),
    tab=_ns(_T, "tab"),
    brk=_ns(_T, "line-break"),
    skip=_ns(_T, "tracked-changes", "ruby-text", "note-citation", "sequence-decls"),
    table=_ns(_TBL, "table"),
    row=_ns(_TBL, "table-row"),
    cell=_ns(_TBL, "table-cell", "covered-table-cell"),
    space=f"{{{_T[0]}}}s",
    repeat_attr=f"{{{_TBL[0]}}}number-columns-repeated",
)


@dataclass
class Collected:
    text: list[str] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)
    """Each table: rows of cell texts."""


# A Word run the reader does not see: hidden (<w:vanish/>), or set in a font of
# one point or less (<w:sz w:val="2"/>, half-points).  Read once as stored and,
# where the document has such runs, once more as shown (``collect(shown=True)``).
_RUN = _ns(_W, "r")
_RPR = _ns(_W, "rPr")
_VANISH = _ns(_W, "vanish", "specVanish")
_SZ = _ns(_W, "sz", "szCs")
_VAL = frozenset(f"{{{u}}}val" for u in _W)


def _unseen_run(run: etree._Element) -> bool:
    for props in run:
        if props.tag not in _RPR:
            continue
        for prop in props:
            if prop.tag in _VANISH and all(prop.get(v) not in ("0", "false") for v in _VAL):
                return True
            if prop.tag in _SZ:
                size = next((prop.get(v) for v in _VAL if prop.get(v) is not None), "")
                if size.isdigit() and int(size) <= 2:
                    return True
    return False


def has_unseen_runs(xml: bytes) -> bool:
    """Cheap test before a second reading: the document may hide runs."""
    return b"vanish" in xml or b'sz w:val="1"' in xml or b'sz w:val="2"' in xml


_FALLBACK = _ns(_MC, "Fallback")
_CHOICE = _ns(_MC, "Choice")


class _Walker:
    def __init__(
        self, dialect: Dialect, budget: Budget, shown: bool = False, fallback: bool = False
    ) -> None:
        self.d = dialect
        self.budget = budget
        self.shown = shown
        self.fallback = fallback
        self.out = Collected()
        self.count = 0
        # ODF text sits in .text/.tail of any element inside a paragraph; OOXML only in <t>.
        self.mixed = not dialect.text

    def walk(self, el: etree._Element, sink: list[str], in_para: bool = False) -> None:
        self.count += 1
        if self.count % 4096 == 0:
            self.budget.check_time()
        tag = el.tag
        if not isinstance(tag, str):  # comments, processing instructions
            return
        d = self.d
        if self.fallback and tag in _CHOICE:
            return
        if tag in d.skip and not (self.fallback and tag in _FALLBACK):
            return
        if self.shown and tag in _RUN and _unseen_run(el):
            return
        if tag in d.table:
            self.out.tables.append(self._table(el))
            sink.append("\n")
            return
        if tag in d.text:
            if el.text:
                sink.append(el.text)
        elif tag in d.tab:
            sink.append("\t")
        elif tag in d.brk:
            sink.append("\n")
        elif tag == d.space and d.space:
            n = el.get(f"{{{_T[0]}}}c")
            sink.append(" " * min(int(n) if n and n.isdigit() else 1, 100))
        is_para = tag in d.para
        if self.mixed and (is_para or in_para) and el.text and tag not in d.text:
            sink.append(el.text)
        for child in el:
            self.walk(child, sink, in_para or is_para)
            if self.mixed and (is_para or in_para) and child.tail:
                sink.append(child.tail)
        if is_para:
            sink.append("\n")

    def _table(self, tbl: etree._Element) -> list[list[str]]:
        d = self.d
        rows: list[list[str]] = []
        for tr in tbl.iter(*d.row):
            # only rows of this table, not of a table nested in one of its cells
            if _nearest(tr, d.table) is not tbl:
                continue
            row: list[str] = []
            for tc in tr:
                if tc.tag not in d.cell:
                    continue
                parts: list[str] = []
                for child in tc:
                    self.walk(child, parts)
                text = "".join(parts).strip().replace("\n", " ")
                repeat = tc.get(d.repeat_attr) if d.repeat_attr else None
                n = min(int(repeat), 64) if repeat and repeat.isdigit() else 1
                row.extend([text] * n)
            while row and not row[-1]:
                row.pop()
            rows.append(row)
        return rows


def _nearest(el: etree._Element, tags: frozenset[str]) -> etree._Element | None:
    p = el.getparent()
    while p is not None and p.tag not in tags:
        p = p.getparent()
    return p


def collect(
    root: etree._Element,
    dialect: Dialect,
    budget: Budget,
    *,
    shown: bool = False,
    fallback: bool = False,
) -> Collected:
    """The text and tables of ``root``; ``shown``: without the runs a reader does
    not see (``_unseen_run``); ``fallback``: each ``mc:AlternateContent`` read as its
    ``mc:Fallback``, as an application shows it that does not know the ``mc:Choice``
    (the Fallback is skipped otherwise: Word writes a text box's text in both)."""
    w = _Walker(dialect, budget, shown, fallback)
    w.walk(root, w.out.text)
    return w.out


def joined(parts: list[str]) -> str:
    text = "".join(parts)
    # collapse the blank lines left by empty paragraphs and tables
    lines = [ln.rstrip() for ln in text.split("\n")]
    out: list[str] = []
    for ln in lines:
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip()
