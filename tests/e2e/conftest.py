"""Fixtures for the end-to-end tests: a private Postfix, the sink, the filter between them.

Topology (every socket on 127.0.0.1, ports chosen free at start):

    client ─▶ submit smtpd ─▶ queue ─▶ scan (smtp) ─▶ filter ─▶ reinject smtpd ─▶ queue ─▶ sink
    client ─▶ before-queue smtpd ─(smtpd_proxy_filter)─▶ filter ─▶ reinject smtpd ─▶ …

The filter is ``dlp serve`` (test_gateway.py) or a pass-through stand-in (test_plumbing.py).
Everything is torn down even when a test fails; the Postfix log is kept in test-output/.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_gateway import Gateway, why_gateway_unusable
from e2e_postfix import PostfixInstance, PostfixPorts, keep_logs, why_unavailable
from e2e_process import ServiceProcess
from e2e_sink import Sink
from support import free_ports


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_root() -> Iterator[Path]:
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    # Not pytest's tmp_path: that is mode 0700, and Postfix's daemons (user postfix) must
    # reach the queue below it.
    root = Path(tempfile.mkdtemp(prefix="dlp-e2e-"))
    try:
        yield root
    finally:
        keep_logs(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def ports(e2e_root: Path) -> PostfixPorts:
    submit, before_queue, reinject, gateway, sink = free_ports(5)
    return PostfixPorts(submit, before_queue, reinject, gateway, sink)


@pytest.fixture(scope="session")
def sink(ports: PostfixPorts) -> Iterator[Sink]:
    s = Sink(ports.sink)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def postfix(e2e_root: Path, ports: PostfixPorts, sink: Sink) -> Iterator[PostfixInstance]:
    instance = PostfixInstance(e2e_root, ports)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def passthrough(
    e2e_root: Path, ports: PostfixPorts, postfix: PostfixInstance
) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(
        [
            sys.executable,
            str(Path(__file__).parent / "e2e_passthrough.py"),
            str(ports.gateway),
            str(ports.reinject),
        ],
        ports.gateway,
        e2e_root / "passthrough.log",
        cwd=e2e_root,
    )
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def gateway(e2e_root: Path, ports: PostfixPorts, postfix: PostfixInstance) -> Iterator[Gateway]:
    reason = why_gateway_unusable()
    if reason:
        pytest.skip(reason)
    gw = Gateway(e2e_root, ports)
    try:
        gw.process.start(timeout=60)
        yield gw
    finally:
        gw.process.stop()
