"""Envelope addresses that some mail system would route elsewhere than their domain.

The gateway classifies a recipient by the domain after its last ``@`` (own,
partner, external, lookalike) and policy trusts that class.  Older routing
syntaxes make a mail system deliver to a *different* host than that domain:

* the percent hack, ``user%evil.example@own.lg.jp``: a Postfix with
  ``allow_percent_hack = yes`` (the default) for which ``own.lg.jp`` is a local
  domain resolves it to ``user@evil.example`` (trivial-rewrite(8));
* the bang path, ``evil.example!user@own.lg.jp``: ``swap_bangpath = yes`` (the
  default) turns ``site!user`` into ``user@site`` the same way;
* a quoted local part holding an ``@`` (``"user@evil.example"@own.lg.jp``),
  which a system that unquotes and re-parses sends to the inner domain;
* a source route (``<@relay.example:user@own.lg.jp>``, RFC 5321 4.1.2
  ``obs-route``), a request to pass the mail through other hosts first.

Mail classified as going to an own domain but delivered outside is exactly the
leak the gateway exists to stop, so such addresses are refused: each form has a
plain ``user@domain`` equivalent that a sender can use instead.

Lookalikes of the routing characters count too: the check runs on the address
after NFKC normalisation (full-width ``％ ！ ＠``, small ``﹪ ﹗ ﹫``), which
is what a system that "normalises" Unicode addresses would see, plus the few
confusables NFKC leaves alone (Arabic percent ``٪``, Latin click ``ǃ``).  An
internationalised domain given in ACE form (``xn--…``) is decoded and checked
the same way.  Percent-encoding (``%40``) needs no rule of its own: it has a
``%``.
"""

from __future__ import annotations

import codecs
import contextlib
import unicodedata
from dataclasses import dataclass
from email import errors as email_errors
from email._header_value_parser import get_angle_addr

from dlp.model import Action, Verdict

ROUTING_RULE = "routing-address"
"""The send log's rule name for a recipient refused here."""

# Confusables of the routing characters that NFKC does not fold (UTS #39
# confusables.txt).  Nobody's mailbox legitimately contains them.
_CONFUSABLES = {
    "\u066a": "%",  # ARABIC PERCENT SIGN
    "\u01c3": "!",  # LATIN LETTER RETROFLEX CLICK
}
_CONFUSABLES_TABLE = str.maketrans(_CONFUSABLES)


@dataclass(frozen=True, slots=True)
class RoutingProblem:
    """Why an address was refused: for the SMTP reply and the logs."""

    kind: str
    """percent | bang | quoted-at | wide-at | source-route: stable, for logs and tests."""
    ja: str
    en: str


_PERCENT = RoutingProblem(
    "percent",
    "「%」を含む宛先は別のサーバーへ転送される恐れがあります",
    "a '%' in an address can make a mail server forward it to another domain",
)
_BANG = RoutingProblem(
    "bang",
    "「!」を含む宛先（UUCP経路）は別のサーバーへ転送される恐れがあります",
    "a '!' (UUCP bang path) in an address can route it to another host",
)
_AT = RoutingProblem(
    "quoted-at",
    "宛先のユーザー名の部分に「@」が含まれています",
    "the part before the domain contains another '@'",
)
_WIDE_AT = RoutingProblem(
    "wide-at",
    "アドレスの「@」が全角（＠）などになっています。半角の「@」で入力してください",
    "the '@' of the address is a full-width '＠' or another look-alike; type a plain '@'",
)
SOURCE_ROUTE = RoutingProblem(
    "source-route",
    "経路指定（@中継先:）付きの宛先は受け付けません",
    "source-routed addresses (@relay:) are not accepted",
)


def routing_problem(address: str) -> RoutingProblem | None:
    """What makes ``address`` (as parsed from MAIL or RCPT) route elsewhere, or None.

    ``address`` is what is relayed: the server's address parse keeps the quotes of a
    quoted local part that needs them and unescapes quoted pairs, so
    ``"a\\@b"@c`` arrives here as ``"a@b"@c``.
    """
    text = _folded(address)
    local, at, domain = text.rpartition("@")
    if not at:
        return None  # no domain at all: the next hop's syntax check answers that
    if "@" not in address:
        # u＠exp.com (typed with the input method in full-width mode): to the gateway
        # and the next hop a local name without a domain, to a reader an address at
        # exp.com.  Neither is what the sender meant to happen.
        return _WIDE_AT
    text = local + "@" + _decoded_domain(domain)
    if "%" in text:
        return _PERCENT
    if "!" in text:
        return _BANG
    if "@" in local or "@" in text[len(local) + 1 :]:
        return _AT
    return None


def recipient_refusal(problem: RoutingProblem) -> Verdict:
    """The RCPT answer: 550 5.1.3 (RFC 3463: bad destination mailbox address syntax).

    The address itself is not echoed: the MTA's bounce quotes this text, and the
    sender knows what they typed; the text says what was wrong and what to do.
    """
    return Verdict(
        action=Action.REJECT,
        rule=ROUTING_RULE,
        reasons=(f"recipient address with routing syntax ({problem.kind})",),
        smtp_code=550,
        smtp_message=(
            f"5.1.3 宛先を受け付けません: {problem.ja}。"
            "経路指定のない user@domain の形の宛先で送り直してください"
            f" / Recipient refused: {problem.en}; send again to a plain user@domain address"
        ),
    )


def sender_refusal(problem: RoutingProblem) -> str:
    """The MAIL answer: 550 5.1.7 (RFC 3463: bad sender's mailbox address syntax).

    Refused too, because what goes back to the sender can carry the message:
    a non-delivery report or DSN with ``RET=FULL`` quotes it whole, and would
    follow the routing syntax outside.
    """
    return (
        f"550 5.1.7 送信者アドレスを受け付けません: {problem.ja}。"
        "経路指定のない user@domain の形のアドレスを使ってください"
        f" / Sender refused: {problem.en}; use a plain user@domain address"
    )


def has_source_route(arg: str) -> bool:
    """Whether a MAIL/RCPT argument (``<@a,@b:user@c> PARAMS``) carries a source route.

    The server's address parse (the email package's) accepts the RFC 5321
    ``obs-route`` and silently drops it (as RFC 5321 appendix C allows); the
    gateway refuses it instead, so the sender
    learns the route was not honoured.  Only called for arguments the fast
    parser in ``server.py`` did not take (those never hold a route).
    """
    text = arg.lstrip()
    if not text.startswith("<"):
        return False
    try:
        token, _rest = get_angle_addr(text)
    except (email_errors.HeaderParseError, IndexError, ValueError):
        return False
    return any(getattr(t, "token_type", "") == "obs-route" for t in token)


def _folded(text: str) -> str:
    if text.isascii():
        return text  # NFKC leaves ASCII as it is, and every confusable is non-ASCII
    return unicodedata.normalize("NFKC", text).translate(_CONFUSABLES_TABLE)


def _decoded_domain(domain: str) -> str:
    """The domain with each ACE label (``xn--…``) decoded and folded."""
    labels = []
    for label in domain.split("."):
        if label[:4].lower() == "xn--":
            # Not valid ACE: checked as written.
            with contextlib.suppress(UnicodeError, ValueError):
                label = _folded(codecs.decode(label[4:].encode("ascii"), "punycode"))
        labels.append(label)
    return ".".join(labels)
