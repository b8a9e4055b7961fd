"""The plan of a generated study: what it holds, level by level, and its ground truth.

:mod:`samples.planning` draws plans from a seed; :mod:`samples.instances` turns a plan into
DICOM instances and :meth:`StudyPlan.truth` into the study's :class:`~samples.truth.StudyTruth`.
"""

from __future__ import annotations

from dataclasses import dataclass

from samples.catalogue import SOP_CLASS_BY_MODALITY
from samples.truth import CodeTruth, SamplePatient, SeriesTruth, StudyTruth

__all__ = ["SeriesPlan", "StudyPlan"]


@dataclass(frozen=True)
class SeriesPlan:
    """What one series of a planned study holds (its instances follow from it)."""

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
class StudyPlan:
    """What one planned study holds: patient, identifiers, codes, people and series.

    ``key`` and ``index`` seed the draw of the instance UIDs (:func:`instance_uids`).
    """

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
    series: tuple[SeriesPlan, ...]

    def truth(self) -> StudyTruth:
        """The study's ground-truth record."""
        return _truth_from_plan(self)


def _truth_from_plan(plan: StudyPlan) -> StudyTruth:
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
