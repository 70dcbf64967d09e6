#!/usr/bin/env python3
# ctest-labels: integration security
"""Issue 15, item 8: nobody on the network can lock the HTTP side out or read it without the
token. Against a real aggregator (CURVE on, honest collectors delivering), with raw sockets:

- one client address cannot hold all streams (over its cap: 503 with Retry-After, counted);
- 1,100+ /api/stream clients from many addresses: the streams over the global cap get 503 with
  Retry-After, and /api/status and /metrics still answer at once (the old server took every
  connection up to 1,024 and then shut every new one out, plain requests included);
- hundreds of connections that send nothing, or trickle their headers a byte a second, are
  closed within the header deadline (from the connection's start) and counted as timeouts, and
  at the connection cap a plain request still finds room;
- an HTTP address beyond loopback without --http-token is refused at start (exit 2, nothing
  written; 0.0.0.0 is only named, never sent to), and so is a token file open to others;
- with a token, a request without it or with a wrong one gets 401 and is counted, the right
  one 200, and the dashboard takes it once as /?token= and keeps it in an HttpOnly cookie;
- after every attack the aggregator serves, the refusals are in /metrics, and the honest
  counties' totals equal the ones computed from their files."""
import os
import resource
import select
import socket
import subprocess
import sys
import time
import traceback

from aidstat_testlib import exe, free_port, gen_csv, parse_rows, wait_for
from hostile import SecureCluster

YEAR = int(time.strftime("%Y"))
COUNTIES = [360730, 360733]
STREAMS = 512          # the default --http-max-streams
PER_CLIENT = 32        # the default --http-max-streams-per-client
MAX_CONNS = 1024       # the default --http-max-connections
TOKEN = "9f3c1e0b7a4d4b2e8c6f5a1d3e7b9c0f"


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    assert soft >= need, f"this test needs {need} open files; the hard limit is {hard}"


def conn(c, src="127.0.0.1", timeout=20):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", c.http_port))
    return s


def send_get(s, path, headers=()):
    extra = "".join(f"{h}\r\n" for h in headers)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())


def read_head(s):
    """(status, head text) of the answer on s; (0, why) when the server closed without one."""
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            b = s.recv(4096)
            if not b:
                break
            buf += b
    except OSError as e:
        return 0, f"{type(e).__name__}: {e}"
    if not buf.startswith(b"HTTP/1.1 "):
        return 0, f"no answer ({buf[:60]!r})"
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return int(head[9:12]), head


def streams_from(c, addrs, per_addr, path="/api/stream"):
    """Opens per_addr streams from each address; returns (open sockets answered 200, statuses
    and heads of the others)."""
    socks = []
    for a in addrs:
        for _ in range(per_addr):
            s = conn(c, a)
            send_get(s, path)
            socks.append(s)
    ok, other = [], []
    for s in socks:
        st, head = read_head(s)
        if st == 200:
            assert "text/event-stream" in head, head
            ok.append(s)
        else:
            other.append((st, head))
            s.close()
    return ok, other


def timed_plain(c, paths=("/api/status", "/metrics"), rounds=3, limit=3.0):
    """Plain requests answer 200 within limit seconds each; returns the slowest."""
    worst = 0.0
    for _ in range(rounds):
        for p in paths:
            t0 = time.monotonic()
            status, _, body = c.http_get(p, timeout=limit + 5)
            dt = time.monotonic() - t0
            assert status == 200, f"{p} answered {status}: {body[:200]!r}"
            assert dt < limit, f"{p} took {dt:.2f}s beside the attack"
            worst = max(worst, dt)
    return worst


