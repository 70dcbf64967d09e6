/* test_yearend: the year-end plug-in on a real aggregator (ipc:// in a temporary folder) — the
 * registry import and report requests through the query endpoint, the report notice on the feed,
 * the registry wired into the ledger (supervisor rows named by it), SIGHUP reloading the registry,
 * the schedule's timer closing cleanly, and unplugging (the query then says "not available"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg_fixture.h"
#include "aggregator.h"
#include "registry.h"
#include "yearend.h"

#include "aidstat/v1/feed.pb-c.h"
#include "aidstat/v1/query.pb-c.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_registry[] = "统一社会信用代码,组织名称,类型,级别,业务主管单位,公开募捐资格\n"
                                 "51360000MJB0000001,组织01,社会团体,省级,江西省民政厅,是\n"
                                 "53360000MJB0000004,组织04,基金会,省级,江西省乡村振兴局,是\n"
                                 "51360730MJB0000007,组织07,志愿服务组织,县级,宁都县民政局,否\n"
                                 "SHORT,坏行,社会团体,省级,江西省民政厅,否\n";

typedef struct {
    char dir[64];
    char ingest[128], feed[128], query[128];
    as_aggregator_t *agg;
    as_yearend_t *ye;
    void *zctx; /* the test's own sockets */
    void *client;
    af_t ids; /* only for af_event's fresh ids */
} fx_t;

static int s_open(void **state, bool schedule, bool signals)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_yearend.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ingest, sizeof f->ingest, "ipc://%s/ingest.sock", f->dir);
    snprintf(f->feed, sizeof f->feed, "ipc://%s/feed.sock", f->dir);
    snprintf(f->query, sizeof f->query, "ipc://%s/query.sock", f->dir);
    as_aggregator_opts_t o = {.data_dir = f->dir,
                              .ingest = f->ingest,
                              .feed = f->feed,
                              .query = f->query,
                              .no_sync = true,
                              .signals = signals};
    int err = 0;
    f->agg = as_aggregator_new(&o, &err);
    assert_non_null(f->agg);
    as_yearend_opts_t yo;
    as_yearend_opts_default(&yo);
    assert_true(yo.schedule);
    assert_string_equal(yo.report.out_dir, ".");
    yo.report.out_dir = f->dir;
    yo.schedule = schedule;
    f->ye = as_yearend_new(f->agg, &yo, &err);
    assert_non_null(f->ye);
    f->zctx = zmq_ctx_new();
    f->client = zmq_socket(f->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(f->client, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(f->client, f->query), 0);
    *state = f;
    return 0;
}

static int s_setup(void **state)
{
    return s_open(state, false, false);
}

static int s_setup_scheduled(void **state)
{
    return s_open(state, true, false);
}

static int s_setup_signals(void **state)
{
    return s_open(state, false, true);
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    zmq_close(f->client);
    as_yearend_destroy(&f->ye);
    as_yearend_destroy(&f->ye); /* safe twice */
    as_aggregator_stop(f->agg);
    assert_int_equal(as_aggregator_run(f->agg), 0); /* every handle closed, the timer's too */
    as_aggregator_destroy(&f->agg);
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

static Aidstat__V1__QueryResponse *s_ask(fx_t *f, const Aidstat__V1__QueryRequest *q)
{
    uint8_t buf[4096];
    size_t len = aidstat__v1__query_request__pack(q, buf);
    assert_int_equal(zmq_send(f->client, buf, len, 0), (int)len);
    uint64_t end = af_now_ms() + 10000;
    while (af_now_ms() < end) {
        s_pump(f);
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, f->client, ZMQ_DONTWAIT) >= 0) {
            Aidstat__V1__QueryResponse *r =
                aidstat__v1__query_response__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
            zmq_msg_close(&m);
            assert_non_null(r);
            return r;
        }
        zmq_msg_close(&m);
        usleep(1000);
    }
    fail_msg("no answer");
    return NULL;
}

static Aidstat__V1__QueryResponse *s_import(fx_t *f, const char *csv)
{
    Aidstat__V1__RegistryImportRequest ri = AIDSTAT__V1__REGISTRY_IMPORT_REQUEST__INIT;
    ri.csv.data = (uint8_t *)csv;
    ri.csv.len = strlen(csv);
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REGISTRY_IMPORT;
    q.registry_import = &ri;
    return s_ask(f, &q);
}

