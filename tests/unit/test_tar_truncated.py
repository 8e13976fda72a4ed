"""A tar cut short inside a member still yields the members before it."""

from __future__ import annotations

import io
import tarfile

from dlp.config import ScanSettings
from dlp.extract import registry
from dlp.extract.base import Budget
from dlp.model import AttachmentStatus


def test_truncated_tar_keeps_earlier_members() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, body in (("a.txt", b"first member\n"), ("b.txt", b"x" * 5000)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    data = buf.getvalue()[: 3 * 512 + 2000]  # header a, a's block, header b, part of b
    result = registry.extract(
        data, "t.tar", "attachment:t.tar", Budget.from_settings(ScanSettings())
    )
    assert result.kind == "tar"
    assert result.status is AttachmentStatus.ERROR
    assert [(m.name, m.data) for m in result.members] == [("a.txt", b"first member\n")]
    assert "b.txt (truncated)" in result.detail
