#!/usr/bin/env python3
# ctest-labels: integration security
"""Issue 15, items 9 and 11e, through the real collector (CURVE) and aggregator.

Formula injection: an office's file carries cells a spreadsheet would run — `=cmd|' /C calc'!A0`,
`+1+1`, `@SUM(1+1)`, `=HYPERLINK(…)`, `-2+3` — as organisation names (accepted rows) and as
rejected values. Every CSV the product writes from them (the collector's errors.csv, the report's
tables, `aidstat query --format csv`) must hold each such cell neutralised (a single quote in
front, inside the quoted cell), while the product's own numbers, negative ones too, stay
numbers.

One invalid byte: a UTF-8 file with one byte that is no character in one row keeps every other
row (the totals equal the ones computed without that row), and errors.csv names that row and
column: "无效的字符编码 / invalid character encoding"."""
import csv
import glob
import io
import os
import re
import sys

from aidstat_testlib import (assert_totals_equal, expected_totals, gen_csv, live_rows,
                             parse_rows, wait_for)
from hostile import SecureCluster

YEAR = 2026
A = 360730
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(1+1)", '=HYPERLINK("http://evil.example/","x")',
            "-2+3"]
NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?%?$")


def uscc(first17):
    """first17 with its GB 32100-2015 check character: a valid code no registry holds."""
    cs = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    w = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    c = 31 - sum(cs.index(ch) * k for ch, k in zip(first17, w)) % 31
    return first17 + cs[0 if c == 31 else c]


def table(text):
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


def write(rows):
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return "\ufeff" + out.getvalue()


def live_formulas(cells, where):
    """The cells a spreadsheet would evaluate: a formula lead that is not one of our numbers."""
    bad = [x for x in cells if x and x[0] in "=+-@\t\r" and not NUMBER.match(x)]
    assert not bad, f"{where}: live formula cells {bad[:5]}"


def test(c):
    c.start_aggregator()
    c.start_collector(A)

    # -- formulas: as organisation names (accepted) and as rejected values ---------------------
    t = table(gen_csv([A], 40, YEAR, seed=11))
    head, body = t[0], t[1:]
    name, funds, date = head.index("组织名称"), head.index("帮扶资金(元)"), head.index("活动日期")
    code = head.index("统一社会信用代码")
    for i, f in enumerate(FORMULAS):  # organisations of their own, unregistered: flagged, named
        body[i][name] = f
        body[i][code] = uscc(f"51360730MJX00000{i}")
    rejected = []
    for i, (col, value) in enumerate([(funds, "=1+1"), (date, "@SUM(1+1)"), (funds, "-5")]):
        r = list(body[10 + i])
        r[0] += "-bad"
        r[col] = value
        rejected.append(r)
    formulas_text = write([head] + body + rejected)
    c.drop(A, "formulas.csv", formulas_text)

    # -- one invalid byte in one row of a UTF-8 file -------------------------------------------
    t2 = table(gen_csv([A], 30, YEAR, seed=12))
    raw = write(t2).encode("utf-8")
    target = t2[5][name].encode("utf-8")  # data row 5
    assert raw.count(target) >= 1
    line_start = raw.index(t2[5][0].encode())
    pos = raw.index(target, line_start)
    raw = raw[:pos + 3] + b"\xff" + raw[pos + 3:]  # after the first Chinese character
    c.drop(A, "badbyte.csv", raw)

    rows = parse_rows(write([head] + body)) + [r for i, r in enumerate(parse_rows(write(t2)))
                                               if i != 4]
    exp = expected_totals(live_rows(rows), YEAR, "county")
    wait_for(lambda: assert_totals_equal(c.query_json(YEAR, "county"), exp) or True, 120,
             "totals without the rejected rows, with every other row of badbyte.csv")
    c.wait_drained()

    # errors.csv of the formulas file: the values neutralised, the row numbers numbers
    done = c.done(A)
    path = os.path.join(done, "formulas.csv.errors.csv")
    wait_for(lambda: os.path.exists(path), 30, "formulas.csv.errors.csv")
    errs = table(open(path, encoding="utf-8").read())
    assert errs[0] == ["row", "column", "value", "reason_zh", "reason_en"], errs[0]
    values = [r[2] for r in errs[1:]]
    for v in ("'=1+1", "'@SUM(1+1)", "'-5"):
        assert v in values, (v, values)
    for r in errs[1:]:
        assert NUMBER.match(r[0]), r
        live_formulas(r, "errors.csv")

    # errors.csv of the invalid byte: that row, that column, the reason in both languages
    path = os.path.join(done, "badbyte.csv.errors.csv")
    wait_for(lambda: os.path.exists(path), 30, "badbyte.csv.errors.csv")
    errs = table(open(path, encoding="utf-8").read())
    assert len(errs) == 2, errs
    assert errs[1][0] == "5" and errs[1][1] == "org_name", errs
    assert errs[1][3] == "无效的字符编码" and errs[1][4] == "invalid character encoding", errs

    # aidstat query --format csv: org names neutralised, the measures numbers
    q = table(c.cli("query", "--year", str(YEAR), "--by", "org", "--format", "csv").stdout)
    cells = [x for r in q for x in r]
    live_formulas(cells, "query --format csv")
    for f in FORMULAS:
        assert "'" + f in cells, (f, [r[1] for r in q][:60])

    # the report: every CSV table (and each unit's) neutralised; numbers stay numbers
    c.cli("report", "--year", str(YEAR))
    out = os.path.join(c.dir, "aggregator", "reports", str(YEAR))
    files = glob.glob(os.path.join(out, "**", "*.csv"), recursive=True)
    assert len(files) > 10, files
    seen = set()
    for p in files:
        cells = [x for r in table(open(p, encoding="utf-8").read()) for x in r]
        live_formulas(cells, os.path.relpath(p, out))
        seen.update(x for x in cells if x.startswith("'"))
    for f in FORMULAS:
        assert "'" + f in seen, (f, sorted(seen)[:20])

    assert c.serves()


def main():
    c = SecureCluster([A], "test_hostile_csv")
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