static Aidstat__V1__QueryResponse *s_report(fx_t *f, uint32_t year, bool final, const char *dir)
{
    Aidstat__V1__ReportRequest rp = AIDSTAT__V1__REPORT_REQUEST__INIT;
    rp.year = year;
    rp.final = final;
    rp.out_dir = (char *)dir;
    Aidstat__V1__QueryRequest q = AIDSTAT__V1__QUERY_REQUEST__INIT;
    q.body_case = AIDSTAT__V1__QUERY_REQUEST__BODY_REPORT;
    q.report = &rp;
    return s_ask(f, &q);
}

#define FREE(r) aidstat__v1__query_response__free_unpacked((r), NULL)

/* Applies events straight to the aggregator's ledger (the loop is idle between pumps). */
static void s_apply(fx_t *f, as_event_t *ev, size_t n)
{
    as_ledger_t *l = as_aggregator_ledger(f->agg);
    assert_int_equal(as_ledger_begin(l), 0);
    for (size_t i = 0; i < n; i++) {
        as_apply_result_t res;
        assert_int_equal(as_ledger_apply(l, &ev[i], &res), 0);
        assert_int_equal(res.code, AS_RESULT_ACCEPTED);
    }
    assert_int_equal(as_ledger_commit(l, NULL), 0);
}

static void test_registry_import_via_query(void **state)
{
    fx_t *f = *state;
    as_registry_t *reg = as_yearend_registry(f->ye);
    assert_non_null(reg);
    assert_int_equal(as_registry_count(reg), 0);
    Aidstat__V1__QueryResponse *r = s_import(f, s_registry);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_case, AIDSTAT__V1__QUERY_RESPONSE__BODY_SIMPLE);
    assert_non_null(strstr(r->simple->message, "3 organisations imported, 1 rows rejected"));
    assert_non_null(strstr(r->simple->message, "已导入 3 个组织"));
    FREE(r);
    assert_int_equal(as_registry_count(reg), 3);

    /* the ledger now counts events under the registry's supervisory units */
    as_event_t ev[2] = {af_event(&f->ids, 360730, 1, 20260301),
                        af_event(&f->ids, 360730, 2, 20260302)};
    snprintf(ev[0].org_code, sizeof ev[0].org_code, "51360730MJB0000007");
    snprintf(ev[1].org_code, sizeof ev[1].org_code, "91360000MJB0000099"); /* unregistered */
    s_apply(f, ev, 2);
    as_totals_row_t *rows = NULL;
    size_t n = 0;
    as_measures_t tot;
    assert_int_equal(as_ledger_totals(as_aggregator_ledger(f->agg), 2026, AS_DIM_SUPERVISOR, NULL,
                                      &rows, &n, &tot),
                     0);
    bool named = false;
    for (size_t i = 0; i < n; i++)
        named |= !strcmp(rows[i].name, "宁都县民政局") && rows[i].m.activities == 1;
    free(rows);
    assert_true(named);

    /* a file without a good row changes nothing and says why */
    r = s_import(f, "credit_code,name\nSHORT,x\n");
    assert_int_equal(r->status, AS_E_INVALID);
    assert_non_null(strstr(r->error, "registry import failed"));
    FREE(r);
    assert_int_equal(as_registry_count(reg), 3);
}

