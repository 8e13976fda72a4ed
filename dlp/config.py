"""Load and validate ``config/dlp.toml`` into frozen settings.

Every subcommand finds its configuration the same way (``find_config_file``):
``--config FILE``, else ``$DLP_CONFIG``, else ``./config/dlp.toml``, else
``/etc/dlp/dlp.toml``.  Relative paths inside the file resolve against the
directory that *holds* ``config/`` (the project root), so ``dlp allowlist add``
and ``dlp serve`` started in the same place always agree.

Validation is strict on purpose: an administrator who misspells a key must be
told at start, with the file, the key and what was expected, rather than find
out weeks later that a rule never applied.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from dlp.detect.registry import DEFAULT_ENABLED as DEFAULT_DETECTORS
from dlp.detect.registry import NAMES as DETECTOR_NAMES
from dlp.model import Action, AttachmentStatus, Confidence, RecipientClass

ENV_VAR = "DLP_CONFIG"
SYSTEM_CONFIG = Path("/etc/dlp/dlp.toml")


class ConfigError(Exception):
    """A configuration problem, phrased for an administrator."""


ADDRESS_EXPECTED = "expected HOST:PORT, e.g. 127.0.0.1:10025"


def _address_problem(value: str) -> str:
    """What is wrong with a HOST:PORT ``value`` in an administrator's words ("" if nothing)."""
    host, sep, port = value.strip().rpartition(":")
    if not value.strip():
        return "empty"
    if not sep or not port:
        return "no port"
    if not host.strip("[]"):
        return "no host"
    if not port.isdigit():
        # getaddrinfo would look "smtp" up in /etc/services; a number says what is meant.
        return f"the port must be a number, not {_quoted(port)}"
    if not 0 < int(port) < 65536:
        return "the port must be 1-65535"
    return ""


def check_address(value: str, name: str) -> tuple[str, int]:
    """``value`` as (host, port), or ValueError naming ``name`` (a key such as ``listen``
    or an option such as ``--listen``), the value given and what is expected."""
    problem = _address_problem(value)
    if problem:
        raise ValueError(f"{_given(name, value)}: {problem} ({ADDRESS_EXPECTED})")
    return _hostport(value)


def _given(name: str, value: str) -> str:
    """``listen = "x"`` for a key, ``--listen "x"`` for an option: as the admin wrote it."""
    return f"{name} {_quoted(value)}" if name.startswith("--") else f"{name} = {_quoted(value)}"


def _hostport(value: str) -> tuple[str, int]:
    """A HOST:PORT already checked (``check_address``) as (host, port)."""
    host, _, port = value.strip().rpartition(":")
    if _address_problem(value):
        raise ValueError(ADDRESS_EXPECTED)
    return host.strip("[]"), int(port)


def _quoted(value: str) -> str:
    """``value`` as it is written in the TOML file, for messages."""
    return json.dumps(value, ensure_ascii=False)


_ANY_HOST = {"0.0.0.0", "::"}


def same_address(listen: str, other: str) -> bool:
    """Whether connecting to ``other`` reaches what listens on ``listen`` (without DNS):
    the same host and port, "localhost" for a loopback address, or any local
    address when ``listen`` is the wildcard."""
    (lhost, lport), (ohost, oport) = _hostport(listen), _hostport(other)
    if lport != oport:
        return False
    lhost, ohost = lhost.lower(), ohost.lower()
    if lhost == ohost or (lhost in _ANY_HOST and is_loopback_host(ohost)):
        return True
    return is_loopback_host(lhost) and is_loopback_host(ohost) and "localhost" in (lhost, ohost)


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (no DNS)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loop_problem(listen: str, listen_name: str, next_hop: str, next_hop_name: str) -> str:
    """Why relaying to ``next_hop`` would send mail back into the gateway, or ""."""
    if not same_address(listen, next_hop):
        return ""
    return (
        f"{_given(listen_name, listen)} and {_given(next_hop_name, next_hop)} are the "
        "same address: the gateway would relay every message to itself in a loop. next_hop is "
        "where mail goes after the scan (e.g. Postfix's re-injection port, 127.0.0.1:10026)"
    )


@dataclass(frozen=True)
class PathSettings:
    var_dir: str = "var"
    """Where the gateway keeps its state (send log, hold queue, console data)."""


