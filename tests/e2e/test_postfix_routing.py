"""What a real Postfix does with percent-hack and bang-path recipients, with and without
the two main.cf lines in deploy/postfix/ (issue 11).

The gateway refuses these addresses; this proves the second line behind it.  Mail is
handed straight to the re-injection smtpd (127.0.0.1:10026, as the gateway would relay
it) for ``user%outside.example@<a local domain>``.  With Postfix's defaults the queue
manager strips the local domain and sends the message to ``user@outside.example`` (the
control case, which shows the test can fail); with the deploy files it stays local.
"""

from __future__ import annotations

import shutil
import smtplib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_postfix import PostfixInstance, PostfixPorts, why_unavailable
from e2e_sink import Sink
from support import free_ports

pytestmark = pytest.mark.timeout(120)

LOCAL = "local.dlp-e2e.test"
OUTSIDE = "outside.example"


class LocalDomainPostfix(PostfixInstance):
    """The deploy configuration, plus a local domain (where the percent hack applies)."""

    def __init__(self, root: Path, ports: PostfixPorts, *, postfix_defaults: bool) -> None:
        super().__init__(root, ports)
        self.postfix_defaults = postfix_defaults

    def main_cf(self) -> str:
        text = super().main_cf()
        if self.postfix_defaults:
            text = text.replace("allow_percent_hack = no", "allow_percent_hack = yes")
            text = text.replace("swap_bangpath = no", "swap_bangpath = yes")
        # The e2e instance otherwise has no local domain.
        assert "\nmydestination =\n" in text
        return text.replace("\nmydestination =\n", f"\nmydestination = {LOCAL}\n")


@pytest.fixture(params=["deploy", "postfix-defaults"])
def instance(request: pytest.FixtureRequest) -> Iterator[tuple[LocalDomainPostfix, Sink]]:
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="dlp-e2e-routing-"))
    ports = PostfixPorts(*free_ports(5))
    sink = Sink(ports.sink)
    sink.start()
    postfix = LocalDomainPostfix(root, ports, postfix_defaults=request.param == "postfix-defaults")
    try:
        postfix.start()
        yield postfix, sink
    finally:
        postfix.stop()
        sink.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_percent_and_bang_recipients_are_not_rerouted(
    instance: tuple[LocalDomainPostfix, Sink],
) -> None:
    postfix, sink = instance
    rerouting = postfix.postfix_defaults
    assert postfix.run(Path("/usr/sbin/postconf"), "-h", "allow_percent_hack").stdout.strip() == (
        "yes" if rerouting else "no"
    )
    markers = {}
    for form, rcpt in (
        ("percent", f"user%{OUTSIDE}@{LOCAL}"),
        ("bang", f"{OUTSIDE}!user@{LOCAL}"),
    ):
        marker = f"routing-{form}-{uuid.uuid4().hex}"
        markers[form] = marker
        with smtplib.SMTP("127.0.0.1", postfix.ports.reinject, timeout=30) as c:
            c.sendmail(
                "sender@sender.example",
                [rcpt],
                f"From: sender@sender.example\r\nSubject: {marker}\r\n\r\n{marker}\r\n",
            )
    for form, marker in markers.items():
        if rerouting:
            # The hole: the message leaves for outside.example, although addressed to LOCAL.
            [got] = sink.wait(lambda m=marker: sink.with_marker(m), 30, f"{form} to the sink")
            assert got.rcpt_tos == (f"user@{OUTSIDE}",), form
        else:
            # Resolved as a local recipient (local delivery is an error here): a bounce to
            # the sender, and the message never reaches outside.example.
            sink.wait(lambda m=marker: sink.bounces_about(m), 30, f"{form} bounce")
            assert sink.with_marker(marker) == [], form
            assert sink.to(f"user@{OUTSIDE}") == [], form
