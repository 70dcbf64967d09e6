/* cmd_tail: `aidstat tail` follows the aggregator's feed without gaps: subscribe first, replay
 * from --from through the query endpoint up to what the subscription has seen, then live; drop
 * what was printed, and fill every gap (seen in the sequence numbers or a heartbeat) by replay. */
#include "config.h"
#include "err.h"
#include "commands.h"
#include "event_json.h"

#include "aidstat/v1/feed.pb-c.h"
#include "aidstat/v1/query.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_BATCH       1024  /* live messages taken from the SUB socket before acting on them */
#define S_QUERY_MS    3000  /* a query unanswered this long is resent on a fresh socket */
#define S_SUB_RCVHWM  10000 /* what the SUB side may queue; a drop beyond it is replayed */
#define S_REPORT_GAPS 1     /* say on stderr which gaps were filled */

typedef struct {
    char endpoint[256]; /* query endpoint (ROUTER) */
    char feed[256];     /* feed endpoint (PUB) */
    char county[16];    /* county code prefix, "" for all */
    char format[16];    /* ndjson | json */
    int64_t from;       /* first sequence to print; -1: only what is new */
    int64_t count;      /* stop after printing this many; 0: never */
    int64_t until_seq;  /* stop once everything up to this sequence was printed; 0: never */
    int64_t page;       /* events asked for per replay page */
    bool quiet;         /* no gap notes on stderr */
} s_opts_t;

static const as_cfg_entry_t s_table[] = {
    {"endpoint", AS_CFG_STR, "tcp://127.0.0.1:7603", "the aggregator's query endpoint",
     AS_CFG_FIELD(s_opts_t, endpoint)},
    {"feed", AS_CFG_STR, "tcp://127.0.0.1:7602", "the aggregator's feed endpoint",
     AS_CFG_FIELD(s_opts_t, feed)},
    {"from", AS_CFG_INT, "-1", "first sequence number to print (1: the whole log; -1: new only)",
     AS_CFG_FIELD(s_opts_t, from)},
    {"county", AS_CFG_STR, "", "only counties whose code starts with this (3607: a city)",
     AS_CFG_FIELD(s_opts_t, county)},
    {"format", AS_CFG_STR, "ndjson", "ndjson (one line per event) or json (indented)",
     AS_CFG_FIELD(s_opts_t, format)},
    {"count", AS_CFG_INT, "0", "stop after printing this many events (0: follow forever)",
     AS_CFG_FIELD(s_opts_t, count)},
    {"until-seq", AS_CFG_INT, "0", "stop once every event up to this sequence was printed",
     AS_CFG_FIELD(s_opts_t, until_seq)},
    {"page", AS_CFG_INT, "5000", "events asked for per replay request (the server caps it)",
     AS_CFG_FIELD(s_opts_t, page)},
    {"quiet", AS_CFG_BOOL, "false", "do not report filled gaps on stderr",
     AS_CFG_FIELD(s_opts_t, quiet)},
    AS_CFG_END,
};

static const char s_synopsis[] =
    "aidstat tail [--from SEQ] [--county PREFIX] [--format json|ndjson] [--endpoint EP]\n"
    "             [--feed EP] [--count N] [--until-seq N]\n"
    "Follows the aggregator's event feed without gaps: replays from SEQ, then prints live\n"
    "events, one JSON object per event, each exactly once and in sequence order.";

typedef struct {
    s_opts_t o;
    void *zctx;
    void *sub;         /* SUB on the feed */
    void *req;         /* REQ on the query endpoint, replaced after a timeout */
    size_t json_flags; /* json_dumps flags for the chosen format */
    uint64_t done;     /* every matching event with seq <= done has been printed (or skipped) */
    uint64_t printed;  /* events printed */
    uint64_t replayed; /* of which from replay */
    bool stop;         /* --count or --until-seq reached, or a signal */
} s_tail_t;

static volatile sig_atomic_t s_interrupted;

static void s_on_signal(int sig)
{
    (void)sig;
    s_interrupted = 1;
}

/* ---- output -------------------------------------------------------------------------------- */

/* Prints one event (seq > t->done) and moves t->done to it. Returns 0 or a negative error. */
static int s_emit(s_tail_t *t, const Aidstat__V1__FeedHeader *hdr, const Aidstat__V1__Event *ev)
{
    if (t->o.until_seq > 0 && hdr->seq > (uint64_t)t->o.until_seq) {
        t->done = (uint64_t)t->o.until_seq;
        t->stop = true;
        return 0;
    }
    json_t *j = as_event_json(hdr, ev);
    char *s = j ? json_dumps(j, t->json_flags) : NULL;
    json_decref(j);
    if (!s)
        return AS_E_NOMEM;
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    t->done = hdr->seq;
    t->printed++;
    if (t->o.count > 0 && t->printed >= (uint64_t)t->o.count)
        t->stop = true;
    if (t->o.until_seq > 0 && t->done >= (uint64_t)t->o.until_seq)
        t->stop = true;
    return 0;
}

