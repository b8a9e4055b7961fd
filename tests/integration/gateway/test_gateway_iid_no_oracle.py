"""Issue 12 item 9: IHE IID is no existence oracle.  For a patient-context session, another
patient's study (by UID or accession number) and a study that does not exist get the same
answer, status and body, from the real archive: a launched user cannot enumerate what the
archive holds."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.gateway.gateway_helpers import World
from tests.support.servers import RunningGateway

IID = "/IHEInvokeImageDisplay"


@pytest.fixture(scope="module")
def viewer_a(bridge: RunningGateway, world: World) -> str:
    """A patient-context bearer token for patient A (IID accepts it as a session)."""
    token: str = bridge.gateway.viewer.mint(patient=f"Patient/{world.a.fhir_id}")
    return token


def _iid(bridge: RunningGateway, token: str, **params: str) -> httpx.Response:
    return httpx.get(bridge.url + IID, params={"requestType": "STUDY", **params},
                     headers={"Authorization": f"Bearer {token}"}, follow_redirects=False,
                     timeout=60)


def _same(one: httpx.Response, other: httpx.Response) -> None:
    assert one.status_code == other.status_code == 403, (one.text, other.text)
    assert one.content == other.content


def test_another_patients_study_uid_answers_as_a_missing_one(
    bridge: RunningGateway, world: World, viewer_a: str
) -> None:
    assert _iid(bridge, viewer_a, studyUID=world.a.studies[0]).status_code == 303
    _same(_iid(bridge, viewer_a, studyUID=world.b.studies[0]),
          _iid(bridge, viewer_a, studyUID="1.2.3.4.5.6.7.8.9.0.99"))


def test_another_patients_accession_number_answers_as_a_missing_one(
    bridge: RunningGateway, world: World, viewer_a: str
) -> None:
    assert _iid(bridge, viewer_a, accessionNumber=world.a.accessions[0]).status_code == 303
    _same(_iid(bridge, viewer_a, accessionNumber=world.b.accessions[0]),
          _iid(bridge, viewer_a, accessionNumber="NO-SUCH-ACCESSION-99"))


def test_a_mix_of_own_and_foreign_studies_answers_as_own_and_missing(
    bridge: RunningGateway, world: World, viewer_a: str
) -> None:
    own = world.a.studies[0]
    _same(_iid(bridge, viewer_a, studyUID=f"{own},{world.b.studies[0]}"),
          _iid(bridge, viewer_a, studyUID=f"{own},1.2.3.4.5.6.7.8.9.0.99"))
    _same(_iid(bridge, viewer_a, studyUID=own, accessionNumber=world.b.accessions[0]),
          _iid(bridge, viewer_a, studyUID=own, accessionNumber="NO-SUCH-ACCESSION-99"))
