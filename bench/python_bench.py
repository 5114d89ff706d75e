#!/usr/bin/python3
"""Python figures of agentbus beside C++ and beside redis-py, measured in one run.

    /usr/bin/python3 bench/python_bench.py [--build build/release] [--quick] [--json]

Figures (64-byte payloads):
  * publish one at a time: room.publish() in a loop, no reader attached;
  * publish in batches: room.publish_batch() of 256 payloads (one claim, one commit each);
  * one-way latency, Python to Python, two processes: a ping-pong between this process (pinned
    to CPU 0) and an echo process (CPU 1), each tailing the other's room (block wait), one-way =
    round trip / 2, back to back and with 50 us between samples (the reader asleep).
Beside them, in the same run: redis-py against a redis-server started here on a free loopback
port (XADD one at a time, XADD pipelined 256 at a time, ping-pong over XADD + XREAD BLOCK),
and C++ (agentbus-bench's 1->1 rows: one publisher, one block-waiting subscriber process).
Every figure carries agentbus-bench's placement probe taken before and after it (the two
vCPUs of the development VM flip between a near and a far placement, which moves cross-core
figures several fold; docs/benchmarks.md). Rates are medians of --runs runs; ratios compare
figures of this run only.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PAYLOAD = "x" * 64
BATCH = 256
# Latency is measured back to back (0: the echo's reader is still in its spin phase) and with a
# 50 us gap between samples (the reader has gone to sleep on the futex: the wake-up path).
GAPS_NS = (0, 50_000)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build", "release"), help="the CMake build directory")
    p.add_argument("--seconds", type=float, default=1.0, help="time per throughput run")
    p.add_argument("--runs", type=int, default=3, help="throughput runs per figure (median reported)")
    p.add_argument("--samples", type=int, default=5000, help="latency round trips")
    p.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    p.add_argument("--json", action="store_true", help="one JSON object per figure")
    a = p.parse_args()
    if a.quick:
        a.seconds, a.runs, a.samples = 0.2, 1, 500
    return a


ARGS = parse_args()
sys.path.insert(0, os.path.join(ARGS.build, "python"))
import agentbus  # noqa: E402  (from the build tree)

BENCH = os.path.join(ARGS.build, "tools", "agentbus-bench", "agentbus-bench")


def probe():
    """agentbus-bench's placement probe: median CPU 0 <-> CPU 1 round trip, ns."""
    out = subprocess.run([BENCH, "--probe", "--quick"], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)["probe_rtt_ns"]


def placement(before, after):
    near = [x < 200.0 for x in (before, after)]
    return "mixed" if near[0] != near[1] else ("near" if near[0] else "far")


class pinned_to_cpu0:
    """The latency loops run with this process on CPU 0 and the echo on CPU 1, as agentbus-bench
    pins its 1->1 producer and subscriber, so the probe's placement is the one measured."""

    def __enter__(self):
        self.saved = os.sched_getaffinity(0)
        if os.cpu_count() >= 2:
            os.sched_setaffinity(0, {0})

    def __exit__(self, *exc):
        os.sched_setaffinity(0, self.saved)


def rate(run_once):
    """Median events/s of ARGS.runs runs of run_once(seconds) -> events."""
    rates = []
    for _ in range(ARGS.runs):
        t0 = time.perf_counter()
        n = run_once(ARGS.seconds)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def pace(gap_ns, since_ns):
    """Busy-waits until gap_ns after since_ns: a gap between latency samples long enough for a
    block-waiting reader to go to sleep on its futex (agentbus-bench's block rows use 50 us)."""
    while time.perf_counter_ns() - since_ns < gap_ns:
        pass


def timed_loop(seconds, step, per_step):
    n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            step()
        n += 100 * per_step
    return n


# ---- agentbus from Python ---------------------------------------------------------------------

ECHO_AGENTBUS = r"""
import sys
sys.path.insert(0, sys.argv[1])
import os, agentbus
if os.cpu_count() >= 2:
    os.sched_setaffinity(0, {1})  # the echo on CPU 1, the pinger on CPU 0 (agentbus-bench's 1->1 pinning)
bus = agentbus.Bus(sys.argv[2], room="bench/ping")
ping, pong = bus.room("bench/ping"), bus.room("bench/pong")
tail = ping.tail()
print("ready", flush=True)
while True:
    ev = tail.next(timeout=30)
    if ev is None or ev.type == "STOP":
        break
    pong.publish("PONG", ev.payload_bytes, agent="echo")
"""


