"""Signing keys: generated, written safely, loaded with a permission check, published."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from bridge.api.routes.jwks import public_jwks
from bridge.auth.keys import generate_signing_key, load_signing_key, write_key_files
from bridge.cli import app
from bridge.config import AuthSettings
from bridge.errors import ConfigError


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_generated_key_is_written_0600_and_loads_back_with_the_registered_kid(
    alg: str, tmp_path: Path
) -> None:
    files = write_key_files(generate_signing_key(alg), tmp_path)  # type: ignore[arg-type]
    assert stat.S_IMODE(files.private_key.stat().st_mode) == 0o600
    jwks = json.loads(files.jwks.read_text())
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == files.kid and jwk["alg"] == alg
    assert "d" not in jwk and "p" not in jwk  # public half only
    loaded = load_signing_key(files.private_key)
    assert loaded.alg == alg and loaded.kid == files.kid
    assert loaded.public_jwks() == jwks


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_private_key_readable_by_others_is_refused_with_the_fix(mode: int, tmp_path: Path
                                                                 ) -> None:
    files = write_key_files(generate_signing_key("ES384"), tmp_path)
    files.private_key.chmod(mode)
    with pytest.raises(ConfigError, match=r"chmod 600"):
        load_signing_key(files.private_key)


def test_p256_key_is_refused_because_es384_needs_p384(tmp_path: Path) -> None:
    path = tmp_path / "p256.pem"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="P-384"):
        load_signing_key(path)


def test_existing_key_is_not_overwritten(tmp_path: Path) -> None:
    write_key_files(generate_signing_key("ES384"), tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        write_key_files(generate_signing_key("ES384"), tmp_path)


def test_key_id_imposed_by_the_ehr_wins(tmp_path: Path) -> None:
    files = write_key_files(generate_signing_key("ES384"), tmp_path)
    assert load_signing_key(files.private_key, key_id="ehr-kid-1").kid == "ehr-kid-1"


def test_cli_generate_writes_both_files_and_jwks_route_publishes_the_public_key(
    tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["keys", "generate", "--alg", "RS384",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "private-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    published = public_jwks(AuthSettings(kind="smart_backend", client_id="bridge",
                                         private_key_file=key_file))
    assert published == json.loads((tmp_path / "jwks.json").read_text())
    assert public_jwks(AuthSettings()) is None


def test_cli_generate_refuses_an_unknown_alg(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "generate", "--alg", "RS256",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2
