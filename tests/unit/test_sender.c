/* test_sender: the sender against a real in-process ZeroMQ ROUTER on ipc:// in a temporary
 * folder, playing the aggregator by hand — Hello/Welcome, batches and the window, resend after a
 * timeout with the same seq and events, duplicate as success, rejected items parked, answers
 * arriving together settled in one outbox transaction, batches written from the stored bytes as
 * protobuf-c packs them and damaged records parked, a silent aggregator greeted again, nil
 * reports acknowledged by echo. The loop is driven step by step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "outbox.h"
#include "sender.h"

#include "aidstat/v1/ingest.pb-c.h"

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
    uv_loop_t loop;
    void *zctx, *router;
    as_outbox_t *ob;
    as_sender_t *sender;
    uint8_t peer[64]; /* the collector's routing id */
    size_t peer_len;
    int rejects_seen;
    uint32_t next_id;
    uint8_t raw[1 << 16]; /* the last message received, as it came */
    size_t raw_len;
} fx_t;

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_on_reject(void *arg, uint8_t kind, const uint8_t *data, size_t len, uint8_t reject,
                        const char *reason)
{
    fx_t *f = arg;
    assert_int_equal(kind, AS_ITEM_EVENT);
    assert_int_equal(reject, AIDSTAT__V1__REJECT_CODE__REJECT_RETRACT_NOT_LIVE);
    assert_non_null(strstr(reason, "not live"));
    Aidstat__V1__Event *e = aidstat__v1__event__unpack(NULL, len, data);
    assert_non_null(e);
    aidstat__v1__event__free_unpacked(e, NULL);
    f->rejects_seen++;
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_sender.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    int err = 0;
    char path[128], ep[160];
    snprintf(path, sizeof path, "%s/outbox", f->dir);
    f->ob = as_outbox_new(path, true, &err);
    assert_non_null(f->ob);
    f->zctx = zmq_ctx_new();
    f->router = zmq_socket(f->zctx, ZMQ_ROUTER);
    snprintf(ep, sizeof ep, "ipc://%s/ingest.sock", f->dir);
    assert_int_equal(zmq_bind(f->router, ep), 0);
    as_sender_opts_t o = {
        .endpoint = ep,
        .collector_id = "collector-360730",
        .county = COUNTY,
        .batch_size = 10,
        .window = 2,
        .resend_ms = 400,
        .heartbeat_ms = 50,
        .dead_after = 20, /* 1 s of silence: longer than the resend timeout */
    };
    f->sender = as_sender_new(&f->loop, f->zctx, f->ob, &o, &err);
    assert_non_null(f->sender);
    as_sender_on_reject(f->sender, s_on_reject, f);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_sender_destroy(&f->sender);
    as_sender_destroy(&f->sender);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    int linger = 0;
    zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(f->router);
    zmq_ctx_term(f->zctx);
    as_outbox_destroy(&f->ob);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- the hand-played aggregator -------------------------------------------------------------- */

static void s_put_events(fx_t *f, size_t n)
{
    uint8_t(*bufs)[256] = calloc(n, 256);
    as_outbox_blob_t *b = calloc(n, sizeof *b);
    for (size_t i = 0; i < n; i++) {
        Aidstat__V1__Event e = AIDSTAT__V1__EVENT__INIT;
        uint8_t id[16] = {0x05, 0x7e, 0x8a};
        uint32_t k = ++f->next_id;
        memcpy(id + 12, &k, 4);
        e.id.data = id;
        e.id.len = 16;
        e.county_code = COUNTY;
        e.org_name = "测试慈善会";
        e.funds_fen = 100 * k;
        b[i].kind = AS_ITEM_EVENT;
        b[i].len = aidstat__v1__event__pack(&e, bufs[i]);
        b[i].data = bufs[i];
    }
    uint8_t hash[AS_OUTBOX_HASH_LEN] = {0};
    memcpy(hash, &f->next_id, sizeof f->next_id);
    assert_int_equal(as_outbox_put_file(f->ob, hash, "t.csv", b, n), 0);
    free(b);
    free(bufs);
    as_sender_kick(f->sender);
}

/* Runs the loop and waits for the next message of the wanted kind (others are skipped) for up to
 * ms; NULL on timeout. The caller frees the result. */
static Aidstat__V1__IngestMessage *s_recv(fx_t *f, int want, int ms)
{
    uint64_t deadline = s_ms() + (uint64_t)ms;
    while (s_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        zmq_pollitem_t pi = {f->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&pi, 1, 5) <= 0)
            continue;
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        assert_true(zmq_msg_recv(&id, f->router, 0) >= 0);
        assert_true(zmq_msg_more(&id));
        assert_true(zmq_msg_recv(&body, f->router, 0) >= 0);
        f->peer_len = zmq_msg_size(&id);
        memcpy(f->peer, zmq_msg_data(&id), f->peer_len);
        f->raw_len = zmq_msg_size(&body) < sizeof f->raw ? zmq_msg_size(&body) : 0;
        memcpy(f->raw, zmq_msg_data(&body), f->raw_len);
        Aidstat__V1__IngestMessage *m =
            aidstat__v1__ingest_message__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        zmq_msg_close(&id);
        zmq_msg_close(&body);
        assert_non_null(m);
        if ((int)m->body_case == want)
            return m;
        aidstat__v1__ingest_message__free_unpacked(m, NULL);
    }
    return NULL;
}