def agentbus_figures(bus_name):
    bus = agentbus.Bus(bus_name, room="bench/main")
    room = bus.room("bench/main", ring_bytes=16 << 20)
    publish = room.publish
    one = rate(lambda s: timed_loop(s, lambda: publish("E", PAYLOAD, agent="bench"), 1))
    batch = [PAYLOAD] * BATCH
    publish_batch = room.publish_batch
    batched = rate(lambda s: timed_loop(s, lambda: publish_batch(batch, agent="bench", type="E"), BATCH))

    ping, pong = bus.room("bench/ping"), bus.room("bench/pong")
    tail = pong.tail()
    echo = subprocess.Popen([sys.executable, "-c", ECHO_AGENTBUS, os.path.join(ARGS.build, "python"), bus_name],
                            stdout=subprocess.PIPE, text=True)
    assert echo.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 10
    while not any(r["pid"] == echo.pid for r in ping.info()["readers"]):  # its tail is attached
        if time.monotonic() > deadline:
            raise RuntimeError("the echo process never attached")
        time.sleep(0.001)
    rtts = {}
    with pinned_to_cpu0():
        agentbus_latency(ping, tail, rtts)
    ping.publish("STOP", "", agent="bench")
    echo.wait(10)
    return one, batched, rtts


def agentbus_latency(ping, tail, rtts):
    for gap in GAPS_NS:
        rtts[gap] = []
        done = time.perf_counter_ns()
        for i in range(ARGS.samples + 200):
            pace(gap, done)
            t0 = time.perf_counter_ns()
            ping.publish("PING", PAYLOAD, agent="bench")
            ev = tail.next(timeout=10)
            done = time.perf_counter_ns()
            if ev is None:
                raise RuntimeError("the echo process stopped answering")
            if i >= 200:  # warm-up
                rtts[gap].append(done - t0)


# ---- redis-py ---------------------------------------------------------------------------------

