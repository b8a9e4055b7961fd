"""Prometheus metrics of the real-time event sources (kept apart from bridge.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

NOTIFICATIONS = Counter(
    "bridge_notifications_total", "Study events received, by source, event and outcome",
    ["source", "event", "outcome"],
)
NOTIFICATIONS_REFUSED = Counter(
    "bridge_notifications_refused_total",
    "Notification requests refused, by reason (signature, replay, body, busy, too-large, "
    "not-configured, state-unavailable)", ["reason"],
)
STOW_REQUESTS = Counter(
    "bridge_stow_proxy_requests_total", "STOW-RS proxy requests by status", ["status"],
)
STOW_BYTES = Counter("bridge_stow_proxy_bytes_total", "Bytes streamed to the archive")
STOW_SECONDS = Histogram(
    "bridge_stow_proxy_seconds", "STOW-RS proxy request duration",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
