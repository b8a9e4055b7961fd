"""Errors of the sharing room, as branches of the product's one tree (bridge.errors).

* :class:`SharingConfigError` - mappings/sharing.yaml is invalid: fix the file.  It is a
  :class:`~bridge.errors.MappingConfigError` (raised at start-up), and names the file, the
  line and the dotted field; ``fields`` lists every offending field.
* :class:`IdentityUnmapped` - a study's patient has no identifier in the affinity domain
  (no issuer map entry): never guessed, the publication is recorded as failed until the
  site's map says which system the issuer's IDs have there.
* :class:`ManifestDataError` - a study cannot be described by a manifest (a UID missing or
  malformed); names the DICOM attribute like every :class:`~bridge.errors.DicomDataError`.
"""

from __future__ import annotations

from bridge.errors import DicomDataError, MappingConfigError, Permanent


class SharingConfigError(MappingConfigError):
    """mappings/sharing.yaml is invalid; the message names file, line and field."""

    kind = "sharing-config"

    def __init__(self, message: str, *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        #: the dotted fields at fault, e.g. ``("document.type.system",)``
        self.fields = fields


class IdentityUnmapped(Permanent):
    """No affinity-domain identifier for the study's patient (IHE XDS: the document's
    patientId must be the affinity domain's; the local ID goes to sourcePatientId only)."""

    kind = "identity-unmapped"

    def __init__(self, message: str, *, tag: str) -> None:
        super().__init__(message)
        self.tag = tag


class ManifestDataError(DicomDataError):
    """The study's metadata cannot make a valid KOS manifest; ``tag`` names the attribute."""

    kind = "manifest-data"


class OutsideDocumentError(Permanent):
    """One DocumentReference of an ITI-67 answer cannot be used by the Imaging Document
    Consumer (an unknown formatCode, no attachment URL...); ``field`` names the element
    (e.g. ``content[0].format.code``), ``document`` the resource id.  Only that document
    is left out: the others of the answer are returned with it."""

    kind = "outside-document"

    def __init__(self, message: str, *, field: str, document: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.document = document


class ManifestFormatError(DicomDataError):
    """A retrieved manifest is not a usable XDS-I.b KOS (wrong SOP class, no evidence,
    wrong title, no Retrieve URL, not DICOM at all); ``tag`` names the attribute."""

    kind = "manifest-format"


class RegistryRejected(Permanent):
    """The document recipient refused an ITI-65 bundle with a 4xx (other than a
    concurrent change): the same bundle would be refused again, so the publication is
    dead-lettered.  ``field`` names the element the registry's OperationOutcome points at
    (``issue.expression``, else ``issue.location``, else the element HAPI names in its
    diagnostics), or is None when the answer names none."""

    kind = "registry-rejected"

    def __init__(self, message: str, *, field: str | None, status_code: int | None) -> None:
        super().__init__(message)
        self.field = field
        self.status_code = status_code
