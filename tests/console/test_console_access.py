"""Every route, every role: login required, forbidden is forbidden, CSRF required."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from console_support import FAST_HASHER, PASSWORD, ROLES, csrf_of, make_settings, seed_log
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from support import free_port

from dlp.console.app import routes
from dlp.console.services import Services
from dlp.console.users import Role, UserStore, users_db_path


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One console state for the whole matrix: no request here changes stored state
    (every POST is refused, or aimed at something absent), so sharing it is safe and
    saves a fresh log per case."""
    root = tmp_path_factory.mktemp("access")
    users = UserStore(users_db_path(root / "var"), hasher=FAST_HASHER)
    for role in ROLES:
        users.add(role, PASSWORD, Role(role))
    svc = Services(make_settings(root, next_hop_port=free_port()), users=users)
    seed_log(svc.sendlog())
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture(scope="module")
def services(seeded: Services) -> Services:
    return seeded


GONE = "20260101000000-abcdef123456"
"""A well-formed held-message id that is not held: permitted roles get a redirect."""

# (method, path, lowest role allowed, form fields)
ROUTES: list[tuple[str, str, str, dict[str, str]]] = [
    ("GET", "/", "reviewer", {}),
    ("GET", "/log", "reviewer", {}),
    ("GET", "/log/export.csv", "reviewer", {}),
    ("GET", "/log/1", "reviewer", {}),
    ("GET", "/held", "reviewer", {}),
    ("GET", f"/held/{GONE}", "reviewer", {}),
    ("POST", f"/held/{GONE}/release", "approver", {"comment": "ok"}),
    ("POST", f"/held/{GONE}/discard", "approver", {"comment": "ok"}),
    ("GET", "/analysis", "reviewer", {}),
    ("GET", "/analysis.csv", "reviewer", {}),
    ("GET", "/report", "reviewer", {}),
    ("POST", "/report", "reviewer", {"ids": "1", "discovered": "2026-04-01", "format": "html"}),
    ("GET", "/allowlist", "reviewer", {}),
    ("POST", "/allowlist/add", "admin", {"domain": "", "comment": "x"}),
    ("POST", "/allowlist/remove", "admin", {"domain": "nothere.example.jp", "comment": "x"}),
    ("GET", "/verify", "reviewer", {}),
    ("POST", "/verify", "reviewer", {}),
    ("GET", "/users", "admin", {}),
    ("POST", "/users/add", "admin", {"name": "bad name!", "role": "reviewer", "password": "x"}),
    ("POST", "/users/remove", "admin", {"name": "nobody"}),
    ("POST", "/users/role", "admin", {"name": "nobody", "role": "reviewer"}),
    ("POST", "/users/password", "admin", {"name": "nobody", "password": "short"}),
    ("POST", "/users/unlock", "admin", {"name": "nobody"}),
    ("GET", "/account", "reviewer", {}),
    ("POST", "/account", "reviewer", {"current": "wrong", "password": "x"}),
    ("POST", "/logout", "reviewer", {}),
]
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/lang/{lang}")}
RANK = {"reviewer": 0, "approver": 1, "admin": 2}


def _declared() -> set[tuple[str, str]]:
    out = set()
    for r in routes():
        if isinstance(r, Mount):
            continue
        assert isinstance(r, Route)
        for m in r.methods or ():
            if m != "HEAD":
                out.add((m, r.path))
    return out


def _template(path: str) -> str:
    return (
        path.replace("/log/1", "/log/{entry_id:int}")
        .replace(GONE + "/", "{held_id}/")
        .replace(GONE, "{held_id}")
    )


def test_every_route_is_in_the_matrix() -> None:
    tested = {(m, _template(p)) for m, p, _, _ in ROUTES} | PUBLIC
    assert tested == _declared()


@pytest.mark.parametrize(("method", "path", "needed", "fields"), ROUTES)
def test_anonymous_is_sent_to_login(
    client_for: Callable[[str | None], TestClient],
    seeded: Services,
    method: str,
    path: str,
    needed: str,
    fields: dict[str, str],
) -> None:
    c = client_for(None)
    if method == "GET":
        r = c.get(path)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=")
    else:
        r = c.post(path, data=fields)
        assert r.status_code == 401


@pytest.mark.parametrize("role", ["reviewer", "approver", "admin"])
@pytest.mark.parametrize(("method", "path", "needed", "fields"), ROUTES)
def test_role_matrix(
    client_for: Callable[[str | None], TestClient],
    seeded: Services,
    role: str,
    method: str,
    path: str,
    needed: str,
    fields: dict[str, str],
) -> None:
    c = client_for(role)
    allowed = RANK[role] >= RANK[needed]
    if method == "GET":
        r = c.get(path)
    else:
        token = csrf_of(c.get("/account").text)
        r = c.post(path, data={**fields, "csrf_token": token})
    if allowed:
        assert r.status_code != 403, (role, path, r.text[:300])
        assert r.status_code < 500
    else:
        assert r.status_code == 403, (role, path, r.status_code)
        assert "権限がありません" in r.text


@pytest.mark.parametrize(
    ("method", "path", "needed", "fields"), [x for x in ROUTES if x[0] == "POST"]
)
def test_post_without_or_with_wrong_csrf_token_is_refused(
    client_for: Callable[[str | None], TestClient],
    seeded: Services,
    method: str,
    path: str,
    needed: str,
    fields: dict[str, str],
) -> None:
    c = client_for("admin")
    r = c.post(path, data=fields)
    assert r.status_code == 403
    assert "トークン" in r.text
    r = c.post(path, data={**fields, "csrf_token": "x" * 43})
    assert r.status_code == 403
    # Another session's token is no good either.
    other = client_for("admin")
    r = c.post(path, data={**fields, "csrf_token": csrf_of(other.get("/account").text)})
    assert r.status_code == 403
    # The session survived all that: the account page still works.
    assert c.get("/account").status_code == 200


def test_forbidden_changes_nothing(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for("approver")
    token = csrf_of(c.get("/account").text)
    before = seeded.settings.allowlist_path.read_text()
    r = c.post(
        "/allowlist/add",
        data={
            "csrf_token": token,
            "domain": "newpartner.co.jp",
            "section": "partner",
            "comment": "x",
        },
    )
    assert r.status_code == 403
    assert seeded.settings.allowlist_path.read_text() == before
    r = c.post(
        "/users/add",
        data={"csrf_token": token, "name": "eve", "role": "admin", "password": "p" * 12},
    )
    assert r.status_code == 403
    assert seeded.users.get("eve") is None


def test_static_css_needs_no_login_and_pages_send_strict_headers(
    client_for: Callable[[str | None], TestClient], seeded: Services
) -> None:
    c = client_for(None)
    css = c.get("/static/console.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]
    page = c.get("/login")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
