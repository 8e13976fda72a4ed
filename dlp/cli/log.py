"""`dlp log`: review, export, verify and purge the attachment send log.

Exit status: 0 success (verify: chain intact and every signed head agrees),
1 verify found a break or a signed head the chain contradicts (purge: refused
for that reason), 2 a problem with the configuration, the key or the log itself.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table

from dlp.cli.common import config_option, load_for_state
from dlp.config import Settings
from dlp.model import Action, RecipientClass
from dlp.retention import expire_quarantine
from dlp.sendlog import (
    EVENTS,
    HeadReport,
    LogFilter,
    SendLogError,
    SendLogStore,
    StoredEntry,
    guard_purge,
    open_store,
    record_head,
)
from dlp.sendlog.export import ENCODINGS, write_csv, write_jsonl
from dlp.sendlog.heads import (
    HeadKey,
    HeadKeyError,
    HeadsFile,
    HeadsFileError,
    attest,
    generate_key,
    load_key,
    log_head,
)
from dlp.sendlog.store import STATS_BY
from dlp.sendlog.timespec import local_tz, parse_when, utc_offset_minutes

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(f: F) -> F:
    """The reviewer's filters, shared by list, search, export and stats."""
    opts = [
        click.option("--since", help="From this time: YYYY-MM-DD, 'YYYY-MM-DD HH:MM', 7d, today."),
        click.option("--until", help="Up to this time (a bare date includes that whole day)."),
        click.option("--sender", help="Envelope sender address, or @domain for a whole domain."),
        click.option("--recipient-domain", help="A recipient's domain (exact)."),
        click.option(
            "--class",
            "recipient_class",
            type=click.Choice([c.value for c in RecipientClass]),
            help="A recipient of this class.",
        ),
        click.option(
            "--has-findings/--no-findings",
            "has_findings",
            default=None,
            help="Only entries with (or without) findings.",
        ),
        click.option(
            "--verdict", type=click.Choice([a.value for a in Action]), help="Policy action."
        ),
        click.option("--attachment", help="Attachment SHA-256, or part of its file name."),
        click.option("--event", type=click.Choice(EVENTS), help="Entry type (message, release …)."),
        click.option(
            "--audit-key", help="Postfix queue id / gateway id: every entry of one message."
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_filter(kw: dict[str, Any]) -> LogFilter:
    try:
        since = parse_when(kw["since"]) if kw.get("since") else None
        until = parse_when(kw["until"], upper=True) if kw.get("until") else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return LogFilter(
        since=since,
        until=until,
        sender=kw.get("sender") or "",
        recipient_domain=kw.get("recipient_domain") or "",
        recipient_class=kw.get("recipient_class") or "",
        has_findings=kw.get("has_findings"),
        verdict=kw.get("verdict") or "",
        attachment=kw.get("attachment") or "",
        event=kw.get("event") or "",
        audit_key=kw.get("audit_key") or "",
    )


def _console() -> Console:
    # Piped output is not cut at 80 columns.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


@contextmanager
def _open(config_path: str | None) -> Iterator[SendLogStore]:
    """The send log for one command; any SendLogError while it is open exits 2."""
    settings = load_for_state(config_path)
    try:
        with open_store(settings) as store:
            yield store
    except SendLogError as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    click.echo(f"dlp: send log error: {exc}", err=True)
    raise SystemExit(2)


def _local(t: datetime) -> str:
    return t.astimezone(local_tz()).strftime("%Y-%m-%d %H:%M:%S")


def _short_recipients(e: StoredEntry) -> str:
    rs = e.record.recipients
    shown = ", ".join(
        f"{r.address} [{r.klass}{', own address?' if r.own_address_likely else ''}]" for r in rs[:2]
    )
    return shown + (f" +{len(rs) - 2}" if len(rs) > 2 else "")


def _short_attachments(e: StoredEntry) -> str:
    a = e.record.attachments
    if not a:
        return ""
    return a[0].filename + (f" +{len(a) - 1}" if len(a) > 1 else "")


def _short_findings(e: StoredEntry) -> str:
    r = e.record
    parts = [f"{f.detector}:{f.confidence} {f.count}" for f in r.findings]
    if r.reportable_scale:
        parts.append("REPORTABLE")
    return ", ".join(parts)


def _entries_table(entries: list[StoredEntry]) -> Table:
    t = Table(show_lines=False, header_style="bold")
    for col in (
        "ID",
        "Time",
        "Event",
        "Sender",
        "Recipients",
        "Attachments",
        "Findings",
        "Verdict",
    ):
        t.add_column(col, overflow="fold")
    for e in entries:
        r = e.record
        who = r.sender if r.event == "message" else r.actor
        verdict = {"message": r.action, "outcome": r.next_hop_reply}.get(r.event, r.comment)
        t.add_row(
            str(e.id),
            _local(r.time),
            r.event,
            who,
            _short_recipients(e),
            _short_attachments(e),
            _short_findings(e),
            verdict,
        )
    return t


def _list(config_path: str | None, kw: dict[str, Any], need_filter: bool) -> None:
    flt = build_filter(kw)
    if need_filter and flt == LogFilter():
        raise click.UsageError(
            "search needs at least one filter (see --help); `dlp log list` lists all"
        )
    if not (flt.event or flt.audit_key or kw["outcomes"] or kw["as_json"]):
        # One table line per message: the next hop's answer is under `dlp log
        # show`.  JSON (for scripts) keeps every entry.
        flt = replace(flt, exclude_events=("outcome",))
    with _open(config_path) as store:
        entries = store.query(
            flt,
            limit=kw["limit"],
            offset=kw["offset"],
            sort="oldest" if kw["oldest"] else "newest",
        )
        total = store.count(flt)
    if kw["as_json"]:
        for e in entries:
            click.echo(json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True))
        return
    con = _console()
    con.print(_entries_table(entries))
    first = kw["offset"] + 1 if entries else 0
    con.print(f"{first}-{kw['offset'] + len(entries)} of {total} matching entries")


def _list_options(f: F) -> F:
    f = click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")(f)
    f = click.option(
        "--outcomes",
        is_flag=True,
        help="Table: also list outcome entries (the next hop's answers; --json always has them).",
    )(f)
    f = click.option("--oldest", is_flag=True, help="Oldest first (default: newest first).")(f)
    f = click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)(f)
    f = click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)(f)
    return filter_options(config_option(f))


