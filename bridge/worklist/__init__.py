"""The DICOM Modality Worklist side of the bridge (IHE RAD Scheduled Workflow, issue 17).

Public API::

    mapping = load_worklist_mapping("mappings/worklist.yaml")
    item = map_order(service_request, patient, mapping)      # pure: FHIR -> pydicom Dataset
    matches(query, item)                                      # pure: PS3.4 C.2.2.2 / K.6

The mapper and matcher import nothing of ours but :mod:`bridge.errors` and
:mod:`bridge.mapping` helpers.  See docs/worklist.md for what exists and what remains.

Nothing is imported here: import the submodules themselves, so that using one part
of the room does not load all of it (pydicom, pynetdicom).  The settings section is
:mod:`bridge.sections`.
"""
