"""Signing keys for SMART Backend Services: generate, load safely, publish as a JWKS.

SMART Backend Services ("Registering a client"): the client registers a JWK Set of public
keys, each with a ``kid``, and signs its authentication assertions with RS384 or ES384.
The ``kid`` we assign is the key's RFC 7638 thumbprint, so loading the private key gives
back the same ``kid`` that was registered unless the EHR imposed another one
(``auth.key_id``).

Private keys are PEM (PKCS#8) files that must not be readable by group or others; a
permissive file is refused before anything is signed with it.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import ECKey, RSAKey

from bridge.errors import ConfigError

SigningAlg = Literal["RS384", "ES384"]
#: the algorithms SMART Backend Services requires servers to support
SUPPORTED_ALGS: tuple[SigningAlg, ...] = ("RS384", "ES384")
PRIVATE_KEY_NAME = "private-key.pem"
JWKS_NAME = "jwks.json"
_RSA_BITS = 3072  # SMART asks for >= 2048; 3072 matches a 128-bit security level


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key ready to sign assertions: the key, its JWS alg and its kid."""

    key: RSAKey | ECKey
    alg: SigningAlg
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK carrying kid, alg and key_ops (RFC 7517 4)."""
        jwk: dict[str, Any] = dict(self.key.as_dict(private=False))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig", "key_ops": ["verify"]})
        return jwk

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


@dataclass(frozen=True, slots=True)
class KeyFiles:
    private_key: Path
    jwks: Path
    kid: str


def generate_signing_key(alg: SigningAlg) -> SigningKey:
    """A fresh RSA 3072 (RS384) or EC P-384 (ES384) key with its thumbprint as kid."""
    key: RSAKey | ECKey
    if alg == "RS384":
        key = RSAKey.generate_key(_RSA_BITS, private=True)
    elif alg == "ES384":
        key = ECKey.generate_key("P-384", private=True)
    else:  # pragma: no cover - guarded by the Literal type and the CLI
        raise ConfigError(f"unsupported signing algorithm {alg!r}; use RS384 or ES384")
    return SigningKey(key=key, alg=alg, kid=key.thumbprint())


def write_key_files(signing_key: SigningKey, out_dir: Path, *, overwrite: bool = False
                    ) -> KeyFiles:
    """Write the private key (mode 0600) and the public JWKS (to register with the EHR)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path = out_dir / PRIVATE_KEY_NAME
    jwks_path = out_dir / JWKS_NAME
    if not overwrite:
        for path in (private_path, jwks_path):
            if path.exists():
                raise ConfigError(f"{path} already exists; refusing to overwrite a key")
    pem = signing_key.key.as_pem(private=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    # created 0600 from the start: never briefly readable by others
    fd = os.open(private_path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
    finally:
        os.close(fd)
    jwks_path.write_text(json.dumps(signing_key.public_jwks(), indent=2) + "\n")
    return KeyFiles(private_key=private_path, jwks=jwks_path, kid=signing_key.kid)


def check_private_key_mode(path: Path) -> None:
    """Refuse a private key file that group or others may read or write."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"private key file {path} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise ConfigError(f"private key file {path} is not a regular file")
    loose = stat.S_IMODE(mode) & 0o077
    if loose:
        raise ConfigError(
            f"private key file {path} has mode {stat.S_IMODE(mode):04o}, readable or writable "
            f"by group/others; restrict it with: chmod 600 {path}"
        )


def load_signing_key(path: Path, *, key_id: str | None = None) -> SigningKey:
    """Load a PEM private key, checking its file mode; RSA -> RS384, EC P-384 -> ES384."""
    check_private_key_mode(path)
    try:
        pem = path.read_bytes()
        parsed = load_pem_private_key(pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        # the exception text never contains key material, only what was wrong with it
        raise ConfigError(
            f"private key file {path} is not an unencrypted PEM private key"
        ) from exc
    key: RSAKey | ECKey
    alg: SigningAlg
    if isinstance(parsed, rsa.RSAPrivateKey):
        if parsed.key_size < 2048:
            raise ConfigError(f"RSA key in {path} has {parsed.key_size} bits; use >= 2048")
        key, alg = RSAKey.import_key(pem), "RS384"
    elif isinstance(parsed, ec.EllipticCurvePrivateKey):
        if parsed.curve.name != "secp384r1":
            raise ConfigError(
                f"EC key in {path} is on {parsed.curve.name}; ES384 needs P-384 (secp384r1)"
            )
        key, alg = ECKey.import_key(pem), "ES384"
    else:
        raise ConfigError(f"key in {path} is neither RSA nor EC; SMART needs RS384 or ES384")
    return SigningKey(key=key, alg=alg, kid=key_id or key.thumbprint())
