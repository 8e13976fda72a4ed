"""`dlp serve` as a real process tree: several processes on one port, SIGTERM,
SIGHUP, metrics, JSON logs, and `dlp quarantine` on what it held (issue 5)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosmtplib
import pytest
from gwtools import ROOT, LoopThread, Sink, write_config
from support import free_port, my_number

pytestmark = pytest.mark.timeout(90)

DLP = str(Path(sys.executable).with_name("dlp"))
SENDER = "sender@example.lg.jp"
EXTERNAL = "someone@kaisha-abc.jp"
LOOKALIKE = "aaabb@exp.com"


class Served:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log_path = config, port, log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [DLP, "serve", "--config", str(config)],
            cwd=str(config.parent.parent),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            if '"event": "up"' in log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise AssertionError("gateway did not come up:\n" + log.read_text())

    def log_lines(self) -> list[dict[str, object]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._log.close()


@pytest.fixture()
def sink(lt: LoopThread) -> Iterator[Sink]:
    s = Sink(lt).start()
    yield s
    s.stop()


def _serving_children(pid: int) -> list[int]:
    """The supervisor's serving processes (not multiprocessing's resource tracker)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == pid and b"spawn_main" in cmd and stat[0] != "Z":
            out.append(int(entry))
    return sorted(out)


