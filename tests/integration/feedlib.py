"""Helpers for the feed tests: subscribers (`aidstat tail` or the Python example) as processes
whose output goes to a file, loading events through real collectors, and the exactly-once check.
"""
import atexit
import json
import os
import signal
import subprocess
import sys
import time

from aidstat_testlib import BIN, SOURCE, exe, gen_csv, parse_rows, wait_for

YEAR = 2026
EXAMPLE = os.path.join(SOURCE, "examples", "python", "aidstat_subscriber.py")


def example_python():
    """An interpreter that has Debian's python3-zmq and python3-protobuf (the tests themselves
    need neither: ctest may run them with another python3)."""
    for py in (sys.executable, "/usr/bin/python3"):
        if py and subprocess.run([py, "-c", "import zmq, google.protobuf"],
                                 capture_output=True).returncode == 0:
            return py
    raise AssertionError("no python3 with zmq and google.protobuf: apt-get install python3-zmq "
                         "python3-protobuf (make test does)")


_RUNNING = []


@atexit.register
def _kill_left_over():
    """A test that failed half way must not leave its subscribers running."""
    for s in _RUNNING:
        if s.alive():
            s.proc.kill()
            s.proc.wait()


class Subscriber:
    """A running subscriber; stdout into a file (read back with lines()/seqs())."""

    def __init__(self, cluster, name, args=(), python=False):
        self.c = cluster
        self.name = name
        self.out_path = os.path.join(cluster.dir, f"{name}.out")
        self.err_path = os.path.join(cluster.dir, f"{name}.log")  # dumped on failure
        common = ["--feed", cluster.feed, "--endpoint", cluster.query, *map(str, args)]
        if python:
            cache = os.path.join(cluster.dir, "proto-cache")
            self.args = [example_python(), EXAMPLE, "--cache-dir", cache, *common]
        else:
            self.args = [exe("aidstat"), "tail", *common]
        self.out = open(self.out_path, "ab")
        self.err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.out, stderr=self.err)
        _RUNNING.append(self)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=120):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not finish within {timeout}s; it printed "
                                 f"{len(self.seqs())} events")
        self.close_files()
        return rc

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(30)

    def close_files(self):
        for f in (self.out, self.err):
            if not f.closed:
                f.close()

    def lines(self):
        with open(self.out_path, "rb") as f:
            data = f.read()
        # a line being written (or cut by a kill) may be incomplete, even inside a UTF-8
        # character: only whole lines count, and they are decoded one by one
        return [l.decode("utf-8") for l in data.split(b"\n")[:-1] if l]

    def events(self):
        return [json.loads(l) for l in self.lines()]

    def seqs(self):
        return [json.loads(l)["seq"] for l in self.lines()]

    def stderr_text(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_until_seq(self, seq, timeout=120):
        def reached():
            s = self.seqs()
            if not self.alive() and (not s or s[-1] < seq):
                raise AssertionError(f"{self.name} exited {self.proc.returncode} at "
                                     f"{s[-1] if s else None}:\n{self.stderr_text()[-2000:]}")
            return s and s[-1] >= seq
        wait_for(reached, timeout, f"{self.name} to print seq {seq}", interval=0.2)


def ledger_seq(c):
    return c.status_json()["ledger_seq"]


def load(c, counties, per_county, seed, tag, year=YEAR):
    """Drops a generated file of per_county events into each county's spool (collectors must
    run); returns the parsed rows. `aidstat gen` numbers event ids per county and year, so a
    second load into the same counties needs another year to be new events, not duplicates."""
    rows = []
    for i, county in enumerate(counties):
        text = gen_csv([county], per_county, year, seed=seed + i)
        rows += parse_rows(text)
        c.drop(county, f"{tag}-{county}.csv", text)
    return rows


def settle(c, counties, tags, timeout=180):
    """Waits until every named file was taken (moved to done/), every outbox is empty and the
    event log stopped growing; returns the newest sequence number."""
    def files_done():
        return all(os.path.exists(os.path.join(c.done(k), f"{t}-{k}.csv"))
                   for k in counties for t in tags)
    wait_for(files_done, timeout, "files to be taken", interval=0.2)
    c.wait_drained(counties, timeout)
    prev = [-1]

    def stable():
        s = ledger_seq(c)
        ok = s == prev[0]
        prev[0] = s
        return ok
    wait_for(stable, timeout, "the event log to stop growing", interval=0.5)
    return prev[0]


def assert_exactly_once(events, first, last, what):
    """events (parsed lines) hold every sequence first..last exactly once, in order, and no two
    share an event id."""
    seqs = [e["seq"] for e in events]
    if seqs != list(range(first, last + 1)):
        dup = len(seqs) - len(set(seqs))
        missing = sorted(set(range(first, last + 1)) - set(seqs))
        out_of_order = sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
        raise AssertionError(
            f"{what}: {len(seqs)} events for {first}..{last}: {dup} repeated, "
            f"{len(missing)} missing (first {missing[:10]}), {out_of_order} out of order")
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids), f"{what}: an event id appears twice"
