/* test_log: the level and format parsers, the shape of a text line and of a JSON line (parsed
 * back with jansson, escapes included), the level filter (arguments below the level are not even
 * evaluated) and a long message cut to one line. stderr is redirected to a file per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "log.h"

#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char path[128];
    int saved; /* the real stderr */
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_log.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/stderr", f->dir);
    fflush(stderr);
    f->saved = dup(STDERR_FILENO);
    int fd = open(f->path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (f->saved < 0 || fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        return -1;
    close(fd);
    as_log_setup(AS_LOG_INFO, AS_LOG_TEXT);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    fflush(stderr);
    dup2(f->saved, STDERR_FILENO);
    close(f->saved);
    as_log_setup(AS_LOG_INFO, AS_LOG_TEXT);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* What was written to stderr so far; caller frees. */
static char *s_captured(fx_t *f)
{
    fflush(stderr);
    FILE *fp = fopen(f->path, "r");
    assert_non_null(fp);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static int s_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_parse(void **state)
{
    as_log_level_t lv = AS_LOG_ERROR;
    assert_int_equal(as_log_parse_level("debug", &lv), 0);
    assert_int_equal(lv, AS_LOG_DEBUG);
    assert_int_equal(as_log_parse_level("info", &lv), 0);
    assert_int_equal(lv, AS_LOG_INFO);
    assert_int_equal(as_log_parse_level("warn", &lv), 0);
    assert_int_equal(lv, AS_LOG_WARN);
    assert_int_equal(as_log_parse_level("error", &lv), 0);
    assert_int_equal(lv, AS_LOG_ERROR);
    lv = AS_LOG_WARN;
    assert_int_equal(as_log_parse_level("verbose", &lv), AS_E_INVALID);
    assert_int_equal(as_log_parse_level("", &lv), AS_E_INVALID);
    assert_int_equal(as_log_parse_level("info ", &lv), AS_E_INVALID);
    assert_int_equal(lv, AS_LOG_WARN); /* untouched on failure */

    as_log_format_t fm = AS_LOG_JSON;
    assert_int_equal(as_log_parse_format("text", &fm), 0);
    assert_int_equal(fm, AS_LOG_TEXT);
    assert_int_equal(as_log_parse_format("json", &fm), 0);
    assert_int_equal(fm, AS_LOG_JSON);
    assert_int_equal(as_log_parse_format("xml", &fm), AS_E_INVALID);
    assert_int_equal(as_log_parse_format("", &fm), AS_E_INVALID);
    assert_int_equal(fm, AS_LOG_JSON);
}

static void test_text_line(void **state)
{
    fx_t *f = *state;
    as_log_setup(AS_LOG_INFO, AS_LOG_TEXT);
    AS_WARN("ingest", "batch of %d from %s refused", 3, "360730");
    AS_INFO("ledger", "一切正常");
    char *out = s_captured(f);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "WARN  ingest: batch of 3 from 360730 refused\n"
                             "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "INFO  ledger: 一切正常\n$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("text log not in the expected shape:\n%s", out);
    regfree(&re);
    free(out);
}

static void test_json_line(void **state)
{
    fx_t *f = *state;
    as_log_setup(AS_LOG_DEBUG, AS_LOG_JSON);
    time_t before = time(NULL);
    AS_ERROR("http\"x", "quote \" backslash \\ newline \n tab \t bell \a 中文 end");
    AS_DEBUG("zap", "plain");
    char *out = s_captured(f);
    assert_int_equal(s_lines(out), 2);

    json_error_t jerr;
    char *nl = strchr(out, '\n');
    *nl = 0;
    json_t *j = json_loads(out, 0, &jerr);
    if (!j)
        fail_msg("not JSON: %s (%s)", out, jerr.text);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "ERROR");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "http\"x");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "quote \" backslash \\ newline \n tab \t bell \a 中文 end");
    const char *ts = json_string_value(json_object_get(j, "ts"));
    assert_non_null(ts);
    struct tm tm = {0};
    const char *rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    assert_int_equal(strlen(rest), 5); /* ".123Z" */
    assert_int_equal(rest[0], '.');
    assert_int_equal(rest[4], 'Z');
    time_t when = timegm(&tm);
    assert_true(when >= before - 1 && when <= time(NULL) + 1); /* UTC, now */
    json_decref(j);

    j = json_loads(nl + 1, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "DEBUG");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "plain");
    json_decref(j);
    free(out);
}

static int s_evaluated;
static const char *s_costly(void)
{
    s_evaluated++;
    return "x";
}

static void test_level_filter(void **state)
{
    fx_t *f = *state;
    as_log_setup(AS_LOG_WARN, AS_LOG_TEXT);
    s_evaluated = 0;
    AS_DEBUG("t", "%s", s_costly());
    AS_INFO("t", "%s", s_costly());
    assert_int_equal(s_evaluated, 0); /* below the level: not even formatted */
    AS_WARN("t", "w%s", s_costly());
    AS_ERROR("t", "e%s", s_costly());
    assert_int_equal(s_evaluated, 2);
    char *out = s_captured(f);
    assert_int_equal(s_lines(out), 2);
    assert_non_null(strstr(out, "WARN  t: wx\n"));
    assert_non_null(strstr(out, "ERROR t: ex\n"));
    assert_null(strstr(out, "INFO"));
    free(out);

    as_log_setup(AS_LOG_ERROR, AS_LOG_TEXT);
    AS_WARN("t", "dropped");
    out = s_captured(f);
    assert_int_equal(s_lines(out), 2);
    free(out);
}

static void test_long_message_one_line(void **state)
{
    fx_t *f = *state;
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    as_log_setup(AS_LOG_INFO, AS_LOG_TEXT);
    AS_INFO("spool", "%s", big);
    as_log_setup(AS_LOG_INFO, AS_LOG_JSON);
    AS_INFO("spool", "%s", big);
    char *out = s_captured(f);
    assert_int_equal(s_lines(out), 2);
    char *second = strchr(out, '\n') + 1;
    assert_non_null(strstr(out, ": aaaa"));
    size_t first_len = (size_t)(second - out);
    assert_true(first_len < 2200 && first_len > 2000); /* cut at the buffer, still one line */
    *strchr(second, '\n') = 0;
    json_t *j = json_loads(second, 0, NULL);
    assert_non_null(j); /* cut, yet still valid JSON */
    assert_int_equal(strlen(json_string_value(json_object_get(j, "msg"))), 2047);
    json_decref(j);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_text_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_json_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_long_message_one_line, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
