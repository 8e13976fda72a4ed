"""Every file of the shared third-party corpus scans without an exception, and none
reports a ``high`` My Number (the corpus holds none; it does hold checksum-valid
timestamps and IDs that a careless detector would flag)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.config import ScanSettings
from dlp.extract import registry
from dlp.model import Confidence
from dlp.scanner import scan_file, scan_message

pytestmark = pytest.mark.timeout(180)


def corpus_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name not in ("README.md", "SOURCES.md")
    )


def test_whole_corpus_scans_cleanly(corpus_dir: Path) -> None:
    files = corpus_files(corpus_dir)
    assert len(files) > 800
    scan = ScanSettings(timeout_seconds=60)
    high: list[str] = []
    errors: list[str] = []
    messages = 0
    for path in files:
        data = path.read_bytes()
        if registry.sniff(data, path.name) == "message":
            messages += 1
            report = scan_message(data, scan, str(path))
        else:
            report = scan_file(data, path.name, scan, str(path))
        if report.error:
            errors.append(f"{path.relative_to(corpus_dir)}: {report.error}")
        high += [
            f"{path.relative_to(corpus_dir)} {f.location} {f.reason}"
            for f in report.findings
            if f.detector == "mynumber" and f.confidence is Confidence.HIGH
        ]
        assert report.mynumber.high == 0
    assert errors == []
    assert high == []
    assert messages > 400  # the sniffer recognised the mail part of the corpus