def _show(entry: StoredEntry) -> None:
    r = entry.record
    con = _console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("Entry", str(entry.id)),
        ("Time", f"{_local(r.time)} ({r.time.strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"),
        ("Event", r.event),
        ("Audit key", r.audit_key),
        ("Message-ID", r.message_id),
        ("Client", r.client_address),
        ("Sender", r.sender),
        ("From", r.header_from),
        ("Subject", r.subject),
        ("Verdict", f"{r.action} (rule {r.rule})" if r.action else ""),
        ("Reasons", " / ".join(r.reasons)),
        ("Next hop", r.next_hop_reply),
        ("My Numbers", f"{r.mynumber_total} found, {r.mynumber_distinct} distinct"),
        (
            "Other identifiers",
            ", ".join(
                f"{name} {c.get('total', 0)} found, {c.get('distinct', 0)} distinct"
                for name, c in r.detectors.items()
            ),
        ),
        (
            "Reportable",
            "YES: more than 100 distinct My Numbers or a roster of more than 1,000 persons"
            if r.reportable_scale
            else "no",
        ),
        ("Scan error", r.scan_error),
        ("Not read", " / ".join(r.unread)),
        ("Items", "、".join(r.items)),
        ("Actor", r.actor),
        ("Comment", r.comment),
        ("Detail", json.dumps(dict(r.detail), ensure_ascii=False) if r.detail else ""),
        ("Hash", entry.hash),
        ("Previous", entry.prev_hash),
    ]
    if r.event != "message":
        rows = [(k, v) for k, v in rows if k not in ("My Numbers", "Reportable")]
    for k, v in rows:
        if v:
            head.add_row(k, v)
    con.print(head)
    if r.recipients:
        t = Table(title="Recipients", header_style="bold")
        for c in ("Address", "Domain", "Class", "Resembles"):
            t.add_column(c, overflow="fold")
        for x in r.recipients:
            # "own address?": probably the sender's private mailbox (issue 14)
            klass = f"{x.klass} (own address?)" if x.own_address_likely else x.klass
            t.add_row(x.address, x.domain, klass, x.resembles)
        con.print(t)
    if r.attachments:
        t = Table(title="Attachments", header_style="bold")
        for c in ("File", "Type", "Size", "Status", "SHA-256"):
            t.add_column(c, overflow="fold")
        for a in r.attachments:
            t.add_row(a.filename, a.content_type, str(a.size), a.status, a.sha256)
        con.print(t)
    if r.findings:
        t = Table(title="Findings (counts only)", header_style="bold")
        for c in ("Detector", "Confidence", "Count", "Distinct", "Places"):
            t.add_column(c)
        for f in r.findings:
            t.add_row(f.detector, f.confidence, str(f.count), str(f.distinct), str(f.locations))
        con.print(t)


