#!/usr/bin/env python3
# ctest-labels: integration
"""The same file dropped twice and a longer version of it dropped later never double-count;
a correction moves the totals by the difference; a retraction withdraws the event; a retraction
of an event that is not live is rejected with its reason and changes nothing."""
import csv
import io
import os

from aidstat_testlib import (assert_totals_equal, expected_totals, gen_csv, live_rows, main,
                             parse_rows, wait_for, EN)

YEAR = 2026
COUNTY = 360733


def to_csv(rows):
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=EN, lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in EN})
    return out.getvalue()


def test(c):
    c.start_aggregator()
    c.start_collector(COUNTY)
    full = parse_rows(gen_csv([COUNTY], 1200, YEAR, seed=5))
    for r in full:
        r.pop("event_id", None)  # identity derived from content
    short = full[:800]
    c.drop(COUNTY, "a.csv", to_csv(short))
    wait_for(lambda: os.path.exists(os.path.join(c.done(COUNTY), "a.csv")), 60, "a.csv taken")
    c.drop(COUNTY, "a-again.csv", to_csv(short))
    c.drop(COUNTY, "a-longer.csv", to_csv(full))

    # explicit ids, a correction chain and retractions
    base = dict(full[0])
    e1 = dict(base, event_id="CORR-1", funds_yuan="1000.00")
    e2 = dict(base, event_id="CORR-2", correction_of="CORR-1", funds_yuan="1500.50")
    e3 = dict(base, event_id="CORR-3", correction_of="CORR-2", funds_yuan="1499.50",
              beneficiaries="3", registered_poor="1")
    r1 = dict(full[1], event_id="GONE-1")
    r2 = dict(full[1], event_id="GONE-2", correction_of="GONE-1", retract="是")
    bad = dict(full[1], event_id="GONE-3", correction_of="NEVER-SENT", retract="是")
    c.drop(COUNTY, "b.csv", to_csv([e1, r1]))
    wait_for(lambda: os.path.exists(os.path.join(c.done(COUNTY), "b.csv")), 60, "b.csv taken")
    c.drop(COUNTY, "c.csv", to_csv([e2, e3, r2, bad]))

    rows = full + [e1, r1, e2, e3, r2]  # `bad` is rejected: it must change nothing
    live = live_rows(rows)
    for by in ("county", "month", "area"):
        exp = expected_totals(live, YEAR, by)
        wait_for(lambda: assert_totals_equal(c.query_json(YEAR, by), exp, by) or True, 90,
                 f"totals by {by}")
    st = c.status_json()
    col = [x for x in st["collectors"] if int(x["county"]) == COUNTY][0]
    assert col["rejected"] >= 1, f"the retraction of a never-sent event was not rejected: {col}"


if __name__ == "__main__":
    main(test)
