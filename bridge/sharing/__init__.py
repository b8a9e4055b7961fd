"""Cross-enterprise image sharing: the IHE XDS-I.b Imaging Document Source and Consumer
over MHD.

Pure parts (no I/O, like bridge.mapping): the sharing policy (mappings/sharing.yaml), the
sharing decision, the KOS manifest builder and the MHD ITI-65 bundle builder; for the
Imaging Document Consumer, the ITI-67 query and reader (find) and the KOS reader
(kos_reader).  I/O parts: bridge.sharing.publish stores the manifest by STOW-RS and sends
the bundle to the document recipient; bridge.sharing.consumer does ITI-67 and ITI-68.
docs/sharing.md says what exists and what remains.

Public API::

    policy = load_sharing_policy(Path("mappings/sharing.yaml"))
    study = read_study(instances)                 # WADO-RS metadata of the study
    if decide(policy.policy, study).share:
        kos = manifest_json(instances, policy=policy, wado_rs_base=..., created=...)
        bundle = provide_bundle(kos, manifest_part10(kos), study, policy=policy,
                                registry_url=..., created=...)
"""

from __future__ import annotations

from bridge.sharing.decide import SharingDecision, decide
from bridge.sharing.errors import (
    IdentityUnmapped,
    ManifestDataError,
    ManifestFormatError,
    OutsideDocumentError,
    SharingConfigError,
)
from bridge.sharing.find import (
    FoundDocuments,
    OutsideDocument,
    find_query,
    read_documents,
    read_searchset,
)
from bridge.sharing.identity import affinity_identifier
from bridge.sharing.kos import (
    KOS_SOP_CLASS,
    build_manifest,
    manifest_json,
    manifest_part10,
    referenced,
)
from bridge.sharing.kos_reader import OutsideManifest, read_manifest
from bridge.sharing.loader import DEFAULT_SHARING_FILE, load_sharing_policy
from bridge.sharing.mhd import (
    document_entry,
    provide_bundle,
    replace_bundle,
    supersede_entry,
)
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.study import InstanceRef, StudyFacts, read_study

__all__ = [
    "DEFAULT_SHARING_FILE",
    "KOS_SOP_CLASS",
    "FoundDocuments",
    "IdentityUnmapped",
    "InstanceRef",
    "ManifestDataError",
    "ManifestFormatError",
    "OutsideDocument",
    "OutsideDocumentError",
    "OutsideManifest",
    "SharingConfigError",
    "SharingDecision",
    "SharingPolicy",
    "StudyFacts",
    "affinity_identifier",
    "build_manifest",
    "decide",
    "document_entry",
    "find_query",
    "load_sharing_policy",
    "manifest_json",
    "manifest_part10",
    "provide_bundle",
    "read_documents",
    "read_manifest",
    "read_searchset",
    "read_study",
    "referenced",
    "replace_bundle",
    "supersede_entry",
]
