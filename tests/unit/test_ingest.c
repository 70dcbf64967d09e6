/* test_ingest: the ingest on a temporary ledger with real DEALERs in the test on ipc:// —
 * Hello/Welcome, a batch answered only after its commit, duplicates, a wrong county, a malformed
 * message answered with Error while the ingest keeps serving, and under CURVE (with our ZAP
 * handler) the county taken from the key: another county's event rejected, an unknown key
 * refused; the group limit that follows the commits' page writes. The loop is driven step by
 * step from the test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "event.h"
#include "ingest.h"
#include "ledger.h"
#include "wire.h"
#include "zap.h"

#include "aidstat/v1/ingest.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#define COUNTY 360730
#define OTHER  360781

typedef struct {
    char dir[64];
    char ep[128];
    uv_loop_t loop;
    void *zctx;
    as_ledger_t *ledger;
    as_zap_t *zap;
    as_ingest_t *in;
    bool stopped;
    size_t committed; /* events seen by the commit hook */
    uint64_t seq_at_last_commit;
    size_t groups;           /* commit hook calls */
    uint64_t last_commit_no; /* of the last group seen by the commit hook */
} fx_t;

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- events ------------------------------------------------------------------------------- */

/* A credit code with a valid GB 32100 check character. */
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

static void s_event(as_event_t *ev, uint32_t county, const char *event_id)
{
    char code[19], county_s[8];
    s_uscc("53360730500019795", code);
    snprintf(county_s, sizeof county_s, "%06u", county);
    as_row_t row;
    memset(&row, 0, sizeof row);
    const char *cells[][2] = {{"event_id", event_id},
                              {"county_code", county_s},
                              {"org_credit_code", code},
                              {"org_name", "宁都县测试基金会"},
                              {"area", "education"},
                              {"activity_date", "2026-03-01"},
                              {"beneficiaries", "10"},
                              {"registered_poor", "2"},
                              {"beneficiary_group", "registered_poor"},
                              {"funds_yuan", "100.50"},
                              {"funding_source", "charity"},
                              {"volunteers", "3"},
                              {"volunteer_hours", "4.5"}};
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        int c = as_column_lookup(cells[i][0]);
        assert_true(c >= 0);
        row.cell[c] = cells[i][1];
        row.len[c] = strlen(cells[i][1]);
    }
    as_validate_ctx_t ctx = {.county = county, .today = as_today_cst()};
    as_row_errors_t errs;
    int rc = as_event_from_row(&row, &ctx, ev, &errs);
    if (rc)
        fprintf(stderr, "test event invalid: %s: %s\n", errs.e[0].column, errs.e[0].reason_en);
    assert_int_equal(rc, 0);
}

/* ---- the loop and the wire ---------------------------------------------------------------- */

static void s_on_commit(void *arg, const as_commit_info_t *info, const as_committed_t *evs,
                        size_t n)
{
    fx_t *f = arg;
    /* groups come durable, in commit order, gap-free, with the bytes the log holds */
    assert_true(as_ledger_durable(f->ledger, info->commit_no));
    assert_true(info->commit_no > f->last_commit_no);
    if (n)
        assert_true(evs[0].seq == f->seq_at_last_commit + 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            assert_true(evs[i].seq == evs[i - 1].seq + 1);
        uint8_t want[AS_EVENT_PACKED_MAX];
        size_t len = as_event_pack(evs[i].ev, want);
        assert_int_equal(evs[i].pb_len, len);
        assert_memory_equal(evs[i].pb, want, len);
    }
    f->last_commit_no = info->commit_no;
    f->groups++;
    f->committed += n;
    f->seq_at_last_commit = info->last_seq;
}

static void *s_dealer(fx_t *f, const char *id, const char *server_key, const char *pub,
                      const char *sec)
{
    void *d = zmq_socket(f->zctx, ZMQ_DEALER);
    assert_non_null(d);
    int linger = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(d, ZMQ_ROUTING_ID, id, strlen(id));
    if (server_key) {
        zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, server_key, 40);
        zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
    assert_int_equal(zmq_connect(d, f->ep), 0);
    return d;
}