@dataclass(frozen=True)
class SmtpSettings:
    listen: str = "127.0.0.1:10025"
    next_hop: str = "127.0.0.1:10026"
    hostname: str = ""
    """Name announced in the banner and EHLO; empty means this machine's FQDN."""
    allowed_clients: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_message_size: int = 20_480_000
    """Announced SIZE.  Must be at least Postfix's message_size_limit (10240000)
    plus headroom for the headers Postfix and we add, or Postfix bounces big mail."""
    processes: int = 0
    """Gateway processes sharing the listening port (SO_REUSEPORT); 0 = one per core."""
    inline_scan_max_bytes: int = 262_144
    """Messages up to this size are scanned in the serving process: handing a
    small message to a worker (pickling, a pipe round trip) costs more than scanning it."""
    next_hop_timeout: float = 60.0
    next_hop_tls: str = "none"
    """none | starttls | tls"""
    next_hop_tls_verify: bool = True
    tls_cert: str = ""
    tls_key: str = ""
    require_tls: bool = False
    idle_timeout: float = 300.0
    max_sessions: int = 200
    """Concurrent SMTP sessions in each serving process; more get ``421 4.7.0``.
    Each session can hold a message of up to ``max_message_size`` in memory."""
    max_sessions_per_client: int = 100
    """Concurrent sessions from one client address in each serving process.  At
    least what the upstream MTA opens at once (Postfix: the scan transport's
    maxproc, default_process_limit = 100), or its mail waits for retries."""
    max_recipients: int = 1000
    """Recipients of one message; more get ``452 4.5.3`` and the MTA sends them in a
    further message (Postfix's own smtpd_recipient_limit is 1000 too).  RFC 5321
    asks for at least 100."""
    max_data_seconds: float = 600.0
    """Longest DATA phase (354 to the final dot).  The idle timeout restarts with
    every packet, so a client trickling a few bytes at a time would hold its
    session for ever without this; past it the session gets ``421 4.4.2`` and
    is closed, and the MTA retries later."""
    metrics_listen: str = ""
    """HOST:PORT for Prometheus metrics; empty = off."""
    log_level: str = "info"
    event_loop: str = "uvloop"
    """uvloop | asyncio: the serving processes' event loop.  uvloop's C transports
    cost less per SMTP reply (bench/RESULTS-gateway.md); without it installed the
    gateway says so once and runs on asyncio's own loop."""

    def __post_init__(self) -> None:
        check_address(self.listen, "listen")
        check_address(self.next_hop, "next_hop")
        if self.metrics_listen:
            check_address(self.metrics_listen, "metrics_listen")
        loop = loop_problem(self.listen, "listen", self.next_hop, "next_hop")
        if loop:
            raise ValueError(loop)
        if self.metrics_listen and same_address(self.listen, self.metrics_listen):
            raise ValueError(
                f"listen = {_quoted(self.listen)} and metrics_listen = "
                f"{_quoted(self.metrics_listen)} are the same address: the metrics need a "
                "port of their own (e.g. 127.0.0.1:9125)"
            )
        for net in self.allowed_clients:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(
                    f"allowed_clients: {net!r} is not an IP address or network "
                    '(e.g. "127.0.0.1", "192.0.2.0/24", "::1")'
                ) from None
        if self.next_hop_tls not in ("none", "starttls", "tls"):
            raise ValueError("next_hop_tls must be one of none, starttls, tls")
        if self.max_message_size < 1_000_000:
            raise ValueError("max_message_size below 1000000 would bounce ordinary mail")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.require_tls and not self.tls_cert:
            # Without a certificate STARTTLS is never offered, and "required" would
            # quietly mean plaintext.
            raise ValueError(
                "require_tls = true needs tls_cert and tls_key (no certificate: STARTTLS "
                "cannot be offered, so nothing could be required)"
            )
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be one of debug, info, warning, error")
        if self.event_loop not in ("uvloop", "asyncio"):
            raise ValueError("event_loop must be uvloop or asyncio")
        if self.processes < 0:
            raise ValueError("processes must be 0 (one per core) or more")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if self.max_recipients < 100:
            raise ValueError("max_recipients must be at least 100 (RFC 5321 4.5.3.1.8)")
        if not 1 <= self.max_sessions_per_client <= self.max_sessions:
            raise ValueError(
                f"max_sessions_per_client must be between 1 and max_sessions "
                f"({self.max_sessions}), got {self.max_sessions_per_client}"
            )
        if not 0 < self.max_data_seconds <= 3600:
            raise ValueError(
                "max_data_seconds must be above 0 and at most 3600 (an hour per message), "
                f"got {self.max_data_seconds:g}"
            )

    @property
    def listen_addr(self) -> tuple[str, int]:
        return _hostport(self.listen)

    @property
    def next_hop_addr(self) -> tuple[str, int]:
        return _hostport(self.next_hop)


