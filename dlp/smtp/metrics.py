"""Prometheus metrics (``[smtp] metrics_listen``; off when empty).

The gateway runs several processes on one port, so the figures are kept in
prometheus-client's multiprocess mode: the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` before starting the serving processes, each of them
writes its counters there, and the supervisor alone serves ``/metrics``,
summing them.  Labels are verdicts and detector names only: never an address,
a file name or anything from a message (metrics are scraped and stored elsewhere,
and the filter keeps no My Numbers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

MESSAGES = Counter(
    "dlp_messages_total",
    "Messages by outcome: deliver, tag, hold, reject, tempfail; rcpt_reject counts refused recipients.",
    ["verdict"],
)
FINDINGS = Counter("dlp_findings_total", "Findings by detector.", ["detector"])
HELD = Counter("dlp_held_total", "Messages written to the hold queue.")
SESSIONS_REFUSED = Counter(
    "dlp_sessions_refused_total",
    "Sessions refused or closed at a cap: sessions, per_client, data_time.",
    ["cap"],
)
SCAN_SECONDS = Histogram("dlp_scan_seconds", "Time to scan one message.", buckets=_LATENCY_BUCKETS)
RELAY_SECONDS = Histogram(
    "dlp_relay_seconds",
    "Time from handing DATA to the next hop to its answer.",
    buckets=_LATENCY_BUCKETS,
)
DECISIONS = Counter(
    "dlp_decisions_total",
    "Decisions on confirm / delay / approve holds by kind and outcome (send, discard, "
    "send_meant, send_now, cancel, approve, reject, delay_over, timeout_*); counted where "
    "they are taken: timers in the gateway, links in `dlp console`.",
    ["kind", "outcome"],
)
DECISION_SECONDS = Histogram(
    "dlp_decision_seconds",
    "Time from hold to decision (confirm / delay / approve).",
    ["kind"],
    buckets=(10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400),
)


class HoldQueueCollector(Collector):
    """Held messages right now, counted when scraped (the queue itself is the truth:
    a directory, or the shared PostgreSQL table)."""

    def __init__(self, depth: Callable[[], int]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        try:
            depth = self.depth()
        except Exception as exc:
            # No figure rather than a wrong one (or a failed scrape of every other metric).
            log.warning("hold queue depth unavailable: %s", exc)
            return
        g = GaugeMetricFamily("dlp_hold_queue_depth", "Messages currently held for review.")
        g.add_metric([], depth)
        yield g


def serve_metrics(host: str, port: int, hold_depth: Callable[[], int]) -> None:
    """Serve /metrics from the supervisor: every process's counters plus the queue depth."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(HoldQueueCollector(hold_depth))
    start_http_server(port, addr=host, registry=registry)
