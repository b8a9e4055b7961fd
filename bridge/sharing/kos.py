"""The XDS-I.b imaging manifest: a Key Object Selection Document built from a study's
WADO-RS metadata (pure: DICOM JSON in, pydicom Dataset out).

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
import io
from collections.abc import Sequence
from itertools import groupby
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

from bridge.sharing.errors import ManifestDataError
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.study import DicomJson, StudyFacts, first_text, read_study
from bridge.sharing.uids import content_digest, derived_uid, manifest_series_uid

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
#: CID 7010 Key Object Selection Document Title: (113030, DCM, "Manifest")
MANIFEST_TITLE = ("113030", "DCM", "Manifest")
#: PS3.16 TID 2010 Key Object Selection, in the DCMR mapping resource
TEMPLATE = ("DCMR", "2010")

#: Patient Module (PS3.3 C.7.1.1) and General Study Module (C.7.2.1) attributes copied
#: verbatim from the study, as DICOM JSON tags
COPIED = (
    "00100010",  # PatientName (2)
    "00100020",  # PatientID (2)
    "00100021",  # IssuerOfPatientID (3)
    "00100022",  # TypeOfPatientID (3)
    "00100024",  # IssuerOfPatientIDQualifiersSequence (3)
    "00100030",  # PatientBirthDate (2)
    "00100032",  # PatientBirthTime (3)
    "00100040",  # PatientSex (2)
    "00101002",  # OtherPatientIDsSequence (3)
    "0020000D",  # StudyInstanceUID (1)
    "00080020",  # StudyDate (2)
    "00080030",  # StudyTime (2)
    "00080090",  # ReferringPhysicianName (2)
    "00200010",  # StudyID (2)
    "00080050",  # AccessionNumber (2)
    "00080051",  # IssuerOfAccessionNumberSequence (3)
    "00081030",  # StudyDescription (3)
    "00081032",  # ProcedureCodeSequence (3)
)
#: Type 2 attributes of those modules: present, empty when the study has no value
TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
         "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")
_TIMEZONE = "00080201"  # TimezoneOffsetFromUTC (SOP Common, C.12.1)


def retrieve_url(wado_rs_base: str, study_uid: str) -> str:
    """The WADO-RS Study resource (PS3.18 10.4.1.1.1) a consumer retrieves by RAD-107."""
    return f"{wado_rs_base.rstrip('/')}/studies/{study_uid}"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _sop_ref(sop_class: str, sop_instance: str) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop_instance
    return ref


def _copied(first: DicomJson) -> Dataset:
    subset = {tag: first[tag] for tag in COPIED if tag in first}
    try:
        ds = Dataset.from_json(subset)
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestDataError(
            "patient or study attributes unreadable as DICOM JSON (PS3.18 F.2): "
            f"{type(exc).__name__}", tag="(0010,0010) PatientName") from exc
    for keyword in TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


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


def _evidence(study: StudyFacts, url: str, location_uid: str) -> DicomSequence:
    series_items = []
    for series_uid, refs in groupby(study.instances, key=lambda r: r.series_uid):
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        series.RetrieveURL = url
        series.RetrieveLocationUID = location_uid
        series.ReferencedSOPSequence = DicomSequence(
            [_sop_ref(r.sop_class_uid, r.sop_instance_uid) for r in refs])
        series_items.append(series)
    item = Dataset()
    item.StudyInstanceUID = study.study_uid
    item.ReferencedSeriesSequence = DicomSequence(series_items)
    return DicomSequence([item])


def _content(study: StudyFacts) -> DicomSequence:
    items = []
    for ref in study.instances:
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "IMAGE" if ref.is_image else "COMPOSITE"
        item.ReferencedSOPSequence = DicomSequence(
            [_sop_ref(ref.sop_class_uid, ref.sop_instance_uid)])
        items.append(item)
    return DicomSequence(items)


def manifest_uid(study: StudyFacts, url: str, location_uid: str) -> str:
    """The manifest's SOP Instance UID: a function of what it references and where."""
    lines = [f"{r.series_uid}|{r.sop_class_uid}|{r.sop_instance_uid}" for r in study.instances]
    return derived_uid("kos", study.study_uid, url, location_uid, content_digest(lines))


def build_manifest(
    instances: Sequence[DicomJson],
    *,
    policy: SharingPolicy,
    wado_rs_base: str,
    created: dt.datetime,
) -> Dataset:
    """The KOS manifest of the study whose WADO-RS metadata is ``instances``.

    ``wado_rs_base`` is the WADO-RS base URL consumers retrieve from (site A's gateway);
    ``created`` (timezone-aware) becomes Content Date/Time: pass the time the publication
    was requested, kept with it, so a retry rebuilds the same bytes.  Instances of the
    study's manifest series are left out (a manifest never references a manifest).  Raises
    :class:`~bridge.sharing.errors.ManifestDataError` naming the attribute at fault.
    """
    first = instances[0] if instances else {}
    raw_study = (first.get("0020000D") or {}).get("Value") or [""]
    own_series = manifest_series_uid(str(raw_study[0]))
    study = read_study(instances, skip_series=frozenset({own_series}))
    url = retrieve_url(wado_rs_base, study.study_uid)
    location_uid = policy.source.retrieve_location_uid
    when, offset = _content_time(first, created)

    ds = _copied(first)
    ds.SpecificCharacterSet = "ISO_IR 192"
    # Key Object Document Series (C.17.6.1)
    ds.Modality = "KO"
    ds.SeriesInstanceUID = own_series
    ds.SeriesNumber = policy.manifest.series_number
    if policy.manifest.series_description:
        ds.SeriesDescription = policy.manifest.series_description
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence([])
    # General Equipment (C.7.5.1)
    ds.Manufacturer = policy.manifest.manufacturer
    # Key Object Document (C.17.6.2)
    ds.InstanceNumber = 1
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.CurrentRequestedProcedureEvidenceSequence = _evidence(study, url, location_uid)
    # SR Document Content (C.17.3), TID 2010
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DicomSequence([_code(*MANIFEST_TITLE)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = TEMPLATE
    ds.ContentTemplateSequence = DicomSequence([template])
    ds.ContentSequence = _content(study)
    # SOP Common (C.12.1)
    ds.SOPClassUID = KOS_SOP_CLASS
    ds.SOPInstanceUID = manifest_uid(study, url, location_uid)
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    if offset is not None:
        ds.TimezoneOffsetFromUTC = offset
    return ds


def manifest_part10(ds: Dataset) -> bytes:
    """``ds`` as a DICOM Part 10 file (PS3.10 7.1), Explicit VR Little Endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


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
