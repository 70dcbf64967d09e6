/* test_report_doc: a report document rendered three ways — CSV (BOM, CRLF, RFC 4180 quoting,
 * money in yuan, one decimal, percentages, short rows padded), report.json parsed back with
 * jansson (money in fen, tenths and rates as decimals, escapes, parts) and the
 * printable HTML (escaping, the moment in Beijing time, a section per part, empty tables) — and
 * the file list with its prefix, appended to what the caller had. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "report_doc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-12-30 16:30:00 UTC = 2026-12-31 00:30 in Beijing */
#define MOMENT 1798648200000ull

static as_doc_t *s_doc(void)
{
    as_doc_t *d = as_doc_new("江西省社会组织参与脱贫攻坚统计 <2026>", 2026, true, MOMENT);
    assert_non_null(d);
    as_doc_note(d, "数据来源：aidstat & 各县民政局");
    as_doc_part(d, 1, "一、在哪扶");
    as_doc_table_t *t = as_doc_table(d, "01_counties", "按县统计");
    assert_non_null(t);
    as_doc_col(t, "county", "县区", AS_CELL_TEXT);
    as_doc_col(t, "activities", "活动数", AS_CELL_INT);
    as_doc_col(t, "funds_fen", "帮扶资金(元)", AS_CELL_FEN);
    as_doc_col(t, "volunteer_hours", "志愿服务时长(小时)", AS_CELL_TENTHS);
    as_doc_col(t, "coverage", "覆盖率", AS_CELL_PERMILLE);
    as_doc_row(t);
    as_doc_text(t, "宁都县");
    as_doc_int(t, 12);
    as_doc_int(t, 123450);
    as_doc_int(t, 123);
    as_doc_int(t, 125);
    as_doc_row(t);
    as_doc_text(t, "a \"quoted\", name\nwith a newline");
    as_doc_int(t, -3);
    as_doc_int(t, -5);
    as_doc_int(t, -5);
    as_doc_int(t, 1000);
    as_doc_row(t); /* a short row: padded with zeros */
    as_doc_text(t, "<b>&</b>");
    as_doc_row(t);
    as_doc_text(t, "tab\tand\x01"
                   "control");
    as_doc_int(t, INT64_MIN);
    as_doc_int(t, INT64_MAX);
    as_doc_int(t, -15);
    as_doc_int(t, 0);
    as_doc_int(t, 99); /* one cell too many: ignored */
    assert_int_equal(as_doc_rows(t), 4);
    as_doc_part(d, 2, "二、扶了谁");
    as_doc_table_t *e = as_doc_table(d, "02_empty", "空表");
    as_doc_col(e, "x", "甲", AS_CELL_INT);
    as_doc_part(d, 3, "三、扶了多少");
    as_doc_table_t *g = as_doc_table(d, "02b_more", "续表");
    as_doc_col(g, "y", "乙", AS_CELL_TEXT);
    as_doc_row(g);
    as_doc_text(g, "续");
    return d;
}

static const as_archive_file_t *s_file(const as_archive_file_t *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].name, name))
            return &f[i];
    fail_msg("no file %s", name);
    return NULL;
}

static char *s_text(const as_archive_file_t *f)
{
    char *s = malloc(f->len + 1);
    memcpy(s, f->data, f->len);
    s[f->len] = 0;
    return s;
}

