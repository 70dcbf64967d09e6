#!/usr/bin/env python3
# ctest-labels: integration
"""The Python example (examples/python, Debian's python3-zmq and python3-protobuf, classes made
by protoc at run time) prints, field for field, the events `aidstat tail` prints — whole
province and one city, replayed and live — and those events carry the spreadsheet's values."""
import json

from aidstat_testlib import AREA_ZH, YES, fen, main, run, exe, tenths
from feedlib import Subscriber, assert_exactly_once, load, settle

COUNTIES = [360730, 360124]  # a county of 赣州 (3607) and one of 南昌 (3601)
CITY = "3607"


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            keys = [k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
            return f"line {i + 1}: " + ", ".join(f"{k}: {x.get(k)!r} vs {y.get(k)!r}"
                                                 for k in keys)
    return f"lengths {len(a)} vs {len(b)}"


def check_against_rows(events, rows):
    """Events that carry the office's event id hold the values of their spreadsheet row."""
    by_id = {}
    for r in rows:  # the first row with an id is the event; a later one is a duplicate
        if r.get("event_id"):
            by_id.setdefault((r["county_code"], r["event_id"]), r)
    checked = 0
    for e in events:
        r = by_id.get((str(e["county_code"]), e["event_id"]))
        if not r or e["kind"] != "event":
            continue
        want = {"org_credit_code": r["org_credit_code"].upper(), "org_name": r["org_name"],
                "area": AREA_ZH.get(r["area"], r["area"]),
                "beneficiaries": int(r.get("beneficiaries") or 0),
                "funds_fen": fen(r.get("funds_yuan")), "goods_fen": fen(r.get("goods_yuan")),
                "volunteer_hours": tenths(r.get("volunteer_hours")) / 10.0,
                "income_increase_fen": fen(r.get("income_increase_yuan")),
                "deep_poverty_village": r.get("deep_poverty_village", "").lower() in YES}
        got = {k: e[k] for k in want}
        assert got == want, f"seq {e['seq']}: {got} != row {want}"
        checked += 1
    return checked


def test(c):
    c.start_aggregator()
    for k in COUNTIES:
        c.start_collector(k)
    rows = load(c, COUNTIES, 2000, seed=5, tag="first")
    n1 = settle(c, COUNTIES, ["first"])
    subs = {
        "tail": Subscriber(c, "tail", ["--from", 1]),
        "python": Subscriber(c, "python", ["--from", 1], python=True),
        "tail-city": Subscriber(c, "tail-city", ["--from", 1, "--county", CITY]),
        "python-city": Subscriber(c, "python-city", ["--from", 1, "--county", CITY],
                                  python=True),
    }
    subs["tail"].wait_until_seq(n1)
    rows += load(c, COUNTIES, 2000, seed=6, tag="second", year=2025)  # these arrive live
    n = settle(c, COUNTIES, ["second"])
    for name in ("tail", "python"):
        subs[name].wait_until_seq(n)
    whole = subs["tail"].events()
    city_last = max(e["seq"] for e in whole if str(e["county"]).startswith(CITY))
    for name in ("tail-city", "python-city"):
        subs[name].wait_until_seq(city_last)
    for s in subs.values():
        assert s.stop() == 0, f"{s.name} did not exit 0 on SIGTERM"

    assert_exactly_once(whole, 1, n, "aidstat tail")
    py = subs["python"].events()
    assert py == whole, "python example differs from aidstat tail: " + first_difference(py, whole)
    assert subs["python"].lines() == subs["tail"].lines(), "same objects, different text"
    city = [e for e in whole if str(e["county"]).startswith(CITY)]
    assert subs["tail-city"].events() == city, "tail --county: " + first_difference(
        subs["tail-city"].events(), city)
    assert subs["python-city"].events() == city, "python --county: " + first_difference(
        subs["python-city"].events(), city)
    checked = check_against_rows(whole, rows)

    # --format json: the same objects, indented
    text = run([exe("aidstat"), "tail", "--feed", c.feed, "--endpoint", c.query, "--from", "1",
                "--until-seq", "5", "--format", "json"]).stdout
    dec, pos, objs = json.JSONDecoder(), 0, []
    while text[pos:].strip():
        while text[pos].isspace():
            pos += 1
        o, pos = dec.raw_decode(text, pos)
        objs.append(o)
    assert objs == whole[:5], "--format json: " + first_difference(objs, whole[:5])
    print(f"{n} events ({len(city)} in {CITY}): python example == aidstat tail, field for "
          f"field; {checked} checked against their spreadsheet rows")


if __name__ == "__main__":
    main(test)
