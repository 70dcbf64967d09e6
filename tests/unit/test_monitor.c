/* test_monitor: the monitor store (its own LMDB in a temporary folder) following a real ledger's
 * event log — nil reports and their checks, the completeness grid (reported, nil, silent, future)
 * with its sums, flagged events newest first with their names and a year filter, incremental and
 * idempotent catch-up that survives reopening, a flagged event whose text is not UTF-8, and the
 * flag's JSON written directly against jansson's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg_fixture.h"
#include "monitor.h"

#include <errno.h>

typedef struct {
    af_t *a;
    as_monitor_t *m;
    char mdir[128];
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->a = af_open();
    snprintf(f->mdir, sizeof f->mdir, "%s/monitor", f->a->dir);
    int err = 1;
    f->m = as_monitor_new(f->mdir, true, &err);
    assert_non_null(f->m);
    assert_int_equal(err, 0);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_monitor_destroy(&f->m);
    as_monitor_destroy(&f->m); /* safe twice */
    assert_int_equal(af_close(f->a), 0);
    free(f);
    return 0;
}

/* The cell of county in month (1..12) of a completeness answer. */
static const char *s_cell(json_t *comp, uint32_t county, int month)
{
    json_t *cs = json_object_get(comp, "counties");
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *c = json_array_get(cs, i);
        if ((uint32_t)atoi(json_string_value(json_object_get(c, "code"))) == county)
            return json_string_value(json_array_get(json_object_get(c, "cells"), month - 1));
    }
    return NULL;
}

static json_t *s_county(json_t *comp, uint32_t county)
{
    json_t *cs = json_object_get(comp, "counties");
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *c = json_array_get(cs, i);
        if ((uint32_t)atoi(json_string_value(json_object_get(c, "code"))) == county)
            return c;
    }
    return NULL;
}

static void test_nil_reports_checked(void **state)
{
    fx_t *f = *state;
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2026, 0), AS_E_INVALID);
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2026, 13), AS_E_INVALID);
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 1999, 5), AS_E_INVALID);
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2101, 5), AS_E_INVALID);
    assert_int_equal(as_monitor_put_nil(f->m, 360700, 2026, 5), AS_E_INVALID); /* a city */
    assert_int_equal(as_monitor_put_nil(f->m, 110101, 2026, 5), AS_E_INVALID); /* Beijing */
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2026, 5), 0);
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2026, 5), 0); /* again: harmless */
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2026, 12), 0);
    json_t *j = as_monitor_completeness_json(f->m, 2026, 20261231);
    assert_string_equal(s_cell(j, 360730, 5), "nil");
    assert_string_equal(s_cell(j, 360730, 12), "nil");
    assert_string_equal(s_cell(j, 360730, 4), "silent");
    json_t *c = s_county(j, 360730);
    assert_int_equal(json_integer_value(json_object_get(c, "nil")), 2);
    assert_int_equal(json_integer_value(json_object_get(c, "silent")), 10);
    json_decref(j);
}

