/* query: the query endpoint (ROUTER) — totals, status, replay and backup. */
#include "query.h"
#include "division.h"
#include "err.h"
#include "feed.h"
#include "log.h"
#include "zpoll.h"

#include "aidstat/v1/query.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_MAX_FRAMES  8                  /* envelope frames kept; more makes it malformed */
#define S_MAXMSGSIZE  (16 * 1024 * 1024) /* a request larger than this is refused by ZeroMQ */
#define S_RECV_BUDGET 64
#define S_LINGER_MS   500

typedef struct {
    zmq_msg_t frame[S_MAX_FRAMES]; /* envelope (routing id, empty delimiter of REQ) */
    int n;
} s_envelope_t;

typedef struct s_backup_s {
    uv_work_t work;
    struct as_query_s *q;
    s_envelope_t env;
    char *dir;
    int rc;
} s_backup_t;

struct as_query_s {
    void *router;
    as_zpoll_t *zp;
    as_ledger_t *ledger; /* borrowed */
    as_query_live_cb live_cb;
    void *live_ctx;
    uv_loop_t *loop;
    int backups; /* backups running; the struct lives until they end */
    bool closed; /* destroy was called */
    uint64_t answered;
    uint64_t malformed;
    uint8_t *buf;
    size_t cap;
    as_query_registry_cb registry_cb; /* year-end handlers, see as_query_set_yearend */
    as_query_report_cb report_cb;
    void *yearend_ctx;
};

static void s_env_close(s_envelope_t *e)
{
    for (int i = 0; i < e->n; i++)
        zmq_msg_close(&e->frame[i]);
    e->n = 0;
}

/* Sends the envelope then the packed response. */
static void s_send(as_query_t *q, s_envelope_t *env, const Aidstat__V1__QueryResponse *r)
{
    size_t len = aidstat__v1__query_response__get_packed_size(r);
    if (len > q->cap) {
        uint8_t *b = realloc(q->buf, len);
        if (!b) {
            AS_ERROR("query", "out of memory for an answer of %zu bytes", len);
            return;
        }
        q->buf = b;
        q->cap = len;
    }
    aidstat__v1__query_response__pack(r, q->buf);
    for (int i = 0; i < env->n; i++) {
        zmq_msg_t c;
        zmq_msg_init(&c);
        zmq_msg_copy(&c, &env->frame[i]);
        if (zmq_msg_send(&c, q->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&c);
            goto drop;
        }
    }
    if (zmq_send(q->router, q->buf, len, ZMQ_DONTWAIT) < 0)
        goto drop;
    q->answered++;
    return;
drop:
    AS_WARN("query", "answer of %zu bytes dropped: %s (the client went away)", len,
            zmq_strerror(zmq_errno()));
}

static void s_send_error(as_query_t *q, s_envelope_t *env, int code, const char *msg)
{
    Aidstat__V1__QueryResponse r = AIDSTAT__V1__QUERY_RESPONSE__INIT;
    r.status = code ? code : AS_E_INVALID;
    r.error = (char *)msg;
    s_send(q, env, &r);
}

/* ---- totals ------------------------------------------------------------------------------- */

static void s_measures(const as_measures_t *m, Aidstat__V1__Measures *p)
{
    aidstat__v1__measures__init(p);
    p->activities = m->activities;
    p->organisations = m->organisations;
    p->beneficiaries = m->beneficiaries;
    p->registered_poor = m->registered_poor;
    p->funds_fen = m->funds_fen;
    p->goods_fen = m->goods_fen;
    p->volunteers = m->volunteers;
    p->volunteer_hours_tenths = m->volunteer_tenths;
    p->social_workers = m->social_workers;
    p->persons_lifted = m->persons_lifted;
    p->jobs = m->jobs;
    p->trainees = m->trainees;
    p->income_increase_fen = m->income_fen;
    p->villages = m->villages;
    p->deep_poverty_villages = m->deep_villages;
    p->counties = m->counties;
}

