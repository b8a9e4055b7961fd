"""Replay memory of signed notifications in the store: once per window, for every process."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from state_helpers import FakeClock

from bridge.state import StateStore, open_store

SIG = "ab" * 32


def test_a_signature_is_new_once_then_a_replay(store: StateStore) -> None:
    assert store.remember_signature(SIG, ttl_seconds=600)
    assert not store.remember_signature(SIG, ttl_seconds=600)
    assert store.remember_signature("cd" * 32, ttl_seconds=600)  # others are unaffected


def test_an_expired_signature_may_be_used_again_and_is_then_remembered_anew(
    store: StateStore, clock: FakeClock
) -> None:
    assert store.remember_signature(SIG, ttl_seconds=600)
    clock.advance(599)
    assert not store.remember_signature(SIG, ttl_seconds=600)  # the replay does not extend it
    clock.advance(1)
    assert store.remember_signature(SIG, ttl_seconds=600)
    clock.advance(599)
    assert not store.remember_signature(SIG, ttl_seconds=600)


def test_purge_deletes_only_expired_signatures(store: StateStore, clock: FakeClock) -> None:
    store.remember_signature("01" * 32, ttl_seconds=10)
    store.remember_signature("02" * 32, ttl_seconds=100)
    clock.advance(10)
    assert store.purge_signatures() == 1
    assert store.purge_signatures() == 0
    assert not store.remember_signature("02" * 32, ttl_seconds=100)
    assert store.remember_signature("01" * 32, ttl_seconds=100)


def test_a_signature_seen_through_one_store_is_a_replay_through_another(
    db_url: str, store: StateStore, clock: FakeClock
) -> None:
    other = open_store(db_url, clock=clock)
    try:
        assert store.remember_signature(SIG, ttl_seconds=600)
        assert not other.remember_signature(SIG, ttl_seconds=600)
    finally:
        other.close()


def test_of_many_threads_presenting_one_signature_exactly_one_wins(
    tmp_path: Path,
) -> None:
    stores = [open_store(f"sqlite:///{tmp_path / 'state.db'}") for _ in range(4)]
    start = threading.Barrier(16)
    results: list[bool] = []

    def attempt(n: int) -> None:
        start.wait()
        results.append(stores[n % 4].remember_signature(SIG, ttl_seconds=600))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for st in stores:
        st.close()
    assert sorted(results) == [False] * 15 + [True]


@pytest.mark.parametrize(("signature", "ttl"), [("", 60), ("a" * 65, 60), (SIG, 0)])
def test_bad_arguments_are_refused(store: StateStore, signature: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        store.remember_signature(signature, ttl_seconds=ttl)
