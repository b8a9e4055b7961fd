"""Which studies a STOW-RS response says were stored (PS3.18 10.5.3, Table 10.5.3-1).

The response data set has a Retrieve URL (0008,1190) for the study, and a Referenced SOP
Sequence (0008,1199) whose items are the stored instances, each with its own Retrieve URL
(``.../studies/{study}/series/{series}/instances/{sop}``); failed instances are in the
Failed SOP Sequence (0008,1198) and are ignored here.  Both DICOM JSON (PS3.18 F.2) and the
native XML model (PS3.19 A.1) are read.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from bridge.mapping.peek import first_str
from bridge.mapping.tags import STUDY_INSTANCE_UID as STUDY_UID

RETRIEVE_URL = "00081190"
REFERENCED_SOP_SEQ = "00081199"
_STUDY_IN_URL = re.compile(r"/studies/([0-9.]+)")


def _from_url(url: Any) -> str | None:
    match = _STUDY_IN_URL.search(str(url)) if url else None
    return match.group(1) if match else None


def _from_json(body: bytes) -> tuple[set[str], bool]:
    data = json.loads(body)
    if isinstance(data, list):
        data = data[0] if data else {}
    if not isinstance(data, dict):
        return set(), False
    stored = (data.get(REFERENCED_SOP_SEQ) or {}).get("Value") or []
    uids = set()
    for item in stored:
        if isinstance(item, dict):
            uid = first_str(item, STUDY_UID) or _from_url(first_str(item, RETRIEVE_URL))
            if uid:
                uids.add(str(uid))
    if stored:
        top = _from_url(first_str(data, RETRIEVE_URL))
        if top:
            uids.add(top)
    return uids, bool(stored)


def _from_xml(body: bytes) -> tuple[set[str], bool]:
    root = ET.fromstring(body)
    uids: set[str] = set()
    stored = False
    for attr in root.iter("DicomAttribute"):
        if attr.get("tag", "").upper() != REFERENCED_SOP_SEQ:
            continue
        for item in attr.iter("Item"):
            stored = True
            for sub in item.iter("DicomAttribute"):
                tag = sub.get("tag", "").upper()
                value = sub.findtext("Value")
                if tag == STUDY_UID and value:
                    uids.add(value.strip())
                elif tag == RETRIEVE_URL and (uid := _from_url(value)):
                    uids.add(uid)
    return uids, stored


def stored_studies(body: bytes, content_type: str | None, *, path_uid: str | None) -> set[str]:
    """StudyInstanceUIDs of the instances the archive reports as stored.

    ``path_uid`` (``POST /studies/{uid}``) counts when at least one instance was stored;
    an unreadable body falls back to it alone.
    """
    ctype = (content_type or "").lower()
    try:
        if "xml" in ctype:
            uids, stored = _from_xml(body)
        else:
            uids, stored = _from_json(body)
    except (ValueError, ET.ParseError):
        return {path_uid} if path_uid else set()
    if path_uid and stored:
        uids.add(path_uid)
    return uids
