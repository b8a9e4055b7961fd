"""Deterministic synthetic DICOM studies with a ground-truth record per study.

Everything here is a pure function of ``(count, seed, profile, patients, id_prefix, uid_root)``:
the same arguments always give the same UIDs, identifiers, attribute values and Part 10 bytes
(no clock, no ``uuid4``, no hash randomisation).  Randomness comes from :class:`random.Random`
instances seeded with strings (string seeds are hashed with SHA-512 by the standard library,
so they are stable across processes and Python versions).

What a study looks like (see ``samples/README.md`` for the full list):

* five modalities: CT, MR, CR, US and MG, each with its proper Storage SOP Class;
* patients drawn from a pool (default ``count // 4``) with ``IssuerOfPatientID`` HOSP_A (~70%)
  or HOSP_B and ~20% non-ASCII names, encoded with ``ISO_IR 100`` (Latin-1) or ``ISO_IR 192``
  (UTF-8, including ideographic / phonetic component groups, PS3.5 section 6.2.1);
* study dates 2015-2026, times with and without fractional seconds, some date-only studies,
  ``TimezoneOffsetFromUTC`` on most studies;
* accession numbers with ``IssuerOfAccessionNumberSequence`` (RIS_A / RIS_B), placer and filler
  order numbers, local ``99HOSPA`` and LOINC procedure codes, SNOMED CT reasons;
* ``BodyPartExamined`` from CID 4031 with a small share of local / odd values, and
  ``Laterality`` for paired body parts;
* tiny MONOCHROME2 pixel data (8x8 16-bit for CT/MR, 16x16 8-bit otherwise).

Instances are produced lazily by :meth:`GeneratedStudy.instances`, so iterating over a
thousand studies never holds more than one study's current instance in memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import json
import random
import re
import struct
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom import config as dicom_config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

__all__ = [
    "ACCESSION_SYSTEMS",
    "DEFAULT_ACCESSION_SYSTEM",
    "DEFAULT_PATIENT_SYSTEM",
    "FILLER_ORDER_SYSTEM",
    "LOCAL_PROCEDURE_SYSTEM",
    "MANIFEST_FORMAT",
    "PATIENT_ID_SYSTEMS",
    "PLACER_ORDER_SYSTEM",
    "PROFILES",
    "SOP_CLASS_BY_MODALITY",
    "CodeTruth",
    "GeneratedStudy",
    "SamplePatient",
    "SeriesTruth",
    "StudyTruth",
    "generate_studies",
    "instances_json",
    "manifest_dict",
    "read_manifest",
    "write_manifest",
    "write_part10",
]

# --- identifier systems (shared conventions of the project) -------------------------------

#: IssuerOfPatientID (0010,0021) -> FHIR Identifier.system
PATIENT_ID_SYSTEMS: dict[str, str] = {
    "HOSP_A": "https://hospital-a.example.org/fhir/sid/mrn",
    "HOSP_B": "https://hospital-b.example.org/fhir/sid/mrn",
}
DEFAULT_PATIENT_SYSTEM = "urn:imaging-bridge:patient-id"
#: IssuerOfAccessionNumberSequence > LocalNamespaceEntityID -> FHIR Identifier.system
ACCESSION_SYSTEMS: dict[str, str] = {
    "RIS_A": "https://hospital-a.example.org/fhir/sid/accession",
    "RIS_B": "https://hospital-b.example.org/fhir/sid/accession",
}
DEFAULT_ACCESSION_SYSTEM = "urn:imaging-bridge:accession"
PLACER_ORDER_SYSTEM = "https://hospital-a.example.org/fhir/sid/placer-order"
FILLER_ORDER_SYSTEM = "https://hospital-a.example.org/fhir/sid/filler-order"
#: FHIR system used by the sample EHR for the local ``99HOSPA`` procedure codes
LOCAL_PROCEDURE_SYSTEM = "https://hospital-a.example.org/fhir/CodeSystem/procedure"

MANIFEST_FORMAT = "imaging-fhir-bridge/samples-manifest"
MANIFEST_VERSION = 1

#: Storage SOP Classes (PS3.4 Annex B.5)
SOP_CLASS_BY_MODALITY: dict[str, str] = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "US": "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    # Digital Mammography X-Ray Image Storage - For Presentation
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",
}

PROFILES: tuple[str, ...] = ("mixed", "typical", "small")

# A fixed UUID-derived UID (PS3.5 section B.2) naming this generator as the implementation.
IMPLEMENTATION_CLASS_UID = "2.25.228406425364786254325125316398733461212"
IMPLEMENTATION_VERSION_NAME = "IFB_SAMPLES_1"

_FIRST_STUDY_DATE = dt.date(2015, 1, 1)
_LAST_STUDY_DATE = dt.date(2026, 11, 15)
_FIRST_BIRTH_DATE = dt.date(1935, 1, 1)
_LAST_BIRTH_DATE = dt.date(2012, 12, 31)

_ID_PREFIX_RE = re.compile(r"^[A-Za-z0-9]{0,6}$")
_UID_ROOT_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
# A step co-prime with 10: i -> (base + i * step) % 10**n is a permutation of 0..10**n - 1, so
# serial numbers derived from it never repeat within one run.
_SERIAL_STEP = 7919

# --- reference tables -----------------------------------------------------------------------

_SCT = "SCT"
_LN = "LN"
_LOCAL = "99HOSPA"

_COUGH = ("49727002", "Cough")
_DYSPNEA = ("267036007", "Dyspnea")
_CHEST_PAIN = ("29857009", "Chest pain")
_FEVER = ("386661006", "Fever")
_HEADACHE = ("25064002", "Headache")
_ABDO_PAIN = ("21522001", "Abdominal pain")
_KNEE_PAIN = ("30989003", "Knee pain")
_LOW_BACK_PAIN = ("279039007", "Low back pain")


@dataclass(frozen=True)
class _Procedure:
    code: str
    meaning: str
    modality: str
    body_part: str
    paired: bool
    series: tuple[str, ...]
    weight: int
    loinc: tuple[str, str] | None = None
    reasons: tuple[tuple[str, str], ...] = ()
    reason_texts: tuple[str, ...] = ()


_PROCEDURES: tuple[_Procedure, ...] = (
    # CT
    _Procedure(
        "CTCHEST", "CT Chest", "CT", "CHEST", False,
        ("Topogram", "Chest 5.0 Axial", "Lung 1.0 Axial", "Mediastinum 2.0 Coronal",
         "Lung 2.0 Sagittal", "MIP 10.0 Axial"),
        3, ("24627-2", "CT Chest"), (_COUGH, _DYSPNEA, _CHEST_PAIN),
        ("Persistent cough, rule out pneumonia", "Follow-up of pulmonary nodule"),
    ),
    _Procedure(
        "CTABD", "CT Abdomen", "CT", "ABDOMEN", False,
        ("Topogram", "Abdomen 5.0 Portal venous", "Abdomen 2.0 Axial", "Abdomen 3.0 Coronal",
         "Abdomen 3.0 Sagittal", "Delayed 5.0 Axial"),
        3, None, (_ABDO_PAIN,), ("RLQ pain, suspected appendicitis", "Staging"),
    ),
    _Procedure(
        "CTHEAD", "CT Head", "CT", "HEAD", False,
        ("Topogram", "Head 5.0 Axial", "Head 0.625 Axial", "Bone 2.0 Axial",
         "Head 3.0 Coronal", "Head 3.0 Sagittal"),
        2, ("24725-4", "CT Head"), (_HEADACHE,), ("Fall with head trauma", "Sudden headache"),
    ),
    _Procedure(
        "CTLSPINE", "CT Lumbar Spine", "CT", "LSPINE", False,
        ("Topogram", "L-Spine 2.0 Axial Bone", "L-Spine 2.0 Sagittal", "L-Spine 2.0 Coronal"),
        1, None, (_LOW_BACK_PAIN,), ("Trauma, rule out fracture",),
    ),
    # MR
    _Procedure(
        "MRBRAIN", "MR Brain", "MR", "BRAIN", False,
        ("3-Plane Localizer", "Ax T2 FSE", "Ax FLAIR", "Ax DWI", "Sag T1", "Ax T1 Post"),
        3, ("24590-2", "MR Brain"), (_HEADACHE,), ("Chronic headache", "MS follow-up"),
    ),
    _Procedure(
        "MRKNEE", "MR Knee", "MR", "KNEE", True,
        ("Localizer", "Sag PD FS", "Cor PD FS", "Ax PD FS", "Sag T1", "Cor T1"),
        2, None, (_KNEE_PAIN,), ("Suspected meniscal tear",),
    ),
    _Procedure(
        "MRLSPINE", "MR Lumbar Spine", "MR", "LSPINE", False,
        ("Localizer", "Sag T2", "Sag T1", "Sag STIR", "Ax T2", "Ax T1"),
        2, None, (_LOW_BACK_PAIN,), ("Radiculopathy L5",),
    ),
    _Procedure(
        "MRCSPINE", "MR Cervical Spine", "MR", "CSPINE", False,
        ("Localizer", "Sag T2", "Sag T1", "Ax T2 GRE", "Ax T2"),
        1, None, (), ("Neck pain radiating to the arm",),
    ),
    _Procedure(
        "MRSHOULDER", "MR Shoulder", "MR", "SHOULDER", True,
        ("Localizer", "Cor PD FS", "Sag T2 FS", "Ax PD FS", "Cor T1"),
        1, None, (), ("Rotator cuff tear?",),
    ),
    # CR
    _Procedure(
        "CRCHEST", "XR Chest 2 Views", "CR", "CHEST", False, ("PA", "Lateral"),
        5, ("36643-5", "XR Chest 2 Views"), (_COUGH, _DYSPNEA, _FEVER),
        ("Cough and fever", "Pre-operative"),
    ),
    _Procedure("CRHAND", "XR Hand", "CR", "HAND", True, ("PA", "Oblique"), 1, None, (),
               ("Fall on outstretched hand",)),
    _Procedure("CRKNEE", "XR Knee", "CR", "KNEE", True, ("AP", "Lateral"), 1, None,
               (_KNEE_PAIN,), ("Knee pain after sport",)),
    _Procedure("CRSHOULDER", "XR Shoulder", "CR", "SHOULDER", True, ("AP", "Y-View"), 1, None,
               (), ("Shoulder pain",)),
    _Procedure("CRPELVIS", "XR Pelvis", "CR", "PELVIS", False, ("AP",), 1, None, (),
               ("Hip pain",)),
    _Procedure("CRLSPINE", "XR Lumbar Spine", "CR", "LSPINE", False, ("AP", "Lateral"), 1, None,
               (_LOW_BACK_PAIN,), ()),
    # US
    _Procedure("USABD", "US Abdomen", "US", "ABDOMEN", False, ("Abdomen", "Liver", "Kidneys"),
               3, None, (_ABDO_PAIN,), ("Elevated liver enzymes", "RUQ pain")),
    _Procedure("USPELVIS", "US Pelvis", "US", "PELVIS", False, ("Pelvis", "Transvaginal"), 1,
               None, (), ("Pelvic pain",)),
    _Procedure("USNECK", "US Neck", "US", "NECK", False, ("Thyroid", "Lymph nodes"), 1, None, (),
               ("Thyroid nodule follow-up",)),
    _Procedure("USBREAST", "US Breast", "US", "BREAST", True, ("Breast",), 1, None, (),
               ("Palpable lump",)),
    # MG
    _Procedure("MGSCREEN", "Screening Mammography", "MG", "BREAST", False,
               ("Screening 2D", "Additional views"), 3, ("24606-6", "MG Breast Screening"), (),
               ("Routine screening",)),
    _Procedure("MGDIAG", "Diagnostic Mammography", "MG", "BREAST", True,
               ("Diagnostic 2D", "Spot compression"), 1, None, (), ("Palpable lump",)),
)

# MG is only drawn for women aged 35+, so its raw weight is higher than its final share
_MODALITY_WEIGHTS: dict[str, int] = {"CR": 30, "CT": 25, "MR": 15, "US": 15, "MG": 40}

#: local or malformed BodyPartExamined values used instead of the CID 4031 term now and then
_ODD_BODY_PARTS: dict[str, tuple[str, ...]] = {
    "CHEST": ("Thorax", "CHEST_LOW"),
    "ABDOMEN": ("Abdomen", "ABD"),
    "HEAD": ("Head", "HEAD_ROUTINE"),
    "BRAIN": ("Brain", "NEURO"),
    "KNEE": ("Knee", "KNEE_JOINT"),
    "LSPINE": ("L-SPINE", "LUMBAR"),
    "CSPINE": ("C-SPINE", "NECK_SPINE"),
    "SHOULDER": ("Shoulder", "SHLDR"),
    "HAND": ("Hand", "HAND_WRIST"),
    "PELVIS": ("Pelvis", "HIP_PELVIS"),
    "NECK": ("Neck", "THYROID_US"),
    "BREAST": ("Breast", "MAMMO"),
}

_MG_VIEWS: dict[str, tuple[str, str]] = {  # ViewPosition -> ViewCodeSequence (SCT)
    "CC": ("399162004", "cranio-caudal"),
    "MLO": ("399368009", "medio-lateral oblique"),
}

_ASCII_FAMILY = (
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Martin", "Anderson", "Thomas", "Moore",
    "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "King", "Wright",
    "Scott", "Green", "Baker", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips",
    "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart", "Morris", "Murphy", "Cook",
    "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Kelly", "Howard", "Ward",
)
_ASCII_GIVEN = {
    "F": ("Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Susan", "Jessica", "Sarah",
          "Karen", "Nancy", "Lisa", "Emma", "Olivia", "Sophia", "Grace", "Hannah", "Ruth"),
    "M": ("James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph",
          "Thomas", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Paul", "Steven", "Noah"),
}
_LATIN1_FAMILY = ("Müller", "Åström", "Peña", "Sørensen", "Lefèvre", "Gonçalves", "Núñez",
                  "Öberg", "Weiß", "Brontë", "Fernández", "Størmer")
_LATIN1_GIVEN = {
    "F": ("Sigrid", "Zoë", "Agnès", "Inês", "Mónica", "Hélène", "Åsa", "Björg"),
    "M": ("Jürgen", "José", "Søren", "François", "Björn", "Andrés", "Jérôme", "Øystein"),
}
#: complete PN values (alphabetic[=ideographic[=phonetic]]) for ISO_IR 192 patients
_UTF8_NAMES: tuple[tuple[str, str], ...] = (
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", "M"),
    ("Tanaka^Hanako=田中^花子=たなか^はなこ", "F"),
    ("Suzuki^Ichiro=鈴木^一郎=すずき^いちろう", "M"),
    ("Hong^Gildong=洪^吉洞=홍^길동", "M"),
    ("Kim^Minji=金^敏智=김^민지", "F"),
    ("Wang^Xiaodong=王^小东", "M"),
    ("Li^Mei=李^梅", "F"),
    ("Παπαδόπουλος^Γιώργος", "M"),
    ("Παπαδοπούλου^Ελένη", "F"),
    ("Иванов^Иван", "M"),
    ("Смирнова^Анна", "F"),
    ("Dvořák^Antonín", "M"),
    ("Wałęsa^Łucja", "F"),
)
_REFERRING = ("Adams^Laura^^Dr", "Baker^Thomas", "Chen^Wei", "Diallo^Aminata", "Evans^Mark^J",
              "Fischer^Karl", "Gupta^Priya", "Haddad^Omar")
_READING = ("Ito^Kenji", "Jensen^Mette", "Khan^Sara", "Lopez^Diego", "Moreau^Claire")
_OPERATORS = ("Novak^Petra", "Owens^Tyler", "Park^Jisoo", "Quinn^Riley", "Rossi^Marco")
_PERFORMING = ("Silva^Ana", "Tanner^Joe", "Ueda^Mika", "Vargas^Luis")

_INSTITUTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "HOSP_A": ("Hospital A Medical Center", ("Radiology", "Emergency Radiology")),
    "HOSP_B": ("Hospital B Clinic", ("Diagnostic Imaging", "Outpatient Imaging")),
}
_ACCESSION_ISSUER = {"HOSP_A": "RIS_A", "HOSP_B": "RIS_B"}
_STATIONS = {"CT": "CT01", "MR": "MR01", "CR": "DR02", "US": "US03", "MG": "MAMMO1"}
_MODELS = {"CT": "Synthetic CT 64", "MR": "Synthetic MR 1.5T", "CR": "Synthetic DR",
           "US": "Synthetic US", "MG": "Synthetic Mammo"}

# --- public records -------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplePatient:
    """One patient of the pool (what goes into the Patient module and the EHR Patient)."""

    patient_id: str
    issuer: str
    #: DICOM PN value, component groups separated by ``=`` (PS3.5 section 6.2.1)
    name: str
    #: SpecificCharacterSet needed for the name; ``None`` = default repertoire (ASCII)
    charset: str | None
    birth_date: str
    sex: str

    @property
    def identifier_system(self) -> str:
        """FHIR Identifier.system for this patient's issuer (shared conventions)."""
        return PATIENT_ID_SYSTEMS.get(self.issuer, DEFAULT_PATIENT_SYSTEM)


