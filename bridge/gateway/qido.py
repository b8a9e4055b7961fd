"""QIDO-RS inside a patient compartment (PS3.18 10.6; SMART Imaging Access).

For a patient token, a search is answered only with the patient's studies:

1. the query keys are normalised (keyword or tag, PS3.18 8.3.4.1) and checked: a patient
   identity key (PatientID, IssuerOfPatientID, their sequences, OtherPatientIDs...) must
   name the token's patient exactly once, without wildcard, list or padding tricks, or the
   request is refused (403);
2. a key that points at specific objects (StudyInstanceUID, AccessionNumber,
   SeriesInstanceUID, SOPInstanceUID) must point only at the patient's objects: the objects
   are looked up in the archive *without* the patient constraint and every match must be the
   patient's, and there must be one (403 otherwise: an unknown UID is refused the same way
   as another patient's, so the answer is no existence oracle);
3. the archive query gets PatientID (and IssuerOfPatientID where the mapping names exactly
   one issuer for the system) of the token's patient, plus includefields for the patient
   attributes, so every result row can be mapped;
4. every result row is mapped to its patient and dropped unless it is the token's
   (the post-filter is the authority; the added constraints only make the query cheap).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydicom.datadict import keyword_for_tag

from bridge.gateway.compartment import PATIENT_FIELDS, Compartment, PatientKey
from bridge.gateway.errors import BadRequest, Forbidden
from bridge.gateway.query_params import CONTROL
from bridge.mapping.peek import first_str as first_value
from bridge.mapping.tags import SERIES_INSTANCE_UID as SERIES_UID
from bridge.mapping.tags import SOP_INSTANCE_UID as SOP_UID
from bridge.mapping.tags import STUDY_INSTANCE_UID as STUDY_UID

Params = list[tuple[str, str]]

#: attributes that identify the patient; only PatientID / IssuerOfPatientID may be given,
#: and only as the token's own
PATIENT_KEYS = frozenset({
    "PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDs", "OtherPatientIDsSequence", "TypeOfPatientID",
})
#: attributes that select specific objects: they must select only the patient's
POINTED_KEYS = ("StudyInstanceUID", "AccessionNumber", "SeriesInstanceUID", "SOPInstanceUID")
_WILDCARD = re.compile(r"[*?\\,]")
_HEX_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_KEY = re.compile(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$")
_LEVEL_UID = {"studies": STUDY_UID, "series": SERIES_UID, "instances": SOP_UID}


def keyword(key: str) -> str:
    """The attribute keyword of a query key (``00100020`` -> ``PatientID``); for a sequence
    path (``00100024.00400032``) the keyword of its first element."""
    head = key.split(".", 1)[0]
    if _HEX_TAG.match(head):
        return keyword_for_tag(int(head, 16)) or head.upper()
    return head


def _split_uids(value: str) -> list[str]:
    # UID list matching (PS3.18 8.3.4.1.1): comma or backslash separated
    return [u for u in re.split(r"[,\\]", value) if u]


class PatientQuery:
    """One QIDO-RS request of a patient token, planned and then filtered."""

    def __init__(self, compartment: Compartment, ids: frozenset[PatientKey]) -> None:
        self.compartment = compartment
        self.ids = ids

    async def run(self, level: str, path: str, params: Sequence[tuple[str, str]]
                  ) -> list[dict[str, Any]]:
        """Check, query and post-filter; raise :class:`Forbidden` for cross-patient asks.
        ``params`` have passed :func:`~bridge.gateway.query_params.checked_query`."""
        matches, control = self._split(params)
        patient_values = await self._check_identity(matches)
        await self._check_pointed(level, path, matches)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        uid_tag = _LEVEL_UID[level]
        others = [(k, v) for k, v in matches if keyword(k) not in PATIENT_KEYS]
        includes = [("includefield", f) for f in PATIENT_FIELDS]
        for system, value in sorted(k for k in self.ids if k[1] in patient_values):
            query: Params = [*others, ("PatientID", value), *control, *includes]
            issuer = self.compartment.mapper.issuer_for(system)
            if issuer is not None:
                query.append(("IssuerOfPatientID", issuer))
            for row in await self.compartment.archive.qido_json(path, query):
                uid = first_value(row, uid_tag) or ""
                if uid in seen:
                    continue
                if await self.compartment.row_patient(row) in self.ids:
                    seen.add(uid)
                    rows.append(row)
        return rows

    @staticmethod
    def _split(params: Sequence[tuple[str, str]]) -> tuple[Params, Params]:
        matches: Params = []
        control: Params = []
        for key, value in params:
            if key in CONTROL:
                control.append((key, value))
            elif _KEY.match(key):
                matches.append((key, value))
            else:
                raise BadRequest(f"query parameter {key!r} is not an attribute", parameter=key)
        return matches, control

    async def _check_identity(self, matches: Params) -> set[str]:
        """The PatientID values to query: the one named (if it is the patient's) or all."""
        values = {v for _, v in self.ids}
        named = [(keyword(k), k, v) for k, v in matches if keyword(k) in PATIENT_KEYS]
        if not named:
            return values
        by_kw: dict[str, list[tuple[str, str]]] = {}
        for kw, key, value in named:
            by_kw.setdefault(kw, []).append((key, value))
        if set(by_kw) - {"PatientID", "IssuerOfPatientID"}:
            raise Forbidden("the query names patient identity attributes other than "
                            "PatientID and IssuerOfPatientID")
        if any(len(v) > 1 for v in by_kw.values()):
            raise Forbidden("the query names the patient more than once")
        if any("." in key or _WILDCARD.search(value) or value != value.strip()
               for group in by_kw.values() for key, value in group):
            raise Forbidden("patient identity keys must be single exact values")
        pid = by_kw.get("PatientID", [("", "")])[0][1]
        issuer = by_kw.get("IssuerOfPatientID", [("", "")])[0][1] or None
        if not pid:
            raise Forbidden("IssuerOfPatientID without PatientID is not allowed")
        dataset: dict[str, Any] = {"00100020": {"vr": "LO", "Value": [pid]}}
        if issuer is not None:
            dataset["00100021"] = {"vr": "LO", "Value": [issuer]}
        named_key = self.compartment.mapper.key_of(dataset)
        if issuer is None and pid in values:
            return {pid}
        if named_key not in self.ids:
            raise Forbidden("the query names a patient other than the token's")
        return {pid}

    async def _check_pointed(self, level: str, path: str, matches: Params) -> None:
        pointed = [(keyword(k), v) for k, v in matches if keyword(k) in POINTED_KEYS]
        if not pointed:
            return
        for kw, value in pointed:
            if kw != "StudyInstanceUID" and (_WILDCARD.search(value) or not value.strip()):
                raise Forbidden(f"{kw} must be an exact value in a patient-scoped query")
        for kw, value in pointed:
            if kw == "StudyInstanceUID":
                uids = _split_uids(value)
                if not uids or any(_WILDCARD.search(u) for u in uids):
                    raise Forbidden("StudyInstanceUID must be exact UIDs")
                for uid in uids:
                    await self.compartment.check_study(self.ids, uid)
        others = [(k, v) for k, v in pointed if k != "StudyInstanceUID"]
        if not others:
            return
        # look the objects up without the patient constraint: all must be the patient's
        probe: Params = [*others, *(("includefield", f) for f in PATIENT_FIELDS),
                         ("limit", "100")]
        rows = await self.compartment.archive.qido_json(path, probe)
        if not rows:
            raise Forbidden("the query names objects outside the token's patient compartment")
        for row in rows:
            if await self.compartment.row_patient(row) not in self.ids:
                raise Forbidden("the query names objects outside the token's patient "
                                "compartment")
