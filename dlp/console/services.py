"""The stores the console works on, opened once per console process.

The console never writes the send log, the hold queue or the allowlist by itself
when an owner module has a function for it: releases and discards go through
``dlp.smtp.release`` and ``dlp.holdqueue.decisions`` (which record who and when), allowlist files through
``dlp.allowlist``.  This module only holds the handles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from dlp.config import Settings
from dlp.console.security import console_key
from dlp.console.throttle import LoginGate
from dlp.console.users import LockoutPolicy, UserStore, users_db_path
from dlp.sendlog import open_store
from dlp.sendlog.store import SendLogStore

T = TypeVar("T")


class Services:
    def __init__(self, settings: Settings, users: UserStore | None = None) -> None:
        self.settings = settings
        self.users = users or UserStore(
            users_db_path(settings.var_dir), lockout=lockout_policy(settings)
        )
        self.login = LoginGate.from_settings(settings.console)
        self.key = console_key(settings)
        self._store: SendLogStore | None = None
        self._lock = threading.Lock()
        self._cache: dict[Hashable, tuple[float, Any]] = {}

    def sendlog(self) -> SendLogStore:
        """The send log, opened on first use (SendLogError when it cannot be).

        Opened lazily so that the login page still works - and says what is wrong -
        when the database is unreachable."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings)
            return self._store

    def cached(self, key: Hashable, ttl: float, compute: Callable[[], T]) -> T:
        """``compute()``, or its result from the last ``ttl`` seconds."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < ttl:
                return hit[1]
        value = compute()
        with self._lock:
            # Drop stale entries so a long-running console does not accumulate them.
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < ttl}
            self._cache[key] = (now, value)
        return value

    def close(self) -> None:
        self.login.close()
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def lockout_policy(settings: Settings) -> LockoutPolicy:
    c = settings.console
    return LockoutPolicy(c.max_failed_logins, c.lockout_seconds, c.lockout_max_seconds)