static void test_completeness_grid(void **state)
{
    fx_t *f = *state;
    as_event_t ev[4] = {
        af_event(f->a, 360730, 1, 20260115), af_event(f->a, 360730, 2, 20260320),
        af_event(f->a, 360102, 3, 20260320), af_event(f->a, 360730, 4, 20251201), /* another year */
    };
    af_apply(f->a, ev, 4);
    assert_int_equal(as_monitor_seq(f->m), 0);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0);
    assert_int_equal(as_monitor_seq(f->m), 4);
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2026, 2), 0);
    assert_int_equal(as_monitor_put_nil(f->m, 360730, 2026, 3), 0); /* reported wins over nil */

    json_t *j = as_monitor_completeness_json(f->m, 2026, 20260415); /* mid-April */
    assert_int_equal(json_integer_value(json_object_get(j, "year")), 2026);
    json_t *months = json_object_get(j, "months");
    assert_int_equal(json_array_size(months), 12);
    assert_string_equal(json_string_value(json_array_get(months, 0)), "2026-01");
    assert_string_equal(json_string_value(json_array_get(months, 11)), "2026-12");
    size_t nc;
    as_division_counties(&nc);
    assert_int_equal(json_array_size(json_object_get(j, "counties")), nc); /* every county */
    assert_string_equal(s_cell(j, 360730, 1), "reported");
    assert_string_equal(s_cell(j, 360730, 2), "nil");
    assert_string_equal(s_cell(j, 360730, 3), "reported");
    assert_string_equal(s_cell(j, 360730, 4), "silent"); /* the current month counts */
    assert_string_equal(s_cell(j, 360730, 5), "future");
    assert_string_equal(s_cell(j, 360102, 3), "reported");
    assert_string_equal(s_cell(j, 360102, 1), "silent");
    json_t *c = s_county(j, 360730);
    assert_string_equal(json_string_value(json_object_get(c, "name")), "宁都县");
    assert_string_equal(json_string_value(json_object_get(c, "city")), "360700");
    assert_string_equal(json_string_value(json_object_get(c, "city_name")), "赣州市");
    assert_int_equal(json_integer_value(json_object_get(c, "reported")), 2);
    assert_int_equal(json_integer_value(json_object_get(c, "nil")), 1);
    assert_int_equal(json_integer_value(json_object_get(c, "silent")), 1);
    json_t *sum = json_object_get(j, "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "reported")), 3);
    assert_int_equal(json_integer_value(json_object_get(sum, "nil")), 1);
    assert_int_equal(json_integer_value(json_object_get(sum, "silent")), 4 * nc - 4);
    json_decref(j);

    /* a past year is all months; a coming year all future */
    j = as_monitor_completeness_json(f->m, 2025, 20260415);
    assert_string_equal(s_cell(j, 360730, 12), "reported");
    assert_string_equal(s_cell(j, 360730, 11), "silent");
    json_decref(j);
    j = as_monitor_completeness_json(f->m, 2027, 20260415);
    assert_string_equal(s_cell(j, 360730, 1), "future");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "summary"), "silent")),
                     0);
    json_decref(j);
}

static void test_flags_newest_first(void **state)
{
    fx_t *f = *state;
    as_event_t ev[5];
    for (int i = 0; i < 5; i++)
        ev[i] = af_event(f->a, i % 2 ? 360102 : 360730, i + 1, 20260101 + (uint32_t)i);
    ev[0].flags = AS_FLAG_UNREGISTERED | AS_FLAG_OUTLIER;
    ev[2].flags = AS_FLAG_CHECK_CHAR_FAILED;
    ev[3].flags = AS_FLAG_ONLINE_UNQUALIFIED;
    ev[3].date = 20251231; /* another year */
    ev[4].flags = AS_FLAG_AMENDMENT | AS_FLAG_DUPLICATE_ACROSS_COUNTIES;
    snprintf(ev[4].source_file, sizeof ev[4].source_file, "march.csv");
    af_apply(f->a, ev, 5);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0);

    json_t *j = as_monitor_flags_json(f->m, 0, 100);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 4);
    json_t *list = json_object_get(j, "flags");
    assert_int_equal(json_array_size(list), 4);
    const int seqs[4] = {5, 4, 3, 1};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(list, i), "seq")),
                         seqs[i]);
    json_t *e5 = json_array_get(list, 0);
    json_t *names = json_object_get(e5, "flags");
    assert_int_equal(json_array_size(names), 2); /* in bit order */
    assert_string_equal(json_string_value(json_array_get(names, 0)), "duplicate_across_counties");
    assert_string_equal(json_string_value(json_array_get(names, 1)), "amendment");
    assert_string_equal(json_string_value(json_object_get(e5, "event_id")), ev[4].event_id);
    assert_string_equal(json_string_value(json_object_get(e5, "county_name")), "宁都县");
    assert_string_equal(json_string_value(json_object_get(e5, "date")), "2026-01-05");
    assert_string_equal(json_string_value(json_object_get(e5, "source_file")), "march.csv");
    assert_int_equal(json_integer_value(json_object_get(e5, "funds_fen")), 100000);
    char hex[33];
    as_id_to_hex(ev[4].id, hex);
    assert_string_equal(json_string_value(json_object_get(e5, "id")), hex);
    json_t *e1 = json_array_get(list, 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(e1, "flags"), 0)),
                        "unregistered");
    assert_string_equal(json_string_value(json_array_get(json_object_get(e1, "flags"), 1)),
                        "outlier");
    json_decref(j);

    /* the year of the activity, and a limit that still counts them all */
    j = as_monitor_flags_json(f->m, 2025, 100);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(json_object_get(j, "flags"), 0), "seq")),
        4);
    json_decref(j);
    j = as_monitor_flags_json(f->m, 2026, 1);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 3);
    assert_int_equal(json_array_size(json_object_get(j, "flags")), 1);
    json_decref(j);
    j = as_monitor_flags_json(f->m, 2026, 0);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 3);
    assert_int_equal(json_array_size(json_object_get(j, "flags")), 0);
    json_decref(j);
}