static void s_send(void *d, const Aidstat__V1__IngestMessage *m)
{
    size_t len = aidstat__v1__ingest_message__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    aidstat__v1__ingest_message__pack(m, buf);
    assert_true(zmq_send(d, buf, len, 0) == (int)len);
    free(buf);
}

/* Drives the loop until d has a message or timeout_ms passed; NULL on timeout. */
static Aidstat__V1__IngestMessage *s_recv(fx_t *f, void *d, int timeout_ms)
{
    uint64_t end = s_ms() + (uint64_t)timeout_ms;
    while (s_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, d, ZMQ_DONTWAIT) >= 0) {
            Aidstat__V1__IngestMessage *r =
                aidstat__v1__ingest_message__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            zmq_msg_close(&m);
            assert_non_null(r);
            return r;
        }
        zmq_msg_close(&m);
        usleep(1000);
    }
    return NULL;
}

static Aidstat__V1__IngestMessage *s_expect(fx_t *f, void *d, int body_case)
{
    Aidstat__V1__IngestMessage *r;
    /* heartbeats may come in between */
    while ((r = s_recv(f, d, 5000)) &&
           r->body_case == AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT &&
           body_case != AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT)
        aidstat__v1__ingest_message__free_unpacked(r, NULL);
    assert_non_null(r);
    if ((int)r->body_case != body_case)
        fprintf(stderr, "expected body %d, got %d (%s)\n", body_case, (int)r->body_case,
                r->body_case == AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR ? r->error->reason : "");
    assert_int_equal(r->body_case, body_case);
    return r;
}

static uint64_t s_hello(fx_t *f, void *d, const char *id, uint32_t county)
{
    Aidstat__V1__Hello h = AIDSTAT__V1__HELLO__INIT;
    h.collector_id = (char *)id;
    h.county_code = county;
    h.software_version = "test";
    h.protocol_version = 1;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO;
    m.hello = &h;
    s_send(d, &m);
    Aidstat__V1__IngestMessage *r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_WELCOME);
    assert_int_equal(r->welcome->protocol_version, 1);
    uint64_t last = r->welcome->last_batch_seq;
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    return last;
}

static void s_send_batch(void *d, uint64_t seq, as_event_t *evs, size_t n)
{
    Aidstat__V1__Event *pe = calloc(n, sizeof *pe);
    Aidstat__V1__Event **pp = calloc(n, sizeof *pp);
    for (size_t i = 0; i < n; i++) {
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
    s_send(d, &m);
    free(pe);
    free(pp);
}

/* ---- fixtures ------------------------------------------------------------------------------- */

static int s_worker_nice; /* as_ingest_opts_t.worker_nice of the next s_setup */

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_ingest.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ep, sizeof f->ep, "ipc://%s/ingest.sock", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->zctx = zmq_ctx_new();
    int err = 0;
    char ldir[128];
    snprintf(ldir, sizeof ldir, "%s/ledger", f->dir);
    as_ledger_opts_t lo = {.no_sync = true};
    f->ledger = as_ledger_new(ldir, &lo, &err);
    assert_non_null(f->ledger);
    as_ingest_opts_t o = {.endpoint = f->ep, .heartbeat_ms = 1000, .worker_nice = s_worker_nice};
    f->in = as_ingest_new(&f->loop, f->zctx, f->ledger, &o, &err);
    assert_non_null(f->in);
    as_ingest_hooks_t h = {.on_commit = s_on_commit, .arg = f};
    as_ingest_set_hooks(f->in, &h);
    *state = f;
    return 0;
}

