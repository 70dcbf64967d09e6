#!/usr/bin/env python3
# ctest-labels: integration security
"""Issue 15, item 12: one owner per data folder. A second aggregator started on the running one's
--data used to run beside it (the first then failed every commit with MDB_KEYEXIST until
restarted), and a second collector on a collector's folder took its control socket over. Now
each daemon locks DATA/.lock at start, before it opens anything:

- a second aggregator on the same --data exits 2 at once, naming the folder and the first one's
  pid, and changes nothing (the lock file still names the first); the first keeps committing:
  an honest collector keeps delivering and the totals equal the ones computed from the files;
- the same for a second collector on the same folder: exit 2 with the folder and pid, and the
  first one's control socket still answers and it keeps delivering;
- once the first aggregator has stopped, the folder is free again (no stale lock)."""
import os
import subprocess
import sys
import time
import traceback

from aidstat_testlib import exe, free_port, gen_csv, parse_rows, wait_for
from hostile import SecureCluster

YEAR = int(time.strftime("%Y"))
COUNTIES = [360730, 360733]


def second(args, what):
    """Runs a second daemon that must refuse: (exit code, output); fails if it keeps running."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"a second {what} on the same data folder kept running:\n{out}")
    return p.returncode, out


def lock_pid(data):
    with open(os.path.join(data, ".lock")) as f:
        return int(f.read().split()[0])


def test(c):
    c.start_aggregator()
    rows = []
    for i, k in enumerate(COUNTIES):
        c.start_collector(k)
        text = gen_csv([k], 300, YEAR, seed=10 + i)
        rows += parse_rows(text)
        c.drop(k, f"first-{k}.csv", text)
    c.assert_exactly_once(rows, YEAR, by=("county",))
    agg_data = os.path.join(c.dir, "aggregator")
    first_pid = c.aggregator.proc.pid

    # a second aggregator on the same folder, on endpoints of its own
    ledger_before = sorted(os.listdir(os.path.join(agg_data, "ledger")))
    args = [exe("aidstat-aggregator"), "--data", agg_data,
            "--ingest", f"tcp://127.0.0.1:{free_port()}", "--feed", f"tcp://127.0.0.1:{free_port()}",
            "--query", f"tcp://127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}",
            *c.secure_args()]
    rc, out = second(args, "aggregator")
    assert rc == 2, f"second aggregator: exit {rc}\n{out}"
    assert agg_data in out and str(first_pid) in out, out
    assert lock_pid(agg_data) == first_pid, "the refused aggregator rewrote the lock file"
    assert sorted(os.listdir(os.path.join(agg_data, "ledger"))) == ledger_before
    print(f"second aggregator on {agg_data}: exit 2, names pid {first_pid}")

    # the first keeps committing what the honest collectors deliver
    for i, k in enumerate(COUNTIES):
        text = gen_csv([k], 300, YEAR, seed=20 + i)
        rows += parse_rows(text)
        c.drop(k, f"second-{k}.csv", text)
    c.assert_exactly_once(rows, YEAR, by=("county",))
    assert c.serves()
    assert "MDB_KEYEXIST" not in c.aggregator.log_text()
    print("the first aggregator kept committing: totals equal the files")

    # a second collector on a collector's folder
    k = COUNTIES[0]
    col_data = c.collector_dir(k)
    col_pid = c.collectors[k].proc.pid
    rc, out = second([exe("aidstat-collector"), "--county", str(k), "--data", col_data,
                      "--aggregator", c.ingest, "--curve-secret", c.county_keys[k],
                      "--aggregator-key", c.agg_public], "collector")
    assert rc == 2, f"second collector: exit {rc}\n{out}"
    assert col_data in out and str(col_pid) in out, out
    assert lock_pid(col_data) == col_pid
    st = c.collector_status(k)  # the first one's control socket still answers
    assert st["backlog"] == 0, st
    print(f"second collector on {col_data}: exit 2, names pid {col_pid}; the first answers")
    text = gen_csv([k], 200, YEAR, seed=30)
    rows += parse_rows(text)
    c.drop(k, f"third-{k}.csv", text)
    c.assert_exactly_once(rows, YEAR, by=("county",))
    print("the first collector kept delivering: totals equal the files")

    # no stale lock: once the owner is gone, the folder is free again
    assert c.aggregator.stop() == 0
    c.start_aggregator()
    assert lock_pid(agg_data) == c.aggregator.proc.pid
    c.assert_exactly_once(rows, YEAR, by=("county",))
    print("after the first aggregator stopped, a new one took the folder")


if __name__ == "__main__":
    cluster = SecureCluster(COUNTIES, "test_hostile_datadir")
    ok = False
    try:
        test(cluster)
        ok = True
    except BaseException:
        traceback.print_exc()
        cluster.dump_logs()
    finally:
        cluster.close(keep_on_failure=(not ok and bool(os.environ.get("AS_KEEP"))))
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    sys.exit(0 if ok else 1)