/* ---- the query endpoint: REQ with resend on a fresh socket (lazy pirate) ------------------ */

static int s_req_open(s_tail_t *t)
{
    if (t->req)
        zmq_close(t->req);
    t->req = zmq_socket(t->zctx, ZMQ_REQ);
    if (!t->req)
        return AS_E_ZMQ;
    int linger = 0;
    zmq_setsockopt(t->req, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(t->req, t->o.endpoint) != 0) {
        fprintf(stderr, "aidstat tail: query endpoint %s: %s\n", t->o.endpoint,
                zmq_strerror(zmq_errno()));
        return AS_E_ZMQ;
    }
    return 0;
}

/* Sends req and waits for its answer, resending on a new socket while the aggregator does not
 * answer (it may be restarting). Returns 0 with *resp (caller frees) or a negative error. */
static int s_query(s_tail_t *t, const Aidstat__V1__QueryRequest *req,
                   Aidstat__V1__QueryResponse **resp)
{
    size_t len = aidstat__v1__query_request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return AS_E_NOMEM;
    aidstat__v1__query_request__pack(req, buf);
    int rc = AS_E_TIMEOUT, tries = 0;
    while (!s_interrupted) {
        if (zmq_send(t->req, buf, len, 0) < 0) {
            rc = AS_E_ZMQ;
            break;
        }
        zmq_pollitem_t pi = {t->req, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&pi, 1, S_QUERY_MS);
        if (n > 0) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, t->req, 0) < 0) {
                zmq_msg_close(&m);
                rc = AS_E_ZMQ;
                break;
            }
            *resp = aidstat__v1__query_response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            zmq_msg_close(&m);
            rc = *resp ? 0 : AS_E_PROTO;
            break;
        }
        if (n < 0 && zmq_errno() != EINTR) {
            rc = AS_E_ZMQ;
            break;
        }
        if (++tries == 1 || tries % 10 == 0)
            fprintf(stderr, "aidstat tail: no answer from %s, retrying\n", t->o.endpoint);
        if ((rc = s_req_open(t)) != 0)
            break;
        rc = AS_E_TIMEOUT;
    }
    free(buf);
    return rc;
}

/* The newest sequence number in the event log. */
static int s_ledger_seq(s_tail_t *t, uint64_t *seq)
{
    Aidstat__V1__StatusRequest st = AIDSTAT__V1__STATUS_REQUEST__INIT;
    Aidstat__V1__QueryRequest req = AIDSTAT__V1__QUERY_REQUEST__INIT;
    req.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_STATUS;
    req.status = &st;
    Aidstat__V1__QueryResponse *resp = NULL;
    int rc = s_query(t, &req, &resp);
    if (rc)
        return rc;
    if (resp->status != 0 || resp->body_case != AIDSTAT__V1__QUERY_RESPONSE__BODY_STATUS_INFO) {
        fprintf(stderr, "aidstat tail: status: %s\n", resp->error ? resp->error : "no answer");
        rc = AS_E_PROTO;
    } else
        *seq = resp->status_info->ledger_seq;
    aidstat__v1__query_response__free_unpacked(resp, NULL);
    return rc;
}

/* Replays the event log from t->done + 1 until t->done >= target or the log ends (target
 * UINT64_MAX: to the end), printing each matching event. Returns 0 or a negative error. */
