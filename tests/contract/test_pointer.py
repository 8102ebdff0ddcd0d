"""The active-version pointer contract, on every adapter (Redis and the in-memory twin)."""

from __future__ import annotations

import pytest

from tests.contract.backends import run_then_close


def test_no_version_until_one_is_activated_then_the_newest(pointer_backend):
    async def scenario():
        pointer = pointer_backend.pointer()
        assert await pointer.active() is None
        await pointer_backend.activate("20260101T000000000000Z-aaaaaaaa")
        assert await pointer.active() == "20260101T000000000000Z-aaaaaaaa"
        await pointer_backend.activate("20260102T000000000000Z-bbbbbbbb")
        assert await pointer.active() == "20260102T000000000000Z-bbbbbbbb"

    run_then_close(pointer_backend, scenario)


def test_the_staged_version_is_read_apart_from_the_active_one(pointer_backend):
    async def scenario():
        pointer = pointer_backend.pointer()
        assert await pointer.versions() == (None, None)
        await pointer_backend.activate("20260101T000000000000Z-aaaaaaaa")
        await pointer_backend.stage("20260102T000000000000Z-bbbbbbbb")
        assert await pointer.active() == "20260101T000000000000Z-aaaaaaaa"
        versions = await pointer.versions()
        assert versions.active == "20260101T000000000000Z-aaaaaaaa"
        assert versions.staged == "20260102T000000000000Z-bbbbbbbb"

    run_then_close(pointer_backend, scenario)


def test_an_unreachable_pointer_raises_a_connection_error(pointer_backend):
    async def scenario():
        with pytest.raises(ConnectionError):
            await pointer_backend.pointer(reachable=False).active()
        with pytest.raises(ConnectionError):
            await pointer_backend.pointer(reachable=False).versions()

    run_then_close(pointer_backend, scenario)
