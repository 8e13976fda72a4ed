"""Sorting the send-log list by a column.

Time order comes from the store (an index, any number of entries).  The store has no
index for the other columns, so the console sorts those itself - but only when the
filtered set is small enough to read whole (``MAX_CONSOLE_SORT`` entries, well inside
the page-time budget); a reviewer sorting a year of mail by sender is asked to narrow
the filter first rather than wait.  ``sort`` values: ``newest``/``oldest`` (time) or a
column name, descending with a leading ``-``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

from dlp.model import Action
from dlp.sendlog.record import SendRecord
from dlp.sendlog.store import StoredEntry

STORE_SORTS = ("newest", "oldest")
MAX_CONSOLE_SORT = 2000


def _severity(action: str) -> int:
    """Sort rank of a verdict, mildest first; events (no action) before, unknown after.

    A ``match`` on the enum so that mypy names this place when an action is added."""
    if not action:
        return -1
    try:
        known = Action(action)
    except ValueError:
        return 5
    match known:
        case Action.DELIVER:
            return 0
        case Action.TAG:
            return 1
        case Action.TEMPFAIL:
            return 2
        case Action.DELAY:
            return 2
        case Action.HOLD | Action.CONFIRM | Action.APPROVE:
            return 3
        case Action.REJECT:
            return 4
        case _:
            assert_never(known)


COLUMN_KEYS: dict[str, Callable[[SendRecord], Any]] = {
    "sender": lambda r: (r.sender.lower(), r.actor.lower()),
    "recipient": lambda r: tuple(x.address.lower() for x in r.recipients),
    "subject": lambda r: r.subject,
    "attachments": lambda r: (len(r.attachments), tuple(a.filename for a in r.attachments)),
    "findings": lambda r: (r.mynumber_distinct, sum(f.count for f in r.findings)),
    "verdict": lambda r: _severity(r.action),
}
COLUMN_SORTS = tuple(c for col in COLUMN_KEYS for c in (col, "-" + col))
SORTS = STORE_SORTS + COLUMN_SORTS


def is_column_sort(sort: str) -> bool:
    return sort in COLUMN_SORTS


def column_of(sort: str) -> str:
    return sort.lstrip("-")


def sort_entries(entries: list[StoredEntry], sort: str) -> list[StoredEntry]:
    """Entries (newest first, as read) ordered by a column; ties stay newest first."""
    key = COLUMN_KEYS[column_of(sort)]
    return sorted(entries, key=lambda e: key(e.record), reverse=sort.startswith("-"))


def toggled(current: str, column: str) -> str:
    """The sort a click on ``column``'s heading asks for."""
    if column == "time":
        return "oldest" if current == "newest" else "newest"
    return "-" + column if current == column else column
