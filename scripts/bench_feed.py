#!/usr/bin/env python3
"""Feed benchmark with the real daemons on loopback and durable commits.

1. Feed throughput to 10 subscribers: collectors hold N events in their outboxes while the
   aggregator is down; 10 `aidstat tail --from 1` subscribers are waiting; the aggregator starts,
   and we time until every subscriber has printed all N (JSON formatting included, output to
   `wc -l`). Reported per subscriber and summed, with the share that came live vs. by replay.
2. Replay of R events (default 1 million) from the event log through the query endpoint:
   `aidstat tail --from 1 --until-seq R` into `wc -l`, and the Python example over a part.

usage: bench_feed.py BUILD_DIR [--events N] [--subscribers S] [--replay R] [--python-replay P]
"""
import argparse
import os
import re
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--events", type=int, default=200000)
ap.add_argument("--subscribers", type=int, default=10)
ap.add_argument("--replay", type=int, default=1000000)
ap.add_argument("--python-replay", type=int, default=200000)
args = ap.parse_args()
os.environ["AS_BIN"] = os.path.join(os.path.abspath(args.build), "bin")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from aidstat_testlib import Cluster, exe, gen_csv, wait_for  # noqa: E402
from feedlib import EXAMPLE, example_python  # noqa: E402

COUNTIES = [360730, 360733, 360731, 360732]


def ledger_seq(c):
    return c.status_json()["ledger_seq"]


def load(c, total, tag, seed):
    per = total // len(COUNTIES)
    for i, county in enumerate(COUNTIES):
        c.drop(county, f"{tag}.csv", gen_csv([county], per, 2026, seed=seed + i,
                                             extra=("--sorted",)))
    wait_for(lambda: all(os.path.exists(os.path.join(c.done(x), f"{tag}.csv"))
                         for x in COUNTIES), 900, "collectors to take their files", interval=0.5)
    return per * len(COUNTIES)


def counted(cmd, err_path):
    """Starts cmd | wc -l; returns the Popen (stdout: the line count)."""
    sh = " ".join(f"'{a}'" for a in cmd) + f" 2>{err_path} | wc -l"
    return subprocess.Popen(["bash", "-c", sh], stdout=subprocess.PIPE, text=True)


def replayed(err_path):
    with open(err_path) as f:
        return sum(int(m) for m in re.findall(r"gap filled by replay: .*?, (\d+) events", f.read()))


c = Cluster("aidstat-bench-feed")
try:
    # -- 1. feed throughput to S subscribers ----------------------------------------------------
    for county in COUNTIES:
        c.start_collector(county)
    n = load(c, args.events, "feed", 100)
    tail = [exe("aidstat"), "tail", "--feed", c.feed, "--endpoint", c.query, "--from", "1",
            "--until-seq", str(n)]
    subs = [counted(tail, os.path.join(c.dir, f"sub{i}.err")) for i in range(args.subscribers)]
    time.sleep(0.5)
    t0 = time.monotonic()
    c.start_aggregator(wait=False)
    done_at = {}
    ingest_at = None
    while len(done_at) < len(subs):
        for i, p in enumerate(subs):
            if i not in done_at and p.poll() is not None:
                done_at[i] = time.monotonic() - t0
        if ingest_at is None:
            try:
                if ledger_seq(c) >= n:
                    ingest_at = time.monotonic() - t0
            except AssertionError:
                pass
        if time.monotonic() - t0 > 900:
            raise SystemExit("feed benchmark timed out")
        time.sleep(0.02)
    lines = [int(p.stdout.read().strip() or 0) for p in subs]
    assert all(x == n for x in lines), f"subscribers printed {lines}, expected {n} each"
    worst = max(done_at.values())
    rep = sum(replayed(os.path.join(c.dir, f"sub{i}.err")) for i in range(len(subs)))
    print(f"feed: {n} events committed in {ingest_at or worst:.2f} s "
          f"({n / (ingest_at or worst):,.0f} events/s ingest, aggregator start included)")
    print(f"feed: {len(subs)} subscribers (aidstat tail, JSON out) each got all {n} events in "
          f"{worst:.2f} s = {n / worst:,.0f} events/s per subscriber, "
          f"{len(subs) * n / worst:,.0f} events/s delivered in all; "
          f"{100 * (1 - rep / (len(subs) * n)):.1f}% live, {100 * rep / (len(subs) * n):.1f}% "
          f"through replay after gaps")

    # -- 2. replay of R events ------------------------------------------------------------------
    have = ledger_seq(c)
    if have < args.replay:
        load(c, args.replay - have, "replay", 200)
        wait_for(lambda: ledger_seq(c) >= args.replay, 900, "the log to hold the replay events",
                 interval=0.5)
    r = args.replay
    t0 = time.monotonic()
    p = counted([exe("aidstat"), "tail", "--feed", c.feed, "--endpoint", c.query, "--from", "1",
                 "--until-seq", str(r), "--quiet"], os.path.join(c.dir, "replay.err"))
    got = int(p.communicate()[0].strip() or 0)
    took = time.monotonic() - t0
    assert got == r, f"replay printed {got}, expected {r}"
    print(f"replay: aidstat tail replayed {r} events from the event log in {took:.2f} s = "
          f"{r / took:,.0f} events/s (pages of 5000, JSON out)")
    pr = min(args.python_replay, r)
    if pr:
        t0 = time.monotonic()
        p = counted([example_python(), EXAMPLE, "--cache-dir", os.path.join(c.dir, "cache"),
                     "--feed", c.feed, "--endpoint", c.query, "--from", "1", "--until-seq",
                     str(pr), "--quiet"], os.path.join(c.dir, "py.err"))
        got = int(p.communicate()[0].strip() or 0)
        took = time.monotonic() - t0
        assert got == pr, f"python replay printed {got}, expected {pr}"
        print(f"replay: the Python example replayed {pr} events in {took:.2f} s = "
              f"{pr / took:,.0f} events/s (protoc generation included)")
finally:
    c.close()
