/* test_review: each kind of flag raised by exactly the events that should raise it, kept in the
 * event log, counted live per year, flag and county (retractions and corrections move counts). */
#include "yearend_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define ORG_A "51360000MJB00000AA" /* registered, may fundraise online */
#define ORG_B "51360000MJB00000BB" /* registered, no qualification */
#define ORG_C "91360000MJB00000CC" /* not in the registry */

static const char registry[] =
    "统一社会信用代码,组织名称,类型,级别,业务主管单位,公开募捐资格\n" ORG_A
    ",甲,基金会,省级,江西省民政厅,是\n" ORG_B ",乙,社会团体,市级,赣州市民政局,否\n";

static int64_t s_count(yf_t *f, uint32_t year, uint32_t flag, uint32_t county)
{
    as_flag_count_t *rows;
    size_t n;
    assert_int_equal(as_review_flag_counts(f->rv, year, &rows, &n), 0);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].flag == flag && (county == 0 || rows[i].county == county))
            sum += rows[i].count;
    free(rows);
    return sum;
}

static void test_registry_flags(void **state)
{
    yf_t *f = yf_open(registry, NULL);
    as_event_t ev[6] = {
        yf_event(f, 360730, ORG_A, 20250301, 100, 1), yf_event(f, 360730, ORG_A, 20250302, 100, 1),
        yf_event(f, 360730, ORG_B, 20250303, 100, 1), yf_event(f, 360731, ORG_B, 20250304, 100, 1),
        yf_event(f, 360731, ORG_C, 20250305, 100, 1), yf_event(f, 360731, ORG_C, 20250306, 100, 1),
    };
    ev[1].online_fundraising = true; /* qualified: nothing */
    ev[3].online_fundraising = true; /* registered without qualification */
    ev[5].online_fundraising = true; /* unregistered and online */
    yf_apply(f, ev, 6);
    const uint32_t want[6] = {0,
                              0,
                              0,
                              AS_FLAG_ONLINE_UNQUALIFIED,
                              AS_FLAG_UNREGISTERED,
                              AS_FLAG_UNREGISTERED | AS_FLAG_ONLINE_UNQUALIFIED};
    uint32_t *logged = yf_logged_flags(f);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ev[i].flags, want[i]);
        assert_int_equal(logged[i + 1], want[i]);
    }
    free(logged);
    assert_int_equal(s_count(f, 2025, AS_FLAG_UNREGISTERED, 360731), 2);
    assert_int_equal(s_count(f, 2025, AS_FLAG_UNREGISTERED, 360730), 0);
    assert_int_equal(s_count(f, 2025, AS_FLAG_ONLINE_UNQUALIFIED, 0), 2);
    assert_int_equal(s_count(f, 2024, AS_FLAG_UNREGISTERED, 0), 0);

    /* retracting a flagged event and correcting another away from online fundraising */
    as_event_t ch[2] = {yf_change(f, &ev[4], true), yf_change(f, &ev[3], false)};
    ch[1].online_fundraising = false;
    yf_apply(f, ch, 2);
    assert_int_equal(ch[1].flags, 0);
    assert_int_equal(s_count(f, 2025, AS_FLAG_UNREGISTERED, 0), 1);
    assert_int_equal(s_count(f, 2025, AS_FLAG_ONLINE_UNQUALIFIED, 0), 1);
    yf_close(f);
}

static void test_no_registry_no_judgement(void **state)
{
    yf_t *f = yf_open(NULL, NULL);
    as_event_t ev = yf_event(f, 360730, ORG_C, 20250301, 100, 1);
    ev.online_fundraising = true;
    yf_apply(f, &ev, 1);
    assert_int_equal(ev.flags, 0);
    yf_close(f);
}

