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
import pickle
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection

    async def run(
        self, raw: bytes, source: str, timeout: float, sender: ThreadPoolExecutor
    ) -> ScanReport:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        fd = self.conn.fileno()
        loop.add_reader(fd, readable)
        try:
            # A 2 MB write into a 64 KB pipe blocks until the worker has read
            # it: do it off the event loop.
            await loop.run_in_executor(sender, self._send, source, raw)
            try:
                await asyncio.wait_for(ready, timeout)
            except TimeoutError:
                raise WorkerFailed("timeout") from None
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                raise WorkerFailed("worker crashed") from None
        finally:
            loop.remove_reader(fd)
        report = pickle.loads(data)
        if not isinstance(report, ScanReport):
            raise WorkerFailed("worker returned garbage")
        return report

    def _send(self, source: str, raw: bytes) -> None:
        try:
            self.conn.send_bytes(source.encode("utf-8"))
            self.conn.send_bytes(raw)
        except (BrokenPipeError, OSError):
            raise WorkerFailed("worker crashed") from None

    def stop(self) -> None:
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
        self._sender = ThreadPoolExecutor(self.size, thread_name_prefix="dlp-scan-send")
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
        worker = _Worker(process, parent)
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
            report = await worker.run(
                raw, source, max(remaining, 0.1) + GRACE_SECONDS, self._sender
            )
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
        self._sender.shutdown(wait=False, cancel_futures=True)
