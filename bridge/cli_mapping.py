"""``imaging-bridge preview`` and ``imaging-bridge mappings validate|doc|diff``.

For interface teams: see what the sync writes for a study (local files or one in the
archive), check a mapping file, generate the reference of the configured mapping, and review
what a proposed mapping would change on the archive's most recent studies before it goes
live.

``preview`` runs the sync's own assembly (:class:`bridge.sync.assemble.StudyAssembly`, with
the gateway's Endpoints when the gateway is on) and looks the references up read-only on
the configured FHIR server (:mod:`bridge.sync.preview`), so it shows the ImagingStudy and
the content hash the sync writes and records; ``--offline`` shows every reference by
identifier instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.json import JSON as RichJson
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bridge.cli_common import ConfigOpt
from bridge.errors import BridgeError, ConfigError
from bridge.mapping import (
    EndpointSpec,
    Mapping,
    MappingEngine,
    MappingResult,
    load_mapping,
    load_tables,
)
from bridge.mapping.diff import StudyDiff, compare_study
from bridge.mapping.docgen import DEFAULT_DOC, REPO_ROOT, render_reference
from bridge.mapping.peek import first_str
from bridge.mapping.tags import STUDY_DATE, STUDY_INSTANCE_UID, STUDY_TIME

mappings_app = typer.Typer(
    no_args_is_help=True, help="Check, document and compare the mappings (mappings/*.yaml)."
)
out = Console()
err = Console(stderr=True)

DEFAULT_MAPPING = REPO_ROOT / "mappings" / "default.yaml"
#: where local files are previewed as coming from (RFC 2606 reserves .invalid)
PLACEHOLDER_BASE = "http://archive.invalid/dicom-web"

MappingOpt = Annotated[
    list[Path] | None,
    typer.Option("--mapping", "-m", help="mapping files to use instead of the configured ones"),
]
ArchiveOpt = Annotated[str | None, typer.Option(help="archive name (default: the first)")]
DiffMode = Literal["layer", "replace"]


def _settings(config: Path | None) -> Any:
    """The product settings (bridge.config); imported lazily so file previews need none."""
    from bridge.config import load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def _optional_settings(config: Path | None) -> Any:
    """The settings when they load, else None (said on stderr): a file preview or the
    mapping commands need none."""
    from bridge.config import load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[yellow]settings not loaded ({exc.message})[/yellow]")
        return None


def _mapping_files(config: Path | None, explicit: Sequence[Path] | None) -> list[Path]:
    """``--mapping`` files, else the configured ``mapping.files``, else default.yaml."""
    if explicit:
        return list(explicit)
    return _configured_files(_optional_settings(config))


def _configured_files(settings: Any) -> list[Path]:
    files = list(settings.mapping.files) if settings is not None else []
    return files or [DEFAULT_MAPPING]


def _load(files: Sequence[Path]) -> Mapping:
    try:
        return load_mapping(files)
    except BridgeError as exc:
        err.print(f"[red]mapping error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


def _archive(settings: Any, name: str | None) -> Any:
    if name is not None:
        return settings.archive_named(name)
    if not settings.archives:
        err.print("[red]no archive configured[/red] (BRIDGE_ARCHIVE__BASE_URL or --config)")
        raise typer.Exit(2)
    return settings.archives[0]


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except BridgeError as exc:
        err.print(f"[red]{exc.kind}:[/red] {exc.message}")
        raise typer.Exit(1) from exc


async def _fetch_study(archive_settings: Any, study_uid: str) -> list[dict[str, Any]]:
    from bridge.archive.client import DicomwebClient

    async with DicomwebClient(archive_settings) as client:
        return list(await client.study_instances(study_uid))


def _show(shown: Any, *, as_json: bool) -> None:
    """Print one :class:`bridge.sync.preview.StudyPreview`."""
    if as_json:
        out.print_json(json.dumps(shown.to_json(), ensure_ascii=False))
        return
    result: MappingResult = shown.result
    title = f"study {result.study_uid}  content hash {shown.study.content_hash[:16]}"
    out.print(Panel(RichJson.from_data(shown.imaging_study), title=f"ImagingStudy — {title}"))
    for endpoint in shown.endpoints:
        out.print(Panel(RichJson.from_data(endpoint), title="Endpoint"))
    if not shown.looked_up:
        out.print("[yellow]references not looked up (no FHIR server, or --offline): shown "
                  "by identifier; the sync's content hash differs by them[/yellow]")
    for note in shown.pending:
        out.print(f"[yellow]differs from the sync's write:[/yellow] {note}")
    patient = {"policy": result.patient.policy, "resource": result.patient.resource()}
    out.print(Panel(RichJson.from_data(patient), title="Patient link"))
    if result.service_requests:
        requests = [link.identifier for link in result.service_requests]
        out.print(Panel(RichJson.from_data(requests), title="ServiceRequest identifiers"))
    if result.warnings:
        table = Table("tag / code", "value", "problem", "where", title="Mapping warnings")
        for w in result.warnings:
            # the code under the tag: what `imaging-bridge warnings list --code` filters on
            table.add_row(
                Text(f"{w.tag}\n{w.code}"),
                "<redacted>" if w.sensitive else repr(w.value),
                w.problem,
                w.where or "",
            )
        out.print(table)
    else:
        out.print("[green]no mapping warnings[/green]")


def _placeholder_spec(_archive: Any) -> EndpointSpec:
    return EndpointSpec(address=PLACEHOLDER_BASE, name="preview")


async def _previews(
    studies: Sequence[list[dict[str, Any]]], engine: MappingEngine, *, settings: Any,
    archive_settings: Any, offline: bool,
) -> list[Any]:
    """Map each study and assemble it as the sync does; one preview or error per study."""
    from bridge.errors import AuthError, FhirBusy
    from bridge.fhir.client import FhirClient
    from bridge.sync.assemble import StudyAssembly
    from bridge.sync.preview import preview_study

    if archive_settings is None:  # local files, no archive configured
        assembly, name = StudyAssembly(endpoint_for=_placeholder_spec), "preview"
    else:
        from bridge.assembly import endpoint_options

        assembly, name = StudyAssembly(**endpoint_options(settings)), archive_settings.name
    fhir = None if offline or archive_settings is None else FhirClient(settings.fhir)
    shown: list[Any] = []
    try:
        for instances in studies:
            try:
                result = engine.map_study(instances,
                                          endpoint=assembly.endpoint_spec(archive_settings))
            except BridgeError as exc:
                shown.append(exc)
                continue
            try:
                shown.append(await preview_study(result, archive=name, assembly=assembly,
                                                 fhir=fhir))
            except (FhirBusy, AuthError) as exc:
                # the mapping is still worth seeing: say why the references are not resolved
                err.print(f"[yellow]FHIR server not usable ({exc.message}): references "
                          "shown by identifier[/yellow]")
                if fhir is not None:
                    await fhir.aclose()
                    fhir = None
                shown.append(await preview_study(result, archive=name, assembly=assembly,
                                                 fhir=None))
    finally:
        if fhir is not None:
            await fhir.aclose()
    return shown


def preview(
    targets: Annotated[list[str], typer.Argument(help="DICOM/JSON files or dirs, or a Study UID")],
    config: ConfigOpt = None,
    mapping: MappingOpt = None,
    archive: ArchiveOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="look nothing up on the FHIR server")
    ] = False,
) -> None:
    """Show what the sync writes for local files or an archive study: the ImagingStudy,
    its Endpoints, its content hash and the mapping warnings.

    References are looked up (read only) on the configured FHIR server; local files are
    shown as if stored in the archive (--archive, else the first configured one)."""
    from_archive = len(targets) == 1 and not Path(targets[0]).exists()
    settings = _settings(config) if from_archive else _optional_settings(config)
    engine = MappingEngine(_load(list(mapping) if mapping else _configured_files(settings)))
    if from_archive:
        archive_settings = _archive(settings, archive)
        studies = [_run(_fetch_study(archive_settings, targets[0]))]
    else:
        missing = [target for target in targets if not Path(target).exists()]
        if missing:
            err.print(f"[red]no such file:[/red] {', '.join(missing)}")
            raise typer.Exit(2)
        try:
            from bridge.sync.preview import local_studies

            studies = local_studies(targets)
        except BridgeError as exc:
            err.print(f"[red]{exc.kind}:[/red] {exc.message}")
            raise typer.Exit(1) from exc
        configured = settings is not None and (settings.archives or archive is not None)
        archive_settings = _archive(settings, archive) if configured else None
    shown = _run(_previews(studies, engine, settings=settings,
                           archive_settings=archive_settings, offline=offline))
    failed = False
    for item in shown:
        if isinstance(item, BridgeError):
            failed = True
            err.print(f"[red]{item.kind}:[/red] {item.message}")
        else:
            _show(item, as_json=as_json)
    if failed:
        raise typer.Exit(1)


@mappings_app.command("validate")
def validate(
    file: Annotated[
        Path | None, typer.Argument(help="a site file, checked on top of default")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Load and check mapping files; errors name file, line and key."""
    if file is None:
        files = _mapping_files(config, None)
    elif file.resolve() == DEFAULT_MAPPING.resolve():
        files = [file]
    else:
        files = [DEFAULT_MAPPING, file]
    mapping = _load(files)
    codes = sum(len(c) for c in mapping.procedure_codes.values())
    out.print(
        f"[green]ok[/green] {' + '.join(str(f) for f in files)}: "
        f"{len(mapping.patient.issuers)} patient issuers, "
        f"{len(mapping.accession.issuers)} accession issuers, {codes} procedure codes, "
        f"{len(mapping.body_parts)} body part strings, timezone {mapping.timezone or 'none'}"
    )


