"""asyncio for agentbus: ``async for ev in room.tail()``, ``async for e in status.subscribe()``
and ``await inbox.ask_async(...)``, without blocking the event loop (docs/python.md, "Async").

A tail read blocks on the room's futex, so it cannot run on the loop's thread. Each async
iterator of a tail owns one waiter thread (not one per ``__anext__`` call): it sleeps until the
iterator asks for events, then reads a batch with the GIL released (``Tail.next_batch``) and
hands it to the loop with ``loop.call_soon_threadsafe``. It reads only when asked, so a slow
consumer does not make it race ahead of the ring (a lapped tailer is counted in ``missed``).
Cancelling the awaiting task cancels a plain future: it returns at once, and a batch that
arrives for the cancelled request is kept for the next ``__anext__``, so nothing is lost.
Events read ahead but not handed out when the iterator ends (``break``, ``close()``) go back to
the Tail (``Tail._unread``), so the Tail's next read, sync or async, delivers them first.
Closing an iterator (``close()``, the atexit hook, dropping it) ends a pending ``__anext__``
with StopAsyncIteration; a read error is handed to the waiting task, and the next
``__anext__`` reads again.

Status subscriptions need no thread of ours: the C++ status bus already runs each subscriber's
callback on its own dispatcher thread, and the callback only queues the entry on the loop.
"""
from __future__ import annotations

import asyncio
import atexit
import collections
import threading
import weakref
from typing import Any, Deque, List, Optional

# How long the waiter's read blocks before it looks whether its iterator was dropped: the
# longest a dropped iterator's thread outlives it. An event wakes the read at once.
_READ_SLICE_S = 0.25

# What a waiter hands over instead of a batch when its iterator was closed: StopAsyncIteration.
_END: Any = object()


# Waiter threads still running, stopped and joined at exit: a daemon thread that is inside a
# C++ wait when the interpreter finalises would be ended by pthread_exit as it takes the GIL
# back, unwinding through C++ frames that may not be unwound (std::terminate).
_running: "weakref.WeakSet[_Waiter]" = weakref.WeakSet()


@atexit.register
def _stop_waiters() -> None:
    waiters = list(_running)
    for w in waiters:
        w.stop()
    for w in waiters:
        w.join(timeout=2 * _READ_SLICE_S + 1.0)


class _Handover:
    """What the loop's thread shares with a waiter's deliveries: events kept for the next
    __anext__, and the future the current __anext__ awaits. Touched on the loop's thread,
    except by close(), which gives the kept events back to the tail (under `lock`)."""

    def __init__(self, tail: Any) -> None:
        self.tail = tail
        self.buffer: Deque[Any] = collections.deque()
        self.pending: "Optional[asyncio.Future[List[Any]]]" = None
        # Reentrant: close() may run as a finalizer in the middle of a delivery on this thread.
        self.lock = threading.RLock()
        self.closed = False

    def give_back(self) -> None:
        """Closes it: the events kept go back to the tail, and so do any delivered later."""
        with self.lock:
            self.closed = True
            items, self.buffer = list(self.buffer), collections.deque()
        if items:
            self.tail._unread(items)


def _deliver(handover: _Handover, fut: "asyncio.Future[List[Any]]", batch: List[Any]) -> None:
    # Runs on the loop's thread, so it cannot race __anext__.
    if not fut.done():
        fut.set_result(batch)
        return
    # Read for an __anext__ that was cancelled meanwhile: keep the events, and if a newer
    # __anext__ already waits (the waiter may have read before it asked), hand them to it.
    with handover.lock:
        closed = handover.closed
        if not closed:
            handover.buffer.extend(batch)
    if closed:  # nobody will ask this iterator again: the tail delivers them
        handover.tail._unread(batch)
        return
    newer = handover.pending
    if newer is not None and not newer.done():
        items = list(handover.buffer)
        handover.buffer.clear()
        newer.set_result(items)


