#!/usr/bin/env python3
# ctest-labels: integration browser
"""The year-end report through the real daemons: registry import, generated activities from two
counties, `aidstat report` (draft, then --final), the files in reports/Y/ (CSV with BOM per table,
report.json, report.html, a folder per supervisory unit), the summary equal to figures computed
here from the files; the HTML page printed to PDF by headless Chromium, whose text (pdftotext)
holds the summary figures on several pages; after --final, a late file for that year leaves the
published files unchanged and shows up in amended/08_amendments.csv."""
import csv
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time

from aidstat_testlib import (expected_totals, gen_csv, live_rows, main, parse_rows, run,
                             wait_for)

# this year (+08:00): its deadline (12-31) has not passed, so the daemon's clock does not lock it
# while the test runs
YEAR = time.gmtime(time.time() + 8 * 3600).tm_year
COUNTIES = [360730, 360124]


def yuan(fen):
    return f"{fen // 100}.{fen % 100:02d}"


def read_csv(path):
    with open(path, "rb") as f:
        raw = f.read()
    assert raw.startswith(b"\xef\xbb\xbf"), f"{path} has no BOM"
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))


def tree_digest(root):
    out = {}
    for p in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
        rel = os.path.relpath(p, root)
        if os.path.isfile(p) and not rel.startswith("amended"):
            with open(p, "rb") as f:
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


SUBSCRIBER = r'''
import sys, zmq
s = zmq.Context().socket(zmq.SUB)
s.connect(sys.argv[1])
s.setsockopt(zmq.SUBSCRIBE, b"report.")
while True:
    parts = s.recv_multipart()
    print(parts[0].decode(), len(parts), parts[2].hex(), flush=True)
'''


def zmq_python():
    for py in (sys.executable, "/usr/bin/python3"):
        if py and subprocess.run([py, "-c", "import zmq"], capture_output=True).returncode == 0:
            return py
    return None


def registry_for(rows):
    """A registry holding every organisation of the data but the last, under two units."""
    orgs = sorted({(r["org_credit_code"].upper(), r["org_name"]) for r in rows})
    lines = ["统一社会信用代码,组织名称,类型,级别,业务主管单位,公开募捐资格"]
    for i, (code, name) in enumerate(orgs[:-1]):
        unit = "江西省民政厅" if i % 2 == 0 else "江西省乡村振兴局"
        level = "省级" if i % 3 == 0 else "县级"
        lines.append(f"{code},{name.replace(',', ' ')},社会团体,{level},{unit},{'是' if i % 2 else '否'}")
    return "\n".join(lines) + "\n", orgs[-1][0]


