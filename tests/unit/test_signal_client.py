"""The signal client's waiting: a failed delivery fails the wait at once, not at the timeout."""

from __future__ import annotations

import asyncio

import pytest

from streams.client.endpoint import ClientError
from streams.client.signals import _fail_on_error


def test_a_failed_delivery_fails_the_waiting_request_and_a_good_one_does_not(caplog):
    async def scenario():
        loop = asyncio.get_running_loop()
        waiter, delivery = loop.create_future(), loop.create_future()
        delivery.add_done_callback(lambda d: _fail_on_error(waiter, d))
        delivery.set_exception(ConnectionError("broker gone"))
        with pytest.raises(ClientError, match="not delivered: ConnectionError"):
            await asyncio.wait_for(waiter, 1.0)

        waiter, delivery = loop.create_future(), loop.create_future()
        delivery.add_done_callback(lambda d: _fail_on_error(waiter, d))
        delivery.set_result(None)
        await asyncio.sleep(0)
        assert not waiter.done()  # still waiting for its signal

        waiter, delivery = loop.create_future(), loop.create_future()
        waiter.set_result("signal")  # the signal came first: a late failure changes nothing
        delivery.add_done_callback(lambda d: _fail_on_error(waiter, d))
        delivery.set_exception(ConnectionError("late"))
        await asyncio.sleep(0)
        assert waiter.result() == "signal"

    asyncio.run(scenario())
    import gc

    gc.collect()  # a failed delivery nobody read would be reported now
    assert "never retrieved" not in caplog.text
