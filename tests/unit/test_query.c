/* test_query: the query endpoint on a real ROUTER (ipc:// in a temporary folder) over a real
 * ledger, asked by a DEALER (and a REQ) client: totals by dimension and filter, the request
 * checks (dimension, year, county), status merging the ledger's collectors with the daemon's live
 * view, replay pages with county prefixes, backup on a worker thread, the year-end handlers and
 * undecodable or empty requests. The loop is pumped by hand while the client waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg_fixture.h"
#include "feed.h"
#include "query.h"

#include "aidstat/v1/query.pb-c.h"

#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    af_t *a;
    as_query_t *q;
    void *client; /* DEALER connected to the query endpoint */
    char ep[160];
    as_collector_live_t live[2];
    size_t nlive;
    int registry_calls, report_calls;
    size_t registry_len;
    uint32_t report_year;
    bool report_final;
    char report_dir[128];
    int yearend_rc;
} fx_t;

static int s_live(void *ctx, as_collector_live_t **out, size_t *n)
{
    fx_t *f = ctx;
    *out = calloc(f->nlive ? f->nlive : 1, sizeof **out);
    memcpy(*out, f->live, f->nlive * sizeof **out);
    *n = f->nlive;
    return 0;
}

static void *s_connect(fx_t *f, int type)
{
    void *s = zmq_socket(f->a->zctx, type);
    int zero = 0;
    assert_non_null(s);
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(s, f->ep), 0);
    return s;
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->a = af_open();
    af_endpoint(f->a, "query", f->ep, sizeof f->ep);
    int err = 0;
    f->q = as_query_new(&f->a->loop, f->a->zctx, f->ep, f->a->l, s_live, f, &err);
    assert_non_null(f->q);
    f->client = s_connect(f, ZMQ_DEALER);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    zmq_close(f->client);
    as_query_destroy(&f->q);
    as_query_destroy(&f->q); /* safe twice */
    assert_int_equal(af_close(f->a), 0);
    free(f);
    return 0;
}

/* Sends raw bytes, pumps the loop until the answer comes (5 s at most) and decodes it. */
static Aidstat__V1__QueryResponse *s_ask_raw(fx_t *f, void *sock, const void *data, size_t len)
{
    assert_int_equal(zmq_send(sock, data, len, 0), (int)len);
    uint64_t end = af_now_ms() + 5000;
    while (af_now_ms() < end) {
        af_pump(f->a, 2);
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) >= 0) {
            assert_false(zmq_msg_more(&m)); /* one frame after the envelope */
            Aidstat__V1__QueryResponse *r =
                aidstat__v1__query_response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            zmq_msg_close(&m);
            assert_non_null(r);
            return r;
        }
        zmq_msg_close(&m);
    }
    fail_msg("no answer within 5 s");
    return NULL;
}

static Aidstat__V1__QueryResponse *s_ask(fx_t *f, void *sock, const Aidstat__V1__QueryRequest *q)
{
    uint8_t buf[4096];
    size_t len = aidstat__v1__query_request__get_packed_size(q);
    assert_true(len <= sizeof buf);
    aidstat__v1__query_request__pack(q, buf);
    return s_ask_raw(f, sock, buf, len);
}

static Aidstat__V1__QueryResponse *s_totals(fx_t *f, uint32_t year, const char *by, uint32_t c)
{
    Aidstat__V1__TotalsRequest t = AIDSTAT__V1__TOTALS_REQUEST__INIT;
    t.year = year;
    t.by = (char *)by;
    t.county = c;
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_TOTALS;
    q.totals = &t;
    return s_ask(f, f->client, &q);
}

static Aidstat__V1__QueryResponse *s_replay(fx_t *f, uint64_t from, uint32_t limit,
                                            const char *prefix)
{
    Aidstat__V1__ReplayRequest rr = AIDSTAT__V1__REPLAY_REQUEST__INIT;
    rr.from_seq = from;
    rr.limit = limit;
    rr.county_prefix = (char *)prefix;
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REPLAY;
    q.replay = &rr;
    return s_ask(f, f->client, &q);
}

