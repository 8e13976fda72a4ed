#!/usr/bin/env python3
"""The floor a Python relay with the gateway's round trips cannot go below; no scan, no log, no policy.

    python bench/relay_floor.py --port P --next-hop Q [--procs N]   (bench/gateway.py --floor)

Listens on 127.0.0.1:P, relays to 127.0.0.1:Q with dlp/smtp/relay.py's round trips (MAIL
written with the first RCPT, early DATA, the message in one write, pooled next-hop
connections), on ``asyncio.Protocol`` callbacks under uvloop, one process per core.
No limits, no checks, no retry: a next hop that fails gives the client a 451.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections import deque
from collections.abc import Callable
from typing import cast

import uvloop

Done = Callable[[list[bytes]], None]  # gets the replies to one write, multi-line ones joined
LOST = b"451 4.4.1 next hop lost\r\n"
NEXT_HOP = ("127.0.0.1", 0)
POOL: list[Hop] = []  # idle next-hop connections of this process


class Hop(asyncio.Protocol):
    """A next-hop connection: banner, EHLO, then a FIFO of (reply count, callback)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.alive, self.ready, self.buf, self.reply = True, False, b"", b""
        self.got: list[bytes] = []
        self.waiters: deque[tuple[int, Done]] = deque([(1, self._banner)])
        self.queued: list[tuple[bytes, int, Done]] = []  # until EHLO is answered

    def send(self, data: bytes, replies: int, done: Done) -> None:
        if not self.alive:
            done([LOST] * replies)
        elif not self.ready or self.transport is None:
            self.queued.append((data, replies, done))
        else:
            self.transport.write(data)
            self.waiters.append((replies, done))

    def _banner(self, _replies: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.write(b"EHLO floor\r\n")
            self.waiters.append((1, self._ehlo))

    def _ehlo(self, _replies: list[bytes]) -> None:
        self.ready, queued, self.queued = True, self.queued, []
        for item in queued:
            self.send(*item)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf, start = self.buf + data, 0
        while end := buf.find(b"\n", start) + 1:
            line, start = buf[start:end], end
            self.reply += line
            if line[3:4] != b"-":
                self.got.append(self.reply)
                self.reply = b""
                if self.waiters and len(self.got) == self.waiters[0][0]:
                    got, self.got = self.got, []
                    self.waiters.popleft()[1](got)
        self.buf = buf[start:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive, self.transport = False, None
        if self in POOL:
            POOL.remove(self)
        owed = [*self.waiters, *((n, done) for _, n, done in self.queued)]
        self.waiters.clear()
        self.queued.clear()
        for n, done in owed:
            done([LOST] * n)


def take() -> Hop:
    while POOL:
        if (hop := POOL.pop()).alive:
            return hop
    hop = Hop()
    loop = asyncio.get_running_loop()
    task = loop.create_task(loop.create_connection(lambda: hop, *NEXT_HOP))
    task.add_done_callback(lambda t: _connected(hop, t))
    return hop


def _connected(hop: Hop, task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        hop.connection_lost(None)  # refused: what waits for it gets LOST


class Session(asyncio.Protocol):
    """One client: commands run in order; RCPT and the message's end wait for the next hop."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf, self.scanned = bytearray(), 0
        self.out: list[bytes] = []  # replies held while pipelined commands are read
        self.hop: Hop | None = None
        self.mail = b""  # the MAIL line, until it goes with the first RCPT
        self.opened, self.rcpts, self.refused = False, 0, b""
        self.busy = self.in_data = False  # busy: waiting for the next hop
        self.started: bytes | None = None  # the next hop's reply to our early DATA
        self.body = b""  # the message, if it came before that reply

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"220 floor ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._run()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport, hop, self.hop = None, self.hop, None
        if hop is None or not hop.alive:
            return
        if self.busy or self.in_data or len(POOL) >= 64:
            if hop.transport is not None:
                hop.transport.close()  # mid-transaction: the next hop discards it
            return
        if self.opened:
            hop.send(b"RSET\r\n", 1, lambda _r: None)
        POOL.append(hop)

    def _run(self) -> None:
        buf = self.buf
        while not self.busy and self.transport is not None:
            if self.in_data:
                # The CRLF after DATA counts as the one before the dot: ".\r\n" is empty.
                end = 3 if buf[:3] == b".\r\n" else buf.find(b"\r\n.\r\n", self.scanned) + 5
                if end == 4:  # not there yet (-1 + 5)
                    self.scanned = max(len(buf) - 4, 0)
                    break
                with memoryview(buf) as view:
                    self.body = bytes(view[:end])
                del buf[:end]
                self.in_data, self.busy = False, True
                if self.started is not None:
                    self._send_body()
            elif end := buf.find(b"\n") + 1:
                line = bytes(buf[:end])
                del buf[:end]
                self._command(line, line[:4].upper())
            else:
                break
        if self.out and not self.busy and self.transport is not None:
            self.transport.write(b"".join(self.out))
            self.out.clear()

    def _command(self, line: bytes, verb: bytes) -> None:
        if verb == b"RCPT" and (self.mail or self.opened) and not self.refused:
            self.busy, hop = True, self._hop()
            if self.mail:
                group, self.mail, self.opened = self.mail + line, b"", True
                hop.send(group, 2, self._first_rcpt)
            else:
                hop.send(line, 1, self._rcpt)
        elif verb == b"RCPT":
            self.out.append(self.refused or b"503 5.5.1 Error: need MAIL command\r\n")
        elif verb == b"MAIL":
            self._reset()
            self.mail = line
            self._hop()  # connecting while the client sends RCPT
            self.out.append(b"250 2.1.0 Ok\r\n")
        elif verb == b"DATA" and self.rcpts:
            self.in_data, self.scanned, self.started = True, 0, None
            self._hop().send(b"DATA\r\n", 1, self._data_started)
            self.out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"DATA":
            self.out.append(b"554 5.5.1 Error: no valid recipients\r\n")
        elif verb == b"EHLO":
            self._reset()
            self.out.append(b"250-floor\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif verb in (b"HELO", b"RSET", b"NOOP"):
            if verb != b"NOOP":
                self._reset()
            self.out.append(b"250 2.0.0 Ok\r\n")
        elif verb == b"QUIT" and self.transport is not None:
            self.transport.write(b"".join([*self.out, b"221 2.0.0 Bye\r\n"]))
            self.out.clear()
            self.transport.close()
            self.connection_lost(None)  # the next hop back to the pool now
        else:
            self.out.append(b"502 5.5.2 Error: command not recognized\r\n")

    def _hop(self) -> Hop:
        if self.hop is None or not self.hop.alive:
            self.hop = take()
        return self.hop

    def _reset(self) -> None:
        if self.opened and self.hop is not None:
            self.hop.send(b"RSET\r\n", 1, lambda _r: None)
        self.mail, self.opened, self.rcpts, self.refused = b"", False, 0, b""

    def _answer(self, reply: bytes) -> None:
        self.out.append(reply)
        self.busy = False
        self._run()

    def _first_rcpt(self, replies: list[bytes]) -> None:
        if replies[0][:1] != b"2":  # MAIL refused: the answer to every RCPT
            self.opened, self.refused = False, replies[0]
            return self._answer(replies[0])
        self._rcpt(replies[1:])

    def _rcpt(self, replies: list[bytes]) -> None:
        self.rcpts += replies[0][:1] == b"2"
        self._answer(replies[0])

    def _data_started(self, replies: list[bytes]) -> None:
        self.started = replies[0]
        if self.busy:  # the message is here already
            self._send_body()

    def _send_body(self) -> None:
        body, self.body = self.body, b""
        if self.started is None or self.started[:3] != b"354" or self.hop is None:
            return self._answer(self.started or LOST)  # refused: still in the transaction
        self.hop.send(body, 1, self._final)

    def _final(self, replies: list[bytes]) -> None:
        self.opened, self.rcpts = False, 0
        self._answer(replies[0])


def serve(port: int) -> None:
    loop = uvloop.new_event_loop()
    loop.run_until_complete(loop.create_server(Session, "127.0.0.1", port, reuse_port=True))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()


def main() -> None:
    global NEXT_HOP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--next-hop", type=int, required=True)
    ap.add_argument("--procs", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    NEXT_HOP = ("127.0.0.1", args.next_hop)
    kids = []
    for _ in range(args.procs - 1):
        if (pid := os.fork()) == 0:
            serve(args.port)
            os._exit(0)
        kids.append(pid)
    try:
        serve(args.port)
    finally:
        for pid in kids:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