static void s_totals(as_query_t *q, s_envelope_t *env, const Aidstat__V1__TotalsRequest *t)
{
    char msg[160];
    const char *by_name = t->by && *t->by ? t->by : "province";
    int by = as_dim_parse(by_name);
    if (by < 0) {
        snprintf(msg, sizeof msg,
                 "unknown dimension '%.40s' (province, city, county, area, "
                 "supervisor, org, month, group, funding, project, poverty)",
                 by_name);
        s_send_error(q, env, AS_E_INVALID, msg);
        return;
    }
    if (t->year < 1900 || t->year > 9999) {
        snprintf(msg, sizeof msg, "year %u is not a year", t->year);
        s_send_error(q, env, AS_E_INVALID, msg);
        return;
    }
    if (t->county && !as_division_find(t->county) && t->county != 360000) {
        snprintf(msg, sizeof msg, "%06u is not a city or county of the province", t->county);
        s_send_error(q, env, AS_E_INVALID, msg);
        return;
    }
    as_filter_t filter = {.county = t->county == 360000 ? 0 : t->county, .supervisor = -1};
    as_totals_row_t *rows = NULL;
    size_t n = 0;
    as_measures_t total;
    memset(&total, 0, sizeof total);
    int rc = as_ledger_totals(q->ledger, t->year, (as_dim_t)by, &filter, &rows, &n, &total);
    if (rc) {
        snprintf(msg, sizeof msg, "totals could not be read: %s", as_strerror(rc));
        s_send_error(q, env, rc, msg);
        return;
    }
    Aidstat__V1__TotalsRow *prow = calloc(n ? n : 1, sizeof *prow);
    Aidstat__V1__TotalsRow **pp = calloc(n ? n : 1, sizeof *pp);
    Aidstat__V1__Measures *pm = calloc(n ? n : 1, sizeof *pm);
    if (!prow || !pp || !pm) {
        s_send_error(q, env, AS_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        aidstat__v1__totals_row__init(&prow[i]);
        prow[i].key = rows[i].key;
        prow[i].name = rows[i].name;
        s_measures(&rows[i].m, &pm[i]);
        prow[i].measures = &pm[i];
        pp[i] = &prow[i];
    }
    Aidstat__V1__Measures ptotal;
    s_measures(&total, &ptotal);
    Aidstat__V1__TotalsResponse tr = AIDSTAT__V1__TOTALS_RESPONSE__INIT;
    tr.year = t->year;
    tr.by = (char *)as_dim_name((as_dim_t)by);
    tr.n_rows = n;
    tr.rows = pp;
    tr.total = &ptotal;
    Aidstat__V1__QueryResponse r = AIDSTAT__V1__QUERY_RESPONSE__INIT;
    r.body_case = AIDSTAT__V1__QUERY_RESPONSE__BODY_TOTALS;
    r.totals = &tr;
    s_send(q, env, &r);
done:
    free(prow);
    free(pp);
    free(pm);
    free(rows);
}

/* ---- status ------------------------------------------------------------------------------- */

static void s_status(as_query_t *q, s_envelope_t *env)
{
    as_collector_info_t *stored = NULL;
    size_t ns = 0, nl = 0;
    as_collector_live_t *live = NULL;
    int rc = as_ledger_collectors(q->ledger, &stored, &ns);
    if (rc) {
        s_send_error(q, env, rc, "collector states could not be read");
        return;
    }
    if (q->live_cb && q->live_cb(q->live_ctx, &live, &nl) != 0)
        nl = 0;
    size_t cap = ns + nl;
    Aidstat__V1__CollectorStatus *cs = calloc(cap ? cap : 1, sizeof *cs);
    Aidstat__V1__CollectorStatus **pp = calloc(cap ? cap : 1, sizeof *pp);
    if (!cs || !pp) {
        s_send_error(q, env, AS_E_NOMEM, "out of memory");
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < ns; i++, n++) {
        Aidstat__V1__CollectorStatus *c = &cs[n];
        aidstat__v1__collector_status__init(c);
        c->collector_id = stored[i].st.collector_id;
        c->county_code = stored[i].st.county;
        c->last_heard_ms = stored[i].st.last_heard_ms;
        c->backlog = stored[i].st.backlog;
        c->rejected = stored[i].rejected;
        c->accepted = stored[i].accepted;
        c->duplicates = stored[i].duplicates;
        c->software_version = stored[i].st.version;
        c->last_batch_seq = stored[i].st.last_batch_seq;
    }
    for (size_t j = 0; j < nl; j++) {
        Aidstat__V1__CollectorStatus *c = NULL;
        for (size_t i = 0; i < ns && !c; i++)
            if (!strcmp(cs[i].collector_id, live[j].collector_id))
                c = &cs[i];
        if (!c) {
            c = &cs[n++];
            aidstat__v1__collector_status__init(c);
            c->collector_id = live[j].collector_id;
            c->software_version = live[j].version;
        }
        c->county_code = live[j].county;
        c->connected = live[j].connected;
        if (live[j].last_heard_ms > c->last_heard_ms)
            c->last_heard_ms = live[j].last_heard_ms;
        c->backlog = live[j].backlog;
        c->rejected += live[j].rejected_extra;
        if (live[j].last_batch_seq > c->last_batch_seq)
            c->last_batch_seq = live[j].last_batch_seq;
        if (live[j].version[0])
            c->software_version = live[j].version;
    }
    for (size_t i = 0; i < n; i++)
        pp[i] = &cs[i];
    Aidstat__V1__StatusResponse sr = AIDSTAT__V1__STATUS_RESPONSE__INIT;
    sr.n_collectors = n;
    sr.collectors = pp;
    sr.ledger_seq = as_ledger_last_seq(q->ledger);
    sr.events = sr.ledger_seq; /* the log is gap-free from 1 */
    Aidstat__V1__QueryResponse r = AIDSTAT__V1__QUERY_RESPONSE__INIT;
    r.body_case = AIDSTAT__V1__QUERY_RESPONSE__BODY_STATUS_INFO;
    r.status_info = &sr;
    s_send(q, env, &r);
done:
    free(cs);
    free(pp);
    free(stored);
    free(live);
}

/* ---- replay ------------------------------------------------------------------------------- */

typedef struct {
    Aidstat__V1__ReplayItem *items;
    Aidstat__V1__ReplayItem **pp;
    Aidstat__V1__FeedHeader *hdr;
    size_t n, cap;
    int rc;
} s_replay_t;

static int s_replay_cb(void *ctx, const as_log_entry_t *e, const uint8_t *pb, size_t pb_len)
{
    s_replay_t *r = ctx;
    if (r->n == r->cap)
        return 1;
    Aidstat__V1__Event *ev = aidstat__v1__event__unpack(NULL, pb_len, pb);
    if (!ev) {
        AS_ERROR("query", "event-log entry %llu does not decode; replay stops before it",
                 (unsigned long long)e->seq);
        r->rc = AS_E_DB;
        return 1;
    }
    Aidstat__V1__FeedHeader *h = &r->hdr[r->n];
    aidstat__v1__feed_header__init(h);
    h->seq = e->seq;
    h->kind = as_feed_kind(&e->ev);
    h->commit_time_ms = e->commit_ms;
    h->county_code = e->ev.county;
    h->flags = e->ev.flags;
    Aidstat__V1__ReplayItem *it = &r->items[r->n];
    aidstat__v1__replay_item__init(it);
    it->header = h;
    it->event = ev;
    r->pp[r->n] = it;
    r->n++;
    return 0;
}

static void s_replay(as_query_t *q, s_envelope_t *env, const Aidstat__V1__ReplayRequest *req)
{
    s_replay_t r = {0};
    r.cap = req->limit && req->limit < AS_REPLAY_MAX ? req->limit : AS_REPLAY_MAX;
    r.items = calloc(r.cap, sizeof *r.items);
    r.pp = calloc(r.cap, sizeof *r.pp);
    r.hdr = calloc(r.cap, sizeof *r.hdr);
    if (!r.items || !r.pp || !r.hdr) {
        s_send_error(q, env, AS_E_NOMEM, "out of memory");
        goto done;
    }
    const char *prefix = req->county_prefix ? req->county_prefix : "";
    for (const char *c = prefix; *c; c++)
        if (*c < '0' || *c > '9' || c - prefix >= 6) {
            s_send_error(q, env, AS_E_INVALID, "county_prefix wants up to 6 digits");
            goto done;
        }
    uint64_t next = 0, last = 0;
    uint64_t from = req->from_seq ? req->from_seq : 1;
    int rc = as_ledger_replay(q->ledger, from, r.cap, prefix, s_replay_cb, &r, &next, &last);
    if (rc || r.rc) {
        s_send_error(q, env, rc ? rc : r.rc, "the event log could not be read");
        goto done;
    }
    Aidstat__V1__ReplayResponse rr = AIDSTAT__V1__REPLAY_RESPONSE__INIT;
    rr.n_items = r.n;
    rr.items = r.pp;
    rr.next_seq = next;
    rr.last_seq = last;
    Aidstat__V1__QueryResponse resp = AIDSTAT__V1__QUERY_RESPONSE__INIT;
    resp.body_case = AIDSTAT__V1__QUERY_RESPONSE__BODY_REPLAY;
    resp.replay = &rr;
    s_send(q, env, &resp);
done:
    for (size_t i = 0; i < r.n; i++)
        aidstat__v1__event__free_unpacked(r.items[i].event, NULL);
    free(r.items);
    free(r.pp);
    free(r.hdr);
}

/* ---- backup (on a worker thread: a compacting copy takes a while) ------------------------ */

static void s_backup_work(uv_work_t *w)
{
    s_backup_t *b = w->data;
    b->rc = as_ledger_backup(b->q->ledger, b->dir);
    as_ledger_hold_map(b->q->ledger, -1);
}

static void s_backup_done(uv_work_t *w, int status)
{
    s_backup_t *b = w->data;
    as_query_t *q = b->q;
    q->backups--;
    if (!q->closed) {
        char msg[600];
        if (b->rc == 0) {
            snprintf(msg, sizeof msg, "backup written to %s", b->dir);
            AS_INFO("query", "%s", msg);
            Aidstat__V1__SimpleResponse sr = AIDSTAT__V1__SIMPLE_RESPONSE__INIT;
            sr.message = msg;
            Aidstat__V1__QueryResponse r = AIDSTAT__V1__QUERY_RESPONSE__INIT;
            r.body_case = AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE;
            r.simple = &sr;
            s_send(q, &b->env, &r);
        } else {
            snprintf(msg, sizeof msg, "backup to %s failed: %s", b->dir, as_strerror(b->rc));
            AS_ERROR("query", "%s", msg);
            s_send_error(q, &b->env, b->rc, msg);
        }
    }
    s_env_close(&b->env);
    free(b->dir);
    free(b);
    if (q->closed && q->backups == 0) {
        free(q->buf);
        free(q);
    }
}

static void s_backup(as_query_t *q, s_envelope_t *env, const Aidstat__V1__BackupRequest *req)
{
    if (!req->directory || !*req->directory) {
        s_send_error(q, env, AS_E_INVALID, "backup wants a directory");
        return;
    }
    s_backup_t *b = calloc(1, sizeof *b);
    if (!b || !(b->dir = strdup(req->directory))) {
        free(b);
        s_send_error(q, env, AS_E_NOMEM, "out of memory");
        return;
    }
    b->q = q;
    b->work.data = b;
    for (int i = 0; i < env->n; i++) {
        zmq_msg_init(&b->env.frame[i]);
        zmq_msg_move(&b->env.frame[i], &env->frame[i]);
    }
    b->env.n = env->n;
    env->n = 0; /* moved */
    /* held from here, on the loop: as_ledger_backup's own hold starts on the worker, after a
     * growth the loop might have begun meanwhile */
    as_ledger_hold_map(q->ledger, +1);
    int rc = uv_queue_work(q->loop, &b->work, s_backup_work, s_backup_done);
    if (rc) {
        as_ledger_hold_map(q->ledger, -1);
        s_send_error(q, &b->env, rc, "backup could not be started");
        s_env_close(&b->env);
        free(b->dir);
        free(b);
        return;
    }
    q->backups++;
    AS_INFO("query", "backup to %s started", b->dir);
}

/* ---- year-end: registry import and reports ------------------------------------------------ */

void as_query_set_yearend(as_query_t *q, as_query_registry_cb registry, as_query_report_cb report,
                          void *ctx)
{
    q->registry_cb = registry;
    q->report_cb = report;
    q->yearend_ctx = ctx;
}

static void s_yearend(as_query_t *q, s_envelope_t *env, const Aidstat__V1__QueryRequest *req)
{
    char msg[1200] = "";
    int rc;
    if (req->body_case == AIDSTAT__V1__QUERY_REQUEST__BODY_REGISTRY_IMPORT) {
        if (!q->registry_cb) {
            s_send_error(q, env, AS_E_STATE, "not available in this aggregator version");
            return;
        }
        rc = q->registry_cb(q->yearend_ctx, req->registry_import->csv.data,
                            req->registry_import->csv.len, msg, sizeof msg);
    } else {
        if (!q->report_cb) {
            s_send_error(q, env, AS_E_STATE, "not available in this aggregator version");
            return;
        }
        const Aidstat__V1__ReportRequest *r = req->report;
        rc = q->report_cb(q->yearend_ctx, r->year, r->final, r->out_dir ? r->out_dir : "", msg,
                          sizeof msg);
    }
    if (rc) {
        s_send_error(q, env, rc, msg[0] ? msg : as_strerror(rc));
        return;
    }
    Aidstat__V1__SimpleResponse sr = AIDSTAT__V1__SIMPLE_RESPONSE__INIT;
    sr.message = msg;
    Aidstat__V1__QueryResponse resp = AIDSTAT__V1__QUERY_RESPONSE__INIT;
    resp.body_case = AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE;
    resp.simple = &sr;
    s_send(q, env, &resp);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void s_handle(as_query_t *q, s_envelope_t *env, const uint8_t *data, size_t len)
{
    Aidstat__V1__QueryRequest *req = aidstat__v1__query_request__unpack(NULL, len, data);
    if (!req) {
        q->malformed++;
        AS_WARN("query", "undecodable request of %zu bytes answered with an error", len);
        s_send_error(q, env, AS_E_PARSE, "request is not a QueryRequest");
        return;
    }
    switch (req->body_case) {
    case AIDSTAT__V1__QUERY_REQUEST__BODY_TOTALS:
        s_totals(q, env, req->totals);
        break;
    case AIDSTAT__V1__QUERY_REQUEST__BODY_STATUS:
        s_status(q, env);
        break;
    case AIDSTAT__V1__QUERY_REQUEST__BODY_REPLAY:
        s_replay(q, env, req->replay);
        break;
    case AIDSTAT__V1__QUERY_REQUEST__BODY_BACKUP:
        s_backup(q, env, req->backup);
        break;
    case AIDSTAT__V1__QUERY_REQUEST__BODY_REGISTRY_IMPORT:
    case AIDSTAT__V1__QUERY_REQUEST__BODY_REPORT:
        s_yearend(q, env, req);
        break;
    default:
        q->malformed++;
        s_send_error(q, env, AS_E_PARSE, "empty request");
    }
    aidstat__v1__query_request__free_unpacked(req, NULL);
}

static void s_on_readable(void *sock, void *arg)
{
    as_query_t *q = arg;
    for (int round = 0; round < S_RECV_BUDGET; round++) {
        s_envelope_t env = {.n = 0};
        zmq_msg_t body;
        zmq_msg_init(&body);
        if (zmq_msg_recv(&body, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&body);
            return;
        }
        bool overflow = false;
        while (zmq_msg_more(&body)) {
            if (env.n < S_MAX_FRAMES) {
                zmq_msg_init(&env.frame[env.n]);
                zmq_msg_move(&env.frame[env.n++], &body);
            } else {
                overflow = true;
            }
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, sock, 0) < 0)
                break;
        }
        if (overflow || env.n == 0) {
            q->malformed++;
            AS_WARN("query", "request with %s envelope dropped", overflow ? "an oversized" : "no");
        } else {
            s_handle(q, &env, zmq_msg_data(&body), zmq_msg_size(&body));
        }
        zmq_msg_close(&body);
        s_env_close(&env);
    }
}

