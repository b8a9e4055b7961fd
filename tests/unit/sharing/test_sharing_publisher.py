"""The publisher's unit of work (one ``share.publish`` task) against in-process fakes of
the archive and the registry: what it stores, registers, replaces and deprecates, and
that a retry writes nothing twice."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pydicom
import pytest

from bridge.errors import ConfigError, PatientNotFound
from bridge.sharing.errors import IdentityUnmapped
from bridge.sharing.kos import referenced
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.publisher import Publisher, split_key
from tests.unit.sharing.publisher_fakes import FakeArchive, FakeRegistry, registry_down
from tests.unit.sharing.sharing_helpers import element, instance, policy

STUDY = "1.2.826.0.1.3680043.10.5.1"
BASE = "https://site-a.example.org/dicom-web"
AFFINITY = {"system": "https://health-network.example.org/fhir/sid/hospital-a-mrn",
            "value": "MRN-1"}


@dataclass
class Task:
    key: str
    payload: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 8, 4, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


def series(n: int, *, modality: str = "CT", count: int = 3) -> list[dict[str, Any]]:
    return [instance(study=STUDY, series=f"{STUDY}.{n}", sop=f"{STUDY}.{n}.{i}",
                     modality=modality) for i in range(1, count + 1)]


class Site:
    """Site A's archive, the registry (with the patient registered) and a publisher."""

    def __init__(self, pol: SharingPolicy | None = None, *,
                 register_patients: bool = False) -> None:
        self.archive = FakeArchive({STUDY: series(1) + series(2)})
        self.registry = FakeRegistry()
        self.patient = self.registry.add_patient(AFFINITY)
        self.clock = Clock()
        self.publisher = Publisher(
            archives={"site-a": self.archive}, stores={"site-a": self.archive},
            registry=self.registry, policy=pol or policy(), retrieve_bases={"site-a": BASE},
            clock=self.clock, register_patients=register_patients)

    async def run(self, task: Task | None = None) -> dict[str, Any]:
        return await self.publisher.handle(task or Task(f"site-a/{STUDY}"))

    def manifest(self, document_id: str) -> pydicom.Dataset:
        doc = self.registry.documents[document_id]
        binary_id = doc["content"][0]["attachment"]["url"].rsplit("/", 1)[1]
        return pydicom.dcmread(io.BytesIO(self.registry.binaries[binary_id]))


def doc_id(result: dict[str, Any]) -> str:
    return str(result["document"]).split("/")[1]


async def test_a_study_is_stored_and_registered_with_every_instance_and_the_gateway_url(
) -> None:
    site = Site()
    result = await site.run()

    assert result["shared"] and result["registered"] and result["reason"] == "policy-all"
    assert result["patient"] == site.patient and result["instances"] == 6
    assert len(site.archive.stored) == 1
    kos = site.manifest(doc_id(result))
    assert kos.SOPInstanceUID == result["manifest_uid"]
    assert sorted(r[2] for r in referenced(kos)) == sorted(
        ds["00080018"]["Value"][0] for ds in series(1) + series(2))
    urls = {s.RetrieveURL for st in kos.CurrentRequestedProcedureEvidenceSequence
            for s in st.ReferencedSeriesSequence}
    assert urls == {f"{BASE}/studies/{STUDY}"}
    # the archive holds the manifest the registry has
    assert site.archive.bytes_of(kos.SOPInstanceUID) == site.registry.binaries[
        next(iter(site.registry.binaries))]


async def test_a_retry_after_success_writes_nothing() -> None:
    site = Site()
    first = await site.run()
    again = await site.run()  # the sync saw the manifest series and queued it again

    assert again["document"] == first["document"] and not again["registered"]
    assert len(site.archive.stored) == 1 and len(site.registry.provided) == 1


async def test_the_publication_its_own_stored_manifest_causes_reads_no_metadata() -> None:
    site = Site()
    first = await site.run()
    # the KOS is in the archive now: the sync wrote the study again and queued this
    again = await site.run(Task(f"site-a/{STUDY}", result=first))

    assert site.archive.qido_calls == 2  # the first publication asked no QIDO-RS query
    assert site.archive.metadata_reads == 1 and len(site.registry.provided) == 1
    assert again == {**first, "registered": False} and again["inputs"]


async def test_a_study_attribute_changed_at_the_same_counts_reads_the_study_again() -> None:
    site = Site()
    first = await site.run()
    site.archive.studies[STUDY] = [{**ds, "00080050": element("SH", "ACC-CORRECTED")}
                                   for ds in site.archive.studies[STUDY]]
    again = await site.run(Task(f"site-a/{STUDY}", result=first))

    assert site.archive.metadata_reads == 2 and again["inputs"] != first["inputs"]


async def test_another_policy_reads_the_study_again() -> None:
    site = Site()
    first = await site.run()
    other = Publisher(
        archives={"site-a": site.archive}, stores={"site-a": site.archive},
        registry=site.registry, policy=policy(policy={"exclude_modalities": ["MG"]}),
        retrieve_bases={"site-a": BASE}, clock=site.clock)
    await other.handle(Task(f"site-a/{STUDY}", result=first))

    assert site.archive.metadata_reads == 2 and len(site.registry.provided) == 1


