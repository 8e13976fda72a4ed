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
    with pytest.raises(ConfigError, match=r'\[\[policy.rules\]\] #1 "x": missing required.*action'):
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


@pytest.mark.parametrize(
    ("section", "key", "value", "problem"),
    [
        ("smtp", "listen", "127.0.0.1", "no port"),
        ("smtp", "listen", "localhost:smtp", 'the port must be a number, not "smtp"'),
        ("smtp", "listen", "127.0.0.1:99999", "the port must be 1-65535"),
        ("smtp", "next_hop", ":10026", "no host"),
        ("smtp", "next_hop", "127.0.0.1:0", "the port must be 1-65535"),
        ("smtp", "metrics_listen", "9125", "no port"),
        ("console", "listen", "127.0.0.1", "no port"),
        ("notify", "listen", "127.0.0.1:http", 'the port must be a number, not "http"'),
    ],
)
def test_a_bad_address_names_the_file_the_key_the_value_and_what_is_expected(
    tmp_path: Path, section: str, key: str, value: str, problem: str
) -> None:
    """The file's promise (dlp/config.py): refused with the file, the key and what is
    expected - not one "expected HOST:PORT" for whichever of five addresses it was."""
    p = _write(tmp_path, f'[{section}]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError) as e:
        load_file(p)
    assert str(e.value) == (
        f'{p}: [{section}] {key} = "{value}": {problem} (expected HOST:PORT, e.g. 127.0.0.1:10025)'
    )


@pytest.mark.parametrize(
    ("listen", "next_hop"),
    [
        ("127.0.0.1:10025", "127.0.0.1:10025"),
        ("localhost:10025", "127.0.0.1:10025"),
        ("0.0.0.0:10025", "127.0.0.1:10025"),
        ("[::1]:10025", "[::1]:10025"),
    ],
)
def test_a_next_hop_that_is_the_gateway_itself_is_refused_naming_both_keys(
    tmp_path: Path, listen: str, next_hop: str
) -> None:
    p = _write(tmp_path, f'[smtp]\nlisten = "{listen}"\nnext_hop = "{next_hop}"\n')
    with pytest.raises(ConfigError) as e:
        load_file(p)
    msg = str(e.value)
    assert msg.startswith(f'{p}: [smtp] listen = "{listen}" and next_hop = "{next_hop}" are')
    assert "in a loop" in msg


def test_a_next_hop_on_another_port_or_host_is_not_a_loop() -> None:
    for listen, next_hop in [
        ("127.0.0.1:10025", "127.0.0.1:10026"),
        ("127.0.0.1:10025", "127.0.0.2:10025"),
        ("192.0.2.1:25", "192.0.2.2:25"),
    ]:
        parse_settings({"smtp": {"listen": listen, "next_hop": next_hop}})
    with pytest.raises(ConfigError, match="metrics need a port of their own"):
        parse_settings({"smtp": {"metrics_listen": "127.0.0.1:10025"}})


_RULES = """
[policy]
[[policy.rules]]
name = "scan-failed"
scan_error = true
action = "tempfail"

[[policy.rules]]
name = "mynumber-partner"
detector = "mynumber"
action = "deliver"

[[policy.rules]]
name = "mynumber-external"
detector = "mynumber"
{line}
action = "hold"
"""


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            'min_confidance = "high"',
            '[[policy.rules]] #3 "mynumber-external": unknown key min_confidance; expected one of:',
        ),
        (
            'min_distinct = "3"',
            '[[policy.rules]] #3 "mynumber-external": min_distinct must be an integer',
        ),
        (
            'min_confidence = "hihg"',
            '[[policy.rules]] #3 "mynumber-external": min_confidence must be low, medium or high',
        ),
        (
            'delay = "5m"',
            '[[policy.rules]] #3 "mynumber-external": delay is only for action = "delay"',
        ),
    ],
)
def test_a_rule_error_names_the_rule_by_its_name_and_position_counted_from_one(
    tmp_path: Path, line: str, said: str
) -> None:
    """The administrator counts [[policy.rules]] tables from one, and knows them by name."""
    p = _write(tmp_path, _RULES.format(line=line))
    with pytest.raises(ConfigError) as e:
        load_file(p)
    assert str(e.value).startswith(f"{p}: {said}"), str(e.value)
    assert "rules[" not in str(e.value)


def test_an_unnamed_rule_and_an_approval_route_are_named_by_position(tmp_path: Path) -> None:
    p = _write(tmp_path, _RULES.replace('name = "mynumber-partner"\n', "").format(line=""))
    with pytest.raises(ConfigError) as e:
        load_file(p)
    assert str(e.value) == f"{p}: [[policy.rules]] #2: missing required key(s): name"
    routes = {"routes": [{"sender": "*", "approvers": ["a@example.lg.jp"]}, {"sender": "x"}]}
    with pytest.raises(ConfigError, match=r'\[\[approval.routes\]\] #2 "x": missing required'):
        parse_settings({"approval": routes})
