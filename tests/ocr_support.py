"""Images for the OCR tests and bench/ocr.py, rendered from text with Pillow.

Nothing is downloaded: the glyphs come from the Noto CJK fonts Debian installs
(fonts-noto-cjk).  Every generator is deterministic (seeded noise), so a test
failure reproduces and the bench figures compare across runs.
"""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from dlp.detect.mynumber import check_digit

FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto", "/usr/share/fonts")


def _valid(base: str) -> str:
    return base + str(check_digit(base))


# Valid My Numbers (check digit computed), all different.
NUMBERS = [
    _valid(b)
    for b in (
        "12345678901",
        "62149832025",
        "98320567321",
        "31415926535",
        "27182818284",
        "55501234567",
    )
]
INVALID = NUMBERS[0][:11] + str((int(NUMBERS[0][11]) + 3) % 10)


def font_path() -> Path | None:
    for d in FONT_DIRS:
        for p in sorted(Path(d).rglob("NotoSansCJK-Regular.ttc")) if Path(d).is_dir() else []:
            return p
    return None


def _font(px: int) -> ImageFont.FreeTypeFont:
    path = font_path()
    if path is None:
        raise RuntimeError("Noto Sans CJK not found (apt-get install fonts-noto-cjk)")
    return ImageFont.truetype(str(path), px, index=0)  # index 0: the Japanese face


def grouped(n: str) -> str:
    return f"{n[:4]} {n[4:8]} {n[8:]}"


def fullwidth(s: str) -> str:
    return s.translate({ord("0") + i: 0xFF10 + i for i in range(10)})


def card_back(
    number: str = NUMBERS[0], dpi: int = 300, digits: Callable[[str], str] = str
) -> Image.Image:
    """The back of a My Number card: the label 個人番号 above a 4-4-4 number."""
    s = dpi / 300
    w, h = round(1011 * s), round(638 * s)  # 85.6 x 54 mm
    img = Image.new("RGB", (w, h), (245, 247, 250))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle(
        (4, 4, w - 5, h - 5), radius=round(30 * s), outline=(150, 160, 170), width=3
    )
    d.text((round(60 * s), round(70 * s)), "個人番号", font=_font(round(44 * s)), fill=(30, 30, 30))
    d.text(
        (round(60 * s), round(140 * s)),
        digits(grouped(number)),
        font=_font(round(64 * s)),
        fill=(10, 10, 10),
    )
    d.text(
        (round(60 * s), round(300 * s)),
        "氏名　山田　太郎",
        font=_font(round(40 * s)),
        fill=(30, 30, 30),
    )
    d.text(
        (round(60 * s), round(370 * s)),
        "生年月日　昭和60年1月1日",
        font=_font(round(34 * s)),
        fill=(30, 30, 30),
    )
    d.rectangle(
        (round(700 * s), round(300 * s), round(950 * s), round(560 * s)),
        outline=(90, 90, 90),
        width=2,
    )
    return img


def form_table(numbers: list[str] = NUMBERS[:5], dpi: int = 200) -> Image.Image:
    """A scanned form: five people in a table under the header 個人番号."""
    s = dpi / 200
    w, h = round(1600 * s), round(300 * s + 90 * s * len(numbers))
    img = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(img)
    f = _font(round(30 * s))
    d.text(
        (round(60 * s), round(40 * s)),
        "給与所得者の扶養控除等（異動）申告書",
        font=_font(round(38 * s)),
        fill=0,
    )
    cols = [60, 360, 860, 1060, 1600 - 60]
    heads = ["氏名", "個人番号", "続柄", "生年月日"]
    top = round(150 * s)
    for i, head in enumerate(heads):
        d.text((round((cols[i] + 20) * s), top + round(20 * s)), head, font=f, fill=0)
    names = ["山田 太郎", "山田 花子", "山田 一郎", "山田 次郎", "山田 三郎", "山田 四郎"]
    relations = ["本人", "配偶者", "長男", "次男", "三男", "四男"]
    for r, n in enumerate(numbers):
        y = top + round(90 * s * (r + 1))
        row = [names[r % 6], n, relations[r % 6], f"平成{10 + r}年{r + 1}月{r + 3}日"]
        for i, v in enumerate(row):
            d.text((round((cols[i] + 20) * s), y + round(22 * s)), v, font=f, fill=0)
    for r in range(len(numbers) + 2):
        y = top + round(90 * s * r)
        d.line((round(cols[0] * s), y, round(cols[-1] * s), y), fill=0, width=2)
    bottom = top + round(90 * s * (len(numbers) + 1))
    for c in cols:
        d.line((round(c * s), top, round(c * s), bottom), fill=0, width=2)
    return img