static void s_stopped(void *arg)
{
    ((fx_t *)arg)->stopped = true;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_ingest_stop(f->in, s_stopped, f);
    for (int i = 0; i < 5000 && !f->stopped; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(f->stopped);
    as_ingest_destroy(&f->in);
    as_zap_destroy(&f->zap);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    zmq_ctx_term(f->zctx);
    as_ledger_destroy(&f->ledger);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_hello_batch_results_after_commit(void **state)
{
    fx_t *f = *state;
    void *d = s_dealer(f, "collector-360730", NULL, NULL, NULL);
    assert_int_equal(s_hello(f, d, "collector-360730", COUNTY), 0);

    as_event_t evs[3];
    s_event(&evs[0], COUNTY, "E-1");
    s_event(&evs[1], COUNTY, "E-2");
    s_event(&evs[2], COUNTY, "E-3");
    s_send_batch(d, 1, evs, 3);
    Aidstat__V1__IngestMessage *r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT);
    /* the answer comes only after the commit: the ledger already holds the events */
    assert_int_equal(as_ledger_last_seq(f->ledger), 3);
    assert_int_equal(f->committed, 3);
    assert_int_equal(r->batch_result->seq, 1);
    assert_int_equal(r->batch_result->n_results, 3);
    for (size_t i = 0; i < 3; i++) {
        Aidstat__V1__EventResult *er = r->batch_result->results[i];
        assert_int_equal(er->code, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED);
        assert_int_equal(er->ledger_seq, i + 1);
        assert_int_equal(er->id.len, AS_ID_LEN);
        assert_memory_equal(er->id.data, evs[i].id, AS_ID_LEN);
    }
    aidstat__v1__ingest_message__free_unpacked(r, NULL);

    /* the same batch again: duplicates, a success for the sender; nothing changes */
    s_send_batch(d, 1, evs, 3);
    r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(r->batch_result->results[i]->code,
                         AIDSTAT__V1__RESULT_CODE__RESULT_DUPLICATE);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    assert_int_equal(as_ledger_last_seq(f->ledger), 3);

    /* a heartbeat is answered; a new Hello learns the last committed batch */
    Aidstat__V1__Heartbeat hb = AIDSTAT__V1__HEARTBEAT__INIT;
    hb.backlog = 7;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    s_send(d, &m);
    r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    as_collector_live_t *live = NULL;
    size_t n = 0;
    assert_int_equal(as_ingest_live(f->in, &live, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(live[0].backlog, 7);
    assert_true(live[0].connected);
    free(live);
    assert_int_equal(s_hello(f, d, "collector-360730", COUNTY), 1);
    zmq_close(d);
}

/* Batches sent back to back form several groups: one on the worker while the one before waits
 * for its fsync. Every batch is answered once, after its group is durable (the commit hook checks
 * that, and the order and bytes of the events it is given). */
static void test_groups_in_pipeline(void **state)
{
    fx_t *f = *state;
    void *d = s_dealer(f, "collector-360730", NULL, NULL, NULL);
    assert_int_equal(s_hello(f, d, "collector-360730", COUNTY), 0);
    enum { NB = 40, PER = 100 };
    as_event_t *evs = calloc(NB * PER, sizeof *evs);
    assert_non_null(evs);
    for (size_t i = 0; i < NB * PER; i++) {
        char id[32];
        snprintf(id, sizeof id, "P-%zu", i);
        s_event(&evs[i], COUNTY, id);
        evs[i].beneficiaries = (uint32_t)(i % 7 + 2);
    }
    for (size_t b = 0; b < NB; b++)
        s_send_batch(d, b + 1, evs + b * PER, PER);
    bool seen[NB + 1] = {false};
    uint64_t seqs = 0;
    for (size_t b = 0; b < NB; b++) {
        Aidstat__V1__IngestMessage *r =
            s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT);
        uint64_t seq = r->batch_result->seq;
        assert_true(seq >= 1 && seq <= NB && !seen[seq]);
        seen[seq] = true;
        assert_int_equal(r->batch_result->n_results, PER);
        for (size_t i = 0; i < PER; i++) {
            assert_int_equal(r->batch_result->results[i]->code,
                             AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED);
            seqs += r->batch_result->results[i]->ledger_seq;
        }
        aidstat__v1__ingest_message__free_unpacked(r, NULL);
    }
    uint64_t all = (uint64_t)NB * PER;
    assert_int_equal(seqs, all * (all + 1) / 2); /* each sequence number once */
    assert_int_equal(f->committed, all);
    assert_int_equal(as_ledger_last_seq(f->ledger), all);
    assert_true(f->groups >= 2);
    free(evs);
    zmq_close(d);
}

static void test_wrong_county_and_invalid(void **state)
{
    fx_t *f = *state;
    void *d = s_dealer(f, "collector-360730", NULL, NULL, NULL);
    s_hello(f, d, "collector-360730", COUNTY);
    as_event_t evs[3];
    s_event(&evs[0], COUNTY, "OK-1");
    s_event(&evs[1], OTHER, "OTHER-1");
    s_event(&evs[2], COUNTY, "BAD-1");
    evs[2].registered_poor = evs[2].beneficiaries + 5; /* breaks a cross-field rule */
    s_send_batch(d, 5, evs, 3);
    Aidstat__V1__IngestMessage *r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT);
    Aidstat__V1__EventResult **er = r->batch_result->results;
    assert_int_equal(er[0]->code, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED);
    assert_int_equal(er[1]->code, AIDSTAT__V1__RESULT_CODE__RESULT_REJECTED);
    assert_int_equal(er[1]->reject, AIDSTAT__V1__REJECT_CODE__REJECT_WRONG_COUNTY);
    assert_int_equal(er[2]->code, AIDSTAT__V1__RESULT_CODE__RESULT_REJECTED);
    assert_int_equal(er[2]->reject, AIDSTAT__V1__REJECT_CODE__REJECT_INVALID);
    assert_true(strlen(er[2]->reason) > 0);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    assert_int_equal(as_ledger_last_seq(f->ledger), 1);
    /* the two rejections are counted in the ledger with the commit (they survive a restart),
     * and no longer as pending in the live view (not counted twice) */
    as_collector_info_t ci;
    assert_int_equal(as_ledger_collector(f->ledger, "collector-360730", &ci), 0);
    assert_int_equal(ci.accepted, 1);
    assert_int_equal(ci.rejected, 2);
    as_collector_live_t *live = NULL;
    size_t n = 0;
    assert_int_equal(as_ingest_live(f->in, &live, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(live[0].rejected_extra, 0);
    free(live);
    zmq_close(d);
}

static void test_malformed_then_still_serving(void **state)
{
    fx_t *f = *state;
    void *d = s_dealer(f, "collector-360730", NULL, NULL, NULL);
    /* a batch before Hello */
    as_event_t ev;
    s_event(&ev, COUNTY, "EARLY");
    s_send_batch(d, 1, &ev, 1);
    Aidstat__V1__IngestMessage *r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    /* bytes that are no IngestMessage */
    const char junk[] = "\xff\xff\xff\xff this is not protobuf";
    assert_true(zmq_send(d, junk, sizeof junk, 0) > 0);
    r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    /* two frames */
    zmq_send(d, "a", 1, ZMQ_SNDMORE);
    zmq_send(d, "b", 1, 0);
    r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    /* a Hello for a county outside the province */
    Aidstat__V1__Hello h = AIDSTAT__V1__HELLO__INIT;
    h.collector_id = "x";
    h.county_code = 110101;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO;
    m.hello = &h;
    s_send(d, &m);
    r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    as_ingest_stats_t st;
    as_ingest_stats(f->in, &st);
    assert_true(st.malformed >= 2);
    assert_int_equal(as_ledger_last_seq(f->ledger), 0);
    /* and it still serves */
    s_hello(f, d, "collector-360730", COUNTY);
    s_send_batch(d, 1, &ev, 1);
    r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT);
    assert_int_equal(r->batch_result->results[0]->code, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    zmq_close(d);
}

static void test_curve_county_from_key(void **state)
{
    /* keys first, then the fixture (its ZAP handler reads the authorized keys at start) */
    char cpub[41], csec[41], upub[41], usec[41];
    assert_int_equal(zmq_curve_keypair(cpub, csec), 0);
    assert_int_equal(zmq_curve_keypair(upub, usec), 0);
    char tmpl[] = "/tmp/test_ingest_keys.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    (void)state;
    fx_t *f = NULL;
    /* the fixture wants the authorized keys in its own dir: create it by hand */
    f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    snprintf(f->ep, sizeof f->ep, "ipc://%s/ingest.sock", f->dir);
    char ak[128], keyfile[128];
    snprintf(ak, sizeof ak, "%s/authorized_keys", f->dir);
    FILE *k = fopen(ak, "w");
    fprintf(k, "# county key\n%u %s\n", COUNTY, cpub);
    fclose(k);
    char spub[41], ssec[41];
    assert_int_equal(zmq_curve_keypair(spub, ssec), 0);
    snprintf(keyfile, sizeof keyfile, "%s/aggregator.key", f->dir);
    k = fopen(keyfile, "w");
    fprintf(k, "public = %s\nsecret = %s\n", spub, ssec);
    fclose(k);
    assert_int_equal(chmod(keyfile, 0600), 0); /* the aggregator refuses a secret others read */
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->zctx = zmq_ctx_new();
    int err = 0;
    char ldir[128];
    snprintf(ldir, sizeof ldir, "%s/ledger", f->dir);
    as_ledger_opts_t lo = {.no_sync = true};
    assert_non_null(f->ledger = as_ledger_new(ldir, &lo, &err));
    assert_non_null(f->zap = as_zap_new(&f->loop, f->zctx, ak, &err));
    assert_int_equal(as_zap_keys(f->zap), 1);
    as_ingest_opts_t o = {.endpoint = f->ep, .curve_secret = keyfile};
    assert_non_null(f->in = as_ingest_new(&f->loop, f->zctx, f->ledger, &o, &err));

    void *d = s_dealer(f, "collector-360730", spub, cpub, csec);
    s_hello(f, d, "collector-360730", COUNTY);
    as_event_t evs[2];
    s_event(&evs[0], COUNTY, "C-1");
    s_event(&evs[1], OTHER, "C-2");
    s_send_batch(d, 1, evs, 2);
    Aidstat__V1__IngestMessage *r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT);
    assert_int_equal(r->batch_result->results[0]->code, AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED);
    assert_int_equal(r->batch_result->results[1]->reject,
                     AIDSTAT__V1__REJECT_CODE__REJECT_WRONG_COUNTY);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);

    /* a Hello claiming another county than the key's is refused */
    void *d2 = s_dealer(f, "collector-360781", spub, cpub, csec);
    Aidstat__V1__Hello h = AIDSTAT__V1__HELLO__INIT;
    h.collector_id = "collector-360781";
    h.county_code = OTHER;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO;
    m.hello = &h;
    s_send(d2, &m);
    r = s_expect(f, d2, AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);

    /* an unknown key never gets through: no answer at all, and the ZAP handler counted it */
    void *u = s_dealer(f, "intruder", spub, upub, usec);
    h.collector_id = "intruder";
    h.county_code = COUNTY;
    s_send(u, &m);
    assert_null(s_recv(f, u, 500));
    assert_true(as_zap_denied(f->zap) >= 1);

    /* a plain client cannot talk to a CURVE server either */
    void *p = s_dealer(f, "plain", NULL, NULL, NULL);
    s_send(p, &m);
    assert_null(s_recv(f, p, 300));

    zmq_close(d);
    zmq_close(d2);
    zmq_close(u);
    zmq_close(p);
    *state = f;
    s_teardown(state);
    *state = NULL;
}

static int s_setup_niced(void **state)
{
    s_worker_nice = 5;
    int rc = s_setup(state);
    s_worker_nice = 0;
    return rc;
}

/* A thread of this process: its nice (/proc/self/task/TID/stat) and, where the kernel shows it,
 * its scheduler slice in ns (se.slice in /proc/self/task/TID/sched; 0 when it does not). */
static void s_thread_sched(const char *tid, int *nice, uint64_t *slice)
{
    char path[320], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", tid);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    const char *p = strrchr(line, ')'); /* the name may hold spaces: fields follow the ')' */
    assert_non_null(p);
    p += 2; /* state is field 3; nice is field 19 */
    for (int field = 3; field < 19; field++) {
        p = strchr(p, ' ');
        assert_non_null(p);
        p++;
    }
    *nice = atoi(p);
    *slice = 0;
    snprintf(path, sizeof path, "/proc/self/task/%s/sched", tid);
    if (!(fp = fopen(path, "r")))
        return;
    while (fgets(line, sizeof line, fp)) {
        const char *colon = strchr(line, ':');
        if (!strncmp(line, "se.slice", 8) && colon)
            *slice = strtoull(colon + 1, NULL, 10);
    }
    fclose(fp);
}

/* With worker_nice, the threads that commit and fsync run at the loop's nice + worker_nice and
 * ask for a short slice (kernels that keep custom slices report it), so that the loop (this
 * thread: HTTP, queries, decoding) takes a CPU from them as soon as it wakes; the loop itself
 * keeps its priority. */
static void test_workers_yield_to_the_loop(void **state)
{
    fx_t *f = *state;
    errno = 0;
    int base = getpriority(PRIO_PROCESS, (id_t)gettid());
    assert_false(base == -1 && errno);
    void *d = s_dealer(f, "collector-360730", NULL, NULL, NULL);
    assert_int_equal(s_hello(f, d, "collector-360730", COUNTY), 0);
    as_event_t ev;
    s_event(&ev, COUNTY, "E-1");
    s_send_batch(d, 1, &ev, 1);
    Aidstat__V1__IngestMessage *r = s_expect(f, d, AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT);
    aidstat__v1__ingest_message__free_unpacked(r, NULL);
    zmq_close(d);

    struct utsname u;
    assert_int_equal(uname(&u), 0);
    int major = 0, minor = 0;
    sscanf(u.release, "%d.%d", &major, &minor);
    bool has_custom_slices = major > 6 || (major == 6 && minor >= 12); /* sched_runtime */
    int want = base + 5 > 19 ? 19 : base + 5, niced = 0;
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        int nice;
        uint64_t slice;
        s_thread_sched(e->d_name, &nice, &slice);
        if (atoi(e->d_name) == gettid()) {
            assert_int_equal(nice, base); /* the loop is not lowered */
        } else if (nice == want) {
            niced++;
            if (slice && has_custom_slices)
                assert_int_equal(slice, AS_INGEST_WORKER_SLICE_NS);
        }
    }
    closedir(dir);
    assert_true(niced >= 1); /* the commit's thread, and the fsync's if another */
}

