"""Prometheus metrics of the bridge (exposed at ``/metrics``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from bridge.state.errors import StateUnavailable

if TYPE_CHECKING:
    from bridge.state import StateStore

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

STUDIES_SYNCED = Counter(
    "bridge_studies_synced_total", "ImagingStudy writes confirmed by the FHIR server",
    ["archive", "action"],
)
WRITES_SKIPPED = Counter(
    "bridge_writes_skipped_unchanged_total", "Studies whose mapped content was unchanged",
    ["archive"],
)
FAILURES = Counter(
    "bridge_failures_total", "Study sync failures by error kind", ["archive", "kind"]
)
RETRIES = Counter("bridge_retries_total", "Study sync attempts deferred", ["archive", "kind"])
FHIR_LATENCY = Histogram(
    "bridge_fhir_request_seconds", "FHIR request latency", ["interaction"],
    buckets=_LATENCY_BUCKETS,
)
QIDO_LATENCY = Histogram(
    "bridge_dicomweb_request_seconds", "DICOMweb request latency", ["archive"],
    buckets=_LATENCY_BUCKETS,
)
QUEUE_DEPTH = Gauge("bridge_queue_depth", "Studies due or leased", ["archive"])
# the work queue's lanes (issue 19), read from the store at scrape time (record_lanes)
QUEUE_LANE_DEPTH = Gauge(
    "bridge_queue_lane_depth", "Studies due, waiting or leased, by lane (realtime, bulk)",
    ["lane"],
)
QUEUE_LANE_OLDEST_AGE = Gauge(
    "bridge_queue_lane_oldest_age_seconds",
    "Seconds the oldest ready, unclaimed study of the lane has waited (0 when none waits)",
    ["lane"],
)
QUEUE_BULK_SHARE = Gauge(
    "bridge_queue_bulk_share",
    "Share of each claim kept for bulk work while real-time work waits (sync.bulk_share)",
)
MAPPING_WARNINGS = Counter(
    "bridge_mapping_warnings_total",
    "Study mappings that had a warning, by warning code (once per code per mapping; a study "
    "mapped again counts again)",
    ["archive", "code"],
)
ORDERS_NOT_LINKED = Counter(
    "bridge_orders_not_linked_total",
    "Orders found by a study's accession but not linked to it, by reason (other-patient: "
    "the order is for another Patient)",
    ["reason"],
)
PATIENT_CONFLICTS = Counter(
    "bridge_patient_demographic_conflicts_total",
    "Studies whose DICOM demographics differ from the EHR's Patient",
)

# --- DICOMweb gateway, IHE IID, SMART app, audit trail (issue 20 items 9 and 10) ----------

GATEWAY_REQUESTS = Counter(
    "bridge_gateway_requests_total",
    "Gateway requests by route kind (qido, retrieve, metadata, frames, rendered, thumbnail, "
    "bulk, iid, invalid) and the HTTP status answered",
    ["kind", "status"],
)
GATEWAY_BYTES = Counter(
    "bridge_gateway_response_bytes_total",
    "Body bytes the gateway sent to clients (counted as streamed)", ["kind"],
)
GATEWAY_LATENCY = Histogram(
    "bridge_gateway_request_seconds",
    "Gateway request duration, from the route to the last byte sent (or the refusal)",
    ["kind"], buckets=_LATENCY_BUCKETS,
)
ACCESS_DECISIONS = Counter(
    "bridge_access_decisions_total",
    "Access decisions (every request, before audit aggregation) by source (gateway, iid, "
    "smart-app), action and outcome (permitted, refused, failed)",
    ["source", "action", "outcome"],
)
SMART_LAUNCHES = Counter(
    "bridge_smart_launches_total",
    "SMART app launches (callback) and launch starts by outcome and reason",
    ["step", "outcome", "reason"],
)
AUDIT_RECORDS = Counter(
    "bridge_audit_records_total",
    "Audit records by result: recorded (logged and queued), coalesced (same decision "
    "within audit.aggregate_seconds), written (confirmed by the audit server), dropped "
    "(queue full or shut down), failed (the audit server refused or did not answer)",
    ["result"],
)
AUDIT_QUEUE = Gauge("bridge_audit_queue_depth", "Audit records waiting to be written")


def record_lanes(store: StateStore) -> None:
    """Set the lane gauges from the store.  Called when ``/metrics`` is scraped: the
    workers only pause to update gauges when the queue is empty, and a lane's figures
    matter most while a backfill keeps them busy.  A store that does not answer leaves the
    last figures (``/readyz`` reports the outage)."""
    try:
        figures = store.lanes()
    except StateUnavailable:
        return
    for lane in figures:
        QUEUE_LANE_DEPTH.labels(lane=lane.lane.value).set(lane.depth)
        QUEUE_LANE_OLDEST_AGE.labels(lane=lane.lane.value).set(lane.oldest_age or 0.0)
    QUEUE_BULK_SHARE.set(store.bulk_share)