PARAGRAPH = (
    "年末調整のため、扶養控除等申告書を提出してください。記載内容に変更がある場合は、"
    "人事部までご連絡ください。提出期限は十一月三十日です。ご協力をお願いいたします。"
)


def a4_page(numbers: list[str] = NUMBERS[:5], dpi: int = 300) -> Image.Image:
    """A whole A4 scan: a title, paragraphs of body text and the five-person table."""
    s = dpi / 300
    page = Image.new("L", (round(2480 * s), round(3508 * s)), 255)
    d = ImageDraw.Draw(page)
    d.text(
        (round(200 * s), round(200 * s)),
        "令和6年分 扶養控除等申告書のお願い",
        font=_font(round(60 * s)),
        fill=0,
    )
    f = _font(round(38 * s))
    y = 400
    for _ in range(6):
        for k in range(0, len(PARAGRAPH), 40):
            d.text((round(200 * s), round(y * s)), PARAGRAPH[k : k + 40], font=f, fill=0)
            y += 60
        y += 40
    table = form_table(numbers, dpi=round(dpi * 0.9))
    page.paste(table, (round(150 * s), round((y + 60) * s)))
    return page


def spreadsheet(numbers: list[str] = NUMBERS[:3]) -> Image.Image:
    """A screenshot of a spreadsheet at screen resolution (14 px text, grid lines)."""
    rows = [["社員番号", "氏名", "マイナンバー", "部署"]] + [
        [f"E{1001 + i}", f"佐藤 {'一二三四五'[i % 5]}郎", n, "総務部"]
        for i, n in enumerate(numbers)
    ]
    widths = [90, 120, 140, 90]
    img = Image.new("RGB", (sum(widths) + 40, 22 * (len(rows) + 1) + 20), "white")
    d = ImageDraw.Draw(img)
    f = _font(14)
    x0, y0 = 30, 22
    d.rectangle((0, 0, img.width, 20), fill=(230, 230, 230))
    for i, letter in enumerate("ABCD"):
        d.text((x0 + sum(widths[:i]) + widths[i] // 2 - 4, 2), letter, font=f, fill=(80, 80, 80))
    for r, row in enumerate(rows):
        y = y0 + 22 * r
        d.text((6, y + 3), str(r + 1), font=f, fill=(80, 80, 80))
        for i, v in enumerate(row):
            d.text((x0 + sum(widths[:i]) + 4, y + 3), v, font=f, fill=(0, 0, 0))
    for r in range(len(rows) + 1):
        d.line((x0, y0 + 22 * r, x0 + sum(widths), y0 + 22 * r), fill=(200, 200, 200))
    for i in range(len(widths) + 1):
        x = x0 + sum(widths[:i])
        d.line((x, y0, x, y0 + 22 * len(rows)), fill=(200, 200, 200))
    return img


def phone_and_orders() -> Image.Image:
    """Negative: 12-digit order numbers that pass the checksum, phone numbers, no keyword."""
    img = Image.new("L", (1400, 520), 255)
    d = ImageDraw.Draw(img)
    f = _font(34)
    lines = [
        "ご注文ありがとうございました",
        f"注文番号 {_valid('20231201000')}",
        f"注文番号 {_valid('20240315123')}",
        "電話 03-1234-5678  FAX 03-1234-5679",
        "携帯 090-1234-5678",
    ]
    for i, line in enumerate(lines):
        d.text((60, 40 + 90 * i), line, font=f, fill=0)
    return img


def noise_photo(seed: int = 7) -> Image.Image:
    """Negative: a photo-like image without text (gradients, blobs, sensor noise)."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (800, 600))
    d = ImageDraw.Draw(img)
    for y in range(600):
        d.line((0, y, 800, y), fill=(80 + y // 6, 120 + y // 10, 160 - y // 8))
    for _ in range(25):
        x, y, r = rnd.randrange(800), rnd.randrange(600), rnd.randrange(20, 120)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rnd.randrange(256) for _ in range(3)))
    img = img.filter(ImageFilter.GaussianBlur(6))
    return add_noise(img, 18, seed)


def add_noise(img: Image.Image, amount: int, seed: int = 1) -> Image.Image:
    """Uniform sensor noise of +-amount levels, the same for the same seed."""
    if not amount:
        return img
    w, h = img.size
    raw = random.Random(seed).randbytes(w * h)
    noise = Image.frombytes("L", (w, h), raw).point(lambda v: 128 + (v - 128) * amount // 128)
    bands = [ImageChops.add(b, noise, 1.0, -128) for b in img.split()]
    return Image.merge(img.mode, bands)


def degraded(
    img: Image.Image, angle: float = 3.0, quality: int = 45, noise: int = 30
) -> Image.Image:
    """Scanner/phone artefacts: a few degrees of skew, noise, JPEG compression."""
    rgb = img.convert("RGB").rotate(
        angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white"
    )
    rgb = add_noise(rgb, noise)
    return Image.open(io.BytesIO(encode(rgb, "JPEG", quality=quality)))


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG" and img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def image_pdf(pages: list[Image.Image], dpi: int = 200) -> bytes:
    """An image-only PDF (no text layer), as a scanner writes it."""
    buf = io.BytesIO()
    first = pages[0].convert("L")
    first.save(
        buf, "PDF", save_all=True, append_images=[p.convert("L") for p in pages[1:]], resolution=dpi
    )
    return buf.getvalue()


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    data: bytes
    expect: frozenset[str]
    """Numbers that must be found (high or medium); empty for a negative case."""
    pages: int = 1


def cases() -> list[Case]:
    """The bench's and tests' cases: positives first, then negatives."""
    card = card_back()
    return [
        Case("card back 300 dpi PNG", "card300.png", encode(card, "PNG"), frozenset(NUMBERS[:1])),
        Case(
            "card back 150 dpi PNG",
            "card150.png",
            encode(card_back(dpi=150), "PNG"),
            frozenset(NUMBERS[:1]),
        ),
        Case(
            "card back full-width digits",
            "card_fw.png",
            encode(card_back(NUMBERS[1], digits=fullwidth), "PNG"),
            frozenset(NUMBERS[1:2]),
        ),
        Case(
            "card back JPEG q45, 3 deg, noise",
            "card_photo.jpg",
            encode(degraded(card_back(NUMBERS[2])), "JPEG", quality=45),
            frozenset(NUMBERS[2:3]),
        ),
        Case(
            "card back upside down",
            "card_180.png",
            encode(card_back(NUMBERS[3]).rotate(180), "PNG"),
            frozenset(NUMBERS[3:4]),
        ),
        Case(
            "form, 5 people, 200 dpi",
            "form200.png",
            encode(form_table(), "PNG"),
            frozenset(NUMBERS[:5]),
        ),
        Case(
            "form, 5 people, 150 dpi, JPEG 2 deg",
            "form150.jpg",
            encode(
                degraded(form_table(dpi=150), angle=-2, quality=60, noise=15), "JPEG", quality=60
            ),
            frozenset(NUMBERS[:5]),
        ),
        Case(
            "form, 5 people, 300 dpi TIFF",
            "form300.tif",
            encode(form_table(dpi=300), "TIFF", compression="tiff_lzw"),
            frozenset(NUMBERS[:5]),
        ),
        Case(
            "spreadsheet screenshot",
            "sheet.png",
            encode(spreadsheet(), "PNG"),
            frozenset(NUMBERS[:3]),
        ),
        Case(
            "image-only PDF, 2 pages",
            "scan.pdf",
            image_pdf([card_back(NUMBERS[4]).convert("L"), form_table(NUMBERS[:2])]),
            frozenset([NUMBERS[4], *NUMBERS[:2]]),
            pages=2,
        ),
        Case(
            "A4 page 300 dpi (text + table)",
            "a4.png",
            encode(a4_page(), "PNG"),
            frozenset(NUMBERS[:5]),
        ),
        Case(
            "negative: wrong check digit",
            "card_bad.png",
            encode(card_back(INVALID), "PNG"),
            frozenset(),
        ),
        Case(
            "negative: phone and order numbers",
            "order.png",
            encode(phone_and_orders(), "PNG"),
            frozenset(),
        ),
        Case(
            "negative: photo without text",
            "photo.jpg",
            encode(noise_photo(), "JPEG", quality=85),
            frozenset(),
        ),
    ]


def card_on_desk(number: str = NUMBERS[0]) -> Image.Image:
    """A phone photo: the card small on a textured desk, slightly in perspective,
    lit unevenly, 4032x3024 as phones take them, JPEG."""
    desk = noise_photo(seed=3).resize((4032, 3024), Image.Resampling.BILINEAR)
    card = card_back(number, dpi=300).convert("RGB")
    w, h = card.size
    # Perspective: the far edge 8 % narrower (coefficients for Image.transform).
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(w * 0.04, 0), (w * 0.96, 0), (w, h), (0, h)]
    coeffs = _perspective(dst, src)
    card = card.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        coeffs,
        Image.Resampling.BICUBIC,
        fillcolor=(90, 70, 50),
    )
    card = card.resize((w * 2, h * 2), Image.Resampling.BICUBIC)  # fills ~half the frame width
    desk.paste(card, (900, 800))
    shade = Image.linear_gradient("L").resize(desk.size).point(lambda v: 255 - v // 3)
    lit = ImageChops.multiply(desk, Image.merge("RGB", (shade, shade, shade)))
    return Image.open(io.BytesIO(encode(lit, "JPEG", quality=85)))


def _perspective(pa: list[tuple[float, float]], pb: list[tuple[float, float]]) -> list[float]:
    """Coefficients mapping output points ``pa`` to input points ``pb`` (8 unknowns)."""
    rows: list[list[float]] = []
    rhs: list[float] = []
    for (x, y), (u, v) in zip(pa, pb, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.append(v)
    # Gaussian elimination (8x8): no numpy in the test dependencies.
    n = 8
    m = [[*r, b] for r, b in zip(rows, rhs, strict=True)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [a - f * b for a, b in zip(m[r], m[c], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


def hard_cases() -> list[Case]:
    """Beyond "clean or mildly degraded": where the limits are (bench/ocr.py --hard)."""
    return [
        Case(
            "card back sideways (90 deg)",
            "card_90.png",
            encode(card_back(NUMBERS[1]).rotate(90, expand=True), "PNG"),
            frozenset(NUMBERS[1:2]),
        ),
        Case(
            "card back 100 dpi",
            "card100.png",
            encode(card_back(NUMBERS[2], dpi=100), "PNG"),
            frozenset(NUMBERS[2:3]),
        ),
        Case(
            "card back JPEG q30, 6 deg, heavy noise",
            "card_bad_photo.jpg",
            encode(
                degraded(card_back(NUMBERS[3]), angle=6, quality=30, noise=60), "JPEG", quality=30
            ),
            frozenset(NUMBERS[3:4]),
        ),
        Case(
            "form, 5 people, 100 dpi",
            "form100.png",
            encode(form_table(dpi=100), "PNG"),
            frozenset(NUMBERS[:5]),
        ),
        Case(
            "card on a desk, 12 MP phone photo, perspective, uneven light",
            "IMG_desk.jpg",
            encode(card_on_desk(NUMBERS[4]), "JPEG", quality=85),
            frozenset(NUMBERS[4:5]),
        ),
        Case(
            "A4 page as a scanned PDF (rendered at pdf_dpi)",
            "a4.pdf",
            image_pdf([a4_page()], dpi=300),
            frozenset(NUMBERS[:5]),
        ),
    ]


def image_in_a_text_part(rcpt: str = "b@example.com") -> bytes:
    """A PNG sent as text/plain with a name: not a "heavy" part for the gateway,
    so its scan starts in the serving process."""
    b64 = base64.encodebytes(encode(card_back(dpi=150), "PNG")).decode()
    return (
        f"From: sender@example.lg.jp\r\nTo: {rcpt}\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        "Message-ID: <text-part-image@example.lg.jp>\r\n"
        "Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--BB\r\n"
        'Content-Type: text/plain; charset=utf-8; name="card.png"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n--BB--\r\n"
    ).encode()