def _key_or_exit(key_file: str | None, settings: Settings) -> HeadKey | None:
    """``--key FILE``, else ``[sendlog] head_key_file``, else None; a bad key exits 2."""
    path = key_file or settings.head_key_path
    if not path:
        return None
    try:
        return load_key(path)
    except HeadKeyError as exc:
        click.echo(f"dlp: {exc}", err=True)
        raise SystemExit(2) from None


_VERDICTS = {
    "rewritten": "send log REWRITTEN",
    "deleted": "send log entries REMOVED",
    "rolled-back": "send log ROLLED BACK",
    "purged-early": "send log entries REMOVED",
    "forged": "signed heads file TAMPERED",
    "unlinked": "signed heads file TAMPERED",
    "wrong-key": "dlp: wrong head key",
}


def _print_verify(report: HeadReport, heads: HeadsFile, with_key: bool) -> None:
    res = report.chain
    assert res is not None
    if res.ok:
        cp = res.checkpoint
        purged = (
            f"; {cp.purged_total} older entries purged (through {cp.through_seq})"
            if cp.through_seq
            else ""
        )
        click.echo(f"send log intact: {res.checked} entries verified{purged}")
        click.echo(f"chain head: entry {res.head_seq} {res.head_hash}")
    else:
        where = f" at entry {res.first_bad}" if res.first_bad is not None else ""
        click.echo(f"send log BROKEN{where}: {res.message}")
        click.echo(f"({res.checked} entries before it verified)")
    check = report.heads
    if check is None:
        if not with_key and heads.exists():
            click.echo(
                f"signed heads in {heads.path} not checked: no key "
                "(--key FILE or [sendlog] head_key_file)"
            )
        return
    if check.ok:
        if check.checked:
            click.echo(f"signed heads: all {check.checked} in {heads.path} agree with the chain")
        else:
            click.echo(f"signed heads: none yet in {heads.path}")
        if report.recorded_line is not None:
            click.echo(f"this head signed and recorded: line {report.recorded_line}")
        elif report.error and res.ok:
            click.echo(f"dlp: this head was not recorded: {report.error}", err=True)
        return
    click.echo(f"{_VERDICTS.get(check.problem, 'signed heads disagree')}: {check.message}")
    if res.ok and check.problem in ("rewritten", "deleted", "rolled-back", "purged-early"):
        click.echo(
            "(the database's own chain verifies: it was recomputed consistently, which the "
            "signed heads, kept outside the database, reveal)"
        )


def _log_head_to(stream: Any) -> logging.Logger:
    """The chain-head logger writing JSON lines (the gateway's format) to ``stream``."""
    from dlp.smtp.gateway import JsonFormatter

    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return _use_handler(handler)


