"""The compiled part of the detectors, if this checkout has it.

``dlp.detect._candidates`` is built from dlp/detect/_candidates.c by ``pip install``
(``make``).  A source tree put on ``PYTHONPATH`` without that step still works: every
caller has a pure-Python twin with the same answers (tests/unit/test_candidates.py),
several times slower on long or digit-rich text.  ``dlp serve`` says which one runs.

A module built from older sources (the C file changed, ``make`` not run again) is not
used: its functions could take other arguments, and every scan would then end in an
error, which fails closed but tempfails all mail.  ``STATUS`` says why.
"""

from __future__ import annotations

from types import ModuleType

API = 2
"""The interface this Python code expects (``CANDIDATES_API`` in _candidates.c)."""


def _load() -> tuple[ModuleType | None, str]:
    try:
        from dlp.detect import _candidates
    except ImportError:
        return None, "not built"
    built = getattr(_candidates, "API", None)
    if built != API:
        return None, f"built from other sources (interface {built}, expected {API})"
    return _candidates, "compiled"


C, STATUS = _load()
COMPILED = C is not None
"""The compiled scanner is in use (else the pure-Python twins)."""
