"""The submitting mail client: plain smtplib, keeping every reply for the assertions."""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from support import digitless_token

_QUEUED = re.compile(r"queued as ([0-9A-Za-z]+)")


@dataclass(frozen=True)
class Submission:
    mail_reply: tuple[int, str]
    rcpt_replies: dict[str, tuple[int, str]]
    data_reply: tuple[int, str] | None
    """None when no recipient was accepted, so DATA was never sent."""

    @property
    def queue_id(self) -> str:
        """Postfix's queue id from ``250 2.0.0 Ok: queued as ID``."""
        assert self.data_reply is not None, f"no DATA reply: {self}"
        m = _QUEUED.search(self.data_reply[1])
        assert m, f"not queued: {self.data_reply}"
        return m.group(1)


def marker() -> str:
    """A unique token each test puts in its Subject to find its own mail in the sink."""
    return f"e2e-{digitless_token(12)}"


def build_message(
    *,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    attachment: tuple[str, bytes, str] | None = None,
    cte_8bit: bool = False,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="city.example.lg.jp")
    msg.set_content(body, charset="utf-8", cte="8bit" if cte_8bit else None)
    if attachment is not None:
        name, data, ctype = attachment
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    out_policy = policy.SMTPUTF8 if cte_8bit else policy.SMTP
    return msg.as_bytes(policy=out_policy)


def submit(
    port: int,
    sender: str,
    recipients: list[str],
    data: bytes,
    *,
    smtputf8: bool = False,
    rcpt_options: list[str] | None = None,
    timeout: float = 60.0,
) -> Submission:
    """One SMTP transaction; every reply is returned instead of raised."""
    with smtplib.SMTP(
        "127.0.0.1", port, local_hostname="client.dlp-e2e.test", timeout=timeout
    ) as s:
        s.ehlo()
        options = ["BODY=8BITMIME"]
        if smtputf8:
            options.append("SMTPUTF8")
        code, text = s.mail(sender, options)
        mail_reply = (code, text.decode("utf-8", "replace"))
        rcpt_replies: dict[str, tuple[int, str]] = {}
        accepted = 0
        if code == 250:
            for rcpt in recipients:
                rc, rt = s.rcpt(rcpt, rcpt_options or [])
                rcpt_replies[rcpt] = (rc, rt.decode("utf-8", "replace"))
                accepted += rc in (250, 251)
        data_reply: tuple[int, str] | None = None
        if accepted:
            try:
                dc, dt = s.data(data)
                data_reply = (dc, dt.decode("utf-8", "replace"))
            except smtplib.SMTPDataError as exc:
                err = exc.smtp_error
                err_text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
                data_reply = (exc.smtp_code, err_text)
        else:
            s.rset()
        return Submission(mail_reply, rcpt_replies, data_reply)
