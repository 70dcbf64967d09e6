#!/usr/bin/env python3
# ctest-labels: integration security
"""Issue 15, items 7 and 11b: whoever can write into a county's spool plants symbolic links and a
named pipe, a link where the collector writes its errors file, and a linked done/ (while the
collector runs, and at its start); and secret key files others can read. The real collectors run
with CURVE (SecureCluster) beside a real aggregator.

Checked after the attacks: nothing outside the spool is read (the rows of a file reached only
through a link are not in the totals), written (a file a planted errors.csv.tmp link named keeps
its content) or moved (a linked done/ receives nothing); the pipe blocks nothing; every refusal
is counted in the collector's own status (spool_refused, its control socket: the aggregator's
/metrics cannot see a collector's counters) and logged; the collectors keep serving and
delivering honest files, whose totals equal the ones computed from them; a collector whose done/
is a link at start refuses to start, loudly. A secret key file that group or others can read
stops both daemons at start (exit 2, the file and `chmod 600` named); `aidstat keygen --out`
writes 0600 and never through a link."""
import csv
import io
import os
import stat
import sys

from aidstat_testlib import (SOURCE, assert_totals_equal, exe, expected_totals, gen_csv, live_rows,
                             parse_rows, run, wait_for)
from hostile import SecureCluster

YEAR = 2026
A, B = 360730, 360733


def with_bad_row(text, funds="=1+1"):
    """text (a generated CSV) with one more row, a copy of its first with a new event id and a
    funds cell that is rejected."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    bad = list(rows[1])
    bad[0] = bad[0] + "-bad"
    bad[12] = funds
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerow(bad)
    return text + out.getvalue()


def snapshot(folder):
    """{relative path: (kind, content or link target)} of everything under folder."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, folder)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read())
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def test(c):
    outside = os.path.join(c.dir, "outside")
    os.makedirs(os.path.join(outside, "elsewhere"))
    stolen = gen_csv([A], 40, YEAR, seed=99)  # rows only a link leads to: never counted
    with open(os.path.join(outside, "stolen.csv"), "w") as f:
        f.write(stolen)
    with open(os.path.join(outside, "victim.txt"), "w") as f:
        f.write("precious, not to be overwritten\n")
    before = snapshot(outside)

    c.start_aggregator()
    c.start_collector(A)
    c.start_collector(B)
    wait_for(lambda: all(c.collector_status(k)["connected"] for k in (A, B)), 30, "welcomed")

    # -- the attacks, planted before the honest files arrive -----------------------------------
    spool_a, done_a = c.spool(A), c.done(A)
    wait_for(lambda: os.path.isdir(done_a), 10, "done/ created")
    os.symlink(os.path.join(outside, "stolen.csv"), os.path.join(spool_a, "link.csv"))
    os.mkfifo(os.path.join(spool_a, "pipe.csv"))
    os.symlink(os.path.join(outside, "victim.txt"),
               os.path.join(done_a, "honest-a.csv.errors.csv.tmp"))
    # B's done/ swapped for a link to a folder outside while the collector runs
    done_b = c.done(B)
    wait_for(lambda: os.path.isdir(done_b), 10, "done/ created")
    os.rename(done_b, done_b + ".orig")
    os.symlink(os.path.join(outside, "elsewhere"), done_b)

    text_a = with_bad_row(gen_csv([A], 150, YEAR, seed=1))
    text_b = with_bad_row(gen_csv([B], 120, YEAR, seed=2), funds="@SUM(1+1)")
    c.drop(A, "honest-a.csv", text_a)
    c.drop(B, "honest-b.csv", text_b)

    rows = parse_rows(text_a)[:-1] + parse_rows(text_b)[:-1]  # the bad rows are rejected
    exp = expected_totals(live_rows(rows), YEAR, "county")
    wait_for(lambda: assert_totals_equal(c.query_json(YEAR, "county"), exp) or True, 120,
             "honest totals")
    c.wait_drained()
    wait_for(lambda: os.path.exists(os.path.join(done_a, "honest-a.csv")), 30, "a moved")
    wait_for(lambda: os.path.exists(os.path.join(done_b + ".orig", "honest-b.csv")), 30,
             "b moved into the done/ opened at start")

    # nothing outside read, written or moved
    assert snapshot(outside) == before, "something outside the spool changed"
    assert os.listdir(os.path.join(outside, "elsewhere")) == []
    # the planted link was removed (the link itself) and a real errors file written
    errs = os.path.join(done_a, "honest-a.csv.errors.csv")
    assert stat.S_ISREG(os.lstat(errs).st_mode)
    assert "=1+1" in open(errs, encoding="utf-8-sig").read()
    assert not os.path.lexists(os.path.join(done_a, "honest-a.csv.errors.csv.tmp"))
    assert os.path.exists(os.path.join(done_b + ".orig", "honest-b.csv.errors.csv"))
    # the link and the pipe are left where they are, never followed
    assert os.path.islink(os.path.join(spool_a, "link.csv"))
    assert stat.S_ISFIFO(os.lstat(os.path.join(spool_a, "pipe.csv")).st_mode)

    # counted and logged: link.csv, pipe.csv, the planted .tmp link in A; the swapped done/ in B
    sa, sb = c.collector_status(A), c.collector_status(B)
    assert sa.get("spool_refused", 0) >= 3, sa
    assert sb.get("spool_refused", 0) >= 1, sb
    log_a = c.collectors[A].log_text()
    assert "link.csv in the spool is a symbolic link" in log_a, log_a[-3000:]
    assert "pipe.csv in the spool is a named pipe" in log_a
    assert "no longer the folder opened at the start" in c.collectors[B].log_text()

    # the collectors keep serving and delivering
    more_a = gen_csv([A], 30, YEAR, seed=3)
    more_b = gen_csv([B], 30, YEAR, seed=4)
    c.drop(A, "more-a.csv", more_a)
    c.drop(B, "more-b.csv", more_b)
    rows += parse_rows(more_a) + parse_rows(more_b)
    c.assert_exactly_once(rows, YEAR, by=("county", "month"))
    assert c.serves()
    assert snapshot(outside) == before

    # -- a done/ that is a link at start: refused loudly, the collector does not run ------------
    assert c.collectors[B].stop() == 0
    c.drop(B, "waiting.csv", gen_csv([B], 5, YEAR, seed=5))
    p = run([exe("aidstat-collector"), "--county", str(B), "--data", c.collector_dir(B),
             "--aggregator", c.ingest, "--curve-secret", c.county_keys[B],
             "--aggregator-key", c.agg_public], check=False, timeout=30)
    assert p.returncode != 0, p
    assert "symbolic link" in p.stdout + p.stderr and "done" in p.stdout + p.stderr, p
    assert os.path.exists(os.path.join(c.spool(B), "waiting.csv"))
    assert snapshot(outside) == before
    # put right (done/ back), it starts and delivers what waited
    os.unlink(done_b)
    os.rename(done_b + ".orig", done_b)
    c.start_collector(B)
    wait_for(lambda: os.path.exists(os.path.join(done_b, "waiting.csv")), 60, "waiting taken")

    secret_permissions(c)