ECHO_REDIS = r"""
import os, sys, redis
if os.cpu_count() >= 2:
    os.sched_setaffinity(0, {1})
r = redis.Redis(port=int(sys.argv[1]))
last = "0-0"  # the streams are fresh: from the start, so no ping can come before the first XREAD
print("ready", flush=True)
while True:
    got = r.xread({"ping": last}, block=30000, count=1)
    if not got:
        break
    sid, fields = got[0][1][0]
    last = sid
    if fields.get(b"t") == b"STOP":
        break
    r.xadd("pong", {b"p": fields[b"p"]})
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis():
    import redis
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, port, client
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)


def redis_figures(port, client):
    xadd = client.xadd
    fields = {"p": PAYLOAD}
    one = rate(lambda s: timed_loop(s, lambda: xadd("events", fields), 1))

    def pipelined():
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH):
            pipe.xadd("events", fields)
        pipe.execute()

    batched = rate(lambda s: timed_loop(s, pipelined, BATCH))
    client.delete("events", "ping", "pong")

    echo = subprocess.Popen([sys.executable, "-c", ECHO_REDIS, str(port)], stdout=subprocess.PIPE, text=True)
    assert echo.stdout.readline().strip() == "ready"
    rtts = {}
    with pinned_to_cpu0():
        redis_latency(client, rtts)
    xadd("ping", {"t": "STOP"})
    echo.wait(10)
    return one, batched, rtts


def redis_latency(client, rtts):
    xadd = client.xadd
    fields = {"p": PAYLOAD}
    last = "0-0"
    samples = max(200, ARGS.samples // 2)  # Redis round trips are slow: fewer suffice for a median
    for gap in GAPS_NS:
        rtts[gap] = []
        done = time.perf_counter_ns()
        for i in range(samples + 100):
            pace(gap, done)
            t0 = time.perf_counter_ns()
            xadd("ping", fields)
            got = client.xread({"pong": last}, block=10000, count=1)
            done = time.perf_counter_ns()
            if not got:
                raise RuntimeError("the redis echo stopped answering")
            last = got[0][1][0][0]
            if i >= 100:
                rtts[gap].append(done - t0)


# ---- C++ (agentbus-bench) ---------------------------------------------------------------------

def cpp_figures():
    cmd = [BENCH, "--json", "--only", "agentbus", "--only", "agentbus-batch", "--scenario", "1to1",
           "--runs", str(ARGS.runs), "--seconds", str(max(0.1, ARGS.seconds / 2))]
    if ARGS.quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    pick = {}
    for r in rows:
        if r.get("payload_bytes") == 64 and r.get("wait") == "block":
            pick[r["system"]] = r
    return pick, " ".join(cmd[1:])


# ---- report -----------------------------------------------------------------------------------

def main():
    figures = []

    def figure(name, value, unit, baseline_name=None, baseline=None, before=None, after=None, note=""):
        figures.append({"figure": name, "value": value, "unit": unit, "baseline": baseline_name,
                        "baseline_value": baseline, "ratio": (value / baseline) if baseline else None,
                        "placement": placement(before, after) if before is not None else "n/a",
                        "probe_ns": [before, after], "note": note})

    bus_name = f"pybench-{os.getpid()}"
    agentbus.Bus.destroy(bus_name)
    try:
        p0 = probe()
        ab_one, ab_batch, ab_rtts = agentbus_figures(bus_name)
        p1 = probe()
    finally:
        agentbus.Bus.destroy(bus_name)
    redis_proc, port, client = start_redis()
    try:
        r_one, r_batch, r_rtts = redis_figures(port, client)
        p2 = probe()
    finally:
        redis_proc.kill()
        redis_proc.wait(10)
    cpp, cpp_cmd = cpp_figures()
    p3 = probe()

    def one_way(rtts, q):
        return sorted(rtts)[min(len(rtts) - 1, int(len(rtts) * q))] / 2

    figure("python publish, one at a time", ab_one, "events/s", "redis-py XADD", r_one, p0, p1,
           "target >= 300k/s and >= 20x redis-py")
    figure("python publish_batch (256)", ab_batch, "events/s", "redis-py pipelined XADD (256)", r_batch, p0, p1,
           "target >= 1M/s and >= 20x redis-py")
    for gap in GAPS_NS:
        how = "back to back" if gap == 0 else f"{gap // 1000} us apart"
        for q, qname in ((0.5, "p50"), (0.99, "p99")):
            figure(f"python->python one-way {qname}, {how}", one_way(ab_rtts[gap], q), "ns",
                   f"redis-py XADD->XREAD {qname}", one_way(r_rtts[gap], q), p0, p1,
                   "round trip / 2, two processes; ratio < 1 is better" if q == 0.5 else "")
    ab_p50 = one_way(ab_rtts[GAPS_NS[-1]], 0.5)
    if "agentbus" in cpp:
        c = cpp["agentbus"]
        figure("c++ publish one at a time (1->1)", c["msgs_per_s"], "events/s", "python publish", ab_one, p2, p3,
               "agentbus-bench, with a subscriber process")
        figure("c++ one-way p50 (1->1, block)", c["p50_ns"], "ns", "python one-way p50, 50 us apart", ab_p50, p2, p3,
               "agentbus-bench: one way, sends 50 us apart, block-waiting subscriber")
    if "agentbus-batch" in cpp:
        figure("c++ publish_batch (1->1)", cpp["agentbus-batch"]["msgs_per_s"], "events/s", "python publish_batch",
               ab_batch, p2, p3, "agentbus-bench, with a subscriber process")

    if ARGS.json:
        for f in figures:
            print(json.dumps(f))
        return
    print(f"python_bench: {sys.executable} {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}, runs {ARGS.runs} x {ARGS.seconds:g}s, {ARGS.samples} latency samples")
    print(f"C++ rows from: agentbus-bench {cpp_cmd}")
    print(f"{'figure':46} {'value':>12} {'unit':9} {'baseline':36} {'value':>10} {'ratio':>8}  placement")
    for f in figures:
        base = f["baseline_value"]
        ratio = "" if f["ratio"] is None else format(f["ratio"], ".3f")
        print(f"{f['figure']:46} {f['value']:>12,.0f} {f['unit']:9} {(f['baseline'] or ''):36} "
              f"{'' if base is None else format(base, ',.0f'):>10} {ratio:>8}  {f['placement']} "
              f"({f['probe_ns'][0]:.0f}/{f['probe_ns'][1]:.0f} ns)  {f['note']}")


if __name__ == "__main__":
    main()
