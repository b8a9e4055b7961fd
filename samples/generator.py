"""Deterministic synthetic DICOM studies with a ground-truth record per study.

Everything here is a pure function of ``(count, seed, profile, patients, id_prefix, uid_root)``:
the same arguments always give the same UIDs, identifiers, attribute values and Part 10 bytes
(no clock, no ``uuid4``, no hash randomisation; :mod:`samples.planning` says how).

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

This module is the public face of the generator; the work is done by its rooms:

* :mod:`samples.catalogue` - the vocabulary as data (``samples/catalogue/*.json``, sources
  in its README): names, sites and identifier systems, modalities, procedures, body parts;
* :mod:`samples.patients`, :mod:`samples.planning` and :mod:`samples.plans` - which
  patients, studies and series a seed gives;
* :mod:`samples.truth` - the ground-truth records and the manifest file;
* :mod:`samples.instances` and :mod:`samples.part10` - the instances' content and the
  Part 10 writer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from samples.catalogue import (
    ACCESSION_SYSTEMS,
    DEFAULT_ACCESSION_SYSTEM,
    DEFAULT_PATIENT_SYSTEM,
    FILLER_ORDER_SYSTEM,
    LOCAL_PROCEDURE_SYSTEM,
    PATIENT_ID_SYSTEMS,
    PLACER_ORDER_SYSTEM,
    SOP_CLASS_BY_MODALITY,
)
from samples.instances import encode_study, reference_dataset
from samples.part10 import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, write_part10
from samples.planning import PROFILES, instance_uids, plan_studies
from samples.plans import StudyPlan
from samples.truth import (
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    CodeTruth,
    SamplePatient,
    SeriesTruth,
    StudyTruth,
    manifest_dict,
    read_manifest,
    write_manifest,
)

__all__ = [
    "ACCESSION_SYSTEMS",
    "DEFAULT_ACCESSION_SYSTEM",
    "DEFAULT_PATIENT_SYSTEM",
    "FILLER_ORDER_SYSTEM",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "LOCAL_PROCEDURE_SYSTEM",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
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


class GeneratedStudy:
    """A generated study: its ground truth plus a lazy iterator over its instances."""

    __slots__ = ("_plan", "truth")

    def __init__(self, plan: StudyPlan) -> None:
        self._plan = plan
        self.truth: StudyTruth = plan.truth()

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
                for number, uid in enumerate(instance_uids(self._plan, series), start=1):
                    yield reference_dataset(self._plan, series, number, uid)
            return
        for data in self.part10():
            yield pydicom.dcmread(io.BytesIO(data))

    def part10(self) -> Iterator[bytes]:
        """Yield each instance encoded as a DICOM Part 10 file (Explicit VR Little Endian)."""
        return encode_study(self._plan)

    def to_dicom_json(self, *, include_pixel_data: bool = False) -> list[dict[str, Any]]:
        """The study's instances in the DICOM JSON model (PS3.18 Annex F)."""
        return instances_json(self, include_pixel_data=include_pixel_data)


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
    for plan in plan_studies(
        count,
        seed=seed,
        profile=profile,
        patients=patients,
        id_prefix=id_prefix,
        uid_root=uid_root,
        every_patient=every_patient,
    ):
        yield GeneratedStudy(plan)


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
