"""``imaging-bridge warnings list|show``: studies whose latest mapping had warnings.

Interface teams change the mapping as data (mappings/*.yaml); these commands are their
feedback: ``list`` counts studies per warning code and lists the studies (``--code`` to
pick one code), ``show`` prints one study's warnings.  What is shown is what the store keeps:
code, tag, series and problem, and a value only when it is a vocabulary term (see
``bridge.sync.recorded_warnings``); never patient data.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from bridge.cli_common import ArchiveOpt, ConfigOpt, console, existing_store, settings_or_exit
from bridge.mapping import WARNING_CODES
from bridge.state import WarnedStudy

warnings_app = typer.Typer(no_args_is_help=True,
                           help="Mapping warnings of the synced studies (their latest mapping).")
out = console()
err = console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout instead of tables")]


def _check_code(code: str | None) -> None:
    if code is not None and code not in WARNING_CODES:
        raise typer.BadParameter(
            f"unknown warning code {code!r}; one of: {', '.join(sorted(WARNING_CODES))}",
            param_hint="--code",
        )


def _study_json(study: WarnedStudy) -> dict[str, Any]:
    return {**asdict(study), "status": study.status.value, "codes": list(study.codes),
            "at": study.at.isoformat()}


@warnings_app.command("list")
def list_command(
    config: ConfigOpt = None,
    code: Annotated[str | None, typer.Option(
        metavar="CODE", help="only studies with this warning code")] = None,
    archive: ArchiveOpt = None,
    limit: Annotated[int, typer.Option(metavar="N", help="at most this many studies")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Studies per warning code, then the studies (newest mapping first)."""
    _check_code(code)
    with existing_store(settings_or_exit(config)) as store:
        counts = store.warning_counts(archive=archive)
        studies = store.studies_with_warnings(code=code, archive=archive, limit=limit)
    by_count = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if as_json:
        body = {"counts": dict(by_count), "studies": [_study_json(s) for s in studies]}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    if not counts:
        out.print("studies with mapping warnings: none")
        return
    per_code = Table("code", "studies", "fix in", "meaning", title="Studies per warning code")
    for name, n in by_count:
        info = WARNING_CODES.get(name)
        per_code.add_row(name, str(n), info.fix if info else "", info.meaning if info else "")
    out.print(per_code)
    if not studies:  # --code of a code no study has
        out.print(f"studies with {code}: none", markup=False)
        return
    # the UID is what `warnings show` needs: never cut or wrapped, the codes give way; the
    # archive only when there are several (--json has everything, the mapping time too)
    several = len({s.archive for s in studies}) > 1
    study = Column("study", no_wrap=True,
                   min_width=max((len(s.study_uid) for s in studies), default=5))
    columns = [Column("archive", no_wrap=True)] if several else []
    table = Table(*columns, study, Column("status", no_wrap=True),
                  Column("warnings", justify="right"), Column("codes", overflow="fold"),
                  title=f"Studies with {code}" if code else "Studies with warnings")
    for s in studies:
        cells = [s.study_uid, s.status.value, str(s.warnings), "\n".join(s.codes)]
        table.add_row(*([s.archive] if several else []), *cells)
    out.print(table)


@warnings_app.command("show")
def show_command(
    uid: Annotated[str, typer.Argument(help="a StudyInstanceUID")],
    config: ConfigOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The warnings of the study's latest mapping (exit status 1 if the study is unknown)."""
    settings = settings_or_exit(config)
    with existing_store(settings) as store:
        warnings = store.study_warnings(uid, archive=archive)
        names = [archive] if archive else [a.name for a in settings.archives]
        known = bool(warnings) or any(store.get_study(n, uid) is not None for n in names)
    if not known:
        err.print(f"study {uid} is not known")
        raise typer.Exit(1)
    if as_json:
        rows = [{**asdict(w), "at": w.at.isoformat()} for w in warnings]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not warnings:
        out.print(f"mapping warnings of {uid}: none", markup=False)
        return
    table = Table("archive", Column("code", no_wrap=True), "tag", "value",
                  Column("where", overflow="fold"), "problem",
                  title=f"Mapping warnings of {uid} (mapped {warnings[0].at:%Y-%m-%d %H:%M} UTC)")
    for w in warnings:
        table.add_row(w.archive, w.code, w.tag, w.value or "", w.where or "", w.message)
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``warnings`` command group to the main CLI."""
    app.add_typer(warnings_app, name="warnings")
