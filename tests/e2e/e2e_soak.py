"""The soak under faults: a real Postfix, ``dlp serve`` (several processes, PostgreSQL send
log and hold queue) and a sink, while gateway processes are killed, the database goes away
and the next hop hangs.  Shared by ``bench/soak.py`` (thousands of messages, figures in
BENCHMARKS.md) and ``tests/e2e/test_soak.py`` (a short version).

Topology (every socket on 127.0.0.1)::

    client ─▶ submit smtpd ─▶ Postfix queue ─▶ scan (smtp) ─▶ dlp serve ─▶ sink
                                   └──── bounces (policy refusals) ──────────▶ sink

The sink is the gateway's next hop itself (not Postfix's re-injection port): stalling it
stalls the gateway's own DATA, which is where the ack window lies.  Postfix's relayhost is
the sink too, so bounces of refused mail land there and are counted by the Message-ID of the
message they return.

Faults, each logged with its wall-clock time:

* ``kill``: ``kill -9`` a serving process (the supervisor restarts it) or, every third
  time, a scan worker;
* ``pg``: ``pg_ctlcluster VERSION main restart`` (bench) or ``pg_terminate_backend`` of
  every connection to the soak's own database (test: other tests on the same server are
  not disturbed);
* ``stall``: the sink keeps the message but answers nothing for N seconds, longer than the
  gateway's ``next_hop_timeout``.

At the end every Message-ID must be where its kind says (at the sink, in the hold queue, or
bounced back to the sender), none nowhere, none held at the sink; each duplicate at the sink
is paired with the fault whose window its first copy fell in and with Postfix's deferral
of the hop to the gateway that caused the retry.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import threading
import time
import tomllib
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

from e2e_gateway import (
    DLP,
    EXTERNAL_DOMAIN,
    LOOKALIKE_DOMAIN,
    OWN_DOMAIN,
    REJECT_SENDER,
    SENDER,
    dlp_json,
    dump_toml,
    gateway_config,
    serve_argv,
)
from e2e_postfix import PostfixInstance, PostfixPorts, keep_logs, wait_until
from e2e_process import ServiceProcess
from e2e_sink import Delivery, Sink
from support import digitless_token, free_ports

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=postgres user=postgres connect_timeout=3"

# ---------------------------------------------------------------------------
# The messages

KINDS: tuple[tuple[str, int, str], ...] = (
    # (kind, weight, where it must end up)
    ("clean-short", 30, "sink"),  # nothing to record: no attachment, finding or verdict
    ("clean-long", 8, "sink"),
    ("clean-csv", 14, "sink"),
    ("own-mynumber", 6, "sink"),
    ("mynumber-body", 14, "held"),
    ("mynumber-csv", 14, "held"),
    ("lookalike", 7, "bounced"),
    ("reject-sender", 7, "bounced"),
)

_JA = (
    "お世話になっております。来週の打ち合わせ資料をお送りします。",
    "議事録を添付しますので、ご確認ください。",
    "本件につきましては、担当者より追ってご連絡いたします。",
    "ご不明な点がございましたら、総務課までお問い合わせください。",
    "市民課の窓口は年末年始の期間中も一部開いております。",
)


# The send-log verdict each kind must have left (every message with an attachment, a
# finding or a non-deliver verdict is recorded), whatever the faults did.
RECORDED = {
    "clean-csv": ("deliver", "tag"),
    "own-mynumber": ("deliver", "tag"),
    "mynumber-body": ("hold",),
    "mynumber-csv": ("hold",),
    "lookalike": ("reject",),
    "reject-sender": ("reject",),
}


@dataclass(frozen=True)
class SoakMessage:
    message_id: str
    kind: str
    expect: str
    """``sink``, ``held`` or ``bounced``."""
    sender: str
    recipients: tuple[str, ...]
    data: bytes


def my_number(rng: random.Random) -> str:
    """A random twelve-digit number with a valid check digit (made up, nobody's)."""
    from dlp.detect.mynumber import check_digit, is_valid

    while True:
        base = f"{rng.randrange(10**10, 10**11):011d}"
        number = base + str(check_digit(base))
        if is_valid(number):
            return number


def corpus(count: int, seed: int = 1) -> list[SoakMessage]:
    """``count`` messages of mixed kind and size, each with its own Message-ID."""
    rng = random.Random(seed)
    # Letters only, and the index alone: a Message-ID whose digits could join into a
    # checksum-valid twelve-digit run is masked in the hold queue's metadata
    # (no number is kept), and would no longer be found there by its Message-ID.
    run = digitless_token(8)
    kinds = [k for k, _, _ in KINDS]
    weights = [w for _, w, _ in KINDS]
    expect = {k: e for k, _, e in KINDS}
    out = []
    for i in range(count):
        # Every kind at least once, whatever the count.
        kind = kinds[i] if i < len(kinds) else rng.choices(kinds, weights)[0]
        mid = f"<soak-{run}-n{i:05d}-{kind}@{OWN_DOMAIN}>"
        out.append(_message(rng, mid, kind, expect[kind]))
    rng.shuffle(out)
    return out


def _text(rng: random.Random, size: int) -> str:
    lines = []
    total = 0
    while total < size:
        line = rng.choice(_JA)
        lines.append(line)
        total += len(line.encode())
    return "\n".join(lines) + "\n"


def _message(rng: random.Random, mid: str, kind: str, expect: str) -> SoakMessage:
    sender = REJECT_SENDER if kind == "reject-sender" else SENDER
    domain = {"lookalike": LOOKALIKE_DOMAIN, "own-mynumber": OWN_DOMAIN}.get(kind, EXTERNAL_DOMAIN)
    rcpt = f"user{rng.randrange(1000)}@{domain}"
    body = _text(rng, rng.choice((600, 2_000, 8_000)))
    attachment: tuple[str, bytes, str] | None = None
    if kind == "clean-long":
        body = _text(rng, rng.choice((60_000, 150_000, 400_000)))
    elif kind == "clean-csv":
        rows = ["氏名,部署,件数"] + [
            f"職員{n},{rng.choice(('総務課', '市民課', '税務課'))},{rng.randrange(100)}"
            for n in range(rng.choice((20, 200, 2_000)))
        ]
        attachment = ("集計.csv", "\n".join(rows).encode("utf-8"), "text/csv")
    elif kind in ("mynumber-body", "own-mynumber"):
        n = my_number(rng)
        body += f"従業員の個人番号: {n[:4]} {n[4:8]} {n[8:]}\n"
    elif kind == "mynumber-csv":
        rows = ["氏名,個人番号"] + [
            f"職員{n},{my_number(rng)}" for n in range(rng.randrange(3, 60))
        ]
        attachment = ("名簿.csv", "\n".join(rows).encode("utf-8"), "text/csv")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = f"soak {kind}"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = mid
    msg.set_content(body, charset="utf-8")
    if attachment is not None:
        name, data, ctype = attachment
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return SoakMessage(mid, kind, expect, sender, (rcpt,), msg.as_bytes(policy=policy.SMTP))


# ---------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class Fault:
    kind: str
    """``kill``, ``pg`` or ``stall``."""
    start: float
    end: float
    detail: str

    def label(self, t0: float) -> str:
        return f"{self.kind} at +{self.start - t0:.1f}s ({self.detail})"


@dataclass(frozen=True)
class FaultPlan:
    kill_every: float = 0.0
    """Seconds between kills while mail flows (bench); 0: only ``kill_at``."""
    kill_at: tuple[float, ...] = ()
    """Progress fractions (of messages done) at which to kill (test)."""
    pg_at: float = 0.4
    pg_mode: str = "terminate"
    """``restart`` (``pg_ctlcluster``: the whole server) or ``terminate`` (own database)."""
    stall_at: float = 0.7
    stall_seconds: float = 6.0
    kill_until: float = 0.95
    """No timed kills after this fraction: the last retries finish in peace."""


def process_tree(root_pid: int) -> Iterator[tuple[int, int, str]]:
    """(pid, parent, cmdline) of every descendant of ``root_pid``."""
    stack = [root_pid]
    while stack:
        parent = stack.pop()
        # Per thread: a child started from a thread (the forkserver) is listed under it.
        children: list[str] = []
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children += (task / "children").read_text().split()
        for c in children:
            pid = int(c)
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            yield pid, parent, cmd
            stack.append(pid)


def gateway_processes(supervisor: int) -> tuple[list[int], list[int]]:
    """(serving processes, scan workers) of a running ``dlp serve``."""
    serving, forkservers, workers = [], set(), []
    for pid, parent, cmd in process_tree(supervisor):
        if "resource_tracker" in cmd:
            continue
        if parent == supervisor and "spawn_main" in cmd:
            serving.append(pid)
        elif "forkserver" in cmd and parent in serving:
            forkservers.add(pid)
        elif parent in forkservers:
            workers.append(pid)
    return serving, workers


# ---------------------------------------------------------------------------
# The run


@dataclass
class Outcome:
    """Where each Message-ID ended up, and what that means."""

    messages: int
    by_kind: dict[str, int]
    at_sink: dict[str, list[Delivery]]
    held: dict[str, list[str]]
    bounced: dict[str, int]
    lost: list[str]
    misplaced: list[tuple[str, str, str]]
    """(Message-ID, expected, found)."""
    unrecorded: list[tuple[str, str]]
    """(Message-ID, kind) of messages with no send-log entry of the verdict they got."""
    duplicates: list[dict[str, Any]]
    faults: list[Fault]
    t0: float
    seconds: float
    deferrals: Counter[str]
    """Postfix's deferrals of the hop to the gateway, by reason."""
    pending_rows: int
    log_verified: bool
    log_verify_output: str
    restarts: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duplicate_copies(self) -> int:
        return sum(d["copies"] - 1 for d in self.duplicates)

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        faults = Counter(f.kind for f in self.faults)
        lines = [
            f"messages: {self.messages} ({kinds})",
            f"faults: {faults['kill']} kills, {faults['pg']} database faults, "
            f"{faults['stall']} stalls; serving-process restarts logged: {self.restarts}",
            f"at the sink: {len(self.at_sink)}, held: {len(self.held)}, "
            f"bounced: {len(self.bounced)}, lost: {len(self.lost)}, "
            f"misplaced: {len(self.misplaced)}, without their send-log entry: "
            f"{len(self.unrecorded)}",
            f"duplicates: {len(self.duplicates)} messages, {self.duplicate_copies} extra copies",
            f"Postfix deferrals of the hop to the gateway: {self.deferrals.total()}",
            *(f"  {n:5d}  {reason}" for reason, n in self.deferrals.most_common()),
            f"pending hold-queue rows left: {self.pending_rows}; "
            f"send log chain verified: {self.log_verified}",
            f"wall time: {self.seconds:.1f}s",
        ]
        for d in self.duplicates:
            lines.append(
                f"  duplicate {d['message_id']} ({d['kind']}, queue id {d['queue_id']}): "
                f"{d['copies']} copies, first at +{d['first_copy']:.1f}s; {d['fault']}; "
                f"Postfix: {d['deferral']}"
            )
        for mid, exp, found in self.misplaced:
            lines.append(f"  MISPLACED {mid}: expected {exp}, found {found}")
        for mid in self.lost:
            lines.append(f"  LOST {mid}")
        for mid, kind in self.unrecorded:
            lines.append(f"  NOT RECORDED {mid} ({kind})")
        return "\n".join(lines)


class SoakPostfix(PostfixInstance):
    """The e2e instance with quick retries: mail deferred by a fault comes back within
    seconds instead of the default 300 s backoff."""

    def __init__(self, root: Path, ports: PostfixPorts, extra: dict[str, str]) -> None:
        super().__init__(root, ports)
        self.extra = extra

    RETRY: ClassVar[dict[str, str]] = {
        "queue_run_delay": "2s",
        "minimal_backoff_time": "2s",
        "maximal_backoff_time": "4s",
    }

    def main_cf(self) -> str:
        text = super().main_cf()
        for name, value in {**self.RETRY, **self.extra}.items():
            line = f"{name} = {value}"
            text, n = re.subn(rf"^{name} *=.*$", line, text, flags=re.M)
            if not n:
                text += line + "\n"
        return text


class Soak:
    """Everything one soak run needs, torn down by ``close`` whatever happened."""

    def __init__(
        self,
        *,
        processes: int = 3,
        workers: int = 1,
        next_hop_timeout: float = 4.0,
        postconf: dict[str, str] | None = None,
        log: Callable[[str], None] = lambda s: None,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dlp-soak-"))
        self.root.chmod(0o755)
        self.log = log
        submit, before_queue, reinject, gw, sink_port = free_ports(5)
        self.ports = PostfixPorts(submit, before_queue, reinject, gw, sink_port)
        self.sink = Sink(sink_port)
        self.postfix = SoakPostfix(self.root / "postfix", self.ports, dict(postconf or {}))
        self.database = f"dlp_soak_{uuid.uuid4().hex[:10]}"
        self.dsn = PG_ADMIN.replace("dbname=postgres", f"dbname={self.database}")
        self.processes = processes
        self.workers = workers
        self.next_hop_timeout = next_hop_timeout
        self.gateway: ServiceProcess | None = None
        self.config: Path | None = None
        self.faults: list[Fault] = []
        self._db_created = False
        self._log_offset = 0
        self._qids: dict[str, str] = {}
        self._removed: set[str] = set()

    # -- set-up ---------------------------------------------------------------

    def start(self) -> None:
        import psycopg
        from cryptography.fernet import Fernet

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self._db_created = True
        self.sink.start()
        (self.root / "postfix").mkdir()
        self.postfix.start()
        gw_root = self.root / "gateway"
        gw_root.mkdir()
        # The gateway's next hop is the sink itself (see the module docstring).
        gw_ports = replace(self.ports, reinject=self.ports.sink)
        config = gateway_config(
            gw_root,
            gw_ports,
            postgresql_dsn=self.dsn,
            quarantine_key=Fernet.generate_key().decode(),
        )
        cfg = tomllib.loads(config.read_text(encoding="utf-8"))
        cfg["smtp"]["processes"] = self.processes
        cfg["smtp"]["next_hop_timeout"] = self.next_hop_timeout
        cfg["scan"]["workers"] = self.workers
        config.write_text(dump_toml(cfg), encoding="utf-8")
        self.config = config
        # Create the tables once before mail flows (deploy/postfix/README.md).
        self.dlp("log", "verify")
        self.gateway = ServiceProcess(
            serve_argv(config, gw_ports), self.ports.gateway, gw_root / "gateway.log", cwd=gw_root
        )
        self.gateway.start(timeout=120)
        # Every serving process up, not only the first to bind.
        wait_until(
            lambda: len(gateway_processes(self._supervisor())[0]) >= self.processes,
            timeout=60,
            what=f"{self.processes} serving processes",
        )

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.postfix.stop()
        self.sink.stop()
        keep_logs(self.root / "gateway", prefix="soak-")
        keep_logs(self.root / "postfix", prefix="soak-")
        if self._db_created:
            import psycopg

            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(PG_ADMIN, autocommit=True) as conn,
            ):
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        shutil.rmtree(self.root, ignore_errors=True)

    def dlp(self, *args: str) -> str:
        assert self.config is not None
        done = subprocess.run(
            [str(DLP), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"dlp {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def _supervisor(self) -> int:
        assert self.gateway is not None and self.gateway.proc is not None
        return self.gateway.proc.pid

    # -- submission -------------------------------------------------------------

    def submit(self, messages: Sequence[SoakMessage], clients: int = 4) -> None:
        """Hand every message to Postfix (several SMTP clients in parallel)."""
        lock = threading.Lock()
        errors: list[str] = []

        def client(share: Sequence[SoakMessage]) -> None:
            for start in range(0, len(share), 50):
                with smtplib.SMTP("127.0.0.1", self.ports.submit, timeout=60) as s:
                    for m in share[start : start + 50]:
                        try:
                            s.sendmail(m.sender, list(m.recipients), m.data)
                        except smtplib.SMTPException as exc:
                            with lock:
                                errors.append(f"{m.message_id}: {exc}")

        threads = [
            threading.Thread(target=client, args=(messages[i::clients],), daemon=True)
            for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise AssertionError("Postfix refused submissions: " + "; ".join(errors[:5]))

    # -- progress (from Postfix's log) -----------------------------------------------

    def _follow_log(self) -> None:
        """Read what Postfix logged since the last call (the log of a long run is tens of
        MB; re-reading it ten times a second would load the machine being measured)."""
        try:
            with self.postfix.maillog.open("rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for next time
        self._log_offset += end
        text = chunk[:end].decode("utf-8", "replace")
        for m in re.finditer(r" ([0-9A-F]{6,}): message-id=(<[^>]*>)", text):
            self._qids.setdefault(m.group(2), m.group(1))
        self._removed.update(re.findall(r" ([0-9A-F]{6,}): removed", text))

    def _queue_ids(self) -> dict[str, str]:
        """Message-ID → Postfix queue id of the submission (cleanup's log line)."""
        self._follow_log()
        return dict(self._qids)

    def done_count(self, qids: set[str]) -> int:
        """How many submitted messages Postfix has removed from its queue (delivered
        through the gateway, held by it, or bounced)."""
        self._follow_log()
        return len(qids & self._removed)

    # -- faults -------------------------------------------------------------------

    def kill(self, n: int) -> Fault:
        serving, workers = gateway_processes(self._supervisor())
        target_workers = n % 3 == 2 and workers
        pool = workers if target_workers else serving
        if not pool:
            return Fault("kill", time.time(), time.time(), "nothing to kill")
        pid = random.Random(n).choice(pool)
        what = "scan worker" if target_workers else "serving process"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        now = time.time()
        return Fault("kill", now, now, f"{what} pid {pid}")

    def pg_fault(self, mode: str) -> Fault:
        import psycopg

        start = time.time()
        if mode == "restart":
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(["pg_ctlcluster", version, "main", "restart"], check=True, timeout=120)
            detail = f"pg_ctlcluster {version} main restart, {time.time() - start:.1f}s"
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.database,),
                ).fetchall()
            detail = f"pg_terminate_backend: {sum(1 for (ok,) in rows if ok)} connections"
        return Fault("pg", start, time.time(), detail)

    def stall(self, seconds: float) -> Fault:
        start = time.time()
        self.sink.stall(seconds)
        return Fault("stall", start, start + seconds, f"sink silent {seconds:g}s")

    # -- the whole run ----------------------------------------------------------------

    def run(
        self, messages: Sequence[SoakMessage], plan: FaultPlan, timeout: float = 600.0
    ) -> Outcome:
        t0 = time.time()
        submitted = threading.Thread(target=self.submit, args=(messages,), daemon=True)
        submitted.start()
        total = len(messages)
        want = {m.message_id for m in messages}
        kills_done = 0
        next_kill = time.monotonic() + plan.kill_every if plan.kill_every else float("inf")
        pending_kill_at = sorted(plan.kill_at)
        pg_done = stall_done = False
        deadline = time.monotonic() + timeout
        last_flush = time.monotonic()
        qids: set[str] = set()
        while True:
            mapping = self._queue_ids()
            qids = {q for mid, q in mapping.items() if mid in want}
            done = self.done_count(qids)
            progress = done / total
            now = time.monotonic()
            if done >= total and not submitted.is_alive():
                break
            if now > deadline:
                raise AssertionError(
                    f"soak timed out: {done}/{total} messages out of Postfix's queue\n"
                    f"{self.postfix.log_tail()}"
                )
            if pending_kill_at and progress >= pending_kill_at[0]:
                pending_kill_at.pop(0)
                self._fault(self.kill(kills_done), t0)
                kills_done += 1
            elif now >= next_kill and progress < plan.kill_until and progress > 0:
                self._fault(self.kill(kills_done), t0)
                kills_done += 1
                next_kill = now + plan.kill_every
            if not pg_done and progress >= plan.pg_at:
                pg_done = True
                self._fault(self.pg_fault(plan.pg_mode), t0)
            if not stall_done and progress >= plan.stall_at:
                stall_done = True
                self._fault(self.stall(plan.stall_seconds), t0)
            # Once every fault is over, do not wait for the backoff timer.
            faults_over = (
                pg_done and stall_done and not pending_kill_at and time.time() > self._faults_end()
            )
            if faults_over and now - last_flush > 3:
                self.postfix.flush()
                last_flush = now
            time.sleep(0.1)
        # Postfix's bounces (new queue ids) must reach the sink too.
        self.postfix.wait_queue_empty(timeout=120)
        seconds = time.time() - t0
        return self.account(messages, t0, seconds)

    def _fault(self, fault: Fault, t0: float) -> None:
        self.faults.append(fault)
        self.log(fault.label(t0))

    def _faults_end(self) -> float:
        return max((f.end for f in self.faults), default=0.0)

    # -- accounting ---------------------------------------------------------------

    def account(self, messages: Sequence[SoakMessage], t0: float, seconds: float) -> Outcome:
        assert self.config is not None
        by_id = {m.message_id: m for m in messages}
        at_sink: dict[str, list[Delivery]] = defaultdict(list)
        bounced: Counter[str] = Counter()
        header_parser = BytesHeaderParser(policy=policy.compat32)
        for d in self.sink.deliveries():
            if d.is_bounce:
                for mid in _returned_ids(d.data):
                    bounced[mid] += 1
            else:
                mid = str(header_parser.parsebytes(d.data).get("Message-ID", "")).strip()
                at_sink[mid].append(d)
        held: dict[str, list[str]] = defaultdict(list)
        for h in dlp_json(self.config, "quarantine", "list"):
            held[str(h.get("message_id", ""))].append(str(h["id"]))
        places: dict[str, Container[str]] = {"sink": at_sink, "held": held, "bounced": bounced}
        lost, misplaced = [], []
        for mid, m in by_id.items():
            found = [p for p, where in places.items() if mid in where]
            if not found:
                lost.append(mid)
            elif found != [m.expect]:
                misplaced.append((mid, m.expect, "+".join(found)))
        qids = self._queue_ids()
        actions: dict[str, set[str]] = defaultdict(set)
        for e in dlp_json(self.config, "log", "list", "--event", "message", "--limit", "10000000"):
            actions[str(e.get("audit_key"))].add(str((e.get("verdict") or {}).get("action")))
        unrecorded = [
            (mid, m.kind)
            for mid, m in by_id.items()
            if m.kind in RECORDED and not actions[qids.get(mid, "?")].intersection(RECORDED[m.kind])
        ]
        log_text = self.postfix.log()
        duplicates = []
        for mid, copies in at_sink.items():
            if mid in by_id and len(copies) > 1:
                duplicates.append(
                    self._explain(by_id[mid], copies, qids.get(mid, "?"), log_text, t0)
                )
        for mid, ids in held.items():
            if mid in by_id and len(ids) > 1:
                duplicates.append(
                    {
                        "message_id": mid,
                        "kind": by_id[mid].kind,
                        "queue_id": qids.get(mid, "?"),
                        "copies": len(ids),
                        "where": "held",
                        "first_copy": 0.0,
                        "fault": "two held copies",
                        "deferral": "",
                    }
                )
        pending = self._pending_rows()
        verify = subprocess.run(
            [str(DLP), "log", "verify", "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        gw_log = self.gateway.log_path.read_text(errors="replace") if self.gateway else ""
        return Outcome(
            messages=len(messages),
            by_kind=dict(Counter(m.kind for m in messages)),
            at_sink={k: v for k, v in at_sink.items() if k in by_id},
            held={k: v for k, v in held.items() if k in by_id},
            bounced={k: v for k, v in bounced.items() if k in by_id},
            lost=lost,
            misplaced=misplaced,
            unrecorded=unrecorded,
            duplicates=duplicates,
            faults=list(self.faults),
            t0=t0,
            seconds=seconds,
            deferrals=_deferral_reasons(log_text),
            pending_rows=pending,
            log_verified=verify.returncode == 0,
            log_verify_output=(verify.stdout + verify.stderr)[-500:],
            restarts=gw_log.count('"event": "restart"'),
        )

    def _explain(
        self, m: SoakMessage, copies: list[Delivery], qid: str, log_text: str, t0: float
    ) -> dict[str, Any]:
        first = min(d.at for d in copies)
        # The deferral that made Postfix send it again: the first one of the hop to the
        # gateway logged once the sink had the message (the log has whole seconds).
        deferrals = [
            line
            for line in log_text.splitlines()
            if f" {qid}: " in line
            and "postfix/scan/smtp" in line
            and "status=deferred" in line
            and _log_time(line) >= int(first)
        ]
        reason = ""
        if deferrals:
            found = re.search(r"status=deferred \((.*)\)$", deferrals[0])
            reason = found.group(1) if found else deferrals[0]
        return {
            "message_id": m.message_id,
            "kind": m.kind,
            "queue_id": qid,
            "copies": len(copies),
            "where": "sink",
            "first_copy": round(first - t0, 3),
            "fault": self._attribute(first, t0, reason),
            "deferral": reason,
            "explained": bool(deferrals),
        }

    def _attribute(self, at: float, t0: float, reason: str) -> str:
        """The fault that opened the ack window of the first copy, delivered at ``at``.

        That window runs from the next hop's 250 to ours.  Normally it lasts
        milliseconds, so the kill that explains a copy is the first one after it (within
        2 s: a loaded machine's scheduling); while the sink stalls it lasts until the
        stall ends or the gateway's next-hop timeout, whichever is first, and a kill in
        that span ended it early.  A database fault is named only when nothing else
        fits: the gateway writes the send-log entry before DATA, so losing the database
        should cause retries, not copies.  Postfix's reason for the retry decides
        between a stall and a kill during it: a ``451`` is the gateway's own time-out, a
        lost connection its death."""
        stalls = [f for f in self.faults if f.kind == "stall" and f.start - 0.5 <= at <= f.end]
        window = max([2.0] + [min(f.end, at + self.next_hop_timeout) - at for f in stalls])
        kills = sorted(
            (f for f in self.faults if f.kind == "kill" and -0.2 <= f.start - at <= window),
            key=lambda f: f.start,
        )
        found = stalls + ([] if reason.startswith("host ") else kills[:1])
        if not found:
            found = [f for f in self.faults if f.kind == "pg" and f.start - 0.5 <= at <= f.end + 2]
        return " + ".join(f.label(t0) for f in found) if found else "no fault window"

    def _pending_rows(self) -> int:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM quarantine_held WHERE pending").fetchone()
        return int(row[0]) if row else 0


def _log_time(line: str) -> float:
    """The time of a Postfix log line ("Dec 02 13:04:53 …", local time, this year)."""
    try:
        parsed = time.strptime(f"{time.localtime().tm_year} {line[:15]}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return 0.0
    return time.mktime(parsed)


def _returned_ids(data: bytes) -> list[str]:
    """Message-IDs of the messages a bounce returns (its own Message-ID excluded)."""
    msg = message_from_bytes(data, policy=policy.compat32)
    out = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and inner.get("Message-ID"):
                out.append(str(inner["Message-ID"]).strip())
        elif ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            found = (
                re.search(rb"(?im)^message-id:\s*(<[^>\r\n]*>)", raw)
                if isinstance(raw, bytes)
                else None
            )
            if found:
                out.append(found.group(1).decode("ascii", "replace"))
    return out


def _deferral_reasons(log_text: str) -> Counter[str]:
    """Deferrals of the hop to the gateway by reason, queue ids and delays left out."""
    out: Counter[str] = Counter()
    for m in re.finditer(
        r"postfix/(?:scan/smtp|error)\[\d+\]: .* status=deferred \((.*)\)$", log_text, re.M
    ):
        reason = re.sub(r"\[[0-9a-f]{24}\]|\b[0-9A-F]{9,}\b", "…", m.group(1))
        out[reason[:110]] += 1
    return out


def outcome_json(outcome: Outcome) -> str:
    data = {
        "messages": outcome.messages,
        "by_kind": outcome.by_kind,
        "at_sink": len(outcome.at_sink),
        "held": len(outcome.held),
        "bounced": len(outcome.bounced),
        "lost": outcome.lost,
        "misplaced": outcome.misplaced,
        "unrecorded": outcome.unrecorded,
        "duplicates": outcome.duplicates,
        "faults": [
            {"kind": f.kind, "at": round(f.start - outcome.t0, 2), "detail": f.detail}
            for f in outcome.faults
        ],
        "seconds": round(outcome.seconds, 1),
        "deferrals": dict(outcome.deferrals),
        "pending_rows": outcome.pending_rows,
        "log_verified": outcome.log_verified,
        "restarts": outcome.restarts,
    }
    return json.dumps(data, ensure_ascii=False, indent=1)
