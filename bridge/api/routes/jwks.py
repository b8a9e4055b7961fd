"""``/.well-known/jwks.json``: the public keys the EHR verifies our assertions with.

SMART Backend Services ("Registering a client"): a client may give the EHR a JWKS URL
instead of a static JWK Set; this route publishes the public half of the configured
``fhir.auth`` signing key (never the private part).
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from bridge.auth.keys import load_signing_key
from bridge.config import AuthKind, AuthSettings
from bridge.errors import BridgeError

router = APIRouter()


@lru_cache(maxsize=8)
def _jwks(path: Path, mtime_ns: int, key_id: str | None) -> dict[str, Any]:
    return load_signing_key(path, key_id=key_id).public_jwks()


def public_jwks(auth: AuthSettings) -> dict[str, Any] | None:
    """The JWKS of a ``smart_backend`` key, or None when no key is configured."""
    if auth.kind is not AuthKind.SMART_BACKEND or auth.private_key_file is None:
        return None
    path = auth.private_key_file
    return _jwks(path, path.stat().st_mtime_ns, auth.key_id)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    fhir = request.app.state.ctx.fhir.settings
    try:
        keys = await asyncio.to_thread(public_jwks, fhir.auth)
    except (BridgeError, OSError) as exc:
        raise HTTPException(status_code=503, detail="the signing key cannot be read") from exc
    if keys is None:
        raise HTTPException(status_code=404,
                            detail="no SMART Backend Services key is configured (fhir.auth)")
    return keys