#define FREE(r) aidstat__v1__query_response__free_unpacked((r), NULL)

/* ---- totals --------------------------------------------------------------------------------- */

static void s_three_events(fx_t *f)
{
    as_event_t ev[4] = {
        af_event(f->a, 360730, 1, 20260310), af_event(f->a, 360730, 2, 20260415),
        af_event(f->a, 360731, 1, 20260501), af_event(f->a, 360102, 3, 20251201), /* another year */
    };
    ev[1].funds_fen = 250;
    af_apply(f->a, ev, 4);
}

static void test_totals(void **state)
{
    fx_t *f = *state;
    s_three_events(f);
    Aidstat__V1__QueryResponse *r = s_totals(f, 2026, "county", 0);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_TOTALS);
    Aidstat__V1__TotalsResponse *t = r->totals;
    assert_int_equal(t->year, 2026);
    assert_string_equal(t->by, "county");
    assert_int_equal(t->n_rows, 2);
    assert_string_equal(t->rows[0]->key, "360730");
    assert_string_equal(t->rows[0]->name, "宁都县");
    assert_int_equal(t->rows[0]->measures->activities, 2);
    assert_int_equal(t->rows[0]->measures->organisations, 2);
    assert_int_equal(t->rows[0]->measures->funds_fen, 100250);
    assert_string_equal(t->rows[1]->key, "360731");
    assert_int_equal(t->rows[1]->measures->activities, 1);
    assert_int_equal(t->total->activities, 3);
    assert_int_equal(t->total->organisations, 2); /* distinct over the whole, not summed */
    assert_int_equal(t->total->counties, 2);
    assert_int_equal(t->total->beneficiaries, 30);
    assert_int_equal(t->total->volunteer_hours_tenths, 45);
    assert_int_equal(t->total->income_increase_fen, 21000);
    assert_int_equal(t->total->villages, 3);
    FREE(r);

    /* no dimension: the province; a city filter; a county filter; another year */
    r = s_totals(f, 2026, "", 0);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->totals->by, "province");
    assert_int_equal(r->totals->n_rows, 1);
    assert_string_equal(r->totals->rows[0]->key, "360000");
    assert_int_equal(r->totals->total->activities, 3);
    FREE(r);
    r = s_totals(f, 2026, "county", 360700);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->totals->total->activities, 3);
    FREE(r);
    r = s_totals(f, 2026, "org", 360731);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->totals->n_rows, 1);
    assert_string_equal(r->totals->rows[0]->key, "51360000500000001X");
    assert_int_equal(r->totals->total->activities, 1);
    FREE(r);
    r = s_totals(f, 2026, "province", 360000); /* the province's own code is no filter */
    assert_int_equal(r->status, 0);
    assert_int_equal(r->totals->total->activities, 3);
    FREE(r);
    r = s_totals(f, 2025, "month", 0);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->totals->n_rows, 1);
    assert_string_equal(r->totals->rows[0]->key, "2025-12");
    FREE(r);
    r = s_totals(f, 2024, "county", 0); /* nothing that year: an empty answer, not an error */
    assert_int_equal(r->status, 0);
    assert_int_equal(r->totals->n_rows, 0);
    assert_int_equal(r->totals->total->activities, 0);
    FREE(r);
    assert_int_equal(as_query_answered(f->q), 7);
    assert_int_equal(as_query_malformed(f->q), 0);
}

static void test_totals_refused(void **state)
{
    fx_t *f = *state;
    Aidstat__V1__QueryResponse *r = s_totals(f, 2026, "planet", 0);
    assert_int_equal(r->status, AS_E_INVALID);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY__NOT_SET);
    assert_non_null(strstr(r->error, "'planet'"));
    FREE(r);
    r = s_totals(f, 0, "county", 0);
    assert_int_equal(r->status, AS_E_INVALID);
    assert_non_null(strstr(r->error, "not a year"));
    FREE(r);
    r = s_totals(f, 10000, "county", 0);
    assert_int_equal(r->status, AS_E_INVALID);
    FREE(r);
    r = s_totals(f, 2026, "county", 123456);
    assert_int_equal(r->status, AS_E_INVALID);
    assert_non_null(strstr(r->error, "123456"));
    FREE(r);
    r = s_totals(f, 2026, "county", 110101); /* Beijing: not of the province */
    assert_int_equal(r->status, AS_E_INVALID);
    FREE(r);
    assert_int_equal(as_query_answered(f->q), 5);
    assert_int_equal(as_query_malformed(f->q), 0); /* refused, yet well formed */
}

