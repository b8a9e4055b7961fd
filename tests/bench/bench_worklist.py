"""Benchmark of the Modality Worklist C-FIND (issue 17): a script that prints figures.

    .venv/bin/python tests/bench/bench_worklist.py [--items 10000] [--rounds 21]
        [--findscu-rounds 9] [--output .run/bench/worklist.json]

Starts its own two Modality Worklist SCPs on loopback ports (never the shared stack) over
the same ``--items`` scheduled items (the golden CT order mapped once, then copies with
distinct accessions, patient IDs, 5 modalities, 10 stations and 50 days):

- ``indexed``: :class:`bridge.worklist.source.InMemoryWorklist` as the SCP uses it now (the
  index narrows to the items that can match, :class:`Matcher` decides);
- ``linear``: the previous path, in the same run: every item matched by :class:`Matcher`.

Per round, alternating the SCPs, one pynetdicom association each: a C-ECHO (the floor:
the DIMSE round trip without a query) and each query's C-FIND to its final status.  Then
``findscu -W`` (DCMTK, a new process and association each time) when it is installed.
Queries: the issue's one (accession + SPS modality + date, 1 match), a modality's day
(station AE + date), a week's range for one modality, and a PatientName wildcard only (the
index cannot narrow it: a full scan, reported for honesty).  Target: <= 100 ms median for
the C-FIND over 10,000 items (the issue's query).  Writes the figures as JSON.

Order-to-worklist latency (``--latency-stack .run/stack.json``, a HAPI to create orders
in; ``--latency-only`` skips the C-FIND part): the worklist service runs as ``serve``
runs it (poller + SCP, ``--poll-interval`` seconds, orders of a category of the run's
own); each of ``--latency-orders`` ServiceRequests is created (POST) and a pynetdicom
C-FIND by its accession is repeated every 20 ms until the SCP returns it: the latency is
POST start -> first answer with the item.  Orders are created at spread phases of the
poll cycle.  The issue's target (p95 <= 2 s) is for a subscription; this is polling.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pynetdicom import AE  # noqa: E402

from bridge.worklist.loader import load_worklist_mapping  # noqa: E402
from bridge.worklist.mapper import map_order  # noqa: E402
from bridge.worklist.matching import Matcher  # noqa: E402
from bridge.worklist.scp import MWL_FIND, VERIFICATION, WorklistScp  # noqa: E402
from bridge.worklist.source import InMemoryWorklist, ItemSource  # noqa: E402
from tests.bench.report_file import write_report  # noqa: E402

UNIT = ROOT / "tests" / "unit" / "worklist"  # the golden CT order and the site mapping
MODALITIES = ("CT", "MR", "US", "CR", "NM")
CALLING = "BENCH_SCU"


class LinearWorklist:
    """The path before the index: every item goes through the matcher."""

    def __init__(self, items: Sequence[Dataset]) -> None:
        self._items = tuple(items)

    def items(self) -> Sequence[Dataset]:
        return self._items

    def candidates(self, query: Dataset) -> Sequence[Dataset]:
        return self._items


def build_items(count: int) -> list[Dataset]:
    golden = json.loads((UNIT / "golden" / "ct_order.input.json").read_text("utf-8"))
    mapping = load_worklist_mapping(UNIT / "site_worklist.yaml")
    template = map_order(golden["serviceRequest"], golden["patient"], mapping)
    items = []
    for n in range(count):
        item = copy.deepcopy(template)
        item.AccessionNumber = f"A{n:06d}"
        item.PatientID = f"MRN-{n:06d}"
        step = item.ScheduledProcedureStepSequence[0]
        step.Modality = MODALITIES[n % len(MODALITIES)]
        step.ScheduledStationAETitle = f"{step.Modality}_{n % 2 + 1}"
        step.ScheduledProcedureStepStartDate = f"2026{12 if n % 50 < 31 else 11}" + (
            f"{n % 50 + 1:02d}" if n % 50 < 31 else f"{n % 50 - 30:02d}")
        step.ScheduledProcedureStepStartTime = f"{7 + n % 11:02d}{n % 60:02d}00"
        items.append(item)
    return items


def _query(top: dict[str, str], step: dict[str, str]) -> Dataset:
    query = Dataset()
    query.PatientName = ""
    query.PatientID = ""
    query.AccessionNumber = ""
    query.StudyInstanceUID = ""
    for keyword, value in top.items():
        setattr(query, keyword, value)
    sps = Dataset()
    sps.Modality = ""
    sps.ScheduledStationAETitle = ""
    sps.ScheduledProcedureStepStartDate = ""
    sps.ScheduledProcedureStepStartTime = ""
    for keyword, value in step.items():
        setattr(sps, keyword, value)
    query.ScheduledProcedureStepSequence = [sps]
    return query


def queries(count: int) -> dict[str, Dataset]:
    target = count * 2 // 3  # an item in the middle of the list
    n = target
    day = f"2026{12 if n % 50 < 31 else 11}" + (
        f"{n % 50 + 1:02d}" if n % 50 < 31 else f"{n % 50 - 30:02d}")
    modality = MODALITIES[n % len(MODALITIES)]
    return {
        "accession_modality_date": _query({"AccessionNumber": f"A{n:06d}"}, {
            "Modality": modality, "ScheduledProcedureStepStartDate": day}),
        "station_day": _query({}, {"ScheduledStationAETitle": f"{modality}_{n % 2 + 1}",
                                   "ScheduledProcedureStepStartDate": day}),
        "modality_week": _query({}, {"Modality": modality,
                                     "ScheduledProcedureStepStartDate": "20261210-20261216"}),
        "name_wildcard_full_scan": _query({"PatientName": "*ZZNOMATCH*"}, {}),
    }


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _no_delay(assoc: Any) -> None:
    """TCP_NODELAY on the SCU's socket, as DCMTK's findscu sets it by default: the
    C-FIND request is a command PDU then a data set PDU, and with Nagle's algorithm the
    second waits for the SCP's delayed ACK (40 ms on Linux)."""
    sock = assoc.dul.socket.socket
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _find(assoc: Any, query: Dataset) -> tuple[float, int]:
    t0 = time.perf_counter()
    matches = 0
    for status, identifier in assoc.send_c_find(query, MWL_FIND):
        if status is None:
            raise RuntimeError("C-FIND: no status (association aborted?)")
        if status.Status == 0xFF00 and identifier is not None:
            matches += 1
    return _ms(t0), matches


