"""The report draft as a document a person hands to their superior (Japanese).

Markdown for mail and wikis, docx (python-docx) for the office; both have the
same sections: the nine items ①–⑨, the two deadlines and the thresholds first.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from dlp.incident.report import (
    ACTION_NAMES,
    APPI_REPORTABLE_PERSONS,
    CLASS_NAMES,
    HUMAN_ITEMS,
    IncidentReport,
    ReportRecipient,
    item_name,
)
from dlp.model import REPORTABLE_DISTINCT_NUMBERS

TITLE = "個人情報の漏えい等に関する報告書（下書き）"
HEADINGS = (
    "① 概要",
    "② 漏えい等が発生し、又は発生したおそれがある個人データの項目",
    "③ 漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数",
    "④ 原因",
    *(label for _, label in HUMAN_ITEMS),
)
"""The nine items of the report, in the Commission's order."""
TO_FILL = "（記入してください）"


def _d(d: object) -> str:
    return d.strftime("%Y年%m月%d日") if hasattr(d, "strftime") else str(d)


def _yes(b: bool, certain: bool = True) -> str:
    """Over several messages the persons are an upper bound: a threshold passed only by
    the sum may not be passed by the real (unioned) number."""
    if not b:
        return "該当しない"
    return "該当する" if certain else "該当する可能性がある（合計が上限値のため要確認）"


@dataclass(frozen=True, slots=True)
class _Block:
    """One section: a heading and its paragraphs / bullet items."""

    heading: str
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()


def blocks(r: IncidentReport) -> tuple[str, list[str], list[_Block]]:
    """(title, preamble lines, sections): what both renderers lay out."""
    upper = "（上限値）" if r.persons_is_upper_bound else ""
    pre, final = r.preliminary_due, r.final_due
    preamble = [
        f"作成日時: {r.drafted_at.strftime('%Y-%m-%d %H:%M')}　作成者: {r.drafted_by}",
        f"発覚日（事態を知った日）: {_d(r.discovered)}",
        f"速報の期限（目安）: {_d(pre[0])}〜{_d(pre[1])}（発覚から3〜5日以内）",
        f"確報の期限: {_d(final)}（発覚から{'60' if r.wrongful_purpose else '30'}日以内"
        + ("、不正の目的によるもの" if r.wrongful_purpose else "")
        + "）",
        f"番号法の報告対象（個人番号 {REPORTABLE_DISTINCT_NUMBERS}人超、規則第2条第4号）: "
        f"{_yes(r.mynumber_act_reportable, r.mynumber_act_certain)}（個人番号 {r.mynumber_persons}人{upper}）",
        f"個人情報保護法の報告対象（{APPI_REPORTABLE_PERSONS:,}人超、施行規則第7条第4号）: "
        f"{_yes(r.appi_reportable, r.appi_certain)}（{r.persons}人{upper}）",
    ]
    overview: list[str] = []
    for e in r.entries:
        rcpts = [x for x in r.recipients if x.entry_id == e.id]
        to = "、".join(_recipient(x) for x in rcpts) or "（なし）"
        files = "、".join(e.attachments) or "（なし）"
        text = (
            f"記録 {e.id}: {e.time.strftime('%Y-%m-%d %H:%M')} に {e.sender}"
            f"（差出人表示 {e.header_from or '―'}）が、件名「{e.subject}」、"
            f"添付ファイル {files} を {to} 宛に送信しようとしました。"
            f"判定: {ACTION_NAMES.get(e.action, e.action)}（ルール {e.rule}）。"
        )
        if e.released_by and e.released_at is not None:
            text += (
                f"{e.released_by} が {e.released_at.strftime('%Y-%m-%d %H:%M')} に解除しました。"
            )
        text += "宛先へ送信されました。" if e.delivered else "宛先へは送信されていません。"
        overview.append(text)
    items = [item_name(i) for i in r.items] or ["（送信ログに検出の記録なし）"]
    persons = [
        f"{r.persons}人{upper}",
        *(f"記録 {e.id}: {e.persons}人" for e in r.entries),
    ]
    sections = [
        _Block(HEADINGS[0], (), tuple(overview)),
        _Block(HEADINGS[1], (r.notes[1],) if len(r.notes) > 1 else (), tuple(items)),
        _Block(HEADINGS[2], (r.notes[0],) if r.notes else (), tuple(persons)),
        _Block(HEADINGS[3], (), r.cause),
        *(_Block(label, (TO_FILL,)) for _, label in HUMAN_ITEMS),
    ]
    return TITLE, preamble, sections


def _recipient(x: ReportRecipient) -> str:
    label = CLASS_NAMES.get(x.klass, x.klass)
    if x.resembles:
        label += f"、{x.resembles} と類似"
    if x.own_address_likely:
        label += "、送信者本人の私用アドレスの可能性"
    return f"{x.address}（{label}）"


def markdown(r: IncidentReport) -> str:
    title, preamble, sections = blocks(r)
    out = [f"# {title}", ""]
    out += [f"- {line}" for line in preamble]
    for s in sections:
        out += ["", f"## {s.heading}", ""]
        out += list(s.paragraphs)
        if s.paragraphs and s.bullets:
            out.append("")
        out += [f"- {b}" for b in s.bullets]
    return "\n".join(out) + "\n"


def docx(r: IncidentReport) -> bytes:
    import docx as python_docx  # python-docx; imported here: only this format needs it

    title, preamble, sections = blocks(r)
    doc = python_docx.Document()
    doc.add_heading(title, level=0)
    for line in preamble:
        doc.add_paragraph(line)
    for s in sections:
        doc.add_heading(s.heading, level=1)
        for p in s.paragraphs:
            doc.add_paragraph(p)
        for b in s.bullets:
            doc.add_paragraph(b, style="List Bullet")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
