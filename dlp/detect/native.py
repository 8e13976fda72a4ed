"""The compiled part of the detectors, if this checkout has it.

``dlp.detect._candidates`` is built from dlp/detect/_candidates.c by ``pip install``
(``make``).  A source tree put on ``PYTHONPATH`` without that step still works: every
caller has a pure-Python twin with the same answers (tests/unit/test_candidates.py),
several times slower on long or digit-rich text.  ``dlp serve`` says which one runs.
"""

from __future__ import annotations

from types import ModuleType


def _load() -> ModuleType | None:
    try:
        from dlp.detect import _candidates
    except ImportError:
        return None
    return _candidates


C = _load()
COMPILED = C is not None
"""The compiled scanner is in use (else the pure-Python twins)."""
