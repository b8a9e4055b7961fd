"""The settings sections that are leaves: the shared parts (``base``: the strict model,
credentials, an archive, a FHIR server) and each room's own section (``migration``,
``sharing``, ``record``, ``worklist``).

:class:`bridge.config.Settings` gathers them; a room's components take their own section
from here.  Nothing here imports a room, so both can depend on it without a circle.
"""
