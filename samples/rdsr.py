"""Deterministic X-Ray Radiation Dose SRs for the generated studies (PS3.16 TID 10001, 10011).

* CT studies get a CT Radiation Dose report (TID 10011): the CT Accumulated Dose Data
  (TID 10012: number of irradiation events 113812, DLP total 113813) and one CT Acquisition
  (TID 10013) per irradiation event: target region 123014, acquisition type 113820, the
  Irradiation Event UID 113769 and CT Dose (mean CTDIvol 113830, DLP 113838, phantom 113835).
* Projection studies (CR, DX, MG) get a Projection X-Ray report (TID 10001): Accumulated X-Ray
  Dose Data (TID 10002: dose-area product total 113722, dose (RP) total 113725) and one
  Irradiation Event X-Ray Data container (TID 10003) per exposure with its DAP 122130.

Values are drawn in realistic ranges for the body region (CTDIvol of a head CT 35-65 mGy, of a
chest CT 4-15 mGy; a chest radiograph 0.05-0.2 Gy.cm2 = 5e-6..2e-5 Gy.m2), and every value,
UID and time is a pure function of ``(study, seed)``: the same study and seed give the same SR.
The patient and study identifiers are those of the generated study (its
:class:`~samples.truth.StudyTruth`), so the SR belongs to that study.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from samples.sr_content import (
    code,
    code_item,
    container,
    datetime_item,
    num_item,
    sr_document,
    text_item,
    uid,
    uidref_item,
)
from samples.truth import StudyTruth

__all__ = [
    "RDSR_SOP_CLASS_UID",
    "DoseEventTruth",
    "DoseTruth",
    "ct_dose_sr",
    "dose_sr",
    "projection_dose_sr",
]

#: X-Ray Radiation Dose SR Storage (PS3.4 B.5)
RDSR_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.67"

_DCM = "DCM"
_SCT = "SCT"
_MGY = code("mGy", "UCUM", "mGy")
_MGY_CM = code("mGy.cm", "UCUM", "mGy.cm")
_GY = code("Gy", "UCUM", "Gy")
_GY_M2 = code("Gy.m2", "UCUM", "Gy.m2")
_EVENTS = code("{events}", "UCUM", "events")

#: body part -> (SNOMED CT target region, CTDIvol mGy range, scan length cm range,
#: radiograph DAP Gy.m2 range); the default row is used for anything else
_REGIONS: dict[str, tuple[tuple[str, str], tuple[float, float], tuple[float, float],
                          tuple[float, float]]] = {
    "HEAD": (("69536005", "Head"), (35.0, 65.0), (12.0, 18.0), (2e-6, 1e-5)),
    "CHEST": (("51185008", "Chest"), (4.0, 15.0), (28.0, 40.0), (5e-6, 2e-5)),
    "ABDOMEN": (("818981001", "Abdomen"), (8.0, 20.0), (35.0, 50.0), (1e-4, 3e-4)),
    "PELVIS": (("816092008", "Pelvis"), (8.0, 20.0), (20.0, 30.0), (1e-4, 3e-4)),
    "BREAST": (("76752008", "Breast"), (5.0, 10.0), (10.0, 15.0), (1e-5, 4e-5)),
}
_DEFAULT_REGION = (("38266002", "Entire body"), (5.0, 20.0), (20.0, 60.0), (1e-5, 1e-4))
_PROJECTION = ("CR", "DX", "MG")


@dataclass(frozen=True)
class DoseEventTruth:
    """One irradiation event as written in the SR."""

    event_uid: str
    target_region: str
    ctdivol_mgy: float | None
    dlp_mgy_cm: float | None
    dap_gy_m2: float | None


@dataclass(frozen=True)
class DoseTruth:
    """What a generated dose SR says: its kind (``"CT"`` or ``"projection"``), UIDs, totals
    and events; the ground truth of the dose tests and of cumulative-DLP questions."""

    kind: str
    sop_uid: str
    series_uid: str
    study_uid: str
    patient_id: str
    dlp_total_mgy_cm: float | None
    dap_total_gy_m2: float | None
    events: tuple[DoseEventTruth, ...]


def _rng(truth: StudyTruth, seed: int, kind: str) -> random.Random:
    return random.Random(f"ifb-rdsr|{seed}|{kind}|{truth.study_uid}")


def _region(truth: StudyTruth) -> tuple[tuple[str, str], tuple[float, float],
                                        tuple[float, float], tuple[float, float]]:
    for part in truth.body_parts:
        if part.upper() in _REGIONS:
            return _REGIONS[part.upper()]
    return _DEFAULT_REGION


def _content_time(truth: StudyTruth, rng: random.Random) -> tuple[str, str]:
    hour = int(truth.study_time[:2]) if truth.study_time else 9
    minute = rng.randrange(60)
    return truth.study_date, f"{min(hour + 1, 23):02d}{minute:02d}00"


def _procedure(concept_meaning: tuple[str, str, str]) -> Dataset:
    item = code_item("HAS CONCEPT MOD", code("121058", _DCM, "Procedure reported"),
                     code(*concept_meaning))
    item.ContentSequence = Sequence([
        code_item("HAS CONCEPT MOD", code("363703001", _SCT, "Has Intent"),
                  code("261004008", _SCT, "Diagnostic Intent")),
    ])
    return item


def _context(
    truth: StudyTruth, rng: random.Random, kind: str, start: str, end: str
) -> tuple[list[Dataset], list[Dataset]]:
    """(observation context, trailing items) of TID 10001 / 10011: the device observer
    (TID 1002: observer type 121005 = device 121007, Device Observer UID 121012, name 121013,
    manufacturer 121014, model 121015), the scope of accumulation (113705 = study 113014 with
    its Study Instance UID 110180), start and end of X-ray irradiation (113809, 113810) and
    the source of dose information (113854 = automated data collection 113856)."""
    station = rng.choice(("CT01", "CT02")) if kind == "CT" else rng.choice(("DR01", "DR02"))
    scope = code_item("HAS OBS CONTEXT", code("113705", _DCM, "Scope of Accumulation"),
                      code("113014", _DCM, "Study"))
    scope.ContentSequence = Sequence([
        uidref_item("HAS PROPERTIES", code("110180", _DCM, "Study Instance UID"),
                    truth.study_uid),
    ])
    context = [
        code_item("HAS OBS CONTEXT", code("121005", _DCM, "Observer Type"),
                  code("121007", _DCM, "Device")),
        uidref_item("HAS OBS CONTEXT", code("121012", _DCM, "Device Observer UID"),
                    uid(rng)),
        text_item("HAS OBS CONTEXT", code("121013", _DCM, "Device Observer Name"), station),
        text_item("HAS OBS CONTEXT", code("121014", _DCM, "Device Observer Manufacturer"),
                  "Synthetic Imaging Co."),
        text_item("HAS OBS CONTEXT", code("121015", _DCM, "Device Observer Model Name"),
                  "SynthScan 64" if kind == "CT" else "SynthRad DR"),
        scope,
    ]
    trailing = [
        datetime_item("CONTAINS", code("113809", _DCM, "Start of X-Ray Irradiation"), start),
        datetime_item("CONTAINS", code("113810", _DCM, "End of X-Ray Irradiation"), end),
        code_item("CONTAINS", code("113854", _DCM, "Source of Dose Information"),
                  code("113856", _DCM, "Automated Data Collection")),
    ]
    return context, trailing


def _irradiation_window(truth: StudyTruth, rng: random.Random) -> tuple[str, str]:
    """Start and end of irradiation (DT) within the study's hour, 4-9 minutes apart (room
    for up to four radiographs a minute apart)."""
    hour = int(truth.study_time[:2]) if truth.study_time else 9
    minute = rng.randrange(50)
    start = f"{truth.study_date}{hour:02d}{minute:02d}00"
    end = f"{truth.study_date}{hour:02d}{minute + rng.randint(4, 9):02d}00"
    return start, end


def ct_dose_sr(truth: StudyTruth, *, seed: int = 0) -> tuple[Dataset, DoseTruth]:
    """A CT Radiation Dose SR (TID 10011) for ``truth``'s study, with its ground truth."""
    rng = _rng(truth, seed, "CT")
    (region_code, region_name), ctdi_range, length_range, _ = _region(truth)
    sop_uid, series_uid = uid(rng), uid(rng)
    events: list[DoseEventTruth] = []
    acquisitions: list[Dataset] = []
    for _ in range(rng.choices((1, 2, 3), weights=(6, 3, 1))[0]):
        ctdi = round(rng.uniform(*ctdi_range), 2)
        dlp = round(ctdi * rng.uniform(*length_range), 2)
        event_uid = uid(rng)
        events.append(DoseEventTruth(event_uid, region_name, ctdi, dlp, None))
        dose = container("CONTAINS", code("113829", _DCM, "CT Dose"), [
            num_item("CONTAINS", code("113830", _DCM, "Mean CTDIvol"), ctdi, _MGY),
            num_item("CONTAINS", code("113838", _DCM, "DLP"), dlp, _MGY_CM),
            code_item("CONTAINS", code("113835", _DCM, "CTDIw Phantom Type"),
                      code("113690", _DCM, "IEC Head Dosimetry Phantom")
                      if region_name == "Head"
                      else code("113691", _DCM, "IEC Body Dosimetry Phantom")),
        ])
        acquisitions.append(container("CONTAINS", code("113819", _DCM, "CT Acquisition"), [
            code_item("CONTAINS", code("123014", _DCM, "Target Region"),
                      code(region_code, _SCT, region_name)),
            code_item("CONTAINS", code("113820", _DCM, "CT Acquisition Type"),
                      code("116152004", _SCT, "Spiral Acquisition")),
            uidref_item("CONTAINS", code("113769", _DCM, "Irradiation Event UID"), event_uid),
            dose,
        ]))
    total = round(sum(e.dlp_mgy_cm or 0.0 for e in events), 2)
    accumulated = container("CONTAINS", code("113811", _DCM, "CT Accumulated Dose Data"), [
        num_item("CONTAINS", code("113812", _DCM, "Total Number of Irradiation Events"),
                 len(events), _EVENTS),
        num_item("CONTAINS", code("113813", _DCM, "CT Dose Length Product Total"),
                 total, _MGY_CM),
    ])
    date, time = _content_time(truth, rng)
    context, trailing = _context(truth, rng, "CT", *_irradiation_window(truth, rng))
    ds = sr_document(
        truth, sop_class_uid=RDSR_SOP_CLASS_UID, sop_uid=sop_uid, series_uid=series_uid,
        template="10011", title=code("113701", _DCM, "X-Ray Radiation Dose Report"),
        content=[_procedure(("77477000", _SCT, "Computed Tomography X-Ray")), *context,
                 accumulated, *acquisitions, *trailing],
        content_date=date, content_time=time,
    )
    return ds, DoseTruth("CT", sop_uid, series_uid, truth.study_uid, truth.patient_id,
                         total, None, tuple(events))


