"""asyncio: async tails (two consumers), cancellation, async status streams, ask_async."""
from __future__ import annotations

import asyncio
import time

import pytest

import agentbus
from conftest import WAIT


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT))


def test_two_async_consumers_each_see_every_event_in_order(room):
    async def consume(tail, n):
        got = []
        async for ev in tail:
            got.append(ev.id)
            if len(got) == n:
                return got

    async def main():
        t1, t2 = room.tail(), room.tail()  # attached before anything is published
        c1 = asyncio.create_task(consume(t1, 50))
        c2 = asyncio.create_task(consume(t2, 50))
        ids = []
        for i in range(50):
            ids.append(room.publish("E", str(i), agent="py"))
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the consumers run between publishes
        return ids, await c1, await c2

    ids, got1, got2 = run(main())
    assert got1 == ids and got2 == ids


def test_cancelling_an_awaiting_tail_returns_promptly_and_loses_nothing(room):
    async def main():
        tail = agentbus.AsyncTail(room.tail())
        task = asyncio.create_task(tail.__anext__())
        await asyncio.sleep(0.05)  # let it block: nothing is published
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancel_s = time.monotonic() - t0
        i = room.publish("AFTER", "x", agent="py")
        ev = await asyncio.wait_for(tail.__anext__(), WAIT)
        tail.close()
        return cancel_s, i, ev

    cancel_s, i, ev = run(main())
    assert cancel_s < 1.0  # bounded, not a speed claim: the waiter's read slice is 0.25 s
    assert ev.id == i


def test_the_loop_keeps_running_while_a_tail_waits(room):
    async def main():
        tail = agentbus.AsyncTail(room.tail())
        ticks = 0
        waiter = asyncio.create_task(tail.__anext__())
        while ticks < 20:
            await asyncio.sleep(0.001)
            ticks += 1
        assert not waiter.done()
        i = room.publish("E", "x", agent="py")
        ev = await asyncio.wait_for(waiter, WAIT)
        tail.close()
        return ticks, i, ev.id

    ticks, i, got = run(main())
    assert ticks == 20 and got == i


def test_async_next_with_timeout_returns_none(room):
    async def main():
        async with agentbus.AsyncTail(room.tail()) as tail:
            return await tail.next(timeout=0.05)

    assert run(main()) is None


def test_status_subscribe_as_an_async_iterator(room):
    status = room.status()

    async def main():
        stream = status.subscribe()
        status.post("a", "one", "ok")
        status.post("a", "two", "info")
        got = []
        async with stream:
            async for e in stream:
                got.append(e.action)
                if len(got) == 2:
                    break
        return got

    assert run(main()) == ["one", "two"]
    status.close()


def test_ask_async_awaits_the_reply(room):
    async def main():
        with room.presence().join("helper") as helper:
            async def answer():
                async for ev in room.tail(from_="earliest"):
                    if ev.type == "ASK" and ev.to == helper.handle:
                        room.inbox().reply(ev.id, "42", agent=helper.handle)
                        return

            answerer = asyncio.create_task(answer())
            reply = await room.inbox().ask_async("helper", "the answer?", agent="asker", timeout=WAIT)
            await answerer
            return reply

    reply = run(main())
    assert (reply.type, reply.payload) == ("REPLY", "42")


def test_ask_async_times_out_with_timeout(room):
    async def main():
        with room.presence().join("silent"):
            await room.inbox().ask_async("silent", "hello?", agent="asker", timeout=0.05)

    with pytest.raises(agentbus.Timeout):
        run(main())


def test_closing_a_tail_ends_the_task_awaiting_it(room):
    async def main():
        tail = agentbus.AsyncTail(room.tail())
        waiting = asyncio.create_task(tail.__anext__())
        await asyncio.sleep(0.05)  # let it block: nothing is published
        tail.close()  # from another task
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, WAIT)
        with pytest.raises(StopAsyncIteration):  # and a closed iterator stays ended
            await asyncio.wait_for(tail.__anext__(), WAIT)

    run(main())


def test_the_exit_hook_ends_a_task_awaiting_a_tail(room):
    from agentbus import _aio

    async def main():
        tail = agentbus.AsyncTail(room.tail())
        waiting = asyncio.create_task(tail.__anext__())
        await asyncio.sleep(0.05)
        await asyncio.get_running_loop().run_in_executor(None, _aio._stop_waiters)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, WAIT)
        with pytest.raises(StopAsyncIteration):  # a stopped waiter fails fast, never hangs
            await asyncio.wait_for(tail.__anext__(), WAIT)

    run(main())


def test_a_read_error_is_raised_again_by_the_next_anext_not_a_hang(room):
    async def main():
        t = room.tail()
        tail = agentbus.AsyncTail(t)
        t.close()
        for _ in range(2):
            with pytest.raises(agentbus.InvalidArgument, match="closed"):
                await asyncio.wait_for(tail.__anext__(), WAIT)
        tail.close()

    run(main())


def test_a_tail_reused_on_a_second_event_loop_still_reads(room):
    tail = agentbus.AsyncTail(room.tail())

    async def one():
        i = room.publish("E", "x", agent="py")
        return i, (await tail.__anext__()).id

    for _ in range(2):  # a second asyncio.run: the waiter thread serves the new loop
        i, got = run(one())
        assert got == i
    tail.close()


def test_breaking_out_of_async_for_loses_nothing_on_a_durable_tail(room):
    tail = room.tail(durable_name="breaker", from_="earliest")
    ids = [room.publish("E", str(i), agent="py") for i in range(10)]

    async def first():
        async for ev in tail:  # its waiter reads all 10 at once
            return ev.id

    assert run(first()) == ids[0]
    assert tail.position == ids[1]
    rest = tail.next_batch(256, timeout=WAIT)  # the 9 read ahead come back first
    more = []
    while len(rest) + len(more) < 9:
        ev = tail.next(timeout=WAIT)
        assert ev is not None
        more.append(ev)
    assert [e.id for e in rest + more] == ids[1:]
    tail.close()


def test_a_second_async_for_continues_where_the_first_broke_off(room):
    tail = room.tail(from_="earliest")
    ids = [room.publish("E", str(i), agent="py") for i in range(10)]

    async def take(n):
        got = []
        async for ev in tail:
            got.append(ev.id)
            if len(got) == n:
                return got

    assert run(take(3)) == ids[:3]
    assert run(take(7)) == ids[3:]


def test_closing_an_async_tail_gives_its_read_ahead_back_to_the_tail(room):
    t = room.tail(from_="earliest")
    ids = [room.publish("E", str(i), agent="py") for i in range(5)]

    async def main():
        tail = agentbus.AsyncTail(t)
        first = await asyncio.wait_for(tail.__anext__(), WAIT)
        tail.close()
        return first.id

    assert run(main()) == ids[0]
    assert [e.id for e in t.next_batch(256, timeout=WAIT)] == ids[1:]


def test_unsubscribing_ends_the_task_awaiting_a_status_stream(room):
    status = room.status()

    async def main():
        stream = status.subscribe()
        waiting = asyncio.create_task(stream.__anext__())
        await asyncio.sleep(0.05)  # let it block on the empty queue
        stream.unsubscribe()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, WAIT)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(stream.__anext__(), WAIT)

    run(main())
    status.close()
