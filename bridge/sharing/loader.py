"""Load mappings/sharing.yaml into a validated :class:`SharingPolicy`.

Parsing is the main mapping's (bridge.mapping.loader.read_yaml: line numbers kept, only
true/false are booleans, dates stay text), so errors read the same way:
``mappings/sharing.yaml:12 document.type.system: not a URI ...``, one line per problem, all
problems of the file in one :class:`~bridge.sharing.errors.SharingConfigError`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from bridge.errors import MappingConfigError
from bridge.mapping.loader import Origins, read_yaml, validation_problems
from bridge.sharing.errors import SharingConfigError
from bridge.sharing.policy import SharingPolicy

#: the repository's default policy file
DEFAULT_SHARING_FILE = Path(__file__).resolve().parents[2] / "mappings" / "sharing.yaml"


def load_sharing_policy(path: str | Path = DEFAULT_SHARING_FILE) -> SharingPolicy:
    """Read and validate one sharing policy file.

    Raises :class:`~bridge.sharing.errors.SharingConfigError` (a MappingConfigError) whose
    message has one ``file:line field: problem`` line per problem and whose ``fields`` names
    each offending dotted field.
    """
    file = str(path)
    origins: Origins = {}
    try:
        data = read_yaml(Path(path), origins)
    except MappingConfigError as exc:
        raise SharingConfigError(exc.message) from exc
    try:
        return SharingPolicy.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, origins, file)
        lines = [line for _, line in problems]
        raise SharingConfigError("\n".join(lines), fields=tuple(f for f, _ in problems)) from exc
