/* test_measures_json: the 16 measures under DESIGN.md's names and in its order, volunteer hours
 * as a one-decimal real that prints short, money as integer fen (negative deltas too), the totals
 * answer's shape, and a real ledger's rows by organisation whose names were cut inside a UTF-8
 * character still carrying a valid "name"; the totals answer written without a tree
 * (as_totals_json_text) is jansson's text byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg_fixture.h"
#include "measures_json.h"

static const char *const s_names[16] = {"activities",
                                        "organisations",
                                        "beneficiaries",
                                        "registered_poor",
                                        "funds_fen",
                                        "goods_fen",
                                        "volunteers",
                                        "volunteer_hours",
                                        "social_workers",
                                        "persons_lifted",
                                        "jobs",
                                        "trainees",
                                        "income_increase_fen",
                                        "villages",
                                        "deep_poverty_villages",
                                        "counties"};

static as_measures_t s_m(uint64_t base)
{
    as_measures_t m;
    memset(&m, 0, sizeof m);
    m.activities = base + 1;
    m.organisations = base + 2;
    m.beneficiaries = base + 3;
    m.registered_poor = base + 4;
    m.funds_fen = (int64_t)base + 5;
    m.goods_fen = (int64_t)base + 6;
    m.volunteers = base + 7;
    m.volunteer_tenths = 123; /* 12.3 h */
    m.social_workers = base + 9;
    m.persons_lifted = base + 10;
    m.jobs = base + 11;
    m.trainees = base + 12;
    m.income_fen = (int64_t)base + 13;
    m.villages = base + 14;
    m.deep_villages = base + 15;
    m.counties = base + 16;
    return m;
}

static void test_measures_names_order_values(void **state)
{
    as_measures_t m = s_m(100);
    json_t *o = as_measures_to_json(&m);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 16);
    /* order as DESIGN.md lists them (jansson keeps insertion order) */
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        assert_string_equal(k, s_names[i]);
        if (i == 7) {
            assert_true(json_is_real(v));
            assert_true(json_real_value(v) == 12.3);
        } else {
            assert_true(json_is_integer(v));
            assert_int_equal(json_integer_value(v), 100 + i + 1);
        }
        i++;
    }
    char *s = as_json_dumps(o);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"volunteer_hours\":12.3,")); /* not 12.300000000000001 */
    assert_null(strchr(s, ' '));                             /* compact */
    assert_memory_equal(s, "{\"activities\":101,\"organisations\":102,", 38);
    free(s);
    json_decref(o);

    /* zero, large and negative values (a correction's delta may take money away) */
    memset(&m, 0, sizeof m);
    m.funds_fen = -250;
    m.income_fen = INT64_MAX;
    m.volunteer_tenths = 1;
    o = as_measures_to_json(&m);
    s = as_json_dumps(o);
    assert_non_null(strstr(s, "\"funds_fen\":-250,"));
    assert_non_null(strstr(s, "\"income_increase_fen\":9223372036854775807,"));
    assert_non_null(strstr(s, "\"volunteer_hours\":0.1,"));
    assert_non_null(strstr(s, "\"activities\":0,"));
    free(s);
    json_decref(o);
}

static void test_add_after_fields(void **state)
{
    json_t *o = json_pack("{s:s, s:i}", "key", "360730", "seq", 7);
    as_measures_t m = s_m(0);
    assert_int_equal(as_measures_add_json(o, &m), 0);
    assert_int_equal(json_object_size(o), 18);
    char *s = as_json_dumps(o);
    assert_memory_equal(s, "{\"key\":\"360730\",\"seq\":7,\"activities\":1,", 39);
    free(s);
    json_decref(o);
}

