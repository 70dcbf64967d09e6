#!/usr/bin/env python3
# ctest-labels: integration
"""Three collectors, files dropped into each spool: the provincial totals equal those computed
independently from the files, and `aidstat query` shows them per county, area and month."""
import os

from aidstat_testlib import (assert_totals_equal, expected_totals, gen_csv, live_rows, main,
                             parse_rows, wait_for)

YEAR = 2026
COUNTIES = [360730, 360733, 360124]


def test(c):
    c.start_aggregator()
    rows = []
    for i, county in enumerate(COUNTIES):
        c.start_collector(county)
        text = gen_csv([county], 3000, YEAR, seed=10 + i)
        rows += parse_rows(text)
        c.drop(county, f"activities-{county}.csv", text)
    live = live_rows(rows)

    for by in ("county", "area", "month", "province"):
        exp = expected_totals(live, YEAR, by)
        wait_for(lambda: assert_totals_equal(c.query_json(YEAR, by), exp, by) or True,
                 120, f"totals by {by}")
    # per county: area breakdown inside one county
    one = COUNTIES[0]
    exp = expected_totals([r for r in live if r["county_code"] == str(one)], YEAR, "area")
    assert_totals_equal(c.query_json(YEAR, "area", county=one), exp, f"area in {one}")

    # every file taken: moved to done/, every outbox drained
    for county in COUNTIES:
        assert os.path.exists(os.path.join(c.done(county), f"activities-{county}.csv"))
    c.wait_drained()
    st = c.status_json()
    assert len(st["collectors"]) == 3, st
    for county, d in c.collectors.items():
        assert d.stop() == 0, f"collector {county} did not exit 0 on SIGTERM"
    assert c.aggregator.stop() == 0, "aggregator did not exit 0 on SIGTERM"


if __name__ == "__main__":
    main(test)
