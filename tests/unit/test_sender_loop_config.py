"""Config of the sender in the loop (issue 13): the names from the issue load,
durations carry a unit, and every mistake is refused with what to write."""

from __future__ import annotations

import tomllib

import pytest

from dlp.config import ConfigError, parse_duration, parse_settings
from dlp.notify.routes import approvers_for
from dlp.notify.tokens import Grant, TokenError, issue, verify

ISSUE_EXAMPLE = """
[notify]
from = "dlp-noreply@example.lg.jp"
listen = "127.0.0.1:8026"
base_url = "https://dlp.example.lg.jp"

[[policy.rules]]
name = "attachment-outside"
has_attachments = true
recipient_class = ["external"]
action = "delay"
delay = "5m"

[[policy.rules]]
name = "mynumber-outside"
detector = "mynumber"
min_confidence = "high"
recipient_class = ["external"]
action = "approve"

[[policy.rules]]
name = "confirm-outside"
recipient_class = ["external"]
action = "confirm"
timeout = "1h"
on_timeout = "discard"

[[approval.routes]]
sender = "*@soumu.example.lg.jp"
approvers = ["kacho@example.lg.jp", "kakaricho@example.lg.jp"]
"""


def _load(text: str) -> object:
    return parse_settings(tomllib.loads(text), "dlp.toml")


def test_the_issue_example_loads() -> None:
    s = parse_settings(tomllib.loads(ISSUE_EXAMPLE), "dlp.toml")
    assert s.notify.from_ == "dlp-noreply@example.lg.jp"
    assert s.notify.url == "https://dlp.example.lg.jp"
    assert [r.action for r in s.policy.rules] == ["delay", "approve", "confirm"]
    assert s.policy.rules[0].has_attachments is True
    assert s.approval.routes[0].approvers == ("kacho@example.lg.jp", "kakaricho@example.lg.jp")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("3d", 259200)]
)
def test_durations_with_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5", "5 minutes", "m", "-5m", "0s", "1w"])
def test_a_duration_without_a_known_unit_is_refused_with_an_example(bad: str) -> None:
    text = ISSUE_EXAMPLE.replace('delay = "5m"', f'delay = "{bad}"')
    with pytest.raises(ConfigError, match=r'(e\.g\. "30s", "5m", "2h" or "3d"|longer than zero)'):
        _load(text)


def test_sender_loop_actions_need_a_from_and_approve_needs_routes() -> None:
    without_from = ISSUE_EXAMPLE.replace('from = "dlp-noreply@example.lg.jp"\n', "")
    with pytest.raises(ConfigError, match=r"set \[notify\] from"):
        _load(without_from)
    without_routes = ISSUE_EXAMPLE.split("[[approval.routes]]")[0]
    with pytest.raises(ConfigError, match=r"approval.routes"):
        _load(without_routes)


def test_misplaced_timer_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs delay"):
        _load(ISSUE_EXAMPLE.replace('delay = "5m"', ""))
    with pytest.raises(ConfigError, match="on_timeout must be"):
        _load(ISSUE_EXAMPLE.replace('on_timeout = "discard"', 'on_timeout = "bounce"'))
    with pytest.raises(ConfigError, match="only for action"):
        _load(ISSUE_EXAMPLE.replace('action = "approve"', 'action = "approve"\ntimeout = "1h"'))


def test_lookalike_action_accepts_confirm() -> None:
    s = parse_settings(
        tomllib.loads(
            '[notify]\nfrom = "n@example.lg.jp"\n[domains]\nlookalike_action = "confirm"\n'
        ),
        "dlp.toml",
    )
    assert s.domains.lookalike_action == "confirm"


def test_first_matching_route_wins_and_star_is_the_default() -> None:
    s = parse_settings(
        tomllib.loads(
            ISSUE_EXAMPLE
            + '[[approval.routes]]\nsender = "*"\napprovers = ["joshi@example.lg.jp"]\n'
        ),
        "dlp.toml",
    )
    assert approvers_for("a@soumu.example.lg.jp", s.approval.routes)[0] == "kacho@example.lg.jp"
    assert approvers_for("b@zaimu.example.lg.jp", s.approval.routes) == ("joshi@example.lg.jp",)
    assert approvers_for("", s.approval.routes) == ()
    # nobody approves their own mail: the sole approver of a route gets ()
    assert approvers_for("Joshi@example.lg.jp", s.approval.routes) == ()


def test_tokens_are_bound_signed_and_expire() -> None:
    key = b"k" * 32
    grant = Grant("abc123", "2026-01-01T00:00:00+00:00", "sender", "a@example.lg.jp", 2**40)
    token = issue(key, grant)
    assert verify(key, token) == grant
    with pytest.raises(TokenError, match="invalid"):
        verify(b"x" * 32, token)
    mac = token.partition(".")[2]
    forged = issue(b"other", Grant("abc124", grant.held_at, "sender", grant.address, 2**40))
    with pytest.raises(TokenError, match="invalid"):
        verify(key, forged.partition(".")[0] + "." + mac)
    old = issue(key, Grant("abc123", grant.held_at, "sender", grant.address, 1))
    with pytest.raises(TokenError, match="expired"):
        verify(key, old)
