"""Shared helpers for the integration and fault tests: real daemons on loopback, temp folders.

Nothing here mocks a daemon: it starts build/bin/aidstat-aggregator and aidstat-collector as
processes, on free 127.0.0.1 ports, with data under a temporary folder that is removed at the end.
It also computes expected totals independently from spreadsheet files, with Python's csv module.
"""
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from decimal import Decimal

BIN = os.environ.get("AS_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))
SOURCE = os.environ.get("AS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))


def exe(name):
    return os.path.join(BIN, name)


def free_ports(n):
    """n distinct free TCP ports on loopback: all held open while they are picked (picked one
    after the other, the kernel can hand out the same port twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


def wait_for(pred, timeout=30.0, what="condition", interval=0.1):
    """Polls pred() until it returns a true value; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # the daemon may not be up yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def run(args, check=True, input=None, timeout=120, env=None):
    """Runs an aidstat program; returns CompletedProcess with text output."""
    p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


class Daemon:
    """One daemon process with its log file."""

    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = log_path
        self.env = env  # None: the test's own environment
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.args[0]} did not stop within {timeout}s of SIGTERM")
        if not self.log.closed:
            self.log.close()
        return rc

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Cluster:
    """An aggregator and any number of collectors in one temporary folder."""

    def __init__(self, name="aidstat-test"):
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        ports = free_ports(4)
        self.ingest = f"tcp://127.0.0.1:{ports[0]}"
        self.feed = f"tcp://127.0.0.1:{ports[1]}"
        self.query = f"tcp://127.0.0.1:{ports[2]}"
        self.http_port = ports[3]
        self.http = f"127.0.0.1:{self.http_port}"
        self.aggregator = None
        self.collectors = {}

    # -- aggregator ---------------------------------------------------------------------------
    def agg_args(self, extra=()):
        return [exe("aidstat-aggregator"), "--data", os.path.join(self.dir, "aggregator"),
                "--ingest", self.ingest, "--feed", self.feed, "--query", self.query,
                "--http", self.http, *extra]

    def start_aggregator(self, extra=(), wait=True, env=None):
        self.aggregator = Daemon(self.agg_args(extra), os.path.join(self.dir, "aggregator.log"),
                                 env)
        self.aggregator.start()
        if wait:
            wait_for(lambda: self.cli("status", check=False).returncode == 0, 30,
                     "aggregator to answer status")
        return self.aggregator

    # -- collectors ---------------------------------------------------------------------------
    def collector_dir(self, county):
        return os.path.join(self.dir, f"collector-{county}")

    def spool(self, county):
        return os.path.join(self.collector_dir(county), "spool")

    def control(self, county):
        return "ipc://" + os.path.join(self.collector_dir(county), "control.sock")

    def start_collector(self, county, extra=()):
        d = self.collector_dir(county)
        os.makedirs(os.path.join(d, "spool"), exist_ok=True)
        args = [exe("aidstat-collector"), "--county", str(county), "--data", d,
                "--aggregator", self.ingest, *extra]
        c = Daemon(args, os.path.join(self.dir, f"collector-{county}.log")).start()
        self.collectors[county] = c
        return c

    def collector_status(self, county, timeout_ms=5000):
        """The collector's own view (its control endpoint): backlog, rejected, connected."""
        import zmq
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        try:
            sock.connect(self.control(county))
            sock.send(b"status")
            return json.loads(sock.recv())
        finally:
            sock.close()

    def wait_drained(self, counties=None, timeout=120):
        """Waits until every (named) collector's outbox is empty, as the collector itself says."""
        counties = list(counties or self.collectors)
        wait_for(lambda: all(self.collector_status(k)["backlog"] == 0 for k in counties),
                 timeout, "outboxes to drain", interval=0.2)

    def drop(self, county, name, content):
        """Drops a file into a collector's spool atomically (write a .tmp, then rename)."""
        spool = self.spool(county)
        os.makedirs(spool, exist_ok=True)
        tmp = os.path.join(spool, name + ".tmp")
        with open(tmp, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        os.rename(tmp, os.path.join(spool, name))

    def done(self, county):
        return os.path.join(self.spool(county), "done")

    # -- the aidstat command ----------------------------------------------------------------
    def cli(self, *args, check=True, input=None, timeout=120):
        return run([exe("aidstat"), *args[:1], "--endpoint", self.query, *args[1:]],
                   check=check, input=input, timeout=timeout)

    def query_json(self, year, by="province", county=None):
        args = ["query", "--year", str(year), "--by", by, "--format", "json"]
        if county:
            args += ["--county", str(county)]
        return json.loads(self.cli(*args).stdout)

    def status_json(self):
        return json.loads(self.cli("status", "--format", "json").stdout)

    def status_http(self):
        """GET /api/status: the same ledger_seq and collectors as `aidstat status`, without
        starting a process (benchmarks poll it: a CLI process every 50 ms took ≈ 12 % of this
        2-core machine's CPU from the daemons being measured)."""
        with urllib.request.urlopen(f"http://{self.http}/api/status", timeout=10) as r:
            return json.loads(r.read())

    def assert_exactly_once(self, rows, year, by=("county", "month"), timeout=180):
        """Waits until the totals by by[0] equal those computed from rows (their live events),
        then until every outbox is empty; then the totals by every dimension in by, and an event
        log holding each live event once."""
        live = live_rows(rows)
        exp = expected_totals(live, year, by[0])
        wait_for(lambda: assert_totals_equal(self.query_json(year, by[0]), exp, by[0]) or True,
                 timeout, f"totals by {by[0]}")
        self.wait_drained()
        for b in by[1:]:
            assert_totals_equal(self.query_json(year, b), expected_totals(live, year, b), b)
        seq = self.status_json()["ledger_seq"]
        assert seq == len(live), f"event log holds {seq}, expected {len(live)}"

    def close(self, keep_on_failure=False):
        for c in self.collectors.values():
            if c.alive():
                c.kill9()
        if self.aggregator and self.aggregator.alive():
            self.aggregator.kill9()
        if keep_on_failure:
            print(f"(kept {self.dir} for inspection)", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self):
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    tail = f.read()[-4000:].decode("utf-8", "replace")
                print(f"----- {name} (tail) -----\n{tail}", file=sys.stderr)


def gen_csv(counties, events, year, seed, extra=()):
    """Sample data from `aidstat gen`, as text. The office's event ids get the seed in them, so
    files generated with different seeds for one county are different activities."""
    text = run([exe("aidstat"), "gen", "--counties", ",".join(map(str, counties)),
                "--events", str(events), "--year", str(year), "--seed", str(seed), *extra]).stdout
    for c in counties:
        text = text.replace(f"{c}-{year}-", f"{c}-{year}-s{seed}-")
    return text


# ---- independent computation of expected totals from CSV text -------------------------------

EN = ["event_id", "county_code", "org_credit_code", "org_name", "area", "project",
      "activity_date", "village_code", "deep_poverty_village", "beneficiaries", "registered_poor",
      "beneficiary_group", "funds_yuan", "goods_yuan", "funding_source", "online_fundraising",
      "volunteers", "volunteer_hours", "social_workers", "persons_lifted", "jobs", "trainees",
      "income_increase_yuan", "note", "correction_of", "retract"]
ZH = ["事件编号", "县区代码", "统一社会信用代码", "组织名称", "帮扶领域", "重点项目", "活动日期", "村代码",
      "深度贫困村", "受益人数", "建档立卡贫困人口数", "受益群体", "帮扶资金(元)", "物资折价(元)", "资金来源",
      "网络募捐", "志愿者人数", "志愿服务时长", "社会工作者人数", "脱贫人数", "带动就业人数", "培训人次",
      "增收金额(元)", "备注", "更正事件编号", "撤回"]
ZH2EN = dict(zip(ZH, EN))
AREA_ZH = {"深度贫困村": "deep_village", "产业扶贫": "industry", "教育扶贫": "education",
           "健康扶贫": "health", "易地扶贫搬迁": "relocation", "能力建设和关爱保障": "capacity_care",
           "其他": "other"}
YES = {"是", "1", "yes", "true", "y"}


def parse_rows(text):
    """Rows of a CSV (English or Chinese headers) as dicts with English keys."""
    if text.startswith("\ufeff"):
        text = text[1:]
    rows = []
    for r in csv.DictReader(io.StringIO(text, newline="")):
        rows.append({ZH2EN.get(k.strip(), k.strip()): (v or "").strip() for k, v in r.items()})
    return rows


def fen(v):
    return int((Decimal(v or "0") * 100).to_integral_value())


def tenths(v):
    return int((Decimal(v or "0") * 10).to_integral_value())


def month_of(date):
    sep = "-" if "-" in date else "/"
    y, m, _ = date.split(sep)
    return f"{int(y):04d}-{int(m):02d}"


ADDITIVE = ["activities", "beneficiaries", "registered_poor", "funds_fen", "goods_fen",
            "volunteers", "volunteer_hours", "social_workers", "persons_lifted", "jobs",
            "trainees", "income_increase_fen"]


def row_measures(r):
    return {
        "activities": 1,
        "beneficiaries": int(r.get("beneficiaries") or 0),
        "registered_poor": int(r.get("registered_poor") or 0),
        "funds_fen": fen(r.get("funds_yuan")),
        "goods_fen": fen(r.get("goods_yuan")),
        "volunteers": int(r.get("volunteers") or 0),
        "volunteer_hours": tenths(r.get("volunteer_hours")),
        "social_workers": int(r.get("social_workers") or 0),
        "persons_lifted": int(r.get("persons_lifted") or 0),
        "jobs": int(r.get("jobs") or 0),
        "trainees": int(r.get("trainees") or 0),
        "income_increase_fen": fen(r.get("income_increase_yuan")),
    }


def row_key(r):
    """Identity of a row for dedup: the office's event id, else its full content."""
    if r.get("event_id"):
        return ("id", r["county_code"], r["event_id"])
    return ("content", tuple(sorted((k, v) for k, v in r.items() if k != "note")))


def live_rows(rows):
    """Applies duplicates, corrections and retractions the way DESIGN.md says; returns the live
    rows (dicts) in arrival order."""
    seen = set()
    live = {}  # key -> row
    order = []
    for r in rows:
        k = row_key(r)
        if k in seen:
            continue
        seen.add(k)
        target = r.get("correction_of")
        if target:
            tk = ("id", r["county_code"], target)
            if r.get("retract", "").lower() in YES:
                live.pop(tk, None)
                continue
            live.pop(tk, None)
        live[k] = r
        order.append(k)
    return [live[k] for k in order if k in live]


def expected_totals(rows, year, by="county"):
    """{key: measures} for live rows of the year grouped by county|area|month|province,
    plus distinct organisations, villages, deep-poverty villages and counties."""
    groups = defaultdict(lambda: dict({m: 0 for m in ADDITIVE}, _orgs=set(), _vil=set(),
                                      _deep=set(), _cty=set()))
    for r in rows:
        if not r["activity_date"].startswith(str(year)):
            continue
        area = AREA_ZH.get(r["area"], r["area"])
        key = {"province": "360000", "county": r["county_code"], "area": area,
               "month": month_of(r["activity_date"])}[by]
        g = groups[key]
        for m, v in row_measures(r).items():
            g[m] += v
        g["_orgs"].add(r["org_credit_code"].upper())
        g["_cty"].add(r["county_code"])
        if r.get("village_code"):
            g["_vil"].add(r["village_code"])
            if r.get("deep_poverty_village", "").lower() in YES:
                g["_deep"].add(r["village_code"])
    out = {}
    for k, g in groups.items():
        m = {x: g[x] for x in ADDITIVE}
        m["organisations"] = len(g["_orgs"])
        m["villages"] = len(g["_vil"])
        m["deep_poverty_villages"] = len(g["_deep"])
        m["counties"] = len(g["_cty"])
        out[k] = m
    return out


def json_hours_to_tenths(v):
    return int((Decimal(str(v)) * 10).to_integral_value())


def rows_by_key(q):
    """A query's JSON rows as {key: measures} with volunteer_hours in tenths."""
    out = {}
    for r in q["rows"]:
        m = {k: v for k, v in r.items() if k not in ("key", "name")}
        m["volunteer_hours"] = json_hours_to_tenths(m["volunteer_hours"])
        out[str(r["key"])] = m
    return out


def assert_totals_equal(actual_json, expected, what=""):
    got = rows_by_key(actual_json)
    problems = []
    for k in sorted(set(got) | set(expected)):
        a, e = got.get(k), expected.get(k)
        if a is None or e is None:
            problems.append(f"{k}: got {a}, expected {e}")
            continue
        for m, v in e.items():
            if a.get(m) != v:
                problems.append(f"{k}.{m}: got {a.get(m)}, expected {v}")
    if problems:
        raise AssertionError(f"totals differ {what}:\n  " + "\n  ".join(problems[:40]))


def main(test_fn):
    """Runs one test function with a cluster; dumps logs and keeps the folder on failure when
    AS_KEEP is set; prints a plain 'N passed, N failed' line."""
    cluster = Cluster(os.path.basename(sys.argv[0]).replace(".py", ""))
    ok = False
    try:
        test_fn(cluster)
        ok = True
    except BaseException:
        import traceback
        traceback.print_exc()
        cluster.dump_logs()
    finally:
        cluster.close(keep_on_failure=(not ok and bool(os.environ.get("AS_KEEP"))))
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    sys.exit(0 if ok else 1)
