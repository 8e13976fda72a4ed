"""CPU time of a process and its descendants, for the benchmarks (Linux /proc)."""

from __future__ import annotations

import os
import time


def tree_cpu(root: int | None) -> float:
    """CPU seconds (user+system) used so far by ``root`` and every live descendant."""
    if root is None:
        return 0.0
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def settle(
    root: int | None, quiet_ms: float = 20.0, step: float = 0.5, limit: float = 30.0
) -> float:
    """Wait until ``root``'s process tree is idle: at most ``quiet_ms`` of CPU in
    ``step`` seconds.  A gateway listens before its scan workers have finished
    importing; measuring then would charge their start-up to the first load.
    Returns the seconds waited."""
    if root is None:
        return 0.0
    start = time.monotonic()
    last = tree_cpu(root)
    while time.monotonic() - start < limit:
        time.sleep(step)
        now = tree_cpu(root)
        if (now - last) * 1000 < quiet_ms:
            break
        last = now
    return time.monotonic() - start
