"""Fixtures every gateway test module shares: one event-loop thread and one
real aiosmtpd next hop per module (tests/integration/gwtools.py); and, for the
modules that test the next-hop conversation, a next hop with and without
PIPELINING with a gateway in front of it (``hop``, ``hop_gw``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gwtools import InProcessGateway, LoopThread, Sink, write_config


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


@pytest.fixture(scope="module", params=[True, False], ids=["pipelining", "one-by-one"])
def hop(request: pytest.FixtureRequest, lt: LoopThread) -> Iterator[Sink]:
    """A next hop that announces PIPELINING (as Postfix does), and one that does not."""
    s = Sink(lt, pipelining=request.param).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def hop_gw(
    lt: LoopThread, hop: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessGateway]:
    g = InProcessGateway(write_config(tmp_path_factory.mktemp("gw"), next_hop_port=hop.port), lt)
    yield g
    g.stop()
