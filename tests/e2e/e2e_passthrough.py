"""A minimal, correct pass-through content filter, run as a subprocess by test_plumbing.py.

It stands where the gateway goes, to prove the Postfix + sink plumbing on its own: if the
plumbing test fails, the fault is in the test instance, not in ``dlp serve``.  It follows
the two rules of an after-queue filter that aiosmtpd's stock Proxy breaks: answer 250
only after the next hop did, and turn every failure into a 4xx (Postfix bounces on a
5xx and forgets the mail on a 250).

    python e2e_passthrough.py LISTEN_PORT NEXT_HOP_PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session


class PassThrough:
    def __init__(self, next_hop_port: int) -> None:
        self.next_hop_port = next_hop_port

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        try:
            _errors, reply = await aiosmtplib.send(
                envelope.original_content or b"",
                sender=sender,
                recipients=list(envelope.rcpt_tos),
                hostname="127.0.0.1",
                port=self.next_hop_port,
                mail_options=list(envelope.mail_options),
                start_tls=False,
                use_tls=False,
                timeout=30,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return f"{exc.code} {exc.message}"
        except Exception as exc:
            return f"451 4.4.1 next hop unavailable ({type(exc).__name__})"
        return f"250 2.0.0 Ok: relayed ({reply})"

    async def handle_exception(self, error: Exception) -> str:
        return f"451 4.3.0 filter error ({type(error).__name__})"


async def main(listen_port: int, next_hop_port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = PassThrough(next_hop_port)
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, decode_data=False, data_size_limit=30_000_000),
        host="127.0.0.1",
        port=listen_port,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
