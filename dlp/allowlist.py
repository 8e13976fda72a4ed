"""The allowlist file administrators keep: own domains, partners, checked externals.

Format (``config/allowed_domains.txt``)::

    # comments start with '#', anywhere on a line
    [own]                      the organisation's own mail domains
    example.lg.jp
    [partner]                  partner organisations
    payroll.example.co.jp  mynumber   # entitled to receive My Numbers
    [external]                 checked: real, unrelated, never a lookalike
    exp.com
    [freemail]                 personal mailboxes, added to the shipped free-mail list
    mail.example-isp.ne.jp

One domain a line; a subdomain of a listed own/partner domain is trusted too.
The only tag is ``mynumber``, allowed on partner lines.  Loading is strict: a
problem raises ``AllowlistError`` naming the file, the line and what is wrong,
because a silently skipped line is a partner whose mail is suddenly refused,
or worse, a typo that trusts a stranger.

``save_allowlist`` rewrites the file atomically (temporary file in the same
directory, fsync, rename, fsync of the directory) and keeps every comment and
the order of the lines that stay.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from dlp.detect.lookalike import LOOKALIKE, TRUSTED, ProtectedSet, check, normalise

OWN = "own"
PARTNER = "partner"
EXTERNAL = "external"
FREEMAIL = "freemail"
SECTIONS = (OWN, PARTNER, EXTERNAL, FREEMAIL)
TAG_MYNUMBER = "mynumber"


class AllowlistError(Exception):
    """A problem with the allowlist file, phrased for an administrator."""

    def __init__(self, path: str | os.PathLike[str], line: int, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Allowlist:
    own: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()
    mynumber_partners: frozenset[str] = frozenset()
    """Partners (a subset of ``partners``) entitled to receive My Numbers."""
    external: tuple[str, ...] = ()
    """Domains checked by an administrator: real, unrelated, never a lookalike."""
    freemail: tuple[str, ...] = ()
    """Personal-mailbox domains added to the shipped free-mail list (``dlp.freemail``)."""

    def section_of(self, domain: str) -> str | None:
        for name, items in (
            (OWN, self.own),
            (PARTNER, self.partners),
            (EXTERNAL, self.external),
            (FREEMAIL, self.freemail),
        ):
            if domain in items:
                return name
        return None

    def with_entry(self, section: str, domain: str, *, mynumber: bool = False) -> Allowlist:
        """A copy with ``domain`` in ``section`` (moved there if listed elsewhere;
        kept in place, with the tag updated, if already there)."""
        if self.section_of(domain) == section:
            mn = self.mynumber_partners - {domain}
            return replace(self, mynumber_partners=mn | {domain} if mynumber else mn)
        base = self.without(domain)
        mn = base.mynumber_partners | {domain} if mynumber else base.mynumber_partners
        if section == OWN:
            return replace(base, own=(*base.own, domain), mynumber_partners=mn)
        if section == PARTNER:
            return replace(base, partners=(*base.partners, domain), mynumber_partners=mn)
        if section == EXTERNAL:
            return replace(base, external=(*base.external, domain), mynumber_partners=mn)
        if section == FREEMAIL:
            return replace(base, freemail=(*base.freemail, domain), mynumber_partners=mn)
        raise ValueError(f"unknown section {section!r}")

    def without(self, domain: str) -> Allowlist:
        return Allowlist(
            own=tuple(d for d in self.own if d != domain),
            partners=tuple(d for d in self.partners if d != domain),
            mynumber_partners=self.mynumber_partners - {domain},
            external=tuple(d for d in self.external if d != domain),
            freemail=tuple(d for d in self.freemail if d != domain),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "own": list(self.own),
            "partner": [
                {"domain": d, "mynumber": d in self.mynumber_partners} for d in self.partners
            ],
            "external": list(self.external),
            "freemail": list(self.freemail),
        }


def validate_domain(text: str) -> str:
    """The canonical (A-label, lower-case) form of an allowlist entry, or ValueError."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty domain")
    if "@" in raw:
        raise ValueError(f"{raw!r} is an address; list its domain only")
    if "*" in raw:
        raise ValueError(f"{raw!r}: no wildcards; a listed domain covers its subdomains already")
    if any(ch.isspace() for ch in raw) or "/" in raw or ":" in raw:
        raise ValueError(f"{raw!r} is not a domain name")
    name = normalise(raw)
    if not name.valid:
        raise ValueError(f"{raw!r}: {name.problem}")
    if any(label.startswith("-") or label.endswith("-") for label in name.ascii.split(".")):
        raise ValueError(f"{raw!r} is not a valid host name (a label starts or ends with '-')")
    if not name.registrable:
        raise ValueError(
            f"{raw!r} is a public suffix, not an organisation's domain (it would trust everyone under it)"
        )
    if len(name.ascii) > 253:
        raise ValueError(f"{raw!r} is longer than 253 characters")
    return name.ascii