def secret_permissions(c):
    """11b: a secret key file readable by others stops both daemons; keygen --out is 0600."""
    keys = os.path.join(c.dir, "loose.key")
    run([exe("aidstat"), "keygen", "--out", keys])
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    os.chmod(keys, 0o644)  # what `aidstat keygen > loose.key` left with umask 022
    p = run(c.agg_args(("--curve-secret", keys, "--authorized-keys", c.authorized)),
            check=False, timeout=30)
    assert p.returncode == 2, p
    assert keys in p.stderr and "chmod 600" in p.stderr, p.stderr
    p = run([exe("aidstat-collector"), "--county", str(A), "--data",
             os.path.join(c.dir, "coll2"), "--aggregator", c.ingest, "--curve-secret", keys,
             "--aggregator-key", c.agg_public], check=False, timeout=30)
    assert p.returncode == 2, p
    assert keys in p.stderr and "chmod 600" in p.stderr, p.stderr
    os.chmod(keys, 0o640)
    p = run([exe("aidstat-collector"), "--county", str(A), "--data",
             os.path.join(c.dir, "coll2"), "--aggregator", c.ingest, "--curve-secret", keys,
             "--aggregator-key", c.agg_public], check=False, timeout=30)
    assert p.returncode == 2 and "chmod 600" in p.stderr, p
    # keygen --out never writes through a link, nor over an existing file
    victim = os.path.join(c.dir, "outside", "victim.txt")
    link = os.path.join(c.dir, "link.key")
    os.symlink(victim, link)
    p = run([exe("aidstat"), "keygen", "--out", link], check=False)
    assert p.returncode != 0, p
    assert open(victim).read() == "precious, not to be overwritten\n"
    # printing to a file others can read warns (the README shows --out instead)
    with open(os.path.join(c.dir, "printed.key"), "w") as f:
        os.chmod(f.name, 0o644)
        p = subprocess_run_to(f, [exe("aidstat"), "keygen"])
    assert "chmod 600" in p, p
    readme = open(os.path.join(SOURCE, "README.md")).read()
    assert "keygen >" not in readme, "README still shows `aidstat keygen > FILE`"
    # the aggregator still serves the honest counties
    assert c.serves()


def subprocess_run_to(f, args):
    import subprocess
    p = subprocess.run(args, stdout=f, stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 0, p
    return p.stderr


def main():
    c = SecureCluster([A, B], "test_hostile_spool")
    ok = False
    try:
        test(c)
        ok = True
    except BaseException:
        import traceback
        traceback.print_exc()
        c.dump_logs()
    finally:
        c.close(keep_on_failure=(not ok and bool(os.environ.get("AS_KEEP"))))
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
