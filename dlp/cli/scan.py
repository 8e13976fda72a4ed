"""``dlp scan``: scan messages and files from the command line.

Inputs: ``.eml`` files, mbox files, Maildir folders (and Maildir++
subfolders), other folders (every file in them), any other file (scanned as
the lone attachment of a message), and ``-`` for standard input.  Output is a
table for people or, with ``--json``, one JSON object per message (JSON
Lines).  Exit status like grep: 0 nothing found, 1 findings, 2 an error.
"""

from __future__ import annotations

import functools
import json
import mailbox
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import click

from dlp.cli.common import config_option, load_or_exit
from dlp.config import ScanSettings, Settings
from dlp.detect.mynumber import redact
from dlp.extract import registry
from dlp.model import Confidence, ScanReport
from dlp.scanner import scan_file, scan_message

_MESSAGE_SUFFIXES = (".eml", ".emlx", ".mime", ".rfc822")
_PROGRESS_MIN = 10
"""Show a progress bar (on a terminal) from this many messages on."""


@dataclass(frozen=True)
class _Unit:
    """One thing to scan: a message or a file, read lazily."""

    source: str
    read: Callable[[], bytes]
    as_message: bool | None = None
    """True: a message; False: a file; None: decide by the bytes."""
    filename: str = ""


class _InputError(Exception):
    pass


def register(group: click.Group) -> None:
    """Add ``dlp scan`` to the top-level group."""
    group.add_command(scan)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message (JSON Lines).")
@click.option(
    "--min-confidence",
    type=click.Choice(["low", "medium", "high"]),
    default="low",
    show_default=True,
    help="Findings below this are not shown and do not count for the exit status.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="ADDR",
    help="Also evaluate policy as if the message went to ADDR (repeatable).",
)
@click.option("--sender", default="", metavar="ADDR", help="Envelope sender for --recipient.")
@click.argument("paths", nargs=-1, required=True)
def scan(
    config_path: str | None,
    as_json: bool,
    min_confidence: str,
    recipients: tuple[str, ...],
    sender: str,
    paths: tuple[str, ...],
) -> None:
    """Scan .eml, mbox, Maildir folders or any file (- for stdin) for My Numbers.

    Exit status: 0 nothing found, 1 findings, 2 an error (like grep).
    """
    settings = load_or_exit(config_path)
    floor = Confidence(min_confidence)
    units, errors = _collect(paths)
    evaluate = _policy_evaluator(settings, recipients, sender) if recipients else None
    rows: list[tuple[ScanReport, dict[str, object] | None]] = []
    found = False
    failed = bool(errors)
    for err in errors:
        click.echo(f"dlp scan: {err}", err=True)
    show_progress = not as_json and len(units) >= _PROGRESS_MIN and sys.stderr.isatty()
    warned_ocr = False
    for report in _run(units, settings.scan, show_progress):
        report = _filter(report, floor)
        if not warned_ocr and any(
            a.detail.startswith("ocr unavailable") for a in report.attachments
        ):
            warned_ocr = True
            detail = next(a.detail for a in report.attachments if a.detail.startswith("ocr"))
            click.echo(f"dlp scan: images are not read: {detail}", err=True)
        if report.error:
            failed = True
            click.echo(f"dlp scan: {report.source}: {report.error}", err=True)
        if report.findings:
            found = True
        verdict = evaluate(report) if evaluate else None
        if as_json:
            obj = report.to_json()
            if verdict is not None:
                obj["verdict"] = verdict
            click.echo(json.dumps(obj, ensure_ascii=False))
        else:
            rows.append((report, verdict))
    if not as_json and (rows or not errors):
        _print_tables(rows)  # not an empty table above "no such file"
    raise SystemExit(2 if failed else 1 if found else 0)


# --- inputs --------------------------------------------------------------------------------------


def _collect(paths: tuple[str, ...]) -> tuple[list[_Unit], list[str]]:
    units: list[_Unit] = []
    errors: list[str] = []
    for arg in paths:
        try:
            units.extend(_expand(arg))
        except _InputError as exc:
            errors.append(str(exc))
        except OSError as exc:
            errors.append(f"{redact(arg)}: {exc.strerror or type(exc).__name__}")
    return units, errors


def _expand(arg: str) -> Iterator[_Unit]:
    if arg == "-":
        data = sys.stdin.buffer.read()
        yield _Unit("<stdin>", lambda: data, None, "stdin")
        return
    path = Path(arg)
    if not path.exists():
        raise _InputError(f"{redact(arg)}: no such file or directory")
    if path.is_dir():
        yield from _directory(path)
        return
    yield from _file(path)


def _directory(path: Path) -> Iterator[_Unit]:
    """Every file below ``path``; Maildir folders (with their Maildir++ subfolders) as mail."""
    if _is_maildir(path):
        yield from _maildir(path)
        return
    maildirs: list[Path] = []
    for p in sorted(path.rglob("*")):
        if any(p.is_relative_to(m) for m in maildirs):
            continue  # already read as part of a Maildir
        if p.is_dir() and _is_maildir(p):
            maildirs.append(p)
            yield from _maildir(p)
        elif p.is_file():
            yield from _file(p)


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _maildir(path: Path) -> Iterator[_Unit]:
    """Messages in a Maildir (new, then cur), and in Maildir++ subfolders."""
    for folder in [
        path,
        *sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith(".")),
    ]:
        if not _is_maildir(folder):
            continue
        for sub in ("new", "cur"):
            for f in sorted((folder / sub).iterdir()):
                if f.is_file() and not f.name.startswith("."):
                    yield _Unit(str(f), f.read_bytes, True)


