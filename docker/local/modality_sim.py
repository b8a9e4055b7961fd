"""Run one worklist order through a simulated modality, against the demo's bridge.

``samples.modality`` plays a CT scanner: it queries the bridge's Modality Worklist
(C-FIND), reports the procedure step IN PROGRESS (MPPS N-CREATE), "acquires" a small
study carrying the item's identifiers, stores it through the bridge's STOW-RS proxy (so
it syncs at once) and reports the step COMPLETED (MPPS N-SET).  The bridge then links the
study to its order (ImagingStudy.basedOn), writes a Procedure for the step and completes
the order, which leaves the worklist.

    .venv/bin/python docker/local/modality_sim.py --config .run/demo/bridge.yaml [--accession A]

The worklist's port and AE title, the bridge's port and the STOW-RS token are read from
the demo's configuration file (JSON, written by docker/local/demo.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from samples.modality import Modality, acquire, stow  # noqa: E402

MODALITY_AE = "CT_SCANNER_1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the demo's bridge.yaml")
    parser.add_argument("--accession", default="", help="the order to perform (default: "
                        "the first CT item scheduled for this modality)")
    parser.add_argument("--ae-title", default=MODALITY_AE)
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text())
    worklist, api = config["worklist"], config["api"]
    modality = Modality(ae_title=args.ae_title, host=worklist["host"], port=worklist["port"],
                        scp_ae=worklist["ae_title"])
    query = {"AccessionNumber": args.accession} if args.accession else {"Modality": "CT"}
    items = modality.worklist(**query)
    print(f"C-FIND {query}: {len(items)} worklist items")
    if not items:
        return 1
    item = items[0]
    print(f"performing accession {item.AccessionNumber}, Study Instance UID "
          f"{item.StudyInstanceUID}")
    uid, started = modality.start(item)
    print(f"MPPS N-CREATE IN PROGRESS {uid}: status 0x{started.status:04X}")
    instances = acquire(item)
    token = config["realtime"]["stow_auth"]["bearer_tokens"][0]
    status = stow(instances, dicomweb_url=f"http://127.0.0.1:{api['port']}/dicom-web",
                  headers={"Authorization": f"Bearer {token}"})
    print(f"STOW-RS of {len(instances)} instances through the bridge: HTTP {status}")
    finished = modality.finish(uid, "COMPLETED")
    print(f"MPPS N-SET COMPLETED: status 0x{finished.status:04X}")
    return 0 if started.status == 0 and finished.status == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
