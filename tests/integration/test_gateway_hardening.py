"""Attacks on the SMTP side of the gateway (issue 11), through real SMTP conversations:
addresses that route elsewhere than their domain, forged X-DLP-* verdict headers,
and clients that hold too many sessions or trickle DATA (slow loris)."""

from __future__ import annotations

import json
import logging
import select
import smtplib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gwtools import (
    EXTERNAL,
    SENDER,
    InProcessGateway,
    LoopThread,
    Sink,
    sendlog_entries,
    write_config,
)
from gwtools import plain as gwtools_plain
from support import my_number

from dlp.smtp.gateway import JsonFormatter

pytestmark = pytest.mark.timeout(60)

OWN = "example.lg.jp"  # own domain in write_config's allowlist


def plain(subject: str, body: str, extra: str = "") -> bytes:
    return gwtools_plain(subject, body, first=extra)


class JsonLines(logging.Handler):
    """The gateway's JSON log lines, as `dlp serve` writes them, kept in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def events(self, name: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("event") == name]


@pytest.fixture(scope="module")
def gw(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    cfg = write_config(tmp_path_factory.mktemp("gw"), next_hop_port=sink.port)
    g = InProcessGateway(cfg, lt)
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def fresh_sink(sink: Sink) -> None:
    sink.messages.clear()
    sink.behaviour.__init__()  # type: ignore[misc]


@pytest.fixture
def jsonlog() -> Iterator[JsonLines]:
    handler = JsonLines()
    logger = logging.getLogger("dlp.smtp")
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def client(port: int) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", port, timeout=30)
    c.ehlo("mta.example.lg.jp")
    return c


# -- addresses that route elsewhere -------------------------------------------------

ROUTING_RECIPIENTS = [
    # the percent hack: Postfix resolves user%evil@<local domain> to user@evil
    ("<user%evil.example@example.lg.jp>", "percent"),
    ("<USER%EVIL.EXAMPLE@EXAMPLE.LG.JP>", "percent"),
    ('<"user%evil.example"@example.lg.jp>', "percent"),  # quoting hides nothing
    ("<user%40evil.example@example.lg.jp>", "percent"),  # percent-encoded "@"
    ("<user@evil.example%example.lg.jp>", "percent"),  # in the domain
    ("<user\uff05evil.example@example.lg.jp>", "percent"),  # full-width ％
    ("<user\ufe6aevil.example@example.lg.jp>", "percent"),  # small ﹪
    ("<user\u066aevil.example@example.lg.jp>", "percent"),  # Arabic ٪ (not NFKC-folded)
    ("<user@xn--evilexample-xj25d.jp>", "percent"),  # IDN label hiding ％
    # the bang path: evil!user@<local domain> becomes user@evil
    ("<evil.example!user@example.lg.jp>", "bang"),
    ('<"evil.example!user"@example.lg.jp>', "bang"),
    ("<evil.example\uff01user@example.lg.jp>", "bang"),  # full-width ！
    ("<evil.example\u01c3user@example.lg.jp>", "bang"),  # Latin click ǃ
    # a second "@": quoted, escaped inside the quotes, or full-width
    ('<"user@evil.example"@example.lg.jp>', "quoted-at"),
    ('<"user\\@evil.example"@example.lg.jp>', "quoted-at"),
    ("<user\uff20evil.example@example.lg.jp>", "quoted-at"),
    ("<user@evil.example\uff20example.lg.jp>", "quoted-at"),
    # the only "@" a full-width ＠ or small ﹫ (typed in full-width mode): a local name
    # to the next hop, an address at exp.com to a reader (a review of 3 Dec)
    ("<user\uff20exp.com>", "wide-at"),
    ("<user\ufe6bexample.lg.jp>", "wide-at"),
    # source routes, which aiosmtpd's parser would silently drop
    ("<@relay.example:user@example.lg.jp>", "source-route"),
    ("<@relay.example,@other.example:user@example.lg.jp>", "source-route"),
    ("< @relay.example:user@example.lg.jp>", "source-route"),
    ("<(comment)@relay.example:user@example.lg.jp>", "source-route"),
]


def test_addresses_that_route_elsewhere_are_refused_at_rcpt(
    gw: InProcessGateway, sink: Sink, jsonlog: JsonLines
) -> None:
    with client(gw.port) as c:
        assert c.mail(SENDER, ["SMTPUTF8"])[0] == 250
        c.command_encoding = "utf-8"
        for arg, _kind in ROUTING_RECIPIENTS:
            code, text = c.docmd(f"RCPT TO:{arg}")
            assert code == 550, (arg, code, text)
            reply = text.decode()
            assert reply.startswith("5.1.3 宛先を受け付けません: "), arg
            assert "user@domain" in reply and "Recipient refused" in reply, arg
            assert len(text) + 4 <= 510, "an SMTP reply line is at most 512 octets"
        # The same message still goes to its ordinary recipient, and only there.
        assert c.docmd(f"RCPT TO:<{EXTERNAL}>")[0] == 250
        assert c.data(plain("routing", "本文"))[0] == 250
    got = sink.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == [EXTERNAL]

    refused = jsonlog.events("recipient refused")
    assert [line["kind"] for line in refused] == [k for _, k in ROUTING_RECIPIENTS]
    assert {line["rule"] for line in refused} == {"routing-address"}
    entries = [e.record for e in sendlog_entries(gw.settings) if e.record.rule == "routing-address"]
    assert len(entries) == len(ROUTING_RECIPIENTS)
    assert all(e.action == "reject" for e in entries)


@pytest.mark.parametrize(
    "reply_text",
    [
        ("%", "'%' in an address can make a mail server forward it to another domain"),
        ("!", "'!' (UUCP bang path) in an address can route it to another host"),
    ],
)
def test_refusal_says_why(gw: InProcessGateway, reply_text: tuple[str, str]) -> None:
    char, why = reply_text
    with client(gw.port) as c:
        c.mail(SENDER)
        code, text = c.docmd(f"RCPT TO:<a{char}b@{OWN}>")
    assert code == 550 and why in text.decode()


@pytest.mark.parametrize(
    "address",
    [
        "tanaka.taro+invoice@kaisha-abc.jp",
        "o'brien@kaisha-abc.jp",
        '"tanaka taro"@kaisha-abc.jp',
        "山田@例え.jp",
        "user@xn--r8jz45g.jp",  # 例え.jp in ACE form
        "user@[192.0.2.1]",
    ],
)
def test_ordinary_addresses_are_not_refused(gw: InProcessGateway, sink: Sink, address: str) -> None:
    with client(gw.port) as c:
        assert c.mail(SENDER, ["SMTPUTF8"])[0] == 250
        c.command_encoding = "utf-8"
        code, text = c.docmd(f"RCPT TO:<{address}>")
        assert code == 250, text


def test_sender_that_routes_elsewhere_is_refused_at_mail(
    gw: InProcessGateway, sink: Sink, jsonlog: JsonLines
) -> None:
    with client(gw.port) as c:
        code, text = c.docmd(f"MAIL FROM:<user%evil.example@{OWN}>")
        assert code == 550 and text.decode().startswith("5.1.7 送信者アドレスを受け付けません")
        assert "Sender refused" in text.decode()
        # The session goes on: a proper sender is accepted next.
        assert c.docmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.docmd(f"RCPT TO:<{EXTERNAL}>")[0] == 250
        assert c.data(plain("after refusal", "本文"))[0] == 250
        assert c.docmd("MAIL FROM:<>")[0] == 250  # the null sender is fine
    assert len(sink.wait_for(1)) == 1
    [line] = jsonlog.events("sender refused")
    assert line["kind"] == "percent" and line["rule"] == "routing-address"
    assert line["sender"] == f"user%evil.example@{OWN}"


# -- forged verdict headers ----------------------------------------------------------

N1, N2, N3 = my_number("12345678901"), my_number("23456789012"), my_number("98765432109")

FORGED = (
    "X-DLP-Verdict: deliver; rule=forged-by-sender\r\n"
    "x-dlp-audit-key: forged-key\r\n"  # any case
    "X-Dlp-Reason: forged first line\r\n"  # folded: continuation lines go with it
    " forged continuation\r\n"
    "\tforged-tab-continuation\r\n"
    "X-DLP-MyNumber : distinct=0; forged-obsolete-colon\r\n"  # white space before ":"
)
KEPT = (
    "X-DLPX: kept, another family\r\n"
    "X-Original-DLP-Verdict: kept, not our prefix\r\n"
    "Comments: mentions X-DLP-Verdict: kept\r\n"
)


def _forged(subject: str, body: str) -> tuple[bytes, bytes]:
    """A message with forged verdict fields spread through its header, and the
    same message as it must arrive (those fields gone, every other byte intact)."""
    head = f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: {subject}\r\n"
    rest = (
        f"Message-ID: <{uuid.uuid4().hex}@example.lg.jp>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\nX-DLP-Verdict: a body line that looks like a field stays\r\n"
    )
    first, others = FORGED.split("\r\n", 1)
    sent = first + "\r\n" + head + others + KEPT + rest
    return sent.encode(), (head + KEPT + rest).encode()


def _header(content: bytes) -> str:
    return content.split(b"\r\n\r\n", 1)[0].decode()


def test_forged_verdict_headers_never_reach_the_next_hop(
    gw: InProcessGateway, sink: Sink, jsonlog: JsonLines
) -> None:
    sent, expected = _forged("clean", "こんにちは")
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], sent)
    [got] = sink.wait_for(1)
    assert got.content == expected  # byte for byte, but for the forged fields
    [line] = jsonlog.events("verdict headers removed")
    assert line["fields"] == ["X-DLP-Verdict", "x-dlp-audit-key", "X-Dlp-Reason", "X-DLP-MyNumber"]


def test_forged_verdict_headers_removed_before_tagging(gw: InProcessGateway, sink: Sink) -> None:
    sent, expected = _forged("名簿", f"氏名 山田太郎 {N1}")  # medium confidence: tag
    with client(gw.port) as c:
        c.sendmail(SENDER, [EXTERNAL], sent)
    [got] = sink.wait_for(1)
    assert got.content.endswith(expected)
    header = _header(got.content)
    assert "forged" not in header
    verdicts = [h for h in header.split("\r\n") if h.lower().startswith("x-dlp-verdict")]
    assert len(verdicts) == 1 and verdicts[0].startswith("X-DLP-Verdict: tag; rule=")


def _send_raw(port: int, content: bytes) -> None:
    """One message over a plain socket, exactly these bytes (smtplib would fix line ends)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        for command in (
            b"HELO mta",
            f"MAIL FROM:<{SENDER}>".encode(),
            f"RCPT TO:<{EXTERNAL}>".encode(),
            b"DATA",
        ):
            s.sendall(command + b"\r\n")
            assert f.readline()[:1] in (b"2", b"3")
        s.sendall(content + b"\r\n.\r\n")
        assert f.readline().startswith(b"250 ")


