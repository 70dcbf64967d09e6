/* test_reader: the collector's file reader driven by the real spool and outbox (LMDB) in a
 * temporary folder — valid rows become packed events in the outbox with their source file and
 * row, rejected rows (bad figures, another county) and warnings (a misspelt column) land in
 * NAME.errors.csv, NDJSON and GB18030 files are read alike, and a file that cannot be read as a
 * whole is taken once with its file-level error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "event.h"
#include "outbox.h"
#include "reader.h"
#include "spool.h"
#include "wire.h"

#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define COUNTY 360730

typedef struct {
    char dir[64], spool[96], done[128];
    uv_loop_t loop;
    as_outbox_t *ob;
    as_spool_t *sp;
    as_reader_ctx_t rctx;
    int taken_calls;
    size_t last_events, last_errors;
    char code[19]; /* a valid credit code */
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

static void s_taken(void *arg, const char *name, size_t events, size_t errors)
{
    fx_t *f = arg;
    f->taken_calls++;
    f->last_events = events;
    f->last_errors = errors;
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_reader.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->spool, sizeof f->spool, "%s/spool", f->dir);
    snprintf(f->done, sizeof f->done, "%s/done", f->spool);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/outbox", f->dir);
    int err = 0;
    f->ob = as_outbox_new(path, true, &err);
    assert_non_null(f->ob);
    f->rctx.county = COUNTY;
    as_spool_opts_t o = {.scan_ms = 50, .stable_ms = 100};
    f->sp = as_spool_new(&f->loop, f->spool, f->ob, as_reader_read, &f->rctx, &o, &err);
    assert_non_null(f->sp);
    as_spool_on_taken(f->sp, s_taken, f);
    s_uscc("53360730500019795", f->code);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_spool_destroy(&f->sp);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    as_outbox_destroy(&f->ob);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Writes bytes to spool/name under a temporary name, then renames it into place. */
static void s_drop(fx_t *f, const char *name, const char *data, size_t len)
{
    char tmp[256], path[256];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", f->spool, name);
    snprintf(path, sizeof path, "%s/%s", f->spool, name);
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
    assert_int_equal(rename(tmp, path), 0);
}

static void s_run_until_taken(fx_t *f, int n)
{
    uint64_t deadline = s_ms() + 5000;
    while (f->taken_calls < n && s_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    assert_int_equal(f->taken_calls, n);
}

static char *s_slurp(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 65536);
    assert_true(fread(buf, 1, 65535, fp) > 0);
    fclose(fp);
    return buf;
}

/* The pending events of the outbox, decoded, in order; caller frees. */
static as_event_t *s_events(fx_t *f, size_t *n)
{
    as_outbox_item_t *items;
    assert_int_equal(as_outbox_take(f->ob, 0, 100, &items, n), 0);
    as_event_t *ev = calloc(*n ? *n : 1, sizeof *ev);
    for (size_t i = 0; i < *n; i++) {
        assert_int_equal(items[i].kind, AS_ITEM_EVENT);
        assert_int_equal(as_event_unpack(items[i].data, items[i].len, &ev[i]), 0);
    }
    as_outbox_items_free(items, *n);
    return ev;
}

static void test_csv_rows_and_errors(void **state)
{
    fx_t *f = *state;
    char csv[2048];
    int len =
        snprintf(csv, sizeof csv,
                 "\xEF\xBB\xBF事件编号,县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期,"
                 "受益人数,建档立卡贫困人口数,帮扶资金(元),志愿服务时长,备用列\r\n"
                 "A1,360730,%s,宁都县测试基金会,education,2026-02-03,4,1,\"1,234.50\",2.5,x\r\n"
                 "A2,360730,%s,宁都县测试基金会,health,2026-02-04,4,9,10,0,\r\n"
                 "A3,360731,%s,宁都县测试基金会,health,2026-02-05,4,1,10,0,\r\n"
                 "A4,360730,%s,宁都县测试基金会,health,2026/2/6,0,0,0,1,\r\n",
                 f->code, f->code, f->code, f->code);
    s_drop(f, "march.csv", csv, (size_t)len);
    s_run_until_taken(f, 1);
    assert_int_equal(f->last_events, 2);
    /* the spool counts the errors file's entries: the warning and the two rows (spool.h says
     * "rows rejected"; a row with two bad values would count twice) */
    assert_int_equal(f->last_errors, 3);

    size_t n;
    as_event_t *ev = s_events(f, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ev[0].event_id, "A1");
    assert_int_equal(ev[0].county, COUNTY);
    assert_string_equal(ev[0].org_code, f->code);
    assert_int_equal(ev[0].funds_fen, 123450);
    assert_int_equal(ev[0].volunteer_tenths, 25);
    assert_int_equal(ev[0].date, 20260203);
    assert_string_equal(ev[0].source_file, "march.csv");
    assert_int_equal(ev[0].source_row, 1);
    assert_string_equal(ev[1].event_id, "A4");
    assert_int_equal(ev[1].date, 20260206);
    assert_int_equal(ev[1].source_row, 4);
    /* the wire id is the one derived from the county and the office's id */
    uint8_t id[AS_ID_LEN];
    as_event_id_for(COUNTY, "A1", id);
    assert_memory_equal(ev[0].id, id, AS_ID_LEN);
    free(ev);

    char *errs = s_slurp(f->done, "march.csv.errors.csv");
    assert_non_null(errs);
    assert_memory_equal(errs, "\xEF\xBB\xBFrow,column,value,reason_zh,reason_en\r\n", 41);
    /* the misspelt column as a warning of the file (row 0), then rows 2 and 3 */
    char *w = strstr(errs, "\r\n0,");
    char *r2 = strstr(errs, "\r\n2,registered_poor,9,");
    char *r3 = strstr(errs, "\r\n3,county_code,360731,");
    assert_non_null(w);
    assert_non_null(strstr(w, "备用列"));
    assert_non_null(r2);
    assert_non_null(r3);
    assert_true(w < r2 && r2 < r3);
    assert_null(strstr(errs, "\r\n1,"));
    assert_null(strstr(errs, "\r\n4,"));
    free(errs);
}

