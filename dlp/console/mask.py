"""The console's last guard against rendering a My Number (the filter keeps none, and
the console must show none).

Entries are scrubbed before they are logged, but the console also shows things that
never went through the send log (a held message's subject, a user's comment being
echoed back) and entries written before the scrubber knew a shape, so every value a
template prints (and every value quoted into a link) passes through ``scrub_display``:
the same ``scrub`` as everywhere, which masks a number in any shape - one digit per
cell, full-width, invisible characters inside - and leaves other digits readable.
"""

from __future__ import annotations

import re

from dlp.sendlog.redact import scrub

_DIGEST = re.compile(r"[0-9a-f]{64}")


def scrub_display(text: str) -> str:
    # A SHA-256 (an attachment's, an entry's chain hash) is shown whole: its digit runs
    # are not numbers a person wrote, and a reviewer compares it character by character
    # with the file or the `dlp log verify` output they hold.
    if _DIGEST.fullmatch(text):
        return text
    return scrub(text)