static void test_totals_shape(void **state)
{
    as_totals_row_t rows[2];
    memset(rows, 0, sizeof rows);
    snprintf(rows[0].key, sizeof rows[0].key, "360730");
    snprintf(rows[0].name, sizeof rows[0].name, "宁都县");
    rows[0].m = s_m(0);
    snprintf(rows[1].key, sizeof rows[1].key, "2026-03");
    rows[1].m = s_m(10); /* no name: the key stands in */
    as_measures_t total = s_m(1000);
    json_t *j = as_totals_to_json(2026, AS_DIM_COUNTY, rows, 2, &total);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "year")), 2026);
    assert_string_equal(json_string_value(json_object_get(j, "by")), "county");
    json_t *arr = json_object_get(j, "rows");
    assert_int_equal(json_array_size(arr), 2);
    json_t *r0 = json_array_get(arr, 0), *r1 = json_array_get(arr, 1);
    assert_int_equal(json_object_size(r0), 18);
    assert_string_equal(json_string_value(json_object_get(r0, "key")), "360730");
    assert_string_equal(json_string_value(json_object_get(r0, "name")), "宁都县");
    assert_string_equal(json_string_value(json_object_get(r1, "name")), "2026-03");
    assert_int_equal(json_integer_value(json_object_get(r1, "counties")), 26);
    json_t *t = json_object_get(j, "total");
    assert_int_equal(json_object_size(t), 16);
    assert_int_equal(json_integer_value(json_object_get(t, "activities")), 1001);
    char *s = as_json_dumps(j);
    const char *head = "{\"year\":2026,\"by\":\"county\",\"rows\":[{\"key\":\"360730\",\"name\":";
    assert_memory_equal(s, head, strlen(head));
    free(s);
    json_decref(j);

    /* a name that is not UTF-8 at all: the key stands in rather than the field going missing */
    snprintf(rows[0].name, sizeof rows[0].name, "\xff\xfe garbage \xc3");
    j = as_totals_to_json(2026, AS_DIM_COUNTY, rows, 1, &total);
    assert_non_null(j);
    r0 = json_array_get(json_object_get(j, "rows"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "name")), "360730");
    json_decref(j);

    /* no rows: an empty array, not null */
    memset(&total, 0, sizeof total);
    j = as_totals_to_json(2025, AS_DIM_PROVINCE, NULL, 0, &total);
    assert_non_null(j);
    assert_true(json_is_array(json_object_get(j, "rows")));
    assert_int_equal(json_array_size(json_object_get(j, "rows")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "by")), "province");
    json_decref(j);
}

static void test_long_org_names_from_a_ledger(void **state)
{
    af_t *a = af_open();
    /* org names of 20 to 40 Chinese characters (60 to 120 bytes): the row's name holds 95 */
    as_event_t ev[21];
    char name[256];
    for (int i = 0; i < 21; i++) {
        ev[i] = af_event(a, 360730, i + 1, 20260301);
        name[0] = 0;
        for (int c = 0; c < 20 + i; c++)
            strcat(name, "赣");
        snprintf(ev[i].org_name, sizeof ev[i].org_name, "%s", name);
    }
    af_apply(a, ev, 21);
    as_totals_row_t *rows = NULL;
    size_t n = 0;
    as_measures_t total;
    assert_int_equal(as_ledger_totals(a->l, 2026, AS_DIM_ORG, NULL, &rows, &n, &total), 0);
    assert_int_equal(n, 21);
    json_t *j = as_totals_to_json(2026, AS_DIM_ORG, rows, n, &total);
    assert_non_null(j);
    json_t *arr = json_object_get(j, "rows");
    assert_int_equal(json_array_size(arr), 21);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(arr, i);
        const char *nm = json_string_value(json_object_get(r, "name"));
        if (!nm)
            fail_msg("row %s has no name (its name is %zu bytes)", rows[i].key,
                     strlen(rows[i].name));
        /* a whole number of characters, a prefix of the organisation's name */
        assert_int_equal(strlen(nm) % 3, 0);
        assert_true(strlen(nm) >= 60 && strlen(nm) <= 95);
        assert_int_equal(strncmp(nm, name, strlen(nm)), 0);
        assert_int_equal(json_object_size(r), 18);
    }
    char *s = as_json_dumps(j);
    assert_non_null(s);
    json_error_t err;
    json_t *back = json_loads(s, 0, &err); /* what a client parses */
    assert_non_null(back);
    json_decref(back);
    free(s);
    json_decref(j);
    free(rows);
    assert_int_equal(af_close(a), 0);
}

/* as_totals_json_text writes what as_totals_to_json + as_json_dumps write, byte for byte. */
static void s_expect_same_text(uint32_t year, as_dim_t by, const as_totals_row_t *rows, size_t n,
                               const as_measures_t *total)
{
    json_t *j = as_totals_to_json(year, by, rows, n, total);
    char *want = j ? as_json_dumps(j) : NULL;
    json_decref(j);
    size_t len = 12345;
    char *got = as_totals_json_text(year, by, rows, n, total, &len);
    if (!want) {
        assert_null(got); /* both refuse (a key that is not UTF-8) */
        return;
    }
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("text differs from jansson's:\ngot  %s\nwant %s", got, want);
    assert_int_equal(len, strlen(want));
    free(got);
    free(want);
}