static int s_replay_to(s_tail_t *t, uint64_t target)
{
    uint64_t start = t->done, printed = t->printed;
    int rc = 0;
    while (!t->stop && !s_interrupted && t->done < target) {
        Aidstat__V1__ReplayRequest rr = AIDSTAT__V1__REPLAY_REQUEST__INIT;
        rr.from_seq = t->done + 1;
        rr.limit = (uint32_t)t->o.page;
        rr.county_prefix = t->o.county;
        Aidstat__V1__QueryRequest req = AIDSTAT__V1__QUERY_REQUEST__INIT;
        req.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REPLAY;
        req.replay = &rr;
        Aidstat__V1__QueryResponse *resp = NULL;
        if ((rc = s_query(t, &req, &resp)) != 0)
            break;
        if (resp->status != 0 || resp->body_case != AIDSTAT__V1__QUERY_RESPONSE__BODY_REPLAY) {
            fprintf(stderr, "aidstat tail: replay from %" PRIu64 ": %s\n", rr.from_seq,
                    resp->error && *resp->error ? resp->error : "unexpected answer");
            aidstat__v1__query_response__free_unpacked(resp, NULL);
            rc = AS_E_PROTO;
            break;
        }
        Aidstat__V1__ReplayResponse *r = resp->replay;
        uint64_t before = t->done;
        for (size_t i = 0; i < r->n_items && !t->stop && rc == 0; i++) {
            Aidstat__V1__ReplayItem *it = r->items[i];
            if (!it->header || !it->event || it->header->seq <= t->done)
                continue;
            rc = s_emit(t, it->header, it->event);
            t->replayed++;
        }
        /* Everything below next_seq was scanned: with a county filter the events in between
         * belong to other counties. An empty page means the scan reached the log's end. */
        if (!t->stop) {
            if (r->next_seq > t->done + 1)
                t->done = r->next_seq - 1;
            if (r->n_items == 0 && r->last_seq > t->done)
                t->done = r->last_seq;
        }
        bool progress = t->done > before;
        bool at_end = t->done >= r->last_seq;
        aidstat__v1__query_response__free_unpacked(resp, NULL);
        fflush(stdout);
        if (rc || at_end)
            break;
        if (!progress) {
            fprintf(stderr, "aidstat tail: replay from %" PRIu64 " made no progress\n",
                    rr.from_seq);
            break;
        }
    }
    if (t->o.until_seq > 0 && t->done >= (uint64_t)t->o.until_seq)
        t->stop = true;
    if (!t->o.quiet && target != UINT64_MAX && t->printed > printed)
        fprintf(stderr,
                "aidstat tail: gap filled by replay: seq %" PRIu64 "..%" PRIu64 ", %" PRIu64
                " events\n",
                start + 1, t->done, t->printed - printed);
    return rc;
}

/* ---- the feed ------------------------------------------------------------------------------- */

typedef struct {
    uint64_t seq;
    bool is_event;                /* else a heartbeat */
    Aidstat__V1__FeedHeader *hdr; /* owned */
    zmq_msg_t payload;            /* the packed Event */
} s_live_t;

/* Receives one multipart feed message without waiting. Returns 1 when one was taken, 0 when
 * none is queued, a negative error otherwise. Messages of other topics are skipped (return 2). */
static int s_recv_live(s_tail_t *t, s_live_t *out)
{
    zmq_msg_t part[3];
    int n = 0, more = 1, rc = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, t->sub, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            rc = (zmq_errno() == EAGAIN || zmq_errno() == EINTR) && n == 0 ? 0 : AS_E_ZMQ;
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 3)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (rc == 1) {
        const char *topic = zmq_msg_data(&part[0]);
        size_t tl = zmq_msg_size(&part[0]);
        bool ev = tl > 3 && memcmp(topic, "ev.", 3) == 0;
        bool hb = tl == 2 && memcmp(topic, "hb", 2) == 0;
        out->hdr = n >= 2 ? aidstat__v1__feed_header__unpack(NULL, zmq_msg_size(&part[1]),
                                                             zmq_msg_data(&part[1]))
                          : NULL;
        if ((!ev && !hb) || !out->hdr || (ev && n < 3)) {
            if (out->hdr)
                aidstat__v1__feed_header__free_unpacked(out->hdr, NULL);
            out->hdr = NULL;
            rc = 2;
        } else {
            out->is_event = ev;
            out->seq = out->hdr->seq;
            zmq_msg_init(&out->payload);
            if (ev)
                zmq_msg_move(&out->payload, &part[2]);
        }
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
    return rc;
}

static void s_live_free(s_live_t *l)
{
    aidstat__v1__feed_header__free_unpacked(l->hdr, NULL);
    l->hdr = NULL;
    zmq_msg_close(&l->payload);
}

/* Acts on one batch of live messages: prints what follows on directly, replays when the
 * sequence numbers show a gap (or may hide one, with a county filter), and replays up to the
 * newest heartbeat when it is ahead of what was printed. */
static int s_process(s_tail_t *t, s_live_t *b, size_t n)
{
    uint64_t newest = 0, hb = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i].seq > newest)
            newest = b[i].seq;
        if (!b[i].is_event && b[i].seq > hb)
            hb = b[i].seq;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && !t->stop; i++) {
        if (!b[i].is_event || b[i].seq <= t->done)
            continue; /* heartbeats are handled below; seen events are dropped */
        if (b[i].seq != t->done + 1) {
            /* A hole before this event: lost at a high-water mark or while disconnected, or,
             * with a county filter, maybe just other counties' events. The log knows. */
            rc = s_replay_to(t, newest);
            continue;
        }
        Aidstat__V1__Event *ev = aidstat__v1__event__unpack(NULL, zmq_msg_size(&b[i].payload),
                                                            zmq_msg_data(&b[i].payload));
        if (!ev) {
            /* An undecodable live copy: take the event from the log instead. */
            rc = s_replay_to(t, b[i].seq);
            continue;
        }
        rc = s_emit(t, b[i].hdr, ev);
        aidstat__v1__event__free_unpacked(ev, NULL);
    }
    /* The heartbeat is sent after the events it counts: anything up to it that is still missing
     * was lost (or filtered out: the replay then costs one scan and prints nothing). */
    if (rc == 0 && !t->stop && hb > t->done)
        rc = s_replay_to(t, hb);
    fflush(stdout);
    return rc;
}

