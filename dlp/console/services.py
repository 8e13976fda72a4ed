"""The stores the console works on, opened once per console process.

The console never writes the send log, the hold queue or the allowlist by itself
when an owner module has a function for it: releases and discards go through
``dlp.smtp.release`` (which records who and when), allowlist files through
``dlp.allowlist``.  This module only holds the handles.
"""

from __future__ import annotations

import threading

from dlp.config import Settings
from dlp.console.security import console_key
from dlp.console.users import UserStore, users_db_path
from dlp.sendlog import open_store
from dlp.sendlog.store import SendLogStore


class Services:
    def __init__(self, settings: Settings, users: UserStore | None = None) -> None:
        self.settings = settings
        self.users = users or UserStore(users_db_path(settings.var_dir))
        self.key = console_key(settings)
        self._store: SendLogStore | None = None
        self._lock = threading.Lock()

    def sendlog(self) -> SendLogStore:
        """The send log, opened on first use (SendLogError when it cannot be).

        Opened lazily so that the login page still works - and says what is wrong -
        when the database is unreachable."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