#: where ``mappings doc`` writes the reference of a site mapping (the product's own
#: docs/mapping-reference.md documents default.yaml alone)
SITE_DOC = Path("mapping-reference.md")


def _names(files: Sequence[Path]) -> str:
    return " + ".join(f.name for f in files)


@mappings_app.command("doc")
def doc(
    output: Annotated[
        Path | None,
        typer.Option(help="where to write (default: docs/mapping-reference.md for "
                          "default.yaml alone, else ./mapping-reference.md)"),
    ] = None,
    mapping: MappingOpt = None,
    config: ConfigOpt = None,
    check: Annotated[bool, typer.Option("--check", help="fail if the file is stale")] = False,
) -> None:
    """Generate the mapping reference of the configured mapping (mapping.files in the
    settings, or --mapping) from its YAML and mappings/tables."""
    files = _mapping_files(config, mapping)
    loaded = _load(files)
    if output is None:
        only_default = [f.resolve() for f in files] == [DEFAULT_MAPPING.resolve()]
        output = DEFAULT_DOC if only_default else SITE_DOC
    text = render_reference(loaded, load_tables(loaded.tables_dir))
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if check:
        if current != text:
            err.print(f"[red]{output} is out of date for {_names(files)}:[/red] run "
                      "`imaging-bridge mappings doc`")
            raise typer.Exit(1)
        out.print(f"[green]{output} is up to date[/green] ({_names(files)})")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {output} ({len(text.splitlines())} lines) documenting {_names(files)}")


