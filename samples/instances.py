"""The content of a generated study's DICOM instances, and their Part 10 bytes.

A :class:`~samples.plans.StudyPlan` becomes (tag, VR, value) elements at three levels:
patient/study (PS3.3 C.7.1.1, C.7.2.1), series with equipment and image pixel description
(C.7.3.1, C.7.5.1, C.7.6.3) and instance.  :func:`encode_study` encodes the study and series
levels once and splices them with each instance's elements (:mod:`samples.part10`);
:func:`reference_dataset` builds the very same elements into a pydicom Dataset instead.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset

from samples.catalogue import CATALOGUE, SOP_CLASS_BY_MODALITY
from samples.part10 import (
    CODECS,
    PREAMBLE,
    Element,
    el,
    encode_elements,
    file_meta_bytes,
    file_meta_elements,
    tag_vr,
    to_dataset,
)
from samples.planning import SCHEME_SNOMED, instance_uids
from samples.plans import SeriesPlan, StudyPlan
from samples.truth import CodeTruth

__all__ = ["encode_study", "reference_dataset"]


def _code_item(code: CodeTruth) -> list[Element]:
    return [
        el("CodeValue", code.code),
        el("CodingSchemeDesignator", code.scheme),
        el("CodeMeaning", code.meaning),
    ]


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


def _study_elements(plan: StudyPlan) -> list[Element]:
    """Patient and study level elements (PS3.3 C.7.1.1, C.7.2.1) plus order information."""
    patient = plan.patient
    els: list[Element] = []
    if patient.charset:
        els.append(el("SpecificCharacterSet", patient.charset))
    els += [
        el("StudyDate", plan.date),
        el("AccessionNumber", plan.accession),
        el("Manufacturer", "Synthetic Imaging Co."),
        el("InstitutionName", plan.institution),
        el("InstitutionalDepartmentName", plan.department),
        el("ReferringPhysicianName", plan.referring),
        el("StudyDescription", plan.description),
        el("ProcedureCodeSequence", [_code_item(c) for c in plan.procedure_codes]),
        el("NameOfPhysiciansReadingStudy", plan.reading),
        el("PatientName", patient.name),
        el("PatientID", patient.patient_id),
        el("IssuerOfPatientID", patient.issuer),
        el("PatientBirthDate", patient.birth_date),
        el("PatientSex", patient.sex),
        el("StudyInstanceUID", plan.study_uid),
        el("StudyID", plan.study_id),
    ]
    if plan.time is not None:
        els.append(el("StudyTime", plan.time))
    if plan.accession_issuer is not None:
        issuer = [el("LocalNamespaceEntityID", plan.accession_issuer)]
        els.append(el("IssuerOfAccessionNumberSequence", [issuer]))
    if plan.tz is not None:
        els.append(el("TimezoneOffsetFromUTC", plan.tz))
    if plan.reason_text is not None:
        els.append(el("ReasonForTheRequestedProcedure", plan.reason_text))
    if plan.reason_codes:
        els.append(
            el("ReasonForPerformedProcedureCodeSequence",
                [_code_item(c) for c in plan.reason_codes])
        )
    if plan.placer is not None:
        els.append(el("PlacerOrderNumberImagingServiceRequest", plan.placer))
    if plan.filler is not None:
        els.append(el("FillerOrderNumberImagingServiceRequest", plan.filler))
    return els


def _series_elements(series: SeriesPlan) -> list[Element]:
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
    els: list[Element] = [
        el("ImageType", image_type),
        el("SOPClassUID", SOP_CLASS_BY_MODALITY[modality]),
        el("SeriesDate", series.date),
        el("ContentDate", series.date),
        el("Modality", modality),
        el("StationName", CATALOGUE.station_by_modality[modality]),
        el("SeriesDescription", series.description),
        el("PerformingPhysicianName", series.performing),
        el("OperatorsName", series.operator),
        el("ManufacturerModelName", CATALOGUE.model_by_modality[modality]),
        el("SeriesInstanceUID", series.uid),
        el("SeriesNumber", str(series.number)),
        # Image Pixel (C.7.6.3)
        el("SamplesPerPixel", 1),
        el("PhotometricInterpretation", "MONOCHROME2"),
        el("Rows", size),
        el("Columns", size),
        el("BitsAllocated", bits),
        el("BitsStored", 12 if bits == 16 else 8),
        el("HighBit", 11 if bits == 16 else 7),
        el("PixelRepresentation", 0),
    ]
    if series.time is not None:
        els += [el("SeriesTime", series.time), el("ContentTime", series.time)]
    if series.body_part is not None:
        els.append(el("BodyPartExamined", series.body_part))
    if series.laterality is not None:
        els.append(el("Laterality", series.laterality))
    if modality in ("CT", "MR"):
        els += [
            el("SliceThickness", "1" if series.localizer else "5"),
            el("ImageOrientationPatient", ["1", "0", "0", "0", "1", "0"]),
            el("FrameOfReferenceUID", series.frame_of_reference_uid),
            el("PositionReferenceIndicator", ""),
            el("PixelSpacing", ["25", "25"]),
        ]
    if modality == "CT":
        els += [
            el("KVP", "120"),
            el("WindowCenter", "40"),
            el("WindowWidth", "400"),
            el("RescaleIntercept", "-1024"),
            el("RescaleSlope", "1"),
            el("RescaleType", "HU"),
        ]
    elif modality == "MR":
        els += [
            el("ScanningSequence", "SE"),
            el("SequenceVariant", "NONE"),
            el("MRAcquisitionType", "2D"),
            el("RepetitionTime", "3000"),
            el("EchoTime", "90"),
            el("MagneticFieldStrength", "1.5"),
            el("WindowCenter", "600"),
            el("WindowWidth", "1200"),
        ]
    elif modality == "CR":
        view = {"PA": "PA", "AP": "AP", "Lateral": "LL"}.get(series.description, "")
        els += [el("KVP", "110"), el("ViewPosition", view), el("PatientOrientation", "")]
    elif modality == "US":
        els.append(el("PatientOrientation", ""))
    elif modality == "MG":
        els += [
            el("PresentationIntentType", "FOR PRESENTATION"),
            el("KVP", "28"),
            el("BreastImplantPresent", "NO"),
        ]
    return els


def _instance_elements(series: SeriesPlan, number: int, sop_uid: str) -> list[Element]:
    """The elements that differ between the instances of one series."""
    els: list[Element] = [
        el("SOPInstanceUID", sop_uid),
        el("InstanceNumber", str(number)),
    ]
    if series.modality in ("CT", "MR"):
        z = f"{-(number - 1) * (1 if series.localizer else 5)}"
        els += [el("ImagePositionPatient", ["-100", "-100", z]), el("SliceLocation", z)]
    elif series.modality == "MG":
        side, view = series.views[(number - 1) % len(series.views)]
        code, meaning = CATALOGUE.mammography_views[view]
        els += [
            el("ViewPosition", view),
            el("ImageLaterality", side),
            el("ViewCodeSequence", [_code_item(CodeTruth(code, SCHEME_SNOMED, meaning))]),
        ]
    _, bits, pixel_bytes = _pixels(series.modality, series.number, number)
    els.append(el("PixelData", pixel_bytes, "OW" if bits == 16 else "OB"))
    return els


def reference_dataset(
    plan: StudyPlan, series: SeriesPlan, number: int, sop_uid: str
) -> Dataset:
    """One instance built entirely through pydicom (slow; the tests compare it)."""
    lenient = frozenset({tag_vr("BodyPartExamined")[0]}) if series.body_part_odd else frozenset()
    ds = to_dataset(
        [*_study_elements(plan), *_series_elements(series),
         *_instance_elements(series, number, sop_uid)],
        lenient,
    )
    sop_class = SOP_CLASS_BY_MODALITY[series.modality]
    meta = FileMetaDataset(to_dataset(file_meta_elements(sop_class, sop_uid)))
    meta.FileMetaInformationGroupLength = 0  # recomputed by pydicom when written
    ds.file_meta = meta
    ds.preamble = PREAMBLE
    return ds


def encode_study(plan: StudyPlan) -> Iterator[bytes]:
    codec = CODECS[plan.patient.charset]
    study_chunks = encode_elements(_study_elements(plan), codec)
    for series in plan.series:
        sop_class = SOP_CLASS_BY_MODALITY[series.modality]
        series_chunks = {**study_chunks, **encode_elements(_series_elements(series), codec)}
        for number, sop_uid in enumerate(instance_uids(plan, series), start=1):
            chunks = {
                **series_chunks,
                **encode_elements(_instance_elements(series, number, sop_uid), codec),
            }
            body = b"".join(chunks[tag] for tag in sorted(chunks))
            yield PREAMBLE + file_meta_bytes(sop_class, sop_uid) + body