def _end(handover: _Handover, fut: "asyncio.Future[Any]") -> None:
    # The iterator was closed: the awaiting __anext__ (if any) ends with StopAsyncIteration.
    for f in (fut, handover.pending):
        if f is not None and not f.done():
            f.set_result(_END)


class _Waiter:
    """The thread that reads a tail for one AsyncTail. Holds no reference to the AsyncTail,
    so dropping the iterator stops it (weakref.finalize)."""

    def __init__(self, tail: Any, limit: int) -> None:
        self._tail = tail
        self._limit = limit
        self._cond = threading.Condition()
        self._target: Optional[tuple] = None
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def request(self, loop: asyncio.AbstractEventLoop, fut: "asyncio.Future[List[Any]]", handover: _Handover) -> None:
        with self._cond:
            if self._stopped:  # closed (or stopped at exit): no thread will read again
                fut.set_result(_END)
                return
            self._target = (loop, fut, handover)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"agentbus-tail:{self._tail.room}")
                _running.add(self)
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def join(self, timeout: float) -> None:
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def _run(self) -> None:
        # Ends only when stopped, and then settles the request it holds: a task awaiting
        # __anext__ never waits on a thread that is gone. After an error or a closed loop it
        # waits for the next request, which reads again.
        while True:
            with self._cond:
                while self._target is None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    target, self._target = self._target, None
                    if target is not None:
                        self._settle(target, _end)
                    return
            try:
                batch = self._tail.next_batch(self._limit, timeout=_READ_SLICE_S)
            except BaseException as e:  # a closed tail, a corrupt room: the awaiting task gets it
                batch = e
            if isinstance(batch, list) and not batch:
                continue
            with self._cond:
                target, self._target = self._target, None
            if target is None:
                continue
            if isinstance(batch, BaseException):
                self._settle(target, _fail, batch)
            else:
                self._settle(target, _deliver, batch)

    @staticmethod
    def _settle(target: tuple, how: Any, *args: Any) -> None:
        loop, fut, handover = target
        try:
            loop.call_soon_threadsafe(how, handover, fut, *args)
        except RuntimeError:  # the loop is closed: nobody awaits this request any more
            if how is _deliver:  # not lost: the tail's next read (on any loop) delivers them
                handover.tail._unread(args[0])


def _fail(handover: _Handover, fut: "asyncio.Future[Any]", error: BaseException) -> None:
    for f in (fut, handover.pending):
        if f is not None and not f.done():
            f.set_exception(error)
            return


