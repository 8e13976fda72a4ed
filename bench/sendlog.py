"""Send-log benchmark: append latency, bulk load rate, filtered one-month
searches and a full verify over N entries (default 1 million), on SQLite and
PostgreSQL.

    .venv/bin/python bench/sendlog.py [--entries 1000000] [--backend sqlite|postgresql|both]

Entries are spread evenly over the 365 days before a fixed date; each has 1-3
recipients from a skewed set of ~3000 domains, 0-3 attachments, 2 % have My
Number findings, verdicts are mostly deliver.  The data is generated with a
fixed seed, so runs are comparable.  PostgreSQL: 127.0.0.1:5432, user
postgres, database test; a scratch schema is created and dropped.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dlp.model import (
    Action,
    AttachmentInfo,
    AttachmentStatus,
    Confidence,
    Finding,
    MyNumberSummary,
    Recipient,
    RecipientClass,
    ScanReport,
    Verdict,
)
from dlp.sendlog import LogFilter, SendLogStore, SendRecord, record_for_message

END = datetime(2026, 11, 1, tzinfo=UTC)
PG = "postgresql://postgres@127.0.0.1:5432/test"
OWN = ["city.example.lg.jp", "ward1.city.example.lg.jp", "ward2.city.example.lg.jp"]
NAMES = ["名簿", "見積書", "請求書", "議事録", "report", "data", "給与明細", "申請書", "資料"]
EXTS = [(".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (".pdf", "application/pdf"), (".docx", "application/msword"), (".csv", "text/csv"),
        (".zip", "application/zip")]  # fmt: skip


class Gen:
    def __init__(self, n: int, seed: int = 6) -> None:
        self.rng = random.Random(seed)
        self.n = n
        self.senders = [f"user{i:04d}@{OWN[i % 3]}" for i in range(2000)]
        self.domains = [f"partner{i}.co.jp" for i in range(300)] + [
            f"corp{i}.example.com" for i in range(2700)
        ]
        self.hashes = [f"{self.rng.getrandbits(256):064x}" for i in range(50_000)]

    def domain(self) -> tuple[str, RecipientClass]:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice(OWN), RecipientClass.OWN
        # skewed: low indexes are far more common, like real correspondents
        i = min(int(self.rng.paretovariate(1.2)) - 1, len(self.domains) - 1)
        d = self.domains[i if self.rng.random() < 0.7 else self.rng.randrange(len(self.domains))]
        if r > 0.995:
            return "exp.com", RecipientClass.LOOKALIKE
        return d, RecipientClass.PARTNER if d.startswith("partner") else RecipientClass.EXTERNAL

    def sha(self) -> str:
        # The same file goes out again and again (a form, a price list): skewed reuse.
        i = min(int(self.rng.paretovariate(0.8)) - 1, len(self.hashes) - 1)
        return self.hashes[i if self.rng.random() < 0.3 else self.rng.randrange(len(self.hashes))]

    def record(self, i: int) -> SendRecord:
        rng = self.rng
        when = END - timedelta(days=365) + timedelta(seconds=i * 365 * 86400 / self.n)
        rcpts = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            d, k = self.domain()
            rcpts.append(Recipient(f"r{rng.randrange(50)}@{d}", d, k))
        atts = []
        for _ in range(rng.choice((0, 1, 1, 1, 1, 2, 3))):
            ext, ctype = rng.choice(EXTS)
            name = f"{rng.choice(NAMES)}_{rng.randrange(1000):03d}{ext}"
            atts.append(
                AttachmentInfo(
                    name,
                    ctype,
                    rng.randrange(1_000, 5_000_000),
                    self.sha(),
                    AttachmentStatus.SCANNED,
                )
            )
        findings: tuple[Finding, ...] = ()
        mn = MyNumberSummary()
        action = Action.DELIVER if rng.random() < 0.93 else rng.choice(list(Action))
        if rng.random() < 0.02:
            k = rng.choice((1, 3, 12, 150))
            findings = tuple(
                Finding("mynumber", Confidence.HIGH, "attachment:x!A", "****-****-****")
                for _ in range(k)
            )
            mn = MyNumberSummary(k, k, k)
            action = Action.HOLD
        report = ScanReport(
            "<bench>",
            findings=findings,
            mynumber=mn,
            attachments=tuple(atts),
            message_id=f"<{i}.{rng.getrandbits(40):x}@mail.example.lg.jp>",
            subject=f"件名 {rng.choice(NAMES)} {i}",
            header_from="職員 <x@city.example.lg.jp>",
        )
        return record_for_message(
            audit_key=f"{i:X}",
            client_address="10.0.0.25",
            sender=rng.choice(self.senders),
            recipients=rcpts,
            report=report,
            verdict=Verdict(action, "bench"),
            next_hop_reply="250 2.0.0 Ok: queued as 4XyZ",
            when=when,
        )

    def batches(self, size: int) -> Iterator[list[SendRecord]]:
        for start in range(0, self.n, size):
            yield [self.record(i) for i in range(start, min(self.n, start + size))]


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Best of ``repeat`` wall-clock times (ms) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000, out


def fsync_probe(workdir: Path, n: int = 300) -> str:
    """The disk's own commit cost, for comparison: one 8 KB write + fdatasync."""
    import os

    path = workdir / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    lat = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 8192)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    lat.sort()
    return (
        f"| disk | 8 KB write + fdatasync ({n}x, same run) | mean {statistics.mean(lat):.2f} ms, "
        f"p50 {lat[n // 2]:.2f} ms, p99 {lat[int(n * 0.99)]:.2f} ms |"
    )


