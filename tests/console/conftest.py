"""Fixtures for the review console: a private state directory, real stores, one
account per role, and signed-in TestClients.  Helpers the tests import live in
console_support.py (several conftest.py files share the module name "conftest")."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_support import (
    FAST_HASHER,
    PASSWORD,
    ROLES,
    Sink,
    login,
    make_settings,
    seed_log,
)

from dlp.config import Settings
from dlp.console.app import create_app
from dlp.console.services import Services
from dlp.console.users import Role, UserStore, users_db_path

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx (what is installed) works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def settings(tmp_path: Path, sink: Sink) -> Settings:
    return make_settings(tmp_path, next_hop_port=sink.port)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    users = UserStore(users_db_path(settings.var_dir), hasher=FAST_HASHER)
    for role in ROLES:
        users.add(role, PASSWORD, Role(role))
    svc = Services(settings, users=users)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def seeded(services: Services) -> Services:
    seed_log(services.sendlog())
    return services


@pytest.fixture
def client_for(services: Services) -> Iterator[Callable[[str | None], TestClient]]:
    """client_for(role) -> a TestClient signed in as that role (None: anonymous)."""
    app = create_app(services.settings, services)
    opened: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        c = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
        c.__enter__()
        opened.append(c)
        if role is not None:
            login(c, role, PASSWORD)
        return c

    try:
        yield make
    finally:
        for c in opened:
            c.__exit__(None, None, None)
