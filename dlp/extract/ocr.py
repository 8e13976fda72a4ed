"""OCR: images and scanned pages → text, with Tesseract through tesserocr.

Why tesserocr and not pytesseract (measured on this machine, BENCHMARKS.md):
pytesseract starts the ``tesseract`` program for every image, which loads the
Japanese model each time: 0.18 s CPU for a card-sized image, 0.37 s when
Debian's OpenMP build spreads over both cores.  tesserocr keeps one initialised
engine per worker process: 0.05 s for the same image, after a one-off 0.1-0.3 s
start.  The engine is native code fed hostile
images, so it never runs in the worker itself: ``extract`` warms the engine in
the worker, then recognises in a forked child (``sandbox.py``) that inherits
it, under the address-space limit and the message deadline.  Pillow decodes
the image in that same child.

Only the traineddata files come from the system (Debian ``tesseract-ocr-jpn``,
installed by ``.ci/run``); when they (or tesserocr) are missing, images are
reported ``image`` with the reason ``ocr unavailable``, never an error.

Budgets (``[ocr]`` in config/dlp.toml): ``max_pages`` images/frames/PDF pages
per message and ``timeout_seconds`` of OCR per message.  What is left when one
runs out is reported as not read (the file is ``partial``, or ``too_large`` when
nothing of it was read), which the fail-closed policy rule acts on.  An image
of more than ``max_pixels`` is ``too_large`` before it is decoded; a truncated
or malformed one is ``error``; an animated GIF is read from its first frame
only (a GIF of thousands of frames costs what one frame costs).

Recognition: grayscale, small images upscaled (Tesseract wants ~20–30 px
character height; a screenshot has 12–16), very large ones scaled down
(seconds grow with pixels, digits do not get better above ~200 dpi), contrast
stretched, page segmentation 3 (automatic).  When that reading has no digits
and low confidence the page is tried at 180, 90 and 270 degrees (a phone photo
of a card is often sideways).  When a 10-14 digit group fails the check digit,
or a small page shows no valid number at all, the page is read again other
ways (other scale in sparse-text mode; median-filtered) and the reading with
the most check-digit-valid numbers kept: the check digit chooses between
readings, it never edits a digit (that would turn the wrong number next to a
label into a "valid" one).  The text is then tidied for the detectors: the
spaces Tesseract puts between Japanese characters are removed (so the label
個人番号 is found as a word) and ``O``/``l`` read inside digit runs become 0/1.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlp.detect.mynumber import is_valid
from dlp.extract import sandbox
from dlp.extract.base import Budget, BudgetExceeded, Extracted, OcrLimits
from dlp.model import AttachmentStatus, TextChunk

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["PageText", "engine", "extract", "page_budget_left", "read_page", "unavailable"]

# Tesseract links OpenMP in some builds (Debian's): in a forked child an OpenMP
# pool started by the parent deadlocks, and two threads per page only slow down
# a machine whose cores are already shared by worker processes.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

_TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)

UPSCALE_BELOW = 1400
"""Long side in pixels below which an image is enlarged (screenshots, small scans)."""
DOWNSCALE_ABOVE = 2000
"""Long side above which an image is reduced: an A4 page at 300 dpi (3508 px) is
read at ~170 dpi (0.8 s CPU instead of 1.2 s, the same digits), and Tesseract
misreads glyphs much taller than ~60 px (a card filling a 12 MP phone photo
read at 2,400 px lost its number; at 2,000 px it is read; BENCHMARKS.md)."""
ROTATION_MIN_CONFIDENCE = 50
"""A page turned 90/180/270 degrees replaces the upright reading only when read at
least this confidently (a sideways or upside-down card reads at 85-95)."""
TINY_PIXELS = 1000
"""Below this (a 16x16 or 24x24 icon, a spacer GIF) an image is not OCR'd and not
counted against max_pages: twelve legible digits need more room."""
MAX_FRAMES = 1
"""Frames read of an animated GIF/WebP/PNG (multi-page TIFFs: every page, within max_pages)."""
MAX_TIFF_PAGES = 10_000
"""Pages of a TIFF looked at (those past max_pages are reported, not read)."""


@dataclass(frozen=True, slots=True)
class Setup:
    """How a page is recognised (bench/ocr.py compares set-ups)."""

    psm: int = 3
    """Tesseract page segmentation: 3 automatic, 6 one block, 11 sparse text."""
    preprocess: bool = True
    rotate: bool = True
    second_reading: bool = True
    """Read again other ways when a 10-14 digit group fails the check digit, or a
    small page has no valid number."""


DEFAULT_SETUP = Setup()


@dataclass(frozen=True, slots=True)
class PageText:
    text: str
    confidence: int
    rotation: int
    seconds: float
    readings: int = 1


# --- the engine -------------------------------------------------------------------------------


def tessdata_dir(languages: tuple[str, ...]) -> Path | None:
    """The first tessdata directory that holds every requested model."""
    candidates = [os.environ.get("TESSDATA_PREFIX", ""), *_TESSDATA_DIRS]
    for c in candidates:
        if not c:
            continue
        for d in (Path(c), Path(c) / "tessdata"):
            if all((d / f"{lang}.traineddata").is_file() for lang in languages):
                return d
    return None


@functools.cache
def unavailable(languages: tuple[str, ...]) -> str:
    """Why OCR cannot run here ("" when it can), phrased for an administrator."""
    # find_spec, not import: the serving process asks at start and should not map
    # libtesseract for nothing.  A broken install shows when the engine starts.
    if importlib.util.find_spec("tesserocr") is None:
        return "the tesserocr package is not installed (pip install tesserocr)"
    if tessdata_dir(languages) is None:
        pkgs = " ".join(f"tesseract-ocr-{lang.split('_')[0]}" for lang in languages)
        return (
            f"Tesseract model(s) {'+'.join(languages)} not found in "
            f"{', '.join(_TESSDATA_DIRS)} or $TESSDATA_PREFIX (Debian: apt-get install {pkgs})"
        )
    return ""


@functools.cache
def engine(languages: tuple[str, ...]) -> Any:
    """One initialised Tesseract per process and language set (0.3 s to load the Japanese model)."""
    import tesserocr

    path = tessdata_dir(languages)
    api = tesserocr.PyTessBaseAPI(
        path=f"{path}/", lang="+".join(languages), oem=tesserocr.OEM.LSTM_ONLY
    )
    # Tesseract prints "Invalid resolution 0 dpi" for images without a DPI tag.
    api.SetVariable("debug_file", "/dev/null")
    return api


# --- recognising one page ---------------------------------------------------------------------


def prepare(img: Image, scale: bool = True) -> Image:
    """Grayscale, sensible size, stretched contrast."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    img = _grayscale(img)
    w, h = img.size
    long = max(w, h)
    f = 1.0
    if scale and long < UPSCALE_BELOW:
        f = min(3.0, UPSCALE_BELOW * 1.3 / long)
    elif scale and long > DOWNSCALE_ABOVE:
        f = DOWNSCALE_ABOVE / long
    if f != 1.0:
        img = img.resize((max(1, round(w * f)), max(1, round(h * f))), PILImage.Resampling.LANCZOS)
    return ImageOps.autocontrast(img, cutoff=1)


