"""The allowlist file: strict parsing with file:line messages, comment-preserving atomic saves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlp.allowlist import (
    Allowlist,
    AllowlistError,
    load_allowlist,
    parse_allowlist,
    save_allowlist,
    update_allowlist,
    validate_domain,
)

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """\
# header comment
[own]
example.lg.jp          # main
Mail.Example.LG.JP

# partners below
[partner]
payroll.example.co.jp  mynumber   # 給与計算
ｐａｒｔｎｅｒ.co.jp

[external]
exp.com  # checked: unrelated company
"""


def test_parse_sample() -> None:
    al = parse_allowlist(SAMPLE)
    assert al.own == ("example.lg.jp", "mail.example.lg.jp")
    assert al.partners == ("payroll.example.co.jp", "partner.co.jp")
    assert al.mynumber_partners == frozenset({"payroll.example.co.jp"})
    assert al.external == ("exp.com",)


def test_shipped_file_loads() -> None:
    al = load_allowlist(ROOT / "config" / "allowed_domains.txt")
    assert al.own


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("example.lg.jp\n", 1, "outside a section"),
        ("[own]\nexample.lg.jp\n[friends]\n", 3, "unknown section"),
        ("[own]\nexample.lg.jp  mynumber\n", 2, "mynumber tag is for [partner]"),
        ("[partner]\nx.co.jp  payroll\n", 2, "unknown tag"),
        ("[own]\na.co.jp\n\n[partner]\nA.CO.JP\n", 5, "already listed on line 2"),
        ("[own]\nco.jp\n", 2, "public suffix"),
        ("[own]\nuser@example.lg.jp\n", 2, "address"),
        ("[own]\n*.example.lg.jp\n", 2, "wildcard"),
        ("[own]\nexa mple.lg.jp\n", 2, "'exa': no known public suffix"),
        ("[own]\nexample..lg.jp\n", 2, "empty label"),
        ("[own]\nintranet\n", 2, "no known public suffix"),
    ],
)
def test_errors_name_file_line_and_problem(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "allowed_domains.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AllowlistError) as info:
        load_allowlist(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert words in str(info.value)


def test_missing_and_undecodable(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError, match="file not found"):
        load_allowlist(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"[own]\n\x82\xa0.jp\n")
    with pytest.raises(AllowlistError, match="not UTF-8"):
        load_allowlist(bad)


def test_validate_domain_canonicalises() -> None:
    assert validate_domain(" ＥＸＰ．co．jp ") == "exp.co.jp"
    assert validate_domain("例え.jp") == "xn--r8jz45g.jp"


def test_save_preserves_comments_and_order(tmp_path: Path) -> None:
    path = tmp_path / "allowed_domains.txt"
    path.write_text(SAMPLE, encoding="utf-8")
    path.chmod(0o640)
    al = load_allowlist(path)
    al = al.without("partner.co.jp").with_entry("partner", "new.co.jp", mynumber=True)
    al = al.with_entry("own", "exp.co.jp")
    al = al.with_entry("partner", "payroll.example.co.jp", mynumber=False)
    save_allowlist(path, al)
    text = path.read_text(encoding="utf-8")
    assert "# header comment" in text and "# partners below" in text
    assert "exp.com  # checked: unrelated company" in text
    assert "payroll.example.co.jp  # 給与計算" in text  # tag dropped, comment kept
    assert "partner.co.jp\n" not in text
    lines = text.splitlines()
    assert lines.index("exp.co.jp") == lines.index("Mail.Example.LG.JP") + 1
    assert lines.index("new.co.jp  mynumber") < lines.index("[external]")
    assert load_allowlist(path) == al
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allowed_domains.txt"]


def test_save_creates_a_documented_file(tmp_path: Path) -> None:
    path = tmp_path / "new.txt"
    al = Allowlist(
        own=("example.lg.jp",), partners=("p.co.jp",), mynumber_partners=frozenset({"p.co.jp"})
    )
    save_allowlist(path, al)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Allowlist of recipient domains")
    assert load_allowlist(path) == al


def test_save_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "allowed_domains.txt"
    path.write_text(SAMPLE, encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_allowlist(path, Allowlist(own=("other.co.jp",)))
    assert path.read_text(encoding="utf-8") == SAMPLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allowed_domains.txt"]


def test_update_is_serialised_by_a_lock(tmp_path: Path) -> None:
    path = tmp_path / "allowed_domains.txt"
    path.write_text("[own]\nexample.lg.jp\n", encoding="utf-8")
    before, after = update_allowlist(path, lambda al: al.with_entry("partner", "a.co.jp"))
    assert before.partners == () and after.partners == ("a.co.jp",)
    assert load_allowlist(path).partners == ("a.co.jp",)
