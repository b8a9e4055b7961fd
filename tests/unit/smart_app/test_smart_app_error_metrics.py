"""Issue 20 item 10 (SMART app half): every error page the app shows is counted by its
reason (``bridge_smart_app_errors_total{reason,status}``), so an operator sees *why*
launches fail (an iss not on the allowlist, an EHR that cannot be reached, consent denied)
and not only that some did."""

from __future__ import annotations

import ast
from pathlib import Path

from prometheus_client import REGISTRY
from sandbox_ehr import SandboxEhr

from bridge.smart_metrics import REASONS
from tests.unit.smart_app.conftest import PATIENT, AppFactory, Browser

SMART_APP = Path(__file__).resolve().parents[3] / "smart_app"


def _count(reason: str, status: int) -> float:
    value = REGISTRY.get_sample_value("bridge_smart_app_errors_total",
                                      {"reason": reason, "status": str(status)})
    return value or 0.0


def test_error_pages_are_counted_by_reason(ehr: SandboxEhr, make_app: AppFactory) -> None:
    dead = "http://127.0.0.1:9/fhir"
    app = make_app(iss_allowlist=[ehr.fhir_url, dead])
    before = {key: _count(*key) for key in (("launch-refused", 403),
                                             ("ehr-not-reachable", 502),
                                             ("access-not-granted", 403),
                                             ("not-signed-in", 401))}
    browser = Browser()
    assert browser.client.get(f"{app.url}/smart/launch",
                              params={"iss": "https://evil.example/fhir", "launch": "x"}
                              ).status_code == 403
    assert browser.client.get(f"{app.url}/smart/launch",
                              params={"iss": dead, "launch": "x"}).status_code == 502
    assert Browser().client.get(f"{app.url}/app/history").status_code == 401
    denied = Browser(decision="deny").go(ehr.launch_url_for("imaging-app", PATIENT))
    assert denied.status_code == 403, denied.text
    assert {key: _count(*key) - n for key, n in before.items()} == {
        ("launch-refused", 403): 1, ("ehr-not-reachable", 502): 1,
        ("access-not-granted", 403): 1, ("not-signed-in", 401): 1}


def test_every_error_title_of_the_app_has_a_reason() -> None:
    """A title the table lacks would be counted as ``other``: add it to REASONS."""
    titles = set()
    for path in SMART_APP.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "LaunchError" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                titles.add(node.args[0].value)
    assert titles, "no LaunchError found: has the app moved?"
    assert titles <= set(REASONS), sorted(titles - set(REASONS))
