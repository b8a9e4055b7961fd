"""Prometheus metrics of the bridge (exposed at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
MAPPING_WARNINGS = Counter(
    "bridge_mapping_warnings_total",
    "Study mappings that had a warning, by warning code (once per code per mapping; a study "
    "mapped again counts again)",
    ["archive", "code"],
)
PATIENT_CONFLICTS = Counter(
    "bridge_patient_demographic_conflicts_total",
    "Studies whose DICOM demographics differ from the EHR's Patient",
)
