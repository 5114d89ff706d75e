"""An interpreter that exits while threads wait inside the binding exits cleanly: daemon threads
blocked in a tail or a group read, an async tail's waiter, a status subscriber's thread."""
from __future__ import annotations

from conftest import WAIT, python_child

EXITS_WHILE_WAITING = r"""
import asyncio, sys, threading, time, agentbus
bus = agentbus.Bus(sys.argv[1], room="x/main")
room = bus.room()
tail = room.tail()
blocked = threading.Event()
def wait_forever(fn):
    blocked.set()
    fn()
threading.Thread(target=wait_forever, args=(tail.next,), daemon=True).start()
group = room.group("g", "m")
threading.Thread(target=wait_forever, args=(group.read,), daemon=True).start()
status = room.status()
status.subscribe(lambda e: None)
async def main():
    it = room.tail().__aiter__()
    task = asyncio.create_task(it.__anext__())
    await asyncio.sleep(0)  # the waiter thread starts and blocks
    return it, task
keep = asyncio.run(main())
blocked.wait(5)
print("exiting", flush=True)
"""


def test_exit_with_threads_waiting_in_the_binding_is_clean(bus_name):
    child = python_child(EXITS_WHILE_WAITING, bus_name)
    out, err = child.communicate(timeout=WAIT)
    assert child.returncode == 0, err
    assert out.strip() == "exiting"
    assert "terminate" not in err and "Fatal" not in err, err
