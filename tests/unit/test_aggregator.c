/* test_aggregator: the daemon object end to end on ipc:// in a temporary folder — a batch through
 * the ingest reaches the feed in sequence order ([ev.<county>, FeedHeader, Event]) and the commit
 * listeners, the query endpoint answers totals, status, replay and malformed requests, a large
 * group reaches the feed in slices between loop iterations (and whole before a stop closes it),
 * and a stop ends the loop cleanly. The loop is driven from the test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aggregator.h"
#include "err.h"
#include "feed.h"
#include "event.h"
#include "wire.h"

#include "aidstat/v1/feed.pb-c.h"
#include "aidstat/v1/ingest.pb-c.h"
#include "aidstat/v1/query.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#define COUNTY 360730

typedef struct {
    char dir[64];
    char ingest[128], feed[128], query[128];
    as_aggregator_t *agg;
    void *zctx; /* the test's own sockets */
    size_t committed;
    uint64_t published_at_commit; /* the feed's count when the last commit's listeners ran */
} fx_t;

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_uscc(const char *first17, char out[19])
{
    static const char cs[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    static const int w[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (int)(strchr(cs, first17[i]) - cs) * w[i];
    int c = 31 - sum % 31;
    memcpy(out, first17, 17);
    out[17] = cs[c == 31 ? 0 : c];
    out[18] = 0;
}

static void s_event(as_event_t *ev, const char *event_id, const char *funds)
{
    char code[19];
    s_uscc("53360730500019795", code);
    as_row_t row;
    memset(&row, 0, sizeof row);
    const char *cells[][2] = {
        {"event_id", event_id},    {"county_code", "360730"},
        {"org_credit_code", code}, {"org_name", "宁都县测试基金会"},
        {"area", "health"},        {"activity_date", "2026-02-03"},
        {"beneficiaries", "4"},    {"registered_poor", "1"},
        {"funds_yuan", funds},     {"volunteer_hours", "2.5"},
    };
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        int c = as_column_lookup(cells[i][0]);
        assert_true(c >= 0);
        row.cell[c] = cells[i][1];
        row.len[c] = strlen(cells[i][1]);
    }
    as_validate_ctx_t ctx = {.county = COUNTY, .today = as_today_cst()};
    as_row_errors_t errs;
    int rc = as_event_from_row(&row, &ctx, ev, &errs);
    if (rc)
        fprintf(stderr, "test event invalid: %s: %s\n", errs.e[0].column, errs.e[0].reason_en);
    assert_int_equal(rc, 0);
}

static void s_on_commit(void *arg, const as_commit_info_t *info, const as_committed_t *evs,
                        size_t n)
{
    fx_t *f = arg;
    (void)info;
    (void)evs;
    f->committed += n;
    f->published_at_commit = as_feed_published(as_aggregator_feed(f->agg));
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_aggregator.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ingest, sizeof f->ingest, "ipc://%s/ingest.sock", f->dir);
    snprintf(f->feed, sizeof f->feed, "ipc://%s/feed.sock", f->dir);
    snprintf(f->query, sizeof f->query, "ipc://%s/query.sock", f->dir);
    as_aggregator_opts_t o = {.data_dir = f->dir,
                              .ingest = f->ingest,
                              .feed = f->feed,
                              .query = f->query,
                              .no_sync = true};
    int err = 0;
    f->agg = as_aggregator_new(&o, &err);
    assert_non_null(f->agg);
    assert_int_equal(as_aggregator_on_commit(f->agg, s_on_commit, f), 0);
    f->zctx = zmq_ctx_new();
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_aggregator_stop(f->agg);
    assert_int_equal(as_aggregator_run(f->agg), 0);
    as_aggregator_destroy(&f->agg);
    as_aggregator_destroy(&f->agg); /* safe twice */
    zmq_ctx_term(f->zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void s_pump(fx_t *f)
{
    uv_run(as_aggregator_loop(f->agg), UV_RUN_NOWAIT);
}

static void *s_socket(fx_t *f, int type, const char *ep)
{
    void *s = zmq_socket(f->zctx, type);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(s, ep), 0);
    return s;
}

/* Receives one multipart message (up to 4 frames) while driving the loop; returns frames. */
static int s_recv(fx_t *f, void *s, zmq_msg_t *parts, int max, int timeout_ms)
{
    uint64_t end = s_ms() + (uint64_t)timeout_ms;
    while (s_ms() < end) {
        s_pump(f);
        zmq_msg_init(&parts[0]);
        if (zmq_msg_recv(&parts[0], s, ZMQ_DONTWAIT) >= 0) {
            int n = 1;
            while (zmq_msg_more(&parts[n - 1]) && n < max) {
                zmq_msg_init(&parts[n]);
                assert_true(zmq_msg_recv(&parts[n], s, 0) >= 0);
                n++;
            }
            return n;
        }
        zmq_msg_close(&parts[0]);
        usleep(1000);
    }
    return 0;
}

static void s_close_parts(zmq_msg_t *p, int n)
{
    for (int i = 0; i < n; i++)
        zmq_msg_close(&p[i]);
}

static void s_ingest_send(void *d, Aidstat__V1__IngestMessage *m)
{
    uint8_t buf[65536];
    size_t len = aidstat__v1__ingest_message__pack(m, buf);
    assert_true(zmq_send(d, buf, len, 0) == (int)len);
}

static Aidstat__V1__QueryResponse *s_query(fx_t *f, void *req, Aidstat__V1__QueryRequest *q)
{
    uint8_t buf[4096];
    size_t len = aidstat__v1__query_request__pack(q, buf);
    assert_true(zmq_send(req, buf, len, 0) == (int)len);
    zmq_msg_t p[2];
    int n = s_recv(f, req, p, 2, 5000);
    assert_int_equal(n, 1);
    Aidstat__V1__QueryResponse *r =
        aidstat__v1__query_response__unpack(NULL, zmq_msg_size(&p[0]), zmq_msg_data(&p[0]));
    s_close_parts(p, n);
    assert_non_null(r);
    return r;
}

/* Lets a new SUB's subscription arrive, then says Hello on d as collector-360730 and takes the
 * Welcome. */
static void s_subscribed_hello(fx_t *f, void *d)
{
    for (int i = 0; i < 200; i++) { /* let the SUB's subscription arrive */
        s_pump(f);
        usleep(1000);
    }
    Aidstat__V1__Hello h = AIDSTAT__V1__HELLO__INIT;
    h.collector_id = "collector-360730";
    h.county_code = COUNTY;
    h.software_version = "test";
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO;
    m.hello = &h;
    s_ingest_send(d, &m);
    zmq_msg_t p[4];
    int n = s_recv(f, d, p, 4, 5000);
    assert_int_equal(n, 1);
    s_close_parts(p, n);
}

static void test_batch_feed_query(void **state)
{
    fx_t *f = *state;
    void *sub = s_socket(f, ZMQ_SUB, f->feed);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "ev.", 3);
    void *d = s_socket(f, ZMQ_DEALER, f->ingest);
    void *req = s_socket(f, ZMQ_REQ, f->query);
    s_subscribed_hello(f, d);

    as_event_t evs[2];
    s_event(&evs[0], "A-1", "10.00");
    s_event(&evs[1], "A-2", "0.55");
    Aidstat__V1__Event pe[2], *pp[2] = {&pe[0], &pe[1]};
    as_event_to_pb(&evs[0], &pe[0]);
    as_event_to_pb(&evs[1], &pe[1]);
    Aidstat__V1__Batch b = AIDSTAT__V1__BATCH__INIT;
    b.seq = 1;
    b.n_events = 2;
    b.events = pp;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH;
    m.batch = &b;
    s_ingest_send(d, &m);
    zmq_msg_t p[4];
    int n = s_recv(f, d, p, 4, 5000);
    assert_int_equal(n, 1);
    s_close_parts(p, n);
    assert_int_equal(f->committed, 2);

    /* the feed: two events in sequence order */
    for (uint64_t seq = 1; seq <= 2; seq++) {
        n = s_recv(f, sub, p, 4, 5000);
        assert_int_equal(n, 3);
        assert_int_equal(zmq_msg_size(&p[0]), 9);
        assert_memory_equal(zmq_msg_data(&p[0]), "ev.360730", 9);
        Aidstat__V1__FeedHeader *fh =
            aidstat__v1__feed_header__unpack(NULL, zmq_msg_size(&p[1]), zmq_msg_data(&p[1]));
        assert_non_null(fh);
        assert_int_equal(fh->seq, seq);
        assert_int_equal(fh->kind, AIDSTAT__V1__FEED_KIND__FEED_EVENT);
        assert_int_equal(fh->county_code, COUNTY);
        assert_true(fh->commit_time_ms > 0);
        aidstat__v1__feed_header__free_unpacked(fh, NULL);
        as_event_t got;
        assert_int_equal(as_event_unpack(zmq_msg_data(&p[2]), zmq_msg_size(&p[2]), &got), 0);
        assert_memory_equal(got.id, evs[seq - 1].id, AS_ID_LEN);
        s_close_parts(p, n);
    }

    /* totals by county */
    Aidstat__V1__TotalsRequest tr = AIDSTAT__V1__TOTALS_REQUEST__INIT;
    tr.year = 2026;
    tr.by = "county";
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_TOTALS;
    q.totals = &tr;
    Aidstat__V1__QueryResponse *r = s_query(f, req, &q);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_TOTALS);
    assert_int_equal(r->totals->n_rows, 1);
    assert_string_equal(r->totals->rows[0]->key, "360730");
    assert_int_equal(r->totals->total->activities, 2);
    assert_int_equal(r->totals->total->funds_fen, 1055);
    assert_int_equal(r->totals->total->volunteer_hours_tenths, 50);
    aidstat__v1__query_response__free_unpacked(r, NULL);

    /* an unknown dimension is an error with a reason, and the endpoint keeps serving */
    tr.by = "planet";
    r = s_query(f, req, &q);
    assert_true(r->status != 0);
    assert_non_null(strstr(r->error, "planet"));
    aidstat__v1__query_response__free_unpacked(r, NULL);

    /* status: the collector, connected, with its counts */
    Aidstat__V1__StatusRequest sr = AIDSTAT__V1__STATUS_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_STATUS;
    q.status = &sr;
    r = s_query(f, req, &q);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_STATUS_INFO);
    assert_int_equal(r->status_info->ledger_seq, 2);
    assert_int_equal(r->status_info->n_collectors, 1);
    assert_string_equal(r->status_info->collectors[0]->collector_id, "collector-360730");
    assert_true(r->status_info->collectors[0]->connected);
    assert_int_equal(r->status_info->collectors[0]->accepted, 2);
    assert_int_equal(r->status_info->collectors[0]->last_batch_seq, 1);
    aidstat__v1__query_response__free_unpacked(r, NULL);

    /* replay from 2 */
    Aidstat__V1__ReplayRequest rr = AIDSTAT__V1__REPLAY_REQUEST__INIT;
    rr.from_seq = 2;
    rr.limit = 10;
    rr.county_prefix = "3607";
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REPLAY;
    q.replay = &rr;
    r = s_query(f, req, &q);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_REPLAY);
    assert_int_equal(r->replay->n_items, 1);
    assert_int_equal(r->replay->items[0]->header->seq, 2);
    assert_int_equal(r->replay->items[0]->event->funds_fen, 55);
    assert_int_equal(r->replay->last_seq, 2);
    aidstat__v1__query_response__free_unpacked(r, NULL);

    /* a request that is no QueryRequest */
    assert_true(zmq_send(req, "\xff\xff\xff", 3, 0) == 3);
    n = s_recv(f, req, p, 2, 5000);
    assert_int_equal(n, 1);
    r = aidstat__v1__query_response__unpack(NULL, zmq_msg_size(&p[0]), zmq_msg_data(&p[0]));
    assert_non_null(r);
    assert_true(r->status != 0);
    aidstat__v1__query_response__free_unpacked(r, NULL);
    s_close_parts(p, n);

    zmq_close(sub);
    zmq_close(d);
    zmq_close(req);
}

