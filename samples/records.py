"""The longitudinal record's sample instances stored beside generated studies (issue 16).

For each study: its X-Ray Radiation Dose SR when the modality has one (CT; CR, DX, MG), a
Basic Text SR report, and for every ``pdf_every``-th study an Encapsulated PDF report too;
all pure functions of ``(study, seed)`` (samples/rdsr.py, report_sr.py, report_pdf.py).
:func:`load_records` stores them with STOW-RS (PS3.18 10.5: one ``multipart/related;
type="application/dicom"`` request per study), so a demo or a test archive holds reports
and dose for the studies ``samples.load`` stored.

Example::

    python -m samples.records --url http://127.0.0.1:8042/dicom-web --user bridge \\
        --password secret --count 200 --seed 7
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx

from samples.generator import PROFILES, GeneratedStudy, generate_studies
from samples.rdsr import DoseTruth, dose_sr
from samples.report_pdf import pdf_report
from samples.report_sr import ReportTruth, text_report_sr
from samples.sr_content import part10

__all__ = ["StudyRecords", "load_records", "main", "stow", "study_records"]


@dataclass
class StudyRecords:
    """One study's record instances (Part 10 files) and their ground truth."""

    study_uid: str
    files: list[bytes]
    dose: DoseTruth | None
    report: ReportTruth
    pdf: ReportTruth | None = None


@dataclass
class RecordsLoaded:
    """What :func:`load_records` stored."""

    studies: list[StudyRecords] = field(default_factory=list)
    instances: int = 0


def study_records(study: GeneratedStudy, *, seed: int = 0, index: int = 0,
                  pdf_every: int = 5) -> StudyRecords:
    """The record instances of ``study`` (the ``index``-th loaded: every ``pdf_every``-th
    one also gets a PDF report; 0 for none)."""
    report_ds, report = text_report_sr(study.truth, seed=seed)
    files = [part10(report_ds)]
    made = dose_sr(study.truth, seed=seed)
    if made is not None:
        files.append(part10(made[0]))
    pdf_truth = None
    if pdf_every and index % pdf_every == 0:
        pdf_ds, pdf_truth, _ = pdf_report(study.truth, seed=seed)
        files.append(part10(pdf_ds))
    return StudyRecords(study.study_uid, files, made[1] if made else None, report, pdf_truth)


def _multipart(files: Sequence[bytes]) -> tuple[bytes, str]:
    """A STOW-RS body (RFC 2387 multipart/related, each part a Part 10 file)."""
    boundary = uuid.uuid4().hex
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                    + data + b"\r\n" for data in files) + b"--" + boundary.encode() + b"--"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(client: httpx.Client, url: str, study_uid: str, files: Sequence[bytes]) -> None:
    """One STOW-RS request of Part 10 ``files`` into ``study_uid``.

    :raises RuntimeError: naming the study when the archive refuses it.
    """
    body, content_type = _multipart(files)
    resp = client.post(f"{url.rstrip('/')}/studies/{study_uid}", content=body,
                       headers={"Content-Type": content_type,
                                "Accept": "application/dicom+json"})
    if resp.status_code not in (200, 202):
        raise RuntimeError(f"study {study_uid}: STOW-RS answered {resp.status_code}: "
                           f"{resp.text[:200]}")


def load_records(studies: Iterable[GeneratedStudy], *, url: str, username: str | None = None,
                 password: str | None = None, seed: int = 0, pdf_every: int = 5,
                 timeout: float = 60.0) -> RecordsLoaded:
    """STOW each study's record instances to the DICOMweb service at ``url``.

    :raises RuntimeError: naming the study when the archive refuses a request.
    """
    loaded = RecordsLoaded()
    auth = (username, password or "") if username is not None else None
    with httpx.Client(auth=auth, timeout=timeout) as client:
        for index, study in enumerate(studies):
            records = study_records(study, seed=seed, index=index, pdf_every=pdf_every)
            stow(client, url, study.study_uid, records.files)
            loaded.studies.append(records)
            loaded.instances += len(records.files)
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Store the generated studies' reports and "
                                                 "dose SRs with STOW-RS.")
    parser.add_argument("--url", required=True, help="DICOMweb root of the archive")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=PROFILES, default="mixed")
    parser.add_argument("--id-prefix", default="")
    parser.add_argument("--pdf-every", type=int, default=5)
    args = parser.parse_args(argv)
    studies = generate_studies(args.count, seed=args.seed, profile=args.profile,
                               id_prefix=args.id_prefix)
    loaded = load_records(studies, url=args.url, username=args.user, password=args.password,
                          seed=args.seed, pdf_every=args.pdf_every)
    print(f"{loaded.instances} record instances stored for {len(loaded.studies)} studies "
          f"({sum(1 for s in loaded.studies if s.dose)} with a dose SR)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