async def test_a_retry_after_the_registry_failed_registers_the_bytes_the_archive_holds(
) -> None:
    site = Site()
    site.registry.failures.append(registry_down())
    with pytest.raises(type(registry_down())):
        await site.run()
    result = await site.run()  # a minute later by the clock: another Content Time

    kos_uid = result["manifest_uid"]
    [binary] = site.registry.binaries.values()
    assert binary == site.archive.bytes_of(kos_uid)
    attachment = site.registry.documents[doc_id(result)]["content"][0]["attachment"]
    assert attachment["size"] == len(binary)


async def test_a_new_series_replaces_the_manifest_and_supersedes_the_old_one() -> None:
    site = Site()
    first = await site.run()
    site.archive.studies[STUDY] += series(3)
    second = await site.run(Task(f"site-a/{STUDY}", result=first))

    assert second["manifest_uid"] != first["manifest_uid"] and second["registered"]
    assert second["superseded"] == [first["document"]]
    assert site.registry.documents[doc_id(first)]["status"] == "superseded"
    [current] = site.registry.current()
    assert current["relatesTo"] == [{"code": "replaces",
                                     "target": {"reference": first["document"]}}]
    assert len(referenced(site.manifest(current["id"]))) == 9  # not the first manifest


async def test_a_study_back_to_an_earlier_content_makes_that_manifest_current_again(
) -> None:
    site = Site()
    first = await site.run()
    site.archive.studies[STUDY] += series(3)
    second = await site.run()
    site.archive.studies[STUDY] = [ds for ds in site.archive.studies[STUDY]
                                   if ds["0020000E"]["Value"][0] != f"{STUDY}.3"]
    third = await site.run()  # the added series was deleted again

    assert third["manifest_uid"] == first["manifest_uid"]
    assert third["document"] == first["document"] and third["superseded"] == [
        second["document"]]
    assert [d["id"] for d in site.registry.current()] == [doc_id(first)]
    assert len(site.registry.provided) == 2  # nothing registered twice


async def test_an_excluded_modality_publishes_nothing() -> None:
    site = Site(policy(policy={"exclude_modalities": ["MG"]}))
    site.archive.studies[STUDY] += series(3, modality="MG")
    result = await site.run()

    assert result == {"shared": False, "reason": "excluded-modality:MG",
                      "patient": site.patient, "registered": False, "superseded": [],
                      "instances": 0}
    assert site.archive.stored == [] and site.registry.provided == []


async def test_a_study_excluded_after_it_was_published_is_deprecated() -> None:
    site = Site(policy(policy={"exclude_modalities": ["MG"]}))
    first = await site.run()
    site.archive.studies[STUDY] += series(3, modality="MG")
    second = await site.run()

    assert second["superseded"] == [first["document"]] and not second["shared"]
    assert site.registry.current() == []


async def test_on_demand_publishes_only_requested_studies_and_keeps_them_current() -> None:
    site = Site(policy(policy={"mode": "on-demand"}))
    assert (await site.run())["reason"] == "on-demand-not-requested"
    assert site.registry.provided == []

    requested = await site.run(Task(f"site-a/{STUDY}", payload={"requested": True}))
    assert requested["reason"] == "requested" and requested["registered"]

    site.archive.studies[STUDY] += series(3)  # changed: the sync queues it, unrequested
    again = await site.run()
    assert again["reason"] == "requested-before" and again["registered"]
    assert again["superseded"] == [requested["document"]]


async def test_a_patient_not_yet_in_the_registry_waits() -> None:
    site = Site()
    site.registry.patients.clear()
    with pytest.raises(PatientNotFound):
        await site.run()
    assert site.archive.stored == []


async def test_registering_patients_creates_the_missing_one_only_for_a_shared_study(
) -> None:
    site = Site(policy(policy={"exclude_modalities": ["MG"]}), register_patients=True)
    site.registry.patients.clear()
    site.archive.studies[STUDY] += series(3, modality="MG")
    assert (await site.run())["reason"] == "excluded-modality:MG"
    assert site.registry.patients == {}  # nothing of an unshared study goes there

    site.archive.studies[STUDY] = series(1)
    result = await site.run()
    assert result["registered"] and list(site.registry.patients) == [
        f"{AFFINITY['system']}|{AFFINITY['value']}"]


async def test_an_unmapped_issuer_fails_naming_the_tag_unless_not_shared() -> None:
    site = Site(policy(policy={"exclude_modalities": ["MG"]}))
    site.archive.studies[STUDY] = [{**ds, "00100021": element("LO", "ELSEWHERE")}
                                   for ds in series(1)]
    with pytest.raises(IdentityUnmapped) as caught:
        await site.run()
    assert caught.value.tag == "(0010,0021) IssuerOfPatientID"

    site.archive.studies[STUDY] += [{**ds, "00100021": element("LO", "ELSEWHERE")}
                                    for ds in series(3, modality="MG")]
    assert (await site.run())["reason"] == "excluded-modality:MG"


async def test_a_study_gone_from_the_archive_deprecates_its_manifest() -> None:
    site = Site()
    first = await site.run()
    del site.archive.studies[STUDY]
    gone = await site.run(Task(f"site-a/{STUDY}", result=first))

    assert gone["reason"] == "study-gone" and gone["superseded"] == [first["document"]]
    assert site.registry.current() == []
    assert (await site.run())["reason"] == "study-gone"  # nothing recorded: nothing to do


async def test_a_task_naming_no_configured_archive_is_a_config_error() -> None:
    site = Site()
    with pytest.raises(ConfigError, match="no archive named 'site-b'"):
        await site.run(Task(f"site-b/{STUDY}"))
    with pytest.raises(ConfigError, match="is not <archive>/<study uid>"):
        split_key(STUDY)

