# ctest-labels: integration
"""aidstat gen | aidstat check against an independent oracle: with --bad 50, check rejects exactly
the rows that a validator written here in Python (from DESIGN.md's spreadsheet rules, not from the
C code) finds faulty — the same rows, not just the same count — and the good data has none. The
same files re-encoded in GB18030 give the same result. (test_gen_check.py covers the counts, exit
codes and usage errors.)"""
import csv
import datetime
import io
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ["AS_BIN"]
SRC = os.environ.get("AS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
AIDSTAT = os.path.join(BIN, "aidstat")
GEN = [AIDSTAT, "gen", "--counties", "360730,360733", "--events", "100000", "--year", "2026",
       "--seed", "1"]

USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
AREAS = {"deep_village", "industry", "education", "health", "relocation", "capacity_care",
         "other", "深度贫困村", "产业扶贫", "教育扶贫", "健康扶贫", "易地扶贫搬迁", "能力建设和关爱保障", "其他"}
ZH = {"县区代码": "county", "统一社会信用代码": "code", "帮扶领域": "area", "活动日期": "date",
      "村代码": "village", "受益人数": "ben", "建档立卡贫困人口数": "poor", "帮扶资金(元)": "funds",
      "备注": "note"}


def today_cst():
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).date()


def counties():
    with open(os.path.join(SRC, "data", "jiangxi-divisions.csv"), encoding="utf-8") as f:
        return {r["code"] for r in csv.DictReader(f) if r["level"] == "county"}


def uscc_ok(code):
    if len(code) != 18 or any(c not in USCC for c in code):
        return False
    s = sum(USCC.index(c) * w for c, w in zip(code[:17], USCC_W))
    return USCC[(31 - s % 31) % 31] == code[17]


def resident_id(s):
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    for m in re.finditer(r"(?<!\d)(\d{17}[\dXx])(?![\dXx])", s):
        n = m.group(1)
        if "10X98765432"[sum(int(a) * b for a, b in zip(n[:17], w)) % 11] == n[17].upper():
            return True
    return False


def faulty(r, jx, today):
    """The oracle: True when the row breaks a rule of DESIGN.md's spreadsheet table."""
    if r["county"] not in jx or not uscc_ok(r["code"].upper()):
        return True
    if r["area"] not in AREAS:
        return True
    try:
        y, m, d = (int(x) for x in re.split(r"[-/]", r["date"]))
        if datetime.date(y, m, d) > today:
            return True
    except ValueError:
        return True
    if r["village"] and not r["village"].startswith(r["county"]):
        return True
    if r["ben"].startswith("-") or int(r["poor"] or 0) > int(r["ben"] or 0):
        return True
    if re.search(r"\.\d{3}", r["funds"]) or r["funds"].startswith("-"):
        return True
    if re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", r["note"]) or resident_id(r["note"]):
        return True
    return False


def rows_of(text):
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = next(reader)
    idx = {ZH[h]: i for i, h in enumerate(header) if h in ZH}
    assert len(idx) == len(ZH), f"gen header lacks columns: {header}"
    return [{k: cells[i].strip() for k, i in idx.items()} for cells in reader]


def check(path):
    p = subprocess.run([AIDSTAT, "check", path], capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def summary(out):
    m = re.search(r"(\d+) rows read, (\d+) accepted, (\d+) rejected", out)
    assert m, f"no summary line in: {out[-500:]}"
    return tuple(int(x) for x in m.groups())


def rejected_rows(out):
    rows = set()
    for line in out.splitlines():
        m = re.match(r"^(.*?):(\d+): (\w+) \"(.*)\": (.+) / (.+)$", line)
        if m:
            assert m.group(5).strip() and m.group(6).strip(), line
            rows.add(int(m.group(2)))
    return rows


def main():
    jx, today = counties(), today_cst()
    with tempfile.TemporaryDirectory() as tmp:
        good = subprocess.run(GEN, capture_output=True, check=True, timeout=300).stdout
        text = good.decode("utf-8")
        rows = rows_of(text)
        assert len(rows) == 100000, len(rows)
        oracle = [i for i, r in enumerate(rows, 1) if faulty(r, jx, today)]
        assert oracle == [], f"the oracle finds faulty rows in good data: {oracle[:5]}"
        assert {r["county"] for r in rows} == {"360730", "360733"}

        gb = os.path.join(tmp, "台账-gb18030.csv")
        with open(gb, "wb") as f:
            f.write(text.lstrip("\ufeff").encode("gb18030"))
        rc, out, err = check(gb)
        assert rc == 0 and summary(out) == (100000, 100000, 0), out[-1000:] + err

        bad = subprocess.run(GEN + ["--bad", "50"], capture_output=True, check=True,
                             timeout=300).stdout
        path = os.path.join(tmp, "bad.csv")
        with open(path, "wb") as f:
            f.write(bad)
        rows = rows_of(bad.decode("utf-8"))
        oracle = {i for i, r in enumerate(rows, 1) if faulty(r, jx, today)}
        assert len(oracle) == 50, f"the oracle finds {len(oracle)} faulty rows, not 50"
        rc, out, err = check(path)
        assert rc == 1, f"exit {rc}"
        assert summary(out) == (100000, 99950, 50), out[-1000:]
        reported = rejected_rows(out)
        assert reported == oracle, (f"reported but not faulty: {sorted(reported - oracle)[:5]}; "
                                    f"faulty but not reported: {sorted(oracle - reported)[:5]}")
        with open(os.path.join(tmp, "bad-gb.csv"), "wb") as f:
            f.write(bad.decode("utf-8").lstrip("\ufeff").encode("gb18030"))
        rc, out2, err = check(os.path.join(tmp, "bad-gb.csv"))
        assert rc == 1 and rejected_rows(out2) == oracle, out2[-1000:]

        again = subprocess.run(GEN + ["--bad", "50"], capture_output=True, check=True).stdout
        assert again == bad, "same seed, different bytes"
    print("gen|check: good rows accepted (UTF-8 and GB18030); --bad 50 rejected exactly the 50 "
          "rows the oracle finds")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
