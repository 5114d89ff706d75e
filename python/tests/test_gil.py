"""Every wait releases the GIL: a second Python thread makes progress while one waits."""
from __future__ import annotations

import threading
import time

from conftest import WAIT


def progress_while(wait, seconds=0.3):
    """Runs `wait` on a thread and counts a pure-Python loop's iterations on this one meanwhile."""
    started = threading.Event()
    done = threading.Event()

    def waiter():
        started.set()
        wait()
        done.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert started.wait(WAIT)
    count = 0
    deadline = time.monotonic() + seconds
    while not done.is_set() and time.monotonic() < deadline:
        count += 1
    t.join(WAIT)
    assert done.is_set()
    return count


def test_tail_next_releases_the_gil(room):
    tail = room.tail()
    # A wait holding the GIL would leave this thread a handful of iterations at most (one per
    # 5 ms switch interval); with it released the loop runs freely.
    n = progress_while(lambda: tail.next(timeout=0.3))
    assert n > 10_000


def test_group_read_releases_the_gil(room):
    group = room.group("g", "m")
    assert progress_while(lambda: group.read(timeout=0.3)) > 10_000


def test_ask_releases_the_gil(room):
    import agentbus
    with room.presence().join("mute") as mute:
        def ask():
            try:
                room.inbox().ask(mute.handle, "?", agent="asker", timeout=0.3)
            except agentbus.Timeout:
                pass
        assert progress_while(ask) > 10_000