@dataclass(frozen=True)
class CodeTruth:
    """A coded entry as written in a DICOM code sequence item."""

    code: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class SeriesTruth:
    """Ground truth for one series."""

    series_uid: str
    series_number: int
    modality: str
    sop_class_uid: str
    description: str
    body_part: str | None
    laterality: str | None
    instance_count: int


@dataclass(frozen=True)
class StudyTruth:
    """Ground truth for one generated study: what the archive holds and the EHR should get."""

    index: int
    study_uid: str
    study_id: str
    patient_id: str
    patient_issuer: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    charset: str | None
    accession_number: str
    accession_issuer: str | None
    placer_order_number: str | None
    filler_order_number: str | None
    study_date: str
    study_time: str | None
    timezone_offset: str | None
    description: str
    procedure_codes: tuple[CodeTruth, ...]
    reason_codes: tuple[CodeTruth, ...]
    reason_text: str | None
    referring_physician: str
    institution: str
    department: str
    modalities: tuple[str, ...]
    series_count: int
    instance_count: int
    body_parts: tuple[str, ...]
    laterality: tuple[str, ...]
    series: tuple[SeriesTruth, ...]

    @property
    def patient_system(self) -> str:
        """FHIR Identifier.system of the patient identifier."""
        return PATIENT_ID_SYSTEMS.get(self.patient_issuer, DEFAULT_PATIENT_SYSTEM)

    @property
    def accession_system(self) -> str:
        """FHIR Identifier.system of the accession number."""
        if self.accession_issuer is None:
            return DEFAULT_ACCESSION_SYSTEM
        return ACCESSION_SYSTEMS.get(self.accession_issuer, DEFAULT_ACCESSION_SYSTEM)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists) plus the derived identifier systems."""
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        data["patient_system"] = self.patient_system
        data["accession_system"] = self.accession_system
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyTruth:
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["procedure_codes"] = tuple(CodeTruth(**c) for c in data["procedure_codes"])
        values["reason_codes"] = tuple(CodeTruth(**c) for c in data["reason_codes"])
        values["series"] = tuple(SeriesTruth(**s) for s in data["series"])
        for key in ("modalities", "body_parts", "laterality"):
            values[key] = tuple(data[key])
        return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --- internal plans -------------------------------------------------------------------------


@dataclass(frozen=True)
class _SeriesPlan:
    number: int
    uid: str
    modality: str
    description: str
    body_part: str | None
    body_part_odd: bool
    laterality: str | None
    instance_count: int
    date: str
    time: str | None
    performing: str
    operator: str
    frame_of_reference_uid: str | None
    localizer: bool
    #: for MG: the (ImageLaterality, ViewPosition) of each instance, cycled
    views: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _StudyPlan:
    key: str
    index: int
    uid_root: str | None
    patient: SamplePatient
    study_uid: str
    study_id: str
    accession: str
    accession_issuer: str | None
    placer: str | None
    filler: str | None
    date: str
    time: str | None
    tz: str | None
    description: str
    procedure_codes: tuple[CodeTruth, ...]
    reason_codes: tuple[CodeTruth, ...]
    reason_text: str | None
    referring: str
    reading: str
    institution: str
    department: str
    series: tuple[_SeriesPlan, ...]


class GeneratedStudy:
    """A generated study: its ground truth plus a lazy iterator over its instances."""

    __slots__ = ("_plan", "truth")

    def __init__(self, plan: _StudyPlan) -> None:
        self._plan = plan
        self.truth: StudyTruth = _truth_from_plan(plan)

    @property
    def patient(self) -> SamplePatient:
        """The study's patient (also available flattened in :attr:`truth`)."""
        return self._plan.patient

    @property
    def study_uid(self) -> str:
        """StudyInstanceUID."""
        return self._plan.study_uid

    def __repr__(self) -> str:
        t = self.truth
        return (
            f"GeneratedStudy(index={t.index}, uid={t.study_uid!r}, modalities={t.modalities}, "
            f"series={t.series_count}, instances={t.instance_count})"
        )

    def instances(self, *, reference: bool = False) -> Iterator[Dataset]:
        """Yield the study's instances, built on demand; every call yields identical data.

        By default each dataset is decoded (lazily, by ``dcmread``) from the bytes of
        :meth:`part10`.  With ``reference=True`` each dataset is instead built attribute by
        attribute with pydicom: slower, same content; the tests compare both.  For volume,
        prefer :meth:`part10`: re-encoding datasets with pydicom costs milliseconds each.
        """
        if reference:
            for series in self._plan.series:
                for number, uid in enumerate(_instance_uids(self._plan, series), start=1):
                    yield _reference_dataset(self._plan, series, number, uid)
            return
        for data in self.part10():
            yield pydicom.dcmread(io.BytesIO(data))

    def part10(self) -> Iterator[bytes]:
        """Yield each instance encoded as a DICOM Part 10 file (Explicit VR Little Endian)."""
        return _encode_study(self._plan)

    def to_dicom_json(self, *, include_pixel_data: bool = False) -> list[dict[str, Any]]:
        """The study's instances in the DICOM JSON model (PS3.18 Annex F)."""
        return instances_json(self, include_pixel_data=include_pixel_data)


