/* test_archive: the closed years in a real ledger's LMDB in a temporary folder — a year locked
 * once with its final files kept byte for byte (binary, empty, nested names), the lock's moment,
 * the generation counter, a second lock refused, an aborted lock leaving nothing, amendments by
 * year in sequence order (big-endian keys), and everything still there after reopening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg_fixture.h"
#include "archive.h"

typedef struct {
    af_t *a;
    as_archive_t *ar;
} fx_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->a = af_open();
    int err = 0;
    f->ar = as_archive_new(as_ledger_env(f->a->l), &err);
    assert_non_null(f->ar);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_archive_destroy(&f->ar);
    as_archive_destroy(&f->ar); /* safe twice */
    assert_int_equal(af_close(f->a), 0);
    free(f);
    return 0;
}

static bool s_locked(fx_t *f, uint32_t year)
{
    bool locked = true;
    assert_int_equal(as_archive_locked(f->ar, NULL, year, &locked), 0);
    return locked;
}

static const uint8_t s_bin[] = {0x00, 0xff, 0x00, 'x', 0x0a, 0x00};

static void s_files(as_archive_file_t fl[4])
{
    memset(fl, 0, 4 * sizeof *fl);
    snprintf(fl[0].name, sizeof fl[0].name, "report.json");
    fl[0].data = (uint8_t *)"{\"year\":2025}";
    fl[0].len = 13;
    snprintf(fl[1].name, sizeof fl[1].name, "units/3/summary.csv");
    fl[1].data = (uint8_t *)"\xef\xbb\xbf"
                            "单位,活动\n";
    fl[1].len = strlen((const char *)fl[1].data);
    snprintf(fl[2].name, sizeof fl[2].name, "empty.csv");
    fl[2].data = (uint8_t *)"";
    fl[2].len = 0;
    snprintf(fl[3].name, sizeof fl[3].name, "bin.dat");
    fl[3].data = (uint8_t *)s_bin;
    fl[3].len = sizeof s_bin;
}

/* Checks that the kept files are exactly fl (in name order). */
static void s_check_files(fx_t *f, uint32_t year, const as_archive_file_t fl[4], uint64_t ms)
{
    as_archive_file_t *got = NULL;
    size_t n = 0;
    uint64_t when = 0;
    assert_int_equal(as_archive_files(f->ar, year, &got, &n, &when), 0);
    assert_int_equal(when, ms);
    assert_int_equal(n, 4);
    const int order[4] = {3, 2, 0, 1}; /* bin.dat, empty.csv, report.json, units/... */
    for (size_t i = 0; i < 4; i++) {
        const as_archive_file_t *w = &fl[order[i]];
        assert_string_equal(got[i].name, w->name);
        assert_int_equal(got[i].len, w->len);
        if (w->len)
            assert_memory_equal(got[i].data, w->data, w->len);
    }
    as_archive_files_free(got, n);
    /* locked_ms may be NULL */
    assert_int_equal(as_archive_files(f->ar, year, &got, &n, NULL), 0);
    as_archive_files_free(got, n);
}

static void test_lock_once(void **state)
{
    fx_t *f = *state;
    assert_false(s_locked(f, 2025));
    assert_int_equal(as_archive_generation(f->ar), 0);
    as_archive_file_t *got = (as_archive_file_t *)1;
    size_t n = 99;
    assert_int_equal(as_archive_files(f->ar, 2025, &got, &n, NULL), AS_E_NOTFOUND);
    assert_null(got);
    assert_int_equal(n, 0);

    as_archive_file_t fl[4];
    s_files(fl);
    const uint64_t ms = 0x0123456789abcdefull;
    MDB_env *env = as_ledger_env(f->a->l);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2025, fl, 4, ms), 0);
    bool locked = false;
    assert_int_equal(as_archive_locked(f->ar, txn, 2025, &locked), 0);
    assert_true(locked); /* inside the transaction that locked it */
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(as_archive_generation(f->ar), 1);
    assert_true(s_locked(f, 2025));
    assert_false(s_locked(f, 2024));
    assert_false(s_locked(f, 2026));
    s_check_files(f, 2025, fl, ms);
    assert_int_equal(as_archive_files(f->ar, 2026, &got, &n, NULL), AS_E_NOTFOUND);

    /* a second lock is refused and changes nothing */
    as_archive_file_t other = {.name = "report.json", .data = (uint8_t *)"{}", .len = 2};
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2025, &other, 1, 1), AS_E_LOCKED);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(as_archive_generation(f->ar), 1);
    s_check_files(f, 2025, fl, ms);

    /* another year locks apart, with no file at all */
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2026, NULL, 0, 5), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_true(s_locked(f, 2026));
    uint64_t when = 0;
    assert_int_equal(as_archive_files(f->ar, 2026, &got, &n, &when), 0);
    assert_int_equal(n, 0);
    assert_int_equal(when, 5);
    as_archive_files_free(got, n);
    as_archive_files_free(NULL, 0);
    s_check_files(f, 2025, fl, ms); /* 2026's lock record does not leak into 2025's files */
}