static void test_report_via_query_and_feed(void **state)
{
    fx_t *f = *state;
    void *sub = zmq_socket(f->zctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "report.", 7);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "hb", 2);
    assert_int_equal(zmq_connect(sub, f->feed), 0);
    /* a heartbeat first: the subscription is then in force */
    char topic[32];
    uint64_t end = af_now_ms() + 5000;
    int n = -1;
    while (af_now_ms() < end && n < 0) {
        s_pump(f);
        n = zmq_recv(sub, topic, sizeof topic, ZMQ_DONTWAIT);
        usleep(1000);
    }
    assert_int_equal(n, 2);
    int more = 1;
    size_t sz = sizeof more;
    while (more) {
        char junk[256];
        assert_true(zmq_recv(sub, junk, sizeof junk, 0) >= 0);
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
    }

    as_event_t ev = af_event(&f->ids, 360730, 1, 20260301);
    s_apply(f, &ev, 1);
    char out[128], path[256];
    snprintf(out, sizeof out, "%s/elsewhere", f->dir);
    Aidstat__V1__QueryResponse *r = s_report(f, 2026, false, out);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->simple->message, "draft report of 2026"));
    FREE(r);
    snprintf(path, sizeof path, "%s/reports/2026", out);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));

    /* the notice on the feed: [report.2026, FeedHeader(FEED_REPORT), ReportNotice] */
    end = af_now_ms() + 5000;
    bool got = false;
    while (af_now_ms() < end && !got) {
        s_pump(f);
        n = zmq_recv(sub, topic, sizeof topic - 1, ZMQ_DONTWAIT);
        if (n < 0) {
            usleep(1000);
            continue;
        }
        topic[n] = 0;
        uint8_t hb[256], pb[1024];
        int hl = zmq_recv(sub, hb, sizeof hb, 0);
        int pl = zmq_recv(sub, pb, sizeof pb, 0);
        if (strcmp(topic, "report.2026") != 0)
            continue;
        Aidstat__V1__FeedHeader *h = aidstat__v1__feed_header__unpack(NULL, (size_t)hl, hb);
        Aidstat__V1__ReportNotice *rn = aidstat__v1__report_notice__unpack(NULL, (size_t)pl, pb);
        assert_non_null(h);
        assert_non_null(rn);
        assert_int_equal(h->kind, AIDSTAT__V1__FEED_KIND__FEED_REPORT);
        assert_int_equal(rn->year, 2026);
        assert_false(rn->final);
        assert_string_equal(rn->directory, path);
        aidstat__v1__feed_header__free_unpacked(h, NULL);
        aidstat__v1__report_notice__free_unpacked(rn, NULL);
        got = true;
    }
    assert_true(got);

    /* the default folder is the configured one; a year before 2000 is refused with a reason */
    r = s_report(f, 2026, true, "");
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->simple->message, "final report of 2026"));
    FREE(r);
    snprintf(path, sizeof path, "%s/reports/2026", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    r = s_report(f, 1999, false, "");
    assert_int_equal(r->status, AS_E_INVALID);
    assert_non_null(strstr(r->error, "report of 1999 failed"));
    FREE(r);
    zmq_close(sub);
}

static void test_reload_hook(void **state)
{
    fx_t *f = *state;
    /* another writer (aidstat registry import against the same files) changes LMDB */
    int err = 0;
    as_registry_t *other = as_registry_new(as_ledger_env(as_aggregator_ledger(f->agg)), &err);
    assert_non_null(other);
    assert_int_equal(as_registry_import_csv(other, s_registry, strlen(s_registry), NULL), 0);
    as_registry_destroy(&other);
    assert_int_equal(as_registry_count(as_yearend_registry(f->ye)), 0); /* not seen yet */
    assert_int_equal(as_aggregator_reload(f->agg), 0);                  /* the keys only */
    assert_int_equal(as_registry_count(as_yearend_registry(f->ye)), 0);
    assert_int_equal(raise(SIGHUP), 0); /* the daemon's SIGHUP: keys, then the hook */
    uint64_t end = af_now_ms() + 5000;
    while (af_now_ms() < end && as_registry_count(as_yearend_registry(f->ye)) == 0) {
        s_pump(f);
        usleep(1000);
    }
    assert_int_equal(as_registry_count(as_yearend_registry(f->ye)), 3);
    as_registry_org_t org;
    assert_int_equal(as_registry_lookup(as_yearend_registry(f->ye), "53360000mjb0000004", &org), 0);
    assert_string_equal(org.name, "组织04");
    assert_true(org.fundraising);
}

static void test_unplugged(void **state)
{
    fx_t *f = *state;
    assert_non_null(as_yearend_report(f->ye));
    as_yearend_destroy(&f->ye);
    Aidstat__V1__QueryResponse *r = s_import(f, s_registry);
    assert_int_equal(r->status, AS_E_STATE);
    FREE(r);
    r = s_report(f, 2026, false, "");
    assert_int_equal(r->status, AS_E_STATE);
    FREE(r);
    assert_int_equal(as_aggregator_reload(f->agg), 0); /* the hook is gone: nothing to call */
    /* the ledger no longer asks the registry (it is freed) */
    as_event_t ev = af_event(&f->ids, 360730, 1, 20260301);
    s_apply(f, &ev, 1);
}

static void test_scheduled(void **state)
{
    fx_t *f = *state;
    /* the schedule's timer runs on the loop; requests are still answered meanwhile */
    for (int i = 0; i < 20; i++) {
        s_pump(f);
        usleep(1000);
    }
    Aidstat__V1__QueryResponse *r = s_import(f, s_registry);
    assert_int_equal(r->status, 0);
    FREE(r);
    /* teardown: destroy on the loop, then the run must end (the timer closed) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registry_import_via_query, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_report_via_query_and_feed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reload_hook, s_setup_signals, s_teardown),
        cmocka_unit_test_setup_teardown(test_unplugged, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_scheduled, s_setup_scheduled, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