static void test_catch_up_incremental_and_reopen(void **state)
{
    fx_t *f = *state;
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0); /* empty log */
    assert_int_equal(as_monitor_seq(f->m), 0);
    as_event_t ev[2] = {af_event(f->a, 360730, 1, 20260201), af_event(f->a, 360730, 2, 20260301)};
    ev[1].flags = AS_FLAG_OUTLIER;
    af_apply(f->a, ev, 1);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0);
    assert_int_equal(as_monitor_seq(f->m), 1);
    af_apply(f->a, ev + 1, 1);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0); /* nothing new */
    assert_int_equal(as_monitor_seq(f->m), 2);

    /* reopened: continues where it stopped, reads nothing twice */
    as_monitor_destroy(&f->m);
    int err = 0;
    f->m = as_monitor_new(f->mdir, true, &err);
    assert_non_null(f->m);
    assert_int_equal(as_monitor_seq(f->m), 2);
    as_event_t more = af_event(f->a, 360730, 3, 20260401);
    more.flags = AS_FLAG_OUTLIER;
    af_apply(f->a, &more, 1);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0);
    assert_int_equal(as_monitor_seq(f->m), 3);
    json_t *j = as_monitor_flags_json(f->m, 0, 10);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
    json_decref(j);
    j = as_monitor_completeness_json(f->m, 2026, 20261231);
    assert_string_equal(s_cell(j, 360730, 2), "reported");
    assert_string_equal(s_cell(j, 360730, 3), "reported");
    assert_string_equal(s_cell(j, 360730, 4), "reported");
    json_decref(j);

    /* a folder that cannot be made */
    as_monitor_t *bad = as_monitor_new("/nonexistent/aidstat/monitor", true, &err);
    assert_null(bad);
    assert_int_equal(err, -ENOENT);
}

/* One catch-up over more county-months than it sums in memory at once (every county, every
 * month): each is reported, none is lost between the partial writes. */
static void test_catch_up_many_months(void **state)
{
    fx_t *f = *state;
    size_t nc;
    const as_division_t *c = as_division_counties(&nc);
    size_t n = nc * 12;
    as_event_t *ev = calloc(n, sizeof *ev);
    assert_non_null(ev);
    for (size_t i = 0; i < n; i++)
        ev[i] = af_event(f->a, c[i % nc].code, (int)(i % 7), 20250101 + (uint32_t)(i / nc) * 100);
    af_apply(f->a, ev, n);
    free(ev);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0);
    assert_int_equal(as_monitor_seq(f->m), n);
    json_t *j = as_monitor_completeness_json(f->m, 2025, 20261231);
    json_t *sum = json_object_get(j, "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "reported")), n);
    assert_int_equal(json_integer_value(json_object_get(sum, "silent")), 0);
    json_decref(j);
}

static void test_flag_with_bad_text(void **state)
{
    fx_t *f = *state;
    as_event_t ev = af_event(f->a, 360730, 1, 20260201);
    ev.flags = AS_FLAG_UNREGISTERED;
    snprintf(ev.org_name, sizeof ev.org_name, "组织\xff\xfe");
    af_apply(f->a, &ev, 1);
    assert_int_equal(as_monitor_catch_up(f->m, f->a->l), 0);
    json_t *j = as_monitor_flags_json(f->m, 2026, 10);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    json_t *e = json_array_get(json_object_get(j, "flags"), 0);
    assert_non_null(e); /* kept, without the text */
    assert_int_equal(json_integer_value(json_object_get(e, "county")), 360730);
    assert_null(json_object_get(e, "org_name"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "flags"), 0)),
                        "unregistered");
    json_decref(j);
}