/* ---- status --------------------------------------------------------------------------------- */

static void test_status_merges_live(void **state)
{
    fx_t *f = *state;
    as_ledger_t *l = f->a->l;
    as_collector_state_t st = {.collector_id = "c-360730",
                               .county = 360730,
                               .last_batch_seq = 5,
                               .backlog = 7,
                               .last_heard_ms = 1000,
                               .version = "0.1.0"};
    as_event_t ev[2] = {af_event(f->a, 360730, 1, 20260101), af_event(f->a, 360730, 2, 20260101)};
    as_apply_result_t res;
    assert_int_equal(as_ledger_begin(l), 0);
    as_ledger_set_source(l, "c-360730");
    assert_int_equal(as_ledger_put_collector(l, &st), 0);
    assert_int_equal(as_ledger_apply(l, &ev[0], &res), 0);
    assert_int_equal(as_ledger_apply(l, &ev[1], &res), 0);
    assert_int_equal(as_ledger_apply(l, &ev[0], &res), 0);
    assert_int_equal(res.code, AS_RESULT_DUPLICATE);
    assert_int_equal(as_ledger_commit(l, NULL), 0);

    f->live[0] = (as_collector_live_t){.collector_id = "c-360730",
                                       .county = 360730,
                                       .connected = true,
                                       .last_heard_ms = 2000,
                                       .backlog = 3,
                                       .rejected_extra = 4,
                                       .last_batch_seq = 4};
    f->live[1] = (as_collector_live_t){.collector_id = "c-360731",
                                       .county = 360731,
                                       .last_heard_ms = 500,
                                       .backlog = 9,
                                       .rejected_extra = 1,
                                       .last_batch_seq = 2,
                                       .version = "0.2.0"};
    f->nlive = 2;

    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    Aidstat__V1__StatusRequest sq = AIDSTAT__V1__STATUS_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_STATUS;
    q.status = &sq;
    Aidstat__V1__QueryResponse *r = s_ask(f, f->client, &q);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_STATUS_INFO);
    Aidstat__V1__StatusResponse *s = r->status_info;
    assert_int_equal(s->ledger_seq, 2);
    assert_int_equal(s->events, 2);
    assert_int_equal(s->n_collectors, 2);
    Aidstat__V1__CollectorStatus *a = s->collectors[0], *b = s->collectors[1];
    if (strcmp(a->collector_id, "c-360730") != 0) {
        a = s->collectors[1];
        b = s->collectors[0];
    }
    assert_string_equal(a->collector_id, "c-360730");
    assert_int_equal(a->county_code, 360730);
    assert_true(a->connected);
    assert_int_equal(a->last_heard_ms, 2000); /* the newer of the two */
    assert_int_equal(a->backlog, 3);          /* live */
    assert_int_equal(a->accepted, 2);
    assert_int_equal(a->duplicates, 1);
    assert_int_equal(a->rejected, 4); /* ledger's 0 + rejected before the ledger */
    assert_int_equal(a->last_batch_seq, 5);
    assert_string_equal(a->software_version, "0.1.0"); /* kept: live has none */
    assert_string_equal(b->collector_id, "c-360731");
    assert_int_equal(b->county_code, 360731);
    assert_false(b->connected);
    assert_int_equal(b->backlog, 9);
    assert_int_equal(b->rejected, 1);
    assert_int_equal(b->accepted, 0);
    assert_int_equal(b->last_batch_seq, 2);
    assert_string_equal(b->software_version, "0.2.0");
    FREE(r);

    /* without the live view: what the ledger holds */
    f->nlive = 0;
    r = s_ask(f, f->client, &q);
    assert_int_equal(r->status_info->n_collectors, 1);
    assert_false(r->status_info->collectors[0]->connected);
    assert_int_equal(r->status_info->collectors[0]->backlog, 7);
    assert_int_equal(r->status_info->collectors[0]->last_heard_ms, 1000);
    FREE(r);
}

