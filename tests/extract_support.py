"""Helpers for the extractor tests (tests/unit/test_extract_*.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from dlp.detect.mynumber import build_detector
from dlp.extract import registry
from dlp.extract.base import Budget, Extracted
from dlp.model import AttachmentStatus, Confidence, TextChunk

# Valid My Numbers (check digit verified in test_extract_registry.py with python-stdnum).
N1 = "123456789018"
N2 = "621498320257"


def budget(**over: float) -> Budget:
    values: dict[str, float] = {
        "max_total_bytes": 200_000_000,
        "max_file_bytes": 50_000_000,
        "max_members": 2000,
        "max_depth": 5,
        "max_ratio": 200,
        "timeout": 30.0,
    }
    values.update(over)
    return Budget(
        max_total_bytes=int(values["max_total_bytes"]),
        max_file_bytes=int(values["max_file_bytes"]),
        max_members=int(values["max_members"]),
        max_depth=int(values["max_depth"]),
        max_ratio=int(values["max_ratio"]),
        deadline=time.monotonic() + values["timeout"],
    )


def run(data: bytes, name: str = "file", b: Budget | None = None) -> Extracted:
    return registry.extract(data, name, f"attachment:{name}", b or budget())


def text_of(ex: Extracted) -> str:
    return "\n".join(c.text for c in ex.chunks)


def digits_of(ex: Extracted) -> str:
    """All text with separators removed, to look for a number written as 1234-5678-9018."""
    return "".join(ch for ch in text_of(ex) if ch.isdigit())


def numbers_found(chunks: tuple[TextChunk, ...] | list[TextChunk]) -> dict[str, Confidence]:
    """The detector's verdict per number (highest confidence seen)."""
    det = build_detector()
    out: dict[str, Confidence] = {}
    for chunk in chunks:
        for m in det.find(chunk):
            prev = out.get(m.digits)
            if prev is None or m.confidence.rank > prev.rank:
                out[m.digits] = m.confidence
    return out


@dataclass(frozen=True)
class Node:
    path: str
    result: Extracted


def walk(data: bytes, name: str, b: Budget, depth: int = 0) -> list[Node]:
    """Recurse into members the way the scanner does (depth-limited), for container tests."""
    if depth > b.max_depth:
        return [Node(name, Extracted(kind="?", status=AttachmentStatus.TOO_DEEP))]
    ex = registry.extract(data, name, f"attachment:{name}", b)
    nodes = [Node(name, ex)]
    for member in ex.members:
        nodes.extend(walk(member.data, f"{name}/{member.name}", b, depth + 1))
    return nodes
