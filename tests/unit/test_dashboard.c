/* test_dashboard: the page carried in the binary — whole, valid UTF-8 HTML with balanced
 * elements, self-contained (nothing fetched from the internet), naming every measure of
 * DESIGN.md and every review flag the monitor emits, every element the script looks up present,
 * the API endpoints and the stream it follows, and a script that node parses (when installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dashboard.h"
#include "event.h"
#include "monitor.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int s_count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_page_shape(void **state)
{
    size_t len = 0;
    const char *p = as_dashboard_html(&len);
    assert_non_null(p);
    assert_int_equal(strlen(p), len);
    assert_true(len > 5000);
    assert_ptr_equal(as_dashboard_html(NULL), p); /* the same static page; len may be NULL */
    json_t *u = json_stringn(p, len);             /* jansson accepts only valid UTF-8 */
    assert_non_null(u);
    json_decref(u);
    assert_memory_equal(p, "<!DOCTYPE html>\n<html lang='zh-CN'>", 35);
    assert_non_null(strstr(p, "<meta charset='utf-8'>"));
    assert_string_equal(p + len - 8, "</html>\n");
    const char *pairs[][2] = {{"<script", "</script>"},   {"<style", "</style>"},
                              {"<section", "</section>"}, {"<table", "</table>"},
                              {"<head>", "</head>"},      {"<body>", "</body>"},
                              {"<header>", "</header>"},  {"<main>", "</main>"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (s_count(p, pairs[i][0]) != s_count(p, pairs[i][1]))
            fail_msg("%d %s but %d %s", s_count(p, pairs[i][0]), pairs[i][0],
                     s_count(p, pairs[i][1]), pairs[i][1]);
    assert_int_equal(s_count(p, "<script"), 1);
}

static void test_self_contained(void **state)
{
    const char *p = as_dashboard_html(NULL);
    const char *banned[] = {"http://", "https://", "<script src", "<link",
                            "@import", "url(",     "//cdn",       "<iframe"};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strstr(p, banned[i]))
            fail_msg("the page refers outside itself: %s", banned[i]);
}

static void test_names_measures_and_flags(void **state)
{
    const char *p = as_dashboard_html(NULL);
    const char *measures[] = {"activities",
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
    char q[64];
    for (size_t i = 0; i < sizeof measures / sizeof measures[0]; i++) {
        snprintf(q, sizeof q, "'%s'", measures[i]);
        if (!strstr(p, q))
            fail_msg("the page does not show %s", measures[i]);
    }
    /* every flag the monitor can emit has its Chinese label */
    for (uint32_t bit = 1; bit <= AS_FLAG_AMENDMENT; bit <<= 1) {
        const char *name = as_flag_name(bit);
        assert_non_null(name);
        snprintf(q, sizeof q, "%s: '", name);
        if (!strstr(p, q))
            fail_msg("no label for flag %s", name);
    }
}

static void test_endpoints(void **state)
{
    const char *p = as_dashboard_html(NULL);
    assert_non_null(strstr(p, "'/api/totals"));
    assert_non_null(strstr(p, "'/api/status"));
    assert_non_null(strstr(p, "'/api/completeness"));
    assert_non_null(strstr(p, "'/api/flags"));
    assert_non_null(strstr(p, "new EventSource('/api/stream"));
}

static void test_looked_up_elements_exist(void **state)
{
    const char *p = as_dashboard_html(NULL);
    int n = 0;
    for (const char *s = strstr(p, "$('"); s; s = strstr(s + 1, "$('")) {
        const char *id = s + 3, *end = strchr(id, '\'');
        assert_non_null(end);
        char want[80];
        if (!strncmp(end, "' +", 3)) /* $('m-' + key): made from a template "id='m-" + ... */
            snprintf(want, sizeof want, "id='%.*s\" +", (int)(end - id), id);
        else
            snprintf(want, sizeof want, "id='%.*s'", (int)(end - id), id);
        if (!strstr(p, want))
            fail_msg("the script looks up #%.*s, which the page lacks", (int)(end - id), id);
        n++;
    }
    assert_true(n >= 15);
}

static void test_script_parses(void **state)
{
    if (access("/usr/bin/node", X_OK) != 0) {
        skip();
        return;
    }
    const char *p = as_dashboard_html(NULL);
    const char *a = strstr(p, "<script>");
    const char *b = strstr(p, "</script>");
    assert_true(a && b && a < b);
    a += 8;
    char dir[] = "/tmp/test_dashboard.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], cmd[160];
    snprintf(path, sizeof path, "%s/page.js", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fwrite(a, 1, (size_t)(b - a), fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "/usr/bin/node --check %s", path);
    int rc = system(cmd);
    unlink(path);
    rmdir(dir);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_shape),
        cmocka_unit_test(test_self_contained),
        cmocka_unit_test(test_names_measures_and_flags),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_looked_up_elements_exist),
        cmocka_unit_test(test_script_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