def _grayscale(img: Image) -> Image:
    from PIL import Image as PILImage

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent screenshot regions are white paper, not black.
        rgba = img.convert("RGBA")
        white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = PILImage.alpha_composite(white, rgba)
    if img.mode.startswith("I") or img.mode == "F":
        # 16-bit scans: convert("L") would clip everything above 255 to white.
        extrema = img.getextrema()  # one band: (low, high)
        if float(extrema[1]) > 255:  # type: ignore[arg-type]
            img = img.point(lambda v: v / 256)
    return img.convert("L")


def read_page(img: Image, limits: OcrLimits, setup: Setup | None = None) -> PageText | None:
    """Recognise one page; None when the OCR time budget ran out first."""
    setup = setup or DEFAULT_SETUP  # looked up per call: bench/ocr.py swaps it
    t0 = time.monotonic()
    api = engine(limits.languages)
    page = prepare(img) if setup.preprocess else _grayscale(img)
    best = _recognise(api, page, limits, 0, setup.psm)
    if best is None:
        return None
    if setup.rotate and _looks_unread(best):
        # 180 first: Tesseract already reads a page turned by 90 degrees as vertical
        # Japanese and turns it itself, so upside down is what is left most often.
        for angle in (180, 90, 270):
            got = _recognise(api, page.rotate(angle, expand=True), limits, angle, setup.psm)
            if got is None:
                break
            # Garbage reads at 15-35 whichever way up: a turn must read well to win.
            if got.confidence >= ROTATION_MIN_CONFIDENCE and _score(got) > _score(best):
                best = got
            if not _looks_unread(best):
                break
    readings = 1
    if setup.second_reading:
        # Tesseract's layout analysis drops whole regions of a noisy photo or a
        # ruled form, and misreads a digit now and then ("90168").  Read the page
        # other ways until a reading has no number failing its check digit: first
        # at the other scale in sparse-text mode (no layout), then with the noise
        # filtered out.  The reading with more numbers whose check digit holds is
        # kept: the check digit chooses between the readings.
        for variant, psm in _other_readings(img, page):
            if not _another_reading_needed(best, page):
                break
            readings += 1
            other = variant()
            if best.rotation:
                other = other.rotate(best.rotation, expand=True)
            alt = _recognise(api, other, limits, best.rotation, psm)
            if alt is None:
                break
            if _valid_numbers(tidy(alt.text)) > _valid_numbers(tidy(best.text)):
                best = alt
    return PageText(
        tidy(best.text), best.confidence, best.rotation, time.monotonic() - t0, readings
    )


