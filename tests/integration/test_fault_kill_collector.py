#!/usr/bin/env python3
# ctest-labels: integration fault
"""kill -9 of a collector while it reads a file and while it sends: after a restart nothing is
lost and nothing is counted twice."""
import os
import time

from aidstat_testlib import gen_csv, live_rows, main, parse_rows, wait_for

YEAR = 2026
COUNTY = 360730


def test(c):
    c.start_aggregator()
    rows = []
    # 1. killed while reading: drop a big file and kill at once
    col = c.start_collector(COUNTY)
    time.sleep(0.5)
    text = gen_csv([COUNTY], 25000, YEAR, seed=21)
    rows += parse_rows(text)
    c.drop(COUNTY, "big.csv", text)
    time.sleep(0.3)
    assert not os.path.exists(os.path.join(c.done(COUNTY), "big.csv")), "read finished too soon"
    col.kill9()
    col = c.start_collector(COUNTY)
    # 2. killed while sending: another file, kill after it was taken, several times
    text2 = gen_csv([COUNTY], 80000, YEAR, seed=22)  # long enough to outlast three kills
    rows += parse_rows(text2)
    c.drop(COUNTY, "second.csv", text2)
    wait_for(lambda: os.path.exists(os.path.join(c.done(COUNTY), "second.csv")), 120,
             "second.csv taken")
    total = len(live_rows(rows))
    for delay in (0.2, 0.3, 0.4):
        time.sleep(delay)
        assert c.status_json()["ledger_seq"] < total, "delivery finished before the kill"
        col.kill9()
        col = c.start_collector(COUNTY)
    c.assert_exactly_once(rows, YEAR)


if __name__ == "__main__":
    main(test)
