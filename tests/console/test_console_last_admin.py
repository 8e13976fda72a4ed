"""The last admin cannot be removed or demoted, even by two admins at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from console_support import FAST_HASHER

from dlp.console.users import LastAdminError, Role, UserStore

PASSWORD = "correct horse battery staple"


def test_last_admin_is_kept(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.db", FAST_HASHER)
    store.add("alice", PASSWORD, Role.ADMIN)
    store.add("bob", PASSWORD, Role.REVIEWER)
    with pytest.raises(LastAdminError):
        store.set_role("alice", Role.REVIEWER, keep_an_admin=True)
    with pytest.raises(LastAdminError):
        store.remove("alice", keep_an_admin=True)
    store.remove("bob", keep_an_admin=True)  # not an admin: fine
    store.set_role("alice", Role.ADMIN, keep_an_admin=True)  # not a demotion: fine
    assert [u.role for u in store.users()] == [Role.ADMIN]


@pytest.mark.parametrize("attempt", range(5))
def test_two_admins_demoting_each_other_at_once_leave_one(tmp_path: Path, attempt: int) -> None:
    store = UserStore(tmp_path / f"users{attempt}.db", FAST_HASHER)
    store.add("alice", PASSWORD, Role.ADMIN)
    store.add("carol", PASSWORD, Role.ADMIN)
    barrier = threading.Barrier(2)
    refused: list[str] = []

    def demote(name: str) -> None:
        barrier.wait(timeout=10)
        try:
            UserStore(tmp_path / f"users{attempt}.db", FAST_HASHER).set_role(
                name, Role.REVIEWER, keep_an_admin=True
            )
        except LastAdminError:
            refused.append(name)

    threads = [threading.Thread(target=demote, args=(n,)) for n in ("alice", "carol")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(refused) == 1
    assert sum(u.role is Role.ADMIN for u in store.users()) == 1
