"""Configuration mistakes a new administrator made (a review of 3 Dec, fourth round):
each is refused at start, naming the key and what to do."""

from __future__ import annotations

import tomllib

import pytest

from dlp.config import ConfigError, parse_settings


def _load(text: str) -> None:
    parse_settings(tomllib.loads(text), "dlp.toml")


def test_require_tls_without_a_certificate_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"require_tls = true needs tls_cert and tls_key"):
        _load("[smtp]\nrequire_tls = true\n")


def test_a_bad_allowed_clients_entry_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"allowed_clients: '127.0.0.1/33' is not an IP"):
        _load('[smtp]\nallowed_clients = ["127.0.0.1/33"]\n')


def test_files_saved_with_a_byte_order_mark_are_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Windows Notepad saves UTF-8 with a BOM: the gateway refused to start with
    "'\\ufeff' is outside a section" or "Invalid statement (at line 1, column 1)"."""
    from dlp.allowlist import load_allowlist
    from dlp.config import load_file

    (tmp_path / "config").mkdir()
    toml = tmp_path / "config" / "dlp.toml"
    toml.write_text('\ufeff[smtp]\nlisten = "127.0.0.1:10025"\n', encoding="utf-8")
    assert load_file(toml).smtp.listen == "127.0.0.1:10025"
    allow = tmp_path / "config" / "allowed_domains.txt"
    allow.write_text("\ufeff[own]\nexample.lg.jp\n", encoding="utf-8")
    assert "example.lg.jp" in load_allowlist(allow).own
