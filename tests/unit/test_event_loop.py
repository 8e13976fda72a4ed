"""`dlp serve` runs on uvloop when it can, and on asyncio's own loop when told or when
uvloop cannot be imported (an optimisation must never stop the gateway)."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from dlp.config import SmtpSettings
from dlp.smtp.app import run_loop


async def _loop_module() -> int:
    return 1 if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else 0


def test_uvloop_when_chosen() -> None:
    pytest.importorskip("uvloop")
    assert run_loop(_loop_module(), "uvloop") == 1


def test_asyncio_when_chosen() -> None:
    assert run_loop(_loop_module(), "asyncio") == 0


def test_falls_back_with_a_warning_when_uvloop_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    with caplog.at_level(logging.WARNING, logger="dlp.smtp.app"):
        assert run_loop(_loop_module(), "uvloop") == 0
    assert any("uvloop cannot be imported" in r.getMessage() for r in caplog.records)


def test_event_loop_setting_is_checked() -> None:
    assert SmtpSettings().event_loop == "uvloop"
    with pytest.raises(ValueError, match="event_loop"):
        SmtpSettings(event_loop="tokio")
