#!/usr/bin/env python3
# ctest-labels: integration fault
"""kill -9 of the aggregator at random points during delivery, several times in one run:
nothing is lost, nothing is counted twice, every outbox drains to zero."""
import random
import time

from aidstat_testlib import (assert_totals_equal, expected_totals, gen_csv, live_rows, main,
                             parse_rows, wait_for)

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
    live = live_rows(rows)
    exp = expected_totals(live, YEAR, "county")
    wait_for(lambda: assert_totals_equal(c.query_json(YEAR, "county"), exp) or True, 180,
             "totals after the kills")
    c.wait_drained()
    for by in ("month", "area"):
        assert_totals_equal(c.query_json(YEAR, by), expected_totals(live, YEAR, by), by)
    st = c.status_json()
    assert st["ledger_seq"] == len(live), f"event log holds {st['ledger_seq']}, expected {len(live)}"


if __name__ == "__main__":
    main(test)
