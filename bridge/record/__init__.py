"""The longitudinal imaging record: DICOM SR reports and radiation dose SRs to FHIR R4.

Pure and deterministic like :mod:`bridge.mapping` (no I/O but reading its data file
mappings/record/dose_items.json); imports nothing of ours but :mod:`bridge.errors` and the
:mod:`bridge.mapping` readers.  docs/record.md says what exists and what remains.
"""

from __future__ import annotations

from bridge.record.dose import map_dose_sr
from bridge.record.pdf_report import map_pdf_report
from bridge.record.report import map_report_sr, report_status
from bridge.record.result import WARNING_CODES, RecordResult, RecordWarning
from bridge.record.rules import DoseRules, load_dose_rules

__all__ = [
    "WARNING_CODES",
    "DoseRules",
    "RecordResult",
    "RecordWarning",
    "load_dose_rules",
    "map_dose_sr",
    "map_pdf_report",
    "map_report_sr",
    "report_status",
]