def refused_at_start(c):
    """A non-loopback --http without a token, and a token file open to others: exit 2, a clear
    message, and the data folder never made."""
    def agg_cmd(data, http, extra=()):
        return [exe("aidstat-aggregator"), "--data", data, "--ingest",
                f"tcp://127.0.0.1:{free_port()}", "--feed", f"tcp://127.0.0.1:{free_port()}",
                "--query", f"tcp://127.0.0.1:{free_port()}", "--http", http, *c.secure_args(),
                *extra]

    def must_refuse(args, what):
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError(f"the aggregator started with {what}")
        assert p.returncode == 2, f"{what}: exit {p.returncode}\n{out}"
        return out

    for addr in ("0.0.0.0", "[::]"):
        data = os.path.join(c.dir, "never-" + ("v4" if "." in addr else "v6"))
        out = must_refuse(agg_cmd(data, f"{addr}:{free_port()}"), f"--http {addr}:PORT, no token")
        assert "--http-token" in out and "loopback" in out, out
        assert not os.path.exists(data), f"{data} was made by a refused start"
    loose = os.path.join(c.dir, "loose.token")
    with open(loose, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(loose, 0o644)
    data = os.path.join(c.dir, "never-loose")
    out = must_refuse(agg_cmd(data, f"127.0.0.1:{free_port()}", ("--http-token", loose)),
                      "a 0644 token file")
    assert loose in out and "others" in out, out
    assert not os.path.exists(data)
    print("refused at start: 0.0.0.0 and [::] without a token, a 0644 token file (exit 2)")


def stream_caps(c):
    too_many0 = c.refusals("http", "too_many")
    # one client address cannot take them all
    ok, other = streams_from(c, ["127.0.2.1"], PER_CLIENT + 20)
    assert len(ok) == PER_CLIENT, f"one address holds {len(ok)} streams (cap {PER_CLIENT})"
    assert len(other) == 20 and all(st == 503 and "Retry-After:" in h for st, h in other), \
        other[:3]
    more, _ = streams_from(c, ["127.0.2.2"], 1)
    assert len(more) == 1, "another address gets no stream beside a greedy one"
    for s in ok + more:
        s.close()
    wait_for(lambda: c.refusals("http", "too_many") - too_many0 >= 20, 10, "refusals counted")
    print(f"one address: {PER_CLIENT} streams, 20 more refused with 503 + Retry-After")

    # 1,100+ streams from 35 addresses: the global cap holds, plain requests are answered
    too_many0 = c.refusals("http", "too_many")
    addrs = [f"127.0.1.{i}" for i in range(1, 36)]
    t0 = time.monotonic()
    ok, other = streams_from(c, addrs, PER_CLIENT)
    total = len(ok) + len(other)
    assert total == 35 * PER_CLIENT >= 1100
    assert len(ok) == STREAMS, f"{len(ok)} streams open (cap {STREAMS})"
    bad = [(st, h) for st, h in other if st != 503 or "Retry-After:" not in h]
    assert not bad, f"{len(bad)} refused streams without 503 + Retry-After: {bad[:3]}"
    print(f"{total} stream clients in {time.monotonic() - t0:.1f}s: {len(ok)} open, "
          f"{len(other)} refused with 503")
    worst = timed_plain(c)
    print(f"beside {len(ok)} streams, /api/status and /metrics answered (slowest {worst:.2f}s)")
    wait_for(lambda: c.refusals("http", "too_many") - too_many0 >= len(other), 10,
             "the refused streams in /metrics")
    assert c.metric("aidstat_stream_clients") == STREAMS, c.metric("aidstat_stream_clients")
    return ok


def slow_clients(c, streams):
    """Silent and trickling connections beside the open streams, past the connection cap."""
    timeout0 = c.refusals("http", "timeout")
    too_many0 = c.refusals("http", "too_many")
    silent = []
    n_silent = MAX_CONNS - STREAMS + 200  # beyond the cap with the streams held
    t0 = time.monotonic()
    for i in range(n_silent):
        silent.append(conn(c, f"127.0.3.{1 + i % 200}"))
    worst = timed_plain(c, rounds=2)
    print(f"{n_silent} silent connections + {len(streams)} streams: plain requests still "
          f"answered (slowest {worst:.2f}s)")
    # trickling headers, a byte every half second: the deadline runs from the connection's start
    trickle = [conn(c, "127.0.4.1") for _ in range(10)]
    t1 = time.monotonic()
    header = b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
    closed_at, answers = {}, {}
    i = 0
    while time.monotonic() - t1 < 15 and len(closed_at) < len(trickle):
        for k, s in enumerate(trickle):
            if k in closed_at:
                continue
            poller = select.poll()
            poller.register(s, select.POLLIN)
            if poller.poll(0):
                try:
                    answers[k] = s.recv(4096)
                except OSError as e:
                    answers[k] = repr(e)
                closed_at[k] = time.monotonic() - t1
                continue
            try:
                s.sendall(header[i:i + 1])
            except OSError:
                closed_at[k] = time.monotonic() - t1
        i += 1
        time.sleep(0.5)
    assert len(closed_at) == len(trickle), "trickling connections still open after 15s"
    assert max(closed_at.values()) < 8, f"trickling connections held {closed_at}"
    assert all(isinstance(a, bytes) and a.startswith(b"HTTP/1.1 408") for a in answers.values()), \
        answers
    print(f"10 trickling connections: 408 and closed {max(closed_at.values()):.1f}s after they "
          f"opened")
    # every silent one is closed by now (by the deadline, or to make room)
    still = 0
    for s in silent:
        s.settimeout(5)
        try:
            if s.recv(1024) != b"":
                # a 503 made room for others: then the end follows
                while s.recv(1024):
                    pass
        except socket.timeout:
            still += 1
        except OSError:
            pass
        s.close()
    assert still == 0, f"{still} silent connections still open"
    for s in trickle:
        s.close()
    timeouts = c.refusals("http", "timeout") - timeout0
    evicted = c.refusals("http", "too_many") - too_many0
    assert timeouts + evicted >= n_silent + len(trickle), (timeouts, evicted)
    assert timeouts >= len(trickle), timeouts
    print(f"silent and trickling connections closed: {timeouts:.0f} timeouts, {evicted:.0f} "
          f"closed at the cap to make room (all in /metrics)")
    # the streams were never the ones closed: they still hear heartbeats
    s = streams[0]
    s.settimeout(20)
    assert s.recv(4096), "a stream was closed by the attack"
    assert c.serves()


def token_phase(c, rows):
    path = os.path.join(c.keydir, "http.token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (TOKEN + "\n").encode())
    os.close(fd)
    assert c.aggregator.stop() == 0
    c.http_token = TOKEN
    c.start_aggregator(extra=("--http-token", path))
    wait_for(lambda: c.http_get("/api/status")[0] == 200, 30, "HTTP with the token")
    cases = [("", None, 401), ("wrong-token-0000000000000000", None, 401),
             (TOKEN + "0", None, 401), (TOKEN, None, 200)]
    for tok, _, want in cases:
        for p in ("/api/status", "/metrics", "/api/totals", "/nope"):
            st, hdrs, body = c.http_get(p, token=tok)
            exp = 404 if (want == 200 and p == "/nope") else want
            assert st == exp, f"{p} with token {tok!r}: {st} (expected {exp}) {body[:200]!r}"
            if st == 401:
                assert "Bearer" in (hdrs.get("WWW-Authenticate") or "")
    unauth = c.refusals("http", "unauthorised")
    assert unauth == 12, f"{unauth} unauthorised refusals counted, expected 12"
    # the dashboard: asks for the token, takes it once, keeps it in a strict HttpOnly cookie
    st, _, body = c.http_get("/", token="")
    assert st == 401 and b'name="token"' in body, (st, body[:300])
    s = conn(c)
    send_get(s, f"/?token={TOKEN}")
    st, head = read_head(s)
    s.close()
    assert st == 303, head
    cookie = [ln for ln in head.split("\r\n") if ln.lower().startswith("set-cookie:")]
    assert cookie and "HttpOnly" in cookie[0] and "SameSite=Strict" in cookie[0], head
    value = cookie[0].split(":", 1)[1].split(";", 1)[0].strip()
    for p, ctype in (("/", "text/html"), ("/api/stream", "text/event-stream"),
                     ("/api/status", "application/json")):
        s = conn(c)
        send_get(s, p, [f"Cookie: {value}"])
        st, head = read_head(s)
        s.close()
        assert st == 200 and ctype in head, (p, head)
    print("token: 12 requests without or with a wrong token got 401 (counted), the right one "
          "200; the dashboard keeps it in an HttpOnly SameSite=Strict cookie")
    return rows


def test(c):
    raise_nofile(4096)
    refused_at_start(c)
    c.start_aggregator()
    rows = []
    for i, k in enumerate(COUNTIES):
        c.start_collector(k)
        text = gen_csv([k], 400, YEAR, seed=10 + i)
        rows += parse_rows(text)
        c.drop(k, f"first-{k}.csv", text)
    wait_for(lambda: c.http_get("/api/status")[0] == 200, 30, "HTTP up")

    streams = stream_caps(c)
    slow_clients(c, streams)
    for s in streams:
        s.close()

    # the honest counties kept delivering through all of it
    for i, k in enumerate(COUNTIES):
        text = gen_csv([k], 300, YEAR, seed=20 + i)
        rows += parse_rows(text)
        c.drop(k, f"second-{k}.csv", text)
    c.assert_exactly_once(rows, YEAR, by=("county",))
    print("honest counties' totals equal their files after the stream and slowloris attacks")

    token_phase(c, rows)
    for i, k in enumerate(COUNTIES):
        text = gen_csv([k], 200, YEAR, seed=30 + i)
        rows += parse_rows(text)
        c.drop(k, f"third-{k}.csv", text)
    c.assert_exactly_once(rows, YEAR, by=("county",))
    assert c.serves()
    print("after the token phase: totals equal, the aggregator serves")


if __name__ == "__main__":
    cluster = SecureCluster(COUNTIES, "test_hostile_http")
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