static int s_sub_open(s_tail_t *t)
{
    t->sub = zmq_socket(t->zctx, ZMQ_SUB);
    if (!t->sub)
        return AS_E_ZMQ;
    int hwm = S_SUB_RCVHWM, linger = 0, ivl = 1000, ttl = 5000;
    zmq_setsockopt(t->sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(t->sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(t->sub, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(t->sub, ZMQ_HEARTBEAT_TIMEOUT, &ttl, sizeof ttl);
    char topic[32];
    snprintf(topic, sizeof topic, "ev.%s", t->o.county);
    if (zmq_setsockopt(t->sub, ZMQ_SUBSCRIBE, topic, strlen(topic)) != 0 ||
        zmq_setsockopt(t->sub, ZMQ_SUBSCRIBE, "hb", 2) != 0)
        return AS_E_ZMQ;
    if (zmq_connect(t->sub, t->o.feed) != 0) {
        fprintf(stderr, "aidstat tail: feed endpoint %s: %s\n", t->o.feed,
                zmq_strerror(zmq_errno()));
        return AS_E_ZMQ;
    }
    return 0;
}

static int s_follow(s_tail_t *t)
{
    s_live_t *batch = calloc(S_BATCH, sizeof *batch);
    if (!batch)
        return AS_E_NOMEM;
    int rc = 0;
    while (rc == 0 && !t->stop && !s_interrupted) {
        zmq_pollitem_t pi = {t->sub, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&pi, 1, 1000);
        if (n < 0) {
            if (zmq_errno() != EINTR)
                rc = AS_E_ZMQ;
            continue;
        }
        size_t k = 0;
        while (k < S_BATCH) {
            int r = s_recv_live(t, &batch[k]);
            if (r < 0)
                rc = r;
            if (r == 1)
                k++;
            else if (r != 2)
                break;
        }
        if (rc == 0)
            rc = s_process(t, batch, k);
        for (size_t i = 0; i < k; i++)
            s_live_free(&batch[i]);
    }
    free(batch);
    return rc;
}

int as_cmd_tail(int argc, char **argv)
{
    s_tail_t t = {0};
    char err[512];
    int rc = as_config_load(s_table, &t.o, &argc, argv, s_synopsis, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "aidstat tail: %s\n", err);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "aidstat tail: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (!strcmp(t.o.format, "ndjson"))
        t.json_flags = JSON_COMPACT | JSON_REAL_PRECISION(15);
    else if (!strcmp(t.o.format, "json"))
        t.json_flags = JSON_INDENT(2) | JSON_REAL_PRECISION(15);
    else {
        fprintf(stderr, "aidstat tail: --format wants json or ndjson, not '%s'\n", t.o.format);
        return 2;
    }
    for (const char *c = t.o.county; *c; c++)
        if (*c < '0' || *c > '9' || c - t.o.county >= 6) {
            fprintf(stderr, "aidstat tail: --county wants up to 6 digits, not '%s'\n", t.o.county);
            return 2;
        }
    if (t.o.page < 1 || t.o.page > 100000)
        t.o.page = 5000;

    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    t.zctx = zmq_ctx_new();
    if (!t.zctx)
        return 1;
    /* Subscribe before anything else, so that whatever the replay does not cover arrives live. */
    if ((rc = s_sub_open(&t)) != 0 || (rc = s_req_open(&t)) != 0)
        goto done;
    if (t.o.from < 0) {
        if ((rc = s_ledger_seq(&t, &t.done)) != 0)
            goto done;
    } else {
        t.done = t.o.from > 0 ? (uint64_t)t.o.from - 1 : 0;
        if ((rc = s_replay_to(&t, UINT64_MAX)) != 0)
            goto done;
    }
    rc = s_follow(&t);
done:
    fflush(stdout);
    if (t.sub)
        zmq_close(t.sub);
    if (t.req)
        zmq_close(t.req);
    zmq_ctx_term(t.zctx);
    if (rc && !s_interrupted) {
        fprintf(stderr, "aidstat tail: stopped after seq %" PRIu64 ": %s\n", t.done,
                as_strerror(rc));
        return 1;
    }
    return 0;
}
