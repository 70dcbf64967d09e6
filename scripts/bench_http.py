#!/usr/bin/env python3
"""HTTP, query and stream latency at province scale while events are being ingested (issue 4).

With a real aidstat-aggregator on loopback (temporary folder, free ports, removed at the end):

0. Preload: bench_ingest sends --preload events (default 1,000,000) spread over all of Jiangxi's
   county-level divisions (one connection per county, events from `aidstat gen`'s generator),
   as fast as the aggregator acknowledges them.
1. Idle (nothing being ingested), then loaded (bench_ingest offering --rate events/s, default
   10,000, over all counties): bench_query (a C client, bench/bench_query.c) measures, one after
   the other for --phase seconds each,
   a. GET /api/totals?year=2026&by=county, one keep-alive connection, request to last body byte;
      the HTTP and query clients are paced (one request every --interval ms, default 5), so
      they measure latency without loading the server as a closed loop would; then GET / (the
      embedded dashboard page: no ledger read, no computation), the floor of an HTTP round
      trip through this aggregator's loop in the same conditions; and GET / of a second
      aggregator on the same machine that holds and ingests nothing: the floor any process on
      this machine sees in the same conditions (its loop does no work but the request's);
   b. the query endpoint's round trip for the same totals, over one REQ connection, with the
      request `aidstat query --year 2026 --by county` sends (the CLI's own qclient);
   c. `aidstat query --year 2026 --by county` as a process (wall time from spawn to exit, so
      process start-up, dynamic linking, ZeroMQ context and connect, printing the table), and
      `aidstat --version` as a process, the floor of any CLI invocation (20 a second).
2. Stream latency, under the same load: an SSE client follows /api/stream?year=2026 and notes
   when each message (id = newest ledger sequence) arrives; bench_ingest notes, per batch, when it
   was sent, when its acknowledgement arrived (the aggregator acknowledges only after the commit)
   and the highest ledger sequence in it. The commit lies between send and acknowledgement, so
   "ack → visible" is a lower bound of the commit → visible time and "send → visible" an upper one.

Latencies are percentiles over every sample. (Until this used bench_query, a and b were measured
by Python clients, whose own overhead on a 2-core machine was a large part of the p99.)

usage: bench_http.py BUILD_DIR [--preload N] [--rate R] [--phase S] [--interval MS] [--year Y]
"""
import argparse
import bisect
import os
import socket
import subprocess
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--preload", type=int, default=1000000)
ap.add_argument("--rate", type=int, default=10000)
ap.add_argument("--phase", type=float, default=5.0, help="seconds per measurement phase")
ap.add_argument("--interval", type=float, default=5.0,
                help="ms between two requests of the HTTP and query clients (paced)")
ap.add_argument("--year", type=int, default=2026)
args = ap.parse_args()
BIN = os.path.join(os.path.abspath(args.build), "bin")
os.environ["AS_BIN"] = BIN
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from aidstat_testlib import Cluster, run  # noqa: E402


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


def summary(xs, unit=1e3, fmt="{:.3f}"):
    """'p50 X ms, p99 Y ms, max Z ms (n samples)' from seconds."""
    f = lambda v: fmt.format(v * unit)  # noqa: E731
    return (f"p50 {f(pct(xs, 0.5))} ms, p99 {f(pct(xs, 0.99))} ms, max {f(max(xs))} ms "
            f"({len(xs)} samples)")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- the measurements ------------------------------------------------------------------------

def measure(c, floor, label):
    """bench_query's lines for /api/totals, the query endpoint and the CLI process, labelled;
    GET / (the embedded dashboard page: no ledger, no computation) of the measured aggregator
    and of floor, an aggregator that does nothing else: the machine's floor for an HTTP round
    trip in the same conditions."""
    cmd = [os.path.join(BIN, "bench_query"), "--http", f"127.0.0.1:{c.http_port}", "--path",
           f"/api/totals?year={args.year}&by=county", "--path", "/", "--query",
           c.query, "--aidstat", os.path.join(BIN, "aidstat"), "--year", str(args.year), "--by",
           "county", "--rate", f"{1000 / args.interval:g}", "--seconds", f"{args.phase:g}",
           "--exec-rate", "20", "--warmup", "20"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.phase * 5 + 120)
    for line in p.stdout.splitlines():
        what = line.removeprefix("bench_query: ")
        kind = "http" if what.startswith("GET ") else "query"
        print(f"{kind}[{label}]: {what}; load {loadavg()}", flush=True)
    if p.returncode:
        raise SystemExit(f"bench_query exited {p.returncode}: {p.stderr[-500:]}")
    p = subprocess.run([os.path.join(BIN, "bench_query"), "--http",
                        f"127.0.0.1:{floor.http_port}", "--path", "/", "--rate",
                        f"{1000 / args.interval:g}", "--seconds", f"{args.phase:g}", "--warmup",
                        "20"], capture_output=True, text=True, timeout=args.phase * 2 + 60)
    for line in p.stdout.splitlines():
        what = line.removeprefix("bench_query: GET / ")
        print(f"http[{label}]: GET / of a second aggregator that does nothing else {what}; "
              f"load {loadavg()}", flush=True)
    if p.returncode:
        raise SystemExit(f"bench_query exited {p.returncode}: {p.stderr[-500:]}")


