"""agentbus: agent processes on one host coordinating through rooms on a lock-free
shared-memory bus, from Python (docs/python.md).

    import agentbus
    bus = agentbus.Bus()                      # $AGENTBUS_BUS, else "default"
    room = bus.room()                         # the CLI's default room for this directory
    room.publish("NOTE", '{"hi":1}', agent="py")
    for ev in room.tail(from_="earliest", timeout=1.0): print(ev.to_dict())

The compiled core is agentbus._agentbus; this module re-exports it and adds what is better
said in Python: the default room, per-room helpers, and the asyncio adapters (agentbus._aio).
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Optional, Sequence, Union

from . import _agentbus
from ._agentbus import (  # noqa: F401  (re-exported)
    Agent, AgentInfo, BadName, BudgetExceeded, BusFull, Conflict, ConsumerGroup, Corrupt,
    Delivery, Error, Event, Expired, Inbox, InboxMessage, Incompatible, InvalidArgument, Lease,
    LeaseInfo, Leases, Loop, Membership, NoSpace, NotFound, PendingEntry, Pipeline, Presence,
    Room, RunResult, StatusBus, StatusEntry, StatusSubscription, Strategy, Supervisor, Swarm,
    SystemFailure, Tail, TaskBoard, TaskState, TaskType, Timeout, TooLarge, Unavailable, resume, run,
)
from ._aio import AsyncStatusStream, AsyncTail, ask_async as _ask_async

__all__ = [
    "Agent", "AgentInfo", "AsyncStatusStream", "AsyncTail", "BadName", "BudgetExceeded", "Bus",
    "BusFull", "Conflict", "ConsumerGroup", "Corrupt", "Delivery", "Error", "Event", "Expired",
    "Inbox", "InboxMessage", "Incompatible", "InvalidArgument", "Lease", "LeaseInfo", "Leases",
    "Loop", "Membership", "NoSpace", "NotFound", "PendingEntry", "Pipeline", "Presence", "Room",
    "RunResult", "StatusBus", "StatusEntry", "StatusSubscription", "Strategy", "Supervisor",
    "Swarm", "SystemFailure", "Tail", "TaskBoard", "TaskState", "TaskType", "Timeout", "TooLarge",
    "Unavailable", "default_room_name", "resume", "run",
]


def _repo_root(start: str) -> str:
    """The nearest directory up from `start` holding .git (a directory, or a worktree's file),
    else `start`: the CLI's rule, so Python and the CLI agree on the default room."""
    d = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(d, ".git")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return os.path.abspath(start)
        d = parent


def default_room_name(cwd: Optional[str] = None) -> str:
    """$AGENTBUS_ROOM, else REPO/BRANCH from $REPO_ID (default: the repository root's name)
    and $BRANCH_NAME (default main), as the CLI picks it."""
    room = os.environ.get("AGENTBUS_ROOM")
    if room:
        return room
    repo = os.environ.get("REPO_ID") or os.path.basename(_repo_root(cwd or os.getcwd()))
    return f"{repo}/{os.environ.get('BRANCH_NAME') or 'main'}"


class Bus(_agentbus.Bus):
    """A bus (one shared-memory segment of rooms), opened or created on construction.

    ``room`` names the room the helpers below use when given none (default: the CLI's
    default room for the current directory, see default_room_name)."""

    def __init__(self, name: Optional[str] = None, *, room: Optional[str] = None, create: bool = True,
                 segment_bytes: int = 256 << 20, max_rooms: int = 256) -> None:
        super().__init__(name, create=create, segment_bytes=segment_bytes, max_rooms=max_rooms)
        self.default_room = room or default_room_name()

    def room(self, name: Optional[str] = None, *, ring_bytes: int = 1 << 20, max_record_bytes: int = 0,
             create: bool = True, publish_timeout: float = 1.0) -> Room:
        """The room (created on first use; ring_bytes and max_record_bytes only then count)."""
        return self._room(name or self.default_room, ring_bytes=ring_bytes, max_record_bytes=max_record_bytes,
                          create=create, publish_timeout=publish_timeout)

    # Shortcuts to the default room's primitives (each also exists on Room).
    def status(self, room: Optional[str] = None, **options: Any) -> StatusBus:
        return StatusBus(self.room(room), **options)

    def tasks(self, room: Optional[str] = None) -> TaskBoard:
        return TaskBoard(self.room(room))

    def presence(self, room: Optional[str] = None) -> Presence:
        return Presence(self.room(room))

    def join(self, handle: str, *, role: str = "", working_on: str = "", ttl: float = 900.0,
             room: Optional[str] = None) -> Membership:
        return self.presence(room).join(handle, role=role, working_on=working_on, ttl=ttl)

    def who(self, room: Optional[str] = None) -> list:
        return self.presence(room).who()

    def leases(self, room: Optional[str] = None) -> Leases:
        return Leases(self.room(room))

    def lease(self, resources: Union[str, Sequence[str]], *, agent: str, purpose: str = "", ttl: float = 600.0,
              room: Optional[str] = None) -> Lease:
        """``with bus.lease("path:src/x", agent=me):`` holds the resources for the block."""
        return self.leases(room).lease(resources, agent=agent, purpose=purpose, ttl=ttl)

    def inbox(self, room: Optional[str] = None) -> Inbox:
        return Inbox(self.room(room))

    def group(self, name: str, member: str, *, room: Optional[str] = None, interests: Iterable[str] = ("*",),
              from_: Union[str, int] = "latest", max_deliveries: int = 5) -> ConsumerGroup:
        return ConsumerGroup(self.room(room), name, member, interests=list(interests), from_=from_,
                             max_deliveries=max_deliveries)

    def run(self, strategy: Strategy, input: str, **options: Any) -> RunResult:
        """Drives a durable run of the strategy (see agentbus.run)."""
        return run(self, strategy, input, **options)


# Per-room helpers, on the compiled Room class.
def _room_status(self: Room, **options: Any) -> StatusBus:
    return StatusBus(self, **options)


def _room_group(self: Room, name: str, member: str, *, interests: Iterable[str] = ("*",),
                from_: Union[str, int] = "latest", max_deliveries: int = 5) -> ConsumerGroup:
    return ConsumerGroup(self, name, member, interests=list(interests), from_=from_, max_deliveries=max_deliveries)


Room.status = _room_status
Room.tasks = lambda self, **options: TaskBoard(self, **options)
Room.presence = lambda self, **options: Presence(self, **options)
Room.leases = lambda self, **options: Leases(self, **options)
Room.inbox = lambda self, **options: Inbox(self, **options)
Room.group = _room_group

# The async forms.
Tail.__aiter__ = lambda self: AsyncTail(self)


def _subscribe(self: StatusBus, callback: Any = None) -> Any:
    """With a callback: it runs for every entry on its own thread (a raise is reported as a
    `system` failed entry); returns a StatusSubscription. Without: an async iterator."""
    if callback is None:
        return AsyncStatusStream(self)
    return self._subscribe(callback)


StatusBus.subscribe = _subscribe


async def _inbox_ask_async(self: Inbox, to: str, message: str, *, agent: str, timeout: float = 60.0) -> Event:
    """``await inbox.ask_async(to, message, agent=me)``: the REPLY event (see agentbus._aio)."""
    return await _ask_async(self, Presence, to, message, agent=agent, timeout=timeout)


Inbox.ask_async = _inbox_ask_async
