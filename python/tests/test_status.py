"""The status bus: post, post_sync, recent, recent_text, summary, callbacks."""
from __future__ import annotations

import json
import threading

import pytest

import agentbus
from conftest import WAIT


def test_post_recent_text_and_summary(room):
    status = room.status()
    a = status.post("exec", "search_google", "ok", "Found 7 results", {"hits": 7})
    status.post("exec", "fetch", "failed", "timeout")
    status.post("planner", "plan", "completed")
    entries = status.recent(10)
    assert [e.action for e in entries] == ["search_google", "fetch", "plan"]
    first = entries[0]
    assert (first.id, first.agent_id, first.status, first.detail, first.metadata) == (a, "exec", "ok", "Found 7 results", {"hits": 7})
    assert first.to_dict()["metadata"] == {"hits": 7} and json.loads(first.to_json())["action"] == "search_google"
    assert [e.action for e in status.recent(10, agent_id="exec", status="failed")] == ["fetch"]
    assert "exec: search_google → ok | Found 7 results" in status.recent_text(10)
    summary = status.summary()
    assert "Total: 3 entries (1 ok, 1 failed, 1 completed)" in summary
    assert status.has_completed("planner") and not status.has_completed("exec")
    with pytest.raises(agentbus.InvalidArgument, match="unknown status"):
        status.post("exec", "x", "great")
    with pytest.raises(agentbus.InvalidArgument):
        status.post("exec", "x", "ok", "", "[1,2]")  # metadata must be an object
    status.close()


def test_callback_subscriber_sees_entries_and_post_sync_waits_for_it(room):
    status = room.status()
    seen = []
    sub = status.subscribe(lambda e: seen.append((e.agent_id, e.action)))
    status.post_sync("a", "one", "info")
    assert seen == [("a", "one")]  # post_sync returned only after the callback ran
    status.post_sync("a", "two", "ok")
    assert seen[-1] == ("a", "two")
    sub.unsubscribe()
    assert not sub.active
    status.post_sync("a", "three", "ok")
    assert ("a", "three") not in seen
    assert status.stats()["delivered"] == 2
    status.close()


def test_a_raising_callback_is_reported_as_a_system_failed_entry(room):
    status = room.status()
    reported = threading.Event()

    def bad(entry):
        if entry.agent_id != "system":
            raise ValueError("boom in python")

    def watch(entry):
        if entry.agent_id == "system" and entry.status == "failed":
            reported.set()

    with status.subscribe(bad), status.subscribe(watch):
        status.post("worker", "step", "ok")
        assert reported.wait(WAIT)
    (report,) = status.recent(10, agent_id="system")
    assert report.status == "failed"
    assert "worker/step" in report.detail and "boom in python" in report.detail and "ValueError" in report.detail
    assert status.stats()["callback_errors"] == 1
    status.close()
