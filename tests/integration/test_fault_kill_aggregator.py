#!/usr/bin/env python3
# ctest-labels: integration fault
"""kill -9 of the aggregator at random points during delivery, several times in one run:
nothing is lost, nothing is counted twice, every outbox drains to zero."""
import random
import time

from aidstat_testlib import gen_csv, main, parse_rows

YEAR = 2026
COUNTIES = [360730, 360733]


def test(c):
    rnd = random.Random(7)
    c.start_aggregator()
    rows = []
    for i, county in enumerate(COUNTIES):
        c.start_collector(county)
    for i, county in enumerate(COUNTIES):
        text = gen_csv([county], 15000, YEAR, seed=100 + i)
        rows += parse_rows(text)
        c.drop(county, f"big-{county}.csv", text)
    total = len(rows)
    in_flight = 0
    for k in range(4):
        time.sleep(rnd.uniform(0.2, 1.5))
        try:
            seq = c.status_json()["ledger_seq"]
        except AssertionError:
            seq = 0  # not answering yet: still starting
        in_flight += seq < total
        c.aggregator.kill9()
        time.sleep(rnd.uniform(0.1, 1.0))
        c.start_aggregator()
    assert in_flight >= 3, f"only {in_flight} of 4 kills hit a delivery in progress"
    c.assert_exactly_once(rows, YEAR, ("county", "month", "area"))


if __name__ == "__main__":
    main(test)
