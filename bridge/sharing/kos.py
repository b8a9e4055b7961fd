"""The XDS-I.b imaging manifest: a Key Object Selection Document built from a study's
WADO-RS metadata (pure: DICOM JSON in; the manifest out as DICOM JSON, written to Part 10
by bridge.sharing.part10, or as a pydicom Dataset for readers).

IOD: Key Object Selection Document (PS3.3 A.35.4; SOP Class 1.2.840.10008.5.1.4.1.1.88.59,
PS3.4 B.5) with its modules:

* Patient (C.7.1.1) and General Study (C.7.2.1): copied from the study (text as the
  archive decoded it, written in UTF-8: SpecificCharacterSet ISO_IR 192, PS3.3 C.12.1.1.2);
* Key Object Document Series (C.17.6.1): Modality KO, the study's manifest series;
* General Equipment (C.7.5.1): Manufacturer;
* Key Object Document (C.17.6.2): Instance Number, Content Date/Time and the Current
  Requested Procedure Evidence Sequence (0040,A375) listing every instance with its SOP
  class (Hierarchical SOP Instance Reference Macro, PS3.3 Table 10-4), each series item
  carrying Retrieve URL (0008,1190) = the gateway's WADO-RS study resource and Retrieve
  Location UID (0040,E011) (IHE RAD TF-3 RAD-68, retrieval by RAD-107 WADO-RS);
* SR Document Content (C.17.3) per TID 2010 "Key Object Selection": a CONTAINER titled
  (113030, DCM, "Manifest") (CID 7010; never a rejection title of IOCM) CONTAINS one IMAGE
  (Image Pixel Module present) or COMPOSITE item per instance;
* SOP Common (C.12.1).

Where the manifest lives: in the study it describes, as a new series.  PS3.3 C.17.6.2
makes Identical Documents Sequence (0040,A525) required when a KOS references instances
in more than one study, because such a document is then duplicated into each of those
studies (C.17.6.2.1, C.17.2.2): a KOS belongs to the study whose instances it selects.
A manifest of one study therefore carries that Study Instance UID and needs no Identical
Documents Sequence.  Its Series Instance UID is derived from the Study Instance UID (one
manifest series per study); its SOP Instance UID from the references (see
:mod:`bridge.sharing.uids`), so rebuilding the same study gives the same manifest, and a
changed study a new one that replaces it.

Not written: Completion Flag (0040,A491) and Verification Flag (0040,A493).  They belong
to the SR Document General Module (C.17.2), which the KOS IOD does not include (A.35.4);
dciodvfy reports them as attributes not in the IOD.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from pydicom.dataset import Dataset

from bridge.mapping.peek import first_str
from bridge.mapping.tags import STUDY_INSTANCE_UID
from bridge.sharing import part10
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.study import DicomJson, StudyFacts, first_text, read_study
from bridge.sharing.uids import content_digest, derived_uid, manifest_series_uid

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
#: CID 7010 Key Object Selection Document Title: (113030, DCM, "Manifest")
MANIFEST_TITLE = ("113030", "DCM", "Manifest")
#: PS3.16 TID 2010 Key Object Selection, in the DCMR mapping resource
TEMPLATE = ("DCMR", "2010")

#: Patient Module (PS3.3 C.7.1.1) and General Study Module (C.7.2.1) attributes copied
#: verbatim from the study, as DICOM JSON tags, with the VR of the Type 2 ones (present,
#: empty when the study has no value)
COPIED: dict[str, str | None] = {
    "00100010": "PN",  # PatientName (2)
    "00100020": "LO",  # PatientID (2)
    "00100021": None,  # IssuerOfPatientID (3)
    "00100022": None,  # TypeOfPatientID (3)
    "00100024": None,  # IssuerOfPatientIDQualifiersSequence (3)
    "00100030": "DA",  # PatientBirthDate (2)
    "00100032": None,  # PatientBirthTime (3)
    "00100040": "CS",  # PatientSex (2)
    "00101002": None,  # OtherPatientIDsSequence (3)
    STUDY_INSTANCE_UID: "UI",  # StudyInstanceUID (1, read_study checked it)
    "00080020": "DA",  # StudyDate (2)
    "00080030": "TM",  # StudyTime (2)
    "00080090": "PN",  # ReferringPhysicianName (2)
    "00200010": "SH",  # StudyID (2)
    "00080050": "SH",  # AccessionNumber (2)
    "00080051": None,  # IssuerOfAccessionNumberSequence (3)
    "00081030": None,  # StudyDescription (3)
    "00081032": None,  # ProcedureCodeSequence (3)
}
_TIMEZONE = "00080201"  # TimezoneOffsetFromUTC (SOP Common, C.12.1)


def retrieve_url(wado_rs_base: str, study_uid: str) -> str:
    """The WADO-RS Study resource (PS3.18 10.4.1.1.1) a consumer retrieves by RAD-107."""
    return f"{wado_rs_base.rstrip('/')}/studies/{study_uid}"


def _el(vr: str, *values: Any) -> DicomJson:
    # an empty element has no "Value" (PS3.18 F.2.5), except a sequence, written with an
    # empty one as pydicom writes it, so the JSON equals pydicom's round trip of it
    return {"vr": vr, "Value": list(values)} if values or vr == "SQ" else {"vr": vr}


def _code(value: str, scheme: str, meaning: str) -> DicomJson:
    return {"00080100": _el("SH", value), "00080102": _el("SH", scheme),
            "00080104": _el("LO", meaning)}


def _sop_ref(sop_class: str, sop_instance: str) -> DicomJson:
    return {"00081150": _el("UI", sop_class), "00081155": _el("UI", sop_instance)}


def _copied(first: DicomJson) -> DicomJson:
    out: DicomJson = {}
    for tag, type2_vr in COPIED.items():
        if tag in first:
            out[tag] = first[tag]
        elif type2_vr is not None:
            out[tag] = _el(type2_vr)
    return out


def _content_time(first: DicomJson, created: dt.datetime) -> tuple[dt.datetime, str | None]:
    """``created`` in the study's TimezoneOffsetFromUTC when it has one (then copied, so
    that Study and Content Date/Time read in one offset), else as given."""
    if created.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    offset = first_text(first, _TIMEZONE)
    if offset is None or len(offset) != 5 or offset[0] not in "+-" or not offset[1:].isdigit():
        return created, None
    sign = 1 if offset[0] == "+" else -1
    delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return created.astimezone(dt.timezone(sign * delta)), offset


def _evidence(study: StudyFacts, url: str, location_uid: str) -> DicomJson:
    series_items = []
    for series_uid, refs in groupby(study.instances, key=lambda r: r.series_uid):
        series_items.append({
            "00081190": _el("UR", url),  # RetrieveURL
            "00081199": _el("SQ", *[_sop_ref(r.sop_class_uid, r.sop_instance_uid)
                                    for r in refs]),  # ReferencedSOPSequence
            "0020000E": _el("UI", series_uid),
            "0040E011": _el("UI", location_uid),  # RetrieveLocationUID
        })
    return _el("SQ", {"00081115": _el("SQ", *series_items),  # ReferencedSeriesSequence
                      STUDY_INSTANCE_UID: _el("UI", study.study_uid)})


def _content(study: StudyFacts) -> DicomJson:
    return _el("SQ", *[{
        "00081199": _el("SQ", _sop_ref(ref.sop_class_uid, ref.sop_instance_uid)),
        "0040A010": _el("CS", "CONTAINS"),  # RelationshipType
        "0040A040": _el("CS", "IMAGE" if ref.is_image else "COMPOSITE"),  # ValueType
    } for ref in study.instances])


def manifest_uid(study: StudyFacts, url: str, location_uid: str) -> str:
    """The manifest's SOP Instance UID: a function of what it references and where."""
    lines = [f"{r.series_uid}|{r.sop_class_uid}|{r.sop_instance_uid}" for r in study.instances]
    return derived_uid("kos", study.study_uid, url, location_uid, content_digest(lines))