def _other_readings(img: Image, page: Image) -> list[tuple[Callable[[], Image], int]]:
    from PIL import ImageFilter

    scaled = page.size != _grayscale(img).size
    return [
        ((lambda: prepare(img, scale=False)) if scaled else (lambda: _enlarged(page)), 11),
        # Sensor noise and JPEG speckle, at the original size (enlarging first
        # enlarges the noise): measured on a 6-degree, q30 photo of a card.
        (lambda: _grayscale(img).filter(ImageFilter.MedianFilter(3)), 3),
    ]


SECOND_READING_MAX_PIXELS = 3_000_000
"""Up to this size (a card photo, a screenshot, a half page) a page without a
valid number is read again; a full page's layout analysis is reliable and
another reading would double its 1-2 s."""


def _another_reading_needed(p: PageText, page: Image) -> bool:
    text = tidy(p.text)
    if _failed_numbers(text):
        return True
    if _valid_numbers(text):
        return False
    w, h = page.size
    return w * h <= SECOND_READING_MAX_PIXELS or any(k in text for k in _LABELS)


_LABELS = ("個人番号", "マイナンバー", "氏名", "生年月日")
"""Words that say a page is a card or a personal-data form: without a valid number
even a large page is read again (a card photographed on a desk is a 12 MP photo)."""


def _enlarged(img: Image) -> Image:
    from PIL import Image as PILImage

    return img.resize(
        (round(img.width * 1.5), round(img.height * 1.5)), PILImage.Resampling.LANCZOS
    )


def _recognise(api: Any, img: Image, limits: OcrLimits, angle: int, psm: int) -> PageText | None:
    remaining = limits.deadline - time.monotonic()
    if remaining <= 0.05:
        return None
    api.SetPageSegMode(psm)
    api.SetImage(img)
    api.SetSourceResolution(300)
    timeout_ms = int(remaining * 1000) if remaining < 86_400 else 0
    if not api.Recognize(timeout=timeout_ms):
        return None
    return PageText(api.GetUTF8Text(), int(api.MeanTextConf()), angle, 0.0)


_DIGIT_RUN = re.compile(r"\d{4,}")


def _looks_unread(p: PageText) -> bool:
    """Little confidence, or no digit groups and middling confidence: maybe the
    page is upside down or sideways (then Tesseract reads garbage at 20-35)."""
    return p.confidence < 50 or (p.confidence < 75 and not _DIGIT_RUN.search(p.text))


