# Types of the compiled module built from _candidates.c (see candidates.py).

from collections.abc import Callable

def set_separators(separators: str, box_gaps: str, invisible: str, glue: str, /) -> None: ...
def mynumber(text: str, /) -> tuple[list[tuple[int, int, str, int, int]], int, bool]: ...
def cards(text: str, /) -> list[tuple[int, int]]: ...
def column_gap(text: str, /) -> bool: ...
def score(
    text: str,
    cands: list[tuple[int, int, str, int, int]],
    keywords: Words,
    context: Words,
    words: Words,
    is_context: bytes,
    negative: Words,
    window: int,
    label_kw: bool,
    hint: bool,
    shaped: int,
    many: Callable[[int, int], bool],
    consts: tuple[int, int, int, int],
    /,
) -> list[tuple[int, int, str, int, bool, str, int]]: ...

class Words:
    def __init__(self, words: tuple[str, ...], guard: bool = False) -> None: ...
    def spans(self, text: str, lo: int = 0, hi: int = -1, /) -> list[tuple[int, int, str]]: ...
    def search(self, text: str, lo: int = 0, hi: int = -1, /) -> bool: ...
    def last_end(self, text: str, lo: int, hi: int, /) -> int: ...