def membership_filters(gen: Gen) -> list[tuple[str, LogFilter]]:
    """The searches that go through the recipient / attachment lookup tables."""
    month = (END - timedelta(days=31), END)
    m = {"since": month[0], "until": month[1]}
    return [
        ("month + recipient domain (common)", LogFilter(**m, recipient_domain=gen.domains[0])),
        ("month + recipient domain (rare)", LogFilter(**m, recipient_domain=gen.domains[2500])),
        ("whole log + recipient domain (common)", LogFilter(recipient_domain=gen.domains[0])),
        ("month + class lookalike", LogFilter(**m, recipient_class="lookalike")),
        ("month + class external", LogFilter(**m, recipient_class="external")),
        ("month + attachment sha256", LogFilter(**m, attachment=gen.hashes[3])),
        ("whole log + attachment sha256", LogFilter(attachment=gen.hashes[3])),
        ("month + attachment sha256 (a logo: 13 %)", LogFilter(**m, attachment=gen.hashes[0])),
        ("whole log + attachment sha256 (a logo)", LogFilter(attachment=gen.hashes[0])),
        ("month + attachment name part", LogFilter(**m, attachment="給与明細_12")),
        ("whole log + sender + external class", LogFilter(sender=gen.senders[7], recipient_class="external")),
    ]  # fmt: skip


def compare_membership(kind: str, store: SendLogStore, gen: Gen) -> list[str]:
    """Correlated EXISTS vs ``e.seq IN (SELECT …)`` for each lookup-table filter, and
    what the store ships (``SqlStore.membership``), page of 50 and exact count, on the
    same data in the same run (best of 3 each, the forms taking turns twice); the
    results must be identical."""
    every = frozenset({"domain", "class", "lookalike", "sha256", "name"})
    shipped = dict(store.membership)  # type: ignore[attr-defined]
    forms = {
        "exists": {"query": frozenset(), "count": frozenset()},
        "in": {"query": every, "count": every},
        "shipped": shipped,
    }
    out = []
    try:
        for label, flt in membership_filters(gen):
            res: dict[str, tuple[float, float, list[int], int]] = {}
            for form in [*forms, *forms]:
                store.membership = forms[form]  # type: ignore[attr-defined]
                q_ms, rows = timed(lambda flt=flt: store.query(flt, limit=50))
                c_ms, cnt = timed(lambda flt=flt: store.count(flt))
                ids = [e.id for e in rows]  # type: ignore[attr-defined]
                prev = res.get(form)
                if prev is not None:
                    q_ms, c_ms = min(q_ms, prev[0]), min(c_ms, prev[1])
                res[form] = (q_ms, c_ms, ids, int(cnt))  # type: ignore[call-overload]
            same = res["exists"][2:] == res["in"][2:] == res["shipped"][2:]
            e, i, s = res["exists"], res["in"], res["shipped"]
            out.append(
                f"| {kind} | {label} | {e[0]:.1f} / {i[0]:.1f} / {s[0]:.1f} "
                f"| {e[1]:.1f} / {i[1]:.1f} / **{s[1]:.1f}** "
                f"| {e[3]:,} | {'yes' if same else 'NO'} |"
            )
    finally:
        store.membership = shipped  # type: ignore[attr-defined]
    return out