static void test_aborted_lock(void **state)
{
    fx_t *f = *state;
    as_archive_file_t fl[4];
    s_files(fl);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->a->l), NULL, 0, &txn), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2025, fl, 4, 7), 0);
    mdb_txn_abort(txn);
    assert_false(s_locked(f, 2025));
    as_archive_file_t *got;
    size_t n;
    assert_int_equal(as_archive_files(f->ar, 2025, &got, &n, NULL), AS_E_NOTFOUND);
    /* the generation may move (it only tells caches to look again), the lock may not */
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->a->l), NULL, 0, &txn), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2025, fl, 4, 8), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    s_check_files(f, 2025, fl, 8);
}

static as_amendment_t s_am(uint64_t seq, uint8_t kind, int64_t funds)
{
    as_amendment_t am;
    memset(&am, 0, sizeof am);
    am.seq = seq;
    am.kind = kind;
    am.county = 360730;
    am.date = 20251230;
    snprintf(am.org_code, sizeof am.org_code, "51360730MJB0000007");
    snprintf(am.org_name, sizeof am.org_name, "组织07");
    snprintf(am.event_id, sizeof am.event_id, "E%llu", (unsigned long long)seq);
    if (kind != AS_LOG_NEW)
        snprintf(am.target_id, sizeof am.target_id, "T%llu", (unsigned long long)seq);
    am.activities = kind == AS_LOG_RETRACTION ? -1 : kind == AS_LOG_NEW ? 1 : 0;
    am.funds_fen = funds;
    am.income_fen = -funds;
    return am;
}

static void test_amendments(void **state)
{
    fx_t *f = *state;
    as_amendment_t *out = (as_amendment_t *)1;
    size_t n = 99;
    assert_int_equal(as_archive_amendments(f->ar, 2025, &out, &n), 0);
    assert_null(out);
    assert_int_equal(n, 0);

    const uint64_t seqs[] = {9, 3, 300, 256, 1ull << 40};
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->a->l), NULL, 0, &txn), 0);
    for (size_t i = 0; i < 5; i++) {
        as_amendment_t am = s_am(seqs[i], (uint8_t)(i % 3), (int64_t)i * 100 - 150);
        assert_int_equal(as_archive_put_amendment(f->ar, txn, 2025, &am), 0);
    }
    as_amendment_t y26 = s_am(4, AS_LOG_NEW, 1);
    assert_int_equal(as_archive_put_amendment(f->ar, txn, 2026, &y26), 0);
    as_amendment_t y24 = s_am(5, AS_LOG_NEW, 1);
    assert_int_equal(as_archive_put_amendment(f->ar, txn, 2024, &y24), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    assert_int_equal(as_archive_amendments(f->ar, 2025, &out, &n), 0);
    assert_int_equal(n, 5);
    const uint64_t want[] = {3, 9, 256, 300, 1ull << 40};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(out[i].seq, want[i]);
    /* 300 was the third put: kind 2 (retraction), funds 50 */
    assert_int_equal(out[3].kind, AS_LOG_RETRACTION);
    assert_int_equal(out[3].funds_fen, 50);
    assert_int_equal(out[3].income_fen, -50);
    assert_int_equal(out[3].activities, -1);
    assert_string_equal(out[3].target_id, "T300");
    assert_string_equal(out[3].org_name, "组织07");
    assert_int_equal(out[0].kind, AS_LOG_CORRECTION); /* seq 3 */
    assert_int_equal(out[0].funds_fen, -50);
    free(out);

    assert_int_equal(as_archive_amendments(f->ar, 2026, &out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].seq, 4);
    free(out);
    assert_int_equal(as_archive_amendments(f->ar, 2027, &out, &n), 0);
    assert_int_equal(n, 0);
    free(out);

    /* the same sequence again replaces its record */
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->a->l), NULL, 0, &txn), 0);
    y26.funds_fen = 777;
    assert_int_equal(as_archive_put_amendment(f->ar, txn, 2026, &y26), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(as_archive_amendments(f->ar, 2026, &out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].funds_fen, 777);
    free(out);
}

static void test_survives_reopen(void **state)
{
    fx_t *f = *state;
    as_archive_file_t fl[4];
    s_files(fl);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->a->l), NULL, 0, &txn), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2025, fl, 4, 42), 0);
    as_amendment_t am = s_am(11, AS_LOG_NEW, 5);
    assert_int_equal(as_archive_put_amendment(f->ar, txn, 2025, &am), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    as_archive_destroy(&f->ar);
    as_ledger_destroy(&f->a->l);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/ledger", f->a->dir);
    as_ledger_opts_t lo = {.no_sync = true};
    int err = 0;
    f->a->l = as_ledger_new(sub, &lo, &err);
    assert_non_null(f->a->l);
    f->ar = as_archive_new(as_ledger_env(f->a->l), &err);
    assert_non_null(f->ar);
    assert_true(s_locked(f, 2025));
    s_check_files(f, 2025, fl, 42);
    as_amendment_t *out;
    size_t n;
    assert_int_equal(as_archive_amendments(f->ar, 2025, &out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].seq, 11);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lock_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_aborted_lock, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_amendments, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
