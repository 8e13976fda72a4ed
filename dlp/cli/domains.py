"""`dlp domains check` and `dlp allowlist list|add|remove`.

``domains check`` is how an administrator tunes the allowlist before deploying:
it prints the verdict the gateway would give each domain.  Exit status like
grep: 0 no lookalike, 1 at least one lookalike, 2 error.

``allowlist add`` refuses, unless forced or confirmed, an entry that itself
looks like a protected domain: a typo in the allowlist trusts a stranger.
Every change is written atomically and recorded in the send log (events
``allowlist_add`` / ``allowlist_remove``) when the send log can be opened.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import click

from dlp.allowlist import (
    EXTERNAL,
    FREEMAIL,
    OWN,
    PARTNER,
    Allowlist,
    AllowlistError,
    entry_warnings,
    load_allowlist,
    load_allowlist_or_plain,
    update_allowlist,
    validate_domain,
)
from dlp.cli.common import config_option, load_for_state, load_or_exit
from dlp.config import Settings
from dlp.detect.lookalike import EXTERNAL as EXTERNAL_VERDICT
from dlp.detect.lookalike import LOOKALIKE, check
from dlp.freemail import FreemailSet
from dlp.recipients import protected_set


def _load_list(path: Path, plain: bool = False) -> Allowlist:
    try:
        return load_allowlist_or_plain(path) if plain else load_allowlist(path)
    except AllowlistError as exc:
        click.echo(f"dlp: allowlist error: {exc}", err=True)
        raise SystemExit(2) from None


def _canonical(raw: str) -> str:
    """The domain as the allowlist stores it; exit 2 on a malformed one."""
    try:
        return validate_domain(raw)
    except ValueError as exc:
        click.echo(f"dlp: {exc}", err=True)
        raise SystemExit(2) from None


def _update(path: Path, change: Callable[[Allowlist], Allowlist]) -> None:
    """Apply ``change`` under the allowlist's lock; exit 2 if the file could not be written."""
    try:
        update_allowlist(path, change)
    except PermissionError as exc:
        click.echo(
            f"dlp: allowlist not changed: {exc}. The user running dlp must be able to write "
            f"{path.parent} (the file is replaced atomically, beside a lock file): see "
            "deploy/systemd/README.md, 'Who runs dlp allowlist add/remove'",
            err=True,
        )
        raise SystemExit(2) from None
    except (AllowlistError, OSError) as exc:
        click.echo(f"dlp: allowlist not changed: {exc}", err=True)
        raise SystemExit(2) from None


def _inputs(domains: tuple[str, ...]) -> Iterator[str]:
    if domains == ("-",):
        for line in sys.stdin:
            yield line.rstrip("\r\n")
    else:
        yield from domains


# ---------------------------------------------------------------------------
# dlp domains check


@click.group("domains")
def domains_group() -> None:
    """Check recipient domains against the allowlist and the lookalike detector."""


@domains_group.command("check")
@config_option
@click.option(
    "--allowlist",
    "allowlist_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Allowlist file to test (default: [domains] allowlist from the configuration); "
    "a plain list of domains, one a line with no [section], is read as partners.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON Lines).")
@click.option(
    "--builtin/--no-builtin",
    default=None,
    help="Protect the built-in mail providers (default: [domains] builtin_protected).",
)
@click.argument("domains", nargs=-1, required=True)
def check_cmd(
    config_path: str | None,
    allowlist_path: str | None,
    as_json: bool,
    builtin: bool | None,
    domains: tuple[str, ...],
) -> None:
    """Print the verdict for each DOMAIN (or address); '-' reads one a line from stdin.

    Verdicts: trusted (own or partner domain, or a subdomain of one), external,
    lookalike (with the domain it resembles, the technique and the distance).
    """
    settings = load_or_exit(config_path)
    allowlist = _load_list(_resolve(settings, allowlist_path), plain=True)
    use_builtin = settings.domains.builtin_protected if builtin is None else builtin
    ps = protected_set(allowlist, use_builtin)
    freemail = FreemailSet.build(allowlist.freemail)
    any_lookalike = False
    out = sys.stdout
    for item in _inputs(domains):
        v = check(item, ps)
        if v.verdict == EXTERNAL_VERDICT and v.domain in freemail:
            # the gateway's class for it is "freemail" (a kind of external; dlp.freemail)
            v = dataclasses.replace(v, freemail=True)
        any_lookalike |= v.verdict == LOOKALIKE
        if as_json:
            obj = {"input": item, **v.to_json()}
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        else:
            extra = f"\t{v.explanation}" if v.explanation else ""
            verdict = f"{v.verdict} (freemail)" if v.freemail else v.verdict
            out.write(f"{item}\t{verdict}\t{v.reason}{extra}\n")
    out.flush()
    raise SystemExit(1 if any_lookalike else 0)