def run(
    kind: str,
    n: int,
    workdir: Path,
    append_only: int | None = None,
    membership_only: bool = False,
) -> list[str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store: SendLogStore
    if kind == "sqlite":
        from dlp.sendlog.sqlite_store import SqliteStore

        store = SqliteStore(workdir / "bench.db")
    else:
        import psycopg

        from dlp.sendlog.pg_store import PostgresStore

        with psycopg.connect(PG, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        store = PostgresStore(f"{PG}?options=-csearch_path%3D{schema}")
    out = []
    try:
        gen = Gen(n)
        t0 = time.perf_counter()
        for batch in gen.batches(5000):
            store.append_many(batch)
        load = time.perf_counter() - t0
        out.append(f"| {kind} | bulk load (append_many, 5000/tx) | {n / load:,.0f} entries/s |")
        store.run("ANALYZE")  # type: ignore[attr-defined]
        if membership_only:
            return [*out, "", *MEMBERSHIP_HEAD, *compare_membership(kind, store, gen)]

        # One message, one transaction, durably committed: what the gateway pays.
        # Each append is followed by a bare 8 KB write + fdatasync on the same
        # disk, so a busy disk shows up in both columns of the same run.
        import os

        lat, sync = [], []
        probe = workdir / f"probe.{kind}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for i in range(append_only or 500):
                rec = gen.record(n + i)
                t = time.perf_counter()
                store.append(rec)
                lat.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                os.write(fd, b"x" * 8192)
                os.fdatasync(fd)
                sync.append((time.perf_counter() - t) * 1000)
        finally:
            os.close(fd)
            probe.unlink()
        lat.sort()
        sync.sort()
        k = len(lat)
        if append_only:
            out.append(f"| {kind} | preloaded {n:,} entries | |")
        out.append(
            f"| {kind} | append one entry (committed, {k}x) | mean {statistics.mean(lat):.2f} ms, "
            f"p50 {lat[k // 2]:.2f} ms, p99 {lat[int(k * 0.99)]:.2f} ms |"
        )
        out.append(
            f"| {kind} | interleaved 8 KB write + fdatasync | mean {statistics.mean(sync):.2f} ms, "
            f"p50 {sync[k // 2]:.2f} ms, p99 {sync[int(k * 0.99)]:.2f} ms |"
        )
        if append_only:
            return out
        month = (END - timedelta(days=31), END)
        common_dom = gen.domains[0]
        rare_dom = gen.domains[2500]
        filters = [
            ("month, page of 50 (no filter)", LogFilter(since=month[0], until=month[1])),
            ("month + recipient domain (common)", LogFilter(since=month[0], until=month[1], recipient_domain=common_dom)),
            ("month + recipient domain (rare)", LogFilter(since=month[0], until=month[1], recipient_domain=rare_dom)),
            ("month + sender", LogFilter(since=month[0], until=month[1], sender=gen.senders[7])),
            ("month + sender domain", LogFilter(since=month[0], until=month[1], sender="@" + OWN[1])),
            ("month + has findings + verdict hold", LogFilter(since=month[0], until=month[1], has_findings=True, verdict="hold")),
            ("month + class lookalike", LogFilter(since=month[0], until=month[1], recipient_class="lookalike")),
            ("month + attachment sha256", LogFilter(since=month[0], until=month[1], attachment=gen.hashes[3])),
            ("month + attachment name part", LogFilter(since=month[0], until=month[1], attachment="給与明細_12")),
            ("whole log + attachment sha256", LogFilter(attachment=gen.hashes[3])),
            ("whole log + sender + external class", LogFilter(sender=gen.senders[7], recipient_class="external")),
        ]  # fmt: skip
        for label, flt in filters:
            q_ms, rows = timed(lambda flt=flt: store.query(flt, limit=50))
            c_ms, cnt = timed(lambda flt=flt: store.count(flt))
            out.append(
                f"| {kind} | search: {label} | first 50 in {q_ms:.0f} ms; "
                f"count {cnt:,} in {c_ms:.0f} ms |"
            )
        s_ms, rows = timed(
            lambda: store.stats(LogFilter(since=month[0], until=month[1]), by="day+sender"), 1
        )
        out.append(
            f"| {kind} | stats: one month by day and sender | {s_ms:.0f} ms ({len(rows):,} rows) |"
        )  # type: ignore[arg-type]
        v_ms, res = timed(store.verify, 1)
        out.append(
            f"| {kind} | verify the whole chain ({res.checked:,} entries) | {v_ms / 1000:.1f} s, "  # type: ignore[attr-defined]
            f"{res.checked / (v_ms / 1000):,.0f} entries/s |"  # type: ignore[attr-defined]
        )
        return out
    finally:
        store.close()
        if kind == "postgresql":
            import psycopg

            with psycopg.connect(PG, autocommit=True) as c:
                c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


MEMBERSHIP_HEAD = [
    "| store | search | page of 50, ms: EXISTS / IN / shipped | count, ms: EXISTS / IN / shipped "
    "| count | same |",
    "|---|---|---|---|---|---|",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument(
        "--append-only",
        type=int,
        metavar="N",
        help="only time N single appends on a store preloaded with --entries entries",
    )
    ap.add_argument(
        "--membership",
        action="store_true",
        help="only compare EXISTS with IN (SELECT …) for the lookup-table filters",
    )
    args = ap.parse_args()
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    import os

    print(
        f"send log, {args.entries:,} entries over 365 days; 'month' = the last 31 days; "
        f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
    )
    print("| store | measurement | result |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dlp-bench-") as tmp:
        print(fsync_probe(Path(tmp)), flush=True)
        for kind in kinds:
            for line in run(kind, args.entries, Path(tmp), args.append_only, args.membership):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
