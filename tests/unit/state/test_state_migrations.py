"""Schema migrations: created and upgraded only by alembic, data kept across upgrades."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel
from state_helpers import HEAD, SEED_NOW, check_seeded_data_after_upgrade, seed_revision_0001

from bridge.state import StudyWarning, open_store
from bridge.state.engine import create_state_engine
from bridge.state.migrate import VERSION_TABLE, current_revision, downgrade, upgrade


def test_opening_a_new_store_creates_the_schema_at_head(db_url: str) -> None:
    open_store(db_url).close()

    engine = create_state_engine(db_url)
    try:
        assert current_revision(engine) == HEAD
        tables = set(inspect(engine).get_table_names())
        assert {
            "bridge_study",
            "bridge_failure",
            "bridge_checkpoint",
            "bridge_audit",
            "bridge_webhook_signature",
            "bridge_mapping_warning",
            VERSION_TABLE,
        } <= tables
    finally:
        engine.dispose()


def test_upgrade_from_the_first_revision_keeps_the_data(db_url: str) -> None:
    engine = create_state_engine(db_url)
    try:
        upgrade(engine, "0001")
        assert current_revision(engine) == "0001"
        seed_revision_0001(engine, "archive-a")
    finally:
        engine.dispose()

    store = open_store(db_url, clock=lambda: SEED_NOW)  # runs "upgrade head"
    try:
        check_seeded_data_after_upgrade(store, "archive-a")
    finally:
        store.close()


def test_models_describe_exactly_the_migrated_schema(db_url: str) -> None:
    open_store(db_url).close()
    engine = create_state_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    ours = [d for d in diff if "bridge_" in repr(d)]
    assert ours == []


def test_downgrade_to_base_and_upgrade_again(db_url: str) -> None:
    store = open_store(db_url)
    store.mark_due("archive-a", "1.1", reason="poll")
    store.close()
    engine = create_state_engine(db_url)
    try:
        downgrade(engine, "0001")
        assert current_revision(engine) == "0001"
        assert "ready_at" not in {c["name"] for c in inspect(engine).get_columns("bridge_study")}
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert "bridge_study" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_downgrade_to_0002_drops_only_the_signature_table_and_upgrade_restores_it(
    db_url: str,
) -> None:
    store = open_store(db_url)
    store.mark_due("archive-a", "1.1", reason="poll")
    assert store.remember_signature("a" * 64, ttl_seconds=60)
    store.close()
    engine = create_state_engine(db_url)
    try:
        downgrade(engine, "0002")
        assert current_revision(engine) == "0002"
        assert "bridge_webhook_signature" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()
    again = open_store(db_url)
    try:
        assert again.counts()["due"] == 1  # the queue survived both ways
        assert again.remember_signature("a" * 64, ttl_seconds=60)  # the memory did not
    finally:
        again.close()


def test_downgrade_to_0003_drops_only_the_warnings_and_upgrade_brings_the_table_back(
    db_url: str,
) -> None:
    store = open_store(db_url)
    store.mark_due("archive-a", "1.1", reason="poll", fingerprint="fp-1")
    (claimed,) = store.claim(worker="w1", limit=1, lease_seconds=60)
    warning = StudyWarning(code="unknown-body-part", tag="(0018,0015) BodyPartExamined",
                           message="unknown body part", where="series 1.1.1", value="ELBOWX")
    assert store.complete("archive-a", "1.1", worker="w1", claimed_seq=claimed.claimed_seq,
                          fingerprint="fp-1", content_hash="h", fhir_id="is-1",
                          fhir_version="1", action="create", warnings=[warning])
    assert store.warned_study_count() == 1
    store.close()
    engine = create_state_engine(db_url)
    try:
        downgrade(engine, "0003")
        assert current_revision(engine) == "0003"
        assert "bridge_mapping_warning" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()
    again = open_store(db_url)
    try:
        study = again.get_study("archive-a", "1.1")
        assert study is not None  # the study, its outcome and its audit survived both ways
        assert (study.status.value, study.fhir_id, study.content_hash) == ("synced", "is-1", "h")
        assert [e.fhir_id for e in again.study_history("1.1")] == ["is-1"]
        assert again.study_warnings("1.1") == []  # the warnings did not: the next sync rewrites
    finally:
        again.close()


def test_downgrade_to_0004_drops_only_the_lanes_and_upgrade_puts_queued_studies_back_in_them(
    db_url: str,
) -> None:
    store = open_store(db_url)
    store.mark_due("archive-a", "1.1", reason="stow")
    store.mark_due("archive-a", "1.2", reason="backfill")
    store.close()
    engine = create_state_engine(db_url)
    try:
        downgrade(engine, "0004")
        assert current_revision(engine) == "0004"
        assert "lane" not in {c["name"] for c in inspect(engine).get_columns("bridge_study")}
        indexes = {i["name"] for i in inspect(engine).get_indexes("bridge_study")}
        assert {"ix_bridge_study_ready_at", "ix_bridge_study_archive_ready_at"} <= indexes
        upgrade(engine)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()
    again = open_store(db_url)
    try:
        assert again.counts()["due"] == 2  # the queue survived both ways
        claimed = again.claim(worker="w1", limit=2, lease_seconds=60)
        assert [(c.study_uid, c.lane.value) for c in claimed] == [
            ("1.1", "realtime"), ("1.2", "bulk")]
    finally:
        again.close()


def test_reopening_a_store_at_head_changes_nothing(db_url: str) -> None:
    store = open_store(db_url)
    store.mark_due("archive-a", "1.1", reason="poll")
    store.close()

    again = open_store(db_url)
    try:
        assert again.counts()["due"] == 1
    finally:
        again.close()
