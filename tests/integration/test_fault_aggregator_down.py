#!/usr/bin/env python3
# ctest-labels: integration fault
"""The aggregator down for a while, then back: the collectors keep the events in their outboxes
and deliver them when it returns; nothing lost, nothing twice."""
import time

from aidstat_testlib import (assert_totals_equal, expected_totals, gen_csv, live_rows, main,
                             parse_rows, wait_for)

YEAR = 2026
COUNTIES = [360730, 360321]


def test(c):
    rows = []
    for i, county in enumerate(COUNTIES):
        c.start_collector(county)
        text = gen_csv([county], 5000, YEAR, seed=30 + i)
        rows += parse_rows(text)
        c.drop(county, f"while-down-{county}.csv", text)
    # files are taken into the outbox although nobody is listening
    import os
    wait_for(lambda: all(os.path.exists(os.path.join(c.done(x), f"while-down-{x}.csv"))
                         for x in COUNTIES), 60, "files taken while the aggregator is down")
    time.sleep(3)  # several resend timeouts with nobody there
    c.start_aggregator()
    live = live_rows(rows)
    exp = expected_totals(live, YEAR, "county")
    wait_for(lambda: assert_totals_equal(c.query_json(YEAR, "county"), exp) or True, 120,
             "totals after the aggregator came back")
    c.wait_drained()
    # down again, more data, back again
    c.aggregator.stop()
    text = gen_csv([COUNTIES[0]], 2000, YEAR, seed=39)
    rows += parse_rows(text)
    c.drop(COUNTIES[0], "second.csv", text)
    time.sleep(2)
    c.start_aggregator()
    live = live_rows(rows)
    exp = expected_totals(live, YEAR, "county")
    wait_for(lambda: assert_totals_equal(c.query_json(YEAR, "county"), exp) or True, 120,
             "totals after the second outage")
    assert c.status_json()["ledger_seq"] == len(live)


if __name__ == "__main__":
    main(test)