_LANGUAGE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_0123456789")


@dataclass(frozen=True)
class OcrSettings:
    """``[ocr]``: reading images and scanned PDF pages with Tesseract (docs/attachments.md)."""

    enabled: bool = True
    languages: tuple[str, ...] = ("jpn",)
    """Tesseract language models, e.g. ["jpn"] or ["jpn", "eng"]; each needs its
    traineddata file (Debian: tesseract-ocr-jpn).  jpn alone reads digits and
    Latin letters well enough and is faster (BENCHMARKS.md)."""
    max_pages: int = 50
    """Images, TIFF pages, pictures in documents and scanned PDF pages read per
    message.  The rest are reported as not read (status partial / too_large),
    which policy acts on, so this is set above what a slide deck with pictures
    holds; ``timeout_seconds`` bounds the cost (0.1-0.5 s CPU a picture)."""
    timeout_seconds: float = 30.0
    """OCR time per message, within ``[scan] timeout_seconds``.  Once used up, the
    images left are reported as not read, like ``max_pages``."""
    max_pixels: int = 40_000_000
    """Largest image (width x height) decoded; a larger one is ``too_large``
    (decompression bombs).  An A4 page at 600 dpi is 35 million pixels."""
    pdf_dpi: int = 200
    """Resolution at which an image-only PDF page is rendered for OCR."""

    def __post_init__(self) -> None:
        if not self.languages:
            raise ValueError('languages must name at least one Tesseract model, e.g. ["jpn"]')
        for lang in self.languages:
            if not lang or not set(lang) <= _LANGUAGE_CHARS:
                raise ValueError(
                    f"languages: {lang!r} is not a Tesseract model name (e.g. jpn, eng, jpn_vert)"
                )
        if self.max_pages < 1:
            raise ValueError("max_pages must be at least 1 (use enabled = false to turn OCR off)")
        if self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be above 0")
        if self.max_pixels < 1_000_000:
            raise ValueError("max_pixels below 1000000 would refuse ordinary screenshots")
        if not 72 <= self.pdf_dpi <= 600:
            raise ValueError("pdf_dpi must be between 72 and 600")


@dataclass(frozen=True)
class ScanSettings:
    workers: int = 0
    """Worker processes for heavy scans; 0 = one per core."""
    timeout_seconds: float = 60.0
    """Wall-clock budget per message.  Well inside Postfix's 600 s data timeout."""
    max_total_bytes: int = 200_000_000
    """Decompressed bytes read per message, all attachments and archive members together."""
    max_file_bytes: int = 50_000_000
    """Largest single decompressed file that is read."""
    max_members: int = 2_000
    max_depth: int = 5
    """Nesting depth of archives and forwarded messages."""
    max_ratio: int = 200
    """Largest decompressed/compressed ratio an archive member may have (zip bombs)."""
    keyword_window: int = 300
    """Characters either side of a number searched for a My Number keyword."""
    extra_keywords: tuple[str, ...] = ()
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    """Content detectors to run (docs/scanning.md); My Number and the identifiers
    with no false positive at high confidence on the corpus by default."""
    ocr: OcrSettings = field(default_factory=OcrSettings)
    """Filled from the top-level ``[ocr]`` section (the scanner needs it in the
    workers, which receive only these settings)."""
    ocr_here: bool = True
    """Not a setting (refused in the file): the gateway clears it for the scans it
    runs in its serving process, where an image found (in a part that looked like
    text) makes the scan a timeout, so that it is redone in a worker and OCR never
    runs on the event loop (a slow scan there would stall every session of the process)."""

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.timeout_seconds > 500:
            raise ValueError(
                "timeout_seconds must be above 0 and at most 500 (Postfix waits 600 s)"
            )
        for name in ("max_total_bytes", "max_file_bytes", "max_members", "max_depth", "max_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.workers < 0:
            raise ValueError("workers must be 0 (one per core) or more")
        for name in self.detectors:
            if name not in DETECTOR_NAMES:
                raise ValueError(
                    f"unknown detector {name!r} in detectors; known: {', '.join(DETECTOR_NAMES)}"
                )


# The values the settings accept come from the enums in dlp.model (one source each):
# a new action or recipient class is accepted here, in the console filters and the
# send-log queries without another list to update.
_ACTIONS = tuple(a.value for a in Action)
_CLASSES = tuple(c.value for c in RecipientClass)
_CONFIDENCES = tuple(c.value for c in Confidence)
# Subsets by meaning: a lookalike recipient is refused or the message held (no
# delivery to a doppelganger); the fallback when no rule matches always delivers.
_LOOKALIKE_ACTIONS = (Action.REJECT.value, Action.HOLD.value, Action.CONFIRM.value)
_ON_TIMEOUT = ("discard", "deliver", "hold")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, key: str = "duration") -> float:
    """Seconds in ``"30s"``, ``"5m"``, ``"2h"`` or ``"3d"`` (issue 13: durations carry a unit,
    so "5" can never be read as five seconds by one admin and five minutes by another)."""
    value = text.strip().lower()
    number, unit = value[:-1], value[-1:]
    if unit not in _UNITS or not number.replace(".", "", 1).isdigit():
        raise ValueError(
            f"{key} = {text!r} is not a duration: write a number and a unit, "
            'e.g. "30s", "5m", "2h" or "3d"'
        )
    seconds = float(number) * _UNITS[unit]
    if seconds <= 0:
        raise ValueError(f"{key} = {text!r} must be longer than zero")
    return seconds


