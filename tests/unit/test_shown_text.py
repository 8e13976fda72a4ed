"""Text a reader sees that the extractors used to drop or split: RTF groups striprtf drops
as destinations, folded calendar and address-card lines, XML character references (a
review of 3 Dec 2026)."""

from __future__ import annotations

import pytest
from extract_support import N1, numbers_found, run

from dlp.model import Confidence

_HEAD = r"{\rtf1\ansi\ansicpg932\deff0{\fonttbl{\f0\fnil\fcharset128 MS Mincho;}}" "\n"
_LABEL = r"\u12510?\u12452?\u12490?\u12531?\u12496?\u12540?\u65306?"  # マイナンバー：


@pytest.mark.parametrize(
    "group",
    [
        r"{\header\pard %s\par}",
        r"{\footerf\pard %s\par}",
        r"{\footnote\pard %s\par}",
        r"{\*\atnid me}\chatn{\*\annotation\pard %s\par}",
        r"{\shp{\*\shpinst\shpleft0{\sp{\sn shapeType}{\sv 202}}{\shptxt\pard %s\par}}}",
    ],
)
def test_headers_footnotes_comments_and_shapes_are_read(group: str) -> None:
    source = _HEAD + r"\pard body" + group % (_LABEL + N1) + r"\par}"
    ex = run(source.encode("latin-1"), "letter.rtf")
    assert numbers_found(ex.chunks) == {N1: Confidence.HIGH}
    assert "shapeType" not in ex.chunks[0].text and "me" not in ex.chunks[0].text.split()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "invite.ics",
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:面談\r\n"
            f"DESCRIPTION:書類\\n マイナンバー\\,{N1[:7]}\r\n {N1[7:]}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        ),
        (
            "card.vcf",
            f"BEGIN:VCARD\nVERSION:3.0\nFN:山田\nNOTE:マイナンバー：{N1[:5]}\n\t{N1[5:]}\nEND:VCARD\n",
        ),
    ],
)
def test_calendar_and_card_lines_are_unfolded(name: str, text: str) -> None:
    """A long DESCRIPTION or NOTE is folded every 75 octets, through a number as
    anywhere; the calendar shows it whole."""
    ex = run(text.encode(), name)
    assert numbers_found(ex.chunks) == {N1: Confidence.HIGH}


def test_xml_character_references_read_as_shown() -> None:
    digits = "".join(f"&#{ord(c)};" for c in N1)
    data = f'<?xml version="1.0"?><r><個人番号>{digits}</個人番号></r>'.encode()
    assert numbers_found(run(data, "data.xml").chunks) == {N1: Confidence.HIGH}