def test_forged_verdict_headers_removed_on_bare_lf_mail(gw: InProcessGateway, sink: Sink) -> None:
    sent, expected = _forged("bare LF", "こんにちは")
    _send_raw(gw.port, sent.replace(b"\r\n", b"\n")[:-1])
    [got] = sink.wait_for(1)
    assert got.content == expected  # CRLF again on the way out (datareader.dot_stuff)


def test_a_field_hidden_behind_a_lone_cr_is_removed(gw: InProcessGateway, sink: Sink) -> None:
    """The relay turns a lone CR into CRLF, which would make the hidden field a real one."""
    head = f"From: {SENDER}\r\nSubject: lone CR\rX-DLP-Verdict: deliver; rule=forged\r\n"
    _send_raw(gw.port, (head + "\r\nbody").encode())
    [got] = sink.wait_for(1)
    assert got.content == f"From: {SENDER}\r\nSubject: lone CR\r\n\r\nbody\r\n".encode()


def test_a_released_message_loses_forged_headers_the_held_copy_keeps_them(
    gw: InProcessGateway, sink: Sink
) -> None:
    from dlp.smtp.release import release

    body = f"職員の個人番号です。\r\n個人番号: {N1}\r\nマイナンバー {N2}\r\n個人番号：{N3}"
    sent, _ = _forged("hold me", body)
    with client(gw.port) as c:
        c.mail(SENDER)
        c.rcpt(EXTERNAL)
        code, resp = c.data(sent)
    assert code == 250 and resp.startswith(b"2.6.0"), resp
    held_id = resp.decode().rsplit("[", 1)[1].rstrip("]")
    assert b"forged-by-sender" in gw.gateway.quarantine.read(held_id)  # evidence kept
    release(gw.settings, held_id, "reviewer", "")
    [got] = sink.wait_for(1)
    assert "forged" not in _header(got.content) and N1.encode() in got.content


