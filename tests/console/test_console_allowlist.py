"""Allowlist page: same validation and lookalike warning as the CLI, changes in the
file (atomic, via dlp.allowlist) and in the send log."""

from __future__ import annotations

from collections.abc import Callable

from console_support import csrf_of
from starlette.testclient import TestClient

from dlp.allowlist import load_allowlist
from dlp.console.services import Services
from dlp.sendlog import LogFilter


def _post(c: TestClient, path: str, **fields: str) -> object:
    token = csrf_of(c.get("/allowlist").text)
    return c.post(path, data={"csrf_token": token, **fields})


def test_view_for_reviewer_has_no_forms(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    page = client_for("reviewer").get("/allowlist")
    assert page.status_code == 200
    assert "example.lg.jp" in page.text and "payroll.example.co.jp" in page.text
    assert "個人番号の受領可" in page.text
    assert 'action="/allowlist/add"' not in page.text
    assert "管理者のみ" in page.text


def test_add_partner_is_saved_and_recorded(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for("admin")
    r = _post(c, "/allowlist/add", domain="Shinki-Torihiki.CO.JP", section="partner",
              mynumber="on", comment="新規委託契約 2026-04")  # fmt: skip
    assert r.status_code == 303, r.text
    al = load_allowlist(services.settings.allowlist_path)
    assert "shinki-torihiki.co.jp" in al.partners
    assert "shinki-torihiki.co.jp" in al.mynumber_partners
    # the file kept its comment line
    assert services.settings.allowlist_path.read_text().startswith("# test allowlist")
    (event,) = services.sendlog().query(LogFilter(event="allowlist_add"))
    assert event.record.actor == "admin"
    assert event.record.comment == "新規委託契約 2026-04"
    assert event.record.detail["domain"] == "shinki-torihiki.co.jp"
    assert event.record.detail["section"] == "partner"
    assert "shinki-torihiki.co.jp を追加しました" in c.get(r.headers["location"]).text


def test_invalid_domains_are_refused_like_the_cli(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for("admin")
    before = services.settings.allowlist_path.read_text()
    for bad in ("user@partner.co.jp", "*.partner.co.jp", "co.jp", "not a domain", ""):
        r = _post(c, "/allowlist/add", domain=bad, section="partner", comment="x")
        assert r.status_code == 400, bad
        assert "追加できません" in r.text, bad
    r = _post(c, "/allowlist/add", domain="ok.co.jp", section="own", mynumber="on", comment="x")
    assert r.status_code == 400
    r = _post(c, "/allowlist/add", domain="ok.co.jp", section="partner", comment="")
    assert r.status_code == 400 and "コメント" in r.text
    assert services.settings.allowlist_path.read_text() == before
    assert services.sendlog().count(LogFilter(event="allowlist_add")) == 0


def test_lookalike_entry_needs_confirmation(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for("admin")
    # one letter off a listed partner: exactly the typo that trusts a stranger
    r = _post(c, "/allowlist/add", domain="partmer.co.jp", section="partner", comment="typo?")
    assert r.status_code == 400
    assert "partner.co.jp" in r.text and "confirm" in r.text
    assert "partmer.co.jp" not in load_allowlist(services.settings.allowlist_path).partners
    r = _post(c, "/allowlist/add", domain="partmer.co.jp", section="partner", comment="確認済み",
              confirm="yes")  # fmt: skip
    assert r.status_code == 303
    assert "partmer.co.jp" in load_allowlist(services.settings.allowlist_path).partners


def test_public_mail_service_warns(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    r = _post(client_for("admin"), "/allowlist/add", domain="gmail.com", section="partner",
              comment="x")  # fmt: skip
    assert r.status_code == 400
    assert "gmail.com" in r.text and 'name="confirm"' in r.text


def test_remove_is_saved_and_recorded(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    c = client_for("admin")
    r = _post(c, "/allowlist/remove", domain="partner.co.jp", comment="")
    assert r.status_code == 400
    r = _post(c, "/allowlist/remove", domain="nothere.co.jp", comment="x")
    assert r.status_code == 400 and "登録されていません" in r.text
    r = _post(c, "/allowlist/remove", domain="partner.co.jp", comment="契約終了")
    assert r.status_code == 303
    assert "partner.co.jp" not in load_allowlist(services.settings.allowlist_path).partners
    (event,) = services.sendlog().query(LogFilter(event="allowlist_remove"))
    assert event.record.detail["domain"] == "partner.co.jp"
    assert event.record.comment == "契約終了"


def test_add_freemail_domain_and_the_gateway_class_follows(
    client_for: Callable[[str | None], TestClient], services: Services
) -> None:
    """Issue 14: [freemail] from the console; the classifier then calls it freemail."""
    from dlp.model import RecipientClass
    from dlp.recipients import RecipientClassifier

    path = services.settings.allowlist_path
    assert RecipientClassifier(path).classify("a@mail.example-isp.ne.jp").klass == "external"
    c = client_for("admin")
    page = c.get("/allowlist")
    assert '<option value="freemail"' in page.text and "allow.section" not in page.text
    r = _post(c, "/allowlist/add", domain="example-isp.ne.jp", section="freemail", comment="ISP")
    assert r.status_code == 303, r.text
    assert load_allowlist(path).freemail == ("example-isp.ne.jp",)
    shown = c.get("/allowlist").text
    assert 'id="freemail"' in shown and "example-isp.ne.jp" in shown
    klass = RecipientClassifier(path).classify("a@mail.example-isp.ne.jp").klass
    assert klass is RecipientClass.FREEMAIL