static void test_cross_county(void **state)
{
    yf_t *f = yf_open(registry, NULL);
    as_event_t ev[7] = {
        yf_event(f, 360730, ORG_A, 20250310, 5000, 20), /* first report: nothing */
        yf_event(f, 360730, ORG_A, 20250310, 5000, 20), /* same county again: not this rule */
        yf_event(f, 360731, ORG_A, 20250310, 5000, 20), /* same activity, other county: flag */
        yf_event(f, 360731, ORG_A, 20250310, 7000, 20), /* other amounts: nothing */
        yf_event(f, 360731, ORG_A, 20250311, 5000, 20), /* other date: nothing */
        yf_event(f, 360732, ORG_B, 20250310, 5000, 20), /* other organisation: nothing */
        yf_event(f, 360732, ORG_A, 20250310, 0, 0),     /* nothing to compare: nothing */
    };
    yf_apply(f, ev, 3);
    yf_apply(f, ev + 3, 4);
    for (int i = 0; i < 7; i++)
        assert_int_equal(ev[i].flags, i == 2 ? AS_FLAG_DUPLICATE_ACROSS_COUNTIES : 0);
    assert_int_equal(s_count(f, 2025, AS_FLAG_DUPLICATE_ACROSS_COUNTIES, 360731), 1);

    /* once the first report is retracted, the same activity again from 360732 is not flagged */
    as_event_t r1 = yf_change(f, &ev[0], true), r2 = yf_change(f, &ev[1], true);
    as_event_t later = yf_event(f, 360730, ORG_A, 20250310, 9000, 3);
    yf_apply(f, &r1, 1);
    yf_apply(f, &r2, 1);
    yf_apply(f, &later, 1);
    as_event_t again = yf_event(f, 360732, ORG_A, 20250310, 5000, 20);
    yf_apply(f, &again, 1); /* 360731's live event still matches */
    assert_int_equal(again.flags, AS_FLAG_DUPLICATE_ACROSS_COUNTIES);
    as_event_t r3 = yf_change(f, &ev[2], true), r4 = yf_change(f, &again, true);
    yf_apply(f, &r3, 1);
    yf_apply(f, &r4, 1);
    as_event_t third = yf_event(f, 360733, ORG_A, 20250310, 5000, 20);
    yf_apply(f, &third, 1);
    assert_int_equal(third.flags, 0);
    assert_int_equal(s_count(f, 2025, AS_FLAG_DUPLICATE_ACROSS_COUNTIES, 0), 0);
    yf_close(f);
}

/* The rule looks at most two records a side however many events one county reported of the
 * same organisation and day; a matching village counts as the same activity whatever the amounts.
 */
