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
#include "refusal.h"
#include "spool.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
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

/* ---- hostile spool: links, pipes, a swapped file -------------------------------------------- */

static char s_swap_spool[128], s_swap_target[160];

/* Between the scan (a regular file) and the open: the file becomes a link to one outside. */
static void s_swap_hook(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", s_swap_spool, name);
    unlink(path);
    assert_int_equal(symlink(s_swap_target, path), 0);
}

static void test_swapped_for_a_link_is_never_followed(void **state)
{
    fx_t *f = *state;
    char outside[128];
    snprintf(outside, sizeof outside, "%s/outside", f->dir);
    s_write(outside, "secret.csv", "ok:stolen\n");
    snprintf(s_swap_spool, sizeof s_swap_spool, "%s", f->spool);
    snprintf(s_swap_target, sizeof s_swap_target, "%s/secret.csv", outside);
    s_write(f->spool, "a.csv", "ok:1\n");
    uint64_t before = as_refusal_get(AS_REFUSE_SPOOL_NOT_REGULAR);
    as_spool_before_open_hook = s_swap_hook;
    s_start(f);
    s_run_for(f, 800);
    as_spool_before_open_hook = NULL;
    assert_int_equal(f->taken_calls, 0);
    assert_int_equal(as_outbox_backlog(f->ob), 0); /* nothing read through the link */
    assert_true(as_refusal_get(AS_REFUSE_SPOOL_NOT_REGULAR) > before);
    struct stat st;
    char path[256];
    snprintf(path, sizeof path, "%s/a.csv", f->spool);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode)); /* left where it is */
    assert_true(s_exists(outside, "secret.csv"));
    assert_false(s_exists(f->done, "a.csv"));
    /* a regular file of that name again is taken as any other */
    unlink(path);
    s_write(f->spool, "a.csv", "ok:2\n");
    s_run_until_taken(f, 1, 3000);
    assert_int_equal(as_outbox_backlog(f->ob), 1);
}

static void test_links_and_pipes_refused(void **state)
{
    fx_t *f = *state;
    char outside[128], path[256], target[256];
    snprintf(outside, sizeof outside, "%s/outside", f->dir);
    s_write(outside, "secret.csv", "ok:stolen\n");
    s_write(f->spool, "honest.csv", "ok:1\n");
    snprintf(target, sizeof target, "%s/secret.csv", outside);
    snprintf(path, sizeof path, "%s/link.csv", f->spool);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/pipe.csv", f->spool);
    assert_int_equal(mkfifo(path, 0640), 0);
    uint64_t before = as_refusal_get(AS_REFUSE_SPOOL_NOT_REGULAR);
    s_start(f);
    s_run_until_taken(f, 1, 3000);
    s_run_for(f, 500);
    assert_int_equal(f->taken_calls, 1);
    assert_int_equal(as_outbox_backlog(f->ob), 1);
    assert_true(s_exists(f->done, "honest.csv"));
    assert_int_equal(as_refusal_get(AS_REFUSE_SPOOL_NOT_REGULAR) - before, 2); /* once each */
    assert_true(s_exists(f->spool, "pipe.csv"));
    snprintf(path, sizeof path, "%s/link.csv", f->spool);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_true(s_exists(outside, "secret.csv"));
}

static void test_planted_errors_tmp_link_not_followed(void **state)
{
    fx_t *f = *state;
    char outside[128], path[256], target[256];
    snprintf(outside, sizeof outside, "%s/outside", f->dir);
    s_write(outside, "victim.txt", "precious\n");
    mkdir(f->spool, 0750);
    s_write(f->done, ".keep", "");
    snprintf(target, sizeof target, "%s/victim.txt", outside);
    snprintf(path, sizeof path, "%s/a.csv.errors.csv.tmp", f->done);
    assert_int_equal(symlink(target, path), 0);
    s_write(f->spool, "a.csv", "ok:1\nbad:=cmd|' /C calc'!A0\n");
    s_start(f);
    s_run_until_taken(f, 1, 3000);
    char *v = s_slurp(outside, "victim.txt");
    assert_string_equal(v, "precious\n");
    free(v);
    char *errs = s_slurp(f->done, "a.csv.errors.csv");
    assert_non_null(errs);
    assert_string_equal(errs, "\xEF\xBB\xBFrow,column,value,reason_zh,reason_en\r\n"
                              "2,funds_yuan,bad:=cmd|' /C calc'!A0,\"金额无效, \"\"负数\"\"\","
                              "invalid amount\r\n");
    free(errs);
    assert_false(s_exists(f->done, "a.csv.errors.csv.tmp"));
}

static void test_done_link_refused_at_start(void **state)
{
    fx_t *f = *state;
    char outside[128];
    snprintf(outside, sizeof outside, "%s/outside", f->dir);
    s_write(outside, ".keep", "");
    s_write(f->spool, "a.csv", "ok:1\n");
    assert_int_equal(symlink(outside, f->done), 0);
    as_spool_opts_t o = {.scan_ms = 100, .stable_ms = 150};
    int err = 0;
    assert_null(as_spool_new(&f->loop, f->spool, f->ob, s_reader, f, &o, &err));
    assert_true(err == -ELOOP || err == -ENOTDIR);
    assert_true(s_exists(f->spool, "a.csv"));
    assert_false(s_exists(outside, "a.csv"));
    /* the spool folder itself given as a link is refused the same way */
    char alias[128];
    snprintf(alias, sizeof alias, "%s/alias", f->dir);
    assert_int_equal(symlink(f->spool, alias), 0);
    assert_null(as_spool_new(&f->loop, alias, f->ob, s_reader, f, &o, &err));
    assert_true(err == -ELOOP || err == -ENOTDIR);
}

static void test_done_swapped_while_running(void **state)
{
    fx_t *f = *state;
    char outside[128], old[160];
    snprintf(outside, sizeof outside, "%s/outside", f->dir);
    s_write(outside, ".keep", "");
    s_start(f);
    s_run_for(f, 200);
    snprintf(old, sizeof old, "%s/done.old", f->spool);
    assert_int_equal(rename(f->done, old), 0);
    assert_int_equal(symlink(outside, f->done), 0);
    uint64_t before = as_refusal_get(AS_REFUSE_SPOOL_NOT_REGULAR);
    s_write(f->spool, "b.csv", "ok:1\nbad:x\n");
    s_run_until_taken(f, 1, 3000);
    assert_int_equal(as_outbox_backlog(f->ob), 1);
    assert_true(s_exists(old, "b.csv")); /* the folder opened at the start */
    assert_true(s_exists(old, "b.csv.errors.csv"));
    assert_false(s_exists(outside, "b.csv"));
    assert_false(s_exists(outside, "b.csv.errors.csv"));
    assert_true(as_refusal_get(AS_REFUSE_SPOOL_NOT_REGULAR) > before);
    /* the aggregator's rejections are appended there too, never through a link */
    assert_int_equal(as_spool_append_error(f->sp, "b.csv", 1, "@SUM(1+1)", "中", "en"), 0);
    char *errs = s_slurp(old, "b.csv.errors.csv");
    assert_non_null(strstr(errs, "1,,\"'@SUM(1+1)\",中,en\r\n"));
    free(errs);
    assert_false(s_exists(outside, "b.csv.errors.csv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_takes_complete_files_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_growing_file_waited_for, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_same_content_twice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_commit_and_move, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file_taken_with_error, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_swapped_for_a_link_is_never_followed, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_links_and_pipes_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_planted_errors_tmp_link_not_followed, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_done_link_refused_at_start, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_done_swapped_while_running, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
