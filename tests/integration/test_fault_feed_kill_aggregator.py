#!/usr/bin/env python3
# ctest-labels: integration fault
"""kill -9 of the aggregator, three times, while subscribers (`aidstat tail` and the Python
example) follow the feed and collectors deliver: after each restart the subscribers continue
without a gap or a repeat."""
import random
import time

from aidstat_testlib import main
from feedlib import Subscriber, assert_exactly_once, load, settle

COUNTIES = [360730, 360733]


def test(c):
    rnd = random.Random(11)
    c.start_aggregator()
    for k in COUNTIES:
        c.start_collector(k)
    subs = [Subscriber(c, "tail", ["--from", 1]),
            Subscriber(c, "python", ["--from", 1], python=True)]
    time.sleep(1.0)
    load(c, COUNTIES, 8000, seed=21, tag="stream")
    for _ in range(3):
        time.sleep(rnd.uniform(0.3, 1.5))
        c.aggregator.kill9()
        time.sleep(rnd.uniform(0.2, 1.0))
        c.start_aggregator()
    n = settle(c, COUNTIES, ["stream"], timeout=240)
    assert n >= 16000, f"only {n} events in the log"
    for s in subs:
        s.wait_until_seq(n, 180)
        assert s.stop() == 0, f"{s.name} did not exit 0 on SIGTERM"
        assert_exactly_once(s.events(), 1, n, s.name)
    print(f"{n} events through 3 kills; both subscribers saw each exactly once")


if __name__ == "__main__":
    main(test)