def _score(p: PageText) -> int:
    chars = sum(1 for c in p.text if not c.isspace())
    return p.confidence if chars >= 4 else 0


# Digit groups as OCR prints them: runs of digits (or letters it confuses with
# digits) joined by single spaces or hyphens.
_NUMBERISH = re.compile(r"[0-9OoSlI|]{2,}(?:[ \-‐－ー][0-9OoSlI|]{2,})*")


def _digit_groups(text: str) -> list[str]:
    return [re.sub(r"[^0-9]", "", m.group(0)) for m in _NUMBERISH.finditer(text)]


def _failed_numbers(text: str) -> bool:
    """A group of 10-14 digits that is not a valid My Number: perhaps misread."""
    return any(10 <= len(d) <= 14 and not is_valid(d) for d in _digit_groups(tidy(text)))


def _valid_numbers(text: str) -> int:
    return sum(1 for d in _digit_groups(text) if len(d) == 12 and is_valid(d))


_CJK = r"\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f"
_CJK_GAP = re.compile(f"(?<=[{_CJK}])[ \\t]+(?=[{_CJK}])")
_SPACES = re.compile(r"[ \t]{2,}")
# Letters Tesseract reads for digits inside a run of digits (never at its ends,
# so words like "No" or "ID" stay as they are).
_LOOKALIKE_IN_DIGITS = re.compile(r"(?<=\d)[OoDQlI|](?=\d)")
_AS_DIGIT = str.maketrans("OoDQlI|", "0000111")


def tidy(text: str) -> str:
    text = _CJK_GAP.sub("", text)
    text = _SPACES.sub(" ", text)
    return _LOOKALIKE_IN_DIGITS.sub(lambda m: m.group(0).translate(_AS_DIGIT), text)


# --- image files ------------------------------------------------------------------------------


def page_budget_left(budget: Budget) -> str:
    """Why no further page may be OCR'd in this message ("" when one may)."""
    limits = budget.ocr
    if limits is None:
        return "ocr disabled"
    if not limits.here:
        raise BudgetExceeded(AttachmentStatus.TIMEOUT, "image found: OCR runs in a worker")
    if budget.ocr_pages >= limits.max_pages:
        return f"OCR page budget ([ocr] max_pages = {limits.max_pages}) used up"
    if time.monotonic() >= limits.deadline:
        if limits.deadline >= budget.deadline:
            # The message's own budget, not OCR's: the scan as a whole timed out.
            budget.check_time()
        return "OCR time budget ([ocr] timeout_seconds) used up"
    return ""


def time_up(budget: Budget) -> str:
    """Why ``read_page`` gave up: OCR's own budget, or (raised) the message's."""
    limits = budget.ocr
    if limits is not None and limits.deadline >= budget.deadline:
        # A short message budget (the gateway's in-process scan) ran out: a
        # timeout, so that the message is scanned again in a worker.
        budget.check_time()
        raise BudgetExceeded(AttachmentStatus.TIMEOUT, "per-message time budget used up")
    return "OCR time budget ([ocr] timeout_seconds) used up"