# --- public functions -----------------------------------------------------------------------


def generate_studies(
    count: int,
    *,
    seed: int = 0,
    profile: str = "mixed",
    patients: int | None = None,
    id_prefix: str = "",
    uid_root: str | None = None,
    every_patient: bool = False,
) -> Iterator[GeneratedStudy]:
    """Yield ``count`` deterministic synthetic studies.

    :param count: number of studies.
    :param seed: any integer; different seeds give unrelated UIDs and identifiers.
    :param profile: ``"mixed"`` (realistic, skewed small: 1-6 series, 1-200 instances),
        ``"typical"`` (always 4 series x 25 instances) or ``"small"`` (1-2 series, at most
        5 instances; fastest to load).
    :param patients: size of the patient pool; default ``max(1, count // 4)``.
    :param id_prefix: up to 6 letters/digits put in front of every PatientID, AccessionNumber,
        placer and filler order number so that runs sharing one archive/EHR never collide.
    :param uid_root: optional UID root; UIDs then are ``<uid_root>.<random digits>`` instead of
        the default UUID-derived ``2.25.<int>`` form (PS3.5 section B.2).
    :param every_patient: give every patient of the pool at least one study (study ``i`` of
        the first ``patients`` is patient ``i``'s), for callers that need several patients.
        Needs ``count >= patients``.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    if not _ID_PREFIX_RE.match(id_prefix):
        raise ValueError("id_prefix must be 0-6 ASCII letters or digits")
    if uid_root is not None and (not _UID_ROOT_RE.match(uid_root) or len(uid_root) > 40):
        raise ValueError("uid_root must be a dotted-decimal UID root of at most 40 characters")
    pool_size = max(1, count // 4) if patients is None else patients
    if pool_size < 1:
        raise ValueError("patients must be >= 1")
    if every_patient and count < pool_size:
        raise ValueError("every_patient needs count >= patients")
    key = f"ifb-samples|{seed}|{id_prefix}|{uid_root or ''}"
    pool = _make_patients(key, pool_size, id_prefix)
    serial_rng = random.Random(f"{key}|serials")
    acc_base = serial_rng.randrange(10**6)
    order_base = serial_rng.randrange(10**7)
    for index in range(count):
        rng = random.Random(f"{key}|study|{index}")
        plan = _plan_study(
            rng, key, index, pool, profile, id_prefix, uid_root,
            acc_serial=(acc_base + index * _SERIAL_STEP) % 10**6,
            order_serial=(order_base + index * _SERIAL_STEP) % 10**7,
            patient=pool[index] if every_patient and index < pool_size else None,
        )
        yield GeneratedStudy(plan)


def write_part10(ds: Dataset) -> bytes:
    """Encode ``ds`` as a DICOM Part 10 file (preamble, ``DICM``, file meta, data set)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def instances_json(
    study: GeneratedStudy, *, include_pixel_data: bool = False
) -> list[dict[str, Any]]:
    """Return the study's instances as DICOM JSON dictionaries (``Dataset.to_json_dict``).

    Without ``include_pixel_data`` the Pixel Data element is left out, like a WADO-RS
    metadata response that would reference it by BulkDataURI.  Useful as golden input for
    the mapping engine.
    """
    result: list[dict[str, Any]] = []
    for ds in study.instances():
        if not include_pixel_data:
            del ds.PixelData
        result.append(ds.to_json_dict())
    return result


