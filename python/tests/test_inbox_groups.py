"""Directed messages, the inbox, ask/reply, and consumer groups."""
from __future__ import annotations

import threading

from conftest import WAIT, cli


def test_send_read_ack(room):
    inbox = room.inbox()
    a = inbox.send("bob", "NOTE", "first", agent="alice")
    inbox.send("bob", "NOTE", "second", agent="alice", reply_to=a)
    msgs = inbox.read("bob")
    assert [(m.seq, m.sender, m.payload) for m in msgs] == [(1, "alice", "first"), (2, "alice", "second")]
    assert msgs[1].reply_to == a and msgs[0].id == a
    assert inbox.ack("bob", 1) == 1 and inbox.cursor("bob") == 1
    assert [m.payload for m in inbox.read("bob")] == ["second"]
    assert inbox.read("nobody") == []


def test_ask_blocks_until_the_reply_and_the_cli_sees_the_ask(bus_name, room):
    inbox = room.inbox()
    with room.presence().join("reviewer") as reviewer:
        def answer():
            for _ in range(int(WAIT / 0.05)):
                msgs = room.inbox().read(reviewer.handle)
                if msgs:
                    room.inbox().reply(msgs[0].id, "ok to merge", agent=reviewer.handle)
                    return
                threading.Event().wait(0.05)  # polling the inbox (a condition), bounded

        t = threading.Thread(target=answer)
        t.start()
        reply = inbox.ask("reviewer", "ok to merge?", agent="me", timeout=WAIT)
        t.join(WAIT)
        assert (reply.type, reply.payload, reply.agent) == ("REPLY", "ok to merge", reviewer.handle)
        out = cli(bus_name, "inbox", "--agent", reviewer.handle).stdout
        assert "ok to merge?" in out


def test_group_members_share_events_and_acks_clear_pending(room):
    a = room.group("builds", "a", interests=["build"])
    b = room.group("builds", "b")
    ids = [room.publish("build", str(i), agent="ci") for i in range(4)]
    room.publish("other", "x", agent="ci")
    got = []
    for member in (a, b, a, b):
        d = member.read(timeout=WAIT)
        assert d is not None and d.deliveries == 1
        got.append(d)
    assert sorted(d.event.id for d in got) == ids
    assert a.read(timeout=0.02) is None  # "other" was filtered
    assert len(a.pending()) == 4
    assert all(a.ack(d) for d in got)
    assert a.pending() == [] and not a.ack(got[0])
    b.leave()
    a.leave()


def test_one_group_handle_shared_by_a_reading_thread_and_an_acking_thread(room):
    # The C++ handle is one-thread-at-a-time; the binding serialises calls on it (without the
    # GIL), so a thread acking and listing pending while another reads loses and breaks nothing.
    import time
    group = room.group("shared", "m")
    n = 200
    delivered = []
    lock = threading.Lock()
    deadline = time.monotonic() + WAIT

    def reader():
        # read() also returns None at once while the pending list is full: the acker catches up.
        while len(delivered) < n and time.monotonic() < deadline:
            d = group.read(timeout=0.05)
            if d is not None:
                with lock:
                    delivered.append(d)

    t = threading.Thread(target=reader)
    t.start()
    ids = [room.publish("job", str(i), agent="ci") for i in range(n)]
    acked = []
    while len(acked) < n and time.monotonic() < deadline:
        with lock:
            todo = delivered[len(acked):]
        for d in todo:
            assert group.ack(d)
            acked.append(d.event.id)
        group.pending(10)  # interleaves with the reader's read slices
    t.join(WAIT)
    assert not t.is_alive()
    assert acked == ids and group.pending() == []
    group.leave()
