"""Free-mail and carrier domains: where personal mailboxes live (issue 14).

The shipped list (``dlp/data/freemail_domains.txt``) holds the free-mail services,
mobile carriers and consumer ISPs people in Japan use; the allowlist file's
``[freemail]`` section adds an organisation's own finds.  A domain is free-mail when
it or one of its parents is listed (``biz.ezweb.ne.jp`` under ``ezweb.ne.jp``).

Only an otherwise ``external`` domain becomes ``freemail``: a domain the allowlist
trusts stays own/partner, and a lookalike of gmail.com stays a lookalike (it is not
Google's, whatever it resembles).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

DATA_FILE = "freemail_domains.txt"


@cache
def shipped() -> frozenset[str]:
    """The domains in the shipped list (read once per process)."""
    text = resources.files("dlp").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    out = set()
    for line in text.splitlines():
        body = line.partition("#")[0].strip().lower()
        if body:
            out.add(body.rstrip("."))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class FreemailSet:
    domains: frozenset[str]

    @classmethod
    def build(cls, extra: Iterable[str] = ()) -> FreemailSet:
        return cls(shipped() | {d.lower().rstrip(".") for d in extra})

    def __contains__(self, domain: object) -> bool:
        if not isinstance(domain, str):
            return False
        labels = domain.lower().rstrip(".").split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels) - 1))
