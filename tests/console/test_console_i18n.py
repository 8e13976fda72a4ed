"""Every text the pages use exists in Japanese and English; charts are safe SVG."""

from __future__ import annotations

import re
from pathlib import Path

from dlp.console import i18n
from dlp.console.charts import Bar, bar_list, column_chart
from dlp.console.filters import ACTIONS, CLASSES
from dlp.console.users import Role
from dlp.sendlog.record import EVENTS

CONSOLE = Path(__file__).resolve().parents[2] / "dlp" / "console"
LITERAL_KEY = re.compile(r"""\bt\(\s*['"]([a-z_]+\.[a-z_.]+)['"]""")


def test_every_literal_key_is_translated() -> None:
    used: set[str] = set()
    for path in [*CONSOLE.rglob("*.html"), *CONSOLE.rglob("*.py")]:
        used |= set(LITERAL_KEY.findall(path.read_text(encoding="utf-8")))
    assert used, "found no keys: the pattern is broken"
    # 'role.' ~ value and the like are prefixes, checked by the next test
    missing = sorted(k for k in used if k not in i18n.MESSAGES and not k.endswith("."))
    assert not missing


def test_every_dynamic_key_is_translated() -> None:
    keys = (
        [f"role.{r.value}" for r in Role]
        + [f"action.{a}" for a in ACTIONS]
        + [f"class.{c}" for c in CLASSES]
        + [f"event.{e}" for e in EVENTS]
        + [f"confidence.{c}" for c in ("high", "medium", "low")]
        + [f"held.age.{u}" for u in ("minutes", "hours", "days")]
        + [f"allow.section.{s}" for s in ("own", "partner", "external")]
        + [f"held.sum.{k}" for k in ("mynumber_distinct", "high", "medium", "low", "attachments")]
    )
    assert [k for k in keys if k not in i18n.MESSAGES] == []


def test_both_languages_are_filled_and_placeholders_agree() -> None:
    for key, (ja, en) in i18n.MESSAGES.items():
        assert ja and en, key
        assert set(re.findall(r"{(\w+)}", ja)) == set(re.findall(r"{(\w+)}", en)), key
    assert i18n.translator("ja")("nav.log") == "送信ログ"
    assert i18n.translator("en")("nav.log") == "Send log"


def test_charts_escape_labels_and_never_show_a_number() -> None:
    evil = Bar('<script>alert(1)</script>"', 3, href='/log?sender=a"onmouseover=x')
    for svg in (column_chart([evil], "t<"), bar_list([evil], "t")):
        assert "<script>" not in svg
        assert 'a"onmouseover' not in svg  # the quote cannot end the attribute
        assert "&lt;script&gt;" in svg
    masked = bar_list([Bar("個人番号 123456789018", 1)], "t")
    assert "123456789018" not in masked and "****-****-****" in masked
    empty = column_chart([], "nothing")
    assert empty.startswith("<svg")
