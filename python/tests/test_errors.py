"""One exception hierarchy: agentbus.Error, a subclass per C++ error code, with its message."""
from __future__ import annotations

import pytest

import agentbus

CODES = {
    "BadName": ("bad_name", ValueError), "TooLarge": ("too_large", ValueError),
    "Incompatible": ("incompatible", None), "Corrupt": ("corrupt", None), "NoSpace": ("no_space", None),
    "NotFound": ("not_found", LookupError), "Timeout": ("timeout", TimeoutError),
    "SystemFailure": ("system", OSError), "InvalidArgument": ("invalid_argument", ValueError),
    "Conflict": ("conflict", None), "Expired": ("expired", None), "Unavailable": ("unavailable", None),
    "BusFull": ("bus_full", None), "BudgetExceeded": ("budget_exceeded", None),
}


@pytest.mark.parametrize("name", sorted(CODES))
def test_every_class_is_an_agentbus_error_with_its_code(name):
    cls = getattr(agentbus, name)
    code, builtin = CODES[name]
    assert issubclass(cls, agentbus.Error) and issubclass(cls, Exception)
    assert cls.code == code
    if builtin is not None:
        assert issubclass(cls, builtin)
    assert cls.__module__ == "agentbus"


def test_cpp_errors_arrive_as_their_class_with_the_cpp_message(bus, room):
    with pytest.raises(agentbus.BadName) as e:
        bus.room("a b")
    assert "a b" in str(e.value) or "name" in str(e.value)
    board = room.tasks()
    with pytest.raises(agentbus.NotFound) as e:
        board.post_task("unregistered", "{}", agent="py")
    assert "unregistered" in str(e.value)
    with pytest.raises(agentbus.NotFound):
        board.state(123456)
    board.register("job")
    tid = board.post_task("job", "{}", agent="py")
    token = board.claim(tid, agent="a")
    with pytest.raises(agentbus.Conflict) as e:
        board.claim(tid, agent="b")
    assert "claimed by a" in str(e.value)
    with pytest.raises(agentbus.Conflict):
        board.complete(tid, token + 1, "stale")
    with pytest.raises(agentbus.Error):  # the base catches them all
        board.state(999999)
    with pytest.raises(agentbus.Timeout):
        _ask_present(room)
    with pytest.raises(agentbus.NotFound):
        room.inbox().ask("nobody", "hi?", agent="asker", timeout=0.01)


def _ask_present(room):
    with room.presence().join("answerer") as member:
        room.inbox().ask(member.handle, "anyone?", agent="asker", timeout=0.05)