def _file(path: Path) -> Iterator[_Unit]:
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"From ") and _is_mbox(head):
        # One mailbox object for all its messages: it indexes the file once.
        box = mailbox.mbox(str(path), create=False)
        for i, key in enumerate(box.keys(), 1):
            yield _Unit(f"{path}#{i}", functools.partial(box.get_bytes, key), True)
        return
    as_message = True if path.suffix.lower() in _MESSAGE_SUFFIXES else None
    yield _Unit(str(path), path.read_bytes, as_message, path.name)


def _is_mbox(head: bytes) -> bool:
    lines = head.split(b"\n", 3)
    return len(lines) > 1 and b":" in lines[1] and not lines[0].startswith(b"From: ")


# --- scanning ------------------------------------------------------------------------------------


def _run(units: list[_Unit], scan: ScanSettings, show_progress: bool) -> Iterator[ScanReport]:
    if not show_progress:
        for u in units:
            yield _scan_unit(u, scan)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    # On stderr, so stdout stays clean for the table or for a pipe.
    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("scan", total=len(units))
        for u in units:
            yield _scan_unit(u, scan)
            progress.advance(task)


def _scan_unit(u: _Unit, scan: ScanSettings) -> ScanReport:
    try:
        data = u.read()
    except OSError as exc:
        return ScanReport(
            source=redact(u.source),  # as the scanner does: a file may be named after a number
            error=f"error: cannot read: {exc.strerror or type(exc).__name__}",
        )
    as_message = u.as_message
    if as_message is None:
        as_message = registry.sniff(data, u.filename) == "message"
    if as_message:
        return scan_message(data, scan, u.source)
    return scan_file(data, u.filename or Path(u.source).name, scan, u.source)


def _filter(report: ScanReport, floor: Confidence) -> ScanReport:
    if floor is Confidence.LOW:
        return report
    return replace(
        report, findings=tuple(f for f in report.findings if f.confidence.at_least(floor))
    )


def _policy_evaluator(
    settings: Settings, recipients: tuple[str, ...], sender: str
) -> Callable[[ScanReport], dict[str, object]]:
    try:
        from dlp.policy import decide
        from dlp.recipients import RecipientClassifier
    except ImportError as exc:
        click.echo(f"dlp scan: --recipient needs the policy module: {exc}", err=True)
        raise SystemExit(2) from None
    try:
        classifier = RecipientClassifier.from_settings(settings)
    except Exception as exc:
        click.echo(f"dlp scan: cannot load the allowlist: {exc}", err=True)
        raise SystemExit(2) from None
    classified = [classifier.classify(r) for r in recipients]

    def evaluate(report: ScanReport) -> dict[str, object]:
        # As the gateway does: the From header decides which free-mail recipients are
        # probably the sender's own (issue 14), so rules on own_address_likely can be tried.
        from dlp.ownaddress import mark

        rcpts = mark(classified, sender, report.header_from)
        return decide(report, rcpts, sender, settings.policy).to_json()

    return evaluate


# --- human output --------------------------------------------------------------------------------


def _print_tables(rows: list[tuple[ScanReport, dict[str, object] | None]]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Piped output (not a terminal) gets a wide table instead of rich's 80 columns.
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    summary = Table(title="dlp scan", show_lines=False)
    summary.add_column("source", overflow="fold")
    summary.add_column("My Number\nhigh/med/low", justify="right")
    summary.add_column("findings", justify="right")
    summary.add_column("attachments", overflow="fold")
    summary.add_column("defects", justify="right")
    summary.add_column("status", overflow="fold")
    with_verdict = any(v is not None for _, v in rows)
    if with_verdict:
        summary.add_column("verdict")
    for r, verdict in rows:
        s = r.mynumber
        atts = ", ".join(
            a.filename if a.status.value == "scanned" else f"{a.filename} ({a.status.value})"
            for a in r.attachments
        )
        row = [
            r.source,
            f"{s.high}/{s.medium}/{s.low}",
            str(len(r.findings)),
            atts or "-",
            str(len(r.defects)),
            r.error or ("FOUND" if r.findings else "clean"),
        ]
        if with_verdict:
            row.append(str((verdict or {}).get("action", "")))
        summary.add_row(*row)
    console.print(summary)
    detail = Table(title="findings")
    for col in ("source", "detector", "confidence", "location", "masked", "reason"):
        detail.add_column(col, overflow="fold")
    any_finding = False
    for r, _ in rows:
        for f in r.findings:
            any_finding = True
            detail.add_row(r.source, f.detector, f.confidence.value, f.location, f.masked, f.reason)
    if any_finding:
        console.print(detail)