def _close(waiter: _Waiter, handover: _Handover) -> None:
    # AsyncTail's finalizer (close(), or the iterator dropped): holds no reference to it.
    waiter.stop()
    handover.give_back()
    pending = handover.pending
    if pending is not None and not pending.done():
        loop = pending.get_loop()
        try:
            if _running_loop() is loop:
                _end(handover, pending)  # at once: close() from another task of this loop
            else:
                loop.call_soon_threadsafe(_end, handover, pending)
        except RuntimeError:  # the loop is closed
            pass


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class AsyncTail:
    """``async for ev in tail``: an async iterator over a Tail (see the module docstring)."""

    def __init__(self, tail: Any, limit: int = 256) -> None:
        self._tail = tail
        self._handover = _Handover(tail)
        self._waiter = _Waiter(tail, limit)
        self._finalizer = weakref.finalize(self, _close, self._waiter, self._handover)

    def __aiter__(self) -> "AsyncTail":
        return self

    async def __anext__(self) -> Any:
        h = self._handover
        if not h.buffer:
            if not self._finalizer.alive:
                raise StopAsyncIteration
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            h.pending = fut
            self._waiter.request(loop, fut, h)
            got = await fut
            if got is _END:
                raise StopAsyncIteration
            with h.lock:
                closed = h.closed
                if not closed:
                    h.buffer.extend(got)
            if closed:  # closed while this task was being resumed: the tail keeps them
                self._tail._unread(got)
                raise StopAsyncIteration
        return h.buffer.popleft()

    async def next(self, timeout: Optional[float] = None) -> Any:
        """The next event, or None after timeout seconds (None: no bound)."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except asyncio.TimeoutError:
            return None

    def close(self) -> None:
        """Stops the waiter thread (it exits within a quarter second); a task awaiting
        __anext__ gets StopAsyncIteration, and events read ahead go back to the Tail."""
        self._finalizer()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "AsyncTail":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class AsyncStatusStream:
    """``async for entry in status.subscribe()``: entries posted after the call, in room order."""

    def __init__(self, status_bus: Any) -> None:
        self._bus = status_bus
        self._queue: Optional[asyncio.Queue] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._sub: Any = None
        try:
            self._start(asyncio.get_running_loop())
        except RuntimeError:  # no loop yet: subscribe when iteration starts
            pass

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        def on_entry(entry: Any) -> None:  # on the status bus's dispatcher thread
            try:
                loop.call_soon_threadsafe(queue.put_nowait, entry)
            except RuntimeError:  # the loop is closed
                pass

        self._queue = queue
        self._loop = loop
        self._sub = self._bus._subscribe(on_entry)

    def __aiter__(self) -> "AsyncStatusStream":
        if self._queue is None:
            self._start(asyncio.get_running_loop())
        return self

    async def __anext__(self) -> Any:
        if self._queue is None:
            self._start(asyncio.get_running_loop())
        assert self._queue is not None
        if self._queue.empty() and (self._sub is None or not self._sub.active):
            raise StopAsyncIteration
        entry = await self._queue.get()
        if entry is _END:
            self._queue.put_nowait(_END)  # every later (or concurrent) __anext__ ends too
            raise StopAsyncIteration
        return entry

    def unsubscribe(self) -> None:
        """Ends the stream: a task awaiting the next entry gets StopAsyncIteration."""
        if self._sub is not None:
            self._sub.unsubscribe()
        loop, queue = self._loop, self._queue
        if loop is not None and queue is not None:
            try:  # from any thread; the end follows the entries already queued
                loop.call_soon_threadsafe(queue.put_nowait, _END)
            except RuntimeError:  # the loop is closed: nobody awaits it
                pass

    close = unsubscribe

    async def __aenter__(self) -> "AsyncStatusStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.unsubscribe()


def resolve_present(presence_cls: Any, room: Any, to: str) -> str:
    """As Inbox.ask resolves ``to``: a live qualified handle, or the one live agent whose short
    handle it is."""
    from . import NotFound, InvalidArgument  # the compiled module's classes
    try:
        presence = presence_cls(room, create=False)
    except NotFound:
        raise NotFound(f"agent '{to}' is not present in room '{room.name}' (nobody has joined it)") from None
    if presence.find(to) is not None:
        return to
    matches = [a.handle for a in presence.who()
               if a.handle.startswith(to + "-") and "-" not in a.handle[len(to) + 1:]]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"agent '{to}' is not present in room '{room.name}' (`agentbus who` lists who is)")
    raise InvalidArgument(f"'{to}' names several present agents ({', '.join(matches)}); "
                          "ask one by its qualified handle")


async def ask_async(inbox: Any, presence_cls: Any, to: str, message: str, *, agent: str,
                    timeout: float = 60.0) -> Any:
    """Sends an ASK through the inbox and awaits the REPLY event (reply_to = the ask, agent =
    the one asked). Raises Timeout after timeout seconds; cancelling returns at once."""
    from . import Timeout
    room = inbox.room
    target = resolve_present(presence_cls, room, to)
    tail = AsyncTail(room.tail(from_="latest"))  # before sending: no reply can slip past
    try:
        ask_id = inbox.send(target, "ASK", message, agent=agent)

        async def reply() -> Any:
            async for ev in tail:
                if ev.reply_to == ask_id and ev.agent in (target, to):
                    return ev

        try:
            return await asyncio.wait_for(reply(), timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"no reply from {target} to ask {ask_id} within {timeout:g}s") from None
    finally:
        tail.close()
