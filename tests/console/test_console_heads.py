"""The console's integrity page with a head key: it holds the chain against the
heads signed outside the database, so a consistently recomputed chain is shown as
rewritten, and it signs the head like `dlp log verify` (issue 11)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from console_support import Sink, csrf_of, make_settings
from sendlog_support import Backend, rewrite_chain
from starlette.testclient import TestClient

from dlp.config import Settings
from dlp.console.services import Services
from dlp.sendlog.heads import HeadsFile, generate_key


@pytest.fixture
def settings(tmp_path: Path, sink: Sink) -> Settings:
    s = make_settings(tmp_path, next_hop_port=sink.port)
    generate_key(tmp_path / "head.key")
    return replace(s, sendlog=replace(s.sendlog, head_key_file=str(tmp_path / "head.key")))


def test_verify_page_signs_heads_and_shows_a_rewrite(
    client_for: Callable[[str | None], TestClient],
    seeded: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = client_for("reviewer")
    token = csrf_of(c.get("/verify").text)
    caplog.set_level(logging.INFO, logger="dlp.sendlog.heads")
    r = c.post("/verify", data={"csrf_token": token})
    assert r.status_code == 200
    assert "署名済みのチェーン先頭はまだありません" in r.text and "1 行目" in r.text
    r = c.post("/verify", data={"csrf_token": token})
    assert r.status_code == 200 and "1 件はすべて現在のチェーンと一致" in r.text
    heads = HeadsFile(seeded.settings.heads_path).read()
    assert [h.head.source for h in heads if h.head] == ["console", "console"]
    logged = [getattr(x, "dlp", {}) for x in caplog.records]
    assert [x.get("signed") for x in logged if x.get("event") == "sendlog head"] == [True, True]

    # someone with database access edits entry 20 and recomputes every later hash
    def edit(fields: dict[str, object]) -> dict[str, object]:
        return {**fields, "subject": "別件"}

    db = Backend("sqlite", seeded.settings.sqlite_path.parent)
    rewrite_chain(db, 20, edit)
    assert seeded.sendlog().verify().ok  # the chain alone cannot tell
    r = c.post("/verify", data={"csrf_token": token})
    assert r.status_code == 409
    assert "改ざんはありません" in r.text  # the chain itself verifies ...
    assert "送信ログが書き換えられています" in r.text  # ... the signed heads do not agree
    head = heads[-1].head
    assert head is not None and f'href="/log/{head.seq}"' in r.text
    assert f"entry {head.seq} had hash {head.hash}" in r.text
    assert len(HeadsFile(seeded.settings.heads_path).read()) == 2  # nothing signed over it
