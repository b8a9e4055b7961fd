"""ITI-67 Find Document References for the Imaging Document Consumer (pure): the search
parameters, and the searchset Bundle read into typed :class:`OutsideDocument` records.

Query (IHE ITI TF-2 3.67.4.1.2, MHD): ``patient.identifier`` = the patient's identifier
in the affinity domain as ``system|value`` (never the local one), ``status=current``,
``date`` ge/le for a date range (the DocumentReference's ``date``: when the document was
made), ``event`` for modalities (XDS-I.b eventCodeList, DCM codes, as the source writes
``context.event``) and ``format`` (formatCode).  Repeated values of one parameter are
joined by commas: FHIR R4 3.1.1.5.3 search "OR".

Reading: a DocumentReference the consumer cannot use (a formatCode other than the KOS
manifest's, no attachment URL, no Study Instance UID in ``context.related``) gives an
:class:`~bridge.sharing.errors.OutsideDocumentError` naming the field, for that one
document; the others are returned (:class:`FoundDocuments`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.sharing.errors import OutsideDocumentError
from bridge.sharing.kos import KOS_SOP_CLASS
from bridge.sharing.mhd import DCM, DCMUID, DICOM_UID_SYSTEM

JSON = dict[str, Any]

#: formatCodes the consumer can read: the XDS-I.b KOS manifest (RAD TF-3 4.68.4.1.2.4)
KNOWN_FORMATS = frozenset({(DCMUID, KOS_SOP_CLASS)})


def find_query(
    identifier: Mapping[str, str],
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    modalities: Iterable[str] = (),
    format_codes: Iterable[tuple[str, str]] = ((DCMUID, KOS_SOP_CLASS),),
) -> list[tuple[str, str]]:
    """ITI-67 search parameters for the documents of the affinity-domain patient
    ``identifier`` (``{"system", "value"}``), ``since``/``until`` inclusive."""
    system, value = identifier.get("system"), identifier.get("value")
    if not system or not value:
        raise ValueError("ITI-67 needs the affinity-domain identifier's system and value")
    params = [("patient.identifier", f"{system}|{value}"), ("status", "current")]
    if since is not None:
        params.append(("date", f"ge{since.isoformat()}"))
    if until is not None:
        # 'date' is an instant: le<day> would stop at the day's start; lt<next day> is
        # the whole day (R4 3.1.1.5.1 date prefixes)
        params.append(("date", f"lt{(until + dt.timedelta(days=1)).isoformat()}"))
    codes = [f"{DCM}|{m}" for m in modalities]
    if codes:
        params.append(("event", ",".join(codes)))
    formats = [f"{s}|{c}" for s, c in format_codes]
    if formats:
        params.append(("format", ",".join(formats)))
    return params


@dataclass(frozen=True, slots=True)
class OutsideDocument:
    """One imaging manifest another site registered for the patient."""

    #: DocumentReference.id on the registry
    id: str
    #: the source's identity as the registry knows it (custodian/author display or
    #: reference), None when the document says nothing
    source: str | None
    #: DocumentReference.date (when the document was made), as written
    date: str | None
    #: context.period.start (the study's date), as written
    study_date: str | None
    study_uid: str
    modalities: tuple[str, ...]
    #: masterIdentifier.value, ``urn:oid:<KOS SOP Instance UID>``
    master_identifier: str | None
    attachment_url: str
    mime_type: str | None
    size: int | None
    #: base64 SHA-1 of the manifest bytes (R4 Attachment.hash), to check after ITI-68
    hash: str | None


@dataclass(frozen=True, slots=True)
class FoundDocuments:
    """An ITI-67 answer: the usable documents and, per unusable one, why."""

    documents: tuple[OutsideDocument, ...]
    problems: tuple[OutsideDocumentError, ...]


def _problem(doc: JSON, field: str, what: str) -> OutsideDocumentError:
    ident = str(doc.get("id") or "?")
    return OutsideDocumentError(f"DocumentReference/{ident}: {field} {what}", field=field,
                                document=ident)


def _source(doc: JSON) -> str | None:
    for key in ("custodian", "author"):
        refs = doc.get(key)
        for ref in refs if isinstance(refs, list) else [refs] if refs else []:
            if isinstance(ref, dict):
                text = ref.get("display") or ref.get("reference") or \
                    (ref.get("identifier") or {}).get("value")
                if text:
                    return str(text)
    return None


def _study_uid(doc: JSON, context: JSON) -> str:
    # XDS-I.b referenceIdList: the Study Instance UID as urn:oid:<uid> in urn:dicom:uid
    for related in context.get("related") or []:
        ident = (related or {}).get("identifier") or {}
        value = str(ident.get("value") or "")
        if ident.get("system") == DICOM_UID_SYSTEM and value:
            return value.removeprefix("urn:oid:")
    raise _problem(doc, "context.related", "has no Study Instance UID (urn:dicom:uid)")


def read_document(doc: JSON) -> OutsideDocument:
    """One DocumentReference as an :class:`OutsideDocument`; raises
    :class:`~bridge.sharing.errors.OutsideDocumentError` naming the field at fault."""
    contents = doc.get("content") or []
    if not contents:
        raise _problem(doc, "content", "is missing")
    content = contents[0] or {}
    fmt = content.get("format") or {}
    if (fmt.get("system"), fmt.get("code")) not in KNOWN_FORMATS:
        raise _problem(doc, "content[0].format.code",
                       f"{fmt.get('system')}|{fmt.get('code')} is not a known formatCode")
    attachment = content.get("attachment") or {}
    if not attachment:
        raise _problem(doc, "content[0].attachment", "is missing")
    url = attachment.get("url")
    if not url:
        raise _problem(doc, "content[0].attachment.url", "is missing")
    context = doc.get("context") or {}
    modalities = tuple(str(c["code"]) for event in context.get("event") or []
                       for c in (event or {}).get("coding") or []
                       if c.get("system") == DCM and c.get("code"))
    size = attachment.get("size")
    return OutsideDocument(
        id=str(doc.get("id") or ""),
        source=_source(doc),
        date=doc.get("date"),
        study_date=(context.get("period") or {}).get("start"),
        study_uid=_study_uid(doc, context),
        modalities=modalities,
        master_identifier=(doc.get("masterIdentifier") or {}).get("value"),
        attachment_url=str(url),
        mime_type=attachment.get("contentType"),
        size=size if isinstance(size, int) else None,
        hash=attachment.get("hash"),
    )


def read_documents(resources: Iterable[JSON]) -> FoundDocuments:
    """The DocumentReferences among ``resources`` (a searchset's entry resources; an
    OperationOutcome of ``search.mode`` outcome or an included resource is skipped)."""
    documents: list[OutsideDocument] = []
    problems: list[OutsideDocumentError] = []
    for resource in resources:
        if resource.get("resourceType") != "DocumentReference":
            continue
        try:
            documents.append(read_document(resource))
        except OutsideDocumentError as exc:
            problems.append(exc)
    return FoundDocuments(tuple(documents), tuple(problems))


def read_searchset(bundle: JSON) -> FoundDocuments:
    """One searchset Bundle page (R4 Bundle, type searchset) read by
    :func:`read_documents`; only ``search.mode`` match entries (or unmarked ones)."""
    return read_documents(
        entry["resource"] for entry in bundle.get("entry") or []
        if "resource" in entry and (entry.get("search") or {}).get("mode", "match") == "match")