def _findscu(port: int, query: Dataset) -> float:
    args = ["findscu", "-W", "-aet", CALLING, "-aec", "BENCH_MWL"]
    for elem in query:
        if elem.VR == "SQ":
            for sub in elem.value[0]:
                args += ["-k", f"(0040,0100)[0].{sub.keyword}={sub.value or ''}"]
        else:
            args += ["-k", f"{elem.keyword}={elem.value or ''}"]
    t0 = time.perf_counter()
    subprocess.run([*args, "127.0.0.1", str(port)], check=True, capture_output=True,
                   timeout=60)
    return _ms(t0)


def _summary(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values), 2),
            "best_ms": round(min(values), 2), "runs": len(values)}


V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _bench_order(token: str, n: int, patient_id: str) -> dict[str, Any]:
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT09:00:00Z")
    return {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "category": [{"coding": [{"system": "urn:bench:worklist", "code": token}]}],
        "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                        "system": "urn:oid:1.2.3.4.3", "value": f"B{token[:8]}{n:04d}"}],
        "code": {"text": "CT chest"}, "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": day,
        "performerType": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                      "code": "CT"}]},
    }


def _has_accession(port: int, accession: str) -> bool:
    scu = AE(ae_title=CALLING)
    scu.add_requested_context(MWL_FIND)
    assoc = scu.associate("127.0.0.1", port, ae_title="BENCH_MWL")
    if not assoc.is_established:
        raise RuntimeError("association with the worklist SCP refused")
    query = Dataset()
    query.AccessionNumber = accession
    try:
        return any(status is not None and status.Status == 0xFF00
                   for status, _ in assoc.send_c_find(query, MWL_FIND))
    finally:
        assoc.release()


