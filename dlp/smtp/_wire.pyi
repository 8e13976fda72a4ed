"""Types of dlp/smtp/_wire.c (the relay's whole-message byte tests)."""

API: int

def has_bare_line_end(data: bytes | bytearray | memoryview, /) -> bool: ...
