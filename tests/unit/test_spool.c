/* test_spool: the spool watcher with a simple line reader ("ok:..." a valid row, "bad:..." a
 * rejected one, "BROKEN" an unreadable file) in a temporary folder — complete files taken once,
 * ignored names, a growing file waited for, the same content twice, a crash between commit and
 * move, an unreadable file, and the errors file's form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "outbox.h"
#include "spool.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
    char dir[64], spool[96], done[128];
    uv_loop_t loop;
    as_outbox_t *ob;
    as_spool_t *sp;
    int taken_calls;
} fx_t;

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int s_reader(void *arg, int fd, const char *name, as_spool_result_t *r)
{
    FILE *f = fdopen(dup(fd), "r");
    if (!f)
        return -2;
    char line[256];
    uint32_t row = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        row++;
        if (!strcmp(line, "BROKEN"))
            rc = AS_E_PARSE;
        else if (!strncmp(line, "ok:", 3))
            as_spool_result_add(r, (const uint8_t *)line + 3, strlen(line + 3));
        else
            as_spool_result_add_error(r, row, "funds_yuan", line, "金额无效, \"负数\"",
                                      "invalid amount");
    }
    fclose(f);
    return rc;
}

static void s_taken(void *arg, const char *name, size_t events, size_t errors)
{
    ((fx_t *)arg)->taken_calls++;
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_spool.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->spool, sizeof f->spool, "%s/spool", f->dir);
    snprintf(f->done, sizeof f->done, "%s/done", f->spool);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/outbox", f->dir);
    int err = 0;
    f->ob = as_outbox_new(path, true, &err);
    assert_non_null(f->ob);
    *state = f;
    return 0;
}

static void s_start(fx_t *f)
{
    as_spool_opts_t o = {.scan_ms = 100, .stable_ms = 150};
    int err = 0;
    f->sp = as_spool_new(&f->loop, f->spool, f->ob, s_reader, f, &o, &err);
    assert_non_null(f->sp);
    as_spool_on_taken(f->sp, s_taken, f);
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_spool_destroy(&f->sp);
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

static void s_write(const char *dir, const char *name, const char *text)
{
    char path[256];
    mkdir(dir, 0750);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static bool s_exists(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Runs the loop until n files were taken, or ms passed. */
static void s_run_until_taken(fx_t *f, int n, int ms)
{
    uint64_t deadline = s_ms() + (uint64_t)ms;
    while (f->taken_calls < n && s_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
}

static void s_run_for(fx_t *f, int ms)
{
    uint64_t deadline = s_ms() + (uint64_t)ms;
    while (s_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
}

static char *s_slurp(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 65536);
    fread(buf, 1, 65535, fp);
    fclose(fp);
    return buf;
}

static void test_takes_complete_files_only(void **state)
{
    fx_t *f = *state;
    s_write(f->spool, "a.csv", "ok:1\nok:2\nbad:-3\nok:4\n");
    s_write(f->spool, "b.csv.tmp", "ok:x\n");
    s_write(f->spool, "~$a.csv", "ok:x\n");
    s_write(f->spool, ".hidden", "ok:x\n");
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", f->spool);
    s_write(sub, "c.csv", "ok:x\n");
    s_start(f);
    s_run_until_taken(f, 1, 3000);
    s_run_for(f, 400);
    assert_int_equal(f->taken_calls, 1);
    assert_int_equal(as_outbox_backlog(f->ob), 3);
    assert_true(s_exists(f->done, "a.csv"));
    assert_false(s_exists(f->spool, "a.csv"));
    assert_true(s_exists(f->spool, "b.csv.tmp"));
    assert_true(s_exists(f->spool, "~$a.csv"));
    assert_true(s_exists(f->spool, ".hidden"));
    assert_true(s_exists(sub, "c.csv"));
    char *errs = s_slurp(f->done, "a.csv.errors.csv");
    assert_non_null(errs);
    assert_string_equal(errs, "\xEF\xBB\xBFrow,column,value,reason_zh,reason_en\r\n"
                              "3,funds_yuan,bad:-3,\"金额无效, \"\"负数\"\"\",invalid amount\r\n");
    free(errs);
    /* a file dropped while running, then renamed into place */
    s_write(f->spool, "d.csv.tmp", "ok:5\n");
    char from[256], to[256];
    snprintf(from, sizeof from, "%s/d.csv.tmp", f->spool);
    snprintf(to, sizeof to, "%s/d.csv", f->spool);
    assert_int_equal(rename(from, to), 0);
    s_run_until_taken(f, 2, 3000);
    assert_int_equal(as_outbox_backlog(f->ob), 4);
    assert_false(s_exists(f->done, "d.csv.errors.csv"));
}

static void test_growing_file_waited_for(void **state)
{
    fx_t *f = *state;
    s_start(f);
    char path[256];
    snprintf(path, sizeof path, "%s/slow.csv", f->spool);
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < 10; i++) {
        fprintf(fp, "ok:%d\n", i);
        fflush(fp);
        s_run_for(f, 60); /* less than stable_ms between writes */
    }
    fclose(fp);
    assert_int_equal(f->taken_calls, 0);
    s_run_until_taken(f, 1, 3000);
    assert_int_equal(as_outbox_backlog(f->ob), 10);
}

static void test_same_content_twice(void **state)
{
    fx_t *f = *state;
    s_start(f);
    s_write(f->spool, "x.csv", "ok:1\nok:2\n");
    s_run_until_taken(f, 1, 3000);
    s_write(f->spool, "x.csv", "ok:1\nok:2\n"); /* dropped again, same name */
    s_run_until_taken(f, 2, 3000);
    assert_int_equal(f->taken_calls, 2);
    assert_int_equal(as_outbox_backlog(f->ob), 2);
    assert_true(s_exists(f->done, "x.csv"));
    assert_true(s_exists(f->done, "x (2).csv")); /* nothing the office dropped is lost */
}

static void test_crash_between_commit_and_move(void **state)
{
    fx_t *f = *state;
    const char *text = "ok:1\nok:2\nok:3\n";
    s_write(f->spool, "y.csv", text);
    /* the previous run committed the file, then died before moving it */
    uint8_t hash[AS_OUTBOX_HASH_LEN];
    crypto_generichash(hash, sizeof hash, (const uint8_t *)text, strlen(text), NULL, 0);
    as_outbox_blob_t b[3] = {{AS_ITEM_EVENT, (const uint8_t *)"1", 1},
                             {AS_ITEM_EVENT, (const uint8_t *)"2", 1},
                             {AS_ITEM_EVENT, (const uint8_t *)"3", 1}};
    assert_int_equal(as_outbox_put_file(f->ob, hash, "y.csv", b, 3), 0);
    s_start(f);
    s_run_until_taken(f, 1, 3000);
    assert_int_equal(as_outbox_backlog(f->ob), 3);
    assert_true(s_exists(f->done, "y.csv"));
    assert_false(s_exists(f->spool, "y.csv"));
}

static void test_unreadable_file_taken_with_error(void **state)
{
    fx_t *f = *state;
    s_write(f->spool, "broken.csv", "ok:1\nBROKEN\n");
    s_start(f);
    s_run_until_taken(f, 1, 3000);
    assert_int_equal(as_outbox_backlog(f->ob), 0);
    assert_true(s_exists(f->done, "broken.csv"));
    char *errs = s_slurp(f->done, "broken.csv.errors.csv");
    assert_non_null(errs);
    assert_non_null(strstr(errs, "0,,broken.csv,"));
    free(errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_takes_complete_files_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_growing_file_waited_for, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_same_content_twice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_commit_and_move, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file_taken_with_error, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