_DEFAULT_ACTIONS = (Action.DELIVER.value, Action.TAG.value)


def _one_of(values: tuple[str, ...]) -> str:
    """'a, b or c' for error messages."""
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]


@dataclass(frozen=True)
class DomainSettings:
    allowlist: str = "config/allowed_domains.txt"
    """Own domains ([own]) and partners ([partner]); see the file's header."""
    builtin_protected: bool = True
    """Protect the mail domains people mistype most in Japan (gmail.com, docomo.ne.jp ...)."""
    lookalike_action: str = "reject"
    """reject | hold | confirm: what happens to a recipient whose domain is a lookalike
    (confirm: the sender is asked, and offered the address they meant)."""
    lookalike_timeout: str = "1h"
    """confirm: how long the sender has to answer."""
    lookalike_on_timeout: str = "discard"
    """confirm: discard | deliver | hold when the sender did not answer."""

    def __post_init__(self) -> None:
        if self.lookalike_action not in _LOOKALIKE_ACTIONS:
            raise ValueError(f"lookalike_action must be {_one_of(_LOOKALIKE_ACTIONS)}")
        parse_duration(self.lookalike_timeout, "lookalike_timeout")
        if self.lookalike_on_timeout not in _ON_TIMEOUT:
            raise ValueError(f"lookalike_on_timeout must be {_one_of(_ON_TIMEOUT)}")


@dataclass(frozen=True)
class Rule:
    """One policy rule.  Every condition given must hold; first match wins."""

    name: str
    action: str
    detector: str = ""
    """A detector name (mynumber, credit_card ...); empty = any."""
    min_confidence: str = ""
    """low | medium | high: only findings at or above count."""
    min_distinct: int = 0
    attachment_status: tuple[str, ...] = ()
    """Matches when any attachment has one of these statuses."""
    recipient_class: tuple[str, ...] = ()
    """Matches when any recipient is of one of these classes (``external`` covers
    ``freemail``: RecipientClass.covers)."""
    mynumber_entitled: bool | None = None
    """true: all recipients are partners entitled to receive My Numbers."""
    own_address_likely: bool | None = None
    """true: a recipient is probably the sender's own private address (a free-mail
    address resembling the sender's name; ``dlp.ownaddress``)."""
    sender: tuple[str, ...] = ()
    """Envelope sender address or @domain patterns."""
    scan_error: bool | None = None
    incomplete: bool | None = None
    """true: something was left unread (parser gave up, a budget was reached,
    an ambiguous structure, an attachment too large/deep/damaged/partly read)."""
    has_attachments: bool | None = None
    """true: the message carries at least one file (false: none)."""
    reason_ja: str = ""
    reason_en: str = ""
    delay: str = ""
    """action = "delay": how long the message waits ("5m"); required."""
    timeout: str = ""
    """action = "confirm": how long the sender has to answer (default "1h")."""
    on_timeout: str = ""
    """action = "confirm": discard (default) | deliver | hold when unanswered."""

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise ValueError(f"action must be {_one_of(_ACTIONS)}")
        if self.action == Action.DELAY.value:
            if not self.delay:
                raise ValueError('action = "delay" needs delay = "5m" (how long)')
            parse_duration(self.delay, "delay")
        elif self.delay:
            raise ValueError('delay is only for action = "delay"')
        if self.action == Action.CONFIRM.value:
            parse_duration(self.timeout or "1h", "timeout")
            if self.on_timeout and self.on_timeout not in _ON_TIMEOUT:
                raise ValueError(f"on_timeout must be {_one_of(_ON_TIMEOUT)}")
        elif self.timeout or self.on_timeout:
            raise ValueError('timeout and on_timeout are only for action = "confirm"')
        if self.detector and self.detector not in DETECTOR_NAMES:
            raise ValueError(
                f"unknown detector {self.detector!r}; known: {', '.join(DETECTOR_NAMES)}"
            )
        if self.min_confidence and self.min_confidence not in _CONFIDENCES:
            raise ValueError(f"min_confidence must be {_one_of(_CONFIDENCES)}")
        for c in self.recipient_class:
            if c not in _CLASSES:
                raise ValueError(f"recipient_class entries must be {_one_of(_CLASSES)}")
        known = {s.value for s in AttachmentStatus if s is not AttachmentStatus.SCANNED}
        for s in self.attachment_status:
            if s not in known and s != "unscannable":
                raise ValueError(
                    f"unknown attachment status {s!r}; one of {', '.join(sorted(known))}"
                    " or unscannable"
                )