/* ---- life cycle -------------------------------------------------------------------------------
 */

as_query_t *as_query_new(uv_loop_t *loop, void *zctx, const char *endpoint, as_ledger_t *ledger,
                         as_query_live_cb live_cb, void *live_ctx, int *err)
{
    as_query_t *q = calloc(1, sizeof *q);
    if (!q) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    q->loop = loop;
    q->ledger = ledger;
    q->live_cb = live_cb;
    q->live_ctx = live_ctx;
    as_division_init();
    q->router = zmq_socket(zctx, ZMQ_ROUTER);
    int one = 1, linger = S_LINGER_MS;
    int64_t maxmsg = S_MAXMSGSIZE;
    if (!q->router || zmq_setsockopt(q->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(q->router, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(q->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_bind(q->router, endpoint) != 0) {
        AS_ERROR("query", "cannot bind the query endpoint %s: %s", endpoint,
                 zmq_strerror(zmq_errno()));
        *err = AS_E_ZMQ;
        goto fail;
    }
    if (!(q->zp = as_zpoll_new(loop, q->router, s_on_readable, q, err)))
        goto fail;
    AS_INFO("query", "answering queries on %s", endpoint);
    return q;
fail:
    as_query_destroy(&q);
    return NULL;
}

uint64_t as_query_answered(const as_query_t *q)
{
    return q->answered;
}

uint64_t as_query_malformed(const as_query_t *q)
{
    return q->malformed;
}

void as_query_destroy(as_query_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_query_t *q = *self_p;
    *self_p = NULL;
    as_zpoll_destroy(&q->zp);
    if (q->router)
        zmq_close(q->router);
    q->router = NULL;
    q->closed = true;
    if (q->backups == 0) {
        free(q->buf);
        free(q);
    }
}
