"""A private, throw-away Postfix instance on loopback ports, built from deploy/postfix/.

The instance gets its own configuration, queue, data directory and log file under one
temporary directory, is started with ``postfix -c DIR start`` (no systemd, no syslog on
this kind of machine) and is stopped and removed afterwards.  Its content-filter and
re-injection entries are taken from ``deploy/postfix/`` with only the port numbers
changed, so the tests prove the configuration administrators paste.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "postfix"
POSTFIX = Path("/usr/sbin/postfix")
POSTQUEUE = Path("/usr/sbin/postqueue")

HOSTNAME = "mx.dlp-e2e.test"
ARTEFACTS = ROOT / "test-output" / "e2e"

# The standard ports in deploy/postfix/ and the role each plays in the test instance.
GATEWAY_PORT = 10025
REINJECT_PORT = 10026

T = TypeVar("T")


def why_unavailable() -> str | None:
    """None when a private Postfix can be run here, else how to make it possible."""
    if not POSTFIX.exists():
        return (
            "Postfix is not installed: `apt-get install postfix` (choose 'No configuration'; "
            "CI's .ci/run installs it) to run the end-to-end tests"
        )
    if os.geteuid() != 0:
        return "the end-to-end tests start a private Postfix, which needs root"
    return None


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{extra}")
        time.sleep(interval)


def keep_logs(root: Path, prefix: str = "") -> None:
    """Copy the Postfix and filter logs below ``root`` to test-output/e2e/ for failures."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for path in [*root.rglob("*.log"), *root.glob("maillog")]:
        name = prefix + "-".join(path.relative_to(root).parts)
        shutil.copyfile(path, ARTEFACTS / name)


# ---------------------------------------------------------------------------
# master.cf fragments


@dataclass(frozen=True)
class MasterEntry:
    """One logical master.cf entry: the service line and its ``-o`` continuation lines."""

    name: str
    kind: str
    fields: tuple[str, ...]
    """The five columns after service and type: private unpriv chroot wakeup maxproc."""
    command: str
    options: tuple[str, ...]
    """``-o name=value`` continuation lines, without the ``-o``."""

    def render(self) -> str:
        head = " ".join([self.name, self.kind, *self.fields, self.command])
        return "\n".join([head, *(f"  -o {o}" for o in self.options)])


def parse_master(text: str) -> list[MasterEntry]:
    """Parse master.cf text: comments (even between continuation lines) are skipped."""
    logical: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if not logical:
                raise ValueError(f"continuation line before any service: {line!r}")
            logical[-1].append(line.strip())
        else:
            logical.append([line.strip()])
    entries = []
    for parts in logical:
        head = parts[0].split()
        if len(head) < 8:
            raise ValueError(f"master.cf line needs 8 columns: {parts[0]!r}")
        options: list[str] = []
        for cont in parts[1:]:
            words = cont.split()
            if len(words) != 2 or words[0] != "-o":
                raise ValueError(f"only '-o name=value' continuations are expected: {cont!r}")
            options.append(words[1])
        entries.append(MasterEntry(head[0], head[1], tuple(head[2:7]), head[7], tuple(options)))
    return entries


def _retarget(text: str, ports: dict[int, int]) -> str:
    """Swap the standard loopback ports of deploy/ for the test's free ones."""
    for standard, actual in ports.items():
        text = re.sub(rf"(127\.0\.0\.1\]?:){standard}\b", rf"\g<1>{actual}", text)
    return text


# The daemons every Postfix needs (Debian's master.cf minus port 25 and the pipe examples).
# chroot is "n" throughout: without systemd nothing copies /etc/hosts etc. into the chroot.
_BASE_MASTER = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


# ---------------------------------------------------------------------------
# The instance


@dataclass(frozen=True)
class PostfixPorts:
    submit: int
    """Plain smtpd; main.cf's content_filter sends its mail through the gateway (after-queue)."""
    before_queue: int
    """smtpd with smtpd_proxy_filter to the gateway (deploy/postfix/before-queue)."""
    reinject: int
    """Re-injection smtpd (the standard 10026) the gateway relays to."""
    gateway: int
    """Where Postfix expects the gateway (the standard 10025)."""
    sink: int
    """relayhost: the SMTP sink standing for the Internet."""