def entry_warnings(domain: str, section: str, current: Allowlist, builtin: bool) -> list[str]:
    """Reasons to hesitate before listing ``domain`` (canonical) in ``section``.

    The worst allowlist entry is a typo: it trusts a stranger.  So an entry
    that is itself a lookalike of a protected domain, one that is already
    trusted, and a public mail service (trusting all of its users) are flagged.
    """
    others = current.without(domain)
    ps = ProtectedSet.build(
        own=others.own, partners=others.partners, builtin=builtin, external=others.external
    )
    v = check(domain, ps)
    if section in (EXTERNAL, FREEMAIL):
        if v.verdict == TRUSTED:
            return [f"{domain} is trusted ({v.reason}); [{section}] would not change that"]
        return []
    if v.verdict == LOOKALIKE:
        return [
            f"{domain} looks like {v.resembles} ({v.technique}, distance {v.distance}); "
            f"a typo here would trust a stranger"
        ]
    if v.verdict == TRUSTED:
        return [f"{domain} is already trusted: it {v.reason}"]
    labels = domain.split(".")
    if any(".".join(labels[i:]) in ps.builtin for i in range(len(labels))):
        return [f"{domain} is a public mail service: listing it trusts every one of its users"]
    return []


# ---------------------------------------------------------------------------
# Parsing (kept line-exact so a save can preserve everything it does not change)


@dataclass(frozen=True)
class _Line:
    raw: str
    section: str | None = None
    domain: str | None = None
    mynumber: bool = False
    comment: str = ""
    """The trailing ``# ...`` of an entry line, kept when the entry is rewritten."""


@dataclass(frozen=True)
class _Parsed:
    allowlist: Allowlist
    lines: tuple[_Line, ...] = field(default=())


def _has_sections(text: str) -> bool:
    return any(line.partition("#")[0].strip().startswith("[") for line in text.splitlines())


def _parse(text: str, source: str, plain_as_partner: bool = False) -> _Parsed:
    lines: list[_Line] = []
    # A plain list (one domain a line, no [section] at all) is what many admins
    # already keep; where accepted, every entry is a partner.
    section: str | None = PARTNER if plain_as_partner and not _has_sections(text) else None
    seen: dict[str, int] = {}
    own: list[str] = []
    partners: list[str] = []
    external: list[str] = []
    freemail: list[str] = []
    mynumber: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        body, hash_, comment = raw.partition("#")
        body = body.strip()
        if not body:
            lines.append(_Line(raw, section))
            continue
        if body.startswith("["):
            if not body.endswith("]") or body[1:-1].strip().lower() not in SECTIONS:
                raise AllowlistError(
                    source,
                    number,
                    f"unknown section {body!r}; expected one of "
                    + ", ".join(f"[{s}]" for s in SECTIONS),
                )
            section = body[1:-1].strip().lower()
            lines.append(_Line(raw, section))
            continue
        if section is None:
            raise AllowlistError(
                source, number, f"{body!r} is outside a section; put it under [own] or [partner]"
            )
        word, *tags = body.split()
        try:
            domain = validate_domain(word)
        except ValueError as exc:
            raise AllowlistError(source, number, str(exc)) from None
        has_mynumber = False
        for tag in tags:
            if tag.lower() != TAG_MYNUMBER:
                raise AllowlistError(
                    source, number, f"unknown tag {tag!r} after {word}; the only tag is mynumber"
                )
            if section != PARTNER:
                raise AllowlistError(
                    source, number, f"the mynumber tag is for [partner] lines, not [{section}]"
                )
            has_mynumber = True
        if domain in seen:
            raise AllowlistError(
                source, number, f"{domain} is already listed on line {seen[domain]}"
            )
        seen[domain] = number
        {OWN: own, PARTNER: partners, EXTERNAL: external, FREEMAIL: freemail}[section].append(
            domain
        )
        if has_mynumber:
            mynumber.add(domain)
        lines.append(_Line(raw, section, domain, has_mynumber, (hash_ + comment).strip()))
    allowlist = Allowlist(
        tuple(own), tuple(partners), frozenset(mynumber), tuple(external), tuple(freemail)
    )
    return _Parsed(allowlist, tuple(lines))


def parse_allowlist(text: str, source: str = "<allowlist>") -> Allowlist:
    return _parse(text, source).allowlist