static void test_cross_county_village_and_crowd(void **state)
{
    yf_t *f = yf_open(registry, NULL);
    enum { N = 3000 };
    as_event_t *crowd = calloc(N, sizeof *crowd);
    assert_non_null(crowd);
    for (int i = 0; i < N; i++) {
        crowd[i] = yf_event(f, 360730, ORG_A, 20250320, 100 + i, 1 + i % 7);
        if (i == N / 2)
            snprintf(crowd[i].village, sizeof crowd[i].village, "360730100201");
    }
    yf_apply(f, crowd, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(crowd[i].flags, 0);
    as_event_t ev[4] = {
        yf_event(f, 360731, ORG_A, 20250320, 99, 1),      /* no match */
        yf_event(f, 360731, ORG_A, 20250320, 100 + N - 1, /* the last one's amounts */
                 1 + (N - 1) % 7),
        yf_event(f, 360732, ORG_A, 20250320, 5, 5), /* the village */
        yf_event(f, 360733, ORG_A, 20250320, 8, 8), /* other village: no */
    };
    snprintf(ev[2].village, sizeof ev[2].village, "360730100201");
    snprintf(ev[3].village, sizeof ev[3].village, "360730100202");
    yf_apply(f, ev, 4);
    assert_int_equal(ev[0].flags, 0);
    assert_int_equal(ev[1].flags, AS_FLAG_DUPLICATE_ACROSS_COUNTIES);
    assert_int_equal(ev[2].flags, AS_FLAG_DUPLICATE_ACROSS_COUNTIES);
    assert_int_equal(ev[3].flags, 0);
    /* the crowd's village event retracted: the village no longer matches */
    as_event_t r = yf_change(f, &crowd[N / 2], true);
    yf_apply(f, &r, 1);
    as_event_t again = yf_event(f, 360734, ORG_A, 20250320, 9, 9);
    snprintf(again.village, sizeof again.village, "360730100201");
    yf_apply(f, &again, 1);
    assert_int_equal(again.flags, AS_FLAG_DUPLICATE_ACROSS_COUNTIES); /* 360732's still does */
    free(crowd);
    yf_close(f);
}

/* Opens the review (which converts an older cross-county index) and the report again, as the
 * fixture had them, after a test closed them to lay out an older ledger. */
static void s_reopen_review(yf_t *f)
{
    int err;
    f->rv = as_review_new(f->l, f->reg, f->ar, NULL, &err);
    assert_non_null(f->rv);
    as_report_opts_t ro;
    as_report_opts_default(&ro);
    ro.out_dir = f->dir;
    f->rep = as_report_new(f->l, f->reg, f->ar, f->rv, &ro, &err);
    assert_non_null(f->rep);
}

/* Writes one record of an older index layout: key date/org at the given offsets, county3 seq8;
 * value village12 funds8 goods8 benef8 in native order. */
static void s_old_record(MDB_txn *txn, MDB_dbi dbi, size_t date_at, size_t org_at,
                         const as_event_t *ev, uint64_t seq)
{
    uint8_t k[33] = {0}, v[36] = {0};
    for (int i = 0; i < 4; i++)
        k[date_at + i] = (uint8_t)(ev->date >> (24 - 8 * i));
    memcpy(k + org_at, ev->org_code, 18);
    for (int i = 0; i < 3; i++)
        k[22 + i] = (uint8_t)(ev->county >> (16 - 8 * i));
    for (int i = 0; i < 8; i++)
        k[25 + i] = (uint8_t)(seq >> (56 - 8 * i));
    memcpy(v, ev->village, strnlen(ev->village, 12));
    memcpy(v + 12, &ev->funds_fen, 8);
    memcpy(v + 20, &ev->goods_fen, 8);
    memcpy(v + 28, &ev->beneficiaries, 8);
    MDB_val key = {33, k}, val = {36, v};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
}

/* Ledgers from before "xday": one record per event in "xdate" (date4 org18 ...) or, older,
 * "xcounty" (org18 date4 ...); both are converted when the review opens, and still match. */
static void test_cross_county_index_converted(void **state)
{
    yf_t *f = yf_open(registry, NULL);
    as_report_destroy(&f->rep);
    as_review_destroy(&f->rv);

    as_event_t by_village = yf_event(f, 360730, ORG_A, 20250310, 0, 0);
    snprintf(by_village.village, sizeof by_village.village, "360730100201");
    as_event_t by_amounts = yf_event(f, 360730, ORG_B, 20250311, 5000, 20);
    MDB_env *env = as_ledger_env(f->l);
    MDB_txn *txn;
    MDB_dbi xd, xc, xm;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "xdate", MDB_CREATE, &xd), 0);
    assert_int_equal(mdb_dbi_open(txn, "xcounty", MDB_CREATE, &xc), 0);
    s_old_record(txn, xd, 0, 4, &by_village, 1);
    s_old_record(txn, xc, 18, 0, &by_amounts, 2);
    assert_int_equal(mdb_dbi_open(txn, "xday", 0, &xm), 0);
    assert_int_equal(mdb_drop(txn, xm, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    s_reopen_review(f);

    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "xcounty", 0, &xc), MDB_NOTFOUND);
    assert_int_equal(mdb_dbi_open(txn, "xdate", 0, &xd), MDB_NOTFOUND);
    mdb_txn_abort(txn);
    as_event_t ev[4] = {
        yf_event(f, 360731, ORG_A, 20250310, 7, 7),     /* the village */
        yf_event(f, 360731, ORG_B, 20250311, 5000, 20), /* the amounts */
        yf_event(f, 360731, ORG_B, 20250312, 5000, 20), /* other date */
        yf_event(f, 360731, ORG_A, 20250310, 7, 7),     /* no village: no */
    };
    snprintf(ev[0].village, sizeof ev[0].village, "360730100201");
    yf_apply(f, ev, 4);
    assert_int_equal(ev[0].flags, AS_FLAG_DUPLICATE_ACROSS_COUNTIES);
    assert_int_equal(ev[1].flags, AS_FLAG_DUPLICATE_ACROSS_COUNTIES);
    assert_int_equal(ev[2].flags, 0);
    assert_int_equal(ev[3].flags, 0);
    yf_close(f);
}

/* Entries of a sub-database, -1 when it does not exist. */
static long s_entries(MDB_env *env, const char *name)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    long n = -1;
    if (mdb_dbi_open(txn, name, 0, &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0)
        n = (long)st.ms_entries;
    mdb_txn_abort(txn);
    return n;
}