def _notify_receiver(loop: asyncio.AbstractEventLoop, service: Any) -> Any:
    """A loopback HTTP endpoint standing for ``/worklist/notify``: each POST/PUT calls
    ``service.notify()`` in the service's loop, as the route does."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            loop.call_soon_threadsafe(service.notify)
            self.send_response(200)
            self.end_headers()

        do_POST = do_PUT = _any

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def _subscribe(http: httpx.Client, token: str, port: int) -> None:
    """A rest-hook Subscription on the run's orders, waited for until HAPI activates it."""
    created = http.post("/Subscription", headers={"Content-Type": "application/fhir+json"},
                        json={"resourceType": "Subscription", "status": "requested",
                              "reason": "bench worklist",
                              "criteria": f"ServiceRequest?category=urn:bench:worklist|{token}",
                              "channel": {"type": "rest-hook",
                                          "endpoint": f"http://127.0.0.1:{port}/notify"}})
    created.raise_for_status()
    sid = created.json()["id"]
    for _ in range(600):
        got = http.get(f"/Subscription/{sid}", headers={"Cache-Control": "no-cache"})
        if got.json().get("status") == "active":
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the Subscription did not become active")


async def order_latency(fhir_url: str, *, orders: int, interval: float,
                        notify: bool = False, subscribe: bool = False) -> list[float]:
    """Seconds from each order's POST to its first appearance in a C-FIND answer; with
    ``notify``, each POST is followed by ``service.notify()`` (what ``/worklist/notify``
    does for a rest-hook notification; HAPI's own delivery delay is not included); with
    ``subscribe``, HAPI's rest-hook Subscription notifies (the HAPI must deliver)."""
    from bridge.assembly import worklist_service
    from bridge.fhir.client import FhirClient
    from bridge.sections.base import FhirSettings
    from bridge.sections.worklist import WorklistSettings

    token = uuid.uuid4().hex[:10]
    settings = WorklistSettings(enabled=True, ae_title="BENCH_MWL", calling_ae_titles=[CALLING],
                                port=0, order_category=f"urn:bench:worklist|{token}",
                                poll_interval=interval)
    headers = {"Content-Type": "application/fhir+json"}
    latencies: list[float] = []
    async with FhirClient(FhirSettings(base_url=fhir_url)) as fhir:
        service = worklist_service(settings, fhir=fhir)
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        try:
            while service.poller.status.polls == 0 or service.scp._server is None:
                await asyncio.sleep(0.02)
            port = service.scp.port
            with httpx.Client(base_url=fhir_url, timeout=30) as http:
                if subscribe:
                    receiver = _notify_receiver(asyncio.get_running_loop(), service)
                    await _subscribe(http, token, receiver.server_address[1])
                patient = http.post("/Patient", headers=headers, json={
                    "resourceType": "Patient", "name": [{"family": "Bench"}],
                    "identifier": [{"system": "urn:oid:1.2.3.4.9", "value": f"B{token}"}]})
                patient.raise_for_status()
                for n in range(orders):
                    # spread the creations over the poll cycle (golden-ratio phases)
                    if not (notify or subscribe):
                        await asyncio.sleep(((n * 0.618) % 1) * interval)
                    body = _bench_order(token, n, patient.json()["id"])
                    t0 = time.perf_counter()
                    created = await asyncio.to_thread(http.post, "/ServiceRequest",
                                                      headers=headers, json=body)
                    created.raise_for_status()
                    if notify:
                        service.notify()
                    accession = body["identifier"][0]["value"]
                    while not await asyncio.to_thread(_has_accession, port, accession):
                        await asyncio.sleep(0.02)
                    latencies.append(time.perf_counter() - t0)
        finally:
            stop.set()
            await running
    return latencies


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * (len(ordered) - 1))))]