# -- session caps and slow DATA ----------------------------------------------------

CAP_TOTAL, CAP_PER_CLIENT, DATA_SECONDS = 4, 3, 1.0


@pytest.fixture(scope="module")
def capped(
    lt: LoopThread, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    cfg = write_config(
        tmp_path_factory.mktemp("capped"),
        next_hop_port=sink.port,
        smtp={
            "max_sessions": CAP_TOTAL,
            "max_sessions_per_client": CAP_PER_CLIENT,
            "max_data_seconds": DATA_SECONDS,
        },
    )
    g = InProcessGateway(cfg, lt)
    yield g
    g.stop()


def _connect(port: int, source: str) -> tuple[socket.socket, bytes]:
    """A raw session from ``source`` (any 127/8 address works on loopback) and its first line."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return s, s.makefile("rb").readline()


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def _wait_sessions(gw: InProcessGateway, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(gw.gateway.sessions) != n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(gw.gateway.sessions) == n


def test_session_caps_per_client_and_total(
    capped: InProcessGateway, sink: Sink, jsonlog: JsonLines
) -> None:
    port = capped.port
    # One client opening ten sessions at once gets exactly its share.
    tries = [_connect(port, "127.0.0.1") for _ in range(10)]
    greeted = [s for s, line in tries if line.startswith(b"220 ")]
    refused = [(s, line) for s, line in tries if not line.startswith(b"220 ")]
    assert len(greeted) == CAP_PER_CLIENT
    for s, line in refused:
        assert line.startswith(b"421 4.7.0 Too many concurrent sessions from your address"), line
        assert b"(limit 3)" in line and "再試行".encode() in line
        assert _closed_by_server(s)
        s.close()
    # Another client still gets in, up to the total.
    other, line = _connect(port, "127.0.0.2")
    assert line.startswith(b"220 ")
    third, line = _connect(port, "127.0.0.3")
    assert line.startswith(b"421 4.7.0 Too many concurrent sessions (limit 4)"), line
    assert _closed_by_server(third)
    third.close()
    # One JSON line per cap, not one per refusal (the log would flood under attack).
    lines = jsonlog.events("session cap")
    assert [line["cap"] for line in lines] == ["per_client", "sessions"]
    caps = {line["cap"]: line for line in lines}
    assert caps["per_client"]["client"] == "127.0.0.1" and caps["per_client"]["limit"] == 3
    assert caps["per_client"]["refused"] == 1 and caps["per_client"]["client_sessions"] == 3
    assert caps["sessions"]["sessions"] == CAP_TOTAL
    # A session that ends frees its place: mail flows again from the first client.
    for s in [*greeted, other]:
        s.close()
    _wait_sessions(capped, 0)
    with client(port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("after the cap", "本文"))
    assert len(sink.wait_for(1)) == 1
    # Every place was given back: the same burst gets the same share again.
    _wait_sessions(capped, 0)
    again = [_connect(port, "127.0.0.1") for _ in range(CAP_PER_CLIENT + 1)]
    assert [line[:4] for _, line in again] == [b"220 "] * CAP_PER_CLIENT + [b"421 "]
    for s, _ in again:
        s.close()
    _wait_sessions(capped, 0)


def test_sessions_gone_before_a_word_give_their_place_back(capped: InProcessGateway) -> None:
    """A client that closes (or resets) the connection the moment it opens, before its
    session has read anything, is still counted out (a port scanner, a health check)."""
    import struct

    for i in range(40):
        s = socket.create_connection(("127.0.0.1", capped.port), timeout=10)
        if i % 2:  # a reset instead of a close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            s.sendall(b"EHLO x\r\nQUIT\r\n")
        s.close()
    # Connections are accepted in order: once a later one is answered, every one of the
    # forty has been counted in (a busy machine may still hold them in the backlog).
    probe, _ = _connect(capped.port, "127.0.0.2")
    probe.close()
    deadline = time.monotonic() + 10
    while (capped.gateway.sessions or capped.gateway._per_client) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not capped.gateway.sessions and not capped.gateway._per_client
    again = [_connect(capped.port, "127.0.0.1") for _ in range(CAP_PER_CLIENT + 1)]
    assert [line[:4] for _, line in again] == [b"220 "] * CAP_PER_CLIENT + [b"421 "]
    for s, _ in again:
        s.close()
    _wait_sessions(capped, 0)


def test_slow_loris_data_is_cut_off_with_a_tempfail(
    capped: InProcessGateway, sink: Sink, jsonlog: JsonLines
) -> None:
    s, banner = _connect(capped.port, "127.0.0.1")
    f = s.makefile("rb")
    assert banner.startswith(b"220 ")
    for command in (
        b"EHLO mta",
        f"MAIL FROM:<{SENDER}>".encode(),
        f"RCPT TO:<{EXTERNAL}>".encode(),
    ):
        s.sendall(command + b"\r\n")
        line = f.readline()
        while line[3:4] == b"-":
            line = f.readline()
        assert line.startswith(b"250"), line
    s.sendall(b"DATA\r\n")
    assert f.readline().startswith(b"354")
    started = time.monotonic()
    s.sendall(f"From: {SENDER}\r\nSubject: slow\r\n\r\n".encode())
    reply = b""
    # A byte every 0.2 s: each one restarts the idle timer, never the DATA limit.
    # What trickles in after the limit would be commands if it were ever read.
    trickle = iter(b"body\r\nRSET\r\nMAIL FROM:<x@kaisha-abc.jp>\r\n" * 10)
    while b"\n" not in reply and time.monotonic() - started < 10:
        try:
            s.send(bytes([next(trickle)]))
        except (BrokenPipeError, ConnectionResetError):
            break
        if select.select([s], [], [], 0.2)[0]:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    elapsed = time.monotonic() - started
    assert reply.startswith(b"421 4.4.2 DATA took longer than 1 s"), reply
    assert DATA_SECONDS <= elapsed < DATA_SECONDS + 2
    assert _closed_by_server(s)
    s.close()
    _wait_sessions(capped, 0)
    assert sink.messages == []  # nothing half-sent; the MTA retries the whole message
    [line] = [x for x in jsonlog.events("session cap") if x["cap"] == "data_time"]
    assert line["limit"] == DATA_SECONDS and line["seconds"] >= DATA_SECONDS
    # The cut-off session's next-hop transaction was abandoned: a new message goes through.
    with client(capped.port) as c:
        c.sendmail(SENDER, [EXTERNAL], plain("after slow loris", "本文"))
    assert len(sink.wait_for(1)) == 1


IDLE_SECONDS = 1.0


def test_idle_session_closed_idle_timeout_after_its_last_command(
    lt: LoopThread, sink: Sink, tmp_path: Path
) -> None:
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        smtp={"idle_timeout": IDLE_SECONDS, "next_hop_timeout": 0.3},
        scan={"timeout_seconds": 0.3},
        sections={"ocr": {"timeout_seconds": 0.1}},
    )
    g = InProcessGateway(cfg, lt)
    try:
        s, banner = _connect(g.port, "127.0.0.1")
        f = s.makefile("rb")
        assert banner.startswith(b"220 ")
        # Each command, 0.6 s apart, moves the deadline: 2.4 s in all, still open.
        for _ in range(4):
            time.sleep(0.6)
            s.sendall(b"NOOP\r\n")
            assert f.readline().startswith(b"250"), "closed while commands kept coming"
        last = time.monotonic()
        s.settimeout(5)
        # Then silence: told why (as Postfix's smtpd does) and closed by the gateway.
        assert f.readline() == b"421 4.4.2 gw.test Error: timeout exceeded\r\n"
        idle = time.monotonic() - last
        assert f.readline() == b""
        assert IDLE_SECONDS - 0.05 <= idle < IDLE_SECONDS + 1.0, idle
        s.close()
    finally:
        g.stop()


def test_recipients_beyond_the_limit_get_452_and_the_rest_is_relayed(
    gw: InProcessGateway, sink: Sink
) -> None:
    """60,000 RCPTs were all accepted and DATA took a minute with the serving loop
    blocked (a review of 3 Dec 2026).  Beyond [smtp] max_recipients (1000) the MTA is
    told to send the rest in another message."""
    limit = gw.settings.smtp.max_recipients
    with client(gw.port) as c:
        assert c.mail(SENDER)[0] == 250
        for i in range(limit):
            assert c.rcpt(f"r{i}@kaisha-abc.jp")[0] == 250
        code, text = c.rcpt("one-more@kaisha-abc.jp")
        assert code == 452 and b"4.5.3" in text
        assert c.data(plain("many", "本文"))[0] == 250
    (got,) = sink.wait_for(1)
    assert len(got.rcpt_tos) == limit


@pytest.mark.parametrize("command", ["NOOP", "RSET", "HELP", "VRFY a@b.example"])
def test_a_session_of_only_junk_commands_is_closed(gw: InProcessGateway, command: str) -> None:
    with client(gw.port) as c:
        for _ in range(100):
            assert c.docmd(command)[0] in (250, 214, 252, 502), command
        code, _ = c.docmd(command)
        assert code == 421
