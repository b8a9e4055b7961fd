"""The former code paths of issue 19's CPU savings, kept callable for before/after figures
in one run (the machine is shared and noisy: figures from different runs do not compare).

Each saving has a name; :func:`former` puts the named savings back to the code they
replaced, for the duration of a ``with`` block, by swapping module attributes:

* ``complete_many``: the runner recorded each confirmed study in its own state-store
  transaction (``StateStore.complete`` in a thread of its own), not one
  ``complete_many`` per FHIR batch;
* ``canonical_orjson``: the content hash's canonical JSON came from ``json.dumps``;
* ``json_copy``: the assembly copied the mapped resources with ``copy.deepcopy``;
* ``http_orjson``: the HTTP clients read bodies with ``json.loads`` (httpx's
  ``Response.json``) and wrote FHIR bodies with httpx's ``json=`` (``json.dumps``);
* ``lazy_cookies``: httpx's cookie jar read every response;
* ``in_flight``: the archive client handed every request to httpcore at once (a claim's
  100 metadata requests queued in its pool, not behind a semaphore of the pool's size);
* ``sniffio``: sniffio was not installed, and httpcore's ``import sniffio`` at each lock
  set-up searched ``sys.path`` in vain every time (here: a finder that makes the same
  search, then refuses).  Only real HTTP shows it (``bench_backfill --former-paths``):
  ``httpx.MockTransport`` has no httpcore pool;
* ``gc_freeze``: the start-up heap stayed in the cyclic collector's generations
  (``bridge.sync.heap.freeze_startup_heap`` not called; here: ``gc.unfreeze()`` for the
  block).  The benchmarks call ``freeze_startup_heap()`` once set up, as the composition
  root (``bridge.sync.service.sync_context``) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import importlib.abc
import importlib.machinery
import json
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

import bridge.archive.client as archive_client
import bridge.fhir.client as fhir_client
import bridge.httpclient as httpclient
import bridge.mapping.canonical as canonical
import bridge.sync.assemble as assemble
from bridge.sync import runner as runner_module

SAVINGS = ("complete_many", "canonical_orjson", "json_copy", "http_orjson", "lazy_cookies",
           "in_flight", "sniffio", "gc_freeze")


class _NoSniffio(importlib.abc.MetaPathFinder):
    """``import sniffio`` as it was without the package: the whole path search, then
    ModuleNotFoundError (Python does not cache a failed import)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "sniffio":
            importlib.machinery.PathFinder.find_spec(fullname, path)
            raise ModuleNotFoundError("No module named 'sniffio'", name=fullname)
        return None


@contextlib.contextmanager
def _without_sniffio() -> Iterator[None]:
    module = sys.modules.pop("sniffio", None)
    finder = _NoSniffio()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        if module is not None:
            sys.modules["sniffio"] = module


@contextlib.contextmanager
def _unfrozen() -> Iterator[None]:
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    try:
        yield
    finally:
        if frozen:
            gc.freeze()


_dicomweb_init = archive_client.DicomwebClient.__init__


def _init_without_in_flight(self: Any, *args: Any, **kwargs: Any) -> None:
    _dicomweb_init(self, *args, **kwargs)
    self._in_flight = contextlib.nullcontext()


async def _complete_one_by_one(self: Any, settled: Sequence[Any], *, written: bool = False
                               ) -> list[bool]:
    """The runner's former recording: one ``complete`` transaction per study."""
    recorded: list[bool] = []
    for done in settled:
        job = done.job
        ok = await asyncio.to_thread(
            self.store.complete, job.claim.archive, job.claim.study_uid,
            worker=self.worker_id, claimed_seq=job.claim.claimed_seq,
            fingerprint=job.claim.fingerprint, content_hash=job.hash, fhir_id=done.fhir_id,
            fhir_version=done.version, action=done.action, warnings=job.warnings,
        )
        if ok:
            runner_module.log.info("study synced", extra={
                "study_uid": job.claim.study_uid, "archive": job.claim.archive,
                "outcome": done.action,
                "seconds": round(time.monotonic() - job.started, 3),
                "warnings": len(job.warnings or ())})
        recorded.append(bool(ok))
    return recorded


def _httpx_json_dumps(value: Any) -> bytes:
    """What httpx 0.28's ``json=`` wrote (``httpx._content.encode_json``)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def _patches(name: str) -> list[tuple[Any, str, Any]]:
    if name == "complete_many":
        return [(runner_module.SyncRunner, "_complete", _complete_one_by_one)]
    if name == "canonical_orjson":
        return [(canonical, "canonical_json", canonical._stdlib_json)]
    if name == "json_copy":
        return [(assemble, "json_copy", copy.deepcopy)]
    if name == "http_orjson":
        return [(archive_client, "loads", json.loads), (fhir_client, "loads", json.loads),
                (fhir_client, "dumps", _httpx_json_dumps)]
    if name == "lazy_cookies":
        return [(httpclient._Cookies, "extract_cookies", httpx.Cookies.extract_cookies)]
    if name == "in_flight":
        return [(archive_client.DicomwebClient, "__init__", _init_without_in_flight)]
    if name in ("sniffio", "gc_freeze"):
        return []  # see former()
    raise ValueError(f"unknown saving {name!r}; known: {', '.join(SAVINGS)}")


@contextlib.contextmanager
def former(names: Sequence[str]) -> Iterator[None]:
    """Within the block, the named savings are undone (their former code runs)."""
    undo: list[tuple[Any, str, Any]] = []
    with contextlib.ExitStack() as stack:
        if "sniffio" in names:
            stack.enter_context(_without_sniffio())
        if "gc_freeze" in names:
            stack.enter_context(_unfrozen())
        with _patched(names, undo):
            yield


@contextlib.contextmanager
def _patched(names: Sequence[str], undo: list[tuple[Any, str, Any]]) -> Iterator[None]:
    try:
        for name in names:
            for target, attr, value in _patches(name):
                undo.append((target, attr, getattr(target, attr)))
                setattr(target, attr, value)
        yield
    finally:
        for target, attr, value in reversed(undo):
            setattr(target, attr, value)