def _use_handler(handler: logging.Handler) -> logging.Logger:
    lg = logging.getLogger("dlp.sendlog.heads")
    lg.handlers[:] = [handler]
    lg.propagate = False
    lg.setLevel(logging.INFO)
    return lg


def _log_head(report: HeadReport, syslog: bool) -> None:
    if not syslog:
        log_head(report, _log_head_to(sys.stderr))
        return
    from logging.handlers import SysLogHandler

    from dlp.smtp.gateway import JsonFormatter

    try:
        # SysLogHandler would not say that the socket is missing until it emits, and
        # then only as a traceback: find out first, and keep the line.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            probe.connect("/dev/log")
        handler = SysLogHandler(address="/dev/log", facility=SysLogHandler.LOG_DAEMON)
    except OSError as exc:
        click.echo(
            f"dlp: cannot write to syslog (/dev/log: {exc.strerror}); head line on stderr",
            err=True,
        )
        log_head(report, _log_head_to(sys.stderr))
        return
    handler.ident = "dlp: "
    handler.setFormatter(JsonFormatter())
    try:
        log_head(report, _use_handler(handler))
    finally:
        handler.close()


def register(group: click.Group) -> None:
    """Add this family's commands to the top-level group."""

    @group.group("log")
    def log() -> None:
        """Review the attachment send log (list, search, show, export, verify, purge, stats)."""

    @log.command("list")
    @_list_options
    def list_cmd(config_path: str | None, **kw: Any) -> None:
        """Newest entries first, optionally filtered."""
        _list(config_path, kw, need_filter=False)

    @log.command("search")
    @_list_options
    def search_cmd(config_path: str | None, **kw: Any) -> None:
        """Entries matching the filters (at least one), with the total count."""
        _list(config_path, kw, need_filter=True)

    @log.command("show")
    @config_option
    @click.option("--json", "as_json", is_flag=True)
    @click.argument("entry_id", type=int)
    def show_cmd(config_path: str | None, as_json: bool, entry_id: int) -> None:
        """Everything recorded for one entry."""
        related: list[StoredEntry] = []
        with _open(config_path) as store:
            entry = store.get(entry_id)
            if entry is not None and entry.record.audit_key:
                # the same message's other entries: outcome, release, retries …
                related = [
                    e
                    for e in store.query(
                        LogFilter(audit_key=entry.record.audit_key), limit=20, sort="oldest"
                    )
                    if e.id != entry.id
                ]
        if entry is None:
            click.echo(f"dlp: no send-log entry {entry_id}", err=True)
            raise SystemExit(2)
        if as_json:
            click.echo(json.dumps(entry.to_json(), ensure_ascii=False, indent=2, sort_keys=True))
            return
        _show(entry)
        if related:
            _console().print("Other entries with this audit key:")
            _console().print(_entries_table(related))

    @log.command("export")
    @filter_options
    @config_option
    @click.option(
        "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
    )
    @click.option(
        "--encoding",
        type=click.Choice(list(ENCODINGS)),
        default="utf-8",
        show_default=True,
        help="CSV only: utf-8 (with BOM, for Excel) or shift_jis (CP932).",
    )
    @click.option("--ja-headers", is_flag=True, help="CSV only: Japanese column headings.")
    @click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True),
        help="File (default: stdout).",
    )
    def export_cmd(
        config_path: str | None,
        fmt: str,
        encoding: str,
        ja_headers: bool,
        output: str | None,
        **kw: Any,
    ) -> None:
        """Export matching entries, oldest first."""
        flt = build_filter(kw)
        with _open(config_path) as store:
            out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
            try:
                entries = store.iter_entries(flt)
                if fmt == "csv":
                    n = write_csv(
                        entries, out, encoding=encoding, japanese_headers=ja_headers, tz=local_tz()
                    )
                else:
                    n = write_jsonl(entries, out)
            finally:
                if output:
                    out.close()
        if output:
            click.echo(f"{n} entries written to {output}", err=True)

    @log.command("verify")
    @config_option
    @click.option("--json", "as_json", is_flag=True)
    @click.option(
        "--key",
        "key_file",
        type=click.Path(dir_okay=False),
        help="HMAC key (default: [sendlog] head_key_file): check the signed heads, sign this head.",
    )
    @click.option(
        "--heads",
        "heads_file",
        type=click.Path(dir_okay=False),
        help="Signed-heads file (default: [sendlog] heads_file).",
    )
    @click.option("--no-record", is_flag=True, help="Check only; do not append this head.")
    @click.option("--syslog", is_flag=True, help="Write the head line to syslog instead of stderr.")
    def verify_cmd(
        config_path: str | None,
        as_json: bool,
        key_file: str | None,
        heads_file: str | None,
        no_record: bool,
        syslog: bool,
    ) -> None:
        """Recompute the hash chain; exit 1 naming the first changed, deleted or inserted
        entry, or a signed head the chain contradicts (a recomputed chain).

        Writes the chain head as one JSON line to stderr (or syslog); with a key, also
        holds the chain against every signed head and appends this one, signed."""
        settings = load_for_state(config_path)
        key = _key_or_exit(key_file, settings)
        heads = HeadsFile(heads_file) if heads_file else HeadsFile(settings.heads_path)
        if heads_file and not heads.exists():
            click.echo(f"dlp: {heads_file}: signed-heads file not found", err=True)
            raise SystemExit(2)
        try:
            with open_store(settings) as store:
                report = attest(
                    store,
                    key=key,
                    heads_file=heads if key is not None else None,
                    retention_days=settings.sendlog.retention_days,
                    source="verify",
                    now=datetime.now(UTC),
                    full=True,
                    record=not no_record,
                )
        except SendLogError as exc:
            _fail(exc)
        except HeadsFileError as exc:
            click.echo(f"dlp: {exc}", err=True)
            raise SystemExit(2) from None
        res = report.chain
        assert res is not None
        check = report.heads
        if as_json:
            out: dict[str, Any] = {
                "ok": res.ok and (check is None or check.ok),
                "checked": res.checked,
                "head_seq": res.head_seq,
                "head_hash": res.head_hash,
                "purged_through": res.checkpoint.through_seq,
                "purged_total": res.checkpoint.purged_total,
                "first_bad": res.first_bad,
                "problem": res.problem,
                "message": res.message,
                "heads": check.to_json() if check is not None else None,
                "signed": report.head is not None and report.head.signed,
                "heads_line": report.recorded_line,
                "head_error": report.error,
            }
            click.echo(json.dumps(out, ensure_ascii=False))
        else:
            _print_verify(report, heads, key is not None)
        _log_head(report, syslog)
        if check is not None and check.problem == "wrong-key":
            raise SystemExit(2)
        raise SystemExit(0 if report.ok else 1)

    @log.command("keygen")
    @config_option
    @click.argument("key_file", type=click.Path(dir_okay=False))
    def keygen_cmd(config_path: str | None, key_file: str) -> None:
        """Create the HMAC key that signs the chain head ([sendlog] head_key_file).

        Run it as the user dlp runs as; the file is created readable by that user only,
        and never overwritten.  (--config is accepted like everywhere; the key is
        written where KEY_FILE says.)"""
        try:
            key = generate_key(key_file)
        except HeadKeyError as exc:
            click.echo(f"dlp: {exc}", err=True)
            raise SystemExit(2) from None
        # The absolute path: a relative one in dlp.toml is read from the directory that
        # holds config/, not from where this command ran.
        where = os.path.abspath(key_file)
        click.echo(f"head key written to {where} (mode 0600, key id {key.key_id[:16]})")
        click.echo(
            f'set [sendlog] head_key_file = "{where}" and keep a copy offline: '
            "it is needed to check the signed heads after a disaster"
        )

    @log.command("purge")
    @config_option
    @click.option(
        "--older-than-days",
        type=click.IntRange(min=1),
        help="Default: [sendlog] retention_days.",
    )
    @click.option("--dry-run", is_flag=True, help="Say what would go; change nothing.")
    @click.option("--no-quarantine", is_flag=True, help="Do not also expire held messages.")
    @click.option(
        "--key",
        "key_file",
        type=click.Path(dir_okay=False),
        help="HMAC key (default: [sendlog] head_key_file): refuse if a signed head "
        "disagrees, sign the head after the purge.",
    )
    def purge_cmd(
        config_path: str | None,
        older_than_days: int | None,
        dry_run: bool,
        no_quarantine: bool,
        key_file: str | None,
    ) -> None:
        """Delete entries past retention (keeping a verifiable checkpoint) and expired held
        mail; then log the chain head (signed with the key)."""
        settings = load_for_state(config_path)
        key = _key_or_exit(key_file, settings)
        days = older_than_days or settings.sendlog.retention_days
        now = datetime.now(UTC)
        try:
            with open_store(settings) as store:
                refused = guard_purge(store, key, settings, now)
                if refused:
                    click.echo(f"dlp: {refused}", err=True)
                    raise SystemExit(1)
                res = store.purge(days, now=now, actor=getpass.getuser(), dry_run=dry_run)
        except SendLogError as exc:
            _fail(exc)
        verb = "would purge" if dry_run else "purged"
        click.echo(f"send log: {verb} {res.purged} entries older than {_local(res.cutoff)}")
        if res.checkpoint and not dry_run:
            click.echo(
                f"checkpoint: through entry {res.checkpoint.through_seq}, "
                f"{res.checkpoint.purged_total} purged in all; recorded as entry {res.event_id}"
            )
        if dry_run:
            return
        failed = False
        if not no_quarantine:
            held, err = expire_quarantine(settings, now)
            if err:
                click.echo(f"dlp: quarantine expiry failed: {err}", err=True)
                failed = True
            elif held is not None:
                click.echo(f"quarantine: {held} expired held messages deleted")
        _log_head_to(sys.stderr)
        try:
            with open_store(settings) as store:
                report = record_head(settings, store, source="purge", now=now, key=key, purged=res)
        except SendLogError as exc:
            _fail(exc)
        if report.head is not None:
            signed = (
                f" (signed: line {report.recorded_line} of {settings.heads_path})"
                if report.recorded_line
                else ""
            )
            click.echo(f"chain head: entry {report.head.seq} {report.head.hash}{signed}")
        if report.error:
            click.echo(f"dlp: chain head not signed: {report.error}", err=True)
        if failed:
            raise SystemExit(2)
        if not report.ok:
            raise SystemExit(1)

    @log.command("stats")
    @filter_options
    @config_option
    @click.option("--by", type=click.Choice(STATS_BY), default="day", show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    def stats_cmd(config_path: str | None, by: str, as_json: bool, **kw: Any) -> None:
        """Messages, attachment sends to outside domains and findings per day / sender
        (default: the last 7 days)."""
        if not kw.get("since"):
            kw["since"] = "7d"
        flt = build_filter(kw)
        tz = local_tz()
        with _open(config_path) as store:
            rows = store.stats(flt, by=by, utc_offset_minutes=utc_offset_minutes(tz))
        if as_json:
            for r in rows:
                click.echo(json.dumps(r.to_json(), ensure_ascii=False))
            return
        t = Table(header_style="bold")
        if "day" in by:
            t.add_column("Day")
        if "sender" in by:
            t.add_column("Sender", overflow="fold")
        for c in (
            "Messages",
            "With attachments",
            "Attachments outside",
            "Findings",
            "Held",
            "Rejected",
            "Reportable",
        ):
            t.add_column(c, justify="right")
        for r in rows:
            keys = ([r.day] if "day" in by else []) + ([r.sender] if "sender" in by else [])
            t.add_row(
                *keys,
                *(
                    str(v)
                    for v in (
                        r.messages,
                        r.with_attachments,
                        r.attachments_outside,
                        r.with_findings,
                        r.held,
                        r.rejected,
                        r.reportable,
                    )
                ),
            )
        _console().print(t)
