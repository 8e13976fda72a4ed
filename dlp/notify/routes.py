"""``[[approval.routes]]``: the approvers of a sender's mail; first match wins."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from dlp.config import ApprovalRoute


def approvers_for(sender: str, routes: Sequence[ApprovalRoute]) -> tuple[str, ...]:
    """The approvers of the first route matching ``sender``, the sender left out; ()
    when none does, or when the sender is its only approver.

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
            # 上長承認: nobody approves their own mail.  A sender listed among the
            # approvers of their route (the section chief writing himself) is left
            # out; when nobody is left, the gateway holds the mail for the staff.
            return tuple(a.strip() for a in route.approvers if a.strip().lower() != address)
    return ()
