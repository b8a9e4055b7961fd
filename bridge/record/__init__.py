"""The longitudinal imaging record: DICOM SR reports and radiation dose SRs to FHIR R4.

Pure and deterministic like :mod:`bridge.mapping` (no I/O but reading its data file
mappings/record/dose_items.json); imports nothing of ours but :mod:`bridge.errors` and the
:mod:`bridge.mapping` readers.  docs/record.md says what exists and what remains.

Nothing is imported here: import the submodules themselves, so that using one part
of the room does not load all of it (pydicom, pynetdicom).  The settings section is
:mod:`bridge.sections`.
"""
