/* test_gen: sample data — deterministic per seed, every good row valid for its county (read back
 * through the spreadsheet reader and the validator), exactly N bad rows, date order, dates not
 * after today, organisations repeating, villages in real townships, option errors. */
#include "division.h"
#include "err.h"
#include "gen.h"
#include "sheet.h"
#include "uscc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static const uint32_t s_two[] = {360730, 360733};

typedef struct {
    char path[64];
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    strcpy(f->path, "/tmp/test_gen.XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    unlink(f->path);
    free(f);
    return 0;
}

static char *s_gen_mem(const as_gen_opts_t *o, size_t *len)
{
    char *buf = NULL;
    FILE *fp = open_memstream(&buf, len);
    assert_int_equal(as_gen_write(fp, o, NULL, 0), 0);
    fclose(fp);
    return buf;
}

static void s_gen_file(fx_t *f, const as_gen_opts_t *o)
{
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    char err[200] = "";
    assert_int_equal(as_gen_write(fp, o, err, sizeof err), 0);
    fclose(fp);
}

typedef struct {
    uint64_t events, rejected;
    uint32_t last_date, max_date;
    bool ordered;
    uint32_t county_seen[2];
    char codes[4096][AS_CODE_LEN + 1];
    size_t ncodes;
} seen_t;

static int s_on_event(void *arg, const as_event_t *ev, size_t rowno, size_t line)
{
    seen_t *s = arg;
    s->events++;
    if (ev->date < s->last_date)
        s->ordered = false;
    s->last_date = ev->date;
    if (ev->date > s->max_date)
        s->max_date = ev->date;
    assert_true(ev->county == s_two[0] || ev->county == s_two[1]);
    s->county_seen[ev->county == s_two[1]]++;
    assert_int_equal(as_uscc_check(ev->org_code), AS_USCC_OK);
    assert_true(ev->registered_poor <= ev->beneficiaries);
    if (ev->village[0]) {
        char c6[7];
        memcpy(c6, ev->village, 6), c6[6] = 0;
        assert_int_equal(strtoul(c6, NULL, 10), ev->county);
        unsigned t = (unsigned)((ev->village[6] - '0') * 100 + (ev->village[7] - '0') * 10 +
                                (ev->village[8] - '0'));
        assert_true(as_division_township_exists(ev->county, t));
    }
    if (ev->area == AS_AREA_DEEP_VILLAGE)
        assert_true(ev->deep_village);
    assert_string_not_equal(ev->event_id, "");
    size_t i = 0;
    while (i < s->ncodes && strcmp(s->codes[i], ev->org_code) != 0)
        i++;
    if (i == s->ncodes && s->ncodes < 4096)
        strcpy(s->codes[s->ncodes++], ev->org_code);
    return 0;
}

static int s_on_error(void *arg, size_t rowno, size_t line, const as_field_error_t *e, size_t n)
{
    ((seen_t *)arg)->rejected++;
    return 0;
}

static seen_t *s_check(fx_t *f, uint32_t county)
{
    seen_t *s = calloc(1, sizeof *s);
    s->ordered = true;
    as_sheet_handler_t h = {s_on_event, s_on_error, NULL, s};
    as_validate_ctx_t ctx = {.county = county, .today = as_today_cst()};
    as_sheet_stats_t st;
    assert_int_equal(as_sheet_read_events(f->path, &ctx, &h, &st), 0);
    assert_int_equal(st.valid, s->events);
    assert_int_equal(st.rejected, s->rejected);
    return s;
}

static void test_deterministic(void **state)
{
    as_gen_opts_t o = {.counties = s_two, .ncounties = 2, .events = 3000, .year = 2024, .seed = 7};
    size_t a, b, c;
    char *x = s_gen_mem(&o, &a), *y = s_gen_mem(&o, &b);
    assert_int_equal(a, b);
    assert_memory_equal(x, y, a);
    o.seed = 8;
    char *z = s_gen_mem(&o, &c);
    assert_true(a != c || memcmp(x, z, a) != 0);
    /* Excel's form: BOM, Chinese headers, CRLF */
    assert_memory_equal(x, "\xEF\xBB\xBF事件编号,县区代码,",
                        strlen("\xEF\xBB\xBF事件编号,县区代码,"));
    assert_non_null(strstr(x, "\r\n360730-2024-"));
    free(x), free(y), free(z);
}

static void test_all_good_rows_valid(void **state)
{
    fx_t *f = *state;
    as_gen_opts_t o = {.counties = s_two, .ncounties = 2, .events = 20000, .year = 2025, .seed = 1};
    s_gen_file(f, &o);
    seen_t *s = s_check(f, 0);
    assert_int_equal(s->events, 20000);
    assert_int_equal(s->rejected, 0);
    assert_true(s->county_seen[0] > 8000 && s->county_seen[1] > 8000);
    /* organisations repeat: a pool per county, not one per row */
    assert_true(s->ncodes > 20 && s->ncodes < 1000);
    free(s);

    /* with the collector's county, the other county's rows are the rejected ones */
    s = s_check(f, 360730);
    assert_int_equal(s->events + s->rejected, 20000);
    assert_int_equal(s->county_seen[1], 0);
    free(s);
}

static void test_bad_rows_exact(void **state)
{
    fx_t *f = *state;
    uint64_t cases[][2] = {{100000, 50}, {500, 0}, {300, 300}, {1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        as_gen_opts_t o = {.counties = s_two,
                           .ncounties = 2,
                           .events = cases[i][0],
                           .year = as_today_cst() / 10000,
                           .seed = 1 + i,
                           .bad = cases[i][1]};
        s_gen_file(f, &o);
        seen_t *s = s_check(f, 0);
        assert_int_equal(s->rejected, cases[i][1]);
        assert_int_equal(s->events, cases[i][0] - cases[i][1]);
        free(s);
    }
}

static void test_sorted_and_not_after_today(void **state)
{
    fx_t *f = *state;
    uint32_t today = as_today_cst();
    as_gen_opts_t o = {.counties = s_two,
                       .ncounties = 2,
                       .events = 5000,
                       .year = today / 10000,
                       .seed = 3,
                       .sorted = true};
    s_gen_file(f, &o);
    seen_t *s = s_check(f, 0);
    assert_int_equal(s->events, 5000);
    assert_true(s->ordered);
    assert_true(s->max_date <= today);
    assert_true(s->max_date / 10000 == today / 10000);
    free(s);
    o.sorted = false;
    s_gen_file(f, &o);
    s = s_check(f, 0);
    assert_false(s->ordered);
    free(s);
}

static void test_bad_options(void **state)
{
    char err[200];
    uint32_t beijing = 110101, city = 360700;
    as_gen_opts_t o = {.counties = &beijing, .ncounties = 1, .events = 10, .year = 2024};
    FILE *null = fopen("/dev/null", "w");
    assert_int_equal(as_gen_write(null, &o, err, sizeof err), AS_E_INVALID);
    assert_non_null(strstr(err, "110101"));
    o.counties = &city;
    assert_int_equal(as_gen_write(null, &o, err, sizeof err), AS_E_INVALID);
    o.counties = s_two;
    o.year = as_today_cst() / 10000 + 1;
    assert_int_equal(as_gen_write(null, &o, err, sizeof err), AS_E_INVALID);
    o.year = 2024;
    o.bad = 11;
    assert_int_equal(as_gen_write(null, &o, err, sizeof err), AS_E_INVALID);
    o.ncounties = 0;
    o.bad = 0;
    assert_int_equal(as_gen_write(null, &o, err, sizeof err), AS_E_INVALID);
    fclose(null);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test_setup_teardown(test_all_good_rows_valid, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows_exact, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sorted_and_not_after_today, s_setup, s_teardown),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests_name("gen", tests, NULL, NULL);
}
