"""RecipientClassifier: classes, My Number entitlement, cache, reload, broken files."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest

from dlp.allowlist import AllowlistError
from dlp.config import DomainSettings, Settings
from dlp.model import RecipientClass
from dlp.recipients import RecipientClassifier

GOOD = """\
[own]
example.lg.jp
[partner]
payroll.partner.co.jp  mynumber
partner.co.jp
"""


@pytest.fixture
def allowlist_file(tmp_path: Path) -> Path:
    path = tmp_path / "allowed_domains.txt"
    path.write_text(GOOD, encoding="utf-8")
    return path


def _rewrite(path: Path, text: str) -> None:
    # A rename like `dlp allowlist add` does; bump mtime so equal sizes differ too.
    tmp = path.with_name("tmp")
    tmp.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    os.replace(tmp, path)


def test_classes(allowlist_file: Path) -> None:
    c = RecipientClassifier(allowlist_file)
    own = c.classify("taro@city.example.lg.jp")
    assert (own.klass, own.domain, own.mynumber_entitled) == (
        RecipientClass.OWN,
        "city.example.lg.jp",
        False,
    )
    p = c.classify("<a@Partner.co.jp>")
    assert (p.klass, p.mynumber_entitled) == (RecipientClass.PARTNER, False)
    payroll = c.classify("kyuyo@x.payroll.partner.co.jp")
    assert (payroll.klass, payroll.mynumber_entitled) == (RecipientClass.PARTNER, True)
    look = c.classify("aaabb@partner.com")
    assert (look.klass, look.resembles, look.technique) == (
        RecipientClass.LOOKALIKE,
        "partner.co.jp",
        "suffix_swap",
    )
    gm = c.classify("someone@gmial.com")
    assert (gm.klass, gm.resembles) == (RecipientClass.LOOKALIKE, "gmail.com")
    ext = c.classify("someone@gmail.com")
    assert ext.klass is RecipientClass.FREEMAIL and ext.address == "someone@gmail.com"
    assert RecipientClass.FREEMAIL in RecipientClass.EXTERNAL.covers()


def test_from_settings_honours_builtin_switch(allowlist_file: Path) -> None:
    settings = Settings(
        domains=DomainSettings(allowlist=str(allowlist_file), builtin_protected=False)
    )
    c = RecipientClassifier.from_settings(settings)
    assert c.classify("a@gmial.com").klass is RecipientClass.EXTERNAL
    on = RecipientClassifier.from_settings(
        replace(settings, domains=DomainSettings(allowlist=str(allowlist_file)))
    )
    assert on.classify("a@gmial.com").klass is RecipientClass.LOOKALIKE


def test_broken_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("[own]\nexample..lg.jp\n", encoding="utf-8")
    with pytest.raises(AllowlistError, match=r"a\.txt:2:"):
        RecipientClassifier(path)


def test_maybe_reload_picks_up_a_change(allowlist_file: Path) -> None:
    c = RecipientClassifier(allowlist_file)
    assert c.classify("x@newpartner.co.jp").klass is RecipientClass.EXTERNAL
    before = c.protected
    c.maybe_reload()
    assert c.protected is before  # unchanged file: no rebuild
    _rewrite(allowlist_file, GOOD + "newpartner.co.jp\n")
    c.maybe_reload()
    assert c.protected is not before
    assert (
        c.classify("x@newpartner.co.jp").klass is RecipientClass.PARTNER
    )  # cache did not go stale


def test_broken_file_keeps_last_good_list(
    allowlist_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c = RecipientClassifier(allowlist_file)
    _rewrite(allowlist_file, GOOD + "[partners]\n")
    with caplog.at_level(logging.ERROR, logger="dlp.recipients"):
        c.maybe_reload()
        c.maybe_reload()  # the same broken file is reported once, not per transaction
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"{allowlist_file}:6: unknown section" in errors[0]
    assert "keeping the last good list" in errors[0]
    assert c.classify("a@partner.co.jp").klass is RecipientClass.PARTNER
    assert c.last_error
    assert c.reload() is False  # SIGHUP on the broken file: refused again
    _rewrite(allowlist_file, GOOD.replace("partner.co.jp\n", ""))
    c.maybe_reload()
    assert c.last_error == ""
    assert c.classify("a@partner.co.jp").klass is not RecipientClass.PARTNER


def test_deleted_file_keeps_last_good_list(
    allowlist_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c = RecipientClassifier(allowlist_file)
    allowlist_file.unlink()
    with caplog.at_level(logging.ERROR, logger="dlp.recipients"):
        c.maybe_reload()
    assert "disappeared" in caplog.text
    assert c.classify("a@example.lg.jp").klass is RecipientClass.OWN


def test_cache_is_bounded_and_shared_across_spellings(allowlist_file: Path) -> None:
    c = RecipientClassifier(allowlist_file, cache_size=8)
    for i in range(50):
        c.classify(f"u@host{i}.example.com")
    info = c._snapshot.classify_domain.cache_info()  # type: ignore[attr-defined]
    assert info.currsize == 8
    c.classify("a@GMAIL.com")
    c.classify("b@gmail.com.")
    assert c._snapshot.classify_domain.cache_info().hits >= 1  # type: ignore[attr-defined]
