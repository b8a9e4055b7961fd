"""The patient pool of a generated load: identifiers, names in three character sets, sex and
birth date, drawn from a seed (PS3.3 C.7.1.1 Patient Module).

~70% of the patients are issued by HOSP_A, the others by HOSP_B, and the first HOSP_B patient
has the same PatientID value as the first HOSP_A one (two different people), so matching must
use IssuerOfPatientID.  ~10% of the names are Latin-1 (``ISO_IR 100``), ~10% UTF-8
(``ISO_IR 192``, with ideographic / phonetic component groups, PS3.5 section 6.2.1).
"""

from __future__ import annotations

import datetime as dt
import random

from samples.catalogue import CATALOGUE
from samples.truth import SamplePatient

__all__ = ["SERIAL_STEP", "make_patients", "random_date"]

# A step co-prime with 10: i -> (base + i * step) % 10**n is a permutation of 0..10**n - 1, so
# serial numbers derived from it never repeat within one run.
SERIAL_STEP = 7919

_FIRST_BIRTH_DATE = dt.date(1935, 1, 1)
_LAST_BIRTH_DATE = dt.date(2012, 12, 31)


def random_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    """A uniformly drawn day between ``first`` and ``last`` (both included)."""
    return dt.date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def make_patients(key: str, size: int, id_prefix: str) -> list[SamplePatient]:
    """The pool of ``size`` patients of the load keyed ``key``, PatientIDs after ``id_prefix``."""
    rng = random.Random(f"{key}|patients")
    base = {"HOSP_A": rng.randrange(10**7), "HOSP_B": rng.randrange(10**7)}
    used: dict[str, set[str]] = {"HOSP_A": set(), "HOSP_B": set()}
    counters = {"HOSP_A": 0, "HOSP_B": 0}
    first_a: str | None = None
    pool: list[SamplePatient] = []
    for _ in range(size):
        issuer = "HOSP_A" if rng.random() < 0.7 else "HOSP_B"
        sex = rng.choices(("F", "M", "O"), weights=(50, 48, 2))[0]
        birth = random_date(rng, _FIRST_BIRTH_DATE, _LAST_BIRTH_DATE)
        name, charset = _random_name(rng, sex)
        if issuer == "HOSP_B" and counters["HOSP_B"] == 0 and first_a is not None:
            # the same MRN value under both issuers (two different people): matching must
            # look at IssuerOfPatientID, not just PatientID.
            value = first_a
        else:
            n = counters[issuer]
            while True:
                value = f"{id_prefix}{(base[issuer] + n * SERIAL_STEP) % 10**7:07d}"
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
        family = rng.choice(CATALOGUE.latin1_family)
        given = rng.choice(CATALOGUE.latin1_given[given_sex])
        return f"{family}^{given}", "ISO_IR 100"
    if r < 0.20:
        candidates = [n for n, s in CATALOGUE.utf8_names if s == given_sex]
        return rng.choice(candidates), "ISO_IR 192"
    family = rng.choice(CATALOGUE.ascii_family)
    given = rng.choice(CATALOGUE.ascii_given[given_sex])
    if rng.random() < 0.1:
        return f"{family}^{given}^{rng.choice(CATALOGUE.middle_initials)}", None
    return f"{family}^{given}", None
