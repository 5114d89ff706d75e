"""Orchestration from Python: agents whose provider is a Python function, driven by strategies."""
from __future__ import annotations

import subprocess

import pytest

import agentbus
from conftest import WAIT, kill_9, python_child, reaped


def test_pipeline_of_python_agents(bus):
    calls = []

    def stage(name):
        def provider(request):
            calls.append((name, request["step"], request["agent"]["id"], request["messages"][-1]["content"]))
            return f"{name} done"
        return provider

    agents = [agentbus.Agent(n, "worker", provider=stage(n)) for n in ("a", "b", "c")]
    result = bus.run(agentbus.Pipeline(agents), "start", run_id="py-pipe-1")
    assert result.state == "completed" and result.output == "c done" and result.run_id == "py-pipe-1"
    assert [c[0] for c in calls] == ["a", "b", "c"]
    assert calls[0][3] == "start"
    journal = [e.type for e in bus.room("runs/py-pipe-1").recent(100)]
    assert journal[0] == "RUN_STARTED" and "RUN_FINISHED" in journal and journal.count("STEP_REPLY") == 3


def test_a_pipelines_supervisor_sees_every_stage(bus):
    seen = []

    def supervisor(request):
        seen.append(request["messages"][-1]["content"])
        return "noted"

    agents = [agentbus.Agent(n, provider=lambda request, n=n: f"{n} out") for n in ("a", "b")]
    result = bus.run(agentbus.Pipeline(agents, supervisor=agentbus.Agent("boss", provider=supervisor)), "go",
                     run_id="py-pipe-sup")
    assert result.state == "completed" and result.output == "b out"
    assert seen == ["a out", "b out"]


def test_loop_with_a_structured_verdict_and_dict_replies(bus):
    drafts = iter(["draft 1", "draft 2"])

    def producer(request):
        return {"text": next(drafts), "usage": {"input_tokens": 3, "output_tokens": 4}}

    def reviewer(request):
        text = request["messages"][-1]["content"]
        approved = text.endswith("2")
        return {"text": "fine" if approved else "again",
                "tool_calls": [{"name": "verdict", "arguments": {"approved": approved, "feedback": "more"}}]}

    loop = agentbus.Loop(agentbus.Agent("writer", provider=producer), [agentbus.Agent("critic", provider=reviewer)],
                         max_iterations=3)
    result = bus.run(loop, "write", run_id="py-loop-1")
    assert result.state == "completed" and result.approved and result.iterations == 2
    assert result.output == "draft 2" and result.stopped == "approved"


def test_swarm_and_supervisor_construct_and_run(bus):
    swarm = agentbus.Swarm([agentbus.Agent("solo", provider=lambda r: "answer")])
    assert bus.run(swarm, "q", run_id="py-swarm-1").output == "answer"
    sup = agentbus.Supervisor(agentbus.Agent("boss", provider=lambda r: "summary"),
                              [agentbus.Agent("w1", provider=lambda r: "w1 out")],
                              strategy="sequential", auto_delegate=True, refine_task=False)
    result = bus.run(sup, "task", run_id="py-sup-1")
    assert result.state == "completed"
    with pytest.raises(agentbus.InvalidArgument):
        agentbus.Supervisor(agentbus.Agent("b", provider=lambda r: ""), [], strategy="sideways")


def test_a_raising_provider_fails_the_run_naming_the_agent(bus):
    def broken(request):
        raise RuntimeError("model unavailable")

    result = bus.run(agentbus.Pipeline([agentbus.Agent("flaky", provider=broken)]), "go", run_id="py-flaky-1")
    assert result.state == "failed"
    assert "flaky" in result.error and "model unavailable" in result.error


def test_bad_strategies_and_providers(bus):
    with pytest.raises(agentbus.InvalidArgument):
        agentbus.Pipeline([])
    with pytest.raises(TypeError):
        agentbus.Agent("x", provider="not callable")
    result = bus.run(agentbus.Pipeline([agentbus.Agent("bad", provider=lambda r: 42)]), "go", run_id="py-bad-1")
    assert result.state == "failed" and "bad" in result.error


def test_resume_refuses_a_finished_run_and_an_unknown_one(bus):
    solo = agentbus.Pipeline([agentbus.Agent("solo", provider=lambda r: "out")])
    assert bus.run(solo, "go", run_id="py-resume-1").state == "completed"
    with pytest.raises(agentbus.Conflict):
        agentbus.resume(bus, solo, "py-resume-1")
    with pytest.raises(agentbus.NotFound):
        agentbus.resume(bus, solo, "py-never-started")