def manifest_dict(
    studies: Iterable[GeneratedStudy | StudyTruth],
    *,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the ground-truth manifest (see ``samples/README.md`` for the format)."""
    truths = [s.truth if isinstance(s, GeneratedStudy) else s for s in studies]
    patients = {(t.patient_issuer, t.patient_id) for t in truths}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "parameters": dict(parameters or {}),
        "totals": {
            "studies": len(truths),
            "series": sum(t.series_count for t in truths),
            "instances": sum(t.instance_count for t in truths),
            "patients": len(patients),
        },
        "studies": [t.to_dict() for t in truths],
    }


def write_manifest(
    path: str | Path,
    studies: Iterable[GeneratedStudy | StudyTruth],
    *,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the manifest as UTF-8 JSON to ``path`` and return it."""
    manifest = manifest_dict(studies, parameters=parameters)
    Path(path).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return manifest


def read_manifest(path: str | Path) -> list[StudyTruth]:
    """Read a manifest written by :func:`write_manifest` back into truth records."""
    data = json.loads(Path(path).read_text("utf-8"))
    if data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a samples manifest")
    return [StudyTruth.from_dict(s) for s in data["studies"]]


# --- planning -------------------------------------------------------------------------------


def _uid(rng: random.Random, uid_root: str | None) -> str:
    """A fresh UID: UUID-derived ``2.25.<int>`` (PS3.5 B.2) or ``<root>.<digits>``."""
    bits = rng.getrandbits(128)
    if uid_root is None:
        # set the version/variant bits so the integer really is a (version 4) UUID
        return f"2.25.{uuid.UUID(int=bits, version=4).int}"
    suffix = str(bits)[: 63 - len(uid_root)].lstrip("0") or "1"
    return f"{uid_root}.{suffix}"


def _random_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return dt.date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def _make_patients(key: str, size: int, id_prefix: str) -> list[SamplePatient]:
    rng = random.Random(f"{key}|patients")
    base = {"HOSP_A": rng.randrange(10**7), "HOSP_B": rng.randrange(10**7)}
    used: dict[str, set[str]] = {"HOSP_A": set(), "HOSP_B": set()}
    counters = {"HOSP_A": 0, "HOSP_B": 0}
    first_a: str | None = None
    pool: list[SamplePatient] = []
    for _ in range(size):
        issuer = "HOSP_A" if rng.random() < 0.7 else "HOSP_B"
        sex = rng.choices(("F", "M", "O"), weights=(50, 48, 2))[0]
        birth = _random_date(rng, _FIRST_BIRTH_DATE, _LAST_BIRTH_DATE)
        name, charset = _random_name(rng, sex)
        if issuer == "HOSP_B" and counters["HOSP_B"] == 0 and first_a is not None:
            # the same MRN value under both issuers (two different people): matching must
            # look at IssuerOfPatientID, not just PatientID.
            value = first_a
        else:
            n = counters[issuer]
            while True:
                value = f"{id_prefix}{(base[issuer] + n * _SERIAL_STEP) % 10**7:07d}"
                n += 1
                if value not in used[issuer]:
                    break
        counters[issuer] += 1
        used[issuer].add(value)
        if issuer == "HOSP_A" and first_a is None:
            first_a = value
        pool.append(SamplePatient(value, issuer, name, charset, birth.strftime("%Y%m%d"), sex))
    return pool


def _random_name(rng: random.Random, sex: str) -> tuple[str, str | None]:
    given_sex = sex if sex in ("F", "M") else rng.choice(("F", "M"))
    r = rng.random()
    if r < 0.10:
        family = rng.choice(_LATIN1_FAMILY)
        given = rng.choice(_LATIN1_GIVEN[given_sex])
        return f"{family}^{given}", "ISO_IR 100"
    if r < 0.20:
        candidates = [n for n, s in _UTF8_NAMES if s == given_sex]
        return rng.choice(candidates), "ISO_IR 192"
    family = rng.choice(_ASCII_FAMILY)
    given = rng.choice(_ASCII_GIVEN[given_sex])
    if rng.random() < 0.1:
        return f"{family}^{given}^{rng.choice('ABCDEFGHJKLMNPRSTW')}", None
    return f"{family}^{given}", None


def _age_at(birth: str, when: dt.date) -> int:
    b = dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    return when.year - b.year - ((when.month, when.day) < (b.month, b.day))


def _format_time(rng: random.Random, t: dt.time) -> str:
    r = rng.random()
    if r < 0.05:
        return t.strftime("%H%M")
    if r < 0.30:
        digits = rng.randint(1, 6)
        fraction = f"{t.microsecond:06d}"[:digits]
        return f"{t.strftime('%H%M%S')}.{fraction}"
    return t.strftime("%H%M%S")


def _timezone(issuer: str, date: dt.date) -> str:
    summer = 4 <= date.month <= 10  # rough daylight-saving season
    if issuer == "HOSP_A":
        return "+0200" if summer else "+0100"
    return "-0400" if summer else "-0500"


def _pick_procedure(rng: random.Random, patient: SamplePatient, date: dt.date) -> _Procedure:
    modalities = list(_MODALITY_WEIGHTS)
    weights = list(_MODALITY_WEIGHTS.values())
    modality = rng.choices(modalities, weights=weights)[0]
    if modality == "MG" and (patient.sex != "F" or _age_at(patient.birth_date, date) < 35):
        others = [m for m in modalities if m != "MG"]
        modality = rng.choices(others, weights=[_MODALITY_WEIGHTS[m] for m in others])[0]
    candidates = [p for p in _PROCEDURES if p.modality == modality]
    return rng.choices(candidates, weights=[p.weight for p in candidates])[0]


def _bucket(rng: random.Random, buckets: Sequence[tuple[int, int, int]]) -> int:
    low, high, _ = rng.choices(buckets, weights=[b[2] for b in buckets])[0]
    return rng.randint(low, high)


_CT_BUCKETS = ((1, 5, 50), (6, 20, 30), (21, 50, 15), (51, 100, 5))
_MR_BUCKETS = ((1, 5, 50), (6, 20, 35), (21, 40, 15))
_US_BUCKETS = ((1, 5, 50), (6, 20, 35), (21, 60, 15))


def _series_layout(
    rng: random.Random, proc: _Procedure, profile: str
) -> list[tuple[str, int, bool]]:
    """(SeriesDescription, instance count, is localizer) for each series."""
    descs = proc.series
    if profile == "typical":
        return [(descs[i % len(descs)], 25, False) for i in range(4)]
    if profile == "small":
        if proc.code == "MGSCREEN":
            return [(descs[0], 4, False)]
        n = 1 if rng.random() < 0.7 else 2
        return [(descs[i % len(descs)], rng.randint(1, 2), False) for i in range(n)]
    # mixed
    layout: list[tuple[str, int, bool]]
    if proc.modality in ("CT", "MR"):
        weights = (25, 25, 20, 15, 10, 5) if proc.modality == "CT" else (5, 15, 25, 25, 20, 10)
        n = rng.choices(range(1, 7), weights=weights)[0]
        chosen = [descs[1]] if n == 1 else [descs[i % len(descs)] for i in range(n)]
        buckets = _CT_BUCKETS if proc.modality == "CT" else _MR_BUCKETS
        layout = []
        for i, desc in enumerate(chosen):
            localizer = n > 1 and i == 0
            count = rng.randint(1, 3) if localizer else _bucket(rng, buckets)
            layout.append((desc, count, localizer))
    elif proc.modality == "CR":
        n = 1 if rng.random() < 0.75 else 2
        layout = [(descs[i % len(descs)], 1 if rng.random() < 0.8 else 2, False)
                  for i in range(n)]
    elif proc.modality == "US":
        n = 1 if rng.random() < 0.85 else 2
        layout = [(descs[i % len(descs)], _bucket(rng, _US_BUCKETS), False) for i in range(n)]
    elif proc.code == "MGSCREEN":
        layout = [(descs[0], 4, False)]
        if rng.random() < 0.15:
            layout.append((descs[1], rng.randint(1, 2), False))
    else:  # MGDIAG
        layout = [(descs[0], rng.randint(2, 3), False)]
        if rng.random() < 0.3:
            layout.append((descs[1], 1, False))
    # keep the study within 1..200 instances
    while sum(c for _, c, _ in layout) > 200:
        i = max(range(len(layout)), key=lambda j: layout[j][1])
        desc, count, loc = layout[i]
        layout[i] = (desc, max(1, count - (sum(c for _, c, _ in layout) - 200)), loc)
    return layout


def _plan_study(
    rng: random.Random,
    key: str,
    index: int,
    pool: Sequence[SamplePatient],
    profile: str,
    id_prefix: str,
    uid_root: str | None,
    *,
    acc_serial: int,
    order_serial: int,
    patient: SamplePatient | None = None,
) -> _StudyPlan:
    if patient is None:
        patient = rng.choice(pool)
    date = _random_date(rng, _FIRST_STUDY_DATE, _LAST_STUDY_DATE)
    proc = _pick_procedure(rng, patient, date)
    study_uid = _uid(rng, uid_root)

    # time of day: mostly working hours, a few night-time emergencies
    hour = rng.randint(0, 6) if rng.random() < 0.05 else rng.randint(7, 19)
    start = dt.datetime.combine(
        date, dt.time(hour, rng.randint(0, 59), rng.randint(0, 59), rng.randrange(10**6))
    )
    has_time = rng.random() >= 0.05
    study_time = _format_time(rng, start.time()) if has_time else None
    tz = _timezone(patient.issuer, date) if rng.random() >= 0.35 else None

    # identifiers
    accession = f"{id_prefix}{date.year % 100:02d}{acc_serial:06d}"
    accession_issuer = (
        _ACCESSION_ISSUER[patient.issuer] if rng.random() >= 0.04 else None
    )
    has_orders = rng.random() >= 0.10
    placer = f"{id_prefix}ORD{order_serial:07d}" if has_orders else None
    filler = f"{id_prefix}RIS{order_serial:07d}" if has_orders else None
    study_id = str(rng.randint(1, 99999))

    # codes
    local = CodeTruth(proc.code, _LOCAL, proc.meaning)
    codes: tuple[CodeTruth, ...] = (local,)
    if proc.loinc is not None:
        r = rng.random()
        loinc = CodeTruth(proc.loinc[0], _LN, proc.loinc[1])
        if r < 0.2:
            codes = (loinc,)
        elif r < 0.4:
            codes = (local, loinc)
    reason_codes: tuple[CodeTruth, ...] = ()
    if proc.reasons and rng.random() < 0.3:
        code, meaning = rng.choice(proc.reasons)
        reason_codes = (CodeTruth(code, _SCT, meaning),)
    reason_text = (
        rng.choice(proc.reason_texts) if proc.reason_texts and rng.random() < 0.4 else None
    )
    description = proc.meaning.upper() if rng.random() < 0.2 else proc.meaning

    institution, departments = _INSTITUTIONS[patient.issuer]
    department = "Breast Imaging" if proc.modality == "MG" else rng.choice(departments)
    referring = "" if rng.random() < 0.05 else rng.choice(_REFERRING)
    reading = rng.choice(_READING)

    # body part / laterality
    r = rng.random()
    body_part: str | None = proc.body_part
    odd = False
    if r < 0.06:
        body_part = rng.choice(_ODD_BODY_PARTS[proc.body_part])
        odd = True
    elif r < 0.08:
        body_part = None
    side = rng.choice(("R", "L")) if proc.paired else None

    layout = _series_layout(rng, proc, profile)
    if proc.code == "MGDIAG" and profile == "mixed" and rng.random() < 0.4:
        # breast clinic work-up: a diagnostic mammogram plus an ultrasound of the same side
        layout.append(("Breast US", _bucket(rng, _US_BUCKETS[:2]), False))

    series: list[_SeriesPlan] = []
    operator = rng.choice(_OPERATORS)
    performing = rng.choice(_PERFORMING)
    for number, (desc, count, localizer) in enumerate(layout, start=1):
        modality = "US" if desc == "Breast US" else proc.modality
        series_start = start + dt.timedelta(minutes=3 * (number - 1), seconds=rng.randint(0, 59))
        views: tuple[tuple[str, str], ...] = ()
        if modality == "MG":
            if side is None:
                views = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))
            else:
                views = ((side, "CC"), (side, "MLO"))
        series.append(
            _SeriesPlan(
                number=number,
                uid=_uid(rng, uid_root),
                modality=modality,
                description=desc,
                body_part=body_part,
                body_part_odd=odd,
                laterality=side,
                instance_count=count,
                date=series_start.strftime("%Y%m%d"),
                time=series_start.strftime("%H%M%S") if has_time else None,
                performing=performing,
                operator=operator,
                frame_of_reference_uid=(
                    _uid(rng, uid_root) if modality in ("CT", "MR") else None
                ),
                localizer=localizer,
                views=views,
            )
        )

    return _StudyPlan(
        key=key,
        index=index,
        uid_root=uid_root,
        patient=patient,
        study_uid=study_uid,
        study_id=study_id,
        accession=accession,
        accession_issuer=accession_issuer,
        placer=placer,
        filler=filler,
        date=date.strftime("%Y%m%d"),
        time=study_time,
        tz=tz,
        description=description,
        procedure_codes=codes,
        reason_codes=reason_codes,
        reason_text=reason_text,
        referring=referring,
        reading=reading,
        institution=institution,
        department=department,
        series=tuple(series),
    )


