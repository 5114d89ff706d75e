"""The README's Python example works as pasted: run from the repository root, on a bus of its own."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

import agentbus
from conftest import CLI, WAIT

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_example() -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"A Python agent that claims the tasks posted from the shell.*?```sh\n(.*?)```", text, re.S)
    assert m, "the README's Python example is missing"
    return m.group(1)


def test_the_readme_python_agent_claims_a_task_posted_from_the_cli(bus_name):
    if not os.path.isdir(os.path.join(ROOT, "build", "release", "python", "agentbus")):
        pytest.skip("the example uses build/release/python; this build is elsewhere")
    env = dict(os.environ, AGENTBUS_BUS=bus_name, PATH=os.path.dirname(CLI) + os.pathsep + os.environ["PATH"])
    for var in ("AGENTBUS_ROOM", "REPO_ID", "BRANCH_NAME"):
        env.pop(var, None)
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_example()], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=WAIT * 3)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^fixed \d+ \{\"test\":\"parser_test\"\}$", r.stdout, re.M), r.stdout
    assert "done" in r.stdout and "py-fixer-" in r.stdout
    room = agentbus.Bus(bus_name, create=False).room(agentbus.default_room_name(ROOT), create=False)
    assert room.tasks(create=False).live_claims() == []  # completed, not left claimed
