"""Load mappings/worklist.yaml into a validated :class:`WorklistMapping`.

Every problem is reported in one run, each as ``file:line dotted.key: message`` (the line of
the deepest key present in the file), so an interface team fixes a site file without
reading code.  YAML is read by :func:`bridge.mapping.loader.read_yaml`, which keeps codes
such as ``NO`` and dates as text and records each key's line.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from bridge.errors import MappingConfigError
from bridge.mapping.loader import Origins, read_yaml, validation_problems
from bridge.worklist.model import WorklistMapping

#: the repository's default worklist mapping
DEFAULT_WORKLIST_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "worklist.yaml"


def load_worklist_mapping(path: str | Path = DEFAULT_WORKLIST_MAPPING) -> WorklistMapping:
    """Read and validate one worklist mapping file.

    Raises :class:`~bridge.errors.MappingConfigError` naming file, line and key of every
    problem (unreadable file, invalid YAML, unknown or missing keys, bad values).
    """
    file = Path(path)
    origins: Origins = {}
    data = read_yaml(file, origins)
    try:
        return WorklistMapping.model_validate(data)
    except ValidationError as exc:
        problems = [line for _, line in validation_problems(exc, origins, str(file))]
        raise MappingConfigError("\n".join(problems)) from exc