def projection_dose_sr(truth: StudyTruth, *, seed: int = 0) -> tuple[Dataset, DoseTruth]:
    """A Projection X-Ray Radiation Dose SR (TID 10001) for ``truth``'s study."""
    rng = _rng(truth, seed, "projection")
    (region_code, region_name), _, _, dap_range = _region(truth)
    sop_uid, series_uid = uid(rng), uid(rng)
    date, time = _content_time(truth, rng)
    start, end = _irradiation_window(truth, rng)
    events: list[DoseEventTruth] = []
    irradiations: list[Dataset] = []
    for number in range(rng.randint(1, 4)):
        dap = float(f"{rng.uniform(*dap_range):.4g}")
        event_uid = uid(rng)
        events.append(DoseEventTruth(event_uid, region_name, None, None, dap))
        irradiations.append(container(
            "CONTAINS", code("113706", _DCM, "Irradiation Event X-Ray Data"), [
                uidref_item("CONTAINS", code("113769", _DCM, "Irradiation Event UID"),
                            event_uid),
                datetime_item("CONTAINS", code("111526", _DCM, "DateTime Started"),
                              f"{start[:10]}{int(start[10:12]) + number:02d}00"),
                code_item("CONTAINS", code("123014", _DCM, "Target Region"),
                          code(region_code, _SCT, region_name)),
                num_item("CONTAINS", code("122130", _DCM, "Dose Area Product"), dap, _GY_M2),
            ]))
    dap_total = float(f"{sum(e.dap_gy_m2 or 0.0 for e in events):.4g}")
    rp_total = float(f"{dap_total * rng.uniform(8.0, 15.0):.4g}")
    context, trailing = _context(truth, rng, "projection", start, end)
    accumulated = container("CONTAINS", code("113702", _DCM, "Accumulated X-Ray Dose Data"), [
        num_item("CONTAINS", code("113722", _DCM, "Dose Area Product Total"),
                 dap_total, _GY_M2),
        num_item("CONTAINS", code("113725", _DCM, "Dose (RP) Total"), rp_total, _GY),
    ])
    ds = sr_document(
        truth, sop_class_uid=RDSR_SOP_CLASS_UID, sop_uid=sop_uid, series_uid=series_uid,
        template="10001", title=code("113701", _DCM, "X-Ray Radiation Dose Report"),
        content=[_procedure(("113704", _DCM, "Projection X-Ray")), *context, accumulated,
                 *irradiations, *trailing],
        content_date=date, content_time=time,
    )
    return ds, DoseTruth("projection", sop_uid, series_uid, truth.study_uid, truth.patient_id,
                         None, dap_total, tuple(events))


def dose_sr(truth: StudyTruth, *, seed: int = 0) -> tuple[Dataset, DoseTruth] | None:
    """The dose SR a study of this modality would have: CT -> TID 10011, CR/DX/MG -> TID
    10001, anything else (MR, US: no ionising radiation) -> ``None``."""
    if "CT" in truth.modalities:
        return ct_dose_sr(truth, seed=seed)
    if any(m in _PROJECTION for m in truth.modalities):
        return projection_dose_sr(truth, seed=seed)
    return None
