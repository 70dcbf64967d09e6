#!/usr/bin/env python3
"""End-to-end benchmark with the real daemons on loopback and durable commits.

1. Throughput: K collectors each take N generated events into their outboxes while the
   aggregator is down; then the aggregator starts and we time until every event is in the ledger.
2. Acknowledgement latency at a fixed offered load (bench_ingest, 10,000 events/s by default).
3. Peak RSS of each daemon (VmHWM), an idle collector's RSS and CPU, and the aggregator's RSS
   after N and after 2N events (it should not grow with the events held).

usage: bench_e2e.py BUILD_DIR [--collectors K] [--events N] [--rate R] [--only latency]

--only latency skips parts 1 and 3's second round: a fresh aggregator, the latency at the offered
load, and the idle collector (about 30 s, for repeated runs).
"""
import argparse
import os
import re
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--collectors", type=int, default=4)
ap.add_argument("--events", type=int, default=250000)
ap.add_argument("--rate", type=int, default=10000)
ap.add_argument("--only", choices=["latency"])
args = ap.parse_args()
os.environ["AS_BIN"] = os.path.join(os.path.abspath(args.build), "bin")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from aidstat_testlib import Cluster, gen_csv, run, wait_for  # noqa: E402

COUNTIES = [360730, 360733, 360731, 360732, 360781, 360734, 360735, 360726][: args.collectors]


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def ledger_seq(c):
    return c.status_json()["ledger_seq"]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def latency():
    out = run([os.path.join(os.path.abspath(args.build), "bin", "bench_ingest"), "--endpoint",
               c.ingest, "--county", "360728", "--rate", str(args.rate), "--seconds", "10",
               "--batch", "100"], check=False).stdout
    print(out.strip() + f"; load {loadavg()}", flush=True)


def idle_collector():
    idle = c.start_collector(360727)
    time.sleep(3)
    pid = idle.proc.pid
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(10)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    print(f"e2e: idle collector (empty spool, connected) RSS {proc_status(pid, 'VmRSS') / 1024:.1f}"
          f" MiB, peak RSS {proc_status(pid, 'VmHWM') / 1024:.1f} MiB, CPU {cpu1 - cpu0:.2f} s "
          f"in {t1 - t0:.1f} s = {100 * (cpu1 - cpu0) / (t1 - t0):.2f}%; load {loadavg()}",
          flush=True)


c = Cluster("aidstat-bench")
if args.only == "latency":
    try:
        c.start_aggregator()
        latency()
        idle_collector()
    finally:
        c.close()
    sys.exit(0)
try:
    # -- 1. throughput ----------------------------------------------------------------------
    for county in COUNTIES:
        c.start_collector(county)
    t0 = time.monotonic()
    for i, county in enumerate(COUNTIES):
        c.drop(county, "bench.csv", gen_csv([county], args.events, 2026, seed=1000 + i,
                                             extra=("--sorted",)))
    total = args.events * len(COUNTIES)
    wait_for(lambda: all(os.path.exists(os.path.join(c.done(x), "bench.csv")) for x in COUNTIES),
             600, "collectors to take their files", interval=0.5)
    took = time.monotonic() - t0
    print(f"e2e: {len(COUNTIES)} collectors took {total} generated rows into their outboxes "
          f"in {took:.1f} s ({total / took:,.0f} rows/s, incl. generation)")
    t0 = time.monotonic()
    # debug: each group's line gives its transaction's wall and CPU time and its fsync
    c.start_aggregator(wait=False, extra=["--log-level", "debug"])
    first = {"t": None}

    def all_in():  # over HTTP: a CLI process per poll would load the machine being measured
        st = c.status_http()
        if first["t"] is None and any(x.get("connected") for x in st["collectors"]):
            first["t"] = time.monotonic()
        return st["ledger_seq"] >= total

    wait_for(all_in, 900, "all events in the ledger", interval=0.05)
    t1 = time.monotonic()
    took = t1 - t0
    print(f"e2e: {total} events delivered by {len(COUNTIES)} collectors to the ledger "
          f"(durable group commits) in {took:.2f} s = {total / took:,.0f} events/s "
          f"(incl. aggregator start and the collectors' reconnect back-off)")
    if first["t"] is not None and t1 > first["t"]:
        print(f"e2e: from the first collector's connection: {t1 - first['t']:.2f} s = "
              f"{total / (t1 - first['t']):,.0f} events/s; load {loadavg()}", flush=True)
    agg_pid = c.aggregator.proc.pid
    groups = ev = wall = cpu = commit = fsync = 0
    pat = re.compile(r"group of (\d+) events.*transaction (\d+) us \(cpu (\d+), commit (\d+) us"
                     r".*\), meta fsync (\d+) us")
    with open(os.path.join(c.dir, "aggregator.log"), errors="replace") as f:
        for line in f:
            m = pat.search(line)
            if m and int(m.group(1)):
                groups += 1
                ev += int(m.group(1))
                wall += int(m.group(2))
                cpu += int(m.group(3))
                commit += int(m.group(4))
                fsync += int(m.group(5))
    if ev:
        print(f"e2e: aggregator CPU {cpu_seconds(agg_pid) * 1e6 / total:.1f} µs per event in all; "
              f"its {groups} commits (mean group {ev // groups} events): the writer's transaction "
              f"wall {wall / ev:.1f} µs per event (LMDB's one writer), of it CPU {cpu / ev:.1f} µs "
              f"and the commit (page writes and their fsync) {commit / ev:.1f} µs; the meta "
              f"page's fsync, on another thread, {fsync / ev:.1f} µs", flush=True)
    rss_n = proc_status(agg_pid, "VmRSS")
    anon_n = proc_status(agg_pid, "RssAnon")
    for county, d in c.collectors.items():
        print(f"e2e: collector {county} peak RSS {proc_status(d.proc.pid, 'VmHWM') / 1024:.1f} MiB")
    print(f"e2e: aggregator peak RSS {proc_status(agg_pid, 'VmHWM') / 1024:.1f} MiB, "
          f"RSS now {rss_n / 1024:.1f} MiB with {total} events held")

    # -- 2. latency at a fixed offered load ---------------------------------------------------
    latency()
    # -- 3. RSS after twice the events, idle collector ----------------------------------------
    before = ledger_seq(c)  # before the drop: the collectors start delivering at once
    for county in COUNTIES:
        c.drop(county, "bench2.csv", gen_csv([county], args.events, 2026, seed=2000 + county,
                                              extra=("--sorted",)))
    wait_for(lambda: c.status_http()["ledger_seq"] >= before + total, 900, "second round",
             interval=0.2)
    rss_2n = proc_status(agg_pid, "VmRSS")
    print(f"e2e: aggregator RSS {rss_n / 1024:.1f} MiB with {total} events held, "
          f"{rss_2n / 1024:.1f} MiB with {ledger_seq(c)} held; of it heap and stacks (RssAnon) "
          f"{anon_n / 1024:.1f} → {proc_status(agg_pid, 'RssAnon') / 1024:.1f} MiB, the rest "
          f"the ledger's mapped file pages (RssFile, page cache the kernel reclaims)")
    idle_collector()
finally:
    c.close()
