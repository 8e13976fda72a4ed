"""Run a filter (``dlp serve`` or the pass-through stand-in) as a real subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from e2e_postfix import port_open, wait_until


class ServiceProcess:
    """A listening subprocess: started in its own session, output kept in ``log_path``."""

    def __init__(self, argv: Sequence[str], port: int, log_path: Path, cwd: Path) -> None:
        self.argv = list(argv)
        self.port = port
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{self.argv[0]} exited with {proc.returncode} before listening:\n{self.log()}"
                )
            return port_open(self.port)

        wait_until(
            ready,
            timeout=timeout,
            what=f"{' '.join(self.argv[:2])} to listen on 127.0.0.1:{self.port}",
            on_timeout=self.log,
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL to the process group we created; never hangs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        # Worker processes it forked live in the session we started; end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return f"--- {self.log_path.name} (tail) ---\n" + "\n".join(text.splitlines()[-60:])