def _truth_from_plan(plan: _StudyPlan) -> StudyTruth:
    series = tuple(
        SeriesTruth(
            series_uid=s.uid,
            series_number=s.number,
            modality=s.modality,
            sop_class_uid=SOP_CLASS_BY_MODALITY[s.modality],
            description=s.description,
            body_part=s.body_part,
            laterality=s.laterality,
            instance_count=s.instance_count,
        )
        for s in plan.series
    )
    lateralities = {s.laterality for s in plan.series if s.laterality}
    for s in plan.series:
        lateralities.update(side for side, _ in s.views[: s.instance_count])
    p = plan.patient
    return StudyTruth(
        index=plan.index,
        study_uid=plan.study_uid,
        study_id=plan.study_id,
        patient_id=p.patient_id,
        patient_issuer=p.issuer,
        patient_name=p.name,
        patient_birth_date=p.birth_date,
        patient_sex=p.sex,
        charset=p.charset,
        accession_number=plan.accession,
        accession_issuer=plan.accession_issuer,
        placer_order_number=plan.placer,
        filler_order_number=plan.filler,
        study_date=plan.date,
        study_time=plan.time,
        timezone_offset=plan.tz,
        description=plan.description,
        procedure_codes=plan.procedure_codes,
        reason_codes=plan.reason_codes,
        reason_text=plan.reason_text,
        referring_physician=plan.referring,
        institution=plan.institution,
        department=plan.department,
        modalities=tuple(sorted({s.modality for s in plan.series})),
        series_count=len(series),
        instance_count=sum(s.instance_count for s in series),
        body_parts=tuple(sorted({s.body_part for s in plan.series if s.body_part})),
        laterality=tuple(sorted(lateralities)),
        series=series,
    )