@dataclass(frozen=True)
class NotifySettings:
    """Notices to senders and approvers, and the one-click decision pages (issue 13)."""

    from_: str = ""
    """``from`` in the file: the notices' sender (an address nobody answers)."""
    listen: str = "127.0.0.1:8026"
    """Where ``dlp console`` serves the decision pages (apart from the admin console)."""
    base_url: str = ""
    """What the links in the notices start with; empty = http://<listen>."""
    secret_key: str = ""
    """Signs the links; empty = generated once into var/notify.key (give the same key to
    every host when several gateways and consoles share a PostgreSQL hold queue)."""
    check_interval: str = "15s"
    """How often the gateway looks for holds whose time is up (delay, confirm, reminders)."""

    def __post_init__(self) -> None:
        check_address(self.listen, "listen")
        parse_duration(self.check_interval, "check_interval")
        if self.from_ and "@" not in self.from_:
            raise ValueError(f"from = {self.from_!r} is not a mail address")

    @property
    def url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host, port = _hostport(self.listen)
        return f"http://{host}:{port}"


@dataclass(frozen=True)
class ApprovalRoute:
    sender: str
    """An address, a domain (example.lg.jp / @example.lg.jp), a glob (*@soumu.example.lg.jp)
    or "*" (the default route)."""
    approvers: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.approvers:
            raise ValueError("approvers must name at least one address")
        for a in self.approvers:
            if "@" not in a:
                raise ValueError(f"approver {a!r} is not a mail address")


@dataclass(frozen=True)
class ApprovalSettings:
    routes: tuple[ApprovalRoute, ...] = ()
    """First match wins; a route with sender = "*" is the default."""
    remind_after: str = ""
    """Remind the approvers once after this long ("4h"); empty = never."""
    escalate_after: str = ""
    """After this long, ``escalate_to`` is asked too ("1d"); empty = never."""
    escalate_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.remind_after:
            parse_duration(self.remind_after, "remind_after")
        if self.escalate_after:
            parse_duration(self.escalate_after, "escalate_after")
            if not self.escalate_to:
                raise ValueError("escalate_after needs escalate_to (who is asked then)")


@dataclass(frozen=True)
class PolicySettings:
    rules: tuple[Rule, ...] = ()
    default_action: str = "deliver"
    tag_header_prefix: str = "X-DLP-"

    def __post_init__(self) -> None:
        if self.default_action not in _DEFAULT_ACTIONS:
            raise ValueError(f"default_action must be {_one_of(_DEFAULT_ACTIONS)}")


