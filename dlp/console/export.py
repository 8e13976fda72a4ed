"""CSV download of the current send-log filter, streamed.

The rows come from ``dlp.sendlog.export.write_csv`` - the very writer behind
``dlp log export`` - so the console's file and the CLI's are the same format
(UTF-8 with BOM for Japanese Excel, formula cells defused).  ``write_csv`` is a
blocking writer and a year of entries does not fit in memory, so it runs in a
thread that hands chunks to the response through a small bounded queue; when the
browser goes away the writer is told to stop at its next write.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio.to_thread
from starlette.responses import StreamingResponse

from dlp.console.fmt import JST
from dlp.sendlog.export import write_csv
from dlp.sendlog.redact import scrub
from dlp.sendlog.store import LogFilter, SendLogStore

_CHUNK = 64 * 1024
_DONE = object()


class _Cancelled(Exception):
    pass


class _QueueWriter:
    """A write-only binary stream whose writes become response chunks."""

    def __init__(self, q: queue.Queue[object], cancelled: threading.Event) -> None:
        self._q = q
        self._cancelled = cancelled
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        if self._cancelled.is_set():
            raise _Cancelled
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            _put(self._q, self._cancelled, bytes(self._buf))
            self._buf.clear()

    # What io.TextIOWrapper asks of the stream it wraps.
    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False


def _put(q: queue.Queue[object], cancelled: threading.Event, item: object) -> None:
    """Put unless the reader has gone (then nobody will ever take it)."""
    while not cancelled.is_set():
        try:
            q.put(item, timeout=0.5)
            return
        except queue.Full:
            continue


def csv_response(
    store: SendLogStore, flt: LogFilter, *, japanese_headers: bool = False
) -> StreamingResponse:
    q: queue.Queue[object] = queue.Queue(maxsize=16)
    cancelled = threading.Event()

    def produce() -> None:
        out = _QueueWriter(q, cancelled)
        try:
            write_csv(
                store.iter_entries(flt),
                out,  # type: ignore[arg-type]
                encoding="utf-8",
                japanese_headers=japanese_headers,
                tz=JST,
            )
            out.flush()
        except _Cancelled:
            return
        except Exception as exc:  # the header is sent; end the file with the reason
            reason = scrub(f"{type(exc).__name__}: {exc}")  # it may quote a number
            _put(q, cancelled, f"\r\n# export stopped: {reason}\r\n".encode())
        finally:
            _put(q, cancelled, _DONE)

    async def body() -> AsyncIterator[bytes]:
        thread = threading.Thread(target=produce, name="csv-export", daemon=True)
        thread.start()
        try:
            while True:
                item = await anyio.to_thread.run_sync(q.get)
                if item is _DONE:
                    return
                assert isinstance(item, bytes)
                yield item
        finally:
            cancelled.set()

    stamp = datetime.now(UTC).astimezone(JST).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="sendlog-{stamp}.csv"'},
    )