/* Sends a batch of n events "<prefix>-i" as batch seq and waits for its result. */
static void s_big_batch(fx_t *f, void *d, uint64_t seq, const char *prefix, size_t n)
{
    as_event_t *evs = calloc(n, sizeof *evs);
    Aidstat__V1__Event *pe = calloc(n, sizeof *pe);
    Aidstat__V1__Event **pp = calloc(n, sizeof *pp);
    assert_true(evs && pe && pp);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%zu", prefix, i);
        s_event(&evs[i], id, "1.00");
        as_event_to_pb(&evs[i], &pe[i]);
        pp[i] = &pe[i];
    }
    Aidstat__V1__Batch b = AIDSTAT__V1__BATCH__INIT;
    b.seq = seq;
    b.n_events = n;
    b.events = pp;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH;
    m.batch = &b;
    s_ingest_send(d, &m);
    zmq_msg_t p[4];
    int k = s_recv(f, d, p, 4, 10000);
    assert_int_equal(k, 1);
    s_close_parts(p, k);
    free(evs);
    free(pe);
    free(pp);
}

/* The feed's sequence numbers received on sub, while driving the loop, must be from..to. */
static void s_expect_feed(fx_t *f, void *sub, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++) {
        zmq_msg_t p[4];
        int n = s_recv(f, sub, p, 4, 5000);
        assert_int_equal(n, 3);
        Aidstat__V1__FeedHeader *fh =
            aidstat__v1__feed_header__unpack(NULL, zmq_msg_size(&p[1]), zmq_msg_data(&p[1]));
        assert_non_null(fh);
        assert_int_equal(fh->seq, seq);
        aidstat__v1__feed_header__free_unpacked(fh, NULL);
        s_close_parts(p, n);
    }
}