static void test_ndjson(void **state)
{
    fx_t *f = *state;
    char nd[1024];
    int len = snprintf(nd, sizeof nd,
                       "{\"event_id\":\"N1\",\"county_code\":\"360730\",\"org_credit_code\":\"%s\","
                       "\"org_name\":\"基金会\",\"area\":\"industry\",\"activity_date\":"
                       "\"2026-01-02\",\"beneficiaries\":3,\"funds_yuan\":\"0.05\"}\n"
                       "not json\n",
                       f->code);
    s_drop(f, "feed.ndjson", nd, (size_t)len);
    s_run_until_taken(f, 1);
    assert_int_equal(f->last_events, 1);
    assert_int_equal(f->last_errors, 1);
    size_t n;
    as_event_t *ev = s_events(f, &n);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].event_id, "N1");
    assert_int_equal(ev[0].funds_fen, 5);
    assert_int_equal(ev[0].beneficiaries, 3);
    assert_string_equal(ev[0].source_file, "feed.ndjson");
    free(ev);
}

static void test_gb18030(void **state)
{
    fx_t *f = *state;
    char utf8[1024], gb[2048];
    int len = snprintf(utf8, sizeof utf8,
                       "县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期,受益人数\n"
                       "360730,%s,宁都县慈善会,产业扶贫,2026-03-01,12\n",
                       f->code);
    iconv_t cd = iconv_open("GB18030", "UTF-8");
    assert_true(cd != (iconv_t)-1);
    char *in = utf8, *out = gb;
    size_t il = (size_t)len, ol = sizeof gb;
    assert_true(iconv(cd, &in, &il, &out, &ol) != (size_t)-1);
    iconv_close(cd);
    s_drop(f, "excel.csv", gb, sizeof gb - ol);
    s_run_until_taken(f, 1);
    assert_int_equal(f->last_events, 1);
    assert_int_equal(f->last_errors, 0);
    size_t n;
    as_event_t *ev = s_events(f, &n);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].org_name, "宁都县慈善会"); /* converted to UTF-8 */
    assert_int_equal(ev[0].area, AS_AREA_INDUSTRY);
    assert_int_equal(ev[0].beneficiaries, 12);
    assert_string_equal(ev[0].event_id, ""); /* derived */
    free(ev);
    char *errs = s_slurp(f->done, "excel.csv.errors.csv");
    assert_null(errs); /* nothing to say: no errors file */
}

static void test_unreadable_file_taken_once(void **state)
{
    fx_t *f = *state;
    const char bad[] = "foo,bar\n1,2\n"; /* no required column */
    s_drop(f, "wrong.csv", bad, strlen(bad));
    s_run_until_taken(f, 1);
    assert_int_equal(f->last_events, 0);
    assert_int_equal(as_outbox_backlog(f->ob), 0);
    char *errs = s_slurp(f->done, "wrong.csv.errors.csv");
    assert_non_null(errs);
    assert_non_null(strstr(errs, "\r\n0,")); /* one error for the file as a whole */
    free(errs);
    /* taken, not retried */
    uint64_t end = s_ms() + 300;
    while (s_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    assert_int_equal(f->taken_calls, 1);
}

/* A formula typed into a cell reaches errors.csv neutralised; a stray byte rejects its own row
 * only, naming it and its column; the other rows are taken. */
static void test_formula_and_stray_byte(void **state)
{
    fx_t *f = *state;
    char csv[2048];
    int len =
        snprintf(csv, sizeof csv,
                 "事件编号,县区代码,统一社会信用代码,组织名称,帮扶领域,活动日期,帮扶资金(元)\r\n"
                 "B1,360730,%s,宁都县测试基金会,education,2026-02-03,=1+1\r\n"
                 "B2,360730,%s,宁都县测试\xff基金会,education,2026-02-03,10\r\n"
                 "B3,360730,%s,宁都县测试基金会,education,2026-02-03,10\r\n",
                 f->code, f->code, f->code);
    s_drop(f, "f.csv", csv, (size_t)len);
    s_run_until_taken(f, 1);
    assert_int_equal(f->last_events, 1);
    char *errs = s_slurp(f->done, "f.csv.errors.csv");
    assert_non_null(errs);
    assert_non_null(strstr(errs, "\r\n1,funds_yuan,\"'=1+1\","));
    assert_non_null(strstr(errs, "\r\n2,org_name,宁都县测试?基金会,无效的字符编码,"
                                 "invalid character encoding\r\n"));
    free(errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_csv_rows_and_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ndjson, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_gb18030, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_formula_and_stray_byte, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file_taken_once, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
