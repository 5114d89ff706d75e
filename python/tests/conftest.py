"""Fixtures of the Python binding's tests: a bus of its own per test (destroyed after), the
real CLI ($AGENTBUS_CLI, as ctest sets it) and Python children run with this interpreter."""
from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys

import pytest

import agentbus

_counter = itertools.count()
CLI = os.environ.get("AGENTBUS_CLI", "agentbus")
# Every wait in these tests is bounded by this (seconds); none is a sleep used to synchronise.
WAIT = 10.0


def unique_bus_name(tag: str) -> str:
    return f"t-py-{tag}-{os.getpid()}-{next(_counter)}"


@pytest.fixture
def bus_name(request):
    name = unique_bus_name(request.node.name[:24].replace("[", "-").replace("]", ""))
    agentbus.Bus.destroy(name)
    yield name
    agentbus.Bus.destroy(name)


@pytest.fixture
def bus(bus_name):
    return agentbus.Bus(bus_name, room="test/main", segment_bytes=64 << 20)


@pytest.fixture
def room(bus):
    return bus.room()


def cli(bus_name: str, *args: str, room: str = "test/main", check: bool = True, timeout: float = WAIT,
        env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Runs the agentbus CLI on the test's bus and room; its output as text."""
    r = subprocess.run([CLI, "--bus", bus_name, "--room", room, *args], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"agentbus {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def python_child(code: str, *args: str, **popen) -> subprocess.Popen:
    """A Python process running `code` with this interpreter and this agentbus module."""
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def kill_9(child: subprocess.Popen) -> None:
    """Kills `child` with SIGKILL and checks that this is how it ended."""
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(WAIT) == -signal.SIGKILL


@contextlib.contextmanager
def reaped(child: subprocess.Popen):
    """`child`, killed and reaped however the block ends (a failed assertion included)."""
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(WAIT)


def eventually(condition, timeout: float = 2.0, interval: float = 0.002) -> bool:
    """Whether `condition()` becomes true within `timeout` seconds (polled: the condition is
    state in shared memory, which offers nothing to block on)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
