"""SMART app sessions at rest: tokens and patient ids are never in the table in clear, a
row only opens with its own cookie, tampering is detected, old plain rows still work."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from smart_app.sessions import SessionStore, row_key, sessions_table

SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.access-token-value"
DATA = {"access_token": SECRET_TOKEN, "refresh_token": "refresh-value-42",
        "patient": "Patient/peter-4711", "iss": "https://ehr.example.org/fhir"}


def _rows(store: SessionStore) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(sessions_table.c.id, sessions_table.c.data)).all()
    return {r.id: r.data for r in rows}


def test_session_data_is_encrypted_and_opens_only_with_its_cookie(tmp_path: Path) -> None:
    store = SessionStore(f"sqlite:///{tmp_path / 's.db'}", lifetime=600)
    one, two = store.create(DATA), store.create({"patient": "Patient/other"})
    raw = _rows(store)
    for value in raw.values():
        for secret in (SECRET_TOKEN, "refresh-value-42", "peter-4711", "Patient/other"):
            assert secret not in value
    got = store.get(one.cookie)
    assert got is not None and got.data == DATA
    # the same cookie after save still opens; the stored value changes (fresh nonce)
    got.data["patient"] = "Patient/peter-4711"
    store.save(got)
    assert _rows(store)[row_key(one.cookie)] != raw[row_key(one.cookie)]
    assert store.get(one.cookie) is not None
    # one row's ciphertext moved under another row's key does not open (key and AAD differ)
    with store.engine.begin() as conn:
        conn.execute(update(sessions_table).where(sessions_table.c.id == row_key(two.cookie))
                     .values(data=_rows(store)[row_key(one.cookie)]))
    assert store.get(two.cookie) is None
    # a flipped byte is detected
    sealed = _rows(store)[row_key(one.cookie)]
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with store.engine.begin() as conn:
        conn.execute(update(sessions_table).where(sessions_table.c.id == row_key(one.cookie))
                     .values(data=flipped))
    assert store.get(one.cookie) is None
    store.close()


def test_a_row_written_before_encryption_is_read_and_sealed_on_save(tmp_path: Path) -> None:
    store = SessionStore(f"sqlite:///{tmp_path / 's.db'}", lifetime=600)
    session = store.create({})
    with store.engine.begin() as conn:
        conn.execute(update(sessions_table).where(sessions_table.c.id == row_key(session.cookie))
                     .values(data='{"access_token": "legacy-token"}'))
    got = store.get(session.cookie)
    assert got is not None and got.data == {"access_token": "legacy-token"}
    store.save(got)
    assert "legacy-token" not in _rows(store)[row_key(session.cookie)]
    again = store.get(session.cookie)
    assert again is not None and again.data == {"access_token": "legacy-token"}
    store.close()