/* Ledgers with "xmatch" (tag1 date4 h8 county3 seq8: the tag first, so an event's two records lay
 * in two halves of the tree) are rebuilt into "xday" from the event log when the review opens: a
 * record per kind the event has, whatever old records named it, none for a sequence the log does
 * not hold; and the converted events still match. */
static void test_cross_county_index_from_xmatch(void **state)
{
    yf_t *f = yf_open(registry, NULL);
    as_event_t old[3] = {
        yf_event(f, 360730, ORG_A, 20250310, 0, 0),     /* village only: seq 1 */
        yf_event(f, 360730, ORG_B, 20250311, 5000, 20), /* amounts only: seq 2 */
        yf_event(f, 360730, ORG_A, 20250312, 100, 3),   /* both: seq 3 */
    };
    snprintf(old[0].village, sizeof old[0].village, "360730100201");
    snprintf(old[2].village, sizeof old[2].village, "360730100202");
    yf_apply(f, old, 3);
    MDB_env *env = as_ledger_env(f->l);
    assert_int_equal(s_entries(env, "xday"), 4);
    as_report_destroy(&f->rep);
    as_review_destroy(&f->rv);

    MDB_txn *txn;
    MDB_dbi xd, xm;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "xday", 0, &xd), 0);
    assert_int_equal(mdb_drop(txn, xd, 1), 0);
    assert_int_equal(mdb_dbi_open(txn, "xmatch", MDB_CREATE, &xm), 0);
    const struct {
        char tag;
        uint64_t seq;
    } recs[] = {{'V', 1}, {'M', 2}, {'V', 3}, {'M', 3}, {'V', 99}};
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        uint8_t k[24] = {(uint8_t)recs[i].tag, 0x01, 0x34, 0x18, 0x3e}; /* 20250110: any date */
        k[13] = (uint8_t)i;                                             /* any hash */
        for (int b = 0; b < 8; b++)
            k[16 + b] = (uint8_t)(recs[i].seq >> (56 - 8 * b));
        MDB_val key = {24, k}, val = {0, NULL};
        assert_int_equal(mdb_put(txn, xm, &key, &val, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);

    s_reopen_review(f);
    assert_int_equal(s_entries(env, "xmatch"), -1);
    assert_int_equal(s_entries(env, "xday"), 4);
    /* seq 3's two records are neighbours in the tree (on one page, whatever else the day holds) */
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t seqs[4];
    int n = 0;
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "xday", 0, &xd), 0);
    assert_int_equal(mdb_cursor_open(txn, xd, &c), 0);
    while (n < 4 && mdb_cursor_get(c, &k, &v, n ? MDB_NEXT : MDB_FIRST) == 0) {
        assert_int_equal(k.mv_size, 28);
        seqs[n] = 0;
        for (int b = 0; b < 8; b++)
            seqs[n] = seqs[n] << 8 | ((const uint8_t *)k.mv_data)[20 + b];
        n++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    assert_int_equal(n, 4);
    assert_int_equal(seqs[0], 1);
    assert_int_equal(seqs[1], 2);
    assert_int_equal(seqs[2], 3);
    assert_int_equal(seqs[3], 3);

    as_event_t ev[5] = {
        yf_event(f, 360731, ORG_A, 20250310, 7, 7),     /* seq 1's village */
        yf_event(f, 360731, ORG_B, 20250311, 5000, 20), /* seq 2's amounts */
        yf_event(f, 360731, ORG_A, 20250312, 100, 3),   /* seq 3's amounts */
        yf_event(f, 360732, ORG_A, 20250312, 1, 1),     /* seq 3's village */
        yf_event(f, 360731, ORG_B, 20250312, 5000, 20), /* other date: no */
    };
    snprintf(ev[0].village, sizeof ev[0].village, "360730100201");
    snprintf(ev[3].village, sizeof ev[3].village, "360730100202");
    yf_apply(f, ev, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ev[i].flags, i < 4 ? AS_FLAG_DUPLICATE_ACROSS_COUNTIES : 0);
    yf_close(f);
}

