"""Signed chain heads (``dlp.sendlog.heads``) against real SQLite and PostgreSQL
stores: a chain recomputed by someone with database access is caught, a chain
that was only appended to and purged by dlp is not."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sendlog_support import BACKENDS, T0, Backend, backend_fixture, make_record, rewrite_chain

from dlp.config import Settings, load_settings
from dlp.retention import purge_expired
from dlp.sendlog.chain import Checkpoint
from dlp.sendlog.heads import (
    HeadKey,
    HeadKeyError,
    HeadReport,
    HeadsFile,
    SignedHead,
    attest,
    generate_key,
    load_key,
    signature_ok,
)
from dlp.sendlog.store import SendLogStore

pytestmark = pytest.mark.timeout(120)

NOW = T0 + timedelta(days=40)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from backend_fixture(request, tmp_path)


@pytest.fixture
def key(tmp_path: Path) -> HeadKey:
    return generate_key(tmp_path / "head.key")


@pytest.fixture
def heads(tmp_path: Path) -> HeadsFile:
    return HeadsFile(tmp_path / "var" / "sendlog-heads.jsonl")


def _attest(
    store: SendLogStore,
    key: HeadKey,
    heads: HeadsFile,
    *,
    full: bool = False,
    now: datetime = NOW,
    retention_days: int = 1825,
    purged_now: Checkpoint | None = None,
) -> HeadReport:
    return attest(
        store,
        key=key,
        heads_file=heads,
        retention_days=retention_days,
        source="retention",
        now=now,
        full=full,
        purged_now=purged_now,
    )


def _append(store: SendLogStore, first: int, n: int) -> None:
    for i in range(first, first + n):
        store.append(make_record(i, when=T0 + timedelta(minutes=i)))


def _subject(text: str) -> Any:
    def edit(fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "subject": text}

    return edit


def test_signed_heads_catch_a_recomputed_chain(
    backend: Backend, key: HeadKey, heads: HeadsFile
) -> None:
    store = backend.open()
    _append(store, 1, 3)
    first = _attest(store, key, heads, full=True)
    assert first.recorded_line == 1 and first.head is not None and first.head.signed
    _append(store, 4, 4)
    second = _attest(store, key, heads)
    # the second run verified only what came after the first signed head
    assert second.recorded_line == 2 and second.verified_from == 3
    _append(store, 8, 2)
    assert _attest(store, key, heads).recorded_line == 3  # head at 9
    assert [ln.head.seq for ln in heads.read() if ln.head] == [3, 7, 9]

    rewrite_chain(backend, 5, _subject("無害な件名"))
    assert store.verify().ok  # the database alone cannot tell
    rep = _attest(store, key, heads, full=True)
    assert rep.chain is not None and rep.chain.ok
    assert rep.heads is not None and not rep.heads.ok
    assert (rep.heads.problem, rep.heads.entry, rep.heads.line) == ("rewritten", 7, 2)
    msg = rep.heads.message
    assert "line 2 of" in msg and "entry 7 had hash" in msg
    assert "entries 4-7" in msg and "signed head at entry 3 still matches" in msg
    assert "2 of 3 signed heads disagree" in msg
    # nothing was signed over the rewrite
    assert rep.recorded_line is None and "line 2" in rep.error
    assert len(heads.read()) == 3


def test_a_chain_dlp_appended_to_and_purged_keeps_agreeing(
    backend: Backend, key: HeadKey, heads: HeadsFile
) -> None:
    store = backend.open()
    for i in range(1, 8):  # one entry a day from T0
        store.append(make_record(i, when=T0 + timedelta(days=i)))
    assert _attest(store, key, heads, full=True).recorded_line == 1  # head 7
    # a retention run removes entries 1-4 (no signed head among them)
    store.purge(35, now=NOW)  # cutoff T0+5d: 1-4 go, purge entry 8
    rep = _attest(store, key, heads)
    assert rep.ok and rep.recorded_line == 2 and rep.verified_from == 7
    store.append(make_record(9, when=NOW))
    # the next run purges past both signed heads (7, and 8 = the first purge's entry)
    later = NOW + timedelta(days=2)
    assert _attest(store, key, heads, now=later).heads.ok  # type: ignore[union-attr]  # guard
    res = store.purge(1, now=later)
    assert res.checkpoint is not None and res.checkpoint.through_seq == 9
    # without knowing that dlp itself just purged them, they look removed early ...
    rep = _attest(store, key, heads, now=later)
    assert rep.heads is not None and rep.heads.problem == "purged-early"
    # ... the retention run says so, signs, and from then on the signed line covers them
    rep = _attest(store, key, heads, now=later, purged_now=res.checkpoint)
    assert rep.ok and rep.recorded_line == 4, rep.error
    assert rep.head is not None and rep.head.purged_through == 9
    rep = _attest(store, key, heads, full=True, now=later)
    assert rep.ok and rep.heads is not None and rep.heads.checked == 4


def test_signed_head_purged_behind_dlps_back(
    backend: Backend, key: HeadKey, heads: HeadsFile
) -> None:
    store = backend.open()
    _append(store, 1, 5)
    _attest(store, key, heads, full=True)  # head 5, recorded T0
    _append(store, 6, 2)
    # a purge of everything, run without the key (no signed line records it)
    store.purge(1, now=NOW)
    store.append(make_record(20, when=NOW))
    rep = _attest(store, key, heads, full=True, now=NOW)
    assert rep.heads is not None
    assert (rep.heads.ok, rep.heads.problem, rep.heads.entry) == (False, "purged-early", 5)
    assert "younger than the retention period" in rep.heads.message
    # past the retention period the same purge is just retention
    rep = _attest(store, key, heads, full=True, now=NOW, retention_days=30)
    assert rep.ok and rep.recorded_line == 2


def test_newest_entries_removed_and_head_rewound(
    backend: Backend, key: HeadKey, heads: HeadsFile
) -> None:
    store = backend.open()
    _append(store, 1, 6)
    _attest(store, key, heads, full=True)
    h4 = store.get(4)
    assert h4 is not None
    backend.raw("DELETE FROM sendlog_entry WHERE seq > 4")
    backend.raw("UPDATE sendlog_head SET last_seq = 4, last_hash = ? WHERE id = 1", (h4.hash,))
    assert store.verify().ok
    rep = _attest(store, key, heads, full=True)
    assert rep.heads is not None and (rep.heads.problem, rep.heads.entry) == ("deleted", 6)
    assert "entries 5-6 were removed" in rep.heads.message


def test_restored_older_copy_is_caught(tmp_path: Path, key: HeadKey, heads: HeadsFile) -> None:
    b = Backend("sqlite", tmp_path)
    store = b.open()
    _append(store, 1, 4)
    store.close()
    shutil.copy(b.path, tmp_path / "old.db")
    store = b.open()
    store.purge(1, now=NOW)
    _attest(store, key, heads, full=True)  # signed: purged through 4
    store.close()
    shutil.copy(tmp_path / "old.db", b.path)
    for suffix in ("-wal", "-shm"):
        Path(str(b.path) + suffix).unlink(missing_ok=True)
    rep = _attest(b.open(), key, heads, full=True)
    assert rep.chain is not None and rep.chain.ok
    assert rep.heads is not None and rep.heads.problem in ("rolled-back", "deleted")
    b.cleanup()


def test_heads_file_edits_are_caught(
    backend: Backend, key: HeadKey, heads: HeadsFile, tmp_path: Path
) -> None:
    store = backend.open()
    for n in range(3):
        _append(store, 1 + n, 1)
        _attest(store, key, heads)
    lines = heads.path.read_text().splitlines()
    assert all(signature_ok(ln.head, key) for ln in heads.read() if ln.head)

    def check(text: str) -> Any:
        heads.path.write_text(text)
        rep = attest(
            store,
            key=key,
            heads_file=heads,
            retention_days=1825,
            source="verify",
            now=NOW,
            full=True,
            record=False,
        )
        assert rep.heads is not None
        return rep.heads

    forged = json.loads(lines[1])
    forged["hash"] = "0" * 64
    res = check("\n".join([lines[0], json.dumps(forged), lines[2]]) + "\n")
    assert (res.problem, res.line) == ("forged", 2) and "signature does not match" in res.message
    res = check("\n".join([lines[0], lines[2]]) + "\n")
    assert (res.problem, res.line) == ("unlinked", 2) and "removed" in res.message
    res = check(lines[0] + "\nnot json\n")
    assert (res.problem, res.line) == ("forged", 2)
    other = generate_key(tmp_path / "other.key")
    heads.path.write_text("\n".join(lines) + "\n")
    rep = attest(
        store,
        key=other,
        heads_file=heads,
        retention_days=1825,
        source="verify",
        now=NOW,
        full=True,
    )
    assert rep.heads is not None and rep.heads.problem == "wrong-key"
    assert rep.recorded_line is None and len(heads.read()) == 3
    heads.path.write_text("\n".join(lines) + "\n")
    assert check(heads.path.read_text()).ok


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "head.key"
    with pytest.raises(HeadKeyError, match="not found; create one with `dlp log keygen"):
        load_key(path)
    key = generate_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_key(path).secret == key.secret and len(key.secret) == 32
    assert key.secret.hex() not in repr(key)
    with pytest.raises(HeadKeyError, match="already exists; not overwritten"):
        generate_key(path)
    path.chmod(0o644)
    with pytest.raises(HeadKeyError, match=r"open to group or others \(mode 0644\).*chmod 600"):
        load_key(path)
    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    short.chmod(0o600)
    with pytest.raises(HeadKeyError, match="too short"):
        load_key(short)
    short.write_text("not a key\n")
    with pytest.raises(HeadKeyError, match="expected hex digits"):
        load_key(short)


def _settings(backend: Backend, tmp_path: Path, key_line: str) -> Settings:
    cfg = tmp_path / "config" / "dlp.toml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(
        backend.quarantine_toml() + backend.toml() + "retention_days = 30\n" + key_line,
        encoding="utf-8",
    )
    return load_settings(cfg)


def _head_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "dlp", {}).get("event") == "sendlog head"]


def test_retention_run_logs_and_signs_the_head(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    generate_key(tmp_path / "head.key")
    settings = _settings(backend, tmp_path, f'head_key_file = "{tmp_path / "head.key"}"\n')
    now = datetime.now(UTC)
    store = backend.open()
    store.append(make_record(1, when=now - timedelta(days=60)))
    store.append(make_record(2, when=now - timedelta(days=1)))
    caplog.set_level(logging.INFO)
    res = purge_expired(settings, now=now, include_quarantine=False)
    assert res.sendlog.purged == 1 and not res.refused
    (rec,) = _head_lines(caplog)
    fields = rec.dlp  # type: ignore[attr-defined]
    assert rec.levelno == logging.INFO
    assert fields["seq"] == 3 and fields["entries"] == 2 and fields["purged_through"] == 1
    assert fields["signed"] and fields["source"] == "retention" and fields["heads_line"] == 1
    (line,) = HeadsFile(settings.heads_path).read()
    assert line.head is not None and line.head.hmac == fields["hmac"]
    assert line.head.hash == store.get(3).hash  # type: ignore[union-attr]

    # a rewrite: the next retention run refuses to purge and signs nothing
    store.append(make_record(4, when=now))
    rewrite_chain(backend, 2, _subject("別件"))
    caplog.clear()
    res = purge_expired(settings, now=now + timedelta(days=10), include_quarantine=False)
    assert res.refused.startswith("refusing to purge: line 1 of")
    assert res.sendlog.purged == 0 and store.count() == 3
    (rec,) = _head_lines(caplog)
    assert rec.levelno == logging.ERROR and not rec.dlp["signed"]  # type: ignore[attr-defined]
    assert "entry 3 had hash" in rec.dlp["problem"]  # type: ignore[attr-defined]
    assert len(HeadsFile(settings.heads_path).read()) == 1


def test_retention_run_without_key_logs_the_head_unsigned(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(backend, tmp_path, "")
    backend.open().append(make_record(1, when=datetime.now(UTC)))
    caplog.set_level(logging.INFO)
    purge_expired(settings, include_quarantine=False)
    (rec,) = _head_lines(caplog)
    fields = rec.dlp  # type: ignore[attr-defined]
    assert fields["seq"] == 1 and not fields["signed"] and "hmac" not in fields
    assert not settings.heads_path.exists()


def test_retention_run_with_a_bad_key_still_purges_and_says_why(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(backend, tmp_path, f'head_key_file = "{tmp_path / "missing.key"}"\n')
    backend.open().append(make_record(1, when=datetime.now(UTC) - timedelta(days=60)))
    caplog.set_level(logging.INFO)
    res = purge_expired(settings, include_quarantine=False)
    assert res.sendlog.purged == 1
    (rec,) = _head_lines(caplog)
    assert rec.levelno == logging.WARNING
    assert "dlp log keygen" in rec.dlp["problem"]  # type: ignore[attr-defined]


def test_json_log_keeps_a_digest_whole() -> None:
    from dlp.smtp.gateway import JsonFormatter

    # a 64-hex digest that holds a checksum-valid twelve-digit run
    digest = "ab123456789018cd" + "e" * 48
    rec = logging.LogRecord("t", logging.INFO, __file__, 1, "番号 123456789018", None, None)
    rec.dlp = {"hash": digest, "hmac": digest, "note": digest, "prev": "123456789018"}
    out = json.loads(JsonFormatter().format(rec))
    assert out["hash"] == digest and out["hmac"] == digest
    assert "123456789018" not in out["note"] and "123456789018" not in out["msg"]
    assert "123456789018" not in out["prev"]  # not a 64-hex digest: masked like text


def _append_heads(args: tuple[str, str, int]) -> None:
    key_path, heads_path, n = args
    key, heads = load_key(key_path), HeadsFile(heads_path)
    head = SignedHead(1, "a" * 64, 1, 0, "0" * 64, "", "", "verify", "test")
    for _ in range(n):
        heads.append(head, key)


def test_concurrent_appends_keep_the_heads_file_linked(tmp_path: Path, key: HeadKey) -> None:
    """The retention run and a `dlp log verify` may sign at the same moment: the file
    lock keeps every line whole and linked to the one before it."""
    import multiprocessing

    path = tmp_path / "heads.jsonl"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_append_heads, [(key.path, str(path), 40)] * 3)
    lines = HeadsFile(path).read()
    assert len(lines) == 120 and [ln.number for ln in lines] == list(range(1, 121))
    prev = ""
    for ln in lines:
        assert ln.head is not None and signature_ok(ln.head, key) and ln.head.prev == prev
        prev = ln.head.hmac
