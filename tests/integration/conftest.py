"""Fixtures every gateway test module shares: one event-loop thread and one
real aiosmtpd next hop per module (tests/integration/gwtools.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gwtools import LoopThread, Sink


@pytest.fixture(scope="module")
def lt() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture(scope="module")
def sink(lt: LoopThread) -> Iterator[Sink]:
    s = Sink(lt).start()
    yield s
    s.stop()