static void test_files_and_prefix(void **state)
{
    as_doc_t *d = s_doc();
    /* appended after what the caller already had */
    as_archive_file_t *files = calloc(1, sizeof *files);
    snprintf(files[0].name, sizeof files[0].name, "earlier.txt");
    files[0].data = (uint8_t *)strdup("x");
    files[0].len = 1;
    size_t n = 1;
    assert_int_equal(as_doc_render(d, "units/3/", &files, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(files[0].name, "earlier.txt");
    assert_string_equal(files[1].name, "units/3/01_counties.csv");
    assert_string_equal(files[2].name, "units/3/02_empty.csv");
    assert_string_equal(files[3].name, "units/3/02b_more.csv");
    assert_string_equal(files[4].name, "units/3/report.json");
    assert_string_equal(files[5].name, "units/3/report.html");
    for (size_t i = 1; i < n; i++)
        assert_true(files[i].len > 0 && files[i].len == strlen((const char *)files[i].data));
    as_archive_files_free(files, n);
    as_doc_destroy(&d);
    as_doc_destroy(&d); /* safe twice */
    assert_null(d);
}

static void test_csv(void **state)
{
    as_doc_t *d = s_doc();
    as_archive_file_t *files = NULL;
    size_t n = 0;
    assert_int_equal(as_doc_render(d, "", &files, &n), 0);
    char *csv = s_text(s_file(files, n, "01_counties.csv"));
    assert_string_equal(csv, "\xEF\xBB\xBF"
                             "县区,活动数,帮扶资金(元),志愿服务时长(小时),覆盖率\r\n"
                             "宁都县,12,1234.50,12.3,12.5%\r\n"
                             "\"a \"\"quoted\"\", name\nwith a newline\",-3,-0.05,-0.5,100.0%\r\n"
                             "<b>&</b>,0,0.00,0.0,0.0%\r\n"
                             "tab\tand\x01"
                             "control,-9223372036854775808,92233720368547758.07,-1.5,0.0%\r\n");
    free(csv);
    csv = s_text(s_file(files, n, "02_empty.csv"));
    assert_string_equal(csv, "\xEF\xBB\xBF甲\r\n");
    free(csv);
    as_archive_files_free(files, n);
    as_doc_destroy(&d);
}

static void test_json(void **state)
{
    as_doc_t *d = s_doc();
    as_archive_file_t *files = NULL;
    size_t n = 0;
    assert_int_equal(as_doc_render(d, "", &files, &n), 0);
    const as_archive_file_t *jf = s_file(files, n, "report.json");
    json_error_t err;
    json_t *j = json_loadb((const char *)jf->data, jf->len, 0, &err);
    if (!j)
        fail_msg("report.json does not parse: %s at %d", err.text, err.position);
    assert_int_equal(json_integer_value(json_object_get(j, "year")), 2026);
    assert_true(json_is_true(json_object_get(j, "final")));
    assert_int_equal(json_integer_value(json_object_get(j, "generated_ms")), MOMENT);
    assert_string_equal(json_string_value(json_object_get(j, "title")),
                        "江西省社会组织参与脱贫攻坚统计 <2026>");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "notes"), 0)),
                        "数据来源：aidstat & 各县民政局");
    json_t *tables = json_object_get(j, "tables");
    assert_int_equal(json_object_size(tables), 3);
    json_t *t = json_object_get(tables, "01_counties");
    assert_int_equal(json_integer_value(json_object_get(t, "part")), 1);
    assert_string_equal(json_string_value(json_object_get(t, "title")), "按县统计");
    assert_int_equal(json_array_size(json_object_get(t, "columns")), 5);
    json_t *rows = json_object_get(t, "rows");
    assert_int_equal(json_array_size(rows), 4);
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
    json_t *r2 = json_array_get(rows, 2), *r3 = json_array_get(rows, 3);
    assert_string_equal(json_string_value(json_object_get(r0, "county")), "宁都县");
    assert_int_equal(json_integer_value(json_object_get(r0, "funds_fen")), 123450); /* fen */
    assert_true(json_number_value(json_object_get(r0, "volunteer_hours")) == 12.3);
    assert_true(json_number_value(json_object_get(r0, "coverage")) == 12.5);
    assert_string_equal(json_string_value(json_object_get(r1, "county")),
                        "a \"quoted\", name\nwith a newline");
    assert_int_equal(json_integer_value(json_object_get(r1, "funds_fen")), -5);
    assert_true(json_number_value(json_object_get(r3, "volunteer_hours")) == -1.5);
    assert_true(json_number_value(json_object_get(r1, "volunteer_hours")) == -0.5); /* -5 tenths */
    assert_int_equal(json_integer_value(json_object_get(r2, "activities")), 0);     /* padded */
    assert_string_equal(json_string_value(json_object_get(r3, "county")), "tab\tand\x01"
                                                                          "control");
    assert_int_equal(json_integer_value(json_object_get(r3, "activities")), INT64_MIN);
    assert_int_equal(json_integer_value(json_object_get(r3, "funds_fen")), INT64_MAX);
    t = json_object_get(tables, "02b_more");
    assert_int_equal(json_integer_value(json_object_get(t, "part")), 3);
    assert_int_equal(json_array_size(json_object_get(json_object_get(tables, "02_empty"), "rows")),
                     0);
    json_decref(j);
    as_archive_files_free(files, n);
    as_doc_destroy(&d);
}

