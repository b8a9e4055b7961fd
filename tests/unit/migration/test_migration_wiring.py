"""The migration's settings and wiring: what a source's transfer needs is checked when the
settings load, the coercion file when the step or the serve service is built, and the
archive the studies go to is the named one (else the first)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from bridge import assembly
from bridge.config import ArchiveSettings, Settings
from bridge.errors import ConfigError, MappingConfigError
from bridge.migration.engine import MigrationService, archive_of, coercion_of
from bridge.sections.migration import LegacySourceSettings, MigrationSettings
from bridge.state import open_store

SOURCE = {"name": "pacs", "ae_title": "LEGACY", "host": "127.0.0.1", "port": 104}


def source(**changes: Any) -> dict[str, Any]:
    return {**SOURCE, **changes}


def test_a_c_move_source_needs_the_bridges_receiver() -> None:
    with pytest.raises(ValidationError, match=r"migration\.receiver is needed by the "
                                              r"c-move sources pacs"):
        MigrationSettings(sources=[source(transfer="c-move")])
    MigrationSettings(sources=[source(transfer="c-move")], receiver={"port": 0})


def test_a_direct_move_needs_the_archives_ae_title() -> None:
    with pytest.raises(ValidationError, match="needs move_destination"):
        LegacySourceSettings(**source(transfer="c-move-direct"))


def test_studies_go_to_the_named_archive_else_the_first() -> None:
    archives = [ArchiveSettings(name="a", base_url="http://127.0.0.1:9/a"),
                ArchiveSettings(name="b", base_url="http://127.0.0.1:9/b")]
    assert archive_of(archives, None).name == "a"
    assert archive_of(archives, "b").name == "b"
    with pytest.raises(ConfigError, match=r"migration\.archive: no archive named 'c'"):
        archive_of(archives, "c")


def test_an_unknown_source_is_named(tmp_path: Path) -> None:
    settings = Settings(migration={"sources": [source()]},
                        archives=[{"name": "a", "base_url": "http://127.0.0.1:9/a"}])
    with pytest.raises(ConfigError, match="no legacy source named 'other'"):
        assembly.migration_source(settings, "other")


def test_a_bad_coercion_file_stops_serve_at_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "migration.yaml"
    bad.write_text("version: 1\nsources:\n  pacs:\n    accession_prefx: A\n")
    migration = MigrationSettings(sources=[source()], coercion_file=bad, run_in_serve=True)
    settings = Settings(migration=migration.model_dump(),
                        archives=[{"name": "a", "base_url": "http://127.0.0.1:9/a"}])
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with pytest.raises(MappingConfigError, match=r"migration\.yaml:4 "
                                                     r"sources\.pacs\.accession_prefx"):
            assembly.migration_service(settings, SimpleNamespace(store=store))  # type: ignore[arg-type]
        good = MigrationSettings(sources=[source()], run_in_serve=True)
        service = MigrationService(store, migration=good, archive=settings.archives[0])
        assert service.name == "migration"
    finally:
        store.close()


def test_no_coercion_file_or_no_rules_for_the_source_is_no_coercion(tmp_path: Path) -> None:
    pacs = LegacySourceSettings(**source())
    assert coercion_of(MigrationSettings(sources=[pacs]), pacs) is None
    rules = tmp_path / "m.yaml"
    rules.write_text("version: 1\nsources:\n  other:\n    accession_prefix: A\n")
    assert coercion_of(MigrationSettings(sources=[pacs], coercion_file=rules), pacs) is None


async def test_the_serve_service_runs_each_source_until_stopped(tmp_path: Path) -> None:
    import asyncio

    sources = [LegacySourceSettings(**source()),
               LegacySourceSettings(**source(name="moving", transfer="c-move"))]
    migration = MigrationSettings(sources=sources, receiver={"host": "127.0.0.1", "port": 0},
                                  spool_dir=tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    stop = asyncio.Event()
    stop.set()  # nothing queued: each source's loop opens its clients, sees stop, closes
    try:
        service = MigrationService(store, migration=migration, archive=ArchiveSettings(
            name="a", base_url="http://127.0.0.1:9/a"))
        await asyncio.wait_for(service.run(stop), timeout=30)
    finally:
        store.close()
