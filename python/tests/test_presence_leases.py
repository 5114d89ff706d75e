"""Presence (join as a context manager, who) and leases (with bus.lease(...))."""
from __future__ import annotations

import os

import pytest

import agentbus
from conftest import cli


def test_join_is_a_context_manager_and_who_lists_live_agents(bus, room):
    with bus.join("fixer", role="go-fixer", working_on="parser tests") as me:
        assert me.handle.startswith("fixer-")
        (a,) = bus.who()
        assert (a.handle, a.role, a.working_on, a.pid) == (me.handle, "go-fixer", "parser tests", os.getpid())
        assert a.to_dict()["ttl"] == pytest.approx(900.0)
        assert me.set_working_on("lexer") and bus.who()[0].working_on == "lexer"
        assert me.refresh()
    assert bus.who() == []
    types = [e.type for e in room.recent(10)]
    assert "AGENT_JOINED" in types and "AGENT_LEFT" in types


def test_bad_handles_are_bad_names(bus):
    with pytest.raises(agentbus.BadName):
        bus.join("no spaces")


def test_lease_context_manager_holds_and_releases(bus_name, bus):
    with bus.lease("path:src/parser", agent="py", purpose="fix parser") as lease:
        assert lease.resources == ["path:src/parser"] and lease.id > 0
        with pytest.raises(agentbus.Conflict, match="path:src/parser"):
            bus.lease(["path:src/parser/lexer.cpp"], agent="other")
        # The CLI's guard sees the Python lease.
        # (run at the filesystem root: `path:` arguments are resolved against the repository of
        # the working directory, and this lease names no repository)
        r = cli(bus_name, "guard", "path:src/parser/lexer.cpp", "--agent", "other", check=False, cwd="/")
        assert r.returncode == 3
        lease.renew(ttl=60)
        assert 0 < lease.info.expires_in <= 60
    assert bus.leases().list() == []
    with bus.lease(["path:src/parser/lexer.cpp", "branch:main"], agent="other") as again:
        assert again.resources == ["branch:main", "path:src/parser/lexer.cpp"]
    with pytest.raises(agentbus.BadName):
        bus.lease("path:../escape", agent="py")


def test_renewing_one_lease_from_two_threads(bus):
    import threading
    with bus.lease("path:src/shared", agent="py", ttl=60) as lease:
        errors = []

        def renew():
            try:
                for _ in range(200):
                    lease.renew(ttl=60)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=renew) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10.0)
        assert not any(t.is_alive() for t in threads) and errors == []
        assert lease.owner == "py" and 0 < lease.info.expires_in <= 60

