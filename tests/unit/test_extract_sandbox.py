"""Native parsers run in a forked child: a crash, a hang or a memory blow-up is a status."""

from __future__ import annotations

import os
import time

import pytest
from extract_support import budget

from dlp.extract import sandbox
from dlp.extract.base import BudgetExceeded
from dlp.model import AttachmentStatus

pytestmark = pytest.mark.timeout(60)


def _abort() -> None:
    os.abort()  # what a Rust allocation failure or a C++ assertion does


def _hang() -> None:
    time.sleep(60)


def _over_budget() -> None:
    raise BudgetExceeded(AttachmentStatus.TOO_LARGE, "too big")


def _hog() -> int:
    return len(bytearray(64 << 30))  # 64 GB: beyond the child's address-space limit


def _plain() -> dict[str, object]:
    return {"text": "個人番号 \udc80", "n": [1, 2]}


def test_result_comes_back_as_plain_data() -> None:
    assert sandbox.run_isolated(_plain, budget=budget()) == {"text": "個人番号 \udc80", "n": [1, 2]}


def test_abort_in_the_child_is_parser_crashed() -> None:
    with pytest.raises(sandbox.ParserCrashed, match="SIGABRT"):
        sandbox.run_isolated(_abort, budget=budget())


def test_hang_is_killed_at_the_deadline() -> None:
    t0 = time.monotonic()
    with pytest.raises(BudgetExceeded) as info:
        sandbox.run_isolated(_hang, budget=budget(timeout=1))
    assert info.value.status is AttachmentStatus.TIMEOUT
    assert time.monotonic() - t0 < 5


def test_budget_exceptions_cross_the_fork() -> None:
    with pytest.raises(BudgetExceeded) as info:
        sandbox.run_isolated(_over_budget, budget=budget())
    assert (info.value.status, info.value.detail) == (AttachmentStatus.TOO_LARGE, "too big")


def test_memory_blow_up_is_contained() -> None:
    with pytest.raises(sandbox.ParserCrashed, match="MemoryError"):
        sandbox.run_isolated(_hog, budget=budget())


def test_one_flipped_byte_that_aborts_calamine_is_status_error(corpus_dir: object) -> None:
    # Found by fuzzing: this byte makes calamine ask for an absurd allocation and abort().
    from pathlib import Path

    from extract_support import run

    data = bytearray((Path(str(corpus_dir)) / "office-poi" / "spreadsheet__50298.xls").read_bytes())
    data[17928] = 0xDB
    ex = run(bytes(data), "fuzzed.xls")
    assert ex.kind == "xls"
    assert ex.status is AttachmentStatus.ERROR
    assert "parser died" in ex.detail
