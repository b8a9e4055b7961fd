"""Store generated studies in a DICOMweb archive with STOW-RS (PS3.18 section 10.5).

One STOW request per study (or per chunk of ``chunk_size`` instances for big studies), sent
by a bounded pool of worker threads, each with its own :class:`DICOMwebClient` and
``requests`` session (HTTP basic auth).

Example::

    python -m samples.load --url http://127.0.0.1:8042/dicom-web --user bridge \\
        --password secret --count 200 --seed 7 --manifest out.json
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from samples.generator import PROFILES, GeneratedStudy, StudyTruth, generate_studies, write_manifest
from samples.real_images import RealStudy

__all__ = [
    "LoadResult",
    "StudyLoadResult",
    "load_studies",
    "main",
    "make_client",
    "verify_studies",
]

#: QIDO-RS attributes used by :func:`verify_studies`
_NUMBER_OF_SERIES = "00201206"  # NumberOfStudyRelatedSeries
_NUMBER_OF_INSTANCES = "00201208"  # NumberOfStudyRelatedInstances


@dataclass
class StudyLoadResult:
    """Outcome of storing one study."""

    study_uid: str
    instances: int
    stored: int
    failed: int
    bytes: int
    requests: int
    error: str | None = None


@dataclass
class LoadResult:
    """Totals of a load run."""

    studies: int = 0
    series: int = 0
    instances: int = 0
    stored_instances: int = 0
    failed_instances: int = 0
    failed_studies: int = 0
    bytes: int = 0
    requests: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    truths: list[StudyTruth] = field(default_factory=list)

    @property
    def studies_per_second(self) -> float:
        """Studies stored per second of wall-clock time."""
        return self.studies / self.seconds if self.seconds > 0 else 0.0

    @property
    def instances_per_second(self) -> float:
        """Instances stored per second of wall-clock time."""
        return self.stored_instances / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when every instance of every study was stored."""
        return self.failed_studies == 0 and self.failed_instances == 0

    def summary(self) -> str:
        """One human-readable line."""
        return (
            f"stored {self.studies - self.failed_studies}/{self.studies} studies, "
            f"{self.stored_instances}/{self.instances} instances "
            f"({self.bytes / 1e6:.1f} MB, {self.requests} STOW requests) in {self.seconds:.1f} s: "
            f"{self.studies_per_second:.1f} studies/s, {self.instances_per_second:.0f} instances/s"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready totals (without the truth records)."""
        return {
            "studies": self.studies,
            "series": self.series,
            "instances": self.instances,
            "stored_instances": self.stored_instances,
            "failed_instances": self.failed_instances,
            "failed_studies": self.failed_studies,
            "bytes": self.bytes,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "studies_per_second": round(self.studies_per_second, 2),
            "instances_per_second": round(self.instances_per_second, 1),
            "errors": list(self.errors),
        }


def make_client(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 60.0,
) -> DICOMwebClient:
    """A :class:`DICOMwebClient` on a fresh ``requests`` session (basic auth if a user is given)."""
    session = requests.Session()
    if username is not None:
        session.auth = (username, password or "")
    client = DICOMwebClient(url=url.rstrip("/"), session=session, timeout=timeout)
    # retry 429/503/504 a few times with short backoff (dicomweb-client's own mechanism)
    client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=200)
    return client


def _chunks(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stow(
    client: DICOMwebClient, study_uid: str, files: Sequence[bytes], mode: str
) -> Dataset:
    """POST one multipart/related STOW-RS request; returns the response data set."""
    if mode == "bytes":
        # Our Part 10 bytes are already encoded; hand them to the client's own multipart POST
        # (same headers, retries and response parsing as store_instances(), minus the
        # costly decode/re-encode round trip through pydicom).
        post = getattr(client, "_http_post_multipart_application_dicom", None)
        studies_url = getattr(client, "_get_studies_url", None)
        if post is not None and studies_url is not None:
            from dicomweb_client.web import _Transaction

            url = studies_url(_Transaction.STORE, study_uid)
            return post(url, list(files))  # type: ignore[no-any-return]
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in files]
    return client.store_instances(datasets, study_instance_uid=study_uid)


def _count_response(response: Dataset, sent: int) -> tuple[int, int, list[str]]:
    """(stored, failed, failure reasons) from a STOW-RS response (PS3.18 Table 10.5.3-1)."""
    stored = len(response.get("ReferencedSOPSequence", []))
    failures = list(response.get("FailedSOPSequence", []))
    reasons = [
        f"{item.get('ReferencedSOPInstanceUID', '?')}: failure reason "
        f"{item.get('FailureReason', '?')}"
        for item in failures
    ]
    if stored == 0 and not failures:
        # some servers answer 200 without a body; trust the status code then
        stored = sent
    return stored, len(failures), reasons


def _load_one(
    client: DICOMwebClient, study: GeneratedStudy | RealStudy, chunk_size: int, mode: str
) -> StudyLoadResult:
    uid = study.study_uid
    result = StudyLoadResult(uid, study.truth.instance_count, 0, 0, 0, 0)
    reasons: list[str] = []
    for chunk in _chunks(study.part10(), chunk_size):
        result.requests += 1
        result.bytes += sum(len(data) for data in chunk)
        try:
            response = _stow(client, uid, chunk, mode)
        except Exception as exc:  # an HTTP or transport error fails the whole chunk
            result.failed += len(chunk)
            reasons.append(f"{type(exc).__name__}: {exc}")
            continue
        stored, failed, why = _count_response(response, len(chunk))
        result.stored += stored
        result.failed += failed
        reasons += why
    if reasons:
        unique = list(dict.fromkeys(reasons))
        result.error = f"study {uid}: " + "; ".join(unique[:3])
    return result


def load_studies(
    studies: Iterable[GeneratedStudy | RealStudy],
    *,
    url: str,
    username: str | None = None,
    password: str | None = None,
    parallelism: int = 4,
    chunk_size: int = 50,
    mode: str = "bytes",
    timeout: float = 60.0,
    progress: Callable[[StudyLoadResult], None] | None = None,
) -> LoadResult:
    """STOW every study to the DICOMweb service at ``url``; returns counts and timing.

    :param parallelism: number of concurrent STOW requests (worker threads).
    :param chunk_size: maximum instances per STOW request; a study with more instances is
        sent in several requests.
    :param mode: ``"bytes"`` posts the generator's Part 10 bytes through the client's
        multipart POST; ``"datasets"`` decodes them and uses the public
        ``DICOMwebClient.store_instances`` (slower, re-encodes with pydicom).
    :param progress: called in the caller's thread after each finished study.
    """
    if parallelism < 1:
        raise ValueError("parallelism must be >= 1")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if mode not in ("bytes", "datasets"):
        raise ValueError("mode must be 'bytes' or 'datasets'")

    local = threading.local()

    def work(study: GeneratedStudy | RealStudy) -> StudyLoadResult:
        client = getattr(local, "client", None)
        if client is None:
            client = make_client(url, username=username, password=password, timeout=timeout)
            local.client = client
        return _load_one(client, study, chunk_size, mode)

    total = LoadResult()
    started = time.perf_counter()

    def collect(future: Future[StudyLoadResult]) -> None:
        outcome = future.result()
        total.stored_instances += outcome.stored
        total.failed_instances += outcome.failed
        total.bytes += outcome.bytes
        total.requests += outcome.requests
        if outcome.error is not None or outcome.stored < outcome.instances:
            total.failed_studies += 1
            total.errors.append(outcome.error or f"study {outcome.study_uid}: incomplete")
        if progress is not None:
            progress(outcome)

    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="stow") as pool:
        pending: set[Future[StudyLoadResult]] = set()
        for study in studies:
            total.studies += 1
            total.series += study.truth.series_count
            total.instances += study.truth.instance_count
            total.truths.append(study.truth)
            pending.add(pool.submit(work, study))
            # keep at most 2 x parallelism studies in flight: memory stays flat for any count
            while len(pending) >= 2 * parallelism:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    collect(future)
        for future in pending:
            collect(future)
    total.seconds = time.perf_counter() - started
    return total


def verify_studies(
    truths: Iterable[StudyTruth],
    *,
    url: str,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 60.0,
) -> list[str]:
    """QIDO-RS each study back and compare its series / instance counts with the truth.

    Returns a list of mismatches (empty when everything matches).
    """
    client = make_client(url, username=username, password=password, timeout=timeout)
    problems: list[str] = []
    for truth in truths:
        try:
            found = client.search_for_studies(
                search_filters={"StudyInstanceUID": truth.study_uid},
                fields=["NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"],
            )
        except Exception as exc:  # report, keep checking the others
            problems.append(f"study {truth.study_uid}: QIDO failed: {type(exc).__name__}: {exc}")
            continue
        if len(found) != 1:
            problems.append(f"study {truth.study_uid}: QIDO found {len(found)} studies")
            continue
        series = int(found[0].get(_NUMBER_OF_SERIES, {}).get("Value", [-1])[0])
        instances = int(found[0].get(_NUMBER_OF_INSTANCES, {}).get("Value", [-1])[0])
        if (series, instances) != (truth.series_count, truth.instance_count):
            problems.append(
                f"study {truth.study_uid}: archive has {series} series / {instances} instances, "
                f"expected {truth.series_count} / {truth.instance_count}"
            )
    return problems


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m samples.load",
        description="Generate synthetic studies and STOW them to a DICOMweb archive.",
    )
    parser.add_argument("--url", required=True, help="DICOMweb base URL, e.g. .../dicom-web")
    parser.add_argument("--user", help="HTTP basic auth user")
    parser.add_argument(
        "--password",
        default=os.environ.get("DICOMWEB_PASSWORD"),
        help="HTTP basic auth password (default: $DICOMWEB_PASSWORD)",
    )
    parser.add_argument("--count", type=int, default=100, help="number of studies")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=PROFILES, default="mixed")
    parser.add_argument("--patients", type=int, help="patient pool size (default count/4)")
    parser.add_argument("--id-prefix", default="", help="prefix for patient IDs / accessions")
    parser.add_argument("--uid-root", help="UID root instead of 2.25 UUID-derived UIDs")
    parser.add_argument("--parallelism", type=int, default=4, help="concurrent STOW requests")
    parser.add_argument("--chunk-size", type=int, default=50, help="max instances per request")
    parser.add_argument("--mode", choices=("bytes", "datasets"), default="bytes")
    parser.add_argument("--timeout", type=float, default=60.0, help="HTTP timeout, seconds")
    parser.add_argument("--manifest", help="write the ground-truth manifest JSON here")
    parser.add_argument(
        "--verify", action="store_true", help="QIDO every study back and compare counts"
    )
    parser.add_argument("--quiet", action="store_true", help="no per-study progress")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    studies = generate_studies(
        args.count,
        seed=args.seed,
        profile=args.profile,
        patients=args.patients,
        id_prefix=args.id_prefix,
        uid_root=args.uid_root,
    )
    done = 0

    def progress(outcome: StudyLoadResult) -> None:
        nonlocal done
        done += 1
        if not args.quiet and (done % 25 == 0 or outcome.error):
            status = outcome.error or "ok"
            print(f"[{done}/{args.count}] {status}", file=sys.stderr)

    result = load_studies(
        studies,
        url=args.url,
        username=args.user,
        password=args.password,
        parallelism=args.parallelism,
        chunk_size=args.chunk_size,
        mode=args.mode,
        timeout=args.timeout,
        progress=progress,
    )
    print(result.summary())
    for error in result.errors[:20]:
        print(f"  error: {error}", file=sys.stderr)
    if args.manifest:
        parameters = {
            "count": args.count,
            "seed": args.seed,
            "profile": args.profile,
            "patients": args.patients,
            "id_prefix": args.id_prefix,
            "uid_root": args.uid_root,
            "dicomweb_url": args.url,
            "load": result.as_dict(),
        }
        write_manifest(args.manifest, result.truths, parameters=parameters)
        print(f"manifest: {args.manifest}")
    exit_code = 0 if result.ok else 1
    if args.verify:
        problems = verify_studies(
            result.truths,
            url=args.url,
            username=args.user,
            password=args.password,
            timeout=args.timeout,
        )
        for problem in problems[:20]:
            print(f"  mismatch: {problem}", file=sys.stderr)
        print(f"verify: {len(result.truths) - len(problems)}/{len(result.truths)} studies match")
        exit_code = exit_code or (1 if problems else 0)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
