"""Small budget checks shared by the container extractors."""

from __future__ import annotations

from dlp.extract.base import Budget, BudgetExceeded
from dlp.model import AttachmentStatus


def check_member_count(budget: Budget, pending: int) -> None:
    """Refuse to collect one more member once ``max_members`` would be crossed.

    The scanner counts members (``Budget.add_member``) as it recurses into
    them; a container only checks, so that an archive of a million empty files
    is cut off here instead of being held in memory first."""
    if budget.members + pending + 1 > budget.max_members:
        raise BudgetExceeded(
            AttachmentStatus.TOO_LARGE, f"more than max_members {budget.max_members} files"
        )
