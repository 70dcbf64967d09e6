# ctest-labels: integration
"""The aggregator daemon with the aidstat CLI, no collectors: a real aidstat-aggregator in a temp
folder on free loopback ports; query (json, csv, table) and status on an empty ledger, backup of
the live ledger, keygen's file format, a clear error when nothing answers, a CURVE start with
keys from aidstat keygen, and SIGTERM → exit 0."""
import json
import os
import signal
import subprocess
import sys

from aidstat_testlib import Cluster, exe, free_port, main, run, wait_for

MEASURES = ["activities", "organisations", "beneficiaries", "registered_poor", "funds_fen",
            "goods_fen", "volunteers", "volunteer_hours", "social_workers", "persons_lifted",
            "jobs", "trainees", "income_increase_fen", "villages", "deep_poverty_villages",
            "counties"]


def test(c):
    agg = c.start_aggregator()

    # query on an empty ledger: the JSON shape of DESIGN.md
    q = c.query_json(2026, "county")
    assert q["year"] == 2026 and q["by"] == "county" and q["rows"] == [], q
    assert list(q["total"].keys()) == MEASURES, list(q["total"].keys())
    assert all(q["total"][m] == 0 for m in MEASURES), q["total"]
    csv = c.cli("query", "--year", "2026", "--by", "month", "--format", "csv").stdout
    assert csv.splitlines()[0].startswith("key,name,activities,organisations"), csv
    assert csv.splitlines()[-1].startswith("total,"), csv
    table = c.cli("query", "--year", "2026").stdout
    assert "资金(元)" in table and "0.00" in table, table
    bad = c.cli("query", "--year", "2026", "--by", "planet", check=False)
    assert bad.returncode == 2 and "--by" in bad.stderr, bad
    for cmd in ("query", "status", "keygen", "backup"):
        h = run([exe("aidstat"), cmd, "--help"])
        assert "usage: aidstat " + cmd in h.stdout, h.stdout

    # status: no collectors yet, ledger at 0
    st = c.status_json()
    assert st["ledger_seq"] == 0 and st["collectors"] == [], st
    assert "ledger seq" in c.cli("status").stdout

    # backup of the live ledger into a new folder
    bdir = os.path.join(c.dir, "backup")
    out = c.cli("backup", bdir).stdout
    assert "backup" in out, out
    assert os.path.exists(os.path.join(bdir, "data.mdb")), os.listdir(bdir)

    # no aggregator there: a clear error, not a hang
    dead = f"tcp://127.0.0.1:{free_port()}"
    p = run([exe("aidstat"), "status", "--endpoint", dead, "--timeout", "1"], check=False,
            timeout=20)
    assert p.returncode == 1 and "did not answer" in p.stderr, p

    # SIGTERM: exit 0, and it said it was running plain
    assert agg.stop() == 0, "aggregator did not exit 0 on SIGTERM"
    log = agg.log_text()
    assert "WITHOUT CURVE" in log, log

    # keygen: the file both daemons read; CURVE on with an authorized-keys file
    keys = os.path.join(c.dir, "aggregator.key")
    run([exe("aidstat"), "keygen", "--out", keys])
    text = open(keys).read()
    assert any(l.startswith("public = ") and len(l.split()[-1]) == 40 for l in text.splitlines())
    assert any(l.startswith("secret = ") and len(l.split()[-1]) == 40 for l in text.splitlines())
    assert oct(os.stat(keys).st_mode & 0o777) == "0o600"
    line = run([exe("aidstat"), "keygen", "--county", "360730"]).stdout.splitlines()[-1]
    ak = os.path.join(c.dir, "authorized_keys")
    with open(ak, "w") as f:
        f.write("# collectors\n" + line + "\n")
    agg = c.start_aggregator(extra=("--curve-secret", keys, "--authorized-keys", ak))
    assert c.status_json()["ledger_seq"] == 0
    agg.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "collector keys in force" in agg.log_text().split("SIGHUP", 1)[-1], 10,
             "keys reloaded on SIGHUP")
    assert agg.stop() == 0
    assert agg.log_text().count("WITHOUT CURVE") == 1, "the CURVE run warned about plain ingest"

    # half a CURVE configuration is refused at start
    p = run(c.agg_args(("--curve-secret", keys)), check=False, timeout=20)
    assert p.returncode != 0 and "authorized-keys" in p.stderr, p


if __name__ == "__main__":
    main(test)