@dataclass(frozen=True)
class SendLogSettings:
    backend: str = "sqlite"
    """sqlite | postgresql"""
    sqlite_path: str = "var/sendlog.db"
    postgresql_dsn: str = ""
    retention_days: int = 1825
    """Five years by default: municipal document retention for such records."""
    purge_interval_hours: float = 24.0
    head_key_file: str = ""
    """HMAC key that signs the chain head (``dlp log keygen FILE``); kept outside the
    database and readable only by the user dlp runs as.  Empty = heads are logged unsigned."""
    heads_file: str = "var/sendlog-heads.jsonl"
    """Append-only file of signed chain heads (written only when a key is set)."""

    def __post_init__(self) -> None:
        if self.backend not in ("sqlite", "postgresql"):
            raise ValueError("backend must be sqlite or postgresql")
        if self.backend == "postgresql" and not self.postgresql_dsn:
            raise ValueError('postgresql_dsn is required when backend = "postgresql"')
        if self.retention_days <= 0:
            raise ValueError("retention_days must be positive")


@dataclass(frozen=True)
class QuarantineSettings:
    dir: str = "var/quarantine"
    retention_days: int = 30
    encryption_key: str = ""
    """Fernet key (base64, 32 bytes) for held messages at rest; empty = a key
    generated once and kept beside the queue (var/quarantine.key, mode 0600).
    Required with ``[sendlog] backend = "postgresql"``, where the queue is shared."""

    def __post_init__(self) -> None:
        if self.retention_days <= 0:
            raise ValueError("retention_days must be positive")


@dataclass(frozen=True)
class ConsoleSettings:
    listen: str = "127.0.0.1:8025"
    secret_key: str = ""
    """Session signing key; empty = generated once into var/console.key."""
    language: str = "ja"
    tls_cert: str = ""
    """PEM certificate for serving the console over HTTPS; empty = plain HTTP."""
    tls_key: str = ""
    max_failed_logins: int = 5
    """Wrong passwords in a row that lock an account."""
    lockout_seconds: float = 300.0
    """The first lock; each further lock within a day doubles it, up to ``lockout_max_seconds``."""
    lockout_max_seconds: float = 3600.0
    login_attempts_per_minute: int = 10
    """Per client address (IPv6: per /64), a burst of this many; 0 = no limit."""
    behind_proxy: bool = False
    """A TLS reverse proxy on this machine forwards to the console: its
    X-Forwarded-For and X-Forwarded-Proto are believed (from 127.0.0.1 / ::1).  Off,
    they are ignored: anyone who can reach the loopback port could otherwise name
    any client address and step around the per-address sign-in limit."""
    login_concurrency: int = 2
    """Argon2 checks at once (each 64 MiB and up to 4 threads, tens to hundreds of ms)."""
    login_queue: int = 32
    """Sign-ins waiting for an Argon2 slot beyond which the console answers 503."""

    def __post_init__(self) -> None:
        check_address(self.listen, "listen")
        if self.language not in ("ja", "en"):
            raise ValueError("language must be ja or en")
        if self.max_failed_logins < 1 or self.login_concurrency < 1 or self.login_queue < 0:
            raise ValueError(
                "max_failed_logins and login_concurrency must be at least 1, login_queue >= 0"
            )
        if not 0 < self.lockout_seconds <= self.lockout_max_seconds:
            raise ValueError("need 0 < lockout_seconds <= lockout_max_seconds")
        if self.login_attempts_per_minute < 0:
            raise ValueError("login_attempts_per_minute must be 0 (no limit) or more")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be given together")


