"""OpenDocument text and presentations (.odt, .odp) via zipfile + lxml.

``content.xml`` holds the body, tables, text boxes, annotations and speaker
notes; ``styles.xml`` the headers and footers; ``Object N/content.xml`` the
embedded objects.  Tables are emitted one chunk per column with the header
row as ``field_label``, like spreadsheets.  (.ods goes to spreadsheet.py.)
"""

from __future__ import annotations

import functools
import posixpath
import zipfile

from dlp.extract import forms, xmltext, zipparts
from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.extract.limits import check_member_count
from dlp.extract.tables import columns_to_chunks, rows_to_columns
from dlp.model import AttachmentStatus, TextChunk

_ODF_NS_KIND = (
    (b"opendocument.presentation", "odp"),
    (b"opendocument.text", "odt"),
)


def is_encrypted(zf: zipfile.ZipFile, budget: Budget) -> bool:
    """ODF encrypts each part and says so in the manifest (ODF 1.2 §3.8)."""
    if "META-INF/manifest.xml" not in zf.namelist():
        return False
    info = zf.getinfo("META-INF/manifest.xml")
    manifest = zipparts.read_capped(zf, info, 1 << 20, budget)
    return b"encryption-data" in manifest


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    kind = "odt"
    for marker, k in _ODF_NS_KIND:
        if marker in data[30:120]:
            kind = k
    try:
        zf = zipparts.open_zip(data)
    except Exception as exc:
        return Extracted(
            kind=kind,
            status=AttachmentStatus.ERROR,
            detail=f"damaged ZIP package ({type(exc).__name__})",
        )
    chunks: list[TextChunk] = []
    defects: list[str] = []
    members: list[Member] = []
    with zf:
        zipparts.check_package(zf, budget)
        names = zf.namelist()
        if is_encrypted(zf, budget):
            return Extracted(
                kind=kind, status=AttachmentStatus.ENCRYPTED, detail="password-protected document"
            )
        parts: list[str] = [n for n in ("content.xml", "styles.xml") if n in names]
        parts += sorted(n for n in names if n.endswith("/content.xml"))
        try:
            for name in parts:
                budget.check_time()
                xml = zipparts.read_capped(zf, zf.getinfo(name), zipparts.xml_cap(budget), budget)
                root = xmltext.parse(xml)
                if root is None:
                    defects.append(f"{name}: not XML")
                    continue
                got = xmltext.collect(root, xmltext.OPENDOC, budget)
                label = name.removesuffix(".xml").replace(" ", "")
                text = xmltext.joined(got.text)
                if text:
                    chunks.append(TextChunk(text=text, location=f"{location}!{label}"))
                for i, rows in enumerate(got.tables, 1):
                    chunks.extend(
                        columns_to_chunks(
                            rows_to_columns(rows),
                            f"{location}!{label}!table{i}",
                            prepare=functools.partial(forms.apply, keywords=budget.keywords),
                        )
                    )
            members = _pictures(zf, budget)
        except BudgetExceeded as exc:
            return Extracted(
                kind=kind,
                status=exc.status,
                chunks=tuple(chunks),
                detail=exc.detail,
                defects=tuple(defects),
            )
    return Extracted(
        kind=kind,
        status=AttachmentStatus.ERROR if defects and not chunks else AttachmentStatus.SCANNED,
        chunks=tuple(chunks),
        members=tuple(members),
        detail=defects[0] if defects and not chunks else "",
        defects=tuple(defects),
        # Some parts read, others not: the file is only partly scanned.
        unread=tuple(d for d in defects if d.endswith("not XML")) if chunks else (),
    )


def _pictures(zf: zipfile.ZipFile, budget: Budget) -> list[Member]:
    """Raster pictures (``Pictures/``) as members, so that they are OCR'd (a scanned
    form pasted into a document).  Vector drawings (SVM, EMF) are skipped."""
    from dlp.extract.registry import sniff

    members: list[Member] = []
    for info in zf.infolist():
        if info.is_dir() or not info.filename.startswith("Pictures/"):
            continue
        budget.check_time()
        check_member_count(budget, len(members))
        payload = zipparts.read_capped(zf, info, budget.max_file_bytes, budget)
        if sniff(payload, info.filename) == "image":
            members.append(Member(posixpath.basename(info.filename), payload))
    return members