def proposed_files(current: Sequence[Path], proposed: Path, mode: DiffMode) -> list[Path]:
    """The proposed mapping.  ``layer``: ``proposed`` merged on top of the current files
    (a new site file).  ``replace``: ``proposed`` in place of the current file of the same
    name (an edited copy of it); :class:`~bridge.errors.ConfigError` when there is none."""
    if mode == "layer":
        return [*current, proposed]
    if not any(f.name == proposed.name for f in current):
        raise ConfigError(
            f"--mode replace: no current mapping file is named {proposed.name} (current: "
            f"{', '.join(str(f) for f in current)}); use --mode layer to add it on top")
    return [proposed if f.name == proposed.name else f for f in current]


async def _recent_studies(client: Any, count: int) -> list[str]:
    """The ``count`` most recent Study UIDs, widening the StudyDate window until enough."""
    found: dict[str, str] = {}
    for days in (7, 90, 3650, None):
        filters = (
            {}
            if days is None
            else {"StudyDate": f"{(date.today() - timedelta(days=days)).strftime('%Y%m%d')}-"}
        )
        for study in await client.search_studies(filters, limit=max(count * 4, 50)):
            uid = first_str(study, STUDY_INSTANCE_UID)
            if uid:
                when = (first_str(study, STUDY_DATE) or "", first_str(study, STUDY_TIME) or "")
                found[uid] = "".join(when)
        if len(found) >= count:
            break
    ranked = sorted(found, key=lambda uid: (found[uid], uid), reverse=True)
    return ranked[:count]


async def _diff_archive(
    archive_settings: Any, current: MappingEngine, proposed: MappingEngine, count: int
) -> list[StudyDiff]:
    from bridge.archive.client import DicomwebClient

    diffs: list[StudyDiff] = []
    async with DicomwebClient(archive_settings) as client:
        endpoint = EndpointSpec(address=str(client.base_url), name=archive_settings.name)
        for uid in await _recent_studies(client, count):
            instances = list(await client.study_instances(uid))
            diffs.append(
                compare_study(current, proposed, instances, endpoint=endpoint, study_uid=uid)
            )
    return diffs


@mappings_app.command("diff")
def diff(
    proposed: Annotated[Path, typer.Option("--proposed", help="the changed mapping file")],
    mode: Annotated[
        DiffMode,
        typer.Option("--mode", help="layer: add the proposed file on top of the current "
                                    "ones; replace: use it instead of the current file of "
                                    "the same name"),
    ],
    studies: Annotated[int, typer.Option("--studies", min=1, help="how many recent studies")] = 20,
    config: ConfigOpt = None,
    mapping: MappingOpt = None,
    archive: ArchiveOpt = None,
) -> None:
    """Map the archive's most recent studies with the current and the proposed mapping and
    show, study by study, what would change."""
    current_files = _mapping_files(config, mapping)
    try:
        candidate_files = proposed_files(current_files, proposed, mode)
    except ConfigError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    replaced = [f for f in current_files if f not in candidate_files]
    instead = f" (in place of {replaced[0]})" if replaced else ""
    out.print(f"mode {mode}: {_names(candidate_files)}{instead}", markup=False,
              highlight=False)
    current = MappingEngine(_load(current_files))
    candidate = MappingEngine(_load(candidate_files))
    archive_settings = _archive(_settings(config), archive)
    diffs = _run(_diff_archive(archive_settings, current, candidate, studies))
    changed = [d for d in diffs if d.changed]
    for study_diff in changed:
        out.rule(f"study {study_diff.study_uid}")
        for line in study_diff.lines():
            style = {"+": "green", "-": "red", "~": "yellow"}.get(line.lstrip()[:1], "")
            out.print(line, style=style, markup=False, highlight=False)
    out.print(f"{len(changed)} of {len(diffs)} studies would change")


def register(app: typer.Typer) -> None:
    """Add ``preview`` and the ``mappings`` command group to the main CLI."""
    app.command("preview")(preview)
    app.add_typer(mappings_app, name="mappings")