/* Runs the loop for ms, answering nothing and dropping what arrives. */
static void s_pump(fx_t *f, int ms)
{
    Aidstat__V1__IngestMessage *m = s_recv(f, -1, ms);
    assert_null(m);
}

static void s_reply(fx_t *f, const Aidstat__V1__IngestMessage *m)
{
    size_t len = aidstat__v1__ingest_message__get_packed_size(m);
    uint8_t *buf = malloc(len);
    aidstat__v1__ingest_message__pack(m, buf);
    assert_int_equal(zmq_send(f->router, f->peer, f->peer_len, ZMQ_SNDMORE), (int)f->peer_len);
    assert_int_equal(zmq_send(f->router, buf, len, 0), (int)len);
    free(buf);
}

static void s_welcome(fx_t *f)
{
    Aidstat__V1__IngestMessage *h = s_recv(f, AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO, 3000);
    assert_non_null(h);
    assert_string_equal(h->hello->collector_id, "collector-360730");
    assert_int_equal(h->hello->county_code, COUNTY);
    assert_int_equal(h->hello->protocol_version, 1);
    aidstat__v1__ingest_message__free_unpacked(h, NULL);
    Aidstat__V1__Welcome w = AIDSTAT__V1__WELCOME__INIT;
    w.protocol_version = 1;
    w.heartbeat_ms = 1000;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_WELCOME;
    m.welcome = &w;
    s_reply(f, &m);
}

/* Answers a batch: every event with code, except the one at reject_at (if >= 0). */
static void s_answer(fx_t *f, const Aidstat__V1__Batch *b, int code, int reject_at)
{
    Aidstat__V1__EventResult *rs = calloc(b->n_events, sizeof *rs);
    Aidstat__V1__EventResult **rp = calloc(b->n_events, sizeof *rp);
    for (size_t i = 0; i < b->n_events; i++) {
        Aidstat__V1__EventResult r = AIDSTAT__V1__EVENT_RESULT__INIT;
        r.id = b->events[i]->id;
        r.code = code;
        if ((int)i == reject_at) {
            r.code = AIDSTAT__V1__RESULT_CODE__RESULT_REJECTED;
            r.reject = AIDSTAT__V1__REJECT_CODE__REJECT_RETRACT_NOT_LIVE;
            r.reason = "撤回的事件不存在 / retracted event not live";
        }
        rs[i] = r;
        rp[i] = &rs[i];
    }
    Aidstat__V1__BatchResult br = AIDSTAT__V1__BATCH_RESULT__INIT;
    br.seq = b->seq;
    br.n_results = b->n_events;
    br.results = rp;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT;
    m.batch_result = &br;
    s_reply(f, &m);
    free(rp);
    free(rs);
}

static Aidstat__V1__IngestMessage *s_batch(fx_t *f, int ms)
{
    return s_recv(f, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH, ms);
}

