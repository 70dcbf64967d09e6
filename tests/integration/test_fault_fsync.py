#!/usr/bin/env python3
# ctest-labels: integration fault
"""A disk that refuses to sync: once the ledger's fdatasync fails (an LD_PRELOAD shim,
fail_fsync.c, makes it fail while a flag file exists), the aggregator acknowledges nothing more
and exits 1; the collector keeps every unacknowledged event; restarted on a sound disk, the
aggregator takes them again, and the totals equal those computed from the files — nothing lost,
nothing counted twice."""
import os

from aidstat_testlib import gen_csv, main, parse_rows, wait_for

YEAR = 2026
COUNTY = 360730


def test(c):
    shim = os.path.join(os.environ["AS_BUILD_DIR"], "tests", "libfail_fsync.so")
    assert os.path.exists(shim), shim
    flag = os.path.join(c.dir, "fail-fsync")
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = dict(os.environ, LD_PRELOAD=shim, AS_FAIL_FSYNC_PATH="/ledger/data.mdb",
               AS_FAIL_FSYNC_FLAG=flag,
               # the shim comes before the sanitizer runtime of an ASan build
               ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
    agg = c.start_aggregator(env=env)
    c.start_collector(COUNTY)
    rows = []
    first = gen_csv([COUNTY], 2000, YEAR, seed=41)
    rows += parse_rows(first)
    c.drop(COUNTY, "a.csv", first)
    wait_for(lambda: os.path.exists(os.path.join(c.done(COUNTY), "a.csv")), 60, "a.csv taken")
    c.wait_drained()
    assert c.collector_status(COUNTY)["backlog"] == 0

    # the disk fails: the next group is committed but its fsync fails
    open(flag, "w").close()
    second = gen_csv([COUNTY], 3000, YEAR, seed=42)
    rows += parse_rows(second)
    c.drop(COUNTY, "b.csv", second)
    wait_for(lambda: not agg.alive(), 60, "the aggregator to stop after the failed fsync")
    assert agg.proc.returncode == 1, f"exit status {agg.proc.returncode}, want 1"
    with open(os.path.join(c.dir, "aggregator.log"), errors="replace") as f:
        log = f.read()
    assert "the ledger's fsync failed" in log, "no log line for the failed fsync"
    assert "exit status 1" in log
    # nothing of b.csv was acknowledged: the collector still holds all of it
    wait_for(lambda: os.path.exists(os.path.join(c.done(COUNTY), "b.csv")), 60, "b.csv taken")
    held = c.collector_status(COUNTY)["backlog"]
    assert held == len(parse_rows(second)), f"backlog {held} after the failure, want {len(parse_rows(second))}"

    # a sound disk again: everything arrives once
    os.remove(flag)
    c.start_aggregator()
    c.assert_exactly_once(rows, YEAR)


if __name__ == "__main__":
    main(test)