def test(c):
    c.start_aggregator(extra=["--draft-interval", "0"])
    rows = []
    texts = {}
    for i, county in enumerate(COUNTIES):
        texts[county] = gen_csv([county], 1500, YEAR, seed=40 + i)
        rows += parse_rows(texts[county])
    reg_text, unregistered = registry_for(rows)
    reg_path = os.path.join(c.dir, "registry.csv")
    with open(reg_path, "w", encoding="utf-8") as f:
        f.write(reg_text)
    out = c.cli("registry", "import", reg_path).stdout
    assert "imported" in out, out

    for county in COUNTIES:
        c.start_collector(county)
        c.drop(county, f"activities-{county}.csv", texts[county])
    live = live_rows(rows)
    exp = expected_totals(live, YEAR, "province")["360000"]
    wait_for(lambda: c.query_json(YEAR)["total"]["activities"] == exp["activities"], 120,
             "every activity in the ledger")

    # the draft, with a feed subscriber listening for report.Y
    sub, sub_out = None, os.path.join(c.dir, "sub.out")
    py = zmq_python()
    if py:
        sub = subprocess.Popen([py, "-c", SUBSCRIBER, c.feed], stdout=open(sub_out, "w"))
        time.sleep(1.0)  # the PUB's slow joiner
    out = c.cli("report", "--year", str(YEAR)).stdout
    if sub:
        # ReportNotice: field 1 (year) as a varint first
        want = f"report.{YEAR} 3 08{(YEAR & 0x7f | 0x80):02x}{YEAR >> 7:02x}"

        def seen():
            with open(sub_out) as f:
                return any(line.startswith(want) for line in f)
        try:
            wait_for(seen, 20, "report.Y on the feed")
        finally:
            sub.kill()
            sub.wait()
    else:
        print("(no python3-zmq: report.Y on the feed not checked)", file=sys.stderr)
    rdir = os.path.join(c.dir, "aggregator", "reports", str(YEAR))
    assert os.path.isdir(rdir), out
    for name in ("01_summary.csv", "02_supervisors.csv", "03_counties.csv", "04_groups.csv",
                 "05_areas.csv", "05_funding.csv", "06_effects.csv", "07_targets.csv",
                 "08_completeness.csv", "08_flags.csv", "08_amendments.csv", "report.json",
                 "report.html"):
        assert os.path.exists(os.path.join(rdir, name)), name
    assert len(glob.glob(os.path.join(rdir, "units", "*", "report.html"))) == 2

    s = read_csv(os.path.join(rdir, "01_summary.csv"))
    head, row = s[0], s[1]
    col = {h: i for i, h in enumerate(head)}
    assert row[col["活动数"]] == str(exp["activities"])
    assert row[col["参与组织数"]] == str(exp["organisations"])
    assert row[col["受益人数"]] == str(exp["beneficiaries"])
    assert row[col["帮扶资金(元)"]] == yuan(exp["funds_fen"])
    assert row[col["覆盖村数"]] == str(exp["villages"])
    assert row[col["覆盖县数"]] == "2"
    with open(os.path.join(rdir, "report.json"), encoding="utf-8") as f:
        rep = json.load(f)
    assert rep["final"] is False
    assert rep["tables"]["01_summary"]["rows"][0]["funds_fen"] == exp["funds_fen"]

    # unregistered activities flagged: the registry lacks one organisation
    n_unreg = sum(1 for r in live if r["activity_date"].startswith(str(YEAR))
                  and r["org_credit_code"].upper() == unregistered)
    flags = read_csv(os.path.join(rdir, "08_flags.csv"))
    total = [r for r in flags if r[0] == "total"][0]
    assert total[2] == str(n_unreg), (total, n_unreg)

    # the page in headless Chromium, printed to PDF, read back
    pdf = os.path.join(c.dir, "report.pdf")
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", "file://" + os.path.join(rdir, "report.html")], timeout=180)
    assert os.path.getsize(pdf) > 1000
    text = run(["pdftotext", "-layout", pdf, "-"]).stdout
    pages = text.count("\f")
    assert pages >= 8, f"{pages} pages: one part a page at least"
    for fig in (str(exp["activities"]), yuan(exp["funds_fen"]), str(exp["beneficiaries"])):
        assert fig in text, f"{fig} not in the printed page"
    assert "总体情况" in text and "数据质量" in text

    # final, then a late file for the year: published files unchanged, amendments listed
    out = c.cli("report", "--year", str(YEAR), "--final").stdout
    before = tree_digest(rdir)
    with open(os.path.join(rdir, "report.json"), encoding="utf-8") as f:
        assert json.load(f)["final"] is True
    late = gen_csv([COUNTIES[0]], 5, YEAR, seed=99)
    c.drop(COUNTIES[0], "late.csv", late)
    late_live = [r for r in live_rows(parse_rows(late)) if r["activity_date"].startswith(str(YEAR))]
    wait_for(lambda: c.query_json(YEAR)["total"]["activities"] ==
             exp["activities"] + len(late_live), 60, "the late activities")
    c.cli("report", "--year", str(YEAR), "--final")
    c.cli("report", "--year", str(YEAR))
    assert tree_digest(rdir) == before, "published files changed"
    am = read_csv(os.path.join(rdir, "amended", "08_amendments.csv"))
    assert len(am) - 1 == len(late_live), am
    assert read_csv(os.path.join(rdir, "08_amendments.csv"))[1:] == []

    for d in c.collectors.values():
        assert d.stop() == 0
    assert c.aggregator.stop() == 0


if __name__ == "__main__":
    main(test)
