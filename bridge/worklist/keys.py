"""The matching and return keys the worklist answers (PS3.4 K.6.1.2.2, Table K.6-1).

A query naming any other attribute is answered with failure 0xA900 (identifier does not
match the SOP class, PS3.4 C.4.1.1.4) instead of being silently ignored, so a modality
that relies on a key we cannot evaluate learns it at once (issue 17, "Bad input").
"""

from __future__ import annotations

from typing import Final

#: Scheduled Procedure Step Sequence (0040,0100) item keys
STEP_KEYS: Final = frozenset({
    "ScheduledStationAETitle", "ScheduledStationName", "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime", "Modality", "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription", "ScheduledProcedureStepID",
    "ScheduledProtocolCodeSequence", "ScheduledProcedureStepStatus",
    "ScheduledProcedureStepLocation", "PreMedication", "RequestedContrastAgent",
})

#: code sequence item keys (PS3.3 Table 8.8-1, basic coded entry attributes)
CODE_KEYS: Final = frozenset({"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion",
                              "CodeMeaning"})

#: top-level keys
TOP_KEYS: Final = frozenset({
    "SpecificCharacterSet", "PatientName", "PatientID", "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "PatientBirthDate", "PatientSex", "AccessionNumber", "IssuerOfAccessionNumberSequence",
    "ReferringPhysicianName", "RequestedProcedureID", "RequestedProcedureDescription",
    "RequestedProcedureCodeSequence", "StudyInstanceUID", "ScheduledProcedureStepSequence",
    "PlacerOrderNumberImagingServiceRequest", "FillerOrderNumberImagingServiceRequest",
    "RequestedProcedurePriority", "PatientWeight", "ReferencedStudySequence",
    "ReferencedPatientSequence", "AdmissionID", "CurrentPatientLocation",
    "PatientState", "PregnancyStatus", "MedicalAlerts", "Allergies",
})

#: keys allowed inside each sequence key's item
SEQUENCE_ITEM_KEYS: Final[dict[str, frozenset[str]]] = {
    "ScheduledProcedureStepSequence": STEP_KEYS,
    "ScheduledProtocolCodeSequence": CODE_KEYS,
    "RequestedProcedureCodeSequence": CODE_KEYS,
    "IssuerOfPatientIDQualifiersSequence": frozenset({"UniversalEntityID",
                                                      "UniversalEntityIDType"}),
    "IssuerOfAccessionNumberSequence": frozenset({"LocalNamespaceEntityID",
                                                  "UniversalEntityID",
                                                  "UniversalEntityIDType"}),
    "ReferencedStudySequence": frozenset({"ReferencedSOPClassUID",
                                          "ReferencedSOPInstanceUID"}),
    "ReferencedPatientSequence": frozenset({"ReferencedSOPClassUID",
                                            "ReferencedSOPInstanceUID"}),
}

#: keys that are not matched on (PS3.4 C.4.1.1.3.1: SpecificCharacterSet describes the
#: identifier; QueryRetrieveLevel is not part of the MWL model but some SCUs send it)
NOT_MATCHED: Final = frozenset({"SpecificCharacterSet", "QueryRetrieveLevel"})