static void s_wait_backlog(fx_t *f, uint64_t want)
{
    uint64_t deadline = s_ms() + 3000;
    while (as_outbox_backlog(f->ob) != want && s_ms() < deadline)
        uv_run(&f->loop, UV_RUN_NOWAIT), usleep(2000);
    assert_int_equal(as_outbox_backlog(f->ob), want);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_batches_and_window(void **state)
{
    fx_t *f = *state;
    s_put_events(f, 25);
    s_welcome(f);
    Aidstat__V1__IngestMessage *b1 = s_batch(f, 2000), *b2 = s_batch(f, 2000);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_int_equal(b1->batch->n_events, 10);
    assert_int_equal(b2->batch->n_events, 10);
    assert_true(b2->batch->seq > b1->batch->seq);
    /* the window is 2: nothing more until an answer */
    assert_null(s_batch(f, 200));
    s_answer(f, b1->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    Aidstat__V1__IngestMessage *b3 = s_batch(f, 2000);
    assert_non_null(b3);
    assert_int_equal(b3->batch->n_events, 5);
    assert_true(b3->batch->seq > b2->batch->seq);
    s_answer(f, b2->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    s_answer(f, b3->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    s_wait_backlog(f, 0);
    as_sender_stats_t st;
    as_sender_stats(f->sender, &st);
    assert_int_equal(st.acked, 25);
    assert_int_equal(st.in_flight, 0);
    /* heartbeats carry the backlog */
    Aidstat__V1__IngestMessage *hb = s_recv(f, AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT, 5000);
    assert_non_null(hb);
    assert_int_equal(hb->heartbeat->backlog, 0);
    aidstat__v1__ingest_message__free_unpacked(hb, NULL);
    aidstat__v1__ingest_message__free_unpacked(b1, NULL);
    aidstat__v1__ingest_message__free_unpacked(b2, NULL);
    aidstat__v1__ingest_message__free_unpacked(b3, NULL);
}

static void test_resend_same_seq_duplicate_is_success(void **state)
{
    fx_t *f = *state;
    s_put_events(f, 3);
    s_welcome(f);
    Aidstat__V1__IngestMessage *b1 = s_batch(f, 2000);
    assert_non_null(b1);
    /* unanswered: the same batch again after the resend timeout */
    uint64_t t0 = s_ms();
    Aidstat__V1__IngestMessage *again = s_batch(f, 3000);
    assert_non_null(again);
    assert_true(s_ms() - t0 >= 300);
    assert_int_equal(again->batch->seq, b1->batch->seq);
    assert_int_equal(again->batch->n_events, 3);
    for (size_t i = 0; i < 3; i++)
        assert_memory_equal(again->batch->events[i]->id.data, b1->batch->events[i]->id.data, 16);
    /* the first copy had been committed: the aggregator says duplicate — a success */
    s_answer(f, again->batch, AIDSTAT__V1__RESULT_CODE__RESULT_DUPLICATE, -1);
    s_wait_backlog(f, 0);
    /* a late answer to the first copy changes nothing */
    s_answer(f, b1->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    s_pump(f, 100);
    as_sender_stats_t st;
    as_sender_stats(f->sender, &st);
    assert_int_equal(st.acked, 3);
    assert_int_equal(st.duplicate, 3);
    assert_true(st.resent >= 1);
    aidstat__v1__ingest_message__free_unpacked(b1, NULL);
    aidstat__v1__ingest_message__free_unpacked(again, NULL);
}

static void test_rejected_parked(void **state)
{
    fx_t *f = *state;
    s_put_events(f, 4);
    s_welcome(f);
    Aidstat__V1__IngestMessage *b = s_batch(f, 2000);
    assert_non_null(b);
    s_answer(f, b->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, 2);
    s_wait_backlog(f, 0);
    assert_int_equal(as_outbox_rejected(f->ob), 1);
    assert_int_equal(f->rejects_seen, 1);
    Aidstat__V1__IngestMessage *hb = s_recv(f, AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT, 5000);
    assert_non_null(hb);
    assert_int_equal(hb->heartbeat->rejected, 1);
    aidstat__v1__ingest_message__free_unpacked(hb, NULL);
    aidstat__v1__ingest_message__free_unpacked(b, NULL);
}

/* Answers that arrive together are settled in one outbox transaction (one fsync instead of one
 * per batch), rejected items among them parked; a repeated answer in the same pass changes
 * nothing. */
static void test_answers_settled_together(void **state)
{
    fx_t *f = *state;
    s_put_events(f, 20);
    s_welcome(f);
    Aidstat__V1__IngestMessage *b1 = s_batch(f, 2000), *b2 = s_batch(f, 2000);
    assert_non_null(b1);
    assert_non_null(b2);
    s_answer(f, b1->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    s_answer(f, b2->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, 3);
    s_answer(f, b1->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    usleep(200 * 1000); /* all three wait in the socket before the loop reads */
    s_wait_backlog(f, 0);
    as_sender_stats_t st;
    as_sender_stats(f->sender, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.acked, 19);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.settles, 1);
    assert_int_equal(as_outbox_rejected(f->ob), 1);
    assert_int_equal(f->rejects_seen, 1);
    aidstat__v1__ingest_message__free_unpacked(b1, NULL);
    aidstat__v1__ingest_message__free_unpacked(b2, NULL);
}

/* A batch is written from the stored bytes exactly as protobuf-c packs it; damaged outbox records
 * (cut short, a field of the wrong wire type, an id that is not 16 bytes) are parked as rejected,
 * never sent, and the good ones around them go. */
static void test_batch_bytes_and_damaged_items(void **state)
{
    fx_t *f = *state;
    uint8_t good[3][256], bad[3][256];
    as_outbox_blob_t b[6];
    size_t glen[3];
    for (int i = 0; i < 3; i++) {
        Aidstat__V1__Event e = AIDSTAT__V1__EVENT__INIT;
        uint8_t id[16] = {0x05, 0x7e, 0x8a, 0xff, (uint8_t)(i + 1)};
        e.id.data = id;
        e.id.len = 16;
        e.county_code = COUNTY;
        e.org_name = "测试慈善会";
        e.funds_fen = -5 - i;
        e.note = i == 1
                     ? "一段较长的备注，让事件的长度超过一百二十七个字节，以便长度本身占两个字节："
                       "甲乙丙丁戊己庚辛壬癸"
                     : "";
        glen[i] = aidstat__v1__event__pack(&e, good[i]);
    }
    memcpy(bad[0], good[0], glen[0]); /* cut inside the organisation name */
    memcpy(bad[1], good[1], glen[1]);
    bad[1][18] = 3 << 3 | 2; /* county_code (a varint) as if it were a string */
    memcpy(bad[2], good[2], glen[2]);
    bad[2][1] = 15; /* an id of 15 bytes */
    size_t blen[3] = {glen[0] - 4, glen[1], glen[2]};
    for (int i = 0; i < 3; i++) {
        b[2 * i] = (as_outbox_blob_t){AS_ITEM_EVENT, good[i], glen[i]};
        b[2 * i + 1] = (as_outbox_blob_t){AS_ITEM_EVENT, bad[i], blen[i]};
    }
    uint8_t hash[AS_OUTBOX_HASH_LEN] = {9};
    assert_int_equal(as_outbox_put_file(f->ob, hash, "d.csv", b, 6), 0);
    as_sender_kick(f->sender);
    s_welcome(f);
    Aidstat__V1__IngestMessage *m = s_batch(f, 2000);
    assert_non_null(m);
    assert_int_equal(m->batch->n_events, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m->batch->events[i]->id.data[4], i + 1);
        assert_int_equal(m->batch->events[i]->funds_fen, -5 - i);
    }
    uint8_t *want = malloc(aidstat__v1__ingest_message__get_packed_size(m));
    size_t wlen = aidstat__v1__ingest_message__pack(m, want);
    assert_int_equal(f->raw_len, wlen);
    assert_memory_equal(f->raw, want, wlen);
    free(want);
    s_answer(f, m->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    s_wait_backlog(f, 0);
    assert_int_equal(as_outbox_rejected(f->ob), 3);
    aidstat__v1__ingest_message__free_unpacked(m, NULL);
}

static void test_silent_aggregator_greeted_again(void **state)
{
    fx_t *f = *state;
    s_put_events(f, 2);
    s_welcome(f);
    Aidstat__V1__IngestMessage *b = s_batch(f, 2000);
    assert_non_null(b);
    /* the aggregator says nothing (restarted, lost its state): after a few heartbeats the
     * collector says Hello again, and after the Welcome sends the batch in flight again */
    s_welcome(f);
    Aidstat__V1__IngestMessage *again = s_batch(f, 2000);
    assert_non_null(again);
    assert_int_equal(again->batch->seq, b->batch->seq);
    s_answer(f, again->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    s_wait_backlog(f, 0);
    as_sender_stats_t st;
    as_sender_stats(f->sender, &st);
    assert_true(st.hellos >= 2);
    aidstat__v1__ingest_message__free_unpacked(b, NULL);
    aidstat__v1__ingest_message__free_unpacked(again, NULL);
}

static void test_nil_report_until_echoed(void **state)
{
    fx_t *f = *state;
    Aidstat__V1__NilReport nr = AIDSTAT__V1__NIL_REPORT__INIT;
    nr.county_code = COUNTY;
    nr.year = 2026;
    nr.month = 3;
    uint8_t buf[32];
    as_outbox_blob_t blob = {AS_ITEM_NIL, buf, aidstat__v1__nil_report__pack(&nr, buf)};
    assert_int_equal(as_outbox_put(f->ob, &blob, NULL), 0);
    s_put_events(f, 1);
    s_welcome(f);
    Aidstat__V1__IngestMessage *n = s_recv(f, AIDSTAT__V1__INGEST_MESSAGE__BODY_NIL_REPORT, 2000);
    assert_non_null(n);
    assert_int_equal(n->nil_report->month, 3);
    Aidstat__V1__IngestMessage *b = s_batch(f, 2000);
    assert_non_null(b);
    s_answer(f, b->batch, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED, -1);
    s_wait_backlog(f, 1); /* the nil report waits for its echo */
    s_reply(f, n);
    s_wait_backlog(f, 0);
    aidstat__v1__ingest_message__free_unpacked(n, NULL);
    aidstat__v1__ingest_message__free_unpacked(b, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_and_window, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_resend_same_seq_duplicate_is_success, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_rejected_parked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_answers_settled_together, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_bytes_and_damaged_items, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_silent_aggregator_greeted_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_nil_report_until_echoed, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
