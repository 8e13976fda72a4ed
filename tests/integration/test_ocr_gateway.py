"""Issue 16 through the real gateway: a photo of a My Number card mailed outside
is held, the same photo to a colleague is delivered, and the send log records
the image as read — never the number.  Real SMTP client → gateway (worker pool)
→ real aiosmtpd next hop."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from gwtools import InProcessGateway, LoopThread, Sink, sendlog_entries, write_config
from ocr_support import NUMBERS, card_back, encode, font_path, image_in_a_text_part

from dlp.extract.ocr import engine, unavailable

_WHY = unavailable(("jpn",))
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        bool(_WHY) or font_path() is None,
        reason=f"OCR unavailable ({_WHY}); .ci/run installs tesseract-ocr-jpn"
        if _WHY
        else "Noto CJK font missing (apt-get install fonts-noto-cjk)",
    ),
]
SENDER = "sender@example.lg.jp"


@pytest.fixture(scope="module")
def gw(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    g = InProcessGateway(write_config(tmp_path_factory.mktemp("ocr"), next_hop_port=sink.port), lt)
    yield g
    g.stop()


def photo_mail(rcpt: str, mid: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, rcpt, "書類の写真"
    msg["Message-ID"] = mid
    msg.set_content("スマホで撮った写真を送ります。")
    msg.add_attachment(
        encode(card_back(), "JPEG", quality=80), "image", "jpeg", filename="IMG_0412.jpg"
    )
    return msg.as_bytes()


def _send(gw: InProcessGateway, raw: bytes, rcpt: str) -> str:
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as c:
        c.ehlo("mta.example.lg.jp")
        c.mail(SENDER)
        c.rcpt(rcpt)
        code, reply = c.data(raw)
    assert code == 250, reply
    return reply.decode()


def test_card_photo_to_an_outside_address_is_held(gw: InProcessGateway, sink: Sink) -> None:
    sink.messages.clear()
    reply = _send(
        gw, photo_mail("someone@kaisha-abc.jp", "<ocr-out@example.lg.jp>"), "someone@kaisha-abc.jp"
    )
    assert "2.6.0" in reply, reply  # held
    assert sink.messages == []
    (entry,) = [
        e.record
        for e in sendlog_entries(gw.settings)
        if e.record.message_id == "<ocr-out@example.lg.jp>" and e.record.event == "message"
    ]
    assert entry.action == "hold"
    assert [(a.filename, a.status) for a in entry.attachments] == [("IMG_0412.jpg", "scanned")]
    stored = repr(entry.to_json())
    assert NUMBERS[0] not in stored and NUMBERS[0][-4:] not in stored  # the log keeps no number


def test_card_photo_to_a_colleague_is_delivered(gw: InProcessGateway, sink: Sink) -> None:
    sink.messages.clear()
    reply = _send(
        gw,
        photo_mail("colleague@example.lg.jp", "<ocr-in@example.lg.jp>"),
        "colleague@example.lg.jp",
    )
    assert "2.6.0" not in reply
    assert len(sink.wait_for(1)) == 1


def test_image_in_a_part_that_looks_like_text_is_ocrd_in_a_worker(
    gw: InProcessGateway, sink: Sink
) -> None:
    # Small and "text/plain": the gateway starts it in its serving process, which
    # must hand it to a worker (where the card is read) rather than OCR it there.
    sink.messages.clear()
    engine.cache_clear()  # this process is the gateway's serving process
    reply = _send(gw, image_in_a_text_part("someone@kaisha-abc.jp"), "someone@kaisha-abc.jp")
    assert "2.6.0" in reply, reply
    assert sink.messages == []
    assert engine.cache_info().currsize == 0  # Tesseract was never started here