def manifest_json(
    instances: Sequence[DicomJson],
    *,
    policy: SharingPolicy,
    wado_rs_base: str,
    created: dt.datetime,
) -> DicomJson:
    """The KOS manifest of the study whose WADO-RS metadata is ``instances``, as a DICOM
    JSON data set (PS3.18 F.2); :func:`manifest_part10` writes it, :func:`build_manifest`
    gives it as a pydicom Dataset.

    ``wado_rs_base`` is the WADO-RS base URL consumers retrieve from (site A's gateway);
    ``created`` (timezone-aware) becomes Content Date/Time: pass the time the publication
    was requested, kept with it, so a retry rebuilds the same bytes.  Instances of the
    study's manifest series are left out (a manifest never references a manifest).  Raises
    :class:`~bridge.sharing.errors.ManifestDataError` naming the attribute at fault.
    """
    first = instances[0] if instances else {}
    own_series = manifest_series_uid(first_str(first, STUDY_INSTANCE_UID) or "")
    study = read_study(instances, skip_series=frozenset({own_series}))
    url = retrieve_url(wado_rs_base, study.study_uid)
    location_uid = policy.source.retrieve_location_uid
    when, offset = _content_time(first, created)
    day, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    template = {"00080105": _el("CS", TEMPLATE[0]), "0040DB00": _el("CS", TEMPLATE[1])}
    ds = _copied(first)
    ds.update({
        "00080005": _el("CS", "ISO_IR 192"),  # SpecificCharacterSet: UTF-8
        # Key Object Document Series (C.17.6.1)
        "00080060": _el("CS", "KO"),
        "0020000E": _el("UI", own_series),
        "00200011": _el("IS", policy.manifest.series_number),
        "00081111": _el("SQ"),  # ReferencedPerformedProcedureStepSequence (2)
        # General Equipment (C.7.5.1)
        "00080070": _el("LO", policy.manifest.manufacturer),
        # Key Object Document (C.17.6.2)
        "00200013": _el("IS", 1),  # InstanceNumber
        "00080023": _el("DA", day),  # ContentDate
        "00080033": _el("TM", time),  # ContentTime
        "0040A375": _evidence(study, url, location_uid),
        # SR Document Content (C.17.3), TID 2010
        "0040A040": _el("CS", "CONTAINER"),  # ValueType
        "0040A043": _el("SQ", _code(*MANIFEST_TITLE)),  # ConceptNameCodeSequence
        "0040A050": _el("CS", "SEPARATE"),  # ContinuityOfContent
        "0040A504": _el("SQ", template),  # ContentTemplateSequence
        "0040A730": _content(study),  # ContentSequence
        # SOP Common (C.12.1)
        "00080016": _el("UI", KOS_SOP_CLASS),
        "00080018": _el("UI", manifest_uid(study, url, location_uid)),
        "00080012": _el("DA", day),  # InstanceCreationDate
        "00080013": _el("TM", time),  # InstanceCreationTime
    })
    if policy.manifest.series_description:
        ds["0008103E"] = _el("LO", policy.manifest.series_description)
    if offset is not None:
        ds[_TIMEZONE] = _el("SH", offset)
    return dict(sorted(ds.items()))