# --- instance construction ------------------------------------------------------------------
#
# Going through pydicom's attribute API for ~70 elements costs milliseconds per instance, far
# too slow for tens of thousands of instances.  So the content of an instance is described once
# as plain (tag, VR, value) tuples, split into study-, series- and instance-level parts, and
# encoded by a small Explicit VR Little Endian encoder (PS3.5 section 7.1.2): study and series
# parts are encoded once and only the few instance elements (UID, number, position, view,
# pixels) are encoded per instance.  ``reference=True`` builds the very same tuples into
# pydicom Datasets instead; the unit tests check that pydicom then writes identical bytes.

_Element = tuple[int, str, Any]

_PREAMBLE = b"\x00" * 128
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"})
#: VRs whose text is encoded with the SpecificCharacterSet (PS3.5 section 6.1.2.3)
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "PN", "UC", "UT"})
_CODECS: dict[str | None, str] = {None: "ascii", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf-8"}
_ITEM_TAG = struct.pack("<HH", 0xFFFE, 0xE000)


@functools.cache
def _tag_vr(keyword: str) -> tuple[int, str]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag, dictionary_VR(tag)


def _el(keyword: str, value: Any, vr: str | None = None) -> _Element:
    tag, dictionary_vr = _tag_vr(keyword)
    return tag, vr or dictionary_vr, value


def _code_item(code: CodeTruth) -> list[_Element]:
    return [
        _el("CodeValue", code.code),
        _el("CodingSchemeDesignator", code.scheme),
        _el("CodeMeaning", code.meaning),
    ]


def _encode_value(vr: str, value: Any, codec: str) -> bytes:
    if vr == "SQ":
        out = []
        for item in value:
            body = b"".join(_encode_elements(item, codec).values())
            out.append(_ITEM_TAG + struct.pack("<I", len(body)) + body)
        return b"".join(out)
    if vr in ("OB", "OW"):
        raw = bytes(value)
        return raw + b"\x00" if len(raw) % 2 else raw
    if vr == "US":
        return struct.pack("<H", value)
    if vr == "UL":
        return struct.pack("<I", value)
    text = "\\".join(value) if isinstance(value, list) else str(value)
    raw = text.encode(codec if vr in _CHARSET_VRS else "ascii")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def _encode_element(tag: int, vr: str, value: Any, codec: str) -> bytes:
    """One Explicit VR Little Endian data element (PS3.5 section 7.1.2)."""
    raw = _encode_value(vr, value, codec)
    group, element = tag >> 16, tag & 0xFFFF
    if vr in _LONG_LENGTH_VRS:
        return struct.pack("<HH2sHI", group, element, vr.encode(), 0, len(raw)) + raw
    return struct.pack("<HH2sH", group, element, vr.encode(), len(raw)) + raw


def _encode_elements(elements: Iterable[_Element], codec: str) -> dict[int, bytes]:
    """Encoded elements keyed by tag, in tag order."""
    encoded = {tag: _encode_element(tag, vr, value, codec) for tag, vr, value in elements}
    return {tag: encoded[tag] for tag in sorted(encoded)}


def _file_meta_elements(sop_class: str, sop_uid: str) -> list[_Element]:
    """File Meta Information (PS3.10 section 7.1) without its group length."""
    return [
        _el("FileMetaInformationVersion", b"\x00\x01"),
        _el("MediaStorageSOPClassUID", sop_class),
        _el("MediaStorageSOPInstanceUID", sop_uid),
        _el("TransferSyntaxUID", ExplicitVRLittleEndian),
        _el("ImplementationClassUID", IMPLEMENTATION_CLASS_UID),
        _el("ImplementationVersionName", IMPLEMENTATION_VERSION_NAME),
    ]


def _file_meta_bytes(sop_class: str, sop_uid: str) -> bytes:
    body = b"".join(_encode_elements(_file_meta_elements(sop_class, sop_uid), "ascii").values())
    group_length = _encode_element(0x00020000, "UL", len(body), "ascii")
    return b"DICM" + group_length + body


def _pixels(modality: str, series_number: int, instance_number: int) -> tuple[int, int, bytes]:
    """(rows = columns, bits allocated, pixel bytes): a small deterministic gradient."""
    if modality in ("CT", "MR"):
        size = 8
        values = [
            (x * 97 + y * 53 + instance_number * 31 + series_number * 7) % 4096
            for y in range(size)
            for x in range(size)
        ]
        return size, 16, struct.pack(f"<{size * size}H", *values)
    size = 16
    data = bytes(
        (x * 13 + y * 7 + instance_number * 5 + series_number * 3) % 256
        for y in range(size)
        for x in range(size)
    )
    return size, 8, data


def _study_elements(plan: _StudyPlan) -> list[_Element]:
    """Patient and study level elements (PS3.3 C.7.1.1, C.7.2.1) plus order information."""
    patient = plan.patient
    els: list[_Element] = []
    if patient.charset:
        els.append(_el("SpecificCharacterSet", patient.charset))
    els += [
        _el("StudyDate", plan.date),
        _el("AccessionNumber", plan.accession),
        _el("Manufacturer", "Synthetic Imaging Co."),
        _el("InstitutionName", plan.institution),
        _el("InstitutionalDepartmentName", plan.department),
        _el("ReferringPhysicianName", plan.referring),
        _el("StudyDescription", plan.description),
        _el("ProcedureCodeSequence", [_code_item(c) for c in plan.procedure_codes]),
        _el("NameOfPhysiciansReadingStudy", plan.reading),
        _el("PatientName", patient.name),
        _el("PatientID", patient.patient_id),
        _el("IssuerOfPatientID", patient.issuer),
        _el("PatientBirthDate", patient.birth_date),
        _el("PatientSex", patient.sex),
        _el("StudyInstanceUID", plan.study_uid),
        _el("StudyID", plan.study_id),
    ]
    if plan.time is not None:
        els.append(_el("StudyTime", plan.time))
    if plan.accession_issuer is not None:
        issuer = [_el("LocalNamespaceEntityID", plan.accession_issuer)]
        els.append(_el("IssuerOfAccessionNumberSequence", [issuer]))
    if plan.tz is not None:
        els.append(_el("TimezoneOffsetFromUTC", plan.tz))
    if plan.reason_text is not None:
        els.append(_el("ReasonForTheRequestedProcedure", plan.reason_text))
    if plan.reason_codes:
        els.append(
            _el("ReasonForPerformedProcedureCodeSequence",
                [_code_item(c) for c in plan.reason_codes])
        )
    if plan.placer is not None:
        els.append(_el("PlacerOrderNumberImagingServiceRequest", plan.placer))
    if plan.filler is not None:
        els.append(_el("FillerOrderNumberImagingServiceRequest", plan.filler))
    return els


def _series_elements(series: _SeriesPlan) -> list[_Element]:
    """Series, equipment and image-pixel elements shared by all instances of a series."""
    modality = series.modality
    if series.localizer:
        image_type = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    elif modality in ("CT", "MR"):
        image_type = ["ORIGINAL", "PRIMARY", "AXIAL" if modality == "CT" else "OTHER"]
    else:
        image_type = ["ORIGINAL", "PRIMARY"]
    bits = 16 if modality in ("CT", "MR") else 8
    size = 8 if bits == 16 else 16
    els: list[_Element] = [
        _el("ImageType", image_type),
        _el("SOPClassUID", SOP_CLASS_BY_MODALITY[modality]),
        _el("SeriesDate", series.date),
        _el("ContentDate", series.date),
        _el("Modality", modality),
        _el("StationName", _STATIONS[modality]),
        _el("SeriesDescription", series.description),
        _el("PerformingPhysicianName", series.performing),
        _el("OperatorsName", series.operator),
        _el("ManufacturerModelName", _MODELS[modality]),
        _el("SeriesInstanceUID", series.uid),
        _el("SeriesNumber", str(series.number)),
        # Image Pixel (C.7.6.3)
        _el("SamplesPerPixel", 1),
        _el("PhotometricInterpretation", "MONOCHROME2"),
        _el("Rows", size),
        _el("Columns", size),
        _el("BitsAllocated", bits),
        _el("BitsStored", 12 if bits == 16 else 8),
        _el("HighBit", 11 if bits == 16 else 7),
        _el("PixelRepresentation", 0),
    ]
    if series.time is not None:
        els += [_el("SeriesTime", series.time), _el("ContentTime", series.time)]
    if series.body_part is not None:
        els.append(_el("BodyPartExamined", series.body_part))
    if series.laterality is not None:
        els.append(_el("Laterality", series.laterality))
    if modality in ("CT", "MR"):
        els += [
            _el("SliceThickness", "1" if series.localizer else "5"),
            _el("ImageOrientationPatient", ["1", "0", "0", "0", "1", "0"]),
            _el("FrameOfReferenceUID", series.frame_of_reference_uid),
            _el("PositionReferenceIndicator", ""),
            _el("PixelSpacing", ["25", "25"]),
        ]
    if modality == "CT":
        els += [
            _el("KVP", "120"),
            _el("WindowCenter", "40"),
            _el("WindowWidth", "400"),
            _el("RescaleIntercept", "-1024"),
            _el("RescaleSlope", "1"),
            _el("RescaleType", "HU"),
        ]
    elif modality == "MR":
        els += [
            _el("ScanningSequence", "SE"),
            _el("SequenceVariant", "NONE"),
            _el("MRAcquisitionType", "2D"),
            _el("RepetitionTime", "3000"),
            _el("EchoTime", "90"),
            _el("MagneticFieldStrength", "1.5"),
            _el("WindowCenter", "600"),
            _el("WindowWidth", "1200"),
        ]
    elif modality == "CR":
        view = {"PA": "PA", "AP": "AP", "Lateral": "LL"}.get(series.description, "")
        els += [_el("KVP", "110"), _el("ViewPosition", view), _el("PatientOrientation", "")]
    elif modality == "US":
        els.append(_el("PatientOrientation", ""))
    elif modality == "MG":
        els += [
            _el("PresentationIntentType", "FOR PRESENTATION"),
            _el("KVP", "28"),
            _el("BreastImplantPresent", "NO"),
        ]
    return els


def _instance_elements(series: _SeriesPlan, number: int, sop_uid: str) -> list[_Element]:
    """The elements that differ between the instances of one series."""
    els: list[_Element] = [
        _el("SOPInstanceUID", sop_uid),
        _el("InstanceNumber", str(number)),
    ]
    if series.modality in ("CT", "MR"):
        z = f"{-(number - 1) * (1 if series.localizer else 5)}"
        els += [_el("ImagePositionPatient", ["-100", "-100", z]), _el("SliceLocation", z)]
    elif series.modality == "MG":
        side, view = series.views[(number - 1) % len(series.views)]
        code, meaning = _MG_VIEWS[view]
        els += [
            _el("ViewPosition", view),
            _el("ImageLaterality", side),
            _el("ViewCodeSequence", [_code_item(CodeTruth(code, _SCT, meaning))]),
        ]
    _, bits, pixel_bytes = _pixels(series.modality, series.number, number)
    els.append(_el("PixelData", pixel_bytes, "OW" if bits == 16 else "OB"))
    return els


def _instance_uids(plan: _StudyPlan, series: _SeriesPlan) -> Iterator[str]:
    rng = random.Random(f"{plan.key}|study|{plan.index}|series|{series.number}")
    for _ in range(series.instance_count):
        yield _uid(rng, plan.uid_root)


def _to_dataset(elements: Iterable[_Element], lenient: frozenset[int] = frozenset()) -> Dataset:
    ds = Dataset()
    for tag, vr, value in elements:
        if vr == "SQ":
            value = DicomSequence([_to_dataset(item) for item in value])
        if tag in lenient:
            # an intentionally malformed value (e.g. BodyPartExamined "Thorax"): no warning
            ds[tag] = DataElement(tag, vr, value, validation_mode=dicom_config.IGNORE)
        else:
            ds.add_new(tag, vr, value)
    return ds


def _reference_dataset(
    plan: _StudyPlan, series: _SeriesPlan, number: int, sop_uid: str
) -> Dataset:
    """One instance built entirely through pydicom (slow; the tests compare it)."""
    lenient = frozenset({_tag_vr("BodyPartExamined")[0]}) if series.body_part_odd else frozenset()
    ds = _to_dataset(
        [*_study_elements(plan), *_series_elements(series),
         *_instance_elements(series, number, sop_uid)],
        lenient,
    )
    sop_class = SOP_CLASS_BY_MODALITY[series.modality]
    meta = FileMetaDataset(_to_dataset(_file_meta_elements(sop_class, sop_uid)))
    meta.FileMetaInformationGroupLength = 0  # recomputed by pydicom when written
    ds.file_meta = meta
    ds.preamble = _PREAMBLE
    return ds


def _encode_study(plan: _StudyPlan) -> Iterator[bytes]:
    codec = _CODECS[plan.patient.charset]
    study_chunks = _encode_elements(_study_elements(plan), codec)
    for series in plan.series:
        sop_class = SOP_CLASS_BY_MODALITY[series.modality]
        series_chunks = {**study_chunks, **_encode_elements(_series_elements(series), codec)}
        for number, sop_uid in enumerate(_instance_uids(plan, series), start=1):
            chunks = {
                **series_chunks,
                **_encode_elements(_instance_elements(series, number, sop_uid), codec),
            }
            body = b"".join(chunks[tag] for tag in sorted(chunks))
            yield _PREAMBLE + _file_meta_bytes(sop_class, sop_uid) + body