/* What jansson printed for a flagged event before as_monitor_flag_json wrote it directly. */
static char *s_jansson_flag(const as_log_entry_t *e)
{
    const as_event_t *ev = &e->ev;
    char idhex[33], date[16];
    as_id_to_hex(ev->id, idhex);
    snprintf(date, sizeof date, "%04u-%02u-%02u", ev->date / 10000, ev->date / 100 % 100,
             ev->date % 100);
    const as_division_t *d = as_division_find(ev->county);
    json_t *fl = json_array();
    for (uint32_t bit = 1; bit <= AS_FLAG_AMENDMENT; bit <<= 1)
        if ((ev->flags & bit) && as_flag_name(bit))
            json_array_append_new(fl, json_string(as_flag_name(bit)));
    json_t *o = json_pack(
        "{s:I,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:O,s:I,s:I,s:I,s:s}", "seq", (json_int_t)e->seq, "id",
        idhex, "event_id", ev->event_id, "county", (json_int_t)ev->county, "county_name",
        d ? d->name : "", "org_code", ev->org_code, "org_name", ev->org_name, "date", date, "flags",
        fl, "funds_fen", (json_int_t)ev->funds_fen, "beneficiaries", (json_int_t)ev->beneficiaries,
        "commit_ms", (json_int_t)e->commit_ms, "source_file", ev->source_file);
    if (!o)
        o = json_pack("{s:I,s:s,s:I,s:O}", "seq", (json_int_t)e->seq, "id", idhex, "county",
                      (json_int_t)ev->county, "flags", fl);
    char *txt = as_json_dumps(o);
    json_decref(o);
    json_decref(fl);
    return txt;
}

/* The flag's JSON, written without jansson, is jansson's text byte for byte: plain, with
 * characters to escape, every flag, negative and large numbers, and text that is not UTF-8. */
static void test_flag_json_as_jansson(void **state)
{
    fx_t *f = *state;
    as_log_entry_t *e = calloc(1, sizeof *e);
    as_jtext_t o = {0};
    for (int k = 0; k < 5; k++) {
        e->ev = af_event(f->a, k == 3 ? 360781 : 360730, k + 1, 20260201 + (uint32_t)k);
        e->seq = 1000000000000ull * (uint64_t)k + 7;
        e->commit_ms = 1764400000123ull + (uint64_t)k;
        e->ev.flags = k == 0 ? AS_FLAG_OUTLIER : (1u << (k + 2)) - 1;
        e->ev.funds_fen = k == 2 ? -123456789012 : 42;
        if (k == 1) {
            snprintf(e->ev.org_name, sizeof e->ev.org_name, "引号\"与\\斜杠\n换行\t\x01");
            snprintf(e->ev.source_file, sizeof e->ev.source_file, "办公室/三月 \"终稿\".csv");
        }
        if (k == 4)
            snprintf(e->ev.source_file, sizeof e->ev.source_file, "bad\xc3(.csv");
        char *want = s_jansson_flag(e);
        assert_non_null(want);
        assert_int_equal(as_monitor_flag_json(e, &o), 0);
        assert_int_equal(o.n, strlen(want));
        assert_memory_equal(o.p, want, o.n);
        free(want);
    }
    free(o.p);
    free(e);
}

static void test_flag_names(void **state)
{
    const char *want[] = {"check_char_failed",
                          "unregistered",
                          "online_unqualified",
                          "outlier",
                          "correction_target_missing",
                          "duplicate_across_counties",
                          "amendment"};
    const uint32_t bits[] = {AS_FLAG_CHECK_CHAR_FAILED,
                             AS_FLAG_UNREGISTERED,
                             AS_FLAG_ONLINE_UNQUALIFIED,
                             AS_FLAG_OUTLIER,
                             AS_FLAG_CORRECTION_TARGET_MISSING,
                             AS_FLAG_DUPLICATE_ACROSS_COUNTIES,
                             AS_FLAG_AMENDMENT};
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(as_flag_name(bits[i]), want[i]);
    assert_null(as_flag_name(0));
    assert_null(as_flag_name(3));
    assert_null(as_flag_name(128));
    assert_null(as_flag_name(1u << 31));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nil_reports_checked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_completeness_grid, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_flags_newest_first, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_incremental_and_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_many_months, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_flag_with_bad_text, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_flag_json_as_jansson, s_setup, s_teardown),
        cmocka_unit_test(test_flag_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