static void test_outliers(void **state)
{
    as_outlier_rule_t rule = {.k = 6, .window = 100, .min_samples = 20};
    yf_t *f = yf_open(registry, &rule);
    as_event_t ev[64];
    /* warming up: 19 events in county 360730 (education), nothing judged yet */
    for (int i = 0; i < 19; i++)
        ev[i] = yf_event(f, 360730, ORG_A, 20250401, 100000 + i * 100, 10 + i % 3);
    yf_apply(f, ev, 19);
    as_event_t big = yf_event(f, 360730, ORG_A, 20250402, 90000000, 10);
    yf_apply(f, &big, 1); /* the windows hold 19 < 20: not judged */
    assert_int_equal(big.flags, 0);
    for (int i = 0; i < 19; i++)
        assert_int_equal(ev[i].flags, 0);
    /* 20 more ordinary ones, none flagged */
    for (int i = 0; i < 20; i++)
        ev[i] = yf_event(f, 360730, ORG_A, 20250403, 100000 + i * 50, 11);
    yf_apply(f, ev, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(ev[i].flags, 0);
    /* far above by amount, by count, and just below the line */
    as_event_t x[3] = {yf_event(f, 360730, ORG_A, 20250404, 50000000, 11),
                       yf_event(f, 360730, ORG_A, 20250404, 100000, 5000),
                       yf_event(f, 360730, ORG_A, 20250404, 150000, 12)};
    yf_apply(f, x, 3);
    assert_int_equal(x[0].flags, AS_FLAG_OUTLIER);
    assert_int_equal(x[1].flags, AS_FLAG_OUTLIER);
    assert_int_equal(x[2].flags, 0);

    /* far above its county's usual but not above the area's: another county where education
     * activities are big fills the area window */
    for (int i = 0; i < 60; i++)
        ev[i] = yf_event(f, 360731, ORG_B, 20250405, 80000000 + i, 10);
    yf_apply(f, ev, 60);
    as_event_t y = yf_event(f, 360730, ORG_A, 20250406, 60000000, 11);
    yf_apply(f, &y, 1);
    assert_int_equal(y.flags, 0);
    assert_int_equal(s_count(f, 2025, AS_FLAG_OUTLIER, 360730), 2);
    yf_close(f);
}

static void test_amendments(void **state)
{
    yf_t *f = yf_open(registry, NULL);
    as_event_t a = yf_event(f, 360730, ORG_A, 20250501, 100, 1);
    yf_apply(f, &a, 1);
    assert_int_equal(a.flags, 0);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->l), NULL, 0, &txn), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2025, NULL, 0, 1), 0);
    assert_int_equal(as_archive_lock(f->ar, txn, 2025, NULL, 0, 1), AS_E_LOCKED);
    assert_int_equal(mdb_txn_commit(txn), 0);
    as_event_t late[3] = {yf_event(f, 360730, ORG_C, 20251230, 700, 2),
                          yf_event(f, 360730, ORG_A, 20260105, 100, 1), yf_change(f, &a, false)};
    late[2].funds_fen = 250;
    yf_apply(f, late, 3);
    assert_int_equal(late[0].flags, AS_FLAG_AMENDMENT | AS_FLAG_UNREGISTERED);
    assert_int_equal(late[1].flags, 0);
    assert_int_equal(late[2].flags, AS_FLAG_AMENDMENT);
    as_amendment_t *am;
    size_t n;
    assert_int_equal(as_archive_amendments(f->ar, 2025, &am, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(am[0].kind, AS_LOG_NEW);
    assert_int_equal(am[0].funds_fen, 700);
    assert_string_equal(am[0].event_id, late[0].event_id);
    assert_int_equal(am[1].kind, AS_LOG_CORRECTION);
    assert_int_equal(am[1].funds_fen, 150);
    assert_int_equal(am[1].activities, 0);
    assert_string_equal(am[1].target_id, a.event_id);
    free(am);
    assert_int_equal(as_archive_amendments(f->ar, 2026, &am, &n), 0);
    assert_int_equal(n, 0);
    free(am);
    assert_int_equal(s_count(f, 2025, AS_FLAG_AMENDMENT, 0), 2);
    yf_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_flags),
        cmocka_unit_test(test_no_registry_no_judgement),
        cmocka_unit_test(test_cross_county),
        cmocka_unit_test(test_cross_county_village_and_crowd),
        cmocka_unit_test(test_cross_county_index_converted),
        cmocka_unit_test(test_cross_county_index_from_xmatch),
        cmocka_unit_test(test_outliers),
        cmocka_unit_test(test_amendments),
    };
    return cmocka_run_group_tests_name("review", tests, NULL, NULL);
}
