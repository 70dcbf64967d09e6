/* test_collector: the county collector against a real aggregator, both on one libuv loop with
 * ipc:// endpoints in a temporary folder — files handed over the control endpoint reach the
 * provincial ledger, a second file of the same name gets a free name, bad names and requests are
 * refused with a reason, a nil report reaches the aggregator, status tells backlog and delivery,
 * an event the aggregator rejects is listed in the file's errors CSV (as valid CSV, whatever
 * its event id holds), and start-up failures are reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aggregator.h"
#include "collector.h"
#include "err.h"
#include "reader.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define COUNTY 360730

typedef struct {
    char dir[64], data[96], spool[128], done[160];
    char ingest[128], feed[128], query[128], control[128];
    as_aggregator_t *agg;
    as_collector_t *col;
    as_reader_ctx_t rctx;
    void *zctx, *req; /* the test's REQ on the control endpoint */
    char code[19];
    int nils;
    uint32_t nil_county, nil_year, nil_month;
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

static int s_on_nil(void *arg, uint32_t county, uint32_t year, uint32_t month)
{
    fx_t *f = arg;
    f->nils++;
    f->nil_county = county;
    f->nil_year = year;
    f->nil_month = month;
    return 0;
}

static as_collector_opts_t s_opts(fx_t *f)
{
    as_collector_opts_t o = {.county = COUNTY,
                             .data = f->data,
                             .spool = f->spool,
                             .aggregator = f->ingest,
                             .control = f->control,
                             .curve_secret = "",
                             .reader = as_reader_read,
                             .reader_arg = &f->rctx,
                             .no_sync = true};
    return o;
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_collector.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->data, sizeof f->data, "%s/county", f->dir);
    snprintf(f->spool, sizeof f->spool, "%s/spool", f->data);
    snprintf(f->done, sizeof f->done, "%s/done", f->spool);
    snprintf(f->ingest, sizeof f->ingest, "ipc://%s/ingest.sock", f->dir);
    snprintf(f->feed, sizeof f->feed, "ipc://%s/feed.sock", f->dir);
    snprintf(f->query, sizeof f->query, "ipc://%s/query.sock", f->dir);
    snprintf(f->control, sizeof f->control, "ipc://%s/control.sock", f->dir);
    as_aggregator_opts_t ao = {.data_dir = f->dir,
                               .ingest = f->ingest,
                               .feed = f->feed,
                               .query = f->query,
                               .no_sync = true};
    int err = 0;
    f->agg = as_aggregator_new(&ao, &err);
    assert_non_null(f->agg);
    as_aggregator_on_nil_report(f->agg, s_on_nil, f);
    f->rctx.county = COUNTY;
    as_collector_opts_t o = s_opts(f);
    f->col = as_collector_new(as_aggregator_loop(f->agg), &o, &err);
    assert_non_null(f->col);
    f->zctx = zmq_ctx_new();
    f->req = zmq_socket(f->zctx, ZMQ_REQ);
    int zero = 0;
    zmq_setsockopt(f->req, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(f->req, f->control), 0);
    s_uscc("53360730500019795", f->code);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    zmq_close(f->req);
    zmq_ctx_term(f->zctx);
    as_collector_destroy(&f->col);
    as_collector_destroy(&f->col); /* safe twice */
    as_aggregator_stop(f->agg);
    assert_int_equal(as_aggregator_run(f->agg), 0);
    as_aggregator_destroy(&f->agg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void s_pump(fx_t *f)
{
    uv_run(as_aggregator_loop(f->agg), UV_RUN_NOWAIT);
    usleep(1000);
}

/* Sends a control request of n frames and returns the one-frame answer (static buffer). */
static const char *s_control(fx_t *f, const char **frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(zmq_send(f->req, frames[i], lens[i], i < n - 1 ? ZMQ_SNDMORE : 0),
                         (int)lens[i]);
    static char out[1024];
    uint64_t end = s_ms() + 5000;
    while (s_ms() < end) {
        s_pump(f);
        int r = zmq_recv(f->req, out, sizeof out - 1, ZMQ_DONTWAIT);
        if (r >= 0) {
            out[r < (int)sizeof out - 1 ? r : (int)sizeof out - 1] = 0;
            return out;
        }
    }
    fail_msg("no answer from the control endpoint");
    return NULL;
}

static const char *s_submit(fx_t *f, const char *name, const char *content)
{
    const char *fr[3] = {AS_CONTROL_SUBMIT, name, content};
    size_t ln[3] = {strlen(AS_CONTROL_SUBMIT), strlen(name), strlen(content)};
    return s_control(f, fr, ln, 3);
}

static const char *s_two(fx_t *f, const char *a, const char *b)
{
    const char *fr[2] = {a, b};
    size_t ln[2] = {strlen(a), b ? strlen(b) : 0};
    return s_control(f, fr, ln, b ? 2 : 1);
}

static json_t *s_status(fx_t *f)
{
    const char *fr[1] = {AS_CONTROL_STATUS};
    size_t ln[1] = {strlen(AS_CONTROL_STATUS)};
    const char *s = s_control(f, fr, ln, 1);
    json_t *j = json_loads(s, 0, NULL);
    if (!j)
        fail_msg("status is not JSON: %s", s);
    return j;
}

/* Pumps until the provincial ledger holds want events (10 s at most). */
static void s_wait_ledger(fx_t *f, uint64_t want)
{
    as_ledger_t *l = as_aggregator_ledger(f->agg);
    uint64_t end = s_ms() + 10000;
    while (as_ledger_last_seq(l) < want && s_ms() < end)
        s_pump(f);
    assert_int_equal(as_ledger_last_seq(l), want);
}

static char *s_csv(fx_t *f, const char *ids[], size_t n)
{
    char *csv = calloc(1, 4096);
    strcat(csv, "event_id,county_code,org_credit_code,org_name,area,activity_date,beneficiaries,"
                "funds_yuan\n");
    for (size_t i = 0; i < n; i++) {
        char row[256];
        snprintf(row, sizeof row, "%s,360730,%s,宁都县测试基金会,health,2026-02-0%zu,4,%zu.50\n",
                 ids[i], f->code, i + 1, i + 1);
        strcat(csv, row);
    }
    return csv;
}

static void test_submit_reaches_ledger(void **state)
{
    fx_t *f = *state;
    const char *ids[] = {"S1", "S2"};
    char *csv = s_csv(f, ids, 2);
    assert_string_equal(s_submit(f, "march.csv", csv), "ok march.csv");
    /* the same name again before the first was taken: a free name */
    const char *ids2[] = {"S3"};
    char *csv2 = s_csv(f, ids2, 1);
    assert_string_equal(s_submit(f, "march.csv", csv2), "ok 2-march.csv");
    free(csv);
    free(csv2);
    s_wait_ledger(f, 3);
    as_measures_t tot;
    as_totals_row_t *rows;
    size_t n;
    assert_int_equal(
        as_ledger_totals(as_aggregator_ledger(f->agg), 2026, AS_DIM_COUNTY, NULL, &rows, &n, &tot),
        0);
    free(rows);
    assert_int_equal(tot.activities, 3);
    assert_int_equal(tot.funds_fen, 150 + 250 + 150);
    /* delivered and acknowledged: the backlog empties */
    json_t *j = NULL;
    uint64_t end = s_ms() + 5000;
    do {
        json_decref(j);
        j = s_status(f);
    } while (json_integer_value(json_object_get(j, "backlog")) != 0 && s_ms() < end);
    assert_int_equal(json_integer_value(json_object_get(j, "county")), COUNTY);
    assert_int_equal(json_integer_value(json_object_get(j, "backlog")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 0);
    assert_true(json_is_true(json_object_get(j, "connected")));
    assert_int_equal(json_integer_value(json_object_get(j, "acknowledged")), 3);
    json_decref(j);
    char path[256];
    snprintf(path, sizeof path, "%s/march.csv", f->done);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/2-march.csv", f->done);
    assert_int_equal(access(path, F_OK), 0);
}

static void test_refusals(void **state)
{
    fx_t *f = *state;
    char longname[260];
    memset(longname, 'a', 250);
    longname[250] = 0;
    const char *bad[] = {"", ".hidden.csv", "../up.csv", "sub/x.csv", "done", longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *r = s_submit(f, bad[i], "x");
        if (strncmp(r, "error ", 6) != 0)
            fail_msg("name '%.40s' accepted: %s", bad[i], r);
    }
    assert_memory_equal(s_two(f, "frobnicate", NULL), "error unknown request", 21);
    assert_memory_equal(s_two(f, AS_CONTROL_SUBMIT, "x.csv"), "error unknown request", 21);
    const char *four[] = {"submit", "a", "b", "c"};
    size_t four_len[] = {6, 1, 1, 1};
    assert_string_equal(s_control(f, four, four_len, 4), "error too many frames");
    const char *months[] = {"2026-13", "2026-00", "1999-05", "2026-3x", "March", ""};
    for (size_t i = 0; i < sizeof months / sizeof months[0]; i++) {
        const char *r = s_two(f, AS_CONTROL_NIL, months[i]);
        if (strncmp(r, "error a month as YYYY-MM", 24) != 0)
            fail_msg("month '%s' accepted: %s", months[i], r);
    }
    /* nothing reached the spool */
    char path[256];
    snprintf(path, sizeof path, "%s/up.csv", f->data);
    assert_int_not_equal(access(path, F_OK), 0);
    json_t *j = s_status(f);
    assert_int_equal(json_integer_value(json_object_get(j, "backlog")), 0);
    json_decref(j);
}

static void test_nil_report_delivered(void **state)
{
    fx_t *f = *state;
    assert_string_equal(s_two(f, AS_CONTROL_NIL, "2026-03"), "ok");
    uint64_t end = s_ms() + 10000;
    while (f->nils == 0 && s_ms() < end)
        s_pump(f);
    assert_int_equal(f->nils, 1);
    assert_int_equal(f->nil_county, COUNTY);
    assert_int_equal(f->nil_year, 2026);
    assert_int_equal(f->nil_month, 3);
}

/* Splits one CSV record (RFC 4180) into fields; returns their number. */
static int s_fields(const char *line, char out[][256], int max)
{
    int n = 0;
    const char *p = line;
    for (;;) {
        char *o = out[n];
        size_t k = 0;
        if (*p == '"') {
            p++;
            for (; *p; p++) {
                if (*p == '"' && p[1] == '"')
                    o[k++] = '"', p++;
                else if (*p == '"')
                    break;
                else
                    o[k++] = *p;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != '\r' && *p != '\n')
                o[k++] = *p++;
        }
        o[k] = 0;
        n++;
        if (*p != ',' || n == max)
            break;
        p++;
    }
    return n;
}

static void test_rejected_event_listed(void **state)
{
    fx_t *f = *state;
    /* a retraction of an event the province never had: rejected there, listed here */
    char csv[1024];
    snprintf(csv, sizeof csv,
             "event_id,county_code,org_credit_code,org_name,area,activity_date,beneficiaries,"
             "correction_of,retract\n"
             "OK1,360730,%s,宁都县测试基金会,health,2026-02-01,4,,\n"
             "\"R,1 \"\"late\"\"\",360730,%s,宁都县测试基金会,health,2026-02-02,4,NOPE,是\n",
             f->code, f->code);
    assert_string_equal(s_submit(f, "late.csv", csv), "ok late.csv");
    s_wait_ledger(f, 1);
    json_t *j = NULL;
    uint64_t end = s_ms() + 5000;
    do {
        json_decref(j);
        j = s_status(f);
    } while (json_integer_value(json_object_get(j, "rejected")) != 1 && s_ms() < end);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 1);
    json_decref(j);

    char path[256];
    snprintf(path, sizeof path, "%s/late.csv.errors.csv", f->done);
    char *text = NULL;
    end = s_ms() + 3000;
    while (s_ms() < end) {
        FILE *fp = fopen(path, "rb");
        if (fp) {
            text = calloc(1, 8192);
            assert_true(fread(text, 1, 8191, fp) > 0);
            fclose(fp);
            break;
        }
        s_pump(f);
    }
    assert_non_null(text);
    assert_memory_equal(text, "\xEF\xBB\xBFrow,column,value,reason_zh,reason_en\r\n", 41);
    char *line = strstr(text, "\r\n2,");
    assert_non_null(line);
    char fields[8][256];
    int n = s_fields(line + 2, fields, 8);
    if (n != 5)
        fail_msg("the row's record has %d fields, not 5: %s", n, line + 2);
    assert_string_equal(fields[0], "2");
    assert_string_equal(fields[1], "");
    assert_string_equal(fields[2], "R,1 \"late\"");
    assert_true(strlen(fields[3]) > 0);              /* 中文 */
    assert_non_null(strstr(fields[4], "retracted")); /* English */
    free(text);
}

static void test_start_failures(void **state)
{
    fx_t *f = *state;
    as_collector_opts_t o = s_opts(f);
    char ctl[160];
    snprintf(ctl, sizeof ctl, "ipc://%s/control2.sock", f->dir);
    o.control = ctl;
    o.data = "/nonexistent/aidstat/county";
    int err = 0;
    assert_null(as_collector_new(as_aggregator_loop(f->agg), &o, &err));
    assert_int_equal(err, -ENOENT);
    char data2[128], spool2[160];
    snprintf(data2, sizeof data2, "%s/county2", f->dir);
    snprintf(spool2, sizeof spool2, "%s/spool", data2);
    o.data = data2;
    o.spool = spool2;
    o.control = "nonsense://control";
    err = 0;
    assert_null(as_collector_new(as_aggregator_loop(f->agg), &o, &err));
    assert_int_equal(err, AS_E_ZMQ);
    assert_int_equal(as_collector_reload(f->col), 0); /* no CURVE: nothing to reload */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_reaches_ledger, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_nil_report_delivered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rejected_event_listed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_start_failures, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
