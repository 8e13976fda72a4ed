"""``[[approval.routes]]``: the approvers of a sender's mail; first match wins."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from dlp.config import ApprovalRoute


def approvers_for(sender: str, routes: Sequence[ApprovalRoute]) -> tuple[str, ...]:
    """The approvers of the first route matching ``sender``; () when none does.

    A route's ``sender`` is an address, a domain (``example.lg.jp`` or
    ``@example.lg.jp``, subdomains included), a glob (``*@soumu.example.lg.jp``)
    or ``*`` (the default route, put last)."""
    address = sender.strip().strip("<>").lower()
    if not address:
        return ()
    domain = address.rpartition("@")[2]
    for route in routes:
        pattern = route.sender.strip().lower()
        if any(c in pattern for c in "*?["):
            hit = fnmatchcase(address, pattern)
        elif "@" in pattern and not pattern.startswith("@"):
            hit = address == pattern
        else:
            d = pattern.lstrip("@")
            hit = domain == d or domain.endswith("." + d)
        if hit:
            return tuple(a.strip() for a in route.approvers)
    return ()
