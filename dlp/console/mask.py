"""The console's last guard against rendering a My Number (DESIGN.md rule 2).

Entries are scrubbed before they are logged, but the console also shows things that
never went through the send log (a held message's subject, a user's comment being
echoed back), so every value a template prints passes through ``scrub_display``.
"""

from __future__ import annotations

import re

from dlp.sendlog.redact import scrub

_SHA256 = re.compile(r"[0-9a-f]{64}")


def scrub_display(text: str) -> str:
    # A SHA-256 is shown whole: its digit runs are not numbers a person wrote, and a
    # reviewer compares it character by character with the file they hold.
    if _SHA256.fullmatch(text):
        return text
    return scrub(text)
