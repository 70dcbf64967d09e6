#!/usr/bin/env python3
"""aidstat_subscriber: how a downstream system follows the aidstat feed without losing an event.

Uses only Debian's python3-zmq and python3-protobuf. The protobuf classes are generated at run
time from the project's proto/ folder with `protoc --python_out` into a cache folder (nothing
generated is committed). Prints one JSON line per event, the same lines as `aidstat tail`.

The dance, which any language can copy:
  1. SUBscribe first (topics "ev.<county prefix>" and "hb"), so nothing published from now on
     is missed by the socket;
  2. replay from the last sequence number you processed (+1) through the query endpoint, page
     by page, up to the end of the log;
  3. then read live messages: drop any event whose seq you already processed; when an event's
     seq is not the next one, or a heartbeat names a seq you have not reached, replay the hole.
Store the last processed seq with your own data (in the same transaction) and pass it as
--from after a restart: every event is then processed exactly once, in order.
"""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
PROTOS = ["event", "feed", "query"]


def load_protos(proto_dir, cache_dir=None):
    """Generates the Python classes from proto_dir (once per content) and imports them."""
    h = hashlib.sha256()
    for name in PROTOS:
        with open(os.path.join(proto_dir, "aidstat", "v1", name + ".proto"), "rb") as f:
            h.update(f.read())
    base = cache_dir or os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    out = os.path.join(base, "aidstat-proto-py", h.hexdigest()[:16])
    if not os.path.exists(os.path.join(out, "aidstat", "v1", "query_pb2.py")):
        os.makedirs(base, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="gen-", dir=base)
        files = [os.path.join(proto_dir, "aidstat", "v1", n + ".proto") for n in PROTOS]
        subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + tmp, *files],
                       check=True)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        try:
            os.rename(tmp, out)  # atomic: a concurrent run either wins or finds it there
        except OSError:
            pass
    sys.path.insert(0, out)
    from aidstat.v1 import event_pb2, feed_pb2, query_pb2  # noqa: E402
    return event_pb2, feed_pb2, query_pb2


# ---- one event as JSON: the same object, keys and rules as common/event_json.c ---------------

def enum_key(enum_type, number):
    """Proto value name without its type prefix, lower case; None for 0; the number if unknown."""
    if number == 0:
        return None
    v = enum_type.values_by_number.get(number)
    if v is None:
        return number
    return v.name.split("_", 1)[1].lower() if "_" in v.name else v.name.lower()


def flag_names(flag_enum, flags):
    names, bit = [], 1
    while bit <= flags:
        if flags & bit:
            v = flag_enum.values_by_number.get(bit)
            names.append(v.name.split("_", 1)[1].lower() if v else f"bit_{bit}")
        bit <<= 1
    return names


def date_text(d):
    return None if d == 0 else f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}"


KINDS = {1: "event", 2: "correction", 3: "retraction", 4: "report", 5: "heartbeat"}


def event_json(hdr, ev, pb):
    f = ev.DESCRIPTOR.fields_by_name
    return {
        "seq": hdr.seq,
        "kind": KINDS.get(hdr.kind, "unspecified"),
        "commit_ms": hdr.commit_time_ms,
        "county": hdr.county_code,
        "flags": hdr.flags,
        "flag_names": flag_names(pb.Flag.DESCRIPTOR, hdr.flags),
        "id": ev.id.hex(),
        "event_id": ev.event_id,
        "county_code": ev.county_code,
        "org_credit_code": ev.org_credit_code,
        "org_name": ev.org_name,
        "area": enum_key(f["area"].enum_type, ev.area),
        "project": enum_key(f["project"].enum_type, ev.project),
        "activity_date": date_text(ev.activity_date),
        "village_code": ev.village_code,
        "deep_poverty_village": ev.deep_poverty_village,
        "beneficiaries": ev.beneficiaries,
        "registered_poor": ev.registered_poor,
        "beneficiary_group": enum_key(f["beneficiary_group"].enum_type, ev.beneficiary_group),
        "funds_fen": ev.funds_fen,
        "goods_fen": ev.goods_fen,
        "funding_source": enum_key(f["funding_source"].enum_type, ev.funding_source),
        "online_fundraising": ev.online_fundraising,
        "volunteers": ev.volunteers,
        "volunteer_hours": ev.volunteer_hours_tenths / 10.0,
        "social_workers": ev.social_workers,
        "persons_lifted": ev.persons_lifted,
        "jobs": ev.jobs,
        "trainees": ev.trainees,
        "income_increase_fen": ev.income_increase_fen,
        "note": ev.note,
        "correction_of": ev.correction_of.hex() if ev.correction_of else None,
        "retract": ev.retract,
        "source_file": ev.source_file,
        "source_row": ev.source_row,
    }


# ---- the subscriber ------------------------------------------------------------------------

