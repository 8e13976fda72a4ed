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


def test_the_sqlite_send_log_is_owner_only_whatever_the_umask(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a shell's umask 022 the send log (every address) was world-readable."""
    import os
    import stat

    from dlp.sendlog.sqlite_store import SqliteStore

    old = os.umask(0o022)
    try:
        store = SqliteStore(tmp_path / "var" / "sendlog.db")
        try:
            files = sorted(p.name for p in (tmp_path / "var").iterdir())
            assert "sendlog.db" in files and "sendlog.db-wal" in files, files
            for name in files:
                mode = stat.S_IMODE((tmp_path / "var" / name).stat().st_mode)
                assert mode == 0o600, (name, oct(mode))
        finally:
            store.close()
    finally:
        os.umask(old)