/* A large group reaches the feed complete and in order, but not in one go on the loop: the
 * commit listeners run when only its first slice is out, the rest follows on later loop
 * iterations; a stop publishes whatever is still queued before the feed closes. */
static void test_large_group_feed_in_slices(void **state)
{
    fx_t *f = *state;
    void *sub = s_socket(f, ZMQ_SUB, f->feed);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "ev.", 3);
    void *d = s_socket(f, ZMQ_DEALER, f->ingest);
    s_subscribed_hello(f, d);

    s_big_batch(f, d, 1, "big", 300);
    assert_int_equal(f->committed, 300);
    assert_true(f->published_at_commit > 0);
    assert_true(f->published_at_commit < 300);
    s_expect_feed(f, sub, 1, 300);

    /* stopping right after the result: the queued rest still goes out */
    s_big_batch(f, d, 2, "last", 300);
    assert_int_equal(f->committed, 600);
    as_aggregator_stop(f->agg);
    assert_int_equal(as_aggregator_run(f->agg), 0);
    s_expect_feed(f, sub, 301, 600);
    zmq_close(d);
    zmq_close(sub);
}

static void test_heartbeat_on_feed(void **state)
{
    fx_t *f = *state;
    void *sub = s_socket(f, ZMQ_SUB, f->feed);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "hb", 2);
    zmq_msg_t p[4];
    int n = s_recv(f, sub, p, 4, 3000);
    assert_int_equal(n, 3);
    Aidstat__V1__FeedHeader *fh =
        aidstat__v1__feed_header__unpack(NULL, zmq_msg_size(&p[1]), zmq_msg_data(&p[1]));
    assert_non_null(fh);
    assert_int_equal(fh->kind, AIDSTAT__V1__FEED_KIND__FEED_HEARTBEAT);
    assert_int_equal(fh->seq, 0);
    aidstat__v1__feed_header__free_unpacked(fh, NULL);
    s_close_parts(p, n);
    zmq_close(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_feed_query, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_on_feed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_large_group_feed_in_slices, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
