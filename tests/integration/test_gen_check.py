# ctest-labels: integration
"""aidstat gen | aidstat check: generated sample data passes the validator row for row, and with
--bad N exactly those N rows are reported (the rows gen made bad on purpose, nothing else)."""
import os
import re
import subprocess
import sys

AIDSTAT = os.path.join(os.environ["AS_BIN"], "aidstat")
GEN = [AIDSTAT, "gen", "--counties", "360730,360733", "--events", "100000", "--year", "2026",
       "--seed", "1"]
ROW = re.compile(r"^<stdin>:(\d+): ")


def gen_check(extra, check_args=()):
    gen = subprocess.Popen(GEN + list(extra), stdout=subprocess.PIPE)
    check = subprocess.run([AIDSTAT, "check", *check_args, "-"], stdin=gen.stdout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=240)
    gen.stdout.close()
    assert gen.wait(timeout=60) == 0, "aidstat gen failed"
    return check.returncode, check.stdout.decode("utf-8"), check.stderr.decode("utf-8")


def summary(out):
    last = out.strip().splitlines()[-1]
    m = re.search(r"(\d+) rows read, (\d+) accepted, (\d+) rejected", last)
    assert m, f"no summary line: {last!r}"
    return tuple(int(x) for x in m.groups())


def main():
    rc, out, err = gen_check([])
    assert rc == 0, f"check rejected generated rows (exit {rc}):\n{out[-3000:]}{err}"
    assert summary(out) == (100000, 100000, 0), out[-500:]
    assert not [l for l in out.splitlines() if ROW.match(l)], "rows reported for a clean file"
    print("clean: 100000 rows accepted, exit 0")

    rc, out, err = gen_check(["--bad", "50"], ["--stats"])
    rows = {int(ROW.match(l).group(1)) for l in out.splitlines() if ROW.match(l)}
    assert rc == 1, f"check exit {rc} with bad rows"
    assert len(rows) == 50, f"{len(rows)} rows reported, want 50:\n{out[-3000:]}"
    assert summary(out) == (100000, 99950, 50), out[-500:]
    for line in out.splitlines():
        if ROW.match(line):  # each error names its column and gives both reasons
            assert " / " in line and re.match(r"^<stdin>:\d+: [a-z_]+ ", line), line
    assert "rows/s" in err, err
    print("bad: exactly 50 rows reported, exit 1;", err.strip())

    # a usage error is exit 2, and a missing file is a file-level error (exit 1)
    assert subprocess.run([AIDSTAT, "check"], capture_output=True).returncode == 2
    assert subprocess.run([AIDSTAT, "check", "--county", "123", "-"],
                          capture_output=True).returncode == 2
    missing = subprocess.run([AIDSTAT, "check", "/nonexistent/x.csv"], capture_output=True)
    assert missing.returncode == 1 and b"/nonexistent/x.csv" in missing.stdout, missing
    assert subprocess.run([AIDSTAT, "nosuchcommand"], capture_output=True).returncode == 2
    print("usage errors exit 2, a missing file exits 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