class SseClient(threading.Thread):
    """Follows /api/stream; self.seen: [(id, monotonic arrival time)] in arrival order."""

    def __init__(self, port, year):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(f"GET /api/stream?year={year} HTTP/1.1\r\nHost: x\r\n"
                          f"Accept: text/event-stream\r\n\r\n".encode())
        self.sock.settimeout(0.5)
        self.seen = []
        self.stop = False

    def run(self):
        buf = b""
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            now = time.monotonic()
            if not data:
                break
            buf += data
            while b"\n\n" in buf:
                msg, buf = buf.split(b"\n\n", 1)
                for line in msg.split(b"\n"):
                    if line.startswith(b"id: "):
                        self.seen.append((int(line[4:]), now))
        self.sock.close()


def stream_latency(sse, acks_path):
    seqs = [s for s, _ in sse.seen]
    times = [t for _, t in sse.seen]
    from_ack, from_send, missing = [], [], 0
    with open(acks_path) as f:
        for line in f:
            sent, acked, maxseq = line.split()
            sent, acked, maxseq = float(sent), float(acked), int(maxseq)
            if not maxseq:
                continue
            # the first message that shows this batch (ids never go down)
            i = bisect.bisect_left(seqs, maxseq)
            if i == len(seqs):
                missing += 1
                continue
            from_ack.append(times[i] - acked)
            from_send.append(times[i] - sent)
    return from_ack, from_send, missing


c = Cluster("aidstat-bench-http")
floor = Cluster("aidstat-bench-http-floor")
try:
    c.start_aggregator()
    floor.start_aggregator()
    ingest = os.path.join(BIN, "bench_ingest")
    print(f"http: machine load {loadavg()} at start", flush=True)
    # -- 0. preload ----------------------------------------------------------------------------
    if args.preload:
        t0 = time.monotonic()
        p = run([ingest, "--endpoint", c.ingest, "--counties", "all", "--realistic",
                 "--events", str(args.preload), "--batch", "500", "--window", "16",
                 "--rate", "1e9", "--run", "preload", "--year", str(args.year)],
                check=False, timeout=900)
        print(f"preload: {p.stdout.strip().splitlines()[0] if p.stdout else p.stderr[-500:]}",
              flush=True)
        if p.returncode:
            raise SystemExit(f"preload failed: {p.stderr[-500:]}")
    st = c.status_json()
    print(f"preload: the ledger holds {st['ledger_seq']} events", flush=True)

    # -- 1. idle --------------------------------------------------------------------------------
    measure(c, floor, "idle")

    # -- 1+2. under load ----------------------------------------------------------------------------
    sse = SseClient(c.http_port, args.year)
    sse.start()
    acks = os.path.join(c.dir, "acks.txt")
    seconds = args.phase * 6 + 12  # bench_query: 6 phases, their warm-ups and start
    load = subprocess.Popen([ingest, "--endpoint", c.ingest, "--counties", "all", "--realistic",
                             "--rate", str(args.rate), "--seconds", str(seconds), "--batch",
                             "100", "--run", "load", "--acks-out", acks, "--year",
                             str(args.year)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.5)
    label = f"{args.rate} ev/s ingest"
    measure(c, floor, label)
    out, err = load.communicate(timeout=seconds + 60)
    time.sleep(0.5)
    sse.stop = True
    sse.join(2)
    print(f"load: {out.strip()}", flush=True)
    if load.returncode:
        print(f"load: bench_ingest exited {load.returncode}: {err[-500:]}", flush=True)
    fa, fs, missing = stream_latency(sse, acks)
    print(f"stream[{label}]: commit → visible on /api/stream, from the batch's acknowledgement "
          f"(lower bound): {summary(fa, fmt='{:.1f}')}", flush=True)
    print(f"stream[{label}]: from the batch's send (upper bound): {summary(fs, fmt='{:.1f}')}; "
          f"{len(sse.seen)} stream messages, {missing} batches never shown; load {loadavg()}",
          flush=True)
finally:
    c.close()
    floor.close()
