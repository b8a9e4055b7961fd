"""The Imaging Document Consumer's reading of a retrieved manifest (pure): a KOS in Part 10
bytes (ITI-68's answer) as a typed :class:`OutsideManifest`.

What a consumer needs to retrieve the images by RAD-107 (IHE RAD TF-3 4.68.4.1.2.3): the
study, the patient as the source wrote it, and per series of the Current Requested
Procedure Evidence Sequence (0040,A375) its instances with their SOP classes (PS3.3
Table 10-4, Hierarchical SOP Instance Reference Macro), Retrieve URL (0008,1190) and
Retrieve Location UID (0040,E011).

A manifest that is not one (PS3.3 A.35.4: SOP Class Key Object Selection Document; TID
2010 title (113030, DCM, "Manifest"); an evidence sequence; a Retrieve URL per series,
which XDS-I.b WADO-RS retrieval needs) is a
:class:`~bridge.sharing.errors.ManifestFormatError` naming the tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from bridge.sharing.errors import ManifestFormatError
from bridge.sharing.kos import KOS_SOP_CLASS, MANIFEST_TITLE


@dataclass(frozen=True, slots=True)
class ReferencedInstance:
    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True)
class ReferencedSeries:
    series_uid: str
    #: WADO-RS resource to retrieve from (RAD-107)
    retrieve_url: str
    retrieve_location_uid: str | None
    instances: tuple[ReferencedInstance, ...]


@dataclass(frozen=True, slots=True)
class OutsideManifest:
    """A manifest another site published: what it references and where to get it."""

    sop_instance_uid: str
    study_uid: str
    patient_id: str | None
    issuer_of_patient_id: str | None
    #: Issuer of Patient ID Qualifiers Sequence (0010,0024) > Universal Entity ID
    universal_entity_id: str | None
    series: tuple[ReferencedSeries, ...]

    def references(self) -> list[tuple[str, str, str]]:
        """(series UID, SOP class UID, SOP instance UID) of every referenced instance,
        in order (the source's ``bridge.sharing.kos.referenced``)."""
        return [(s.series_uid, i.sop_class_uid, i.sop_instance_uid)
                for s in self.series for i in s.instances]


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    return str(value) if value not in (None, "") else None


def _required(ds: Dataset, keyword: str, tag: str, where: str = "") -> str:
    value = _text(ds, keyword)
    if value is None:
        raise ManifestFormatError(f"manifest{where} has no {keyword} {tag}",
                                  tag=f"{tag} {keyword}")
    return value


def _sequence(ds: Dataset, keyword: str, tag: str, where: str = "") -> list[Dataset]:
    items = ds.get(keyword)
    if not items:
        raise ManifestFormatError(f"manifest{where} has no {keyword} {tag}",
                                  tag=f"{tag} {keyword}")
    return list(items)


def _check_kind(ds: Dataset) -> None:
    if _text(ds, "SOPClassUID") != KOS_SOP_CLASS:
        raise ManifestFormatError(
            f"manifest SOP Class UID (0008,0016) is {_text(ds, 'SOPClassUID')}, not Key "
            f"Object Selection Document {KOS_SOP_CLASS}", tag="(0008,0016) SOPClassUID")
    titles = ds.get("ConceptNameCodeSequence") or []
    title = tuple(_text(titles[0], k) for k in
                  ("CodeValue", "CodingSchemeDesignator", "CodeMeaning")) if titles else ()
    # the code (value, scheme) identifies the concept; CodeMeaning may be any wording
    if title[:2] != MANIFEST_TITLE[:2]:
        raise ManifestFormatError(
            f"manifest title (0040,A043) is {title or 'absent'}, not {MANIFEST_TITLE}",
            tag="(0040,A043) ConceptNameCodeSequence")


def _series(item: Dataset, where: str) -> ReferencedSeries:
    series_uid = _required(item, "SeriesInstanceUID", "(0020,000E)", where)
    where = f"{where} series {series_uid}"
    url = _required(item, "RetrieveURL", "(0008,1190)", where)
    refs = _sequence(item, "ReferencedSOPSequence", "(0008,1199)", where)
    return ReferencedSeries(
        series_uid=series_uid,
        retrieve_url=url,
        retrieve_location_uid=_text(item, "RetrieveLocationUID"),
        instances=tuple(ReferencedInstance(
            _required(r, "ReferencedSOPClassUID", "(0008,1150)", where),
            _required(r, "ReferencedSOPInstanceUID", "(0008,1155)", where)) for r in refs),
    )


def read_manifest_dataset(ds: Dataset) -> OutsideManifest:
    """A KOS already parsed by pydicom as an :class:`OutsideManifest`."""
    _check_kind(ds)
    evidence = _sequence(ds, "CurrentRequestedProcedureEvidenceSequence", "(0040,A375)")
    study_uid = _required(ds, "StudyInstanceUID", "(0020,000D)")
    series: list[ReferencedSeries] = []
    for study in evidence:
        where = f" evidence study {_text(study, 'StudyInstanceUID')}"
        for item in _sequence(study, "ReferencedSeriesSequence", "(0008,1115)", where):
            series.append(_series(item, where))
    return OutsideManifest(
        sop_instance_uid=_required(ds, "SOPInstanceUID", "(0008,0018)"),
        study_uid=study_uid,
        patient_id=_text(ds, "PatientID"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
        universal_entity_id=next((_text(q, "UniversalEntityID") for q in
                                  ds.get("IssuerOfPatientIDQualifiersSequence") or []), None),
        series=tuple(series),
    )


def read_manifest(part10: bytes) -> OutsideManifest:
    """A KOS in DICOM Part 10 bytes (PS3.10 7.1) as an :class:`OutsideManifest`."""
    try:
        ds = dcmread(BytesIO(part10), force=False)
    except (InvalidDicomError, EOFError, ValueError, OSError) as exc:
        raise ManifestFormatError(f"manifest is not a readable DICOM Part 10 file: {exc}",
                                  tag="(0002,0000) FileMetaInformation") from exc
    return read_manifest_dataset(ds)
