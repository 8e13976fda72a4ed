"""`dlp incident report ENTRY_ID...`: the PPC report draft from the send log, and
`dlp incident summary`: the team's periodic summary mail (issue 14).

Prints JSON (for scripts), Markdown or docx (to hand on) to stdout or ``-o FILE``.
Each draft is recorded in the send log (event ``incident_report``: who, which
entries).  Exit 0 on success, 2 on a problem (missing entry, send log unreachable).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import date

import click

from dlp.cli.common import config_option, load_for_state
from dlp.sendlog.store import SendLogError

FORMATS = ("json", "md", "docx")


def _discovered(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return os.environ.get("SUDO_USER") or user


def register(group: click.Group) -> None:
    @group.group("incident")
    def incident() -> None:
        """Leak-report drafts for the Personal Information Protection Commission."""

    @incident.command("report")
    @config_option
    @click.option(
        "--discovered",
        callback=_discovered,
        default=None,
        metavar="YYYY-MM-DD",
        help="The day the organisation learnt of it (default: today); the deadlines count from it.",
    )
    @click.option(
        "--wrongful-purpose",
        is_flag=True,
        help="The leak was for a wrongful purpose: the final report is due in 60 days, not 30.",
    )
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True)
    @click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True),
        default=None,
        help="Write to FILE instead of stdout (docx to a terminal is refused).",
    )
    @click.argument("entry_ids", nargs=-1, required=True, type=int)
    def report_cmd(
        config_path: str | None,
        discovered: date | None,
        wrongful_purpose: bool,
        fmt: str,
        output: str | None,
        entry_ids: tuple[int, ...],
    ) -> None:
        """Draft the report for the message entries ENTRY_ID... (ids from `dlp log list`).

        The nine items of the report, ③ the number of persons (an upper bound over
        several messages), the 速報 and 確報 deadlines and whether the 番号法 (>100)
        and 個人情報保護法 (>1,000) thresholds are passed; ⑤–⑨ are left to fill in.
        """
        from dlp.incident import render
        from dlp.incident.draft import draft
        from dlp.incident.report import ReportError
        from dlp.sendlog import open_store
        from dlp.sendlog.timespec import local_tz

        settings = load_for_state(config_path)
        if fmt == "docx" and output is None and sys.stdout.isatty():
            click.echo("dlp: docx is binary; give -o FILE (or redirect stdout)", err=True)
            raise SystemExit(2)
        try:
            with open_store(settings) as store:
                report = draft(
                    store,
                    entry_ids,
                    discovered=discovered,
                    wrongful_purpose=wrongful_purpose,
                    actor=_actor(),
                    fmt=fmt,
                    tz=local_tz(),
                )
        except ReportError as exc:
            click.echo(f"dlp: {exc}", err=True)
            raise SystemExit(2) from None
        except SendLogError as exc:
            click.echo(f"dlp: send log error: {exc}", err=True)
            raise SystemExit(2) from None
        if fmt == "json":
            data = (json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n").encode()
        elif fmt == "md":
            data = render.markdown(report).encode("utf-8")
        else:
            data = render.docx(report)
        if output:
            with open(output, "wb") as fh:
                fh.write(data)
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()

    @incident.command("summary")
    @config_option
    @click.option(
        "--period",
        type=click.Choice(["daily", "weekly"]),
        default=None,
        help="The period covered, ending now (default: [report] schedule).",
    )
    @click.option(
        "--send",
        is_flag=True,
        help="Mail it to [report] to through the next hop (otherwise print it).",
    )
    def summary_cmd(config_path: str | None, period: str | None, send: bool) -> None:
        """The summary for the information-management team: counts by verdict and class,
        held mail waiting, reportable-scale messages, flagged senders, the chain head.

        Run by deploy/systemd/dlp-summary.timer with --send.  Exit 2 when it could not
        be built or sent.
        """
        from datetime import UTC, datetime

        from dlp.holdqueue.store import open_quarantine
        from dlp.incident import summary
        from dlp.notify.notices import Notice
        from dlp.sendlog import open_store
        from dlp.sendlog.timespec import local_tz, utc_offset_minutes
        from dlp.smtp.senderloop import send_notices

        settings = load_for_state(config_path)
        rs = settings.report
        if send and not rs.to:
            click.echo("dlp: [report] to is empty: nobody to send the summary to", err=True)
            raise SystemExit(2)
        try:
            held: int | None = open_quarantine(settings).depth()
        except Exception:  # the summary still goes out, saying the queue was unreadable
            held = None
        tz = local_tz()
        url = rs.console_url or f"http://{settings.console.listen}"
        try:
            with open_store(settings) as store:
                s = summary.build(
                    store,
                    until=datetime.now(UTC),
                    period=period or rs.schedule,
                    held_waiting=held,
                    console_url=url,
                    utc_offset_minutes=utc_offset_minutes(tz),
                )
        except SendLogError as exc:
            click.echo(f"dlp: send log error: {exc}", err=True)
            raise SystemExit(2) from None
        if not send:
            subject, body = summary.text(s, tz)
            click.echo(subject)
            click.echo(body, nl=False)
            return
        raw = summary.message(s, sender=settings.notify.from_, to=rs.to, tz=tz)
        import asyncio

        try:
            sent = asyncio.run(send_notices(settings, [Notice(to=a, raw=raw) for a in rs.to]))
        except Exception as exc:
            click.echo(f"dlp: summary not sent: {type(exc).__name__}: {exc}", err=True)
            raise SystemExit(2) from None
        missing = [a for a in rs.to if a not in sent]
        if missing:
            click.echo(f"dlp: summary not accepted for {', '.join(missing)}", err=True)
            raise SystemExit(2)
        click.echo(f"summary sent to {', '.join(sent)}")