DRIVER = r"""
import sys, agentbus
bus = agentbus.Bus(sys.argv[1], room="x/main")
def first(request):
    print("first called", flush=True)
    return "first out"
def second(request):
    print("second waiting", flush=True)
    sys.stdin.read()  # never returns: killed here
agents = [agentbus.Agent("first", provider=first), agentbus.Agent("second", provider=second)]
bus.run(agentbus.Pipeline(agents), "go", run_id=sys.argv[2])
"""


def test_a_python_driver_killed_with_kill_9_is_resumed_without_calling_finished_steps_again(bus_name, bus):
    with reaped(python_child(DRIVER, bus_name, "py-killed-1", stdin=subprocess.PIPE)) as child:
        assert child.stdout.readline().strip() == "first called"
        assert child.stdout.readline().strip() == "second waiting"
        kill_9(child)
    calls = []

    def record(name, text):
        def provider(request):
            calls.append(name)
            return text
        return provider

    agents = [agentbus.Agent("first", provider=record("first", "first again")),
              agentbus.Agent("second", provider=record("second", "second out"))]
    result = agentbus.resume(bus, agentbus.Pipeline(agents), "py-killed-1")
    assert (result.state, result.output, result.run_id) == ("completed", "second out", "py-killed-1")
    assert calls == ["second"]  # the first step's reply came from the journal


@pytest.mark.parametrize("reply, field", [
    ({"text": "x", "tool_calls": ["verdict"]}, "tool_calls[0] must be a dict"),
    ({"text": "x", "tool_calls": [7]}, "tool_calls[0] must be a dict"),
    ({"text": "x", "tool_calls": "verdict"}, "tool_calls must be a list"),
    ({"text": "x", "tool_calls": [{"arguments": {}}]}, "tool_calls[0] has no name"),
    ({"text": "x", "usage": 5}, "usage must be a dict"),
    ({"text": "x", "usage": {"input_tokens": "many"}}, "usage.input_tokens must be an int"),
    ({"text": "x", "usage": {"output_tokens": -1}}, "usage.output_tokens must be >= 0"),
])
def test_a_reply_field_of_the_wrong_type_fails_the_step_naming_the_field(bus, reply, field):
    result = bus.run(agentbus.Pipeline([agentbus.Agent("typo", provider=lambda r: reply)]), "go")
    assert result.state == "failed"
    assert "typo" in result.error and field in result.error and "SystemError" not in result.error


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_a_keyboard_interrupt_in_a_provider_stops_the_run_and_is_raised(bus, stop):
    calls = []

    def interrupted(request):
        calls.append(request["agent"]["id"])
        raise stop()

    def after(request):
        calls.append(request["agent"]["id"])
        return "should not run"

    # Before, the interrupt was one more failed step: the run returned "failed" and Ctrl-C was
    # swallowed.
    loop = agentbus.Loop(agentbus.Agent("writer", provider=interrupted),
                         [agentbus.Agent("critic", provider=after)], max_iterations=3)
    with pytest.raises(stop):
        bus.run(loop, "go", run_id=f"py-stop-{stop.__name__}")
    assert calls == ["writer"]
    journal = [e for e in bus.room(f"runs/py-stop-{stop.__name__}").recent(100) if e.type == "STEP_FAILED"]
    assert journal and "interrupted" in journal[0].payload
    # The next run of the same process is not affected.
    assert bus.run(agentbus.Pipeline([agentbus.Agent("ok", provider=lambda r: "fine")]), "go").state == "completed"


CTRL_C = r"""
import sys, time, agentbus
bus = agentbus.Bus(sys.argv[1], room="x/main")
def slow(request):
    print("calling", flush=True)
    time.sleep(60)  # Ctrl-C lands here
    return "too late"
try:
    result = bus.run(agentbus.Pipeline([agentbus.Agent("slow", provider=slow)]), "go", run_id="py-ctrl-c")
    print("returned", result.state, flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_during_a_run_raises_keyboard_interrupt_from_run(bus_name, bus):
    import signal
    with reaped(python_child(CTRL_C, bus_name)) as child:
        assert child.stdout.readline().strip() == "calling"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=WAIT)
        assert out.strip() == "interrupted", err
        assert child.returncode == 0
