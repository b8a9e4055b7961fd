"""Admin API credentials for tests that call ``/status``, ``/metrics`` or ``/studies/{uid}``."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import SecretStr

from bridge.config import InboundAuthSettings, Settings

ADMIN_TOKEN = "admin-token-" + secrets.token_hex(16)
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: the ``api.admin_auth`` section of a test config
ADMIN_AUTH: dict[str, Any] = {"bearer_tokens": [ADMIN_TOKEN]}


def with_admin(settings: Settings) -> Settings:
    """A copy of ``settings`` whose admin routes accept :data:`ADMIN_HEADERS`."""
    copy = settings.model_copy(deep=True)
    copy.api.admin_auth = InboundAuthSettings(bearer_tokens=[SecretStr(ADMIN_TOKEN)])
    return copy
