"""`dlp log …` as an administrator runs it: a real process, a real store."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sendlog_support import BACKENDS, Backend, backend_fixture, make_record, rewrite_chain

from dlp.model import Action, RecipientClass
from dlp.sendlog import record_for_event, record_for_outcome

pytestmark = pytest.mark.timeout(120)

DLP = [sys.executable, "-c", "from dlp.cli import main; main()"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from backend_fixture(request, tmp_path)


@pytest.fixture
def config(backend: Backend, tmp_path: Path) -> Path:
    cfg = tmp_path / "config" / "dlp.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        backend.quarantine_toml() + backend.toml() + "retention_days = 30\n", encoding="utf-8"
    )
    return cfg


def dlp(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DLP_CONFIG": str(config), "TZ": "Asia/Tokyo", "COLUMNS": "200"}
    return subprocess.run(
        [*DLP, "log", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _populate(backend: Backend) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store = backend.open()
    store.append(make_record(1, when=now - timedelta(days=60)))  # past retention
    store.append(
        make_record(
            2,
            when=now - timedelta(hours=2),
            recipients=(("mail@exp.com", RecipientClass.LOOKALIKE),),
            mynumbers=150,
            action=Action.REJECT,
            attachments=(("職員名簿.xlsx", "9f" * 32),),
        )
    )
    store.append(make_record(3, when=now - timedelta(hours=1), sender="sato@ward.example.lg.jp"))
    store.append(record_for_event(event="release", actor="suzuki", comment="確認済み", when=now))
    store.append(
        record_for_outcome(
            audit_key="Q000002", entry_id=2, next_hop_reply="250 2.0.0 Ok: queued", when=now
        )
    )
    store.close()


def test_list_search_show(backend: Backend, config: Path) -> None:
    _populate(backend)
    r = dlp(config, "list")
    assert r.returncode == 0, r.stderr
    assert "1-4 of 4 matching entries" in r.stdout  # the outcome entry is under `show`
    assert "1-5 of 5 matching entries" in dlp(config, "list", "--outcomes").stdout
    assert len(dlp(config, "list", "--json").stdout.splitlines()) == 5
    assert "職員名簿.xlsx" in r.stdout and "REPORTABLE" in r.stdout
    r = dlp(config, "search", "--recipient-domain", "exp.com", "--has-findings", "--json")
    assert r.returncode == 0, r.stderr
    found = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["id"] for e in found] == [2]
    assert found[0]["reportable_scale"] is True
    r = dlp(config, "search", "--attachment", "9f" * 32, "--since", "1d", "--verdict", "reject")
    assert "1-1 of 1 matching entries" in r.stdout
    r = dlp(config, "search", "--sender", "@ward.example.lg.jp", "--class", "partner", "--json")
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == [3]
    r = dlp(config, "search")
    assert r.returncode == 2 and "at least one filter" in r.stderr
    r = dlp(config, "search", "--since", "someday")
    assert r.returncode == 2 and "YYYY-MM-DD" in r.stderr
    r = dlp(config, "show", "2")
    assert r.returncode == 0
    for text in ("mail@exp.com", "lookalike", "職員名簿.xlsx", "9f" * 32, "reject", "YES"):
        assert text in r.stdout
    assert "Other entries with this audit key" in r.stdout and "250 2.0.0 Ok: queued" in r.stdout
    assert dlp(config, "show", "99").returncode == 2


def test_export_and_stats(backend: Backend, config: Path, tmp_path: Path) -> None:
    _populate(backend)
    out = tmp_path / "review.csv"
    r = dlp(config, "export", "--since", "7d", "-o", str(out))
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [row["id"] for row in rows] == ["2", "3", "4", "5"]
    r = subprocess.run(
        [*DLP, "log", "export", "--encoding", "shift_jis", "--ja-headers", "--event", "message"],
        capture_output=True,
        env={**os.environ, "DLP_CONFIG": str(config)},
        timeout=60,
        check=False,
    )
    text = r.stdout.decode("cp932")
    assert text.startswith("ID,日時(UTC)") and "職員名簿.xlsx" in text
    r = dlp(config, "export", "--format", "jsonl", "--verdict", "reject")
    (entry,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert entry["attachments"][0]["sha256"] == "9f" * 32 and entry["verdict"]["action"] == "reject"
    r = dlp(config, "stats", "--by", "sender", "--json")
    stats = {s["sender"]: s for s in map(json.loads, r.stdout.splitlines())}
    assert stats["tanaka@city.example.lg.jp"]["attachments_outside"] == 1
    assert stats["tanaka@city.example.lg.jp"]["reportable"] == 1
    assert "Attachments outside" in dlp(config, "stats").stdout


def test_verify_and_purge(backend: Backend, config: Path) -> None:
    _populate(backend)
    r = dlp(config, "verify")
    assert r.returncode == 0 and "send log intact: 5 entries verified" in r.stdout
    r = dlp(config, "purge", "--dry-run")
    assert r.returncode == 0 and "would purge 1 entries" in r.stdout
    r = dlp(config, "purge")
    assert r.returncode == 0, r.stderr
    assert "purged 1 entries" in r.stdout and "recorded as entry 6" in r.stdout
    r = dlp(config, "verify", "--json")
    v = json.loads(r.stdout)
    assert r.returncode == 0 and v["ok"] and v["purged_total"] == 1
    backend.raw("UPDATE sendlog_entry SET sender = 'x' WHERE seq = 3")
    r = dlp(config, "verify")
    assert r.returncode == 1
    assert "BROKEN at entry 3" in r.stdout and "changed" in r.stdout


def test_broken_store_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "dlp.toml"
    cfg.write_text(
        '[sendlog]\nbackend = "postgresql"\npostgresql_dsn = "postgresql://u:pw@127.0.0.1:1/x"\n'
    )
    r = dlp(cfg, "verify")
    assert r.returncode == 2
    assert "send log error" in r.stderr and "pw" not in r.stderr


def _head_line(stderr: str) -> dict[str, object]:
    (line,) = [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]
    assert line["event"] == "sendlog head"
    return line


def test_verify_with_key_catches_a_recomputed_chain(
    backend: Backend, config: Path, tmp_path: Path
) -> None:
    _populate(backend)
    key = tmp_path / "head.key"
    r = dlp(config, "keygen", str(key))
    assert r.returncode == 0 and "mode 0600" in r.stdout, r.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    # a relative path comes back absolute (dlp.toml reads relative paths from the
    # directory that holds config/, not from where keygen ran), and --config is taken
    rel = subprocess.run(
        [*DLP, "log", "keygen", "--config", str(config), "rel.key"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert rel.returncode == 0, rel.stderr
    assert f'head_key_file = "{tmp_path / "rel.key"}"' in rel.stdout, rel.stdout
    heads = tmp_path / "var" / "sendlog-heads.jsonl"  # [sendlog] heads_file's default

    r = dlp(config, "verify", "--key", str(key))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "signed heads: none yet" in r.stdout and "signed and recorded: line 1" in r.stdout
    line = _head_line(r.stderr)
    assert line["signed"] is True and line["seq"] == 5 and line["verified"] == "all"
    assert len(str(line["hmac"])) == 64
    assert json.loads(heads.read_text().splitlines()[0])["hmac"] == line["hmac"]

    store = backend.open()
    store.append(make_record(7, when=datetime.now(UTC)))
    store.close()
    r = dlp(config, "verify", "--key", str(key))
    assert r.returncode == 0 and "all 1 in" in r.stdout and "line 2" in r.stdout

    # someone with database access rewrites entry 3 and every hash after it
    def edit(fields: dict[str, object]) -> dict[str, object]:
        return {**fields, "subject": "無害な件名"}

    rewrite_chain(backend, 3, edit)
    r = dlp(config, "verify")  # the database alone cannot tell ...
    assert r.returncode == 0 and "send log intact" in r.stdout
    assert "not checked: no key" in r.stdout
    assert _head_line(r.stderr)["signed"] is False
    r = dlp(config, "verify", "--key", str(key))  # ... the signed heads can
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "send log intact: 6 entries verified" in out
    assert "send log REWRITTEN: line 1 of" in out and "entry 5 had hash" in out
    assert "entries 1-5" in out and "recomputed consistently" in out
    line = _head_line(r.stderr)
    assert (
        line["level"] == "error" and line["signed"] is False and "entry 5" in str(line["problem"])
    )
    assert len(heads.read_text().splitlines()) == 2  # nothing signed over the rewrite
    r = dlp(config, "verify", "--key", str(key), "--json")
    v = json.loads(r.stdout)
    assert r.returncode == 1 and v["ok"] is False and v["problem"] == ""
    assert v["heads"]["problem"] == "rewritten" and v["heads"]["entry"] == 5
    assert v["heads"]["line"] == 1 and v["heads"]["contradicting"] == 2
    # and retention will not erase the evidence
    r = dlp(config, "purge", "--key", str(key))
    assert r.returncode == 1 and "refusing to purge: line 1 of" in r.stderr
    assert backend.raw("SELECT COUNT(*) FROM sendlog_entry")[0][0] == 6


def test_purge_signs_the_head_and_verify_uses_the_configured_key(
    backend: Backend, config: Path, tmp_path: Path
) -> None:
    _populate(backend)
    key = tmp_path / "head.key"
    assert dlp(config, "keygen", str(key)).returncode == 0
    assert dlp(config, "keygen", str(key)).returncode == 2  # never overwritten
    config.write_text(
        config.read_text().replace(
            "retention_days = 30\n", f'retention_days = 30\nhead_key_file = "{key}"\n'
        )
    )
    r = dlp(config, "purge", "--no-quarantine")
    assert r.returncode == 0, r.stderr
    assert "purged 1 entries" in r.stdout and "(signed: line 1 of" in r.stdout
    line = _head_line(r.stderr)
    assert line["source"] == "purge" and line["purged_through"] == 1 and line["signed"]
    r = dlp(config, "verify", "--no-record")
    assert r.returncode == 0 and "all 1 in" in r.stdout and "recorded" not in r.stdout
    # a copy of the heads file elsewhere, checked with --heads
    copy = tmp_path / "copy.jsonl"
    copy.write_text((tmp_path / "var" / "sendlog-heads.jsonl").read_text())
    r = dlp(config, "verify", "--heads", str(copy))
    assert r.returncode == 0 and "line 2" in r.stdout
    assert dlp(config, "verify", "--heads", str(tmp_path / "none.jsonl")).returncode == 2


def test_key_problems_exit_2_and_say_what_to_do(
    backend: Backend, config: Path, tmp_path: Path
) -> None:
    _populate(backend)
    key = tmp_path / "head.key"
    r = dlp(config, "verify", "--key", str(key))
    assert r.returncode == 2 and f"create one with `dlp log keygen {key}`" in r.stderr
    assert dlp(config, "keygen", str(key)).returncode == 0
    key.chmod(0o644)
    r = dlp(config, "verify", "--key", str(key))
    assert r.returncode == 2 and "chmod 600" in r.stderr
    key.chmod(0o600)
    assert dlp(config, "verify", "--key", str(key)).returncode == 0
    other = tmp_path / "other.key"
    assert dlp(config, "keygen", str(other)).returncode == 0
    r = dlp(config, "verify", "--key", str(other))
    assert r.returncode == 2 and "wrong head key" in r.stdout


@pytest.mark.skipif(os.path.exists("/dev/log"), reason="this host has a syslog socket")
def test_verify_syslog_without_a_syslog_socket_keeps_the_line_on_stderr(
    backend: Backend, config: Path
) -> None:
    _populate(backend)
    r = dlp(config, "verify", "--syslog")
    assert r.returncode == 0
    assert "cannot write to syslog (/dev/log" in r.stderr
    assert _head_line(r.stderr)["seq"] == 5
