#!/usr/bin/env python3
"""What the writer does per group at province scale (a diagnosis tool, not part of make bench).

With a real aidstat-aggregator on loopback (temporary folder, free ports, removed at the end;
--log-level debug): bench_ingest preloads --preload events over all of Jiangxi's county-level
divisions as fast as they are acknowledged, then offers --rate events/s for --seconds. Printed:

- per thread of the aggregator, the CPU it used in the middle 8 s of the load (/proc, in cores),
  bench_ingest's own, and the whole machine's (busy, of it irq, softirq and time stolen by the
  hypervisor; iowait; idle: /proc/stat);
- from the aggregator's "group of N events committed" debug lines of the load phase: the groups,
  their median and mean size, the bytes of pages the commits wrote per event (the write(2) bytes
  of mdb_txn_commit), the median pages per commit, the median transaction time and the writer's
  CPU per event;
- the load's acknowledgement latency (bench_ingest --acks-out: send → acknowledgement per batch).

usage: bench_groups.py BUILD_DIR [--preload N] [--rate R] [--seconds S] [--batch B]
       [-- extra aggregator options...]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--preload", type=int, default=300000)
ap.add_argument("--rate", type=int, default=10000)
ap.add_argument("--seconds", type=int, default=14)
ap.add_argument("--batch", type=int, default=100)
ap.add_argument("extra", nargs="*", help="extra aggregator options (after --)")
args = ap.parse_args()
BIN = os.path.join(os.path.abspath(args.build), "bin")
os.environ["AS_BIN"] = BIN
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from aidstat_testlib import Cluster, run  # noqa: E402


def thread_ticks(pid):
    """(tid, name) → utime + stime in clock ticks, for every thread of pid."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/stat").read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        out[(t, s[s.index("(") + 1:s.rindex(")")])] = int(f[11]) + int(f[12])
    return out


def proc_ticks(pid):
    f = open(f"/proc/{pid}/stat").read()
    f = f[f.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])


HZ = os.sysconf("SC_CLK_TCK")
ING = os.path.join(BIN, "bench_ingest")
c = Cluster("aidstat-groups")
try:
    c.start_aggregator(extra=["--log-level", "debug"] + args.extra)
    if args.preload:
        p = run([ING, "--endpoint", c.ingest, "--counties", "all", "--realistic", "--events",
                 str(args.preload), "--batch", "500", "--window", "16", "--rate", "1e9", "--run",
                 "preload", "--year", "2026"], check=False, timeout=900)
        print("preload:", (p.stdout.strip().splitlines() or [p.stderr[-300:]])[0])
    log = os.path.join(c.dir, "aggregator.log")
    mark = os.path.getsize(log)
    acks = os.path.join(c.dir, "acks.txt")
    load = subprocess.Popen([ING, "--endpoint", c.ingest, "--counties", "all", "--realistic",
                             "--rate", str(args.rate), "--seconds", str(args.seconds), "--batch",
                             str(args.batch), "--run", "load", "--acks-out", acks, "--year",
                             "2026"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    pid = c.aggregator.proc.pid
    a, la = thread_ticks(pid), proc_ticks(load.pid)
    st0, t0 = open("/proc/stat").readline().split(), time.time()
    time.sleep(min(8, max(1, args.seconds - 5)))
    b, lb = thread_ticks(pid), proc_ticks(load.pid)
    st1, dt = open("/proc/stat").readline().split(), time.time() - t0
    for k in sorted(b, key=lambda k: -(b[k] - a.get(k, 0))):
        d = b[k] - a.get(k, 0)
        if d:
            name = "loop" if k[0] == str(pid) else f"{k[0]} {k[1]}"
            print(f"  thread {name:24s} {d / HZ / dt:.3f} core")
    print(f"  aggregator {sum(b[k] - a.get(k, 0) for k in b) / HZ / dt:.3f} core, "
          f"bench_ingest {(lb - la) / HZ / dt:.3f} core")
    tot = [int(y) - int(x) for x, y in zip(st0[1:], st1[1:])]
    print(f"  machine: busy {(sum(tot) - tot[3] - tot[4]) / HZ / dt:.2f} cores (of it irq "
          f"{tot[5] / HZ / dt:.3f}, softirq {tot[6] / HZ / dt:.3f}, stolen by the hypervisor "
          f"{tot[7] / HZ / dt:.3f}), iowait {tot[4] / HZ / dt:.2f}, idle {tot[3] / HZ / dt:.2f}")
    out, _ = load.communicate(timeout=120)
    print("load:", out.strip()[:400])
    text = open(log, encoding="utf-8", errors="replace").read()[mark:]
    ev, pb, cpu, txn = [], [], [], []
    for m in re.finditer(r"group of (\d+) events committed.*?transaction (\d+) us \(cpu (\d+), "
                         r"commit (\d+) us: (\d+) bytes", text):
        ev.append(int(m[1]))
        txn.append(int(m[2]))
        cpu.append(int(m[3]))
        pb.append(int(m[5]))
    if ev:
        print(f"groups {len(ev)}: events median {statistics.median(ev)} mean "
              f"{sum(ev) / len(ev):.0f}; page bytes per event {sum(pb) / sum(ev):.0f}; pages per "
              f"commit median {statistics.median(pb) / 4096:.0f}; transaction median "
              f"{statistics.median(txn):.0f} us; writer CPU per event "
              f"{sum(cpu) / sum(ev):.1f} us")
    lat = sorted(float(x.split()[1]) - float(x.split()[0]) for x in open(acks) if x.strip())
    if lat:
        print(f"acknowledgement p50 {lat[len(lat) // 2] * 1e3:.1f} ms, p99 "
              f"{lat[int(len(lat) * .99)] * 1e3:.1f} ms")
finally:
    c.close()
