"""Scan worker processes with a per-message budget: scanning never stalls the serving
loop, and uses every core.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one stuck
task.  A scan that hangs (a decoder caught in a loop) would hold its worker
forever, and a crashed worker breaks the whole executor and every scan queued
on it.  Here each worker is one process on one pipe: a scan past its budget
gets its worker killed and replaced, a crash is seen as EOF on the pipe, and in
both cases only that one message gets a report whose ``error`` is set, so policy
tempfails it (the upstream MTA retries) while every other session carries on.

Workers start from a ``forkserver`` (never by forking the serving process,
whose other threads may hold locks), with the scanner pre-imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from dlp.config import ScanSettings
from dlp.model import ScanReport

log = logging.getLogger("dlp.smtp.workers")

ScanFn = Callable[[bytes, ScanSettings, str], ScanReport]

GRACE_SECONDS = 2.0
"""Beyond the budget the scanner enforces itself, before its worker is killed."""


def default_scan_fn() -> ScanFn:
    from dlp.scanner import scan_message

    return scan_message


def _worker_main(conn: Connection, scan_fn: ScanFn | None, settings: ScanSettings) -> None:
    fn = scan_fn or default_scan_fn()
    while True:
        try:
            source = conn.recv_bytes().decode("utf-8")
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            report = fn(raw, settings, source)
        except Exception as exc:  # the scanner promises not to raise; be sure anyway
            report = ScanReport(
                source=source, size=len(raw), error=f"scanner error: {type(exc).__name__}"
            )
        conn.send_bytes(pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL))


class WorkerFailed(Exception):
    pass


_LENGTH = struct.Struct("!i")
_LONG_LENGTH = struct.Struct("!Q")


def _frame(n: int) -> bytes:
    """The length header ``Connection.send_bytes`` writes before ``n`` bytes."""
    if n > 0x7FFFFFFF:
        return _LENGTH.pack(-1) + _LONG_LENGTH.pack(n)
    return _LENGTH.pack(n)


@dataclass(eq=False)
class _Worker:
    """One worker process and the serving process's end of its socket pair.

    The serving process speaks ``Connection``'s framing (a length, then the
    bytes) itself, with the event loop's non-blocking socket calls: the worker
    side stays a plain blocking ``Connection``.  A blocking ``send_bytes`` in a
    thread, as before, breaks under uvloop, whose ``add_reader`` makes the
    shared descriptor non-blocking (a 2 MB write then fails half-way), and it
    cost a thread hand-off per message."""

    process: BaseProcess
    conn: Connection
    sock: socket.socket

    async def run(self, raw: bytes, source: str, timeout: float) -> ScanReport:
        try:
            data = await asyncio.wait_for(self._exchange(raw, source), timeout)
        except TimeoutError:
            raise WorkerFailed("timeout") from None
        except (ConnectionError, OSError):
            raise WorkerFailed("worker crashed") from None
        report = pickle.loads(data)
        if not isinstance(report, ScanReport):
            raise WorkerFailed("worker returned garbage")
        return report

    async def _exchange(self, raw: bytes, source: str) -> bytes:
        loop = asyncio.get_running_loop()
        name = source.encode("utf-8")
        # One buffer for the small parts, the message itself as it is (no copy).
        await loop.sock_sendall(self.sock, _frame(len(name)) + name + _frame(len(raw)))
        await loop.sock_sendall(self.sock, raw)
        (size,) = _LENGTH.unpack(await self._recv_exactly(_LENGTH.size))
        if size == -1:
            (size,) = _LONG_LENGTH.unpack(await self._recv_exactly(_LONG_LENGTH.size))
        return bytes(await self._recv_exactly(size))

    async def _recv_exactly(self, n: int) -> bytearray:
        loop = asyncio.get_running_loop()
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = await loop.sock_recv_into(self.sock, view[got:])
            if k == 0:
                raise WorkerFailed("worker crashed")
            got += k
        return buf

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.close()
        with contextlib.suppress(Exception):
            self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class ScanPool:
    """``size`` worker processes; ``await scan(raw, source)`` never raises."""

    def __init__(
        self,
        settings: ScanSettings,
        size: int,
        scan_fn: ScanFn | None = None,
    ) -> None:
        self.settings = settings
        self.size = max(1, size)
        self.scan_fn = scan_fn
        self._ctx = multiprocessing.get_context("forkserver")
        if scan_fn is None:
            self._ctx.set_forkserver_preload(["dlp.scanner"])
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._closed = False
        self.replaced = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        workers = await asyncio.gather(
            *(loop.run_in_executor(None, self._spawn) for _ in range(self.size))
        )
        for w in workers:
            self._idle.put_nowait(w)

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self.scan_fn, self.settings),
            name="dlp-scan-worker",
            daemon=True,
        )
        process.start()
        child.close()
        sock = socket.socket(fileno=os.dup(parent.fileno()))
        sock.setblocking(False)
        worker = _Worker(process, parent, sock)
        self._all.add(worker)
        return worker

    async def scan(self, raw: bytes, source: str) -> ScanReport:
        """Scan in a worker within the budget; failures come back as ``report.error``."""
        budget = self.settings.timeout_seconds
        started = time.monotonic()
        try:
            worker = await asyncio.wait_for(self._idle.get(), budget)
        except TimeoutError:
            return self._failed(source, raw, "timeout: no scan worker free within the budget")
        remaining = budget - (time.monotonic() - started)
        try:
            report = await worker.run(raw, source, max(remaining, 0.1) + GRACE_SECONDS)
        except WorkerFailed as exc:
            await self._replace(worker, str(exc))
            reason = "timeout" if str(exc) == "timeout" else f"scan worker failed: {exc}"
            return self._failed(source, raw, reason)
        except BaseException:
            # Cancelled mid-scan (the client went away): the worker's pipe may
            # hold a half-sent message or an unread report; start afresh.
            await self._replace(worker, "cancelled")
            raise
        self._idle.put_nowait(worker)
        return report

    async def _replace(self, worker: _Worker, why: str) -> None:
        log.warning("replacing scan worker pid=%s: %s", worker.process.pid, why)
        self._all.discard(worker)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, worker.stop)
        if self._closed:
            return
        self.replaced += 1
        while not self._closed:
            try:
                fresh = await loop.run_in_executor(None, self._spawn)
            except Exception as exc:
                # Never shrink the pool for good: keep trying, and meanwhile
                # scans wait (then time out and tempfail) rather than fail.
                log.error("cannot start a scan worker (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            self._idle.put_nowait(fresh)
            return

    def _failed(self, source: str, raw: bytes, reason: str) -> ScanReport:
        return ScanReport(source=source, size=len(raw), error=reason)

    async def close(self) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(loop.run_in_executor(None, w.stop) for w in workers))