def build_manifest(
    instances: Sequence[DicomJson],
    *,
    policy: SharingPolicy,
    wado_rs_base: str,
    created: dt.datetime,
) -> Dataset:
    """:func:`manifest_json` as a pydicom Dataset (for readers; slower than the JSON)."""
    return Dataset.from_json(manifest_json(instances, policy=policy,
                                           wado_rs_base=wado_rs_base, created=created))


def manifest_part10(manifest: DicomJson) -> bytes:
    """The manifest (DICOM JSON from :func:`manifest_json`) as a DICOM Part 10 file
    (PS3.10 7.1), Explicit VR Little Endian, written by :mod:`bridge.sharing.part10`."""
    return part10.part10(manifest)


def referenced(ds: Dataset) -> list[tuple[str, str, str]]:
    """(series UID, SOP class UID, SOP instance UID) of every instance the manifest's
    evidence sequence lists, in order."""
    found: list[tuple[str, str, str]] = []
    for study in ds.CurrentRequestedProcedureEvidenceSequence:
        for series in study.ReferencedSeriesSequence:
            found += [(str(series.SeriesInstanceUID), str(r.ReferencedSOPClassUID),
                       str(r.ReferencedSOPInstanceUID)) for r in series.ReferencedSOPSequence]
    return found


def describe(ds: Dataset) -> dict[str, Any]:
    """A JSON-ready summary of a manifest (golden files, logs without patient data)."""
    return {
        "sop_class": str(ds.SOPClassUID),
        "title": [str(v) for v in (ds.ConceptNameCodeSequence[0].CodeValue,
                                   ds.ConceptNameCodeSequence[0].CodingSchemeDesignator,
                                   ds.ConceptNameCodeSequence[0].CodeMeaning)],
        "study_uid": str(ds.StudyInstanceUID),
        "series_uid": str(ds.SeriesInstanceUID),
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "references": [list(r) for r in referenced(ds)],
        "retrieve": sorted({(str(s.RetrieveURL), str(s.RetrieveLocationUID))
                            for st in ds.CurrentRequestedProcedureEvidenceSequence
                            for s in st.ReferencedSeriesSequence}),
    }