@dataclass(frozen=True)
class ReportSettings:
    """The summary mail to the information-management team (issue 14)."""

    to: tuple[str, ...] = ()
    """Team addresses; empty = no summary mail.  Sent from ``[notify] from``."""
    schedule: str = "weekly"
    """daily | weekly: the period each summary covers (`dlp incident summary --send`,
    run by deploy/systemd/dlp-summary.timer)."""
    console_url: str = ""
    """The console's address for the link in the mail; empty = http://<[console] listen>."""

    def __post_init__(self) -> None:
        if self.schedule not in ("daily", "weekly"):
            raise ValueError("schedule must be daily or weekly")
        for a in self.to:
            if "@" not in a:
                raise ValueError(f"to = {a!r} is not a mail address")


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    domains: DomainSettings = field(default_factory=DomainSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    sendlog: SendLogSettings = field(default_factory=SendLogSettings)
    quarantine: QuarantineSettings = field(default_factory=QuarantineSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    base_dir: str = "."
    """Directory relative paths resolve against (the one that holds config/)."""
    source: str = "<defaults>"
    """The file these settings came from, for messages."""

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def ocr(self) -> OcrSettings:
        return self.scan.ocr

    @property
    def var_dir(self) -> Path:
        return self.resolve(self.paths.var_dir)

    @property
    def allowlist_path(self) -> Path:
        return self.resolve(self.domains.allowlist)

    @property
    def quarantine_dir(self) -> Path:
        return self.resolve(self.quarantine.dir)

    @property
    def sqlite_path(self) -> Path:
        return self.resolve(self.sendlog.sqlite_path)

    @property
    def head_key_path(self) -> Path | None:
        return self.resolve(self.sendlog.head_key_file) if self.sendlog.head_key_file else None

    @property
    def heads_path(self) -> Path:
        return self.resolve(self.sendlog.heads_file)


# ---------------------------------------------------------------------------
# Loading

T = TypeVar("T")


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file every subcommand uses, or None for built-in defaults."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"{p}: configuration file not found (given with --config)")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"{p}: configuration file not found (given in ${ENV_VAR})")
        return p
    local = Path("config/dlp.toml")
    if local.is_file():
        return local
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    return None


def base_dir_for(config_file: Path) -> Path:
    """The directory that holds ``config/``; for a file elsewhere, its own directory."""
    parent = config_file.resolve().parent
    return parent.parent if parent.name == "config" else parent


def load_settings(explicit: str | os.PathLike[str] | None = None) -> Settings:
    path = find_config_file(explicit)
    if path is None:
        return Settings(base_dir=str(Path.cwd()))
    return load_file(path)


def load_file(path: Path) -> Settings:
    try:
        # utf-8-sig: Windows Notepad saves UTF-8 with a byte-order mark, which TOML
        # would read as a stray character at line 1, column 1.
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    settings = parse_settings(raw, str(path))
    return replace(settings, base_dir=str(base_dir_for(path)), source=str(path))


def parse_settings(raw: dict[str, Any], source: str = "<config>") -> Settings:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{key}]; expected one of "
                + ", ".join(f"[{s}]" for s in _SECTIONS)
            )
        if key == "scan" and isinstance(value, dict) and "ocr" in value:
            raise ConfigError(f"{source}: OCR settings go in their own [ocr] section, not [scan]")
        if key == "scan" and isinstance(value, dict) and "ocr_here" in value:
            raise ConfigError(f"{source}: unknown key scan.ocr_here (set by the gateway itself)")
        values[key] = _build(_SECTIONS[key], value, f"{key}", source)
    ocr = values.pop("ocr", None)
    if ocr is not None:
        values["scan"] = replace(values.get("scan", ScanSettings()), ocr=ocr)
    if "timeout_seconds" not in (raw.get("ocr") or {}):
        # Not set by the admin: the default OCR time shrinks with a shorter
        # per-message budget instead of refusing the admin's [scan] setting.
        scan = values.get("scan", ScanSettings())
        if scan.ocr.timeout_seconds > scan.timeout_seconds:
            values["scan"] = replace(
                scan, ocr=replace(scan.ocr, timeout_seconds=scan.timeout_seconds)
            )
    settings = Settings(**values, source=source)
    _check_ocr(settings, source)
    _check_timeouts(settings, source)
    _check_sender_loop(settings, source)
    if settings.report.to and not settings.notify.from_:
        raise ConfigError(
            f"{source}: [report] to sends the summary mail: set [notify] from "
            '(e.g. from = "dlp-noreply@example.lg.jp")'
        )
    return settings


def _check_sender_loop(s: Settings, source: str) -> None:
    """confirm / delay / approve mail someone: that needs a From, and approve an approver."""
    actions = {r.action for r in s.policy.rules} | {s.domains.lookalike_action}
    loop = actions & {Action.CONFIRM.value, Action.DELAY.value, Action.APPROVE.value}
    if loop and not s.notify.from_:
        raise ConfigError(
            f"{source}: action {_one_of(tuple(sorted(loop)))} sends notices: set [notify] from "
            '(e.g. from = "dlp-noreply@example.lg.jp")'
        )
    if Action.APPROVE.value in actions and not s.approval.routes:
        raise ConfigError(
            f'{source}: action = "approve" needs [[approval.routes]] (sender = "*" for a '
            "default route) naming who approves"
        )


