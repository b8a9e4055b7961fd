"""Writes ``imaging-bridge.postman_collection.json`` (Postman Collection v2.1) next to itself.

The collection is data; this script is its source, so requests and their tests are reviewed
as code and the JSON never drifts by hand-editing.  Run it after a change::

    python docker/postman/build_collection.py

What an integration engineer does by hand, in order (each request's tests check the status
and the key fields; later requests use what earlier ones found, via collection variables):

1. health and the OpenAPI document;
2. QIDO-RS and WADO-RS through the patient-scoped gateway with the EHR's patient token;
3. STOW-RS through the bridge's proxy (a prepared multipart body file);
4. the FHIR ImagingStudy searches the product supports, at the EHR with the same token;
5. IHE IID links (RAD-106) with the token;
6. the admin API with the admin user;
7. signed notifications (HMAC-SHA256 computed in a pre-request script);
8. the refusals: no token, another patient's study (403), bad or missing signature (401).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "imaging-bridge.postman_collection.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"

DCM = "http://dicom.nema.org/resources/ontology/DCM"
STOW_BOUNDARY = "imaging-bridge-postman-boundary"
BEARER = {"key": "Authorization", "value": "Bearer {{token}}"}
DICOM_JSON = {"key": "Accept", "value": "application/dicom+json"}
FHIR_JSON = {"key": "Accept", "value": "application/fhir+json"}


def item(name: str, method: str, raw_url: str, tests: list[str], *,
         headers: list[dict[str, str]] | None = None, body: dict[str, Any] | None = None,
         prerequest: list[str] | None = None, follow_redirects: bool = True,
         description: str = "") -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "header": list(headers or []),
                               "url": raw_url}
    if body is not None:
        request["body"] = body
    if description:
        request["description"] = description
    events = [{"listen": "test", "script": {"type": "text/javascript", "exec": tests}}]
    if prerequest:
        events.insert(0, {"listen": "prerequest",
                          "script": {"type": "text/javascript", "exec": prerequest}})
    out: dict[str, Any] = {"name": name, "event": events, "request": request}
    if not follow_redirects:
        out["protocolProfileBehavior"] = {"followRedirects": False}
    return out


def status(code: int) -> list[str]:
    return [f'pm.test("status {code}", () => pm.response.to.have.status({code}));']


def folder(name: str, description: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "description": description, "item": items}


# --- 1. health ---------------------------------------------------------------------------

HEALTH = folder("1 Health", "Liveness and the OpenAPI document of every route.", [
    item("healthz", "GET", "{{bridge}}/healthz", [
        *status(200),
        'pm.test("status ok", () => pm.expect(pm.response.json().status).to.eql("ok"));',
    ]),
    item("OpenAPI document", "GET", "{{bridge}}/openapi.json", [
        *status(200),
        "const doc = pm.response.json();",
        'pm.test("OpenAPI 3 with the gateway, STOW and admin paths", () => {',
        '  pm.expect(doc.openapi).to.match(/^3\\./);',
        '  ["/dicom-web/studies", "/notifications", "/status", "/IHEInvokeImageDisplay"]',
        "    .forEach(p => pm.expect(doc.paths).to.have.property(p));",
        "});",
        'pm.test("security schemes declared", () =>',
        "  pm.expect(Object.keys((doc.components || {}).securitySchemes || {})).to.not.be.empty);",
    ]),
])

# --- 2. gateway ----------------------------------------------------------------------------

_FIRST_VALUE = "const v = (o, tag) => ((o[tag] || {}).Value || [])[0];"

GATEWAY = folder("2 Gateway QIDO-RS / WADO-RS (patient token)", (
    "PS3.18 through the patient-scoped gateway: only the token's patient's studies are "
    "visible. `token` is a SMART access token of the EHR (patient/ImagingStudy.rs)."), [
    item("QIDO-RS studies of the token's patient", "GET",
         "{{bridge}}/dicom-web/studies?includefield=00100020&includefield=00100021",
         [*status(200), _FIRST_VALUE,
          "const studies = pm.response.json();",
          'pm.test("at least one study", () => pm.expect(studies).to.not.be.empty);',
          'pm.test("every study is the token\'s patient\'s", () => studies.forEach(s =>',
          '  pm.expect(v(s, "00100020")).to.eql(pm.environment.get("patient_id"))));',
          'pm.collectionVariables.set("study_uid", v(studies[0], "0020000D"));'],
         headers=[BEARER, DICOM_JSON]),
    item("QIDO-RS series of the study", "GET", "{{bridge}}/dicom-web/studies/{{study_uid}}/series",
         [*status(200), _FIRST_VALUE,
          "const series = pm.response.json();",
          'pm.test("series with modality and UID", () => {',
          "  pm.expect(series).to.not.be.empty;",
          '  series.forEach(s => { pm.expect(v(s, "00080060")).to.be.a("string");',
          '                        pm.expect(v(s, "0020000E")).to.be.a("string"); });',
          "});",
          'pm.collectionVariables.set("series_uid", v(series[0], "0020000E"));'],
         headers=[BEARER, DICOM_JSON]),
    item("QIDO-RS instances of the series", "GET",
         "{{bridge}}/dicom-web/studies/{{study_uid}}/series/{{series_uid}}/instances",
         [*status(200), _FIRST_VALUE,
          "const inst = pm.response.json();",
          'pm.test("instances with SOP Instance UIDs", () => pm.expect(inst).to.not.be.empty);',
          'pm.collectionVariables.set("sop_uid", v(inst[0], "00080018"));'],
         headers=[BEARER, DICOM_JSON]),
    item("WADO-RS study metadata", "GET", "{{bridge}}/dicom-web/studies/{{study_uid}}/metadata",
         [*status(200), _FIRST_VALUE,
          "const meta = pm.response.json();",
          'pm.test("every instance is of the study and the patient", () => meta.forEach(m => {',
          '  pm.expect(v(m, "0020000D")).to.eql(pm.collectionVariables.get("study_uid"));',
          '  pm.expect(v(m, "00100020")).to.eql(pm.environment.get("patient_id"));',
          "}));"],
         headers=[BEARER, DICOM_JSON]),
    item("WADO-RS instance (Part 10)", "GET",
         "{{bridge}}/dicom-web/studies/{{study_uid}}/series/{{series_uid}}/instances/{{sop_uid}}",
         [*status(200),
          'pm.test("multipart/related application/dicom", () => pm.expect(',
          '  pm.response.headers.get("Content-Type"))',
          '  .to.match(/multipart\\/related.*application\\/dicom/));',
          'pm.test("a DICOM file inside", () =>',
          '  pm.expect(pm.response.text()).to.include("DICM"));'],
         headers=[BEARER, {"key": "Accept",
                           "value": 'multipart/related; type="application/dicom"'}]),
    item("WADO-RS frame 1 (transfer syntax as stored)", "GET",
         "{{bridge}}/dicom-web/studies/{{study_uid}}/series/{{series_uid}}/instances/"
         "{{sop_uid}}/frames/1",
         [*status(200),
          'pm.test("multipart/related frame", () => pm.expect(',
          '  pm.response.headers.get("Content-Type")).to.match(/multipart\\/related/));',
          'pm.test("not empty", () => pm.expect(pm.response.responseSize).to.be.above(0));'],
         headers=[BEARER, {"key": "Accept", "value": (
             'multipart/related; type="application/octet-stream"; transfer-syntax=*')}]),
])

# --- 3. STOW -------------------------------------------------------------------------------

STOW = folder("3 STOW-RS through the proxy", (
    "PS3.18 10.5 through the bridge's STOW proxy (`realtime.stow_auth`): the archive stores "
    "the instance and the bridge syncs the study at once. The body is the file `stow_file` "
    "(multipart/related, boundary " + STOW_BOUNDARY + "), prepared by "
    "docker/postman/postman_env.py."), [
    item("STOW-RS one instance", "POST", "{{bridge}}/dicom-web/studies",
         ["pm.test(\"status 200\", () => pm.response.to.have.status(200));",
          "const body = pm.response.json();",
          'const refs = ((body["00081199"] || {}).Value) || [];',
          'pm.test("stored, referenced by its SOP Instance UID", () => {',
          "  pm.expect(refs).to.have.lengthOf(1);",
          '  pm.expect(refs[0]["00081155"].Value[0]).to.eql(pm.environment.get("stow_sop_uid"));',
          "});",
          'pm.test("no failed instances", () =>',
          '  pm.expect(((body["00081198"] || {}).Value) || []).to.be.empty);'],
         headers=[{"key": "Authorization", "value": "Bearer {{stow_token}}"}, DICOM_JSON,
                  {"key": "Content-Type", "value": (
                      f'multipart/related; type="application/dicom"; boundary={STOW_BOUNDARY}')}],
         body={"mode": "file", "file": {"src": "{{stow_file}}"}}),
    item("STOW-RS without credentials is refused", "POST", "{{bridge}}/dicom-web/studies",
         [*status(401),
          'pm.test("says how to authenticate", () =>',
          '  pm.expect(pm.response.headers.get("WWW-Authenticate")).to.include("Bearer"));'],
         headers=[DICOM_JSON, {"key": "Content-Type", "value": (
             f'multipart/related; type="application/dicom"; boundary={STOW_BOUNDARY}')}],
         body={"mode": "raw", "raw": f"--{STOW_BOUNDARY}--\r\n"}),
])

# --- 4. FHIR -------------------------------------------------------------------------------

_BUNDLE = [
    "const bundle = pm.response.json();",
    'const studies = (bundle.entry || []).filter(e => e.resource.resourceType === "ImagingStudy")'
    ".map(e => e.resource);",
    'pm.test("a searchset Bundle", () => pm.expect(bundle.type).to.eql("searchset"));',
    'pm.test("ImagingStudies found", () => pm.expect(studies).to.not.be.empty);',
    'pm.test("all of the patient", () => studies.forEach(s => pm.expect(s.subject.reference)'
    '.to.match(new RegExp("Patient/" + pm.environment.get("patient_fhir_id") + "$"))));',
]
_FHIR = "{{fhir}}/ImagingStudy?patient={{patient_fhir_id}}"

FHIR = folder("4 FHIR ImagingStudy searches (EHR)", (
    "The searches the product supports on the ImagingStudy resources it writes (FHIR R4 "
    "ImagingStudy search parameters), at the EHR's FHIR endpoint with the patient token."), [
    item("by patient", "GET", _FHIR + "&_count=100",
         [*status(200), *_BUNDLE,
          "const uid = pm.collectionVariables.get('study_uid');",
          "const one = studies.find(s => s.identifier.some(i => i.value === 'urn:oid:' + uid));",
          'pm.test("the QIDO study is there", () => pm.expect(one).to.not.be.undefined);',
          "const acsn = one.identifier.find(i => ((i.type || {}).coding || [])",
          "  .some(c => c.code === 'ACSN'));",
          "pm.collectionVariables.set('imaging_study_id', one.id);",
          "pm.collectionVariables.set('modality', one.modality[0].code);",
          "pm.collectionVariables.set('accession', acsn.system + '|' + acsn.value);",
          "const site = studies.flatMap(s => s.series || []).map(x => x.bodySite)",
          "  .find(b => b && b.system && b.code);",
          'pm.test("a study with a coded body site", () => pm.expect(site).to.not.be.undefined);',
          "pm.collectionVariables.set('bodysite', site.system + '|' + site.code);"],
         headers=[BEARER, FHIR_JSON]),
    item("by Study Instance UID (identifier)", "GET",
         _FHIR + "&identifier=urn:dicom:uid|urn:oid:{{study_uid}}",
         [*status(200), *_BUNDLE,
          'pm.test("exactly that study", () => {',
          "  pm.expect(studies).to.have.lengthOf(1);",
          "  pm.expect(studies[0].id).to.eql(pm.collectionVariables.get('imaging_study_id'));",
          "});"],
         headers=[BEARER, FHIR_JSON]),
    item("by accession number (identifier)", "GET", _FHIR + "&identifier={{accession}}",
         [*status(200), *_BUNDLE,
          'pm.test("the study of that accession", () => pm.expect(studies.map(s => s.id))',
          "  .to.include(pm.collectionVariables.get('imaging_study_id')));"],
         headers=[BEARER, FHIR_JSON]),
    item("by modality", "GET", _FHIR + f"&modality={DCM}|{{{{modality}}}}",
         [*status(200), *_BUNDLE,
          'pm.test("each has the modality", () => studies.forEach(s => pm.expect(',
          "  s.modality.map(m => m.code)).to.include(pm.collectionVariables.get('modality'))));"],
         headers=[BEARER, FHIR_JSON]),
    item("by started (date range)", "GET", _FHIR + "&started=ge2015-01-01&started=lt2027-01-01",
         [*status(200), *_BUNDLE,
          'pm.test("each started in the range", () => studies.forEach(s => {',
          '  pm.expect(s.started >= "2015-01-01" && s.started < "2027").to.be.true; }));'],
         headers=[BEARER, FHIR_JSON]),
    item("by body site", "GET", _FHIR + "&bodysite={{bodysite}}",
         [*status(200), *_BUNDLE,
          "const [sys, code] = pm.collectionVariables.get('bodysite').split('|');",
          'pm.test("each has a series of that body site", () => studies.forEach(s =>',
          "  pm.expect((s.series || []).some(x => x.bodySite && x.bodySite.code === code",
          "    && x.bodySite.system === sys)).to.be.true));"],
         headers=[BEARER, FHIR_JSON]),
    item("_include=ImagingStudy:endpoint", "GET",
         _FHIR + "&_id={{imaging_study_id}}&_include=ImagingStudy:endpoint",
         [*status(200), *_BUNDLE,
          "const eps = bundle.entry.filter(e => e.search.mode === 'include').map(e => e.resource);",
          'pm.test("Endpoints included", () => pm.expect(eps).to.not.be.empty);',
          "const wado = eps.find(e => e.connectionType.code === 'dicom-wado-rs');",
          "const iid = eps.find(e => e.connectionType.code === 'ihe-iid');",
          'pm.test("the gateway\'s WADO-RS Endpoint", () =>',
          "  pm.expect(wado.address).to.eql(pm.environment.get('bridge') + '/dicom-web'));",
          'pm.test("the IID Endpoint", () =>',
          "  pm.expect(iid.address).to.include('/IHEInvokeImageDisplay'));"],
         headers=[BEARER, FHIR_JSON]),
])

# --- 5. IID --------------------------------------------------------------------------------

_IID = "{{bridge}}/IHEInvokeImageDisplay"
IID = folder("5 IHE Invoke Image Display (RAD-106)", (
    "IID links with the patient token (a browser uses the SMART app's session instead): "
    "303 to the viewer or the history page; 400 for a bad request."), [
    item("STUDY request opens the viewer", "GET",
         _IID + "?requestType=STUDY&studyUID={{study_uid}}",
         [*status(303),
          'pm.test("to the viewer, with the study", () => {',
          '  const loc = pm.response.headers.get("Location");',
          '  pm.expect(loc).to.include("/viewer");',
          "  pm.expect(loc).to.include(pm.collectionVariables.get('study_uid'));",
          "});"],
         headers=[BEARER], follow_redirects=False),
    item("PATIENT request opens the history", "GET",
         _IID + "?requestType=PATIENT&patientID={{patient_id}}%5E%5E%5E{{patient_issuer}}"
         "&mostRecentResults=1",
         [*status(303),
          'pm.test("to the history page", () => pm.expect(pm.response.headers.get("Location"))',
          '  .to.include("mostRecentResults=1"));'],
         headers=[BEARER], follow_redirects=False),
    item("STUDY request without studyUID is a bad request", "GET",
         _IID + "?requestType=STUDY",
         [*status(400),
          'pm.test("names the parameter", () =>',
          '  pm.expect(pm.response.text()).to.include("study"));'],
         headers=[BEARER], follow_redirects=False),
])

# --- 6. admin ------------------------------------------------------------------------------

_ADMIN = {"type": "basic", "basic": [
    {"key": "username", "value": "{{admin_user}}", "type": "string"},
    {"key": "password", "value": "{{admin_password}}", "type": "string"}]}


def admin_item(name: str, raw_url: str, tests: list[str]) -> dict[str, Any]:
    out = item(name, "GET", raw_url, tests)
    out["request"]["auth"] = _ADMIN
    return out


ADMIN = folder("6 Admin API (api.admin_auth)", "Operations endpoints behind the admin user.", [
    admin_item("status", "{{bridge}}/status",
               [*status(200), "const s = pm.response.json();",
                'pm.test("counts, queue and lanes", () => {',
                '  ["studies", "queue_depth", "lag_seconds", "lanes"].forEach(k =>',
                "    pm.expect(s).to.have.property(k));",
                "});"]),
    admin_item("one study's history", "{{bridge}}/studies/{{study_uid}}",
               [*status(200), "const h = pm.response.json();",
                'pm.test("its sync state", () => {',
                "  pm.expect(h.states).to.not.be.empty;",
                "  pm.expect(h.states[0].study_uid)",
                "    .to.eql(pm.collectionVariables.get('study_uid'));",
                "});"]),
    admin_item("metrics", "{{bridge}}/metrics",
               [*status(200),
                'pm.test("Prometheus text with the bridge\'s metrics", () =>',
                '  pm.expect(pm.response.text()).to.include("bridge_"));']),
    item("status without the admin user is refused", "GET", "{{bridge}}/status",
         [*status(401),
          'pm.test("asks for Basic credentials", () =>',
          '  pm.expect(pm.response.headers.get("WWW-Authenticate")).to.include("Basic"));']),
])

# --- 7. notifications ----------------------------------------------------------------------

_SIGN = [
    "// X-Bridge-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + '.' + body))",
    "const crypto = require('crypto-js');",
    "const ts = Math.floor(Date.now() / 1000).toString();",
    "const body = pm.variables.replaceIn(pm.request.body.raw);",
    "const mac = crypto.HmacSHA256(ts + '.' + body, pm.environment.get('webhook_secret'));",
    "pm.request.headers.upsert({key: 'X-Bridge-Timestamp', value: ts});",
    "pm.request.headers.upsert({key: 'X-Bridge-Signature',",
    "  value: 'sha256=' + mac.toString(crypto.enc.Hex)});",
]
_EVENT = {"mode": "raw", "raw": '{"studyInstanceUID": "{{study_uid}}", "event": "updated"}',
          "options": {"raw": {"language": "json"}}}
_JSON = {"key": "Content-Type", "value": "application/json"}

NOTIFY = folder("7 Notifications (HMAC-SHA256 signed)", (
    "POST /notifications with `realtime.webhook_secret`: the pre-request script signs "
    "timestamp.body."), [
    item("signed event is accepted", "POST", "{{bridge}}/notifications",
         [*status(202)], headers=[_JSON], body=_EVENT, prerequest=_SIGN),
])

# --- 8. refusals ---------------------------------------------------------------------------

_WRONG_SIGNATURE = [
    "pm.request.headers.upsert({key: 'X-Bridge-Timestamp',",
    "  value: Math.floor(Date.now() / 1000).toString()});",
    "pm.request.headers.upsert({key: 'X-Bridge-Signature', value: 'sha256=' + '0'.repeat(64)});",
]

NEGATIVE = folder("8 Refusals", "What must be refused, and with which status.", [
    item("gateway without a token", "GET", "{{bridge}}/dicom-web/studies",
         [*status(401),
          'pm.test("Bearer challenge", () =>',
          '  pm.expect(pm.response.headers.get("WWW-Authenticate")).to.include("Bearer"));'],
         headers=[DICOM_JSON]),
    item("another patient's study metadata", "GET",
         "{{bridge}}/dicom-web/studies/{{other_study_uid}}/metadata", [*status(403)],
         headers=[BEARER, DICOM_JSON]),
    item("another patient's study series", "GET",
         "{{bridge}}/dicom-web/studies/{{other_study_uid}}/series", [*status(403)],
         headers=[BEARER, DICOM_JSON]),
    item("IID for another patient's study", "GET",
         _IID + "?requestType=STUDY&studyUID={{other_study_uid}}", [*status(403)],
         headers=[BEARER], follow_redirects=False),
    item("FHIR without a token", "GET", _FHIR, [*status(401)], headers=[FHIR_JSON]),
    item("notification with a bad signature", "POST", "{{bridge}}/notifications",
         [*status(401),
          'pm.test("says the signature was refused", () =>',
          '  pm.expect(pm.response.json().detail).to.include("signature"));'],
         headers=[_JSON], body=_EVENT, prerequest=_WRONG_SIGNATURE),
    item("notification without a signature", "POST", "{{bridge}}/notifications",
         [*status(401)], headers=[_JSON], body=_EVENT),
])


def collection() -> dict[str, Any]:
    return {
        "info": {
            "name": "imaging-fhir-bridge",
            "description": (
                "What an integration engineer checks by hand on imaging-fhir-bridge: the "
                "patient-scoped DICOMweb gateway, the STOW-RS proxy, the EHR's ImagingStudy "
                "searches, IHE IID, the admin API, signed notifications and the refusals. "
                "Run the folders in order (later requests use what earlier ones found). "
                "Generated by docker/postman/build_collection.py; see docker/postman/README.md."),
            "schema": SCHEMA,
        },
        "item": [HEALTH, GATEWAY, STOW, FHIR, IID, ADMIN, NOTIFY, NEGATIVE],
        "variable": [{"key": k, "value": ""} for k in (
            "study_uid", "series_uid", "sop_uid", "imaging_study_id", "modality", "accession",
            "bodysite")],
    }


def main() -> None:
    OUT.write_text(json.dumps(collection(), indent=2) + "\n", "utf-8")
    print(OUT)


if __name__ == "__main__":
    main()
