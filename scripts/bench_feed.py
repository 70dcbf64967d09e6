#!/usr/bin/env python3
"""Feed benchmark with a real aggregator on loopback and durable commits (issue 5).

1. Feed throughput to S subscribers (default 10): S `aidstat tail --from 1 --until-seq N`
   processes (the gap-free subscriber: feed, replay of what it missed, JSON out into `wc -l`)
   follow the feed while bench_ingest sends N events (default 200,000) over all of Jiangxi's
   counties as fast as the aggregator acknowledges them. Timed from the first event sent until
   every subscriber has printed all N (from bench_ingest's first send); reported per subscriber and summed, with the share of
   events that came live vs. by replay after a gap. Subscribers, aggregator and load generator
   share the machine's cores, so this is the throughput of the whole pipeline, ingest included.
   1b. The same with S light subscribers (Python processes, a SUB socket each, counting the ev.*
   messages without decoding them, no gap filling): what the PUB fan-out itself delivers when
   the subscribers cost little; a count short of N means the feed dropped at its high-water mark.
2. Replay of R events (default 1 million) from the event log through the query endpoint, after
   bench_ingest has filled the log to R:
   a. a raw client (Python REQ, ReplayRequest pages of 5000, protobuf by hand, items counted
      but not decoded): the query endpoint's own rate;
   b. `aidstat tail --from 1 --until-seq R --quiet | wc -l`: decoded and printed as JSON;
   c. the Python example subscriber (examples/python) over the first P events (default 200,000).

usage: bench_feed.py BUILD_DIR [--events N] [--subscribers S] [--replay R] [--python-replay P]
                   [--no-light]
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--events", type=int, default=200000)
ap.add_argument("--subscribers", type=int, default=10)
ap.add_argument("--replay", type=int, default=1000000)
ap.add_argument("--python-replay", type=int, default=200000)
ap.add_argument("--page", type=int, default=5000)
ap.add_argument("--no-light", action="store_true", help="skip the light subscribers (1b)")
args = ap.parse_args()
BIN = os.path.join(os.path.abspath(args.build), "bin")
os.environ["AS_BIN"] = BIN
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from aidstat_testlib import Cluster, exe, run  # noqa: E402
from feedlib import EXAMPLE, example_python  # noqa: E402

import zmq  # noqa: E402  (Debian's python3-zmq)

DEADLINE = time.monotonic() + 280  # the whole script stays under 5 minutes


def left():
    return max(1.0, DEADLINE - time.monotonic())


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ledger_seq(c):
    return c.status_json()["ledger_seq"]


def ingest(c, n, tag):
    """bench_ingest: n events over all counties, window 16 batches of 500, as fast as acked."""
    p = run([exe("bench_ingest"), "--endpoint", c.ingest, "--counties", "all", "--realistic",
             "--events", str(n), "--batch", "500", "--window", "16", "--rate", "1e9", "--run",
             tag], check=False, timeout=left())
    if p.returncode:
        raise SystemExit(f"bench_ingest failed: {p.stdout}{p.stderr[-1000:]}")
    return p.stdout.strip().splitlines()[0]


def counted(cmd, err_path):
    """Starts cmd | wc -l; returns the Popen (stdout: the line count)."""
    sh = " ".join(f"'{a}'" for a in cmd) + f" 2>{err_path} | wc -l"
    return subprocess.Popen(["bash", "-c", sh], stdout=subprocess.PIPE, text=True)


def replayed(err_path):
    with open(err_path) as f:
        return sum(int(m) for m in re.findall(r"gap filled by replay: .*?, (\d+) events", f.read()))


LIGHT = r"""
import sys, time, zmq
feed, n = sys.argv[1], int(sys.argv[2])
s = zmq.Context().socket(zmq.SUB)
s.setsockopt(zmq.RCVHWM, 0)
s.setsockopt(zmq.SUBSCRIBE, b"ev.")
s.setsockopt(zmq.RCVTIMEO, 5000)
s.connect(feed)
print("ready", flush=True)
got, first, last = 0, 0.0, 0.0
try:
    while got < n:
        s.recv_multipart()
        last = time.monotonic()
        if not got:
            first = last
        got += 1
except zmq.Again:
    pass