/* The group limit follows the last group's page writes: the cap while they are small or unknown,
 * fewer events once each event writes more pages, never under the floor or over the cap. */
static void test_group_limit_by_pages(void **state)
{
    (void)state;
    assert_int_equal(as_ingest_group_limit(20000, 0, 20000), 20000); /* unknown */
    assert_int_equal(as_ingest_group_limit(20000, 12345, 0), 20000);
    /* 1.7 KB per event (a young ledger): the budget allows more than the cap */
    assert_int_equal(as_ingest_group_limit(20000, 20000ull * 1700, 20000), 20000);
    /* 6 KB per event (8 M events held): the budget's worth */
    assert_int_equal(as_ingest_group_limit(20000, 20000ull * 6144, 20000),
                     AS_INGEST_PAGE_BUDGET / 6144);
    assert_true(as_ingest_group_limit(20000, 20000ull * 6144, 20000) < 20000);
    /* bytes per event rounded up, so the budget is never exceeded by rounding */
    assert_true(as_ingest_group_limit(20000, 3ull * 7001, 3) * 7001ull <= AS_INGEST_PAGE_BUDGET);
    /* enormous pages per event: the floor; a cap under the floor stays the cap */
    assert_int_equal(as_ingest_group_limit(20000, 1ull << 40, 10), AS_INGEST_GROUP_MIN);
    assert_int_equal(as_ingest_group_limit(500, 1ull << 40, 10), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello_batch_results_after_commit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_groups_in_pipeline, s_setup, s_teardown),
        cmocka_unit_test(test_group_limit_by_pages),
        cmocka_unit_test_setup_teardown(test_wrong_county_and_invalid, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_then_still_serving, s_setup, s_teardown),
        cmocka_unit_test(test_curve_county_from_key),
        cmocka_unit_test_setup_teardown(test_workers_yield_to_the_loop, s_setup_niced, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
