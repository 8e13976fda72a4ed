"""Configuration loading: defaults, discovery order and administrator-readable errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlp.config import ConfigError, load_file, load_settings, parse_settings
from dlp.model import Action, RecipientClass

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_loads_and_matches_documented_defaults() -> None:
    s = load_file(ROOT / "config" / "dlp.toml")
    assert s.smtp.listen_addr == ("127.0.0.1", 10025)
    assert s.smtp.next_hop_addr == ("127.0.0.1", 10026)
    assert s.smtp.max_message_size >= 10_240_000
    assert Path(s.base_dir) == ROOT
    assert s.allowlist_path == ROOT / "config" / "allowed_domains.txt"
    assert next(r.name for r in s.policy.rules) == "scan-failed"


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    p = tmp_path / "config" / "dlp.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_unknown_key_names_file_key_and_choices(tmp_path: Path) -> None:
    p = _write(tmp_path, "[smtp]\nlisen = '127.0.0.1:25'\n")
    with pytest.raises(ConfigError) as e:
        load_file(p)
    msg = str(e.value)
    assert str(p) in msg and "smtp.lisen" in msg and "listen" in msg


def test_wrong_type_and_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scan.max_depth must be an integer"):
        parse_settings({"scan": {"max_depth": "5"}})
    with pytest.raises(ConfigError, match=r"HOST:PORT"):
        parse_settings({"smtp": {"next_hop": "localhost"}})
    with pytest.raises(ConfigError, match=r"unknown section \[smpt\]"):
        parse_settings({"smpt": {}})
    with pytest.raises(ConfigError, match=r"policy.rules\[0\].*missing required.*action"):
        parse_settings({"policy": {"rules": [{"name": "x"}]}})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_file(_write(tmp_path, "[smtp\n"))


def test_relative_paths_resolve_against_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "[sendlog]\nsqlite_path = 'state/log.db'\n")
    sub = tmp_path / "deep"
    sub.mkdir()
    monkeypatch.delenv("DLP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.sqlite_path == tmp_path / "state" / "log.db"
    # $DLP_CONFIG wins over ./config/dlp.toml, and --config over both.
    other = tmp_path / "other.toml"
    other.write_text("[paths]\nvar_dir = '/srv/dlp'\n")
    monkeypatch.setenv("DLP_CONFIG", str(other))
    assert str(load_settings().var_dir) == "/srv/dlp"
    assert load_settings(str(tmp_path / "config" / "dlp.toml")).paths.var_dir == "var"
    with pytest.raises(ConfigError, match="not found"):
        load_settings(str(tmp_path / "missing.toml"))


def test_idle_timeout_must_outlast_scan_and_relay() -> None:
    with pytest.raises(ConfigError, match=r"smtp.idle_timeout \(100 s\) must be above .*\(180 s\)"):
        parse_settings({"smtp": {"idle_timeout": 100.0}})
    assert parse_settings({"smtp": {"idle_timeout": 181.0}}).smtp.idle_timeout == 181.0


def test_session_caps_are_validated_with_the_values_in_the_message() -> None:
    s = parse_settings({}).smtp
    shipped = load_file(ROOT / "config" / "dlp.toml").smtp
    assert (shipped.max_sessions, shipped.max_sessions_per_client, shipped.max_data_seconds) == (
        s.max_sessions,
        s.max_sessions_per_client,
        s.max_data_seconds,
    )
    with pytest.raises(ConfigError, match=r"\[smtp\] max_sessions must be at least 1"):
        parse_settings({"smtp": {"max_sessions": 0}})
    with pytest.raises(
        ConfigError,
        match=r"max_sessions_per_client must be between 1 and max_sessions \(10\), got 20",
    ):
        parse_settings({"smtp": {"max_sessions": 10, "max_sessions_per_client": 20}})
    with pytest.raises(ConfigError, match=r"max_data_seconds must be above 0 .* got 0"):
        parse_settings({"smtp": {"max_data_seconds": 0}})
    with pytest.raises(ConfigError, match=r"smtp.max_sessions must be an integer"):
        parse_settings({"smtp": {"max_sessions": "many"}})


def test_rule_values_come_from_the_enums_and_a_typo_names_them_all() -> None:
    """Every action and recipient class the gateway knows is accepted in a rule, and a
    typo is answered with the full list (taken from dlp.model, not a copy)."""
    # The sender-in-the-loop actions (issue 13) mail someone: [notify] from, a delay,
    # an approver route (their own checks: tests/unit/test_sender_loop_config.py).
    loop: dict[str, Any] = {
        "notify": {"from": "dlp-noreply@example.lg.jp"},
        "approval": {"routes": [{"sender": "*", "approvers": ["a@example.lg.jp"]}]},
    }
    for action in Action:
        for klass in RecipientClass:
            rule = {"name": "r", "action": action.value, "recipient_class": [klass.value]}
            if action is Action.DELAY:
                rule["delay"] = "5m"
            parse_settings({"policy": {"rules": [rule]}, **loop})
    with pytest.raises(ConfigError) as e:
        parse_settings({"policy": {"rules": [{"name": "r", "action": "hodl"}]}})
    assert all(a.value in str(e.value) for a in Action)
    with pytest.raises(ConfigError) as e:
        rule = {"name": "r", "action": "tag", "recipient_class": ["outside"]}
        parse_settings({"policy": {"rules": [rule]}})
    assert all(c.value in str(e.value) for c in RecipientClass)
    with pytest.raises(ConfigError, match=r"min_confidence must be low, medium or high"):
        parse_settings(
            {"policy": {"rules": [{"name": "r", "action": "tag", "min_confidence": "x"}]}}
        )
    with pytest.raises(ConfigError, match=r"lookalike_action must be reject, hold or confirm"):
        parse_settings({"domains": {"lookalike_action": "tag"}})
    with pytest.raises(ConfigError, match=r"default_action must be deliver or tag"):
        parse_settings({"policy": {"default_action": "hold"}})
