"""What stands between the login form and Argon2: a per-address rate and a bounded pool.

Each Argon2id verification takes 64 MiB and up to four threads (argon2-cffi's
defaults t=3, m=64 MiB, p=4; RFC 9106 §4 "second recommended option"); measured
0.2-0.5 s a verification on this project's loaded two-core build host.  Run on
Starlette's own thread pool (40 threads) a flood of sign-ins would use every core and
~2.5 GiB, and every other page would wait for a free thread.  So:

- ``LoginGate.admit(address)`` is a token bucket per client address (an IPv6
  address counts by its /64, which one attacker gets whole): a burst of
  ``login_attempts_per_minute`` and then that many a minute.  The refusal carries
  the seconds until the next attempt is allowed (for 429 ``Retry-After``, RFC 6585 §4).
- ``LoginGate.run(fn, ...)`` runs the Argon2 work on a pool of its own with
  ``login_concurrency`` threads (the semaphore), off the event loop; at most
  ``login_queue`` more wait for a thread, further ones are refused at once (503)
  rather than queued behind a flood.

State is per console process, in memory: a restart forgets the buckets, which only
ever errs towards letting people in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from dlp.config import ConsoleSettings

T = TypeVar("T")

MAX_TRACKED_ADDRESSES = 10_000
"""Buckets kept; beyond this the least recently seen address is forgotten (memory)."""
BUSY_RETRY_SECONDS = 5


class Busy(Exception):
    """Too many sign-ins are already waiting for an Argon2 slot."""

    retry_after = BUSY_RETRY_SECONDS


def address_key(host: str) -> str:
    """The bucket an address counts against: IPv4 as is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # a unix socket or a test client's name
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class LoginGate:
    def __init__(
        self,
        per_minute: int,
        concurrency: int,
        queue: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.concurrency = concurrency
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when); LRU order
        self._pool: ThreadPoolExecutor | None = None  # made on first use, again after close()
        # Admission counts running + waiting work; released when the work is done
        # (or cancelled before it started), never when the awaiting request goes away.
        self._admitted = threading.BoundedSemaphore(concurrency + queue)

    @classmethod
    def from_settings(cls, console: ConsoleSettings) -> LoginGate:
        return cls(
            console.login_attempts_per_minute, console.login_concurrency, console.login_queue
        )

    def admit(self, address: str) -> int | None:
        """None when ``address`` may try now (one token taken), else seconds to wait."""
        if self.per_minute <= 0:
            return None
        key = address_key(address)
        capacity = float(self.per_minute)
        rate = capacity / 60.0
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.pop(key, (capacity, now))
            tokens = min(capacity, tokens + (now - when) * rate)
            wait: int | None = None
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = max(1, math.ceil((1.0 - tokens) / rate))
            self._buckets[key] = (tokens, now)  # re-inserted: most recently seen last
            while len(self._buckets) > MAX_TRACKED_ADDRESSES:
                del self._buckets[next(iter(self._buckets))]
        return wait

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the Argon2 pool; Busy when the pool's queue is full."""
        if not self._admitted.acquire(blocking=False):
            raise Busy()
        try:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="argon2")
                future: Future[T] = self._pool.submit(fn, *args)
        except BaseException:
            self._admitted.release()
            raise
        future.add_done_callback(lambda _f: self._admitted.release())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
