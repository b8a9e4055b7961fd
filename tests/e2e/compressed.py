"""A JPEG 2000 copy of a stored study, for proving OHIF's image codecs (WebAssembly) work
under the viewer's Content-Security-Policy: the generated studies are uncompressed, which
OHIF draws without any codec."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, generate_uid


def _first_instance(orthanc: Any, study_uid: str) -> bytes:
    with httpx.Client(timeout=60, auth=(orthanc.username, orthanc.password)) as client:
        found = client.post(f"{orthanc.base_url}/tools/lookup", content=study_uid).json()
        study = next(f["ID"] for f in found if f["Type"] == "Study")
        instances = client.get(f"{orthanc.base_url}/studies/{study}/instances").json()
        resp = client.get(f"{orthanc.base_url}/instances/{instances[0]['ID']}/file")
        resp.raise_for_status()
        return resp.content


def store_jpeg2000_copy(orthanc: Any, study_uid: str) -> str:
    """One instance of ``study_uid`` stored again as a new study of the same patient, its
    pixels JPEG 2000 lossless (PS3.5 A.4.4, 1.2.840.10008.1.2.4.90); its Study UID."""
    ds = pydicom.dcmread(io.BytesIO(_first_instance(orthanc, study_uid)))
    pixels = ds.pixel_array
    if pixels.ndim == 3:  # multi-frame: the first frame is enough
        pixels = pixels[0]
        ds.NumberOfFrames = 1
    dtype = np.uint8 if ds.BitsAllocated == 8 else np.uint16
    out = io.BytesIO()
    Image.fromarray(pixels.astype(dtype)).save(out, format="JPEG2000", irreversible=False,
                                                no_jp2=True)
    new_study = generate_uid()
    ds.StudyInstanceUID = new_study
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([out.getvalue()])
    ds["PixelData"].VR = "OB"
    body = io.BytesIO()
    ds.save_as(body, enforce_file_format=True)
    with httpx.Client(timeout=60, auth=(orthanc.username, orthanc.password)) as client:
        client.post(f"{orthanc.base_url}/instances", content=body.getvalue()).raise_for_status()
    return str(new_study)
