"""Review-console benchmark: the send-log page with filters over N entries
(default 1 million), served by uvicorn on loopback and fetched over real HTTP.

    .venv/bin/python bench/console.py [--entries 1000000] [--db PATH] [--repeat 7]

The log is generated with the send-log benchmark's generator (bench/sendlog.py:
a year of entries, skewed domains and senders, 2 % with My Number findings,
fixed seed) into a SQLite file, kept under bench/out/ and reused by later runs of
the same size.  For every page the table gives the median and worst wall time of
a signed-in GET (HTML fully rendered and received), and - measured in the same
run, same filter - what the store alone takes for the page's two queries
(count + one page of rows), so the rendering cost is visible.  Goal: < 300 ms.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from argon2 import PasswordHasher

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from sendlog import OWN, Gen  # noqa: E402  (the send-log benchmark's generator)

from dlp.config import PathSettings, SendLogSettings, Settings  # noqa: E402
from dlp.console.app import create_app  # noqa: E402
from dlp.console.filters import LogQuery  # noqa: E402
from dlp.console.fmt import jst_day_start  # noqa: E402
from dlp.console.pages import dashboard as dash  # noqa: E402
from dlp.console.services import Services  # noqa: E402
from dlp.console.sorting import MAX_CONSOLE_SORT, is_column_sort  # noqa: E402
from dlp.console.users import Role, UserStore, users_db_path  # noqa: E402
from dlp.sendlog.sqlite_store import SqliteStore  # noqa: E402
from dlp.sendlog.store import LogFilter  # noqa: E402

PASSWORD = "bench password 123"


def build(db: Path, n: int) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    if db.exists():
        with SqliteStore(db) as store:
            have = store.count()
        if have >= n:
            print(f"reusing {db} ({have:,} entries)", file=sys.stderr)
            return
        db.unlink()
    t0 = time.perf_counter()
    with SqliteStore(db) as store:
        for i, batch in enumerate(Gen(n).batches(5000)):
            store.append_many(batch)
            if i % 20 == 0:
                print(f"  generated {min(n, (i + 1) * 5000):,}/{n:,}", file=sys.stderr, flush=True)
        store.run("ANALYZE")
    print(f"built {db} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def pages(gen: Gen) -> list[tuple[str, str]]:
    month = {"since": "2026-10-01", "until": "2026-10-31"}
    return [
        ("newest 50, no filter", "/log"),
        ("page 200 of the whole log", "/log?page=200"),
        ("oldest first", "/log?sort=oldest"),
        ("one month", "/log?" + _q(month)),
        ("month + sender", "/log?" + _q({**month, "sender": gen.senders[7]})),
        ("month + sender domain", "/log?" + _q({**month, "sender": "@" + OWN[1]})),
        ("month + recipient domain (common)", "/log?" + _q({**month, "rdomain": gen.domains[0]})),
        ("month + recipient domain (rare)", "/log?" + _q({**month, "rdomain": gen.domains[2500]})),
        ("month + class lookalike", "/log?" + _q({**month, "rclass": "lookalike"})),
        ("month + findings + verdict hold", "/log?" + _q({**month, "findings": "yes", "verdict": "hold"})),
        ("month + findings + hold, sorted by sender", "/log?" + _q({**month, "findings": "yes", "verdict": "hold", "sort": "sender"})),
        ("month, sorted by sender (too many: time order)", "/log?" + _q({**month, "sort": "sender"})),
        ("month + attachment name part", "/log?" + _q({**month, "attachment": "給与明細_12"})),
        ("whole log + attachment sha256", "/log?" + _q({"attachment": gen.hashes[3]})),
        ("whole log + class external, 200 a page", "/log?" + _q({"rclass": "external", "per": "200"})),
        ("whole year + findings", "/log?" + _q({"since": "2025-11-01", "until": "2026-10-31", "findings": "yes"})),
        ("entry detail", f"/log/{gen.n // 2}"),
        ("dashboard, 30 days", "/?days=30&end=2026-10-31"),
        ("dashboard, 90 days", "/?days=90&end=2026-10-31"),
    ]  # fmt: skip


def _q(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    db = args.db or HERE / "out" / f"console-{args.entries}.db"
    build(db, args.entries)

    root = db.parent / "console-state"
    settings = Settings(
        paths=PathSettings(var_dir=str(root)),
        sendlog=SendLogSettings(sqlite_path=str(db)),
        base_dir=str(root),
    )
    users = UserStore(users_db_path(root), hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    if users.get("bench") is None:
        users.add("bench", PASSWORD, Role.ADMIN)
    services = Services(settings, users=users)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services), host="127.0.0.1", port=0, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    gen = Gen(args.entries)
    store = services.sendlog()
    rows = []
    try:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as c:
            token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
            r = c.post(
                "/login", data={"csrf_token": token.group(1), "name": "bench", "password": PASSWORD}
            )
            assert r.status_code == 303, r.text
            for label, url in pages(gen):
                t0 = time.perf_counter()
                first = c.get(url)
                first_ms = (time.perf_counter() - t0) * 1000
                assert first.status_code == 200, (url, first.status_code, first.text[:300])
                page_ms = timed(lambda url=url: c.get(url).raise_for_status(), args.repeat)
                total = re.search(r'<span id="total">([\d,]+)', first.text)
                store_ms = ""
                if url.startswith("/log?") or url == "/log":
                    q = LogQuery.parse(_params(url))
                    flt = q.to_filter()

                    def direct(q: LogQuery = q, flt: LogFilter = flt) -> None:
                        n = store.count(flt)
                        if is_column_sort(q.sort) and n <= MAX_CONSOLE_SORT:
                            store.query(flt, limit=n)  # what the console reads to sort
                        else:
                            sort = "newest" if is_column_sort(q.sort) else q.sort
                            store.query(flt, limit=q.per, offset=(q.page - 1) * q.per, sort=sort)

                    store_ms = f"{statistics.median(timed(direct, args.repeat)):.0f} ms"
                elif url.startswith("/?"):
                    # the three aggregates alone, uncached
                    qs = parse_qs(urlsplit(url).query)
                    end = date.fromisoformat(qs["end"][0])
                    start = end - timedelta(days=int(qs["days"][0]) - 1)
                    flt = LogFilter(
                        since=jst_day_start(start), until=jst_day_start(end + timedelta(days=1))
                    )

                    def sequential(flt: LogFilter = flt) -> None:
                        for fn in (dash._per_day, dash._top_senders, dash._lookalikes):
                            fn(store, flt)

                    seq_ms = statistics.median(timed(sequential, args.repeat))
                    store_ms = f"{seq_ms:.0f} ms (uncached)"
                rows.append(
                    f"| {label} | {total.group(1) if total else '—'} | {first_ms:.0f} ms | "
                    f"{statistics.median(page_ms):.0f} ms | {max(page_ms):.0f} ms | "
                    f"{store_ms or '—'} | {len(first.content) // 1024} KB |"
                )
                print(rows[-1], file=sys.stderr, flush=True)
    finally:
        server.should_exit = True
        thread.join(10)
        services.close()
    print(
        f"console send-log page over {args.entries:,} entries (SQLite), "
        f"{args.repeat} signed-in GETs each over loopback HTTP; 'store' = count + page query alone\n"
    )
    print(
        "| page | matching entries | first GET | median of the next | worst | "
        "store alone (same filter) | page size |"
    )
    print("|---|---|---|---|---|---|---|")
    for line in rows:
        print(line)
    return 0


def _params(url: str):  # type: ignore[no-untyped-def]
    from starlette.datastructures import QueryParams

    return QueryParams({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})


if __name__ == "__main__":
    sys.exit(main())