static void test_text_equals_jansson(void **state)
{
    as_totals_row_t rows[40];
    memset(rows, 0, sizeof rows);
    as_measures_t total = s_m(7);
    /* no rows, every dimension's name */
    for (int d = 0; d < AS_DIM_COUNT; d++)
        s_expect_same_text(2026, (as_dim_t)d, NULL, 0, &total);
    /* values: zero, negative money, INT64 extremes, counts above INT64_MAX (as jansson casts
     * them), volunteer hours whole, with a decimal, large and beyond 15 digits */
    const uint64_t tenths[] = {0,
                               1,
                               9,
                               10,
                               123,
                               99999,
                               1000000007,
                               12345678901234ull,
                               999999999999999ull,
                               1000000000000000ull,
                               1234567890123456ull,
                               UINT64_MAX};
    for (size_t i = 0; i < sizeof tenths / sizeof tenths[0]; i++) {
        as_totals_row_t *r = &rows[i];
        snprintf(r->key, sizeof r->key, "%06zu", 360100 + i);
        snprintf(r->name, sizeof r->name, "县%zu", i);
        r->m = s_m(i * 1000003);
        r->m.volunteer_tenths = tenths[i];
        r->m.funds_fen = i % 2 ? -(int64_t)i * 7919 : INT64_MAX - (int64_t)i;
        r->m.goods_fen = INT64_MIN + (int64_t)i;
        r->m.income_fen = 0;
        r->m.counties = UINT64_MAX - i;
    }
    s_expect_same_text(2026, AS_DIM_COUNTY, rows, 12, &total);
    /* names: every ASCII byte (escapes), Chinese, cut inside a character, invalid, empty */
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 4; i++) {
        snprintf(rows[i].key, sizeof rows[i].key, "k%d", i);
        for (int b = 0; b < 32; b++)
            rows[i].name[b] = (char)(1 + i * 32 + b == 128 ? 'x' : 1 + i * 32 + b);
    }
    snprintf(rows[4].key, sizeof rows[4].key, "360730");
    snprintf(rows[4].name, sizeof rows[4].name, "宁都县 \"社会\\组织\" /路\t径\n");
    snprintf(rows[5].key, sizeof rows[5].key, "cut1");
    snprintf(rows[5].name, sizeof rows[5].name, "赣州市\xe8\xb5"); /* 2 of 3 bytes */
    snprintf(rows[6].key, sizeof rows[6].key, "cut2");
    snprintf(rows[6].name, sizeof rows[6].name, "赣州市\xe8");
    snprintf(rows[7].key, sizeof rows[7].key, "bad");
    snprintf(rows[7].name, sizeof rows[7].name, "\xff\xfe garbage \xc3");
    snprintf(rows[8].key, sizeof rows[8].key, "overlong");
    snprintf(rows[8].name, sizeof rows[8].name, "\xc0\xaf\xe0\x80\xaf");
    snprintf(rows[9].key, sizeof rows[9].key, "surrogate");
    snprintf(rows[9].name, sizeof rows[9].name,
             "a\xed\xa0\x80"
             "b");
    snprintf(rows[10].key, sizeof rows[10].key, "astral");
    snprintf(rows[10].name, sizeof rows[10].name, "\xf0\x9f\x98\x80 \xf4\x90\x80\x80");
    snprintf(rows[11].key, sizeof rows[11].key, "2026-03"); /* no name: the key stands in */
    snprintf(rows[12].key, sizeof rows[12].key, "del");
    snprintf(rows[12].name, sizeof rows[12].name, "\x7f\xc2\x80\xe2\x80\xa8");
    for (int i = 0; i < 13; i++)
        rows[i].m = s_m((uint64_t)i);
    s_expect_same_text(2025, AS_DIM_ORG, rows, 13, &total);
    for (int i = 0; i < 13; i++)
        s_expect_same_text(2025, AS_DIM_ORG, &rows[i], 1, &total);
    /* a key that is not UTF-8: both refuse */
    snprintf(rows[0].key, sizeof rows[0].key, "\xff\xfe\xfd\xfc");
    s_expect_same_text(2025, AS_DIM_ORG, rows, 1, &total);
}

static void test_text_from_a_ledger(void **state)
{
    af_t *a = af_open();
    as_event_t ev[30];
    for (int i = 0; i < 30; i++) {
        ev[i] = af_event(a, i % 2 ? 360730 : 360102, i + 1, 20260301 + (i % 9) * 100);
        char name[200] = "";
        for (int c = 0; c < 10 + i; c++)
            strcat(name, "赣");
        snprintf(ev[i].org_name, sizeof ev[i].org_name, "%s", name);
    }
    af_apply(a, ev, 30);
    for (int d = 0; d < AS_DIM_COUNT; d++) {
        as_totals_row_t *rows = NULL;
        size_t n = 0;
        as_measures_t total;
        assert_int_equal(as_ledger_totals(a->l, 2026, (as_dim_t)d, NULL, &rows, &n, &total), 0);
        s_expect_same_text(2026, (as_dim_t)d, rows, n, &total);
        free(rows);
    }
    assert_int_equal(af_close(a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measures_names_order_values),
        cmocka_unit_test(test_add_after_fields),
        cmocka_unit_test(test_totals_shape),
        cmocka_unit_test(test_long_org_names_from_a_ledger),
        cmocka_unit_test(test_text_equals_jansson),
        cmocka_unit_test(test_text_from_a_ledger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
