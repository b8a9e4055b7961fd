"""The one QIDO paging loop (PS3.18 8.3.4.4): pages until a short one, never past the
archive's result cap, each request made through the caller's guard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bridge.archive.source import qido_pages


def _archive(total: int, cap: int | None = None) -> tuple[Callable[[int, int], Awaitable[list[
        dict[str, Any]]]], list[tuple[int, int]]]:
    asked: list[tuple[int, int]] = []

    async def search(limit: int, offset: int) -> list[dict[str, Any]]:
        asked.append((limit, offset))
        end = min(total, cap) if cap is not None else total
        return [{"n": i} for i in range(offset, min(end, offset + limit))]
    return search, asked


async def _all(search: Any, **kw: Any) -> list[tuple[int, bool]]:
    return [(len(p.rows), p.capped) async for p in qido_pages(search, **kw)]


async def test_pages_until_a_short_page() -> None:
    search, asked = _archive(7)
    assert await _all(search, page_size=3, max_results=None) == [(3, False), (3, False),
                                                                 (1, False)]
    assert asked == [(3, 0), (3, 3), (3, 6)]


async def test_a_full_last_page_costs_one_empty_request() -> None:
    search, asked = _archive(6)
    assert await _all(search, page_size=3, max_results=None) == [(3, False), (3, False),
                                                                 (0, False)]
    assert len(asked) == 3


async def test_pages_no_longer_than_the_cap_and_the_capped_page_is_marked() -> None:
    search, asked = _archive(100, cap=5)
    assert await _all(search, page_size=10, max_results=5) == [(5, True)]
    assert asked == [(5, 0)]


async def test_every_request_goes_through_the_guard() -> None:
    search, _ = _archive(4)
    guarded = 0

    async def guard(request: Callable[[], Awaitable[list[dict[str, Any]]]]
                    ) -> list[dict[str, Any]]:
        nonlocal guarded
        guarded += 1
        return await request()

    assert await _all(search, page_size=3, max_results=None, guard=guard) == [(3, False),
                                                                              (1, False)]
    assert guarded == 2