/* ---- replay --------------------------------------------------------------------------------- */

static void test_replay_pages(void **state)
{
    fx_t *f = *state;
    as_event_t ev[4] = {
        af_event(f->a, 360730, 1, 20260101),
        af_event(f->a, 360731, 2, 20260102),
        af_event(f->a, 360102, 3, 20260103),
        af_event(f->a, 360730, 4, 20260104),
    };
    as_commit_info_t c1 = af_apply(f->a, ev, 4);
    as_event_t ch[2] = {af_change(f->a, &ev[0], true), af_change(f->a, &ev[1], false)};
    ch[1].beneficiaries = 99;
    af_apply(f->a, ch, 2);

    Aidstat__V1__QueryResponse *r = s_replay(f, 0, 0, "");
    assert_int_equal(r->status, 0);
    Aidstat__V1__ReplayResponse *p = r->replay;
    assert_int_equal(p->n_items, 6);
    assert_int_equal(p->next_seq, 7);
    assert_int_equal(p->last_seq, 6);
    const int kinds[6] = {1, 1, 1, 1, 3, 2};
    const uint32_t counties[6] = {360730, 360731, 360102, 360730, 360730, 360731};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(p->items[i]->header->seq, i + 1);
        assert_int_equal(p->items[i]->header->kind, kinds[i]);
        assert_int_equal(p->items[i]->header->county_code, counties[i]);
        assert_int_equal(p->items[i]->event->county_code, counties[i]);
    }
    assert_int_equal(p->items[0]->header->commit_time_ms, c1.commit_ms);
    assert_int_equal(p->items[0]->event->id.len, AS_ID_LEN);
    assert_memory_equal(p->items[0]->event->id.data, ev[0].id, AS_ID_LEN);
    assert_string_equal(p->items[2]->event->org_credit_code, ev[2].org_code);
    assert_int_equal(p->items[5]->event->beneficiaries, 99);
    FREE(r);

    r = s_replay(f, 2, 2, NULL); /* a page */
    assert_int_equal(r->replay->n_items, 2);
    assert_int_equal(r->replay->items[0]->header->seq, 2);
    assert_int_equal(r->replay->items[1]->header->seq, 3);
    assert_int_equal(r->replay->next_seq, 4);
    assert_int_equal(r->replay->last_seq, 6);
    FREE(r);

    r = s_replay(f, 1, 0, "3607"); /* a city's counties */
    assert_int_equal(r->replay->n_items, 5);
    for (size_t i = 0; i < r->replay->n_items; i++)
        assert_int_not_equal(r->replay->items[i]->header->seq, 3);
    FREE(r);
    r = s_replay(f, 1, 0, "360102");
    assert_int_equal(r->replay->n_items, 1);
    assert_int_equal(r->replay->items[0]->header->seq, 3);
    FREE(r);
    r = s_replay(f, 100, 0, ""); /* past the end: nothing, and where the log stands */
    assert_int_equal(r->status, 0);
    assert_int_equal(r->replay->n_items, 0);
    assert_int_equal(r->replay->last_seq, 6);
    FREE(r);

    r = s_replay(f, 1, 0, "36a");
    assert_int_equal(r->status, AS_E_INVALID);
    assert_non_null(strstr(r->error, "county_prefix"));
    FREE(r);
    r = s_replay(f, 1, 0, "3607300"); /* 7 digits */
    assert_int_equal(r->status, AS_E_INVALID);
    FREE(r);
}

/* ---- backup --------------------------------------------------------------------------------- */

static Aidstat__V1__QueryResponse *s_backup(fx_t *f, const char *dir)
{
    Aidstat__V1__BackupRequest b = AIDSTAT__V1__BACKUP_REQUEST__INIT;
    b.directory = (char *)dir;
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_BACKUP;
    q.backup = &b;
    return s_ask(f, f->client, &q);
}