# ---------------------------------------------------------------------------
# dlp allowlist


@click.group("allowlist")
def allowlist_group() -> None:
    """List or edit the allowlist ([own], [partner], [external] domains)."""


def _path_option(f):  # type: ignore[no-untyped-def]
    return click.option(
        "--allowlist",
        "allowlist_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Allowlist file (default: [domains] allowlist from the configuration).",
    )(f)


def _resolve(settings: Settings, allowlist_path: str | None) -> Path:
    return Path(allowlist_path) if allowlist_path else settings.allowlist_path


@allowlist_group.command("list")
@config_option
@_path_option
@click.option("--json", "as_json", is_flag=True, help="Print the lists as one JSON object.")
def list_cmd(config_path: str | None, allowlist_path: str | None, as_json: bool) -> None:
    """Print the own, partner and external domains."""
    settings = load_or_exit(config_path)
    allowlist = _load_list(_resolve(settings, allowlist_path))
    if as_json:
        click.echo(json.dumps(allowlist.to_json(), ensure_ascii=False))
        return
    for domain in allowlist.own:
        click.echo(f"own\t{domain}")
    for domain in allowlist.partners:
        tag = "\tmynumber" if domain in allowlist.mynumber_partners else ""
        click.echo(f"partner\t{domain}{tag}")
    for domain in allowlist.external:
        click.echo(f"external\t{domain}")
    for domain in allowlist.freemail:
        click.echo(f"freemail\t{domain}")


