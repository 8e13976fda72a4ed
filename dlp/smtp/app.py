"""Process supervision for ``dlp serve``.

One event loop saturates one core, so the gateway runs ``[smtp] processes``
serving processes (default: one per core) that each bind the listening port
with SO_REUSEPORT and let the kernel spread connections (one loop was what
limited every Python relay we measured).  The
supervisor that starts them:

* forwards SIGTERM/SIGINT as SIGTERM: each serving process stops accepting
  new transactions (``421``), finishes the open ones, then exits;
* forwards SIGHUP: each serving process reloads the allowlist (a broken file
  is refused and the last good list stays); dlp.toml is not reloaded, but read
  again to say whether it is broken or changed (its changes wait for a restart);
* restarts a serving process that died unexpectedly;
* serves Prometheus metrics for all of them when ``metrics_listen`` is set;
* and serving process 0 runs the daily retention job (send log and hold queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

from dlp.config import Settings, SmtpSettings, _hostport, check_address, loop_problem
from dlp.detect import native
from dlp.detect.mynumber import scrub
from dlp.smtp.gateway import Gateway, JsonFormatter, cores

log = logging.getLogger("dlp.smtp.app")

STARTUP_TIMEOUT = 60.0


def configure_logging(level: str) -> None:
    """JSON lines on stderr, every one masked (no number may reach a log), whoever logs.

    The masking formatter sits on the root handler, which every logger propagates to
    (asyncio, the database drivers, any library's); a handler a library put
    on its own logger gets the same formatter; and the record factory masks the
    message of every record as it is made, so even a handler added later writes no
    number.  Python warnings and uncaught exceptions (the main thread's and other
    threads') go through logging too, where only their type and place are written:
    the default hooks would print the exception's text, which may quote content."""
    formatter = JsonFormatter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for other in list(logging.root.manager.loggerDict.values()):
        if isinstance(other, logging.Logger):
            for h in other.handlers:
                h.setFormatter(formatter)
    _install_masking_record_factory()
    # What the JSON lines never show is not gathered either (the logging HOWTO's
    # "Optimization"): the caller's frame, thread, process and multiprocessing names.
    # 2.5 of the 23 us the per-message line costs.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda a: _log_uncaught(a.exc_type, a.exc_value, a.exc_traceback)


def _install_masking_record_factory() -> None:
    current = logging.getLogRecordFactory()
    if getattr(current, "dlp_masking", False):
        return  # configure_logging runs once per process, but may run again in tests

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, as before
            return record
        record.msg, record.args = scrub(text), None
        return record

    factory.dlp_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None
) -> None:
    if exc is None or issubclass(exc_type, KeyboardInterrupt):
        log.critical("uncaught %s", exc_type.__name__)
        return
    log.critical("uncaught exception", exc_info=(exc_type, exc, tb))


def drain_timeout(settings: Settings) -> float:
    """Long enough for a transaction that has just reached DATA to finish."""
    return settings.scan.timeout_seconds + 2 * settings.smtp.next_hop_timeout + 10


# ---------------------------------------------------------------------------
# A serving process


def run_loop(main: Coroutine[Any, Any, int], choice: str, index: int = 0) -> int:
    """Run ``main`` on the configured event loop.

    uvloop's transports are C: a reply written to a socket costs a fraction of
    asyncio's Python ``write`` path, and replies are most of what the serving
    process does for small mail (py-spy, bench/RESULTS-gateway.md).  It is an
    optimisation only, so a missing or broken uvloop falls back to asyncio's own
    loop with a warning instead of stopping the gateway."""
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            if index == 0:
                log.warning(
                    "uvloop cannot be imported (%s): serving on asyncio's own event loop,"
                    " which costs more CPU per message; install uvloop or set"
                    ' [smtp] event_loop = "asyncio" to silence this',
                    type(exc).__name__,
                    extra={"dlp": {"event": "event loop fallback"}},
                )
        else:
            return int(uvloop.run(main))
    return asyncio.run(main)


def serve_process(settings: Settings, index: int, ready: Connection | None = None) -> int:
    """Entry point of one serving process (also usable alone, in the foreground)."""
    configure_logging(settings.smtp.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor turns ^C into SIGTERM
    try:
        return run_loop(_serve(settings, index, ready), settings.smtp.event_loop, index)
    except Exception as exc:
        log.error(
            "serving process failed: %s", exc, extra={"dlp": {"event": "fatal", "process": index}}
        )
        return 3


async def _serve(settings: Settings, index: int, ready: Connection | None) -> int:
    from dlp.smtp.server import start_server

    gateway = Gateway(settings)
    await gateway.start()
    host, port = settings.smtp.listen_addr
    try:
        server = await start_server(gateway, host, port, reuse_port=True)
    except OSError as exc:
        await gateway.close()
        if ready is not None:
            ready.send(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 3
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_term() -> None:
        gateway.begin_drain()
        stop.set()

    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        # Indexing 100,000 domains takes seconds: do it in a thread so the
        # loop keeps serving (the classifier swaps the new list in whole).
        task = loop.create_task(_reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    async def _reload() -> None:
        # The classifier logs the details (file, line, problem) itself; a broken
        # file is refused and the last good list stays in force.
        try:
            loaded = bool(await asyncio.to_thread(gateway.classifier.reload))
            problem = "" if loaded else str(getattr(gateway.classifier, "last_error", ""))
        except Exception as exc:
            loaded, problem = False, f"{type(exc).__name__}: {exc}"
        event = "reload" if loaded or not problem else "reload failed"
        log.log(
            logging.INFO if event == "reload" else logging.ERROR,
            "allowlist " + event,
            extra={"dlp": {"event": event, "process": index, "problem": problem}},
        )

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    retention = loop.create_task(_retention_loop(settings)) if index == 0 else None
    log.info(
        "listening",
        extra={
            "dlp": {
                "event": "listening",
                "listen": f"{host}:{port}",
                "process": index,
                "pid": os.getpid(),
            }
        },
    )
    if index == 0:
        _warn_if_ocr_unavailable(settings)
    if ready is not None:
        ready.send("ready")
    await stop.wait()
    # Keep the socket open while draining: new connections get 421 instead of
    # a reset, which a client might not retry as promptly.
    finished = await gateway.wait_drained(drain_timeout(settings))
    server.close()
    if retention is not None:
        retention.cancel()
    for session in list(gateway.sessions):
        if session.transport is not None:
            session.transport.close()
    await gateway.close()
    log.info("stopped", extra={"dlp": {"event": "stopped", "process": index, "clean": finished}})
    return 0


async def _retention_loop(settings: Settings) -> None:
    """Daily (``purge_interval_hours``): send-log retention and held-mail expiry."""
    from dlp.retention import purge_expired

    interval = settings.sendlog.purge_interval_hours * 3600
    await asyncio.sleep(min(60.0, interval))
    loop = asyncio.get_running_loop()
    while True:
        try:
            result = await loop.run_in_executor(None, purge_expired, settings)
            log.info(
                "retention",
                extra={
                    "dlp": {
                        "event": "retention",
                        # named fields, not the dataclass's repr (datetime.datetime(...))
                        "purged": result.sendlog.purged,
                        "purged_before": result.sendlog.cutoff.isoformat(timespec="seconds"),
                        "held_expired": result.quarantine_expired,
                        "held_error": result.quarantine_error,
                        "refused": result.refused,
                    }
                },
            )
        except Exception as exc:
            log.error(
                "retention run failed: %s",
                type(exc).__name__,
                extra={"dlp": {"event": "retention failed"}},
            )
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------
# The supervisor


def run(settings: Settings) -> int:
    """Run the gateway until SIGTERM/SIGINT; returns the exit status."""
    configure_logging(settings.smtp.log_level)
    taken = _taken_address(settings)
    if taken:
        log.error("gateway failed to start: %s", taken, extra={"dlp": {"event": "fatal"}})
        return 2
    count = settings.smtp.processes or cores()
    metrics_dir = None
    if settings.smtp.metrics_listen:
        from dlp.smtp.metrics import MULTIPROC_ENV

        metrics_dir = tempfile.mkdtemp(prefix="dlp-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    ctx = multiprocessing.get_context("spawn")
    at_start = _file_settings(settings)  # for SIGHUP: has the file changed since?
    children: dict[int, BaseProcess] = {}
    stopping = False
    hup = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping, hup
        if signum == signal.SIGHUP:
            hup = True
        else:
            stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    def launch(index: int) -> Connection:
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(
            target=serve_process, args=(settings, index, child), name=f"dlp-serve-{index}"
        )
        p.start()
        child.close()
        children[index] = p
        return parent

    def ready(index: int, pipe: Connection, deadline: float) -> str:
        p = children[index]
        while time.monotonic() < deadline and not stopping:
            if pipe.poll(0.2):
                try:
                    return str(pipe.recv())
                except EOFError:
                    break
            if not p.is_alive():
                break
        return "ready" if stopping else "exited during start-up"

    try:
        # All at once: each needs a second or so to import and start its workers.
        pipes = {i: launch(i) for i in range(count)}
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for i, pipe in pipes.items():
            status = ready(i, pipe, deadline)
            if status != "ready":
                log.error("gateway failed to start: %s", status, extra={"dlp": {"event": "fatal"}})
                stopping = True
                _stop_all(children, 10)
                return 2
        if settings.smtp.metrics_listen:
            from dlp.holdqueue.store import open_quarantine
            from dlp.smtp.metrics import serve_metrics

            mhost, mport = _hostport(settings.smtp.metrics_listen)
            serve_metrics(mhost, mport, lambda: open_quarantine(settings).depth())
        own, partners = _allowlist_counts(settings)
        log.info(
            "gateway up",
            extra={
                "dlp": {
                    "event": "up",
                    "processes": count,
                    "listen": settings.smtp.listen,
                    "next_hop": settings.smtp.next_hop,
                    "scanner": "compiled" if native.COMPILED else "python",
                    "own_domains": own,
                    "partner_domains": partners,
                }
            },
        )
        if own == 0:
            log.warning(
                "the allowlist %s lists no [own] domain: every sender counts as outside, so "
                "lookalike recipients are held instead of refused, senders get no notices, "
                "and rules for own mail never match; add yours with "
                "`dlp allowlist add --own example.lg.jp`",
                settings.allowlist_path,
                extra={"dlp": {"event": "no own domain"}},
            )
        if not native.COMPILED:
            log.warning(
                "the compiled candidate scanner (dlp/detect/_candidates.c) is %s: scanning "
                "works but is several times slower; run `make` (pip install -e .) with a C "
                "compiler and the Python headers",
                native.STATUS,
                extra={"dlp": {"event": "scanner_not_compiled", "status": native.STATUS}},
            )
        # Restarts under way (index -> its ready pipe and deadline), watched from this
        # loop rather than waited for: a restart takes seconds (a fresh interpreter
        # imports the scanner and starts its workers; 3-9 s under load, bench/soak.py),
        # and waiting would leave a second process that dies meanwhile down as long,
        # the port refusing connections if it was the last one.
        restarting: dict[int, tuple[Connection, float]] = {}
        retry_at: dict[int, float] = {}
        while not stopping:
            time.sleep(0.2)
            if hup:
                hup = False
                _check_config_on_hup(settings, at_start)
                for i, p in children.items():
                    # A process still starting reads the allowlist anyway, and a SIGHUP
                    # before it installs its handler would end it.
                    if p.pid and p.is_alive() and i not in restarting:
                        os.kill(p.pid, signal.SIGHUP)
            for i, p in list(children.items()):
                if stopping:
                    break
                if i in restarting:
                    pipe, deadline = restarting[i]
                    word = _start_status(pipe, p, deadline)
                    if word is None:
                        continue
                    del restarting[i]
                    pipe.close()
                    if word != "ready":
                        log.error("restart of serving process %d failed: %s", i, word)
                        if p.is_alive():  # hung in start-up: replaced on the next round
                            p.kill()
                            p.join(5)
                        retry_at[i] = time.monotonic() + 1.0  # no hot loop
                    continue
                if not p.is_alive() and time.monotonic() >= retry_at.get(i, 0.0):
                    log.error(
                        "serving process %d exited (%s); restarting",
                        i,
                        p.exitcode,
                        extra={"dlp": {"event": "restart", "process": i}},
                    )
                    restarting[i] = (launch(i), time.monotonic() + STARTUP_TIMEOUT)
        _stop_all(children, drain_timeout(settings) + 5)
        return 0
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _taken_address(settings: Settings) -> str:
    """Why the gateway cannot have its addresses ("" when it can).

    The serving processes bind with SO_REUSEPORT so that they share the port;
    so would a second ``dlp serve`` on the same port, and the kernel would
    quietly split the mail between the two (perhaps with different
    configurations).  A bind without SO_REUSEPORT fails on a port anyone
    listens on, so one is tried first.  SO_REUSEADDR is set, as on the serving
    processes' own sockets (asyncio), so that the connections of a gateway
    just stopped (TIME_WAIT) do not keep its restart out.  Other bind errors
    (no such address, a port below 1024) are left to the serving processes,
    which report them."""
    host, port = settings.smtp.listen_addr
    if _in_use(host, port):
        return f"{host}:{port} is already in use — is another dlp serve running?"
    if settings.smtp.metrics_listen:
        # Found now, before the serving processes start, not after they are up.
        mhost, mport = _hostport(settings.smtp.metrics_listen)
        if _in_use(mhost, mport):
            return f"[smtp] metrics_listen {mhost}:{mport} is already in use"
    return ""


def _in_use(host: str, port: int) -> bool:
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False  # an unknown host: the serving processes say so
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # As asyncio binds: an IPv6 socket that does not also take IPv4.
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def _allowlist_counts(settings: Settings) -> tuple[int, int]:
    """How many own and partner domains the allowlist lists (-1, -1: unreadable; the
    serving processes have said why already)."""
    from dlp.allowlist import AllowlistError, load_allowlist

    try:
        allowlist = load_allowlist(settings.allowlist_path)
    except AllowlistError:
        return -1, -1
    return len(allowlist.own), len(allowlist.partners)


def _file_settings(settings: Settings) -> Settings | None:
    """What the configuration file says now (None: no file, or it does not load)."""
    if not settings.source:
        return None
    from dlp.config import ConfigError, load_file

    try:
        return load_file(Path(settings.source))
    except ConfigError:
        return None


def _check_config_on_hup(settings: Settings, at_start: Settings | None) -> None:
    """SIGHUP reloads the allowlist only.  An administrator who edited dlp.toml and
    sent SIGHUP is told what became of the edit: that the file is broken (the running
    gateway keeps its settings, but the next start would fail), or that its changes
    wait for a restart.  ``at_start``: the file as it was read at start (the running
    settings may differ from it by command-line options)."""
    if not settings.source:
        return
    from dlp.config import ConfigError, load_file

    try:
        current = load_file(Path(settings.source))
    except ConfigError as exc:
        log.error(
            "configuration file is broken; the gateway keeps running on the settings it "
            "started with, but would not start again: %s",
            exc,
            extra={"dlp": {"event": "config broken"}},
        )
        return
    if current != at_start:
        log.warning(
            "%s changed since start: SIGHUP reloads the allowlist only; the other settings "
            "take effect at the next restart (systemctl restart dlp)",
            settings.source,
            extra={"dlp": {"event": "config changed"}},
        )


def _start_status(pipe: Connection, p: BaseProcess, deadline: float) -> str | None:
    """A starting serving process's word ("ready" or why not), or None while it starts."""
    if pipe.poll(0):
        try:
            return str(pipe.recv())
        except EOFError:
            return "exited during start-up"
    if not p.is_alive():
        return "exited during start-up"
    if time.monotonic() > deadline:
        return f"not ready within {STARTUP_TIMEOUT:.0f}s"
    return None


def _stop_all(children: dict[int, BaseProcess], timeout: float) -> None:
    for p in children.values():
        if p.pid and p.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in children.values():
        p.join(max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            log.error("serving process pid=%s did not stop in time; killing it", p.pid)
            p.kill()
            p.join(5)


def with_overrides(settings: Settings, listen: str | None, next_hop: str | None) -> Settings:
    """``--listen`` / ``--next-hop`` in place of ``[smtp]``'s; a ValueError names the
    option (or the key it meets) and the value, as the file's errors do."""
    from dataclasses import replace

    if listen:
        check_address(listen, "--listen")
    if next_hop:
        check_address(next_hop, "--next-hop")
    smtp: SmtpSettings = settings.smtp
    names = (
        "--listen" if listen else "[smtp] listen",
        "--next-hop" if next_hop else "[smtp] next_hop",
    )
    loop = loop_problem(listen or smtp.listen, names[0], next_hop or smtp.next_hop, names[1])
    if loop:
        raise ValueError(loop)
    return replace(
        settings,
        smtp=replace(smtp, listen=listen or smtp.listen, next_hop=next_hop or smtp.next_hop),
    )


def _warn_if_ocr_unavailable(settings: Settings) -> None:
    """Said once at start: images will be passed as status ``image`` (not read)."""
    from dlp.extract.ocr import unavailable

    if not settings.ocr.enabled:
        return
    why = unavailable(tuple(settings.ocr.languages))
    if why:
        log.warning(
            "ocr unavailable: images and scanned PDF pages will not be read",
            extra={"dlp": {"event": "ocr unavailable", "problem": why}},
        )
