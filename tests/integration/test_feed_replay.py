#!/usr/bin/env python3
# ctest-labels: integration
"""The feed with replay: a subscriber started after 10,000 events, and one stopped and restarted
twice (once by itself in the replay, once by kill -9 while live events flow), each end with
every event exactly once, in sequence order."""
import os
import signal

from aidstat_testlib import main, wait_for
from feedlib import Subscriber, assert_exactly_once, load, settle

COUNTIES = [360730, 360733]


def test(c):
    c.start_aggregator()
    for k in COUNTIES:
        c.start_collector(k)
    load(c, COUNTIES, 5000, seed=1, tag="first")
    n1 = settle(c, COUNTIES, ["first"])
    assert n1 >= 10000, f"only {n1} events in the log after the first files"

    late = Subscriber(c, "late", ["--from", 1])
    # restarted: the first run stops by itself in the middle of the replay ...
    r1 = Subscriber(c, "restart-1", ["--from", 1, "--count", n1 // 3])
    assert r1.wait(120) == 0, r1.stderr_text()
    s1 = r1.seqs()
    assert len(s1) == n1 // 3
    # ... the second is killed with -9 while the second files arrive live ...
    r2 = Subscriber(c, "restart-2", ["--from", s1[-1] + 1])
    r2.wait_until_seq(n1)
    load(c, COUNTIES, 4000, seed=50, tag="second", year=2025)
    wait_for(lambda: r2.seqs() and r2.seqs()[-1] > n1 + 500, 120, "live events at restart-2",
             interval=0.05)
    r2.proc.send_signal(signal.SIGKILL)
    r2.wait(30)
    s2 = r2.seqs()  # what it had written completely: that is what it processed
    # ... and the third takes over from the last one the second wrote
    r3 = Subscriber(c, "restart-3", ["--from", s2[-1] + 1])
    n2 = settle(c, COUNTIES, ["second"])
    assert n2 >= n1 + 8000, f"{n2} events after the second files, {n1} before"

    for s in (late, r3):
        s.wait_until_seq(n2)
        assert s.stop() == 0, f"{s.name} did not exit 0 on SIGTERM"
    assert_exactly_once(late.events(), 1, n2, "late subscriber")
    assert_exactly_once(r1.events() + r2.events() + r3.events(), 1, n2, "restarted subscriber")
    print(f"log {n2} events; late subscriber and restarted one (stops at {s1[-1]} and "
          f"{s2[-1]}) saw each exactly once")


if __name__ == "__main__":
    main(test)
