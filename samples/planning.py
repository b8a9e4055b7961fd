"""Planning of the generated studies: which patients, studies and series, drawn from a seed.

Everything here is a pure function of ``(count, seed, profile, patients, id_prefix, uid_root)``:
the same arguments always give the same plans (no clock, no ``uuid4``, no hash randomisation).
Randomness comes from :class:`random.Random` instances seeded with strings (string seeds are
hashed with SHA-512 by the standard library, so they are stable across processes and Python
versions).  The vocabulary (names, procedures, body parts, sites) is the catalogue's
(:mod:`samples.catalogue`) and the patient pool is drawn by :mod:`samples.patients`.  A plan
(:mod:`samples.plans`) says what each study holds; :mod:`samples.instances` turns it into
DICOM instances and :meth:`~samples.plans.StudyPlan.truth` into its ground-truth record.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator, Sequence

from samples.catalogue import CATALOGUE, Procedure
from samples.patients import SERIAL_STEP, make_patients, random_date
from samples.plans import SeriesPlan, StudyPlan
from samples.truth import CodeTruth, SamplePatient
from samples.uids import uid

__all__ = [
    "PROFILES",
    "SCHEME_LOCAL",
    "SCHEME_LOINC",
    "SCHEME_SNOMED",
    "instance_uids",
    "plan_studies",
]

PROFILES: tuple[str, ...] = ("mixed", "typical", "small")

#: Coding Scheme Designators (PS3.16 section 8); ``99HOSPA`` is a local scheme (PS3.3 8.2)
SCHEME_SNOMED = "SCT"
SCHEME_LOINC = "LN"
SCHEME_LOCAL = "99HOSPA"

_FIRST_STUDY_DATE = dt.date(2015, 1, 1)
_LAST_STUDY_DATE = dt.date(2026, 11, 15)

_ID_PREFIX_RE = re.compile(r"^[A-Za-z0-9]{0,6}$")
_UID_ROOT_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def plan_studies(
    count: int,
    *,
    seed: int = 0,
    profile: str = "mixed",
    patients: int | None = None,
    id_prefix: str = "",
    uid_root: str | None = None,
    every_patient: bool = False,
) -> Iterator[StudyPlan]:
    """Yield the plans of ``count`` studies; the arguments are those of
    :func:`samples.generator.generate_studies`, which checks them here."""
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
    pool = make_patients(key, pool_size, id_prefix)
    serial_rng = random.Random(f"{key}|serials")
    acc_base = serial_rng.randrange(10**6)
    order_base = serial_rng.randrange(10**7)
    for index in range(count):
        rng = random.Random(f"{key}|study|{index}")
        plan = _plan_study(
            rng, key, index, pool, profile, id_prefix, uid_root,
            acc_serial=(acc_base + index * SERIAL_STEP) % 10**6,
            order_serial=(order_base + index * SERIAL_STEP) % 10**7,
            patient=pool[index] if every_patient and index < pool_size else None,
        )
        yield plan


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
    site = CATALOGUE.sites[issuer]
    summer = 4 <= date.month <= 10  # rough daylight-saving season
    return site.summer_offset if summer else site.winter_offset


def _pick_procedure(rng: random.Random, patient: SamplePatient, date: dt.date) -> Procedure:
    modalities = list(CATALOGUE.modality_weights)
    weights = list(CATALOGUE.modality_weights.values())
    modality = rng.choices(modalities, weights=weights)[0]
    if modality == "MG" and (patient.sex != "F" or _age_at(patient.birth_date, date) < 35):
        others = [m for m in modalities if m != "MG"]
        modality = rng.choices(others, weights=[CATALOGUE.modality_weights[m] for m in others])[0]
    candidates = [p for p in CATALOGUE.procedures if p.modality == modality]
    return rng.choices(candidates, weights=[p.weight for p in candidates])[0]


def _bucket(rng: random.Random, buckets: Sequence[tuple[int, int, int]]) -> int:
    low, high, _ = rng.choices(buckets, weights=[b[2] for b in buckets])[0]
    return rng.randint(low, high)


_CT_BUCKETS = ((1, 5, 50), (6, 20, 30), (21, 50, 15), (51, 100, 5))
_MR_BUCKETS = ((1, 5, 50), (6, 20, 35), (21, 40, 15))
_US_BUCKETS = ((1, 5, 50), (6, 20, 35), (21, 60, 15))


def _series_layout(
    rng: random.Random, proc: Procedure, profile: str
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
) -> StudyPlan:
    if patient is None:
        patient = rng.choice(pool)
    date = random_date(rng, _FIRST_STUDY_DATE, _LAST_STUDY_DATE)
    proc = _pick_procedure(rng, patient, date)
    study_uid = uid(rng, uid_root)

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
        CATALOGUE.sites[patient.issuer].accession_issuer if rng.random() >= 0.04 else None
    )
    has_orders = rng.random() >= 0.10
    placer = f"{id_prefix}ORD{order_serial:07d}" if has_orders else None
    filler = f"{id_prefix}RIS{order_serial:07d}" if has_orders else None
    study_id = str(rng.randint(1, 99999))

    # codes
    local = CodeTruth(proc.code, SCHEME_LOCAL, proc.meaning)
    codes: tuple[CodeTruth, ...] = (local,)
    if proc.loinc is not None:
        r = rng.random()
        loinc = CodeTruth(proc.loinc[0], SCHEME_LOINC, proc.loinc[1])
        if r < 0.2:
            codes = (loinc,)
        elif r < 0.4:
            codes = (local, loinc)
    reason_codes: tuple[CodeTruth, ...] = ()
    if proc.reasons and rng.random() < 0.3:
        code, meaning = rng.choice(proc.reasons)
        reason_codes = (CodeTruth(code, SCHEME_SNOMED, meaning),)
    reason_text = (
        rng.choice(proc.reason_texts) if proc.reason_texts and rng.random() < 0.4 else None
    )
    description = proc.meaning.upper() if rng.random() < 0.2 else proc.meaning

    site = CATALOGUE.sites[patient.issuer]
    institution, departments = site.institution, site.departments
    department = "Breast Imaging" if proc.modality == "MG" else rng.choice(departments)
    referring = "" if rng.random() < 0.05 else rng.choice(CATALOGUE.referring)
    reading = rng.choice(CATALOGUE.reading)

    # body part / laterality
    r = rng.random()
    body_part: str | None = proc.body_part
    odd = False
    if r < 0.06:
        body_part = rng.choice(CATALOGUE.odd_body_parts[proc.body_part])
        odd = True
    elif r < 0.08:
        body_part = None
    side = rng.choice(("R", "L")) if proc.paired else None

    layout = _series_layout(rng, proc, profile)
    if proc.code == "MGDIAG" and profile == "mixed" and rng.random() < 0.4:
        # breast clinic work-up: a diagnostic mammogram plus an ultrasound of the same side
        layout.append(("Breast US", _bucket(rng, _US_BUCKETS[:2]), False))

    series: list[SeriesPlan] = []
    operator = rng.choice(CATALOGUE.operators)
    performing = rng.choice(CATALOGUE.performing)
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
            SeriesPlan(
                number=number,
                uid=uid(rng, uid_root),
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
                    uid(rng, uid_root) if modality in ("CT", "MR") else None
                ),
                localizer=localizer,
                views=views,
            )
        )

    return StudyPlan(
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


def instance_uids(plan: StudyPlan, series: SeriesPlan) -> Iterator[str]:
    rng = random.Random(f"{plan.key}|study|{plan.index}|series|{series.number}")
    for _ in range(series.instance_count):
        yield uid(rng, plan.uid_root)