static void test_backup(void **state)
{
    fx_t *f = *state;
    s_three_events(f);
    char dir[128], file[160];
    snprintf(dir, sizeof dir, "%s/backup", f->a->dir);
    Aidstat__V1__QueryResponse *r = s_backup(f, dir);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE);
    assert_non_null(strstr(r->simple->message, dir));
    FREE(r);
    /* the copy is a ledger of its own with the same log */
    as_ledger_opts_t lo = {.no_sync = true};
    int err = 0;
    as_ledger_t *copy = as_ledger_new(dir, &lo, &err);
    assert_non_null(copy);
    assert_int_equal(as_ledger_last_seq(copy), 4);
    as_ledger_destroy(&copy);

    r = s_backup(f, "");
    assert_int_equal(r->status, AS_E_INVALID);
    FREE(r);
    snprintf(file, sizeof file, "%s/plain", f->a->dir); /* a file stands where a folder must go */
    FILE *fp = fopen(file, "w");
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/plain/sub", f->a->dir);
    r = s_backup(f, dir);
    assert_int_not_equal(r->status, 0);
    assert_non_null(strstr(r->error, "failed"));
    FREE(r);

    /* destroyed while a backup runs: it finishes, then the memory goes (ASan watches) */
    snprintf(dir, sizeof dir, "%s/backup2", f->a->dir);
    Aidstat__V1__BackupRequest b = AIDSTAT__V1__BACKUP_REQUEST__INIT;
    b.directory = dir;
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_BACKUP;
    q.backup = &b;
    uint8_t buf[256];
    size_t len = aidstat__v1__query_request__pack(&q, buf);
    assert_int_equal(zmq_send(f->client, buf, len, 0), (int)len);
    for (int i = 0; i < 200 && as_query_answered(f->q) == 3; i++) {
        uv_run(&f->a->loop, UV_RUN_NOWAIT);
        struct stat sb;
        if (stat(dir, &sb) == 0)
            break; /* the worker has started */
        usleep(1000);
    }
    as_query_destroy(&f->q);
    uv_run(&f->a->loop, UV_RUN_DEFAULT);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
}

/* ---- year-end handlers ---------------------------------------------------------------------- */

static int s_registry(void *ctx, const uint8_t *csv, size_t len, char *msg, size_t cap)
{
    fx_t *f = ctx;
    f->registry_calls++;
    f->registry_len = len;
    snprintf(msg, cap, "%zu bytes imported", len);
    return f->yearend_rc;
}

static int s_report(void *ctx, uint32_t year, bool final, const char *out_dir, char *msg,
                    size_t cap)
{
    fx_t *f = ctx;
    f->report_calls++;
    f->report_year = year;
    f->report_final = final;
    snprintf(f->report_dir, sizeof f->report_dir, "%s", out_dir);
    if (f->yearend_rc)
        return f->yearend_rc; /* no message: the code's text is sent */
    snprintf(msg, cap, "report %u written", year);
    return 0;
}

