#!/usr/bin/env python3
# ctest-labels: integration
"""The HTTP API of a real aggregator fed by real collectors: every /api/totals answer equals
`aidstat query --format json`, status agrees with `aidstat status`, completeness and flags follow
the delivered files (and a nil report), /metrics passes `promtool check metrics` and counts the
accepted events, /api/stream announces a commit, and bad requests get a clear 4xx while the
server keeps serving."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import time

from aidstat_testlib import gen_csv, live_rows, main, month_of, parse_rows, run, exe, wait_for

YEAR = int(time.strftime("%Y"))
COUNTIES = [360730, 360124]


def get(c, path, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", c.http_port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, r.getheader("Content-Type", ""), body
    finally:
        conn.close()


def get_json(c, path, want=200):
    status, ctype, body = get(c, path)
    assert status == want, f"GET {path}: {status} {body[:300]!r}"
    assert ctype.startswith("application/json"), f"GET {path}: Content-Type {ctype}"
    return json.loads(body)


def raw(c, data, timeout=15):
    """Sends raw bytes, returns (status, body) of the answer."""
    with socket.create_connection(("127.0.0.1", c.http_port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            if b"\r\n\r\n" in buf:
                head, body = buf.split(b"\r\n\r\n", 1)
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:") and \
                            len(body) >= int(line.split(b":")[1]):
                        return int(buf[9:12]), body
    return int(buf[9:12]), buf.split(b"\r\n\r\n", 1)[-1]


def check_totals_against_query(c):
    for by in ("province", "city", "county", "area", "month", "org", "supervisor"):
        api = get_json(c, f"/api/totals?year={YEAR}&by={by}")
        cli = c.query_json(YEAR, by)
        assert api == cli, f"by {by}: API and aidstat query differ:\n{api}\n{cli}"
    for county in (COUNTIES[0], 360700):
        api = get_json(c, f"/api/totals?year={YEAR}&by=area&county={county}")
        cli = c.query_json(YEAR, "area", county=county)
        assert api == cli, f"area in {county}: API and aidstat query differ"
    t = get_json(c, f"/api/totals?year={YEAR}")["total"]
    for name in ("activities", "organisations", "beneficiaries", "registered_poor", "funds_fen",
                 "goods_fen", "volunteers", "volunteer_hours", "social_workers",
                 "persons_lifted", "jobs", "trainees", "income_increase_fen", "villages",
                 "deep_poverty_villages", "counties"):
        assert name in t, f"measure {name} missing from /api/totals"


def check_bad_requests(c):
    for path, want in (("/nope", 404), ("/api/totals?year=abc", 400),
                       ("/api/totals?by=planet", 400), ("/api/totals?county=123456", 400),
                       ("/api/completeness?year=1", 400), ("/api/flags?limit=x", 400)):
        j = get_json(c, path, want)
        assert j.get("error"), f"{path}: no error text in {j}"
    status, body = raw(c, b"GET /api/totals?x=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414, f"100 KB request line: {status}"
    assert b"error" in body
    status, _ = raw(c, b"POST /api/totals HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert status == 405, status
    # a slow client that never finishes its headers holds nobody up
    slow = socket.create_connection(("127.0.0.1", c.http_port), timeout=30)
    slow.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    t0 = time.monotonic()
    for _ in range(5):
        assert get(c, f"/api/totals?year={YEAR}")[0] == 200
    assert time.monotonic() - t0 < 5, "others were held up by the slow client"
    data = b""
    while True:
        chunk = slow.recv(4096)
        if not chunk:
            break
        data += chunk
    slow.close()
    assert data.startswith(b"HTTP/1.1 408"), data[:100]
    assert get(c, "/api/status")[0] == 200


def check_metrics(c):
    status, ctype, body = get(c, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install the Debian package prometheus"
    p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert p.returncode == 0, f"promtool check metrics:\n{p.stdout.decode()}{p.stderr.decode()}"
    text = body.decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            values[k] = float(v)
    seq = get_json(c, "/api/status")["ledger_seq"]
    assert values['aidstat_feed_sequence'] == seq, (values['aidstat_feed_sequence'], seq)
    assert values['aidstat_events_total{result="accepted"}'] >= seq
    assert values["aidstat_collectors_connected"] == len(COUNTIES)
    assert values["aidstat_commit_batch_events_count"] > 0
    assert values["aidstat_ledger_bytes"] > 0


def test(c):
    c.start_aggregator()
    rows = []
    for i, county in enumerate(COUNTIES):
        c.start_collector(county)
        text = gen_csv([county], 1500, YEAR, seed=40 + i)
        rows += parse_rows(text)
        c.drop(county, f"a-{county}.csv", text)
    live = live_rows(rows)
    expected = sum(1 for r in live if r["activity_date"].startswith(str(YEAR)))
    wait_for(lambda: c.query_json(YEAR)["total"]["activities"] == expected, 120, "delivery")
    wait_for(lambda: all(x["backlog"] == 0 for x in c.status_json()["collectors"]), 30,
             "backlogs to drain")

    check_totals_against_query(c)

    # status: the same collectors as `aidstat status`, all connected; backlogs come with the
    # collectors' heartbeats (each second), so wait for the drained ones to be told
    wait_for(lambda: all(x["backlog"] == 0 for x in get_json(c, "/api/status")["collectors"]),
             30, "backlogs of 0 in /api/status")
    api = get_json(c, "/api/status")
    cli = c.status_json()
    assert sorted(x["collector_id"] for x in api["collectors"]) == \
        sorted(x["collector_id"] for x in cli["collectors"])
    for x in api["collectors"]:
        assert x["connected"] is True, x
        assert x["county_code"] in COUNTIES, x
        assert x["backlog"] == 0, x
    assert api["publication_deadline"] == f"{YEAR}-12-31"

    # completeness: every month with a live event is "reported"; a nil report shows as "nil"
    comp = get_json(c, f"/api/completeness?year={YEAR}")
    assert len(comp["months"]) == 12 and len(comp["counties"]) > 90
    cells = {x["code"]: x["cells"] for x in comp["counties"]}
    months = {(r["county_code"], month_of(r["activity_date"])) for r in live
              if r["activity_date"].startswith(str(YEAR))}
    for county, month in months:
        assert cells[county][int(month[5:]) - 1] == "reported", (county, month)
    home = str(COUNTIES[0])
    quiet = next((m for m in range(1, 13) if cells[home][m - 1] == "silent"), None)
    if quiet:  # a month without activity so far: the county says so with a nil report
        p = run([exe("aidstat"), "submit", "--nil", f"{YEAR}-{quiet:02d}", "--collector",
                 c.control(COUNTIES[0])], check=False)
        assert p.returncode == 0, f"aidstat submit --nil: {p.stdout}{p.stderr}"

        def nil_shown():
            comp = get_json(c, f"/api/completeness?year={YEAR}")
            return {x["code"]: x["cells"] for x in comp["counties"]}[home][quiet - 1] == "nil"
        wait_for(nil_shown, 30, "the nil report in the completeness grid")

    flags = get_json(c, f"/api/flags?year={YEAR}&limit=1000")
    assert flags["total"] == len(flags["flags"]) or flags["total"] > 1000
    for f in flags["flags"]:
        assert f["flags"] and f["county"] in COUNTIES, f

    check_metrics(c)

    # the stream: a message after a commit that changed the totals
    s = socket.create_connection(("127.0.0.1", c.http_port), timeout=30)
    s.sendall(f"GET /api/stream?year={YEAR} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"event: totals" not in buf:
        buf += s.recv(65536)
    assert b"text/event-stream" in buf
    seq0 = get_json(c, "/api/status")["ledger_seq"]
    c.drop(COUNTIES[1], "more.csv", gen_csv([COUNTIES[1]], 50, YEAR, seed=99))
    t0 = time.monotonic()
    buf = b""
    new_seq = None
    while new_seq is None and time.monotonic() - t0 < 30:
        buf += s.recv(65536)
        for block in buf.split(b"\n\n"):
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    d = json.loads(line[6:])
                    if d["seq"] > seq0:
                        new_seq = d["seq"]
                        assert d["total"]["activities"] > 0
    s.close()
    assert new_seq, "no stream message after the commit"

    check_bad_requests(c)
    check_totals_against_query(c)
    for county, d in c.collectors.items():
        assert d.stop() == 0
    assert c.aggregator.stop() == 0, "aggregator did not exit 0 on SIGTERM"


if __name__ == "__main__":
    main(test)
