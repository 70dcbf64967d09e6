#!/usr/bin/env python3
# ctest-labels: integration
"""A subscriber too slow for the PUB high-water mark: the aggregator runs with a tiny feed HWM,
the subscriber is stopped (SIGSTOP) while 30,000 events are published; the PUB socket drops
what does not fit, and after SIGCONT the subscriber recovers every dropped event by replay."""
import os
import signal
import time

from aidstat_testlib import main, wait_for
from feedlib import Subscriber, assert_exactly_once, ledger_seq, load, settle

COUNTIES = [360730, 360733]


def test(c):
    c.start_aggregator(extra=["--feed-hwm", "10"])
    for k in COUNTIES:
        c.start_collector(k)
    slow = Subscriber(c, "slow", ["--from", 1])
    fast = Subscriber(c, "fast", ["--from", 1])
    time.sleep(1.0)  # both connected and following (the log is empty)
    os.kill(slow.proc.pid, signal.SIGSTOP)
    try:
        load(c, COUNTIES, 8000, seed=3, tag="burst")
        n = settle(c, COUNTIES, ["burst"])
    finally:
        os.kill(slow.proc.pid, signal.SIGCONT)
    assert n >= 16000, f"only {n} events in the log"
    for s in (slow, fast):
        s.wait_until_seq(n, 180)
        assert s.stop() == 0, f"{s.name} did not exit 0 on SIGTERM"
        assert_exactly_once(s.events(), 1, n, s.name)
    notes = slow.stderr_text()
    assert "gap filled by replay" in notes, (
        "the stopped subscriber lost nothing live: the test did not exercise the high-water "
        "mark (is --feed-hwm applied to the PUB socket?)\n" + notes[-2000:])
    print(f"{n} events; the stopped subscriber filled these gaps by replay:\n"
          + "\n".join(l for l in notes.splitlines() if "gap filled" in l)[:2000])


if __name__ == "__main__":
    main(test)