class PostfixInstance:
    """A private Postfix: configuration, queue and log all under ``root``."""

    def __init__(self, root: Path, ports: PostfixPorts) -> None:
        self.root = root
        self.ports = ports
        self.config_dir = root / "etc"
        self.queue_dir = root / "spool"
        self.data_dir = root / "data"
        self.maillog = root / "maillog"
        self.started = False

    # -- configuration ------------------------------------------------------

    def main_cf(self) -> str:
        p = self.ports
        own = f"""\
# Private test instance: everything below {self.root}.
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
# No syslog here: postlogd writes this file (allowed by maillog_file_prefixes).
maillog_file = {self.maillog}
maillog_file_prefixes = {self.root}
# An explicit FQDN, so Message-IDs, Received lines and bounces do not depend on the machine.
myhostname = {HOSTNAME}
mydomain = dlp-e2e.test
myorigin = $myhostname
# Nothing is delivered locally: all mail, bounces included, goes to the sink.
mydestination =
local_transport = error:5.1.1 local delivery disabled in the e2e instance
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{p.sink}
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
append_dot_mydomain = no
readme_directory = no
# Tests flush with `postqueue -f` instead of waiting for the default 300 s backoff.
queue_run_delay = 60s
minimal_backoff_time = 60s
maximal_backoff_time = 120s

"""
        deploy = (DEPLOY / "after-queue" / "main.cf").read_text(encoding="utf-8")
        return own + _retarget(deploy, self._port_map())

    def master_cf(self) -> str:
        p = self.ports
        entries: dict[tuple[str, str], MasterEntry] = {}
        for e in parse_master(_BASE_MASTER):
            entries[(e.name, e.kind)] = e
        submit = MasterEntry(
            f"127.0.0.1:{p.submit}",
            "inet",
            ("n", "-", "n", "-", "-"),
            "smtpd",
            ("syslog_name=postfix/submit",),
        )
        entries[(submit.name, submit.kind)] = submit
        mapping = self._port_map()
        after = parse_master(_retarget((DEPLOY / "after-queue" / "master.cf").read_text(), mapping))
        before = parse_master(
            _retarget((DEPLOY / "before-queue" / "master.cf").read_text(), mapping)
        )
        for e in after:
            entries[(e.name, e.kind)] = e
        for e in before:
            if (e.name, e.kind) == ("smtp", "inet"):
                # The stock port-25 line becomes the test's before-queue port.
                e = MasterEntry(
                    f"127.0.0.1:{p.before_queue}", e.kind, e.fields, e.command, e.options
                )
            # The after-queue re-injection service (added first) stays: one 10026 only.
            entries.setdefault((e.name, e.kind), e)
        return "\n".join(e.render() for e in entries.values()) + "\n"

    def _port_map(self) -> dict[int, int]:
        return {GATEWAY_PORT: self.ports.gateway, REINJECT_PORT: self.ports.reinject}

    # -- life cycle ---------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        # The postfix user must be able to reach its queue below the temporary directory.
        self.root.chmod(0o755)
        self.config_dir.mkdir(parents=True)
        self.queue_dir.mkdir()
        self.data_dir.mkdir()
        shutil.chown(self.data_dir, user="postfix")
        (self.config_dir / "main.cf").write_text(self.main_cf(), encoding="utf-8")
        (self.config_dir / "master.cf").write_text(self.master_cf(), encoding="utf-8")
        # `postfix check` creates the queue subdirectories with their owners and modes.
        self.run(POSTFIX, "check")
        self.run(POSTFIX, "start")
        self.started = True
        for port in (self.ports.submit, self.ports.before_queue, self.ports.reinject):
            wait_until(
                functools.partial(port_open, port),
                timeout=timeout,
                what=f"Postfix to listen on 127.0.0.1:{port}",
                on_timeout=self.log_tail,
            )

    def stop(self) -> None:
        """Stop the master and wait until it is gone (never raises, never hangs)."""
        if not self.started:
            return
        pid = self.master_pid()
        subprocess.run(
            [str(POSTFIX), "-c", str(self.config_dir), "stop"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if pid is not None:
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                subprocess.run(
                    [str(POSTFIX), "-c", str(self.config_dir), "abort"],
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
        self.started = False

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def run(
        self, program: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(program), "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{program.name} {' '.join(args)} failed ({done.returncode}): "
                f"{done.stdout}{done.stderr}\n{self.log_tail()}"
            )
        return done

    # -- observation --------------------------------------------------------

    def queue(self) -> list[dict[str, Any]]:
        """``postqueue -j``: one dict per queued message (queue_name active/deferred/hold …)."""
        out = self.run(POSTQUEUE, "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        """``postqueue -f``: retry deferred mail now instead of after the backoff."""
        self.run(POSTQUEUE, "-f")

    def log(self) -> str:
        try:
            return self.maillog.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, queue_id: str) -> list[str]:
        return [line for line in self.log().splitlines() if f" {queue_id}: " in line]

    def log_tail(self, lines: int = 40) -> str:
        return "--- Postfix log (tail) ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def wait_queue_empty(self, timeout: float = 20.0) -> None:
        wait_until(
            lambda: not self.queue(),
            timeout=timeout,
            what="Postfix's queue to be empty",
            on_timeout=lambda: f"queue: {self.queue()}\n{self.log_tail()}",
        )

    def status_lines(self, queue_id: str) -> Iterator[str]:
        """The delivery attempts logged for a queue id (``status=sent|deferred|bounced``)."""
        for line in self.log_lines(queue_id):
            if " status=" in line:
                yield line


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
