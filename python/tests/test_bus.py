"""Bus, rooms, publishing, recent, tails (sync), and the CLI in another process."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

import agentbus
from conftest import CLI, WAIT, cli, eventually


def test_publish_returns_increasing_ids_and_recent_sees_them(room):
    a = room.publish("NOTE", '{"n":1}', agent="py")
    b = room.publish("NOTE", b"raw\x00bytes", agent="py", to="bob", reply_to=a)
    assert b > a
    events = room.recent(10)
    assert [e.id for e in events] == [a, b]
    first, second = events
    assert (first.type, first.agent, first.payload, first.to, first.reply_to) == ("NOTE", "py", '{"n":1}', None, None)
    assert second.payload_bytes == b"raw\x00bytes"
    assert (second.to, second.reply_to) == ("bob", a)
    d = second.to_dict()
    assert d["id"] == b and d["to"] == "bob" and d["reply_to"] == a and d["origin"]["id"] == b
    assert d["origin"]["host"] == room_host(room) and d["imported"] is False
    assert abs(first.ts - time.time()) < 60


def room_host(room):
    return room.recent(1)[0].origin_host


def test_publish_batch_of_pairs_and_of_payloads(room):
    ids = room.publish_batch([("A", "1"), ("B", b"2")], agent="py")
    more = room.publish_batch(["x", "y", "z"], agent="py", type="C")
    assert len(ids) == 2 and len(more) == 3 and ids + more == sorted(ids + more)
    got = [(e.type, e.payload) for e in room.recent(5)]
    assert got == [("A", "1"), ("B", "2"), ("C", "x"), ("C", "y"), ("C", "z")]
    assert room.publish_batch([], agent="py") == []


def test_bad_arguments_raise_typed_errors(room):
    with pytest.raises(agentbus.InvalidArgument):
        room.publish("", "x", agent="py")
    with pytest.raises(agentbus.TooLarge) as e:
        room.publish("T" * 65, "x", agent="py")
    assert "type" in str(e.value)
    with pytest.raises(TypeError):
        room.publish("T", 5, agent="py")
    with pytest.raises(TypeError):
        room.publish_batch([("only-one",)], agent="py")
    with pytest.raises(TypeError):
        room.publish("T", "x")  # agent is required


def test_tail_iterates_from_earliest_and_stops_after_its_timeout(room):
    ids = [room.publish("E", str(i), agent="py") for i in range(5)]
    tail = room.tail(from_="earliest", timeout=0.05)
    assert [e.id for e in tail] == ids
    assert tail.position > ids[-1]


def test_tail_from_latest_next_and_next_batch(room):
    room.publish("OLD", "x", agent="py")
    tail = room.tail()
    assert tail.next(timeout=0.01) is None
    i = room.publish("NEW", "y", agent="py")
    ev = tail.next(timeout=WAIT)
    assert ev is not None and ev.id == i and ev.type == "NEW"
    room.publish_batch(["1", "2", "3"], agent="py", type="B")
    batch = tail.next_batch(100, timeout=WAIT)
    assert [e.payload for e in batch] == ["1", "2", "3"]
    assert tail.next_batch(100, timeout=0.01) == []
    tail.close()
    with pytest.raises(agentbus.InvalidArgument):
        tail.next(timeout=0)


def test_tail_from_an_id_and_bad_from(room):
    a = room.publish("E", "a", agent="py")
    b = room.publish("E", "b", agent="py")
    assert [e.id for e in room.tail(from_=b, timeout=0.02)] == [b]
    assert a < b
    with pytest.raises(agentbus.InvalidArgument):
        room.tail(from_="yesterday")


def test_durable_tail_resumes_where_it_stopped(room):
    t = room.tail(from_="earliest", durable_name="py-durable")
    ids = [room.publish("E", str(i), agent="py") for i in range(3)]
    assert t.next(timeout=WAIT).id == ids[0]
    t.next(timeout=WAIT)  # delivers ids[1]; ids[0] is now consumed
    t.close()
    again = room.tail(durable_name="py-durable", timeout=0.02)
    assert [e.id for e in again][0] == ids[1]
    again.close()
    assert room.drop_reader("py-durable")


def test_bus_names_and_errors(bus_name):
    with pytest.raises(agentbus.BadName):
        agentbus.Bus("bad name!")
    with pytest.raises(agentbus.NotFound):
        agentbus.Bus(bus_name + "-absent", create=False)
    b = agentbus.Bus(bus_name, room="x/main")
    assert b.name == bus_name and b.default_room == "x/main"
    assert b.room().name == "x/main"
    with pytest.raises(agentbus.BadName):
        b.room("no spaces allowed")
    with pytest.raises(agentbus.NotFound):
        b.room("not/there", create=False)
    assert "x/main" in b.room_names()
    assert any(r["name"] == "x/main" for r in b.info()["rooms"])


def test_full_ring_behind_a_durable_reader_raises_bus_full(bus):
    room = bus.room("small/main", ring_bytes=64 << 10, publish_timeout=0.05)
    gate = room.tail(from_="earliest", durable_name="slow")
    with pytest.raises(agentbus.BusFull):
        for _ in range(10_000):
            room.publish("FILL", "x" * 512, agent="py")
    gate.close()
    room.drop_reader("slow")


def wait_for_tailer(room, pid):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if any(r["pid"] == pid and not r["durable"] for r in room.info()["readers"]):
            return
        time.sleep(0.005)  # polling a condition (the CLI's reader slot), bounded
    raise AssertionError("the CLI tail never attached")


def test_python_publisher_and_cli_tail_in_another_process_see_the_same_events(bus_name, room):
    proc = subprocess.Popen([CLI, "--bus", bus_name, "--room", room.name, "tail", "--follow", "--json",
                             "--timeout", "10s"], stdout=subprocess.PIPE, text=True)
    try:
        wait_for_tailer(room, proc.pid)
        sent = [room.publish("PY", json.dumps({"i": i}), agent="py-pub", to="cli" if i % 2 else None)
                for i in range(20)]
        sent += room.publish_batch([json.dumps({"i": i}) for i in range(20, 30)], agent="py-pub", type="PYB")
        got = []
        for line in proc.stdout:
            got.append(json.loads(line))
            if len(got) == len(sent):
                break
    finally:
        proc.kill()
        proc.wait(WAIT)
    assert [g["id"] for g in got] == sent
    assert [g["payload"]["i"] for g in got] == list(range(30))
    assert {g["agent"] for g in got} == {"py-pub"}
    assert got[1]["to"] == "cli"
    mine = {e.id: e.to_dict() for e in room.recent(30)}
    for g in got:
        assert mine[g["id"]]["type"] == g["type"]


def test_events_posted_by_the_cli_reach_a_python_tail(bus_name, room):
    tail = room.tail()
    ids = [int(cli(bus_name, "post", "CLI", f'{{"n":{i}}}', "--agent", "sh").stdout) for i in range(3)]
    got = [tail.next(timeout=WAIT) for _ in ids]
    assert [e.id for e in got] == ids
    assert [json.loads(e.payload)["n"] for e in got] == [0, 1, 2]


def test_a_batch_over_half_the_ring_is_too_large_and_publishes_nothing(bus):
    room = bus.room("tiny/main", ring_bytes=64 << 10)
    before = room.info()["tail"]
    with pytest.raises(agentbus.TooLarge):
        room.publish_batch(["x" * 100] * 1000, agent="py", type="BIG")
    assert room.info()["tail"] == before and room.recent(1) == []


def test_payload_bytes_are_exact_and_payload_text_replaces_invalid_utf8(room):
    room.publish("BIN", b"ok \xff\xfe end", agent="py")
    (ev,) = room.recent(1)
    assert ev.payload_bytes == b"ok \xff\xfe end"
    assert ev.payload == "ok \ufffd\ufffd end"
    room.publish("UNI", "grüße ✓", agent="py")
    assert room.recent(1)[0].payload == "grüße ✓"


def test_timeouts_are_seconds_or_none(room):
    tail = room.tail()
    with pytest.raises(TypeError, match="seconds"):
        tail.next(timeout="soon")
    with pytest.raises(agentbus.InvalidArgument):
        tail.next(timeout=-1)
    assert tail.next(timeout=0) is None and tail.next(timeout=0.001) is None


def test_a_huge_timeout_is_no_bound_not_an_overflow(room):
    tail = room.tail()
    got = []
    reader = threading.Thread(target=lambda: got.append(tail.next(timeout=1e10)))
    reader.start()
    reader.join(0.3)  # 1e10 s overflowed to a negative wait: next() returned None at once
    assert reader.is_alive() and got == []
    i = room.publish("LATE", "x", agent="py")
    reader.join(WAIT)
    assert not reader.is_alive() and [e.id for e in got] == [i]
    with pytest.raises(OverflowError):
        tail.next(timeout=10 ** 400)


def test_publish_batch_keeps_its_items_alive_while_another_thread_empties_the_list(bus):
    # A durable reader keeps the ring full, so the batch waits (GIL released) inside publish;
    # meanwhile this thread empties the list and allocates strings of the same size over the
    # freed ones. The batch must publish what it was given.
    expected = [f"item-{i:04d}-" + "p" * 180 for i in range(40)]
    for attempt in range(5):
        published, ids = _publish_while_the_list_is_emptied(bus, f"gated-{attempt}/main")
        if ids:  # else the list was emptied before the call took it (nothing published): again
            assert [e.id for e in published] == ids
            assert [e.payload for e in published] == expected
            return
    raise AssertionError("the list was never emptied while publish_batch waited")


def _publish_while_the_list_is_emptied(bus, room_name):
    gated = bus.room(room_name, ring_bytes=64 << 10, publish_timeout=WAIT)
    filler = bus.room(room_name, publish_timeout=0.0)
    gate = gated.tail(from_="earliest", durable_name="gate")
    with pytest.raises(agentbus.BusFull):
        for _ in range(10_000):
            filler.publish("FILL", "f" * 512, agent="py")
    items = [("ITEM", "".join(["item-", f"{i:04d}", "-", "p" * 180])) for i in range(40)]  # only the list holds them
    result = {}

    def publish():
        result["ids"] = gated.publish_batch(items, agent="py")

    publisher = threading.Thread(target=publish)
    publisher.start()
    assert eventually(lambda: publisher.ident is not None and _in_publish_batch(publisher.ident))
    items.clear()
    garbage = [("ITEM", "".join(["GARBAGE", f"{i:04d}", "z" * 180])) for i in range(400)]
    published = []
    while batch := gate.next_batch(256, timeout=0.0):  # let the batch in (it may come meanwhile)
        published += [e for e in batch if e.type == "ITEM"]
    publisher.join(WAIT)
    assert not publisher.is_alive()
    while result["ids"] and len(published) < len(result["ids"]):  # past the FILL events left
        batch = gate.next_batch(256, timeout=WAIT)
        assert batch, "the batch never arrived"
        published += [e for e in batch if e.type == "ITEM"]
    del garbage
    gate.close()
    gated.drop_reader("gate")
    return published, result["ids"]


def _in_publish_batch(ident) -> bool:
    """Whether thread `ident` is inside its publish_batch call: its frame stands on the call
    instruction while this thread runs, so the call has released the GIL."""
    import dis
    frame = sys._current_frames().get(ident)
    if frame is None or frame.f_code.co_name != "publish":
        return False
    at = [i for i in dis.get_instructions(frame.f_code) if i.offset <= frame.f_lasti]
    return bool(at) and at[-1].opname in ("CALL", "CALL_FUNCTION", "CALL_METHOD")