static void test_yearend(void **state)
{
    fx_t *f = *state;
    Aidstat__V1__RegistryImportRequest ri = AIDSTAT__V1__REGISTRY_IMPORT_REQUEST__INIT;
    ri.csv.data = (uint8_t *)"a,b\n1,2\n";
    ri.csv.len = 8;
    Aidstat__V1__QueryRequest qi = AIDSTAT__V1__QUERY_REQUEST__INIT;
    qi.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REGISTRY_IMPORT;
    qi.registry_import = &ri;
    Aidstat__V1__ReportRequest rp = AIDSTAT__V1__REPORT_REQUEST__INIT;
    rp.year = 2026;
    rp.final = true;
    Aidstat__V1__QueryRequest qr = AIDSTAT__V1__QUERY_REQUEST__INIT;
    qr.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REPORT;
    qr.report = &rp;

    /* nobody installed the handlers */
    Aidstat__V1__QueryResponse *r = s_ask(f, f->client, &qi);
    assert_int_equal(r->status, AS_E_STATE);
    FREE(r);
    r = s_ask(f, f->client, &qr);
    assert_int_equal(r->status, AS_E_STATE);
    FREE(r);

    as_query_set_yearend(f->q, s_registry, s_report, f);
    r = s_ask(f, f->client, &qi);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE);
    assert_string_equal(r->simple->message, "8 bytes imported");
    assert_int_equal(f->registry_len, 8);
    FREE(r);
    r = s_ask(f, f->client, &qr);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->simple->message, "report 2026 written");
    assert_int_equal(f->report_year, 2026);
    assert_true(f->report_final);
    assert_string_equal(f->report_dir, ""); /* absent: the aggregator's own folder */
    FREE(r);

    f->yearend_rc = AS_E_LOCKED;
    r = s_ask(f, f->client, &qi);
    assert_int_equal(r->status, AS_E_LOCKED);
    assert_string_equal(r->error, "8 bytes imported"); /* the handler's own words */
    FREE(r);
    r = s_ask(f, f->client, &qr);
    assert_int_equal(r->status, AS_E_LOCKED);
    assert_string_equal(r->error, as_strerror(AS_E_LOCKED));
    FREE(r);
    assert_int_equal(f->registry_calls, 2);
    assert_int_equal(f->report_calls, 2);
}

/* ---- malformed requests and envelopes ------------------------------------------------------ */

static void test_malformed_and_req_client(void **state)
{
    fx_t *f = *state;
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    Aidstat__V1__QueryResponse *r = s_ask_raw(f, f->client, garbage, sizeof garbage);
    assert_int_equal(r->status, AS_E_PARSE);
    assert_non_null(r->error);
    FREE(r);
    Aidstat__V1__QueryRequest empty = AIDSTAT__V1__QUERY_REQUEST__INIT;
    r = s_ask(f, f->client, &empty);
    assert_int_equal(r->status, AS_E_PARSE);
    assert_string_equal(r->error, "empty request");
    FREE(r);
    assert_int_equal(as_query_malformed(f->q), 2);
    assert_int_equal(as_query_answered(f->q), 2);

    /* a REQ client: the empty delimiter is part of the envelope and comes back */
    s_three_events(f);
    void *req = s_connect(f, ZMQ_REQ);
    Aidstat__V1__TotalsRequest t = AIDSTAT__V1__TOTALS_REQUEST__INIT;
    t.year = 2026;
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_TOTALS;
    q.totals = &t;
    for (int i = 0; i < 2; i++) {
        r = s_ask(f, req, &q);
        assert_int_equal(r->status, 0);
        assert_int_equal(r->totals->total->activities, 3);
        FREE(r);
    }
    zmq_close(req);
    /* a client that leaves before its answer costs nothing but a log line */
    void *gone = s_connect(f, ZMQ_DEALER);
    uint8_t buf[64];
    size_t len = aidstat__v1__query_request__pack(&q, buf);
    assert_int_equal(zmq_send(gone, buf, len, 0), (int)len);
    zmq_close(gone);
    af_pump(f->a, 50);
    r = s_totals(f, 2026, "city", 0);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->totals->n_rows, 1);
    assert_string_equal(r->totals->rows[0]->key, "360700");
    assert_string_equal(r->totals->rows[0]->name, "赣州市");
    FREE(r);
}

static void test_bind_failure(void **state)
{
    fx_t *f = *state;
    int err = 0;
    /* a folder that does not exist */
    as_query_t *q2 = as_query_new(&f->a->loop, f->a->zctx, "ipc:///nonexistent/aidstat/query",
                                  f->a->l, NULL, NULL, &err);
    assert_null(q2);
    assert_int_equal(err, AS_E_ZMQ);
    err = 0;
    q2 = as_query_new(&f->a->loop, f->a->zctx, "nonsense://x", f->a->l, NULL, NULL, &err);
    assert_null(q2);
    assert_int_equal(err, AS_E_ZMQ);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_totals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_totals_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_status_merges_live, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_replay_pages, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_backup, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_yearend, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_and_req_client, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bind_failure, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
