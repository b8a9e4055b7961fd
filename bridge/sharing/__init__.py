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

Nothing is imported here: import the submodules themselves, so that using one part
of the room does not load all of it (pydicom, pynetdicom).  The settings section is
:mod:`bridge.sections`.
"""