print(got, first, last, flush=True)
"""


def light_subscribers(c, n, tag):
    subs = [subprocess.Popen([sys.executable, "-c", LIGHT, c.feed, str(n)],
                             stdout=subprocess.PIPE, text=True) for _ in range(args.subscribers)]
    for p in subs:
        assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # subscriptions travel to the PUB
    acks = os.path.join(c.dir, f"acks-{tag}.txt")
    agg_cpu0, kids_cpu0 = cpu_seconds(c.aggregator.proc.pid), children_cpu()
    t0 = time.monotonic()
    p = run([exe("bench_ingest"), "--endpoint", c.ingest, "--counties", "all", "--realistic",
             "--events", str(n), "--batch", "500", "--window", "16", "--rate", "1e9", "--run", tag,
             "--acks-out", acks], check=False, timeout=left())
    if p.returncode:
        raise SystemExit(f"bench_ingest failed: {p.stdout}{p.stderr[-1000:]}")
    res = []
    for q in subs:
        out = q.communicate(timeout=left())[0].split()
        res.append((int(out[0]), float(out[1]), float(out[2])))
    wall = time.monotonic() - t0
    agg_cpu = cpu_seconds(c.aggregator.proc.pid) - agg_cpu0
    kids_cpu = children_cpu() - kids_cpu0
    with open(acks) as f:
        first_send = min(float(line.split()[0]) for line in f)
    got = [r[0] for r in res]
    worst = max(r[2] for r in res) - first_send
    print(f"feed[light]: {p.stdout.strip().splitlines()[0]}", flush=True)
    print(f"feed[light]: {len(subs)} light subscribers received {min(got)}..{max(got)} of {n} "
          f"events each ({'all' if min(got) == n else 'SOME DROPPED'}); the last had all in "
          f"{worst:.2f} s from the first send = {min(got) / worst:,.0f} events/s per subscriber, "
          f"{sum(got) / worst:,.0f} events/s delivered in all; load {loadavg()}", flush=True)
    print(f"feed[light]: CPU over those {wall:.1f} s: aggregator {agg_cpu:.1f} s, subscribers and "
          f"bench_ingest {kids_cpu:.1f} s", flush=True)


# ---- the query protocol by hand (ReplayRequest / ReplayResponse) -------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf):
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = None, i + 8
        elif wt == 5:
            v, i = None, i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, v


def replay_request(from_seq, limit):
    inner = varint(1 << 3) + varint(from_seq) + varint(2 << 3) + varint(limit)
    return varint(3 << 3 | 2) + varint(len(inner)) + inner


def raw_replay(c, upto, page):
    """Pages through seq 1..upto; returns (events, bytes received)."""
    s = zmq.Context.instance().socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 30000)
    s.connect(c.query)
    seq, got, nbytes = 1, 0, 0
    try:
        while seq <= upto:
            s.send(replay_request(seq, min(page, upto - seq + 1)))
            resp = s.recv()
            nbytes += len(resp)
            body = None
            for num, v in fields(resp):
                if num == 1 and v:
                    raise AssertionError(f"replay answered status {v}")
                if num == 5:
                    body = v
            if body is None:
                raise AssertionError("replay: no ReplayResponse in the answer")
            items, nxt = 0, None
            for num, v in fields(body):
                if num == 1:
                    items += 1
                elif num == 2:
                    nxt = v
            if not items or not nxt or nxt <= seq:
                raise AssertionError(f"replay stalled at {seq} (items {items}, next {nxt})")
            got += items
            seq = nxt
    finally:
        s.close()
    return got, nbytes


c = Cluster("aidstat-bench-feed")
try:
    print(f"feed: machine load {loadavg()} at start", flush=True)
    c.start_aggregator()
    # -- 1. feed throughput to S subscribers ----------------------------------------------------
    n = (args.events + 499) // 500 * 500
    tail = [exe("aidstat"), "tail", "--feed", c.feed, "--endpoint", c.query, "--from", "1",
            "--until-seq", str(n)]
    subs = [counted(tail, os.path.join(c.dir, f"sub{i}.err")) for i in range(args.subscribers)]
    time.sleep(1.0)  # let them connect and subscribe
    acks = os.path.join(c.dir, "acks.txt")
    agg_cpu0, kids_cpu0 = cpu_seconds(c.aggregator.proc.pid), children_cpu()
    t0 = time.monotonic()
    load = subprocess.Popen([exe("bench_ingest"), "--endpoint", c.ingest, "--counties", "all",
                             "--realistic", "--events", str(n), "--batch", "500", "--window",
                             "16", "--rate", "1e9", "--run", "feed", "--acks-out", acks],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done_at = {}
    ingest_at = None
    while len(done_at) < len(subs) or ingest_at is None:
        now = time.monotonic() - t0
        for i, p in enumerate(subs):
            if i not in done_at and p.poll() is not None:
                done_at[i] = now
        if ingest_at is None and load.poll() is not None:
            ingest_at = now
        if time.monotonic() > DEADLINE - 120:
            for p in subs:
                p.kill()
            load.kill()
            raise SystemExit(f"feed benchmark: subscribers not done after {now:.0f} s "
                             f"({len(done_at)} of {len(subs)} done)")
        time.sleep(0.01)
    out, err = load.communicate()
    if load.returncode:
        raise SystemExit(f"bench_ingest failed: {out}{err[-1000:]}")
    wall = time.monotonic() - t0
    agg_cpu = cpu_seconds(c.aggregator.proc.pid) - agg_cpu0
    kids_cpu = children_cpu() - kids_cpu0
    # the clock starts with the first batch sent (bench_ingest first generates its events)
    with open(acks) as f:
        first_send = min(float(line.split()[0]) for line in f)
    shift = first_send - t0
    done_at = {i: t - shift for i, t in done_at.items()}
    ingest_at -= shift
    lines = [int(p.stdout.read().strip() or 0) for p in subs]
    assert all(x == n for x in lines), f"subscribers printed {lines}, expected {n} each"
    worst = max(done_at.values())
    first = min(done_at.values())
    rep = sum(replayed(os.path.join(c.dir, f"sub{i}.err")) for i in range(len(subs)))
    print(f"feed: {out.strip().splitlines()[0]}", flush=True)
    print(f"feed: {n} events sent and committed in {ingest_at:.2f} s "
          f"({n / ingest_at:,.0f} events/s ingest while {len(subs)} subscribers ran)")
    print(f"feed: {len(subs)} subscribers (aidstat tail, JSON out) each got all {n} events, "
          f"the first in {first:.2f} s, the last in {worst:.2f} s = {n / worst:,.0f} events/s "
          f"per subscriber, {len(subs) * n / worst:,.0f} events/s delivered in all; "
          f"{100 * (1 - rep / (len(subs) * n)):.1f}% live, {100 * rep / (len(subs) * n):.1f}% "
          f"through replay after gaps; load {loadavg()}", flush=True)
    print(f"feed: CPU over those {wall:.1f} s (2 cores = {2 * wall:.1f} core-s): aggregator "
          f"{agg_cpu:.1f} s, subscribers (tail + wc) and bench_ingest {kids_cpu:.1f} s",
          flush=True)

    if not args.no_light:
        light_subscribers(c, n, "light")

    # -- 2. replay of R events ------------------------------------------------------------------
    have = ledger_seq(c)
    if have < args.replay:
        t1 = time.monotonic()
        line = ingest(c, args.replay - have, "replay")
        print(f"replay: filled the log to {ledger_seq(c)} events in "
              f"{time.monotonic() - t1:.1f} s ({line})", flush=True)
    r = min(args.replay, ledger_seq(c))
    t0 = time.monotonic()
    got, nbytes = raw_replay(c, r, args.page)
    took = time.monotonic() - t0
    assert got == r, f"raw replay got {got}, expected {r}"
    print(f"replay: raw client (ReplayRequest pages of {args.page}, items counted, not decoded) "
          f"replayed {r} events ({nbytes / 1e6:.0f} MB) in {took:.2f} s = {r / took:,.0f} "
          f"events/s; load {loadavg()}", flush=True)
    t0 = time.monotonic()
    p = counted([exe("aidstat"), "tail", "--feed", c.feed, "--endpoint", c.query, "--from", "1",
                 "--until-seq", str(r), "--quiet", "--page", str(args.page)],
                os.path.join(c.dir, "replay.err"))
    got = int(p.communicate(timeout=left())[0].strip() or 0)
    took = time.monotonic() - t0
    assert got == r, f"replay printed {got}, expected {r}"
    print(f"replay: aidstat tail replayed {r} events from the event log in {took:.2f} s = "
          f"{r / took:,.0f} events/s (pages of {args.page}, JSON out); load {loadavg()}",
          flush=True)
    pr = min(args.python_replay, r)
    if pr:
        t0 = time.monotonic()
        p = counted([example_python(), EXAMPLE, "--cache-dir", os.path.join(c.dir, "cache"),
                     "--feed", c.feed, "--endpoint", c.query, "--from", "1", "--until-seq",
                     str(pr), "--quiet"], os.path.join(c.dir, "py.err"))
        got = int(p.communicate(timeout=left())[0].strip() or 0)
        took = time.monotonic() - t0
        assert got == pr, f"python replay printed {got}, expected {pr}"
        print(f"replay: the Python example replayed {pr} events in {took:.2f} s = "
              f"{pr / took:,.0f} events/s (protoc generation included)", flush=True)
finally:
    c.close()
