"""The task board from Python, a Python claimant killed with kill -9, and tasks from the CLI."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

import agentbus
from conftest import cli, eventually, kill_9, python_child, reaped


def test_register_post_claim_complete(room):
    board = room.tasks()
    board.register("review", "Review a patch", produces="verdict", requires="patch")
    assert [t.type for t in board.catalog()] == ["review"]
    assert board.catalog()[0].produces == "verdict"
    tid = board.post_task("review", '{"patch":"p1"}', agent="poster")
    assert [t.id for t in board.open_tasks()] == [tid]
    st = board.state(tid)
    assert (st.phase, st.type, st.creator, st.payload) == ("open", "review", "poster", '{"patch":"p1"}')
    token = board.claim(tid, agent="worker", ttl=60)
    assert token > 0 and board.open_tasks() == []
    st = board.state(tid)
    assert (st.phase, st.claimant, st.token, st.owner_pid) == ("claimed", "worker", token, os.getpid())
    assert 0 < st.lease_left <= 60
    board.renew(tid, token, ttl=120)
    done_id = board.complete(tid, token, '{"ok":true}')
    assert board.state(tid).phase == "done" and board.state(tid).result == '{"ok":true}'
    done = [e for e in room.recent(10) if e.id == done_id][0]
    assert (done.type, done.agent, done.reply_to) == ("TASK_DONE", "worker", tid)
    with pytest.raises(agentbus.Conflict, match="done"):
        board.claim(tid, agent="late")
    assert board.state(tid).to_dict()["phase"] == "done"


def test_release_makes_a_task_claimable_and_old_tokens_stale(room):
    board = room.tasks()
    board.register("job")
    tid = board.post_task("job", "{}", agent="p")
    t1 = board.claim(tid, agent="a")
    board.release(tid, t1)
    t2 = board.claim(tid, agent="b")
    assert t2 > t1
    with pytest.raises(agentbus.Conflict):
        board.complete(tid, t1, "stale")
    assert board.counters()["stale_tokens_refused"] == 1


CLAIMANT = r"""
import sys, agentbus
bus = agentbus.Bus(sys.argv[1], room=sys.argv[2])
token = bus.tasks().claim(int(sys.argv[3]), agent="doomed", ttl=600)
print(token, flush=True)
sys.stdin.read()  # hold the claim until killed
"""


def test_a_python_claimant_killed_with_kill_9_frees_its_task_at_once(bus_name, bus, room):
    board = room.tasks()
    board.register("job")
    tid = board.post_task("job", "{}", agent="p")
    with reaped(python_child(CLAIMANT, bus_name, room.name, str(tid), stdin=subprocess.PIPE)) as child:
        token = int(child.stdout.readline())
        with pytest.raises(agentbus.Conflict, match="doomed"):
            board.claim(tid, agent="survivor")
        kill_9(child)
    # The lease had 10 minutes to run: only the dead session frees it, and at once (liveness
    # verdicts are trusted for 10 ms, so allow a moment, as the C++ tests do).
    assert eventually(lambda: [t.id for t in board.open_tasks()] == [tid])
    orphaned = board.state(tid)
    assert (orphaned.phase, orphaned.claimant, orphaned.owner_alive) == ("open", "doomed", False)
    mine = board.claim(tid, agent="survivor")
    assert mine > token
    assert board.counters()["dead_sessions_reclaimed"] == 1


def test_a_task_posted_from_the_cli_is_claimed_in_python_and_done_is_seen_by_the_cli(bus_name, room):
    cli(bus_name, "register", "fix", "Fix a failing test", "--produces", "patch")
    tid = int(cli(bus_name, "post", "fix", '{"test":"parser_test"}', "--agent", "sh").stdout)
    board = room.tasks()
    (task,) = board.open_tasks()
    assert task.id == tid and json.loads(task.payload) == {"test": "parser_test"}
    token = board.claim(tid, agent="py-fixer")
    board.complete(tid, token, '{"patch":"scratch:p"}')
    state = json.loads(cli(bus_name, "state", str(tid), "--json").stdout)
    assert state["state"] == "done"
    assert "py-fixer" in json.dumps(state)
