"""Run a native parser in a forked child, so that its crash is a status, not a dead process.

calamine (Rust) *aborts the process* when a damaged .xls makes it ask for an
absurd allocation (fuzzing the corpus .xls files found an 88 GB request within
a minute), and pdfium (C++) can fault on a hostile PDF.  The gateway scans
small messages inline in the serving process (handing them to a worker costs more
than scanning them), so an abort there would take SMTP down, which bad input must
never do.  ``run_isolated`` forks, runs the parser
in the child under an address-space limit, and sends the result back
through a pipe; a child that dies or overruns the time budget becomes
``ParserCrashed`` / ``BudgetExceeded(timeout)``.

The result travels as JSON, not pickle: a child parsing hostile input must
not be able to hand the parent code to run.  So ``fn`` returns plain data
(lists, dicts, str, int, None).  Its arguments need no serialising — the
child is a fork and sees them in memory.

Cost: one fork (copy-on-write, a few ms) plus encoding the extracted text
(tens of ms for the 14 M characters of a 10 MB workbook).
"""

from __future__ import annotations

import base64
import json
import os
import resource
import select
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dlp.extract.base import Budget, BudgetExceeded, Extracted, Member
from dlp.model import AttachmentStatus, TextChunk

T = TypeVar("T")

_HEADROOM = 1 << 30
"""Address space the child may add on top of the parent's (besides the budget)."""


class ParserCrashed(Exception):
    """The isolated parser died (signal, abort, memory limit)."""


def _child(fn: Callable[..., Any], args: tuple[Any, ...], write_fd: int, limit: int) -> None:
    try:
        # a native crash report (Rust backtrace, allocation sizes) is noise in the service log
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = _vm_size() + limit
        if hard == resource.RLIM_INFINITY or want < hard:
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        try:
            message: list[Any] = ["ok", fn(*args)]
        except BudgetExceeded as exc:
            message = ["budget", [exc.status.value, exc.detail]]
        except BaseException as exc:
            from dlp.extract.registry import safe_reason

            message = ["error", safe_reason(exc)]
        payload = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
        view = memoryview(payload)
        while view:
            n = os.write(write_fd, view[: 1 << 20])
            view = view[n:]
    finally:
        os._exit(0)  # no atexit handlers, no flushing of the parent's buffers


def _vm_size() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def run_isolated(fn: Callable[..., T], *args: Any, budget: Budget) -> T:
    """``fn(*args)`` in a forked child; its exceptions come back as BudgetExceeded or ParserCrashed."""
    limit = _HEADROOM + 4 * budget.max_total_bytes
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        _child(fn, args, write_fd, limit)
    os.close(write_fd)
    chunks: list[bytes] = []
    try:
        while True:
            remaining = budget.deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise BudgetExceeded(AttachmentStatus.TIMEOUT, "per-message time budget used up")
            ready, _, _ = select.select([read_fd], [], [], min(remaining, 1.0))
            if not ready:
                continue
            block = os.read(read_fd, 1 << 20)
            if not block:
                break
            chunks.append(block)
    finally:
        os.close(read_fd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped by someone else's SIGCHLD handler
            status = 0
    data = b"".join(chunks)
    if os.WIFSIGNALED(status) or not data:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        name = signal.Signals(sig).name if sig else "no result"
        raise ParserCrashed(f"parser died ({name}; damaged file or memory limit)")
    try:
        kind, value = json.loads(data.decode("utf-8", "surrogatepass"))
    except ValueError as exc:
        raise ParserCrashed("parser returned garbage") from exc
    if kind == "ok":
        return value
    if kind == "budget":
        status_value, detail = value
        raise BudgetExceeded(AttachmentStatus(status_value), detail)
    raise ParserCrashed(str(value))


def _to_plain(ex: Extracted) -> dict[str, Any]:
    return {
        "kind": ex.kind,
        "status": ex.status.value,
        "chunks": [[c.text, c.location, c.field_label] for c in ex.chunks],
        "members": [
            [m.name, base64.b64encode(m.data).decode("ascii"), m.content_type] for m in ex.members
        ],
        "detail": ex.detail,
        "content_type": ex.content_type,
        "defects": list(ex.defects),
        "unread": list(ex.unread),
    }


def _from_plain(d: dict[str, Any]) -> Extracted:
    return Extracted(
        kind=d["kind"],
        status=AttachmentStatus(d["status"]),
        chunks=tuple(TextChunk(t, loc, label) for t, loc, label in d["chunks"]),
        members=tuple(Member(n, base64.b64decode(b), ct) for n, b, ct in d["members"]),
        detail=d["detail"],
        content_type=d["content_type"],
        defects=tuple(d["defects"]),
        unread=tuple(d["unread"]),
    )


def extract_isolated(
    fn: Callable[[bytes, str, str, Budget], Extracted],
    data: bytes,
    filename: str,
    location: str,
    budget: Budget,
    kind: str,
) -> Extracted:
    """A whole extractor in the child; a crash is status ``error`` for that file."""

    def plain() -> dict[str, Any]:
        result = _to_plain(fn(data, filename, location, budget))
        # What the child spent of the message's OCR budget (its Budget is a copy).
        result["ocr_pages"] = budget.ocr_pages
        return result

    try:
        got = run_isolated(plain, budget=budget)
        budget.ocr_pages = max(budget.ocr_pages, int(got.get("ocr_pages", 0)))
        return _from_plain(got)
    except ParserCrashed as exc:
        return Extracted(kind=kind, status=AttachmentStatus.ERROR, detail=str(exc))