def _read(path: Path) -> str:
    try:
        # utf-8-sig: a byte-order mark (Windows Notepad) is not a domain on line 1
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AllowlistError(path, 0, "file not found") from None
    except UnicodeDecodeError as exc:
        raise AllowlistError(path, 0, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise AllowlistError(path, 0, f"cannot read: {exc.strerror or exc}") from None


def load_allowlist(path: str | os.PathLike[str]) -> Allowlist:
    p = Path(path)
    return _parse(_read(p), str(p)).allowlist


def load_allowlist_or_plain(path: str | os.PathLike[str]) -> Allowlist:
    """Like ``load_allowlist``, but a plain list of domains (one a line, no
    section header anywhere) is accepted too, every entry a partner.  Used by
    ``dlp domains check --allowlist`` so an existing list can be tried as is."""
    p = Path(path)
    return _parse(_read(p), str(p), plain_as_partner=True).allowlist


# ---------------------------------------------------------------------------
# Saving

_HEADER = """\
# Allowlist of recipient domains (one per line, '#' starts a comment).
#
# [own]       the organisation's own mail domains and their subdomains
# [partner]   partner organisations; add "mynumber" after a domain when that
#             partner is entitled to receive My Numbers (e.g. a payroll office)
# [external]  domains you checked: real, unrelated organisations that merely
#             resemble a protected domain (never flagged as lookalikes)
# [freemail]  personal-mailbox domains (free mail, carriers, ISPs) beyond the
#             shipped list; recipients there are of class "freemail"
#
# Edit with `dlp allowlist add|remove DOMAIN`; a running gateway reloads it.
"""


def _entry_line(domain: str, mynumber: bool, comment: str) -> str:
    line = f"{domain}  {TAG_MYNUMBER}" if mynumber else domain
    return f"{line}  {comment}" if comment else line


def render(existing: str, allowlist: Allowlist) -> str:
    """``allowlist`` as file text, keeping comments and order from ``existing``."""
    parsed = _parse(existing, "<existing>") if existing.strip() else _Parsed(Allowlist(), ())
    wanted = {
        OWN: list(allowlist.own),
        PARTNER: list(allowlist.partners),
        EXTERNAL: list(allowlist.external),
        FREEMAIL: list(allowlist.freemail),
    }
    placed: set[str] = set()
    out: list[str] = [] if parsed.lines else _HEADER.splitlines()
    # index after which new entries of a section go: its last entry line, else its header
    insert_at: dict[str, int] = {}
    for line in parsed.lines:
        if line.domain is None:
            out.append(line.raw)
            if line.section and line.raw.strip().startswith("["):
                insert_at[line.section] = len(out)
            continue
        assert line.section is not None
        if line.domain not in wanted[line.section]:
            continue  # removed, or moved to another section
        mn = line.domain in allowlist.mynumber_partners
        out.append(line.raw if mn == line.mynumber else _entry_line(line.domain, mn, line.comment))
        placed.add(line.domain)
        insert_at[line.section] = len(out)
    for section in SECTIONS:
        new = [d for d in wanted[section] if d not in placed]
        if not new:
            continue
        rendered = [_entry_line(d, d in allowlist.mynumber_partners, "") for d in new]
        if section not in insert_at:
            if out and out[-1].strip():
                out.append("")
            out.append(f"[{section}]")
            insert_at[section] = len(out)
        at = insert_at[section]
        out[at:at] = rendered
        shift = len(rendered)
        for key, value in insert_at.items():
            if value >= at:
                insert_at[key] = value + shift
    return "\n".join(out) + "\n"


def save_allowlist(path: str | os.PathLike[str], allowlist: Allowlist) -> None:
    """Write ``allowlist`` to ``path`` atomically, preserving comments."""
    p = Path(path)
    try:
        existing = p.read_text(encoding="utf-8-sig")
        mode = p.stat().st_mode & 0o7777
    except FileNotFoundError:
        existing, mode = "", 0o644
    text = render(existing, allowlist)
    parse_allowlist(text, str(p))  # never write a file the gateway would refuse
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(p.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # A sidecar lock: the file itself is replaced by rename, so locking it
    # would not serialise two concurrent `dlp allowlist add`.
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_allowlist(
    path: str | os.PathLike[str], change: Callable[[Allowlist], Allowlist]
) -> tuple[Allowlist, Allowlist]:
    """Load, apply ``change`` and save under a lock; returns (before, after)."""
    p = Path(path)
    with _locked(p):
        before = load_allowlist(p) if p.exists() else Allowlist()
        after = change(before)
        if after != before:
            save_allowlist(p, after)
        return before, after
