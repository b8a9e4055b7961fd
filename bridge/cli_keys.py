"""``imaging-bridge keys generate|show``: signing keys for SMART Backend Services.

``generate`` writes a private key (mode 0600) and the public JWKS to register with the EHR
(SMART Backend Services, "Registering a client"); ``show`` prints the public JWKS of an
existing key file after checking its permissions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bridge.auth.keys import (
    SUPPORTED_ALGS,
    SigningAlg,
    generate_signing_key,
    load_signing_key,
    write_key_files,
)
from bridge.cli_common import console
from bridge.errors import BridgeError

keys_app = typer.Typer(no_args_is_help=True,
                       help="Signing keys for SMART Backend Services (private_key_jwt).")
out = console()
err = console(stderr=True)


@keys_app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the key files")],
    alg: Annotated[str, typer.Option("--alg", help="RS384 (RSA 3072) or ES384 (EC P-384)")
                   ] = "ES384",
    force: Annotated[bool, typer.Option("--force", help="overwrite existing files")] = False,
) -> None:
    """Write a new private key and its public JWKS.

    private-key.pem (mode 0600, keep it secret) and jwks.json (public: register it with
    the EHR).
    """
    if alg not in SUPPORTED_ALGS:
        err.print(f"[red]unsupported --alg {alg}[/red]; use one of {', '.join(SUPPORTED_ALGS)}")
        raise typer.Exit(2)
    signing_alg: SigningAlg = "RS384" if alg == "RS384" else "ES384"
    try:
        files = write_key_files(generate_signing_key(signing_alg), out_dir, overwrite=force)
    except BridgeError as exc:
        err.print(f"[red]{exc.kind}:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    out.print(f"private key: {files.private_key} (mode 0600, keep it secret)")
    out.print(f"public JWKS: {files.jwks} (register it with the EHR)")
    out.print(f"kid: {files.kid}")
    out.print("configure: fhir.auth.kind=smart_backend, fhir.auth.private_key_file="
              f"{files.private_key}")


@keys_app.command()
def show(
    key_file: Annotated[Path, typer.Argument(help="PEM private key")],
    key_id: Annotated[str | None, typer.Option("--kid", help="kid the EHR registered")
                      ] = None,
) -> None:
    """Print the public JWKS of a private key file.

    The file's permissions are checked first: a key that group or others may read or
    write is refused.
    """
    try:
        key = load_signing_key(key_file, key_id=key_id)
    except BridgeError as exc:
        err.print(f"[red]{exc.kind}:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    out.print_json(json.dumps(key.public_jwks()))


def register(app: typer.Typer) -> None:
    """Add the ``keys`` command group to the main CLI."""
    app.add_typer(keys_app, name="keys")