def plain(subject: str, body: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {EXTERNAL}\r\nSubject: {subject}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


@pytest.mark.asyncio
async def test_two_processes_metrics_logs_and_quarantine_cli(sink: Sink, tmp_path: Path) -> None:
    """Twenty concurrent clients on the test's loop, then the CLI and the metrics
    (the gateway processes and the sink run elsewhere, so the blocking steps
    after the burst hold up nothing)."""
    port, mport = free_port(), free_port()
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        listen_port=port,
        smtp={"processes": 2, "metrics_listen": f"127.0.0.1:{mport}"},
    )
    served = Served(cfg, port, tmp_path / "serve.log")
    number = my_number("12345678901")
    try:
        await asyncio.gather(
            *(
                aiosmtplib.send(
                    plain(f"m{i}", "こんにちは"),
                    sender=SENDER,
                    recipients=[EXTERNAL],
                    hostname="127.0.0.1",
                    port=port,
                    timeout=30,
                )
                for i in range(20)
            )
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            code, _ = c.docmd("XFORWARD IDENT=ABCDEF1234")
            assert code == 250
            c.sendmail(SENDER, [EXTERNAL], plain("名簿", f"マイナンバー {number}"))
        assert len(sink.wait_for(20)) == 20

        listed = subprocess.run(
            [DLP, "quarantine", "list", "--json", "--config", str(cfg)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert len(listed) == 1
        held = json.loads(listed[0])
        for key in ("id", "message_id", "sender", "recipients", "reasons", "held_at"):
            assert key in held
        assert held["recipients"] == [EXTERNAL] and held["audit_key"] == "ABCDEF1234"
        assert number not in listed[0]

        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
        )
        assert 'dlp_messages_total{verdict="deliver"} 20.0' in body
        assert 'dlp_messages_total{verdict="hold"} 1.0' in body
        assert "dlp_hold_queue_depth 1.0" in body

        # A serving process that dies is replaced; the port keeps serving meanwhile.
        victim = _serving_children(served.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (
                any(e.get("event") == "restart" for e in served.log_lines())
                and len(_serving_children(served.proc.pid)) == 2
                and victim not in _serving_children(served.proc.pid)
            ):
                break
            time.sleep(0.2)
        assert victim not in _serving_children(served.proc.pid)
        assert len(_serving_children(served.proc.pid)) == 2

        out = subprocess.run(
            [DLP, "quarantine", "release", held["id"], "--config", str(cfg), "--comment", "ok"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert len(sink.wait_for(21)) == 21
        assert (
            subprocess.run(
                [DLP, "quarantine", "list", "--json", "--config", str(cfg)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            == ""
        )
    finally:
        assert served.stop() == 0
    lines = served.log_lines()
    messages = [entry for entry in lines if entry.get("event") == "message"]
    assert len(messages) == 21
    assert {m["action"] for m in messages} == {"deliver", "hold"}
    assert all("audit_key" in m and "total_ms" in m for m in messages)
    # Two serving processes, plus the one that replaced the killed one.
    assert len({e.get("pid") for e in lines if e.get("event") == "listening"}) == 3
    assert number not in served.log_path.read_text()


def test_a_process_dying_while_another_restarts_is_restarted_at_once(
    sink: Sink, tmp_path: Path
) -> None:
    """A restart takes seconds (a fresh interpreter, the scanner, its workers).  The
    supervisor used to wait for it, so a second process dying meanwhile stayed down as
    long; with both down the port refused connections (seen in bench/soak.py)."""
    port = free_port()
    cfg = write_config(tmp_path, next_hop_port=sink.port, listen_port=port, smtp={"processes": 2})
    served = Served(cfg, port, tmp_path / "serve.log")

    def after_up() -> list[str]:
        events = [str(e.get("event")) for e in served.log_lines()]
        return events[events.index("up") + 1 :]

    def wait(probe: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not probe():
            assert time.monotonic() < deadline, f"{what}:\n" + served.log_path.read_text()
            time.sleep(0.05)

    try:
        first, second = _serving_children(served.proc.pid)
        os.kill(first, signal.SIGKILL)
        wait(lambda: "restart" in after_up(), "the first restart")
        os.kill(second, signal.SIGKILL)
        wait(lambda: after_up().count("listening") == 2, "both processes back")
        lifecycle = [e for e in after_up() if e in ("restart", "listening")]
        # The second restart began while the first process was still starting.
        assert lifecycle == ["restart", "restart", "listening", "listening"], lifecycle
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.sendmail(SENDER, [EXTERNAL], plain("after", "both restarted"))
        assert len(sink.wait_for(1)) == 1
    finally:
        assert served.stop() == 0


def test_sigterm_finishes_the_open_transaction_and_refuses_new_ones(
    sink: Sink, tmp_path: Path
) -> None:
    port = free_port()
    cfg = write_config(tmp_path, next_hop_port=sink.port, listen_port=port, smtp={"processes": 2})
    served = Served(cfg, port, tmp_path / "serve.log")
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=30)
        c.ehlo("mta")
        assert c.mail(SENDER)[0] == 250
        assert c.rcpt(EXTERNAL)[0] == 250
        idle = [smtplib.SMTP("127.0.0.1", port, timeout=30) for _ in range(4)]
        for i in idle:  # between transactions: these are told 421 and closed at once
            i.ehlo("idle")
        served.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        for i in idle:
            assert i.getreply()[0] == 421
            i.close()
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", port, timeout=10)
        assert refused.value.smtp_code == 421
        code, _ = c.data(plain("in flight", "sent while stopping"))
        assert code == 250
        c.close()
        assert served.proc.wait(30) == 0
    finally:
        served.stop()
    got = sink.wait_for(1)
    assert len(got) == 1 and b"in flight" in got[0].content
    time.sleep(0.3)
    assert len(sink.messages) == 1


def test_sighup_reloads_the_allowlist_and_keeps_the_last_good_one(
    sink: Sink, tmp_path: Path
) -> None:
    port = free_port()
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        listen_port=port,
        smtp={"processes": 1},
        sections={"sendlog": {"purge_interval_hours": 0.0005}},  # every 1.8 s
    )
    allowlist = tmp_path / "config" / "allowed_domains.txt"
    served = Served(cfg, port, tmp_path / "serve.log")

    def rcpt_code() -> int:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("mta")
            c.mail(SENDER)
            return c.rcpt(LOOKALIKE)[0]

    try:
        assert rcpt_code() == 550  # exp.co.jp is a partner: exp.com is its lookalike
        allowlist.write_text("[own]\nexample.lg.jp\n[bogus section]\nexp.co.jp\n", encoding="utf-8")
        served.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert served.proc.poll() is None
        assert rcpt_code() == 550  # the broken file was refused; the last good list stays
        allowlist.write_text("[own]\nexample.lg.jp\n\n[partner]\n", encoding="utf-8")
        served.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert rcpt_code() == 250  # exp.co.jp is gone, so exp.com is merely external
    finally:
        assert served.stop() == 0
    events = [e.get("event") for e in served.log_lines()]
    assert "reload failed" in events and "reload" in events
    assert "retention" in events  # the daily purge ran in the serving process
    (first, *_) = [e for e in served.log_lines() if e.get("event") == "retention"]
    assert isinstance(first["purged"], int) and "T" in first["purged_before"], first
    assert "datetime" not in str(first)  # no Python repr in the log
    (up,) = [e for e in served.log_lines() if e.get("event") == "up"]
    assert (up["own_domains"], up["partner_domains"]) == (1, 2), up


def test_sighup_says_when_dlp_toml_is_broken_or_changed(sink: Sink, tmp_path: Path) -> None:
    """A review of 3 Dec (fourth round): after editing dlp.toml (a typo in a value) and
    SIGHUP, the log said only "allowlist reload"; the broken file surfaced at the next
    restart, with all mail deferred."""
    port = free_port()
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        listen_port=port,
        smtp={"processes": 1},
        domains={"lookalike_action": "reject"},
    )
    served = Served(cfg, port, tmp_path / "serve.log")
    good = cfg.read_text(encoding="utf-8")
    assert good.count('"reject"') == 1
    try:
        cfg.write_text(good.replace('"reject"', '"rejct"'), encoding="utf-8")
        served.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert served.proc.poll() is None
        cfg.write_text(good.replace('"reject"', '"hold"'), encoding="utf-8")
        served.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
    finally:
        assert served.stop() == 0
    lines = served.log_lines()
    (broken,) = [e for e in lines if e.get("event") == "config broken"]
    assert "lookalike_action" in broken["msg"] and "would not start again" in broken["msg"]
    (changed,) = [e for e in lines if e.get("event") == "config changed"]
    assert "next restart" in changed["msg"]


def test_start_fails_clearly_when_the_port_is_taken(sink: Sink, tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        cfg = write_config(tmp_path, next_hop_port=sink.port, listen_port=port)
        out = subprocess.run(
            [DLP, "serve", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(ROOT),
        )
    assert out.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in out.stderr


def test_a_second_serve_on_the_same_port_is_refused(sink: Sink, tmp_path: Path) -> None:
    """The serving processes share their port (SO_REUSEPORT), which would let a second
    `dlp serve` share it too and quietly take part of the mail: it is refused at start,
    and the first keeps all of it."""
    port = free_port()
    cfg = write_config(tmp_path, next_hop_port=sink.port, listen_port=port)
    served = Served(cfg, port, tmp_path / "serve.log")
    try:
        second = subprocess.run(
            [DLP, "serve", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=str(ROOT),
        )
        assert second.returncode == 2
        assert (
            f"127.0.0.1:{port} is already in use — is another dlp serve running?" in second.stderr
        )
        assert "listening" not in second.stderr  # refused before any serving process
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.sendmail(SENDER, [EXTERNAL], plain("still here", "こんにちは"))
        assert len(sink.wait_for(1)) == 1
    finally:
        assert served.stop() == 0


def test_a_port_left_by_a_stopped_gateway_is_not_taken_for_in_use(
    sink: Sink, tmp_path: Path
) -> None:
    """Sessions the gateway closed itself (QUIT) leave its side in TIME_WAIT; the
    check for another gateway must not refuse the restart because of them."""
    port = free_port()
    cfg = write_config(tmp_path, next_hop_port=sink.port, listen_port=port)
    first = Served(cfg, port, tmp_path / "first.log")
    try:
        for _ in range(3):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                c.noop()
    finally:
        assert first.stop() == 0
    again = Served(cfg, port, tmp_path / "again.log")
    assert again.stop() == 0


def test_retention_runs_write_the_signed_chain_head(sink: Sink, tmp_path: Path) -> None:
    """The daily retention run (here every 1.8 s) writes the send log's chain head to the
    JSON log, signed with the key kept outside the database, and appends it to the
    heads file; `dlp log verify --key` then holds the chain against those heads."""
    key = tmp_path / "head.key"
    made = subprocess.run([DLP, "log", "keygen", str(key)], capture_output=True, timeout=60)
    assert made.returncode == 0, made.stderr
    port = free_port()
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        listen_port=port,
        smtp={"processes": 1},
        sections={"sendlog": {"purge_interval_hours": 0.0005, "head_key_file": str(key)}},
    )
    served = Served(cfg, port, tmp_path / "serve.log")
    try:
        with (
            smtplib.SMTP("127.0.0.1", port, timeout=30) as c,
            pytest.raises(smtplib.SMTPRecipientsRefused),
        ):
            c.sendmail(SENDER, [LOOKALIKE], plain("資料", "こんにちは"))  # refused, recorded
        deadline = time.monotonic() + 30
        heads: list[dict[str, object]] = []
        while time.monotonic() < deadline and not (len(heads) >= 2 and heads[-1]["seq"] == 1):
            heads = [e for e in served.log_lines() if e.get("event") == "sendlog head"]
            time.sleep(0.2)
    finally:
        assert served.stop() == 0
    assert len(heads) >= 2, served.log_path.read_text()
    last = heads[-1]
    assert last["level"] == "info" and last["signed"] is True and last["source"] == "retention"
    assert last["seq"] == 1 and last["entries"] == 1 and last["prev"] == heads[-2]["hmac"]
    recorded = [
        json.loads(x) for x in (tmp_path / "var" / "sendlog-heads.jsonl").read_text().splitlines()
    ]
    assert recorded[-1]["hmac"] == last["hmac"] and recorded[-1]["hash"] == last["hash"]
    check = subprocess.run(
        [DLP, "log", "verify", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"all {len(recorded)} in" in check.stdout


def test_start_refuses_a_head_key_others_can_read(sink: Sink, tmp_path: Path) -> None:
    key = tmp_path / "head.key"
    assert subprocess.run([DLP, "log", "keygen", str(key)], timeout=60).returncode == 0
    key.chmod(0o644)
    cfg = write_config(
        tmp_path, next_hop_port=sink.port, sections={"sendlog": {"head_key_file": str(key)}}
    )
    out = subprocess.run(
        [DLP, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "head_key_file" in out.stderr and f"chmod 600 {key}" in out.stderr


def test_start_names_a_missing_or_wrong_tls_certificate(sink: Sink, tmp_path: Path) -> None:
    """It was reported as "cannot listen on 127.0.0.1:PORT: No such file or directory"."""
    missing = tmp_path / "certs" / "gw.pem"
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        smtp={"tls_cert": str(missing), "tls_key": str(missing)},
    )
    out = subprocess.run(
        [DLP, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert f"[smtp] tls_cert: {missing}: No such file or directory" in out.stderr, out.stderr
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello", encoding="utf-8")
    cfg = write_config(
        tmp_path, next_hop_port=sink.port, smtp={"tls_cert": str(not_pem), "tls_key": str(not_pem)}
    )
    out = subprocess.run(
        [DLP, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "not a PEM certificate and its private key" in out.stderr


def test_start_refuses_a_hold_queue_it_cannot_write(sink: Sink, tmp_path: Path) -> None:
    """A review of 3 Dec (fourth round): with an unusable [quarantine] dir the gateway
    started, and every message a rule held got 451 with "QuarantineStorageError" in
    the log, no path, no reason."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file", encoding="utf-8")
    cfg = write_config(
        tmp_path,
        next_hop_port=sink.port,
        listen_port=free_port(),
        sections={"quarantine": {"dir": str(blocker / "q")}},
    )
    out = subprocess.run(
        [DLP, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert f"{blocker / 'q'}: cannot hold messages there" in out.stderr, out.stderr
    assert f"{blocker} is a file, not a directory" in out.stderr, out.stderr


@pytest.mark.timeout(300)
def test_a_changed_allowlist_takes_effect_without_stalling_the_gateway(
    sink: Sink, tmp_path: Path
) -> None:
    """The allowlist file is replaced by one of 100,000 partner domains while the
    gateway runs.  The next transaction notices; the new index is built off the
    event loop, so meanwhile RCPTs are answered at once under the old list, and
    then the lookalike of the new partner is refused, naming the domain meant."""
    import random

    port = free_port()
    cfg = write_config(tmp_path, next_hop_port=sink.port, listen_port=port, smtp={"processes": 1})
    allowlist = tmp_path / "config" / "allowed_domains.txt"
    served = Served(cfg, port, tmp_path / "serve.log")
    target = "staff@mirai-kyousai.or.jp"  # one letter more than the partner mirai-kyosai.or.jp
    answers: list[tuple[int, str, float]] = []

    def rcpt(c: smtplib.SMTP) -> tuple[int, str, float]:
        t = time.monotonic()
        c.mail(SENDER)
        code, text = c.rcpt(target)
        c.rset()
        return code, text.decode(), time.monotonic() - t

    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
            c.ehlo("mta")
            assert rcpt(c)[0] == 250  # not a partner yet: ordinary external mail
            rng = random.Random(12)
            letters = "abcdefghijkmnoprstuwyz"
            lines = ["[own]", "example.lg.jp", "[partner]", "exp.co.jp", "mirai-kyosai.or.jp"]
            lines += [
                "".join(rng.choice(letters) for _ in range(rng.randint(8, 14))) + ".co.jp"
                for _ in range(100_000)
            ]
            new = allowlist.with_suffix(".new")  # written aside and renamed, as deploy tools do
            new.write_text("\n".join(lines) + "\n", encoding="utf-8")
            os.replace(new, allowlist)
            deadline = time.monotonic() + 200
            while time.monotonic() < deadline:
                answers.append(rcpt(c))
                if answers[-1][0] != 250:
                    break
                time.sleep(0.02)
    finally:
        assert served.stop() == 0
    codes = [a[0] for a in answers]
    assert codes[-1] == 550, answers[-1]
    refusal = answers[-1][1]
    assert "mirai-kyosai.or.jp" in refusal
    assert "(mirai-kyousai.or.jp ↔ mirai-kyosai.or.jp)" in refusal
    # Answered under the old list while the new one was indexed: had the reload
    # run on the event loop, the first RCPT after the change would have waited
    # for it and been refused.
    assert codes[0] == 250 and set(codes[:-1]) == {250}
    slowest = max(a[2] for a in answers[:-1])
    print(f"{len(answers) - 1} transactions during the reload, slowest {slowest * 1000:.0f} ms")