def subscription_main(args: argparse.Namespace) -> dict[str, Any]:
    """Order -> worklist through a real rest-hook Subscription: a HAPI of its own started
    with ``--bridge.subscriptions=resthook`` (the shared one does not deliver)."""
    sys.path.insert(0, str(ROOT / "docker" / "local"))
    from devservers.hapi import Hapi, build_hapi_jar  # type: ignore[import-not-found]

    hapi = Hapi(build_hapi_jar(ROOT), extra_args=["--bridge.subscriptions=resthook"])
    hapi.start()
    try:
        values = asyncio.run(order_latency(hapi.fhir_url, orders=args.latency_orders,
                                           interval=args.poll_interval[0], subscribe=True))
    finally:
        hapi.stop()
    fig = {"poll_interval_s": args.poll_interval[0], "orders": len(values),
           "median_s": round(statistics.median(values), 3),
           "p95_s": round(_percentile(values, 0.95), 3), "max_s": round(max(values), 3)}
    print(f"order -> worklist (rest-hook Subscription, poll every {args.poll_interval[0]:g} s, "
          f"{fig['orders']} orders): median {fig['median_s']} s, p95 {fig['p95_s']} s, "
          f"max {fig['max_s']} s")
    return {"subscription": fig}


def latency_main(args: argparse.Namespace) -> dict[str, Any]:
    if args.subscription:
        return subscription_main(args)
    stack = json.loads(args.latency_stack.read_text())
    fhir_url = stack["hapi"]["fhir_url"]
    out: dict[str, Any] = {}
    for interval in args.poll_interval:
        values = asyncio.run(order_latency(fhir_url, orders=args.latency_orders,
                                           interval=interval, notify=args.notify))
        fig = {"poll_interval_s": interval, "orders": len(values),
               "median_s": round(statistics.median(values), 3),
               "p95_s": round(_percentile(values, 0.95), 3),
               "max_s": round(max(values), 3)}
        out[f"poll_{interval:g}s" + ("_notified" if args.notify else "")] = fig
        print(f"order -> worklist (poll every {interval:g} s"
              f"{', notified' if args.notify else ''}, {fig['orders']} orders): "
              f"median {fig['median_s']} s, p95 {fig['p95_s']} s, max {fig['max_s']} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-stack", type=Path, default=None,
                        help="stack.json of a running HAPI: measure order -> worklist")
    parser.add_argument("--latency-orders", type=int, default=20)
    parser.add_argument("--poll-interval", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--subscription", action="store_true",
                        help="with --latency-only: a HAPI of its own delivering a rest-hook "
                        "Subscription notifies the worklist")
    parser.add_argument("--notify", action="store_true",
                        help="notify the worklist after each order (a rest-hook's effect)")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=21, help="C-FIND rounds per SCP")
    parser.add_argument("--findscu-rounds", type=int, default=9)
    parser.add_argument("--output", type=Path,
                        default=ROOT / ".run" / "bench" / "worklist.json")
    args = parser.parse_args()
    latency = latency_main(args) \
        if args.latency_stack is not None or args.subscription else None
    if args.latency_only:
        if latency is not None:
            write_report({"order_to_worklist": latency,
                          "load_average": os.getloadavg()[0], "cpus": os.cpu_count()},
                         args.output.with_name("worklist-latency.json"))
        return

    t0 = time.perf_counter()
    items = build_items(args.items)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    indexed_source = InMemoryWorklist(items)
    index_s = time.perf_counter() - t0
    sources: dict[str, ItemSource] = {"indexed": indexed_source, "linear": LinearWorklist(items)}
    shapes = queries(args.items)
    for name, query in shapes.items():  # the index gives the plain matcher's answers
        matcher = Matcher(query)
        plain = [i for i in items if matcher.matches(i)]
        assert [i for i in indexed_source.candidates(query) if matcher.matches(i)] == plain, name

    scps = {name: WorklistScp(source=src, ae_title="BENCH_MWL", calling_ae_titles=[CALLING])
            for name, src in sources.items()}
    scu = AE(ae_title=CALLING)
    scu.add_requested_context(MWL_FIND)
    scu.add_requested_context(VERIFICATION)
    echo: dict[str, list[float]] = {name: [] for name in scps}
    find: dict[str, dict[str, list[float]]] = {
        name: {q: [] for q in shapes} for name in scps}
    matches: dict[str, int] = {}
    findscu: dict[str, list[float]] = {name: [] for name in scps}
    try:
        for scp in scps.values():
            scp.start()
        for round_ in range(args.rounds):
            order = list(scps) if round_ % 2 == 0 else list(reversed(scps))
            for name in order:
                # one association at a time: pynetdicom's reactor threads of an idle
                # association would compete for the GIL with the measured one
                assoc = scu.associate("127.0.0.1", scps[name].port, ae_title="BENCH_MWL")
                if not assoc.is_established:
                    raise RuntimeError(f"association with the {name} SCP refused")
                _no_delay(assoc)
                e0 = time.perf_counter()
                assoc.send_c_echo()
                echo[name].append(_ms(e0))
                for qname, query in shapes.items():
                    if name == "linear" and round_ >= max(3, args.rounds // 3):
                        continue  # the old path is slow: a third of the rounds is enough
                    elapsed, found = _find(assoc, query)
                    find[name][qname].append(elapsed)
                    if matches.setdefault(f"{name}:{qname}", found) != found:
                        raise RuntimeError(f"{name} {qname}: {found} matches, not "
                                           f"{matches[f'{name}:{qname}']}")
                assoc.release()
        if shutil.which("findscu"):
            issue_query = shapes["accession_modality_date"]
            for round_ in range(args.findscu_rounds):
                for name in (list(scps) if round_ % 2 == 0 else list(reversed(scps))):
                    findscu[name].append(_findscu(scps[name].port, issue_query))
    finally:
        for scp in scps.values():
            scp.stop()

    for qname in shapes:
        if matches[f"indexed:{qname}"] != matches[f"linear:{qname}"]:
            raise RuntimeError(f"{qname}: the two SCPs disagree")
    report: dict[str, Any] = {
        "items": args.items,
        "build_items_s": round(build_s, 2),
        "build_index_s": round(index_s, 3),
        "echo_floor": {name: _summary(v) for name, v in echo.items()},
        "c_find": {name: {q: {**_summary(v), "matches": matches[f"{name}:{q}"]}
                          for q, v in per.items()} for name, per in find.items()},
        "findscu_issue_query": {name: _summary(v) for name, v in findscu.items() if v},
        "target": {"c_find_issue_query_median_ms": 100},
        "order_to_worklist": latency,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    path = write_report(report, args.output)
    print(f"{args.items:,} items (built in {build_s:.1f} s, indexed in {index_s:.2f} s); "
          f"load average {report['load_average']:.1f} on {report['cpus']} CPUs")
    print(f"C-ECHO floor: indexed SCP {report['echo_floor']['indexed']['median_ms']} ms, "
          f"linear SCP {report['echo_floor']['linear']['median_ms']} ms median")
    for qname in shapes:
        ind, lin = report["c_find"]["indexed"][qname], report["c_find"]["linear"][qname]
        print(f"C-FIND {qname} ({ind['matches']} matches): indexed {ind['median_ms']} ms "
              f"median ({ind['runs']} runs), linear {lin['median_ms']} ms ({lin['runs']} runs)")
    for name, fig in report["findscu_issue_query"].items():
        print(f"findscu -W (new process + association), issue query, {name}: "
              f"{fig['median_ms']} ms median ({fig['runs']} runs)")
    median = report["c_find"]["indexed"]["accession_modality_date"]["median_ms"]
    print(f"target (C-FIND over {args.items:,} items, issue query, <= 100 ms median): "
          f"{'met' if median <= 100 else 'NOT met'} ({median} ms); wrote {path}")


if __name__ == "__main__":
    main()
