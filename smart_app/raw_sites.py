"""The raw Body Part Examined of series the EHR shows without a body site (issue 20 item 12).

The sync leaves ``ImagingStudy.series.bodySite`` out when BodyPartExamined (0018,0015) is
neither a PS3.16 Annex L term nor in the site's mapping (FHIR R4 bodySite is a Coding: a
term without a code has no place there), so the history would show a blank.  For those
series only, the app asks the archive, through the gateway's own patient-checked look-ups
(the archive holding the study *as this patient's*, as /IHEInvokeImageDisplay does): one
series-level QIDO-RS per such study (PS3.18 10.6, ``includefield=00180015``), a few at a
time.  The term is shown as it is, marked as a raw DICOM term, and can be filtered on.
Without the gateway, or when the archive does not answer, the cell stays "not recorded".
"""

from __future__ import annotations

import asyncio
import logging

from bridge.errors import BridgeError
from bridge.mapping.peek import first_str as first_value
from smart_app.gateway_port import ImagingGateway
from smart_app.history import StudyRow

log = logging.getLogger(__name__)

BODY_PART_EXAMINED = "00180015"
SERIES_UID = "0020000E"
#: concurrent archive look-ups (the history page waits for them)
CONCURRENCY = 8


async def add_raw_body_parts(gateway: ImagingGateway, patient: str, rows: list[StudyRow]) -> None:
    """Add each unsited series' raw term to its row's ``body_sites`` and ``raw_sites``."""
    wanted = [r for r in rows if r.unsited_series and r.uid]
    if not wanted:
        return
    try:
        ids = await gateway.patients.identifiers_of(patient)
    except BridgeError as exc:
        log.warning("raw body parts not looked up", extra={"error_type": exc.kind})
        return
    if not ids:
        return
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(row: StudyRow) -> None:
        assert row.uid is not None
        async with limit:
            try:
                route = await gateway.archives.holding(row.uid, ids)
                if route is None:
                    return
                found = await route.proxy.qido_json(
                    f"studies/{row.uid}/series", [("includefield", BODY_PART_EXAMINED)])
            except BridgeError as exc:
                log.warning("raw body part not looked up", extra={"error_type": exc.kind})
                return
        unsited = set(row.unsited_series)
        for series in found:
            term = first_value(series, BODY_PART_EXAMINED)
            if first_value(series, SERIES_UID) in unsited and term:
                term = term.strip()
                if term and term not in row.body_sites:
                    row.body_sites.append(term)
                    row.raw_sites.append(term)

    await asyncio.gather(*(one(r) for r in wanted))