def extract(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    """An image attachment: OCR in a sandboxed child, or status ``image`` with why not."""
    limits = budget.ocr
    if limits is None:
        return _not_read("image not read (ocr disabled)")
    why = unavailable(limits.languages)
    if why:
        return _not_read(f"ocr unavailable: {why}")
    left = page_budget_left(budget)  # raises in the gateway's serving process
    if left:
        return Extracted(
            kind="image", status=AttachmentStatus.TOO_LARGE, detail=f"not read: {left}"
        )
    try:
        engine(limits.languages)  # loaded once here; sandboxed children inherit it
    except Exception as exc:  # a damaged model file: as if it were missing
        from dlp.extract.registry import safe_reason

        return _not_read(f"ocr unavailable: Tesseract did not start ({safe_reason(exc)})")
    return sandbox.extract_isolated(extract_inline, data, filename, location, budget, "image")


def _not_read(detail: str) -> Extracted:
    return Extracted(kind="image", status=AttachmentStatus.IMAGE, detail=detail)


def extract_inline(data: bytes, filename: str, location: str, budget: Budget) -> Extracted:
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    limits = budget.ocr
    assert limits is not None
    # Our own limit, checked before decoding, gives too_large with a reason;
    # Pillow's would be a warning at 89 Mpx and an exception at twice that.
    PILImage.MAX_IMAGE_PIXELS = None
    heif = _is_heif(data)
    if heif:
        # iPhone photos (HEIC).  Registered here, in the sandboxed child only:
        # libheif is more native code fed hostile input.
        try:
            import pillow_heif
        except ImportError:
            return _not_read("HEIC/HEIF image: no reader installed (pip install pillow-heif)")
        pillow_heif.register_heif_opener()
    try:
        img = PILImage.open(io.BytesIO(data))
    except UnidentifiedImageError:
        return Extracted(
            kind="image",
            status=AttachmentStatus.ERROR,
            detail=f"not a readable {'HEIF ' if heif else ''}image (damaged or unknown format)",
        )
    multi = _is_multipage_tiff(img)
    chunks: list[TextChunk] = []
    unread: list[str] = []
    read = 0
    # Pages are found one at a time, never counted first: ``n_frames`` walks every
    # frame of a GIF, and every page directory of a TIFF (a hostile one can hold
    # a million in 50 MB).
    for index in range(MAX_TIFF_PAGES if multi else MAX_FRAMES):
        if index:
            try:
                img.seek(index)
            except EOFError:
                break
        budget.check_time()
        where = f"page {index + 1}" if multi else "image"
        w, h = img.size
        if w * h > limits.max_pixels:
            if not read and index == 0:
                raise BudgetExceeded(
                    AttachmentStatus.TOO_LARGE,
                    f"image of {w}x{h} pixels exceeds [ocr] max_pixels {limits.max_pixels}",
                )
            unread.append(f"{where}: {w}x{h} pixels exceeds [ocr] max_pixels")
            continue
        if w * h < TINY_PIXELS or min(w, h) < 8:
            if not multi:  # an icon or a spacer: no room for a 12-digit number
                return Extracted(
                    kind="image",
                    status=AttachmentStatus.SCANNED,
                    detail="ocr: too small to hold text",
                )
            continue
        left = page_budget_left(budget)
        if left:
            unread.append(f"{where}{' and after' if multi else ''} not read: {left}")
            break
        try:
            img.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            if index == 0:
                from dlp.extract.registry import safe_reason

                return Extracted(
                    kind="image",
                    status=AttachmentStatus.ERROR,
                    detail=f"damaged or truncated image ({safe_reason(exc, 80)})",
                )
            unread.append(f"{where} and after: damaged")
            break
        budget.ocr_pages += 1
        got = read_page(img, limits)
        if got is None:
            unread.append(f"{where}{' and after' if multi else ''} not read: {time_up(budget)}")
            break
        read += 1
        if got.text.strip():
            loc = f"{location}!p{index + 1} (ocr)" if multi else f"{location} (ocr)"
            chunks.append(TextChunk(text=got.text, location=loc))
    else:
        if multi:
            unread.append(f"pages after {MAX_TIFF_PAGES} not read")
    if not read and unread:
        return Extracted(kind="image", status=AttachmentStatus.TOO_LARGE, detail="; ".join(unread))
    return Extracted(
        kind="image",
        status=AttachmentStatus.SCANNED,
        chunks=tuple(chunks),
        detail=f"ocr ({read} page{'s' if read != 1 else ''})" if multi else "ocr",
        unread=tuple(unread),
    )


def _is_multipage_tiff(img: Image) -> bool:
    """Every page of a TIFF is read (a scanned fax); of anything else one frame (an
    animation; an MPO camera file's second picture is a preview)."""
    if img.format != "TIFF":
        return False
    try:
        img.seek(1)
    except EOFError:
        return False
    except Exception:  # a damaged second directory: read the first page
        pass
    with contextlib.suppress(Exception):
        img.seek(0)
    return True


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in (
        b"heic",
        b"heix",
        b"mif1",
        b"msf1",
        b"heim",
        b"heis",
    )
