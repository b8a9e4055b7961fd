"""Real, anonymized DICOM images from registry packages, re-identified for the demo and tests.

The synthetic studies of :mod:`samples.generator` are tiny uncompressed gradients.  Viewers
and integration teams also need real images in the transfer syntaxes archives really hold
(JPEG 2000, JPEG-LS, RLE, JPEG baseline ...), so this module takes a fixed list of test files
that ship inside two PyPI packages:

* ``pydicom`` itself (``pydicom/data/test_files``), always installed with the product;
* ``pydicom-data`` (a dev dependency), found through pydicom's external data source
  entry point; :func:`pydicom.data.get_testdata_file` is always called with
  ``download=False``: nothing is fetched from the network.

Each file becomes one study of one series and one instance, assigned round robin to the
synthetic patients given (so the EHR the generator seeds already knows them), with
everything identifying replaced or removed:

* every UID that is not a DICOM-defined one (``1.2.840.10008.*``) is replaced by a new
  UID derived deterministically from ``(seed, id_prefix, uid_root, source key, old UID)``
  (PS3.5 B.2 ``2.25.<uuid>`` form), references inside sequences included;
* private elements and a list of identifying attributes (PS3.15 Annex E Basic Profile, a
  subset that covers these files) are removed; every other person name is emptied;
  every date becomes the new study date;
* the Patient module becomes the synthetic patient's, the study gets an accession number
  with its issuer, a study date and time, a description and a local procedure code.

Pixel Data is copied byte for byte: the transfer syntax of each file is kept.  Origins and
licences of the files are in ``samples/REAL_IMAGES.md``; :data:`REAL_IMAGES` is the same
list as data.

Example::

    from samples.generator import generate_studies
    from samples.real_images import real_studies
    from samples.load import load_studies

    synthetic = list(generate_studies(60, seed=2026))
    real = real_studies([s.patient for s in synthetic], seed=2026)
    load_studies([*synthetic, *real], url=".../dicom-web", username="u", password="p")
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import UID

from samples.generator import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    CodeTruth,
    SamplePatient,
    SeriesTruth,
    StudyTruth,
    write_part10,
)
from samples.uids import uid

__all__ = [
    "REAL_IMAGES",
    "TRANSFER_SYNTAXES",
    "MissingRealImage",
    "RealImageSource",
    "RealStudy",
    "real_studies",
    "source_path",
]

_PYDICOM = "pydicom"
_PYDICOM_DATA = "pydicom-data"
_NEMA_WG04 = "NEMA WG04 compression test set (CompressedSamples), downsized by pydicom"
_MIT_PYDICOM = "MIT (pydicom)"
_MIT_PYDICOM_DATA = "MIT (pydicom-data)"

#: Transfer Syntax UID -> short name used in keys and descriptions (PS3.5 Annex A)
TRANSFER_SYNTAXES: dict[str, str] = {
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended (12-bit)",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}


@dataclass(frozen=True)
class RealImageSource:
    """One test file of a registry package and what it is (see ``samples/REAL_IMAGES.md``)."""

    key: str
    filename: str
    package: str
    modality: str
    transfer_syntax: str
    frames: int
    description: str
    body_part: str | None
    origin: str
    licence: str


REAL_IMAGES: tuple[RealImageSource, ...] = (
    RealImageSource("ct-explicit", "CT_small.dcm", _PYDICOM, "CT", "1.2.840.10008.1.2.1", 1,
                    "CT axial slice", None,
                    f"CT1_UNC of the {_NEMA_WG04} to 128x128", _MIT_PYDICOM),
    RealImageSource("mr-explicit", "MR_small.dcm", _PYDICOM, "MR", "1.2.840.10008.1.2.1", 1,
                    "MR slice", None, f"MR1_UNC of the {_NEMA_WG04} to 64x64", _MIT_PYDICOM),
    RealImageSource("mr-jpeg2000", "MR_small_jp2klossless.dcm", _PYDICOM, "MR",
                    "1.2.840.10008.1.2.4.90", 1, "MR slice", None,
                    "MR_small.dcm (MR1 of the NEMA WG04 set) compressed by pydicom",
                    _MIT_PYDICOM),
    RealImageSource("mr-jpegls", "MR_small_jpeg_ls_lossless.dcm", _PYDICOM, "MR",
                    "1.2.840.10008.1.2.4.80", 1, "MR slice", None,
                    "MR_small.dcm (MR1 of the NEMA WG04 set) compressed by pydicom",
                    _MIT_PYDICOM),
    RealImageSource("mr-rle", "MR_small_RLE.dcm", _PYDICOM, "MR", "1.2.840.10008.1.2.5", 1,
                    "MR slice", None,
                    "MR_small.dcm (MR1 of the NEMA WG04 set) compressed by pydicom",
                    _MIT_PYDICOM),
    RealImageSource("us-jpeg-baseline", "examples_ybr_color.dcm", _PYDICOM, "US",
                    "1.2.840.10008.1.2.4.50", 30, "US colour cine (multi-frame)", None,
                    "color3d_jpeg_baseline.dcm (SonoSite ultrasound) with fewer frames, "
                    "pydicom", _MIT_PYDICOM),
    RealImageSource("us-jpeg2000", "examples_jpeg2k.dcm", _PYDICOM, "US",
                    "1.2.840.10008.1.2.4.90", 1, "US small parts, colour", None,
                    "US1_J2KR of the NEMA WG04 compression test set", _MIT_PYDICOM),
    RealImageSource("nm-jpeg-extended", "JPGExtended.dcm", _PYDICOM, "NM",
                    "1.2.840.10008.1.2.4.51", 1, "NM whole body bone", "WHOLEBODY",
                    "NM1_JPLY of the NEMA WG04 compression test set (fixed by pydicom)",
                    _MIT_PYDICOM),
    RealImageSource("cr-jpeg2000", "RG3_J2KR.dcm", _PYDICOM_DATA, "CR",
                    "1.2.840.10008.1.2.4.90", 1, "XR lower leg (radiograph)", "LEG",
                    "RG3_J2KR of the NEMA WG04 compression test set", _MIT_PYDICOM_DATA),
    RealImageSource("mr-multiframe-jpegls", "emri_small_jpeg_ls_lossless.dcm", _PYDICOM_DATA,
                    "MR", "1.2.840.10008.1.2.4.80", 10, "Enhanced MR head (multi-frame)",
                    "HEAD", "emri_small.dcm (de-identified Enhanced MR) compressed, pydicom",
                    _MIT_PYDICOM_DATA),
    RealImageSource("us-jpeg-lossless", "JPGLosslessP14SV1_1s_1f_8b.dcm", _PYDICOM_DATA, "US",
                    "1.2.840.10008.1.2.4.70", 1, "US echocardiogram frame", None,
                    "Philips EPIQ 7C echocardiogram, anonymized, pydicom", _MIT_PYDICOM_DATA),
)

_BY_KEY = {source.key: source for source in REAL_IMAGES}

#: removed wherever they occur (PS3.15 Table E.1-1, Basic Application Level Confidentiality
#: Profile: the attributes of it that these files hold, plus references to other objects)
_REMOVE = frozenset({
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "DeviceSerialNumber", "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames",
    "PatientAddress", "PatientTelephoneNumbers", "PatientAge", "PatientWeight", "PatientSize",
    "EthnicGroup", "MilitaryRank", "AdditionalPatientHistory", "PatientComments",
    "AdmittingDiagnosesDescription", "RequestAttributesSequence", "ReferencedStudySequence",
    "ReferencedPatientSequence", "ReferencedPerformedProcedureStepSequence",
    "PerformedProcedureStepID", "PerformedProcedureStepDescription", "RequestedProcedureID",
    "ScheduledProcedureStepID", "StudyComments", "ImageComments", "ProtocolName",
    "AcquisitionDeviceProcessingDescription", "TimezoneOffsetFromUTC", "IssuerOfPatientID",
    "IssuerOfAccessionNumberSequence", "ProcedureCodeSequence", "PatientBirthTime",
    "ReferencedImageSequence", "SourceImageSequence", "DerivationCodeSequence",
})
_DICOM_UID_ROOT = "1.2.840.10008."
_FIRST_DATE = dt.date(2015, 1, 1)
_LAST_DATE = dt.date(2026, 11, 15)
_INSTITUTIONS = {"HOSP_A": ("Hospital A Medical Center", "Radiology"),
                 "HOSP_B": ("Hospital B Clinic", "Diagnostic Imaging")}
_ACCESSION_ISSUERS = {"HOSP_A": "RIS_A", "HOSP_B": "RIS_B"}
_LOCAL_SCHEME = "99HOSPA"


class MissingRealImage(LookupError):
    """A listed test file is not installed (``pydicom-data`` missing, or another version)."""


def source_path(source: RealImageSource) -> Path:
    """The installed file of ``source``; raises :class:`MissingRealImage` if absent."""
    found = get_testdata_file(source.filename, download=False)
    if not isinstance(found, str):
        hint = " (pip install pydicom-data)" if source.package == _PYDICOM_DATA else ""
        raise MissingRealImage(
            f"{source.filename} of package {source.package} is not installed{hint}")
    return Path(found)


@dataclass(frozen=True)
class _Plan:
    index: int
    source: RealImageSource
    patient: SamplePatient
    key: str
    uid_root: str | None
    study_uid: str
    series_uid: str
    sop_uid: str
    accession: str
    date: str
    time: str


class RealStudy:
    """One real image as a study of a synthetic patient: its ground truth and its bytes.

    Same interface as :class:`samples.generator.GeneratedStudy` for :func:`samples.load.
    load_studies` and :func:`samples.seed_ehr.seed_ehr`: ``truth``, ``patient``,
    ``study_uid``, ``part10()``, ``instances()``.
    """

    __slots__ = ("_plan", "truth")

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan
        self.truth: StudyTruth = self._make_truth()

    @property
    def source(self) -> RealImageSource:
        """The registry file this study was made from."""
        return self._plan.source

    @property
    def patient(self) -> SamplePatient:
        """The synthetic patient the image is assigned to."""
        return self._plan.patient

    @property
    def study_uid(self) -> str:
        """The new StudyInstanceUID."""
        return self._plan.study_uid

    @property
    def transfer_syntax(self) -> str:
        """Transfer Syntax UID of the stored file (the source's, unchanged)."""
        return self._plan.source.transfer_syntax

    def __repr__(self) -> str:
        return (f"RealStudy(key={self.source.key!r}, uid={self.study_uid!r}, "
                f"patient={self.patient.patient_id!r})")

    def dataset(self) -> Dataset:
        """The re-identified instance as a pydicom Dataset (read anew on every call)."""
        return _reidentify(self._plan)

    def instances(self) -> Iterator[Dataset]:
        """Yield the study's only instance."""
        yield self.dataset()

    def part10(self) -> Iterator[bytes]:
        """Yield the study's only instance as DICOM Part 10 bytes (source transfer syntax)."""
        yield write_part10(self.dataset())

    def _make_truth(self) -> StudyTruth:
        plan, source, patient = self._plan, self._plan.source, self._plan.patient
        institution, department = _INSTITUTIONS.get(patient.issuer, _INSTITUTIONS["HOSP_A"])
        code = CodeTruth(f"REAL{source.modality}", _LOCAL_SCHEME,
                         f"{source.modality} imaging (real image sample)")
        sop_class = str(pydicom.dcmread(source_path(source), stop_before_pixels=True,
                                        specific_tags=["SOPClassUID"]).SOPClassUID)
        series = SeriesTruth(series_uid=plan.series_uid, series_number=1,
                             modality=source.modality, sop_class_uid=sop_class,
                             description=_series_description(source), body_part=source.body_part,
                             laterality=None, instance_count=1)
        return StudyTruth(
            index=plan.index, study_uid=plan.study_uid, study_id=f"R{plan.index + 1}",
            patient_id=patient.patient_id, patient_issuer=patient.issuer,
            patient_name=patient.name, patient_birth_date=patient.birth_date,
            patient_sex=patient.sex, charset=patient.charset,
            accession_number=plan.accession,
            accession_issuer=_ACCESSION_ISSUERS.get(patient.issuer),
            placer_order_number=None, filler_order_number=None,
            study_date=plan.date, study_time=plan.time, timezone_offset=None,
            description=_study_description(source), procedure_codes=(code,),
            reason_codes=(), reason_text=None, referring_physician="",
            institution=institution, department=department,
            modalities=(source.modality,), series_count=1, instance_count=1,
            body_parts=(source.body_part,) if source.body_part else (), laterality=(),
            series=(series,),
        )


def _study_description(source: RealImageSource) -> str:
    return f"{source.description} [{TRANSFER_SYNTAXES[source.transfer_syntax]}]"


def _series_description(source: RealImageSource) -> str:
    return f"{source.description}, real image"


def real_studies(
    patients: Sequence[SamplePatient],
    *,
    seed: int = 0,
    id_prefix: str = "",
    uid_root: str | None = None,
    keys: Sequence[str] | None = None,
) -> list[RealStudy]:
    """The real images (all of :data:`REAL_IMAGES`, or those named by ``keys``, in that
    order) as studies of ``patients``: the ``i``-th image goes to the ``i % n``-th of the
    ``n`` distinct patients (repeats in ``patients`` are dropped, first one kept).

    Deterministic: the same arguments give the same UIDs, accession numbers, dates and bytes.
    ``id_prefix`` goes in front of the accession numbers (as in the generator), so runs that
    share an archive do not collide; the UIDs depend on it too.
    Raises :class:`MissingRealImage` when a chosen file is not installed, ``KeyError`` for an
    unknown key and ``ValueError`` without patients.
    """
    people = list({(p.issuer, p.patient_id): p for p in patients}.values())
    if not people:
        raise ValueError("real_studies needs at least one patient")
    chosen = [_BY_KEY[k] for k in keys] if keys is not None else list(REAL_IMAGES)
    base = f"ifb-real|{seed}|{id_prefix}|{uid_root or ''}"
    serials = random.Random(f"{base}|serials").randrange(10**5)
    studies = []
    for index, source in enumerate(chosen):
        source_path(source)  # fail early, with the package to install
        key = f"{base}|{source.key}"
        rng = random.Random(f"{key}|plan")
        day = dt.date.fromordinal(rng.randint(_FIRST_DATE.toordinal(), _LAST_DATE.toordinal()))
        plan = _Plan(
            index=index, source=source, patient=people[index % len(people)], key=key,
            uid_root=uid_root, study_uid=uid(rng, uid_root), series_uid=uid(rng, uid_root),
            sop_uid=uid(rng, uid_root),
            accession=f"{id_prefix}R{(serials + index * 7919) % 10**5:05d}",
            date=day.strftime("%Y%m%d"),
            time=f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
        )
        studies.append(RealStudy(plan))
    return studies


# --- re-identification ------------------------------------------------------------------------


def _reidentify(plan: _Plan) -> Dataset:
    source, patient = plan.source, plan.patient
    ds = pydicom.dcmread(source_path(source))
    ds.decode()  # text as str: re-encoded with the new SpecificCharacterSet when written
    ds.remove_private_tags()
    old = {
        "StudyInstanceUID": str(ds.get("StudyInstanceUID", "")),
        "SeriesInstanceUID": str(ds.get("SeriesInstanceUID", "")),
        "SOPInstanceUID": str(ds.get("SOPInstanceUID", "")),
    }
    fixed = {old["StudyInstanceUID"]: plan.study_uid, old["SeriesInstanceUID"]: plan.series_uid,
             old["SOPInstanceUID"]: plan.sop_uid}
    uids: dict[str, str] = {k: v for k, v in fixed.items() if k}

    def new_uid(value: str) -> str:
        if value.startswith(_DICOM_UID_ROOT) or not value:
            return value
        if value not in uids:
            uids[value] = uid(random.Random(f"{plan.key}|uid|{value}"), plan.uid_root)
        return uids[value]

    def scrub(dataset: Dataset) -> None:
        for elem in list(dataset):
            if elem.keyword in _REMOVE:
                del dataset[elem.tag]
            elif elem.VR == "SQ":
                for item in elem.value:
                    scrub(item)
            elif elem.VR == "UI":
                elem.value = ([new_uid(str(v)) for v in elem.value] if elem.VM > 1
                              else new_uid(str(elem.value or "")))
            elif elem.VR == "PN":
                elem.value = ""
            elif elem.VR == "DA" and elem.value:
                elem.value = plan.date
            elif elem.VR == "DT" and elem.value:
                elem.value = plan.date + plan.time
            elif elem.VR == "TM" and elem.value:
                elem.value = plan.time

    scrub(ds)
    institution, department = _INSTITUTIONS.get(patient.issuer, _INSTITUTIONS["HOSP_A"])
    code = Dataset()
    code.CodeValue = f"REAL{source.modality}"
    code.CodingSchemeDesignator = _LOCAL_SCHEME
    code.CodeMeaning = f"{source.modality} imaging (real image sample)"
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = _ACCESSION_ISSUERS.get(patient.issuer, "RIS_A")
    if patient.charset is not None:  # else the file's own (ASCII or ISO_IR 100) stays
        ds.SpecificCharacterSet = patient.charset
    values: dict[str, Any] = {
        "PatientName": patient.name, "PatientID": patient.patient_id,
        "IssuerOfPatientID": patient.issuer, "PatientBirthDate": patient.birth_date,
        "PatientSex": patient.sex, "StudyDate": plan.date, "StudyTime": plan.time,
        "AccessionNumber": plan.accession, "StudyID": f"R{plan.index + 1}",
        "StudyDescription": _study_description(source), "ReferringPhysicianName": "",
        "SeriesDescription": _series_description(source), "SeriesNumber": "1",
        "InstanceNumber": "1", "SeriesDate": plan.date, "SeriesTime": plan.time,
        "InstitutionName": institution, "InstitutionalDepartmentName": department,
        "PatientIdentityRemoved": "YES",
        "DeidentificationMethod": "samples.real_images: synthetic patient, new UIDs",
    }
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    ds.IssuerOfAccessionNumberSequence = [issuer]
    ds.ProcedureCodeSequence = [code]
    if source.body_part is not None:
        ds.BodyPartExamined = source.body_part
    ds.StudyInstanceUID = UID(plan.study_uid)
    ds.SeriesInstanceUID = UID(plan.series_uid)
    ds.SOPInstanceUID = UID(plan.sop_uid)
    meta = ds.file_meta
    meta.MediaStorageSOPInstanceUID = UID(plan.sop_uid)
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    for keyword in ("SourceApplicationEntityTitle", "PrivateInformationCreatorUID",
                    "PrivateInformation"):
        if keyword in meta:
            delattr(meta, keyword)
    if str(meta.TransferSyntaxUID) != source.transfer_syntax:
        raise ValueError(f"{source.filename}: transfer syntax {meta.TransferSyntaxUID}, "
                         f"listed as {source.transfer_syntax}")
    return ds