def _check_timeouts(s: Settings, source: str) -> None:
    """The idle timer keeps running while a message is scanned and
    relayed; if it can fire first, the session is dropped mid-answer and the
    retry makes a duplicate."""
    needed = s.scan.timeout_seconds + 2 * s.smtp.next_hop_timeout
    if s.smtp.idle_timeout <= needed:
        raise ConfigError(
            f"{source}: smtp.idle_timeout ({s.smtp.idle_timeout:g} s) must be above "
            f"scan.timeout_seconds + 2 x smtp.next_hop_timeout ({needed:g} s), or a session "
            "can time out while its message is still being scanned and relayed"
        )


def _check_ocr(s: Settings, source: str) -> None:
    if s.scan.ocr.timeout_seconds > s.scan.timeout_seconds:
        raise ConfigError(
            f"{source}: ocr.timeout_seconds ({s.scan.ocr.timeout_seconds:g} s) must not exceed "
            f"scan.timeout_seconds ({s.scan.timeout_seconds:g} s): OCR runs inside the "
            "per-message budget"
        )


_SECTIONS: dict[str, type] = {
    "paths": PathSettings,
    "smtp": SmtpSettings,
    "scan": ScanSettings,
    "ocr": OcrSettings,
    "domains": DomainSettings,
    "policy": PolicySettings,
    "sendlog": SendLogSettings,
    "quarantine": QuarantineSettings,
    "console": ConsoleSettings,
    "notify": NotifySettings,
    "approval": ApprovalSettings,
    "report": ReportSettings,
}


def _build(cls: type[T], value: Any, where: str, source: str, entry: str = "") -> T:
    """A section ``[where]``, or with ``entry`` one table of an array of tables,
    named as the administrator sees it (``[[policy.rules]] #3 "name"``)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {entry or f'[{where}]'} must be a table")
    hints = typing.get_type_hints(cls)
    # A field named after a Python keyword (``from_``) is written without the "_".
    known = {f.name.rstrip("_"): f for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key not in known:
            unknown = f"{entry}: unknown key {key}" if entry else f"unknown key {where}.{key}"
            raise ConfigError(f"{source}: {unknown}; expected one of: " + ", ".join(known))
        name = known[key].name
        path = f"{entry}: {key}" if entry else f"{where}.{key}"
        kwargs[name] = _coerce(hints[name], item, path, source)
    missing = [
        n
        for n, f in known.items()
        if f.default is MISSING and f.default_factory is MISSING and f.name not in kwargs
    ]
    if missing:
        what = f"{entry}: missing" if entry else f"{where} is missing"
        raise ConfigError(f"{source}: {what} required key(s): {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(
            f"{source}: {entry or f'[{where}]'}{':' if entry else ''} {exc}"
        ) from None


# What names one table of an array of tables in messages, beside its position.
_ENTRY_NAMES = ("name", "sender")


def _entry(where: str, index: int, item: Any) -> str:
    """``[[policy.rules]] #3 "mynumber-external"``: the heading the administrator
    wrote, the table's 1-based position under it and its name, if it has one
    (a zero-based ``policy.rules[2]`` sends them to count from the wrong end)."""
    label = f"[[{where}]] #{index + 1}"
    if isinstance(item, dict):
        for key in _ENTRY_NAMES:
            if isinstance(item.get(key), str):
                return f"{label} {_quoted(item[key])}"
    return label


def _coerce(hint: Any, item: Any, where: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if item is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], item, where, source)
    if origin is tuple:
        if not isinstance(item, list):
            raise ConfigError(f"{source}: {where} must be a list, got {_tname(item)}")
        elem = args[0]
        if is_dataclass(elem):
            return tuple(
                _build(elem, x, where, source, _entry(where, i, x))  # type: ignore[arg-type]
                for i, x in enumerate(item)
            )
        return tuple(_coerce(elem, x, f"{where}[{i}]", source) for i, x in enumerate(item))
    if is_dataclass(hint):
        return _build(hint, item, where, source)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(item, bool):
            raise ConfigError(f"{source}: {where} must be true or false, got {_tname(item)}")
        return item
    if hint is int:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ConfigError(f"{source}: {where} must be an integer, got {_tname(item)}")
        return item
    if hint is float:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise ConfigError(f"{source}: {where} must be a number, got {_tname(item)}")
        return float(item)
    if hint is str:
        if not isinstance(item, str):
            raise ConfigError(f"{source}: {where} must be a string, got {_tname(item)}")
        return item
    raise ConfigError(f"{source}: {where}: unsupported setting type {hint}")  # pragma: no cover


def _tname(item: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(item), type(item).__name__) + f" ({item!r})"
