#!/usr/bin/env python3
"""HTTP, query and stream latency at province scale while events are being ingested (issue 4).

With a real aidstat-aggregator on loopback (temporary folder, free ports, removed at the end):

0. Preload: bench_ingest sends --preload events (default 1,000,000) spread over all of Jiangxi's
   county-level divisions (one connection per county, events from `aidstat gen`'s generator),
   as fast as the aggregator acknowledges them.
1. Idle (nothing being ingested), then loaded (bench_ingest offering --rate events/s, default
   10,000, over all counties), each for a few seconds:
   a. GET /api/totals?year=2026&by=county, one keep-alive connection, request to last body byte;
      the HTTP and query clients are paced (one request every --interval ms, default 5), so
      they measure latency without loading the server as a closed loop would;
   b. the query endpoint's round trip for the same totals (TotalsRequest year=2026 by=county),
      from a small Python REQ client speaking the CLI's protocol (protobuf encoded by hand);
   c. `aidstat query --year 2026 --by county` as a process (wall time from spawn to exit, so
      process start-up, dynamic linking, ZeroMQ context and connect, printing the table), and
      `aidstat --version` as a process, the floor of any CLI invocation (one every 50 ms).
2. Stream latency, under the same load: an SSE client follows /api/stream?year=2026 and notes
   when each message (id = newest ledger sequence) arrives; bench_ingest notes, per batch, when it
   was sent, when its acknowledgement arrived (the aggregator acknowledges only after the commit)
   and the highest ledger sequence in it. The commit lies between send and acknowledgement, so
   "ack → visible" is a lower bound of the commit → visible time and "send → visible" an upper one.

Latencies are percentiles over every sample; Python's own overhead (tens of µs for a and b, about
a millisecond of fork/exec for c) is included and not subtracted.

usage: bench_http.py BUILD_DIR [--preload N] [--rate R] [--phase S] [--interval MS] [--year Y]
"""
import argparse
import bisect
import json
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

import zmq  # noqa: E402  (Debian's python3-zmq)


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


# ---- the query protocol, by hand: QueryRequest{totals: TotalsRequest{year, by}} ----------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def totals_request(year, by):
    inner = varint(1 << 3 | 0) + varint(year) + field_bytes(2, by.encode())
    return field_bytes(1, inner)


def fields(buf):
    """(number, wire type, value) of a protobuf message's top-level fields."""
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
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def totals_rows(resp):
    """Rows in a QueryResponse's TotalsResponse; raises if the aggregator answered an error."""
    status, err, rows = 0, b"", None
    for num, _, v in fields(resp):
        if num == 1:
            status = v
        elif num == 2:
            err = v
        elif num == 3:
            rows = sum(1 for n, _, _ in fields(v) if n == 3)
    if status or rows is None:
        raise AssertionError(f"query answered status {status}: {err.decode(errors='replace')}")
    return rows


# ---- the measurements ------------------------------------------------------------------------

class HttpClient:
    """A minimal keep-alive HTTP/1.1 client on a raw socket (less client overhead than
    http.client): the request's bytes are built once; the answer is read to its last body byte
    by Content-Length."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        self.buf = b""

    def get(self):
        self.sock.sendall(self.req)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(self.buf) < length:
            self.buf += self.recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body

    def recv(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise AssertionError("the aggregator closed the HTTP connection")
        return d

    def close(self):
        self.sock.close()


def paced(seconds, interval, limit=None):
    """Yields at fixed intervals (a paced client, not a closed loop that would load the server
    as much as it can) for seconds, at most limit times."""
    t0 = time.monotonic()
    k = 0
    while True:
        due = t0 + k * interval
        now = time.monotonic()
        if due - t0 >= seconds or (limit and k >= limit):
            return
        if due > now:
            time.sleep(due - now)
        yield k
        k += 1


def http_latencies(c, seconds, path):
    cl = HttpClient(c.http_port, path)
    lat = []
    rows = None
    for _ in paced(seconds, args.interval / 1000):
        t0 = time.perf_counter()
        status, body = cl.get()
        lat.append(time.perf_counter() - t0)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body[:200]!r}")
        if rows is None:
            rows = len(json.loads(body)["rows"])
    cl.close()
    return lat, rows


def query_latencies(c, seconds):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.connect(c.query)
    req = totals_request(args.year, "county")
    lat = []
    rows = None
    for _ in paced(seconds, args.interval / 1000):
        t0 = time.perf_counter()
        s.send(req)
        resp = s.recv()
        lat.append(time.perf_counter() - t0)
        if rows is None:
            rows = totals_rows(resp)
    s.close()
    return lat, rows


def process_latencies(cmd, seconds, interval=0.05):
    lat = []
    for _ in paced(seconds, interval):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lat.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise AssertionError(f"{cmd} exited {p.returncode}: {p.stderr[-300:]!r}")
    return lat


def measure(c, label):
    phase = args.phase
    path = f"/api/totals?year={args.year}&by=county"
    h, hrows = http_latencies(c, phase, path)
    print(f"http[{label}]: GET {path} ({hrows} rows, keep-alive): {summary(h)}; "
          f"load {loadavg()}", flush=True)
    q, qrows = query_latencies(c, phase)
    print(f"query[{label}]: query endpoint round trip, totals by county ({qrows} rows, Python "
          f"REQ client): {summary(q)}", flush=True)
    cli = [os.path.join(BIN, "aidstat"), "query", "--endpoint", c.query, "--year",
           str(args.year), "--by", "county"]
    w = process_latencies(cli, phase * 1.6)
    v = process_latencies([os.path.join(BIN, "aidstat"), "--version"], phase * 0.6)
    print(f"query[{label}]: `aidstat query --year {args.year} --by county` process wall time: "
          f"{summary(w)}", flush=True)
    print(f"query[{label}]: `aidstat --version` process wall time (start-up floor): "
          f"{summary(v)}", flush=True)
    return h, q, w


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
try:
    c.start_aggregator()
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
    measure(c, "idle")

    # -- 1+2. under load ----------------------------------------------------------------------------
    sse = SseClient(c.http_port, args.year)
    sse.start()
    acks = os.path.join(c.dir, "acks.txt")
    seconds = args.phase * 4.2 + 4
    load = subprocess.Popen([ingest, "--endpoint", c.ingest, "--counties", "all", "--realistic",
                             "--rate", str(args.rate), "--seconds", str(seconds), "--batch",
                             "100", "--run", "load", "--acks-out", acks, "--year",
                             str(args.year)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.5)
    label = f"{args.rate} ev/s ingest"
    measure(c, label)
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