class Subscriber:
    QUERY_TIMEOUT_MS = 3000

    def __init__(self, args, event_pb2, feed_pb2, query_pb2, out=sys.stdout):
        self.a = args
        self.ev_pb, self.feed_pb, self.q_pb = event_pb2, feed_pb2, query_pb2
        self.out = out
        self.ctx = zmq.Context()
        self.req = None
        self.done = 0       # every matching event with seq <= done has been handled
        self.printed = 0
        self.stop = False
        if args.format == "json":
            self.dump = lambda o: json.dumps(o, ensure_ascii=False, indent=2)
        else:
            self.dump = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":"))

    # -- the query endpoint: resend on a fresh REQ socket when unanswered (lazy pirate) --
    def _open_req(self):
        if self.req is not None:
            self.req.close(linger=0)
        self.req = self.ctx.socket(zmq.REQ)
        self.req.setsockopt(zmq.LINGER, 0)
        self.req.connect(self.a.endpoint)

    def query(self, req):
        data = req.SerializeToString()
        tries = 0
        while True:
            self.req.send(data)
            if self.req.poll(self.QUERY_TIMEOUT_MS, zmq.POLLIN):
                resp = self.q_pb.QueryResponse()
                resp.ParseFromString(self.req.recv())
                if resp.status != 0:
                    raise RuntimeError(f"query failed: {resp.status} {resp.error}")
                return resp
            tries += 1
            if tries == 1 or tries % 10 == 0:
                print(f"aidstat_subscriber: no answer from {self.a.endpoint}, retrying",
                      file=sys.stderr)
            self._open_req()

    def ledger_seq(self):
        req = self.q_pb.QueryRequest()
        req.status.SetInParent()
        return self.query(req).status_info.ledger_seq

    # -- output --
    def emit(self, hdr, ev):
        if self.a.until_seq and hdr.seq > self.a.until_seq:
            self.done = self.a.until_seq
            self.stop = True
            return
        self.out.write(self.dump(event_json(hdr, ev, self.ev_pb)) + "\n")
        self.done = hdr.seq
        self.printed += 1
        if self.a.count and self.printed >= self.a.count:
            self.stop = True
        if self.a.until_seq and self.done >= self.a.until_seq:
            self.stop = True

    def replay_to(self, target=None):
        """Replays from done+1 until done >= target (None: the end of the log)."""
        start, printed = self.done, self.printed
        while not self.stop and (target is None or self.done < target):
            req = self.q_pb.QueryRequest()
            req.replay.from_seq = self.done + 1
            req.replay.limit = self.a.page
            req.replay.county_prefix = self.a.county
            r = self.query(req).replay
            before = self.done
            for it in r.items:
                if self.stop:
                    break
                if it.header.seq > self.done:
                    self.emit(it.header, it.event)
            if not self.stop:
                # everything below next_seq was scanned (other counties' events included);
                # an empty page means the scan reached the end of the log
                if r.next_seq > self.done + 1:
                    self.done = r.next_seq - 1
                if not r.items and r.last_seq > self.done:
                    self.done = r.last_seq
            self.out.flush()
            if self.done >= r.last_seq:
                break
            if self.done == before:
                print(f"aidstat_subscriber: replay from {before + 1} made no progress",
                      file=sys.stderr)
                break
        if self.a.until_seq and self.done >= self.a.until_seq:
            self.stop = True
        if target is not None and self.printed > printed and not self.a.quiet:
            print(f"aidstat_subscriber: gap filled by replay: seq {start + 1}..{self.done}, "
                  f"{self.printed - printed} events", file=sys.stderr)

    # -- live --
    def recv_batch(self, sub, limit=1024):
        batch = []
        while len(batch) < limit:
            try:
                parts = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            topic = parts[0]
            if len(parts) < 2 or not (topic.startswith(b"ev.") or topic == b"hb"):
                continue
            hdr = self.feed_pb.FeedHeader()
            hdr.ParseFromString(parts[1])
            is_event = topic.startswith(b"ev.")
            if is_event and len(parts) < 3:
                continue
            batch.append((hdr.seq, is_event, hdr, parts[2] if is_event else None))
        return batch

    def process(self, batch):
        newest = max((b[0] for b in batch), default=0)
        hb = max((b[0] for b in batch if not b[1]), default=0)
        for seq, is_event, hdr, payload in batch:
            if self.stop:
                break
            if not is_event or seq <= self.done:
                continue
            if seq != self.done + 1:
                self.replay_to(newest)  # a hole (or, with a filter, maybe other counties)
                continue
            ev = self.ev_pb.Event()
            ev.ParseFromString(payload)
            self.emit(hdr, ev)
        if not self.stop and hb > self.done:
            self.replay_to(hb)  # the heartbeat follows the events it counts
        self.out.flush()

    def run(self):
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 10000)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, ("ev." + self.a.county).encode())
        sub.setsockopt(zmq.SUBSCRIBE, b"hb")
        sub.connect(self.a.feed)  # 1. subscribe first
        self._open_req()
        if self.a.from_seq < 0:
            self.done = self.ledger_seq()  # new events only
        else:
            self.done = max(self.a.from_seq - 1, 0)
            self.replay_to(None)  # 2. replay up to the end of the log
        while not self.stop:  # 3. live, filling holes by replay
            if sub.poll(1000, zmq.POLLIN):
                self.process(self.recv_batch(sub))
        sub.close(linger=0)
        self.req.close(linger=0)
        self.ctx.term()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--from", dest="from_seq", type=int, default=-1,
                   help="first sequence number to print (1: the whole log; -1: new only)")
    p.add_argument("--county", default="", help="county code prefix (3607: a city)")
    p.add_argument("--format", choices=["ndjson", "json"], default="ndjson")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:7603", help="query endpoint")
    p.add_argument("--feed", default="tcp://127.0.0.1:7602", help="feed endpoint")
    p.add_argument("--count", type=int, default=0, help="stop after this many events")
    p.add_argument("--until-seq", type=int, default=0,
                   help="stop once every event up to this sequence was printed")
    p.add_argument("--page", type=int, default=5000, help="events per replay request")
    p.add_argument("--quiet", action="store_true", help="do not report filled gaps")
    p.add_argument("--proto-dir", default=DEFAULT_PROTO, help="the project's proto/ folder")
    p.add_argument("--cache-dir", default=None, help="where the generated classes are kept")
    a = p.parse_args(argv)
    if a.county and (not a.county.isdigit() or len(a.county) > 6):
        p.error("--county wants up to 6 digits")
    pbs = load_protos(a.proto_dir, a.cache_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        Subscriber(a, *pbs).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
