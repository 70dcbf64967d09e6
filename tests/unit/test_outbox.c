/* test_outbox: the collector's durable queue in a temporary folder — put a file's items with its
 * taken record in one transaction, take in order, settle (remove, park), counts, batch sequences
 * across a reopen, and map growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    as_outbox_t *ob;
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_outbox.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    int err = 0;
    f->ob = as_outbox_new(f->dir, true, &err);
    assert_non_null(f->ob);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_outbox_destroy(&f->ob);
    as_outbox_destroy(&f->ob); /* safe twice */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void s_hash(uint8_t h[AS_OUTBOX_HASH_LEN], int n)
{
    memset(h, 0, AS_OUTBOX_HASH_LEN);
    h[0] = (uint8_t)n;
}

static void s_put_n(fx_t *f, int file, size_t n, const char *prefix)
{
    char(*text)[32] = calloc(n, sizeof *text);
    as_outbox_blob_t *b = calloc(n, sizeof *b);
    for (size_t i = 0; i < n; i++) {
        snprintf(text[i], sizeof text[i], "%s-%zu", prefix, i);
        b[i] = (as_outbox_blob_t){AS_ITEM_EVENT, (const uint8_t *)text[i], strlen(text[i])};
    }
    uint8_t h[AS_OUTBOX_HASH_LEN];
    s_hash(h, file);
    assert_int_equal(as_outbox_put_file(f->ob, h, "a.csv", b, n), 0);
    free(b);
    free(text);
}

static void test_put_take_in_order(void **state)
{
    fx_t *f = *state;
    s_put_n(f, 1, 5, "ev");
    assert_int_equal(as_outbox_backlog(f->ob), 5);
    as_outbox_item_t *it;
    size_t n;
    assert_int_equal(as_outbox_take(f->ob, 0, 3, &it, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(it[0].kind, AS_ITEM_EVENT);
    assert_memory_equal(it[0].data, "ev-0", 4);
    assert_true(it[0].seq < it[1].seq && it[1].seq < it[2].seq);
    uint64_t last = it[2].seq;
    as_outbox_items_free(it, n);
    assert_int_equal(as_outbox_take(f->ob, last, 100, &it, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(it[1].data, "ev-4", 4);
    as_outbox_items_free(it, n);
}

static void test_file_taken_once(void **state)
{
    fx_t *f = *state;
    uint8_t h[AS_OUTBOX_HASH_LEN];
    s_hash(h, 7);
    char name[64];
    assert_int_equal(as_outbox_file_taken(f->ob, h, name, sizeof name), AS_E_NOTFOUND);
    s_put_n(f, 7, 2, "x");
    assert_int_equal(as_outbox_file_taken(f->ob, h, name, sizeof name), 0);
    assert_string_equal(name, "a.csv");
    as_outbox_blob_t b = {AS_ITEM_EVENT, (const uint8_t *)"y", 1};
    assert_int_equal(as_outbox_put_file(f->ob, h, "b.csv", &b, 1), AS_E_EXISTS);
    assert_int_equal(as_outbox_backlog(f->ob), 2);
    /* a file without valid rows is still recorded */
    s_hash(h, 8);
    assert_int_equal(as_outbox_put_file(f->ob, h, "empty.csv", NULL, 0), 0);
    assert_int_equal(as_outbox_file_taken(f->ob, h, NULL, 0), 0);
}

static int s_rej_cb(void *arg, uint64_t seq, uint8_t kind, uint8_t reject, const char *reason,
                    const uint8_t *data, size_t len)
{
    int *count = arg;
    assert_int_equal(kind, AS_ITEM_EVENT);
    assert_int_equal(reject, 3);
    assert_string_equal(reason, "不能撤回 / not live");
    assert_int_equal(len, 3);
    assert_memory_equal(data, "s-1", 3);
    (*count)++;
    return 0;
}

static void test_settle_remove_and_park(void **state)
{
    fx_t *f = *state;
    s_put_n(f, 1, 3, "s");
    as_outbox_item_t *it;
    size_t n;
    assert_int_equal(as_outbox_take(f->ob, 0, 10, &it, &n), 0);
    as_outbox_settle_t s[3] = {
        {it[0].seq, false, 0, NULL},
        {it[1].seq, true, 3, "不能撤回 / not live"},
        {it[0].seq, false, 0, NULL}, /* settled twice: skipped */
    };
    assert_int_equal(as_outbox_settle(f->ob, s, 3), 0);
    assert_int_equal(as_outbox_backlog(f->ob), 1);
    assert_int_equal(as_outbox_rejected(f->ob), 1);
    int count = 0;
    assert_int_equal(as_outbox_each_rejected(f->ob, s_rej_cb, &count), 0);
    assert_int_equal(count, 1);
    as_outbox_items_free(it, n);
    assert_int_equal(as_outbox_take(f->ob, 0, 10, &it, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(it[0].data, "s-2", 3);
    as_outbox_items_free(it, n);
}

static void test_sequences_survive_reopen(void **state)
{
    fx_t *f = *state;
    s_put_n(f, 1, 2, "r");
    as_outbox_item_t *it;
    size_t n;
    assert_int_equal(as_outbox_take(f->ob, 0, 10, &it, &n), 0);
    uint64_t last_item = it[1].seq;
    as_outbox_settle_t s[2] = {{it[0].seq, false, 0, NULL}, {it[1].seq, false, 0, NULL}};
    assert_int_equal(as_outbox_settle(f->ob, s, 2), 0);
    as_outbox_items_free(it, n);
    uint64_t b1 = as_outbox_next_batch_seq(f->ob, 0);
    uint64_t b2 = as_outbox_next_batch_seq(f->ob, 0);
    assert_true(b1 > 0 && b2 > b1);
    assert_int_equal(as_outbox_next_batch_seq(f->ob, 5000), 5001);

    as_outbox_destroy(&f->ob);
    int err = 0;
    f->ob = as_outbox_new(f->dir, true, &err);
    assert_non_null(f->ob);
    assert_true(as_outbox_next_batch_seq(f->ob, 0) > 5001);
    as_outbox_blob_t b = {AS_ITEM_NIL, (const uint8_t *)"n", 1};
    uint64_t seq = 0;
    assert_int_equal(as_outbox_put(f->ob, &b, &seq), 0);
    assert_true(seq > last_item); /* never reused, even after the outbox emptied */
    assert_int_equal(as_outbox_backlog(f->ob), 1);
}

static void test_map_grows(void **state)
{
    fx_t *f = *state;
    /* 100 MiB in 1 MiB items: more than the first map of 64 MiB */
    size_t len = 1 << 20;
    uint8_t *big = calloc(1, len);
    for (int i = 0; i < 100; i++) {
        as_outbox_blob_t b = {AS_ITEM_EVENT, big, len};
        assert_int_equal(as_outbox_put(f->ob, &b, NULL), 0);
    }
    free(big);
    assert_int_equal(as_outbox_backlog(f->ob), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_take_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_file_taken_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_settle_remove_and_park, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sequences_survive_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_map_grows, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