@allowlist_group.command("add")
@config_option
@_path_option
@click.option("--own", "section", flag_value=OWN, help="Add to [own].")
@click.option(
    "--partner", "section", flag_value=PARTNER, default=True, help="Add to [partner] (default)."
)
@click.option(
    "--external",
    "section",
    flag_value=EXTERNAL,
    help="Add to [external]: checked, unrelated, never a lookalike.",
)
@click.option(
    "--freemail",
    "section",
    flag_value=FREEMAIL,
    help="Add to [freemail]: a personal-mailbox domain beyond the shipped list.",
)
@click.option(
    "--mynumber", is_flag=True, help="Partner is entitled to receive My Numbers (partner only)."
)
@click.option("--force", is_flag=True, help="Add even when the domain looks like a protected one.")
@click.option("--comment", default="", help="Why (recorded in the send log).")
@click.argument("domains", nargs=-1, required=True)
def add_cmd(
    config_path: str | None,
    allowlist_path: str | None,
    section: str,
    mynumber: bool,
    force: bool,
    comment: str,
    domains: tuple[str, ...],
) -> None:
    """Add DOMAIN(s).  Refuses a domain that looks like a protected one unless
    --force is given or you confirm at the terminal."""
    settings = load_for_state(config_path)
    path = _resolve(settings, allowlist_path)
    if mynumber and section != PARTNER:
        raise click.UsageError("--mynumber applies to partners only")
    canonical = [_canonical(raw) for raw in domains]
    current = _load_list(path) if path.exists() else Allowlist()
    builtin = settings.domains.builtin_protected
    accepted: list[str] = []
    seen_problems: dict[str, list[str]] = {}
    for domain in canonical:
        listed = current.section_of(domain)
        if listed == section and (domain in current.mynumber_partners) == mynumber:
            click.echo(f"{domain}: already listed in [{section}]")
            continue
        # Against the list as this command leaves it: exp.com beside exp.co.jp added
        # by the same command is a lookalike of it, said now (not "changed meanwhile"
        # when the list is written).
        ahead = current
        for d in accepted:
            ahead = ahead.with_entry(section, d, mynumber=mynumber)
        problems = entry_warnings(domain, section, ahead, builtin)
        seen_problems[domain] = problems
        if problems and not force:
            for p in problems:
                click.echo(f"warning: {p}", err=True)
            if not (sys.stdin.isatty() and click.confirm(f"Add {domain} anyway?", err=True)):
                click.echo(f"{domain}: not added (use --force to add it anyway)", err=True)
                raise SystemExit(1)
        elif problems:
            for p in problems:
                click.echo(f"warning: {p} (added anyway: --force)", err=True)
        accepted.append(domain)

    raced: list[str] = []

    def change(al: Allowlist) -> Allowlist:
        # Under the lock: someone may have changed the file since the checks
        # above.  A new reason to hesitate that nobody confirmed skips the entry.
        raced.clear()
        for d in accepted:
            if not force and entry_warnings(d, section, al, builtin) != seen_problems[d]:
                raced.append(d)
                continue
            al = al.with_entry(section, d, mynumber=mynumber)
        return al

    if not accepted:
        return
    _update(path, change)
    for d in raced:
        click.echo(
            f"{d}: not added: the allowlist changed meanwhile; run the command again", err=True
        )
    accepted = [d for d in accepted if d not in raced]
    for d in accepted:
        tag = " (mynumber)" if mynumber else ""
        click.echo(f"{d}: added to [{section}]{tag}")
    if accepted:
        _record(settings, "allowlist_add", accepted, section, comment)
    if raced:
        raise SystemExit(1)


@allowlist_group.command("remove")
@config_option
@_path_option
@click.option("--comment", default="", help="Why (recorded in the send log).")
@click.argument("domains", nargs=-1, required=True)
def remove_cmd(
    config_path: str | None, allowlist_path: str | None, comment: str, domains: tuple[str, ...]
) -> None:
    """Remove DOMAIN(s) from whichever section lists them."""
    settings = load_for_state(config_path)
    path = _resolve(settings, allowlist_path)
    current = _load_list(path)
    targets: list[str] = []
    for raw in domains:
        domain = _canonical(raw)
        if current.section_of(domain) is None:
            click.echo(f"dlp: {domain} is not in the allowlist", err=True)
            raise SystemExit(1)
        targets.append(domain)

    def change(al: Allowlist) -> Allowlist:
        for d in targets:
            al = al.without(d)
        return al

    _update(path, change)
    for d in targets:
        click.echo(f"{d}: removed")
    if current.own and not change(current).own:
        click.echo(
            "dlp: warning: the allowlist now lists no [own] domain: every sender counts as "
            "outside (lookalike recipients are held instead of refused, senders get no "
            "notices); add yours back with `dlp allowlist add --own DOMAIN`",
            err=True,
        )
    _record(settings, "allowlist_remove", targets, "", comment)


def _record(
    settings: Settings, event: str, domains: Iterable[str], section: str, comment: str
) -> None:
    """Best effort: the change is made; say so plainly if it could not be logged."""
    actor = os.environ.get("SUDO_USER") or _user()
    try:
        from dlp.sendlog import open_store
        from dlp.sendlog.record import record_for_event

        store = open_store(settings)
        try:
            for d in domains:
                detail: dict[str, str] = {"domain": d}
                if section:
                    detail["section"] = section
                store.append(
                    record_for_event(event=event, actor=actor, comment=comment, detail=detail)
                )
        finally:
            store.close()
    except Exception as exc:  # the edit itself succeeded; never fail it afterwards
        click.echo(f"warning: change made but not recorded in the send log: {exc}", err=True)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def register(group: click.Group) -> None:
    """Add this family's commands to the top-level group."""
    group.add_command(domains_group)
    group.add_command(allowlist_group)
