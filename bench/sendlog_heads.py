"""What signing the send log's chain head costs at a retention run (issue 11).

    .venv/bin/python bench/sendlog_heads.py [--entries 200000] [--daily 10000]
        [--lines 2000] [--backend sqlite|postgresql|both]

Loads ``--entries`` generated entries (bench/sendlog.py's generator), signs a head
(the previous day's retention run), appends ``--daily`` more (one day's mail) and
times, on the same store in the same run:

* the retention run's head step (``attest``, full=False): hold every signed head
  against the chain and verify only the entries since the newest signed head;
* the same with ``--lines`` lines in the heads file (five years of daily runs
  plus verifies);
* a whole-chain verify (what signing would cost without the incremental start).

Prints a markdown table.  PostgreSQL: 127.0.0.1:5432, user postgres, database
test; a scratch schema is created and dropped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sendlog import PG, Gen

from dlp.sendlog import SendLogStore
from dlp.sendlog.chain import canonical_json
from dlp.sendlog.heads import HeadKey, HeadsFile, SignedHead, attest, generate_key, sign

NOW = datetime(2026, 11, 2, tzinfo=UTC)


def _open(kind: str, workdir: Path) -> tuple[SendLogStore, str]:
    if kind == "sqlite":
        from dlp.sendlog.sqlite_store import SqliteStore

        return SqliteStore(workdir / "sendlog.db"), ""
    import psycopg

    from dlp.sendlog.pg_store import PostgresStore

    schema = f"bench_heads_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    return PostgresStore(f"{PG}?options=-csearch_path%3D{schema}"), schema


def run(kind: str, entries: int, daily: int, lines: int) -> list[str]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store, schema = _open(kind, work)
        try:
            gen = Gen(entries + daily)

            def load(lo: int, hi: int) -> None:
                for start in range(lo, hi, 5000):
                    store.append_many([gen.record(i) for i in range(start, min(hi, start + 5000))])

            load(0, entries)
            key = generate_key(work / "head.key")
            heads = HeadsFile(work / "heads.jsonl")

            def step(full: bool) -> tuple[float, str]:
                t = time.perf_counter()
                rep = attest(
                    store,
                    key=key,
                    heads_file=heads,
                    retention_days=1825,
                    source="retention",
                    now=NOW,
                    full=full,
                )
                assert rep.ok and rep.recorded_line, rep.error
                return time.perf_counter() - t, f"verified from {rep.verified_from}"

            step(False)  # yesterday's run: the first head is signed after a whole verify
            load(entries, entries + daily)  # one day's mail
            t_inc, how = step(False)
            out.append(
                f"| {kind} | retention head step, {entries + daily:,} entries, {daily:,} since "
                f"the last signed head, 2 heads-file lines | {t_inc:.2f} s ({how}) |"
            )
            # a heads file of `lines` lines naming heads spread over the chain, as five
            # years of daily runs would (signed here directly: same format, same key)
            _fill_heads(store, heads, key, lines)
            t_lines, how = step(False)
            out.append(
                f"| {kind} | same step, {lines:,} heads-file lines spread over the chain, nothing "
                f"new to verify (holding the heads against the chain) | {t_lines:.2f} s ({how}) |"
            )
            t_full, _ = step(True)
            out.append(
                f"| {kind} | `dlp log verify --key` step (whole chain + heads) | {t_full:.2f} s |"
            )
        finally:
            store.close()
            if schema:
                import psycopg

                with psycopg.connect(PG, autocommit=True) as c:
                    c.execute(f"DROP SCHEMA {schema} CASCADE")
    return out


def _fill_heads(store: SendLogStore, heads: HeadsFile, key: HeadKey, lines: int) -> None:
    with store.chain_snapshot() as reader:
        state = reader.state()
        assert state is not None
        want = [max(1, state.head_seq * (i + 1) // lines) for i in range(lines)]
        marks = reader.marks(want)
    text, prev = [], ""
    for seq in want:
        m = marks[seq]
        head = SignedHead(seq, m.hash, seq, 0, "0" * 64, m.time, m.time, "retention", "bench")
        signed = sign(head, key, prev)
        prev = signed.hmac
        text.append(canonical_json(signed.to_json()))
    heads.path.write_text("\n".join(text) + "\n")


def heads_count(heads: HeadsFile) -> int:
    return len(heads.read())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--daily", type=int, default=10_000)
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    a = ap.parse_args()
    kinds = ["sqlite", "postgresql"] if a.backend == "both" else [a.backend]
    print("| store | what | time |\n|---|---|---|")
    for kind in kinds:
        for row in run(kind, a.entries, a.daily, a.lines):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