static int s_count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_html(void **state)
{
    as_doc_t *d = s_doc();
    as_archive_file_t *files = NULL;
    size_t n = 0;
    assert_int_equal(as_doc_render(d, "", &files, &n), 0);
    char *h = s_text(s_file(files, n, "report.html"));
    assert_memory_equal(h, "<!DOCTYPE html>\n<html lang=\"zh-CN\">", 34);
    assert_non_null(strstr(h, "<title>江西省社会组织参与脱贫攻坚统计 &lt;2026&gt;</title>"));
    assert_non_null(
        strstr(h, "2026年度 · 正式报告（定稿） · 统计截至 2026-12-31 00:30（北京时间）"));
    assert_non_null(strstr(h, "数据来源：aidstat &amp; 各县民政局"));
    assert_int_equal(s_count(h, "<section class=\"part"), 3); /* one per as_doc_part */
    assert_int_equal(s_count(h, "<section class=\"part first\" id=\"part1\">"), 1);
    assert_int_equal(s_count(h, "id=\"part2\""), 1);
    assert_int_equal(s_count(h, "id=\"part3\""), 1);
    assert_non_null(strstr(h, "<td>&lt;b&gt;&amp;&lt;/b&gt;</td>"));
    assert_null(strstr(h, "<b>&</b>"));
    assert_non_null(strstr(h, "<td>a &quot;quoted&quot;, name\nwith a newline</td>"));
    assert_non_null(strstr(h, "<td class=\"n\">1234.50</td>"));
    assert_non_null(strstr(h, "<td class=\"n\">-0.5</td>"));
    assert_non_null(strstr(h, "<td class=\"n\">12.5%</td>"));
    assert_non_null(strstr(h, "<td colspan=\"1\">（无）</td>")); /* the empty table */
    /* each table in its own part's section */
    char *s2 = strstr(h, "<h2>三、扶了多少</h2>");
    assert_non_null(s2);
    assert_non_null(strstr(s2, "续表"));
    char *s1 = strstr(h, "<h2>二、扶了谁</h2>");
    assert_true(s1 && s1 < s2);
    assert_null(strstr(s1, "续表") < s2 ? strstr(s1, "续表") : NULL);
    assert_true(strlen(h) > 1000 && !strcmp(h + strlen(h) - 8, "</html>\n"));
    free(h);
    as_archive_files_free(files, n);
    as_doc_destroy(&d);

    /* a draft before any part: no sections, tables kept in JSON with part 0 */
    d = as_doc_new("草稿", 2025, false, 0);
    as_doc_table_t *t = as_doc_table(d, "loose", "无部分");
    as_doc_col(t, "a", "甲", AS_CELL_INT);
    files = NULL;
    n = 0;
    assert_int_equal(as_doc_render(d, "", &files, &n), 0);
    h = s_text(s_file(files, n, "report.html"));
    assert_non_null(strstr(h, "2025年度 · 草稿 · 统计截至 1970-01-01 08:00（北京时间）"));
    assert_null(strstr(h, "<section"));
    free(h);
    json_t *j = json_loadb((const char *)s_file(files, n, "report.json")->data,
                           s_file(files, n, "report.json")->len, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_false(json_object_get(j, "final")));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(j, "tables"), "loose"), "part")),
                     0);
    json_decref(j);
    as_archive_files_free(files, n);
    as_doc_destroy(&d);
}

static void test_null_tables_ignored(void **state)
{
    as_doc_col(NULL, "a", "b", AS_CELL_INT);
    as_doc_row(NULL);
    as_doc_text(NULL, "x");
    as_doc_int(NULL, 1);
    assert_int_equal(as_doc_rows(NULL), 0);
    /* cells before any row are not kept */
    as_doc_t *d = as_doc_new("t", 2026, false, 0);
    as_doc_table_t *t = as_doc_table(d, "t", "t");
    as_doc_col(t, "a", "甲", AS_CELL_INT);
    as_doc_int(t, 5);
    as_doc_text(t, "leak?");
    assert_int_equal(as_doc_rows(t), 0);
    as_archive_file_t *files = NULL;
    size_t n = 0;
    assert_int_equal(as_doc_render(d, "", &files, &n), 0);
    char *csv = s_text(s_file(files, n, "t.csv"));
    assert_string_equal(csv, "\xEF\xBB\xBF甲\r\n");
    free(csv);
    as_archive_files_free(files, n);
    as_doc_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_prefix),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_null_tables_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
