/* test_ledger: the provincial ledger in a temporary folder — dedup (also inside one group),
 * corrections (chains, missing target), retractions, distinct reference counts, totals by every
 * dimension and filter against a brute-force sum over random events, the gap-free log, reopen,
 * abort, map growth, replay by county prefix, collectors, backup, pipelined commits (fsync
 * after the commit, two packed buffers in turn). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "division.h"
#include "err.h"
#include "event.h"
#include "ledger.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char path[96];
    as_ledger_t *l;
    uint64_t next_id;
} fx_t;

static as_ledger_t *s_open(fx_t *f, size_t map)
{
    as_ledger_opts_t o = {.initial_map_bytes = map, .no_sync = true};
    int err = 0;
    as_ledger_t *l = as_ledger_new(f->path, &o, &err);
    assert_non_null(l);
    return l;
}

static int s_org_lookup(void *ctx, const char *code, as_org_info_t *out)
{
    size_t n = strlen(code);
    if (n < 2 || code[n - 1] == 'U')
        return -1; /* unregistered */
    unsigned k = (unsigned)(code[n - 2] - '0');
    out->supervisor = (uint16_t)(k % 3 + 1);
    out->type = (uint8_t)(k % 2 + 1);
    out->level = 2;
    return 0;
}

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_ledger.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/ledger", f->dir);
    assert_int_equal(as_division_init(), 0);
    f->l = s_open(f, 0);
    as_ledger_set_org_lookup(f->l, s_org_lookup, NULL);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    as_ledger_destroy(&f->l);
    as_ledger_destroy(&f->l); /* safe twice */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A county-level division by index (wrapping), so tests use real codes of several cities. */
static uint32_t s_county(size_t i)
{
    size_t n;
    const as_division_t *c = as_division_counties(&n);
    assert_true(n > 20);
    return c[(i * 7) % n].code;
}

static void s_id(uint32_t county, uint64_t k, uint8_t id[AS_ID_LEN])
{
    memset(id, 0, AS_ID_LEN);
    id[0] = (uint8_t)(county >> 16);
    id[1] = (uint8_t)(county >> 8);
    id[2] = (uint8_t)county;
    for (int i = 0; i < 8; i++)
        id[8 + i] = (uint8_t)(k >> (8 * (7 - i)));
}

/* A plain new event with a fresh id. */
static void s_event(fx_t *f, as_event_t *ev, uint32_t county, int org, uint32_t date)
{
    memset(ev, 0, sizeof *ev);
    ev->county = county;
    s_id(county, ++f->next_id, ev->id);
    snprintf(ev->event_id, sizeof ev->event_id, "E%llu", (unsigned long long)f->next_id);
    snprintf(ev->org_code, sizeof ev->org_code, "51360000500%05d%c", org, org % 5 ? 'X' : 'U');
    snprintf(ev->org_name, sizeof ev->org_name, "测试社会组织%d", org);
    ev->area = AS_AREA_EDUCATION;
    ev->group = AS_GROUP_ELDERLY;
    ev->funding = AS_FUNDING_CHARITY;
    ev->date = date;
    snprintf(ev->village, sizeof ev->village, "%06u%06u", county % 1000000u,
             (100u + (unsigned)org) % 1000000u);
    ev->beneficiaries = 10;
    ev->registered_poor = 3;
    ev->funds_fen = 100000;
    ev->goods_fen = 500;
    ev->volunteers = 2;
    ev->volunteer_tenths = 15;
    ev->social_workers = 1;
    ev->persons_lifted = 1;
    ev->jobs = 2;
    ev->trainees = 4;
    ev->income_fen = 7000;
}

static as_apply_result_t s_apply1(fx_t *f, as_event_t *ev)
{
    as_apply_result_t r;
    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_apply(f->l, ev, &r), 0);
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    return r;
}

static as_measures_t s_total(as_ledger_t *l, uint32_t year)
{
    as_totals_row_t *rows;
    size_t n;
    as_measures_t t;
    assert_int_equal(as_ledger_totals(l, year, AS_DIM_PROVINCE, NULL, &rows, &n, &t), 0);
    free(rows);
    return t;
}

/* ---- identity and changes ------------------------------------------------------------------- */

static void test_new_and_duplicate(void **state)
{
    fx_t *f = *state;
    as_event_t ev, copy;
    s_event(f, &ev, s_county(0), 1, 20250310);
    as_apply_result_t r = s_apply1(f, &ev);
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_int_equal(r.seq, 1);
    copy = ev;
    copy.funds_fen = 1; /* other content, same id: still a duplicate */
    r = s_apply1(f, &copy);
    assert_int_equal(r.code, AS_RESULT_DUPLICATE);
    assert_int_equal(r.seq, 0);

    /* the same id twice inside one group */
    as_event_t a;
    s_event(f, &a, s_county(1), 2, 20250311);
    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_begin(f->l), AS_E_STATE);
    assert_int_equal(as_ledger_apply(f->l, &a, &r), 0);
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_int_equal(as_ledger_apply(f->l, &a, &r), 0);
    assert_int_equal(r.code, AS_RESULT_DUPLICATE);
    as_commit_info_t info;
    assert_int_equal(as_ledger_commit(f->l, &info), 0);
    assert_int_equal(info.accepted, 1);
    assert_int_equal(info.duplicates, 1);
    assert_int_equal(info.first_seq, 2);
    assert_int_equal(info.last_seq, 2);
    /* the commit's page writes are measured (the ingest limits groups by them): at least one
     * page per database the event touched */
    assert_true(info.page_bytes >= 4 * 4096);
    as_measures_t t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 2);
    assert_int_equal(t.funds_fen, 200000);
    assert_int_equal(t.organisations, 2);
    assert_int_equal(t.counties, 2);
    assert_int_equal(as_ledger_last_seq(f->l), 2);
}

/* Each accepted result points at the event as the log holds it, for the commit listeners; a
 * duplicate points at nothing; the next group starts the bytes afresh. */
static void test_packed_events(void **state)
{
    fx_t *f = *state;
    as_event_t ev[3];
    for (int i = 0; i < 3; i++)
        s_event(f, &ev[i], s_county(i), i + 1, 20250310 + (uint32_t)i);
    snprintf(ev[1].note, sizeof ev[1].note, "入户走访");
    as_apply_result_t r[4];
    assert_int_equal(as_ledger_begin(f->l), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(as_ledger_apply(f->l, &ev[i], &r[i]), 0);
    assert_int_equal(as_ledger_apply(f->l, &ev[0], &r[3]), 0);
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    const uint8_t *packed = as_ledger_packed(f->l);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].code, AS_RESULT_ACCEPTED);
        uint8_t want[4096];
        size_t n = as_event_pack(&ev[i], want);
        assert_int_equal(r[i].pb_len, n);
        assert_memory_equal(packed + r[i].pb_off, want, n);
    }
    assert_true(r[1].pb_off >= r[0].pb_off + r[0].pb_len);
    assert_true(r[2].pb_off >= r[1].pb_off + r[1].pb_len);
    assert_int_equal(r[3].code, AS_RESULT_DUPLICATE);
    assert_int_equal(r[3].pb_len, 0);
    as_event_t next;
    s_event(f, &next, s_county(3), 4, 20250320);
    as_apply_result_t rn = s_apply1(f, &next);
    assert_int_equal(rn.pb_off, r[0].pb_off); /* the same place as the first group's first */
}

/* The pipelined commit (as ingest uses it, with real fsyncs): a group committed without its meta
 * page's sync is visible at once but not durable until as_ledger_sync; a committed group's
 * packed bytes stay put while the next group is applied and committed, and the group after
 * that reuses its buffer; other transactions in the environment commit durably through
 * as_ledger_txn_commit. */
static void test_pipelined_commits(void **state)
{
    fx_t *f = *state;
    as_ledger_destroy(&f->l);
    as_ledger_opts_t o = {.no_sync = false};
    assert_non_null(f->l = as_ledger_new(f->path, &o, NULL));
    as_event_t a, b, c;
    s_event(f, &a, s_county(0), 1, 20250501);
    s_event(f, &b, s_county(1), 2, 20250502);
    s_event(f, &c, s_county(2), 3, 20250503);
    as_apply_result_t ra, rb, rc;
    as_commit_info_t ia, ib, ic;
    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_apply(f->l, &a, &ra), 0);
    assert_int_equal(as_ledger_commit_nosync(f->l, &ia), 0);
    const uint8_t *pa = as_ledger_packed(f->l);
    uint8_t want[4096];
    size_t na = as_event_pack(&a, want);
    assert_int_equal(ra.pb_len, na);
    assert_false(as_ledger_durable(f->l, ia.commit_no));
    assert_int_equal(s_total(f->l, 2025).activities, 1); /* readers see it already */
    assert_int_equal(as_ledger_sync(f->l), 0); /* its meta page, while nothing else runs */
    assert_true(as_ledger_durable(f->l, ia.commit_no));
    assert_false(as_ledger_failed(f->l));

    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_apply(f->l, &b, &rb), 0);
    assert_int_equal(as_ledger_commit_nosync(f->l, &ib), 0);
    assert_int_equal(ib.commit_no, ia.commit_no + 1);
    assert_false(as_ledger_durable(f->l, ib.commit_no));
    const uint8_t *pb = as_ledger_packed(f->l);
    assert_ptr_not_equal(pb, pa);
    assert_memory_equal(pa + ra.pb_off, want, na); /* a's bytes untouched by b's group */
    assert_int_equal(as_ledger_sync(f->l), 0);
    assert_true(as_ledger_durable(f->l, ib.commit_no));

    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_apply(f->l, &c, &rc), 0);
    assert_int_equal(as_ledger_commit(f->l, &ic), 0); /* the durable commit syncs itself */
    assert_true(as_ledger_durable(f->l, ic.commit_no));
    assert_ptr_equal(as_ledger_packed(f->l), pa); /* the buffers are used in turn */
    assert_int_equal(s_total(f->l, 2025).activities, 3);

    /* another module's transaction in the same environment */
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->l), NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "test_other", MDB_CREATE, &dbi), 0);
    MDB_val k = {1, "k"}, v = {1, "v"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(as_ledger_txn_commit(txn), 0);

    as_ledger_destroy(&f->l);
    f->l = s_open(f, 0);
    assert_int_equal(s_total(f->l, 2025).activities, 3);
    assert_int_equal(as_ledger_last_seq(f->l), 3);
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->l), NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "test_other", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    mdb_txn_abort(txn);
}

/* An event packed by the caller goes to the log as given (here: packed with one field moved to
 * the end, which as_event_pack would not do); when the ledger changes its flags (a correction
 * whose target is missing), the ledger packs it again with the flag. */
static void test_apply_packed(void **state)
{
    fx_t *f = *state;
    as_event_t a, b;
    s_event(f, &a, s_county(0), 1, 20250601);
    s_event(f, &b, s_county(0), 2, 20250602);
    b.has_correction = true;
    memset(b.correction_of, 0x42, AS_ID_LEN); /* no such event */
    uint8_t pa[AS_EVENT_PACKED_MAX + 8], pbk[AS_EVENT_PACKED_MAX];
    size_t na = as_event_pack(&a, pa);
    /* the same event with county_code (field 3) once more at the end: valid, not canonical */
    pa[na++] = 3 << 3;
    uint32_t c = a.county;
    do {
        pa[na++] = (uint8_t)(c >= 0x80 ? (c & 0x7f) | 0x80 : c);
        c >>= 7;
    } while (c);
    size_t nb = as_event_pack(&b, pbk);
    as_apply_result_t ra, rb;
    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_apply_packed(f->l, &a, pa, na, &ra), 0);
    assert_int_equal(as_ledger_apply_packed(f->l, &b, pbk, nb, &rb), 0);
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    const uint8_t *packed = as_ledger_packed(f->l);
    assert_int_equal(ra.code, AS_RESULT_ACCEPTED);
    assert_int_equal(ra.pb_len, na);
    assert_memory_equal(packed + ra.pb_off, pa, na);
    assert_int_equal(rb.code, AS_RESULT_ACCEPTED);
    assert_true(b.flags & AS_FLAG_CORRECTION_TARGET_MISSING);
    uint8_t want[AS_EVENT_PACKED_MAX];
    size_t nw = as_event_pack(&b, want);
    assert_int_equal(rb.pb_len, nw);
    assert_memory_equal(packed + rb.pb_off, want, nw);
}

static void test_corrections(void **state)
{
    fx_t *f = *state;
    as_event_t a, b, c, d;
    uint32_t county = s_county(3);
    s_event(f, &a, county, 1, 20250401);
    assert_int_equal(s_apply1(f, &a).code, AS_RESULT_ACCEPTED);
    /* b replaces a: totals move by the difference */
    s_event(f, &b, county, 1, 20250401);
    b.has_correction = true;
    memcpy(b.correction_of, a.id, AS_ID_LEN);
    b.funds_fen = 300;
    as_apply_result_t r = s_apply1(f, &b);
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_int_equal(b.flags & AS_FLAG_CORRECTION_TARGET_MISSING, 0);
    as_measures_t t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 1);
    assert_int_equal(t.funds_fen, 300);
    /* c replaces b, in another month and another organisation (a chain) */
    s_event(f, &c, county, 2, 20250615);
    c.has_correction = true;
    memcpy(c.correction_of, b.id, AS_ID_LEN);
    c.funds_fen = 50;
    assert_int_equal(s_apply1(f, &c).code, AS_RESULT_ACCEPTED);
    t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 1);
    assert_int_equal(t.funds_fen, 50);
    assert_int_equal(t.organisations, 1);
    /* correcting a (replaced, not live): a new event, flagged */
    s_event(f, &d, county, 3, 20250615);
    d.has_correction = true;
    memcpy(d.correction_of, a.id, AS_ID_LEN);
    r = s_apply1(f, &d);
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_true(d.flags & AS_FLAG_CORRECTION_TARGET_MISSING);
    t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 2);
    assert_int_equal(t.funds_fen, 100050);
    /* an unknown target: also new and flagged; and a correction inside the group of its target */
    as_event_t e, g;
    s_event(f, &e, county, 4, 20250701);
    e.has_correction = true;
    s_id(county, 999999, e.correction_of);
    s_event(f, &g, county, 4, 20250701);
    g.has_correction = true;
    memcpy(g.correction_of, e.id, AS_ID_LEN);
    g.funds_fen = 1;
    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_apply(f->l, &e, &r), 0);
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_true(e.flags & AS_FLAG_CORRECTION_TARGET_MISSING);
    assert_int_equal(as_ledger_apply(f->l, &g, &r), 0);
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_false(g.flags & AS_FLAG_CORRECTION_TARGET_MISSING);
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 3);
    assert_int_equal(t.funds_fen, 100051);
}

static void test_retractions(void **state)
{
    fx_t *f = *state;
    as_event_t a, x, y, z;
    uint32_t county = s_county(5);
    s_event(f, &a, county, 7, 20250501);
    assert_int_equal(s_apply1(f, &a).code, AS_RESULT_ACCEPTED);
    assert_int_equal(s_total(f->l, 2025).organisations, 1);
    assert_int_equal(s_total(f->l, 2025).villages, 1);
    s_event(f, &x, county, 7, 20250501);
    x.has_correction = true;
    x.retract = true;
    memcpy(x.correction_of, a.id, AS_ID_LEN);
    as_apply_result_t r = s_apply1(f, &x);
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_int_equal(r.seq, 2);
    /* the organisation's last activity left: it leaves the distinct sets too */
    as_measures_t t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 0);
    assert_int_equal(t.organisations, 0);
    assert_int_equal(t.villages, 0);
    assert_int_equal(t.counties, 0);
    assert_int_equal(t.funds_fen, 0);
    /* retracting it again: rejected, with the reason in both languages; nothing logged */
    s_event(f, &y, county, 7, 20250501);
    y.has_correction = true;
    y.retract = true;
    memcpy(y.correction_of, a.id, AS_ID_LEN);
    r = s_apply1(f, &y);
    assert_int_equal(r.code, AS_RESULT_REJECTED);
    assert_int_equal(r.reject, AS_REJECT_RETRACT_NOT_LIVE);
    assert_non_null(strstr(r.reason, "撤回"));
    assert_non_null(strstr(r.reason, "retracted"));
    assert_int_equal(as_ledger_last_seq(f->l), 2);
    /* the retraction's own id is known: sending it again is a duplicate */
    assert_int_equal(s_apply1(f, &x).code, AS_RESULT_DUPLICATE);
    /* correcting the retracted event: counted as new, flagged */
    s_event(f, &z, county, 7, 20250502);
    z.has_correction = true;
    memcpy(z.correction_of, a.id, AS_ID_LEN);
    assert_int_equal(s_apply1(f, &z).code, AS_RESULT_ACCEPTED);
    assert_true(z.flags & AS_FLAG_CORRECTION_TARGET_MISSING);
    t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 1);
    assert_int_equal(t.organisations, 1);
    /* an unknown target: rejected */
    as_event_t u;
    s_event(f, &u, county, 7, 20250502);
    u.has_correction = true;
    u.retract = true;
    s_id(county, 123456789, u.correction_of);
    assert_int_equal(s_apply1(f, &u).code, AS_RESULT_REJECTED);
}

static void test_distinct_refcounts(void **state)
{
    fx_t *f = *state;
    as_event_t a, b, x;
    uint32_t county = s_county(2);
    s_event(f, &a, county, 1, 20250101);
    a.deep_village = true;
    s_event(f, &b, county, 1, 20250102);
    b.deep_village = true;
    assert_int_equal(s_apply1(f, &a).code, AS_RESULT_ACCEPTED);
    assert_int_equal(s_apply1(f, &b).code, AS_RESULT_ACCEPTED);
    as_measures_t t = s_total(f->l, 2025);
    assert_int_equal(t.organisations, 1);
    assert_int_equal(t.villages, 1);
    assert_int_equal(t.deep_villages, 1);
    /* one of its two activities withdrawn: still there */
    s_event(f, &x, county, 1, 20250103);
    x.has_correction = x.retract = true;
    memcpy(x.correction_of, a.id, AS_ID_LEN);
    assert_int_equal(s_apply1(f, &x).code, AS_RESULT_ACCEPTED);
    t = s_total(f->l, 2025);
    assert_int_equal(t.activities, 1);
    assert_int_equal(t.organisations, 1);
    assert_int_equal(t.deep_villages, 1);
    /* the last one withdrawn: gone from every distinct set, in every dimension */
    s_event(f, &x, county, 1, 20250103);
    x.has_correction = x.retract = true;
    memcpy(x.correction_of, b.id, AS_ID_LEN);
    assert_int_equal(s_apply1(f, &x).code, AS_RESULT_ACCEPTED);
    for (int d = 0; d < AS_DIM_COUNT; d++) {
        as_totals_row_t *rows;
        size_t n;
        assert_int_equal(as_ledger_totals(f->l, 2025, (as_dim_t)d, NULL, &rows, &n, &t), 0);
        assert_int_equal(n, 0);
        assert_int_equal(t.organisations + t.villages + t.deep_villages + t.counties, 0);
        free(rows);
    }
}

/* ---- totals against a brute-force model ----------------------------------------------------- */

enum { M_LIVE = 1, M_DEAD = 2 };

typedef struct {
    as_event_t ev;
    int state; /* M_LIVE, M_DEAD (replaced, retracted, or a retraction itself) */
} m_ev_t;

typedef struct {
    char key[24];
    as_measures_t m;
    char orgs[32][20];
    char vil[128][16];
    char deep[128][16];
    uint32_t cty[16];
    size_t no, nv, nd, nc;
} m_grp_t;
#define M_GROUPS 512

static void s_addset(char (*set)[20], size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(set[i], s) == 0)
            return;
    snprintf(set[(*n)++], 20, "%s", s);
}

static void s_addset16(char (*set)[16], size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(set[i], s) == 0)
            return;
    snprintf(set[(*n)++], 16, "%s", s);
}

static void s_model_add(m_grp_t *g, const as_event_t *ev)
{
    g->m.activities++;
    g->m.beneficiaries += ev->beneficiaries;
    g->m.registered_poor += ev->registered_poor;
    g->m.funds_fen += ev->funds_fen;
    g->m.goods_fen += ev->goods_fen;
    g->m.volunteers += ev->volunteers;
    g->m.volunteer_tenths += ev->volunteer_tenths;
    g->m.social_workers += ev->social_workers;
    g->m.persons_lifted += ev->persons_lifted;
    g->m.jobs += ev->jobs;
    g->m.trainees += ev->trainees;
    g->m.income_fen += ev->income_fen;
    s_addset(g->orgs, &g->no, ev->org_code);
    if (ev->village[0]) {
        s_addset16(g->vil, &g->nv, ev->village);
        if (ev->deep_village)
            s_addset16(g->deep, &g->nd, ev->village);
    }
    size_t i;
    for (i = 0; i < g->nc && g->cty[i] != ev->county; i++)
        ;
    if (i == g->nc)
        g->cty[g->nc++] = ev->county;
    g->m.organisations = g->no;
    g->m.villages = g->nv;
    g->m.deep_villages = g->nd;
    g->m.counties = g->nc;
}

static const char *s_none(int v, const char *name)
{
    return v ? name : "none";
}

static void s_model_key(as_dim_t by, const as_event_t *ev, char key[24])
{
    as_org_info_t org = {0, 0, 0};
    s_org_lookup(NULL, ev->org_code, &org);
    const as_division_t *d = as_division_find(ev->county);
    switch (by) {
    case AS_DIM_PROVINCE:
        snprintf(key, 24, "360000");
        break;
    case AS_DIM_CITY:
        snprintf(key, 24, "%u", as_division_city_of(ev->county));
        break;
    case AS_DIM_COUNTY:
        snprintf(key, 24, "%u", ev->county);
        break;
    case AS_DIM_AREA:
        snprintf(key, 24, "%s", s_none(ev->area, as_area_name(ev->area)));
        break;
    case AS_DIM_SUPERVISOR:
        snprintf(key, 24, "%u", org.supervisor);
        break;
    case AS_DIM_ORG:
        snprintf(key, 24, "%s", ev->org_code);
        break;
    case AS_DIM_MONTH:
        snprintf(key, 24, "%04u-%02u", ev->date / 10000, ev->date / 100 % 100);
        break;
    case AS_DIM_GROUP:
        snprintf(key, 24, "%s", s_none(ev->group, as_group_name(ev->group)));
        break;
    case AS_DIM_FUNDING:
        snprintf(key, 24, "%s", s_none(ev->funding, as_funding_name(ev->funding)));
        break;
    case AS_DIM_PROJECT:
        snprintf(key, 24, "%s", s_none(ev->project, as_project_name(ev->project)));
        break;
    case AS_DIM_POVERTY:
        snprintf(key, 24, "%s", d && d->poverty ? "inside" : "outside");
        break;
    default:
        break;
    }
}

static bool s_model_match(const as_event_t *ev, const as_filter_t *flt)
{
    as_org_info_t org = {0, 0, 0};
    s_org_lookup(NULL, ev->org_code, &org);
    if (flt->supervisor >= 0 && org.supervisor != flt->supervisor)
        return false;
    if (flt->county % 10000 == 0)
        return true; /* 0 or the province */
    if (flt->county % 100 == 0)
        return as_division_city_of(ev->county) == flt->county;
    return !flt->county || flt->county == ev->county;
}

static void s_assert_measures(const as_measures_t *a, const as_measures_t *b, const char *what)
{
    if (memcmp(a, b, sizeof *a) != 0) {
        fprintf(stderr,
                "%s: act %llu/%llu orgs %llu/%llu vil %llu/%llu deep %llu/%llu cty %llu/%llu "
                "funds %lld/%lld\n",
                what, (unsigned long long)a->activities, (unsigned long long)b->activities,
                (unsigned long long)a->organisations, (unsigned long long)b->organisations,
                (unsigned long long)a->villages, (unsigned long long)b->villages,
                (unsigned long long)a->deep_villages, (unsigned long long)b->deep_villages,
                (unsigned long long)a->counties, (unsigned long long)b->counties,
                (long long)a->funds_fen, (long long)b->funds_fen);
    }
    assert_memory_equal(a, b, sizeof *a);
}

/* Compares as_ledger_totals (by2 < 0) or as_ledger_totals2 with the model for one year,
 * dimension (pair) and filter. */
static void s_check_pair(as_ledger_t *l, const m_ev_t *evs, size_t n, uint32_t year, as_dim_t by,
                         int by2, const as_filter_t *flt)
{
    m_grp_t *g = calloc(M_GROUPS + 1, sizeof *g);
    m_grp_t *total = &g[M_GROUPS];
    size_t ng = 0;
    m_grp_t *all[2];
    for (size_t i = 0; i < n; i++) {
        const as_event_t *ev = &evs[i].ev;
        if (evs[i].state != M_LIVE || ev->date / 10000 != year || !s_model_match(ev, flt))
            continue;
        char key[24] = {0};
        s_model_key(by, ev, key);
        if (by2 >= 0) {
            char k2[24] = {0}, both[48];
            s_model_key((as_dim_t)by2, ev, k2);
            snprintf(both, sizeof both, "%s|%s", key, k2);
            memcpy(key, both, 23); /* keys cut at 23 bytes, as the ledger's */
            key[23] = 0;
        }
        size_t j;
        for (j = 0; j < ng && strcmp(g[j].key, key) != 0; j++)
            ;
        if (j == ng) {
            assert_true(ng < M_GROUPS);
            memcpy(g[ng++].key, key, 24);
        }
        all[0] = &g[j];
        all[1] = total;
        for (int k = 0; k < 2; k++)
            s_model_add(all[k], ev);
    }
    as_totals_row_t *rows;
    size_t nrows;
    as_measures_t t;
    if (by2 < 0)
        assert_int_equal(as_ledger_totals(l, year, by, flt, &rows, &nrows, &t), 0);
    else
        assert_int_equal(as_ledger_totals2(l, year, by, (as_dim_t)by2, flt, &rows, &nrows, &t), 0);
    char what[128];
    snprintf(what, sizeof what, "year %u by %s%s%s county %u supervisor %d", year, as_dim_name(by),
             by2 < 0 ? "" : "×", by2 < 0 ? "" : as_dim_name((as_dim_t)by2), flt->county,
             flt->supervisor);
    if (nrows != ng)
        fprintf(stderr, "%s: %zu rows, want %zu\n", what, nrows, ng);
    assert_int_equal(nrows, ng);
    for (size_t r = 0; r < nrows; r++) {
        if (r > 0 && by2 >= 0)
            assert_true(strcmp(rows[r - 1].key, rows[r].key) != 0);
        else if (r > 0 && (by == AS_DIM_SUPERVISOR || by == AS_DIM_COUNTY || by == AS_DIM_CITY))
            assert_true(strtoul(rows[r - 1].key, NULL, 10) < strtoul(rows[r].key, NULL, 10));
        else if (r > 0)
            assert_true(strcmp(rows[r - 1].key, rows[r].key) < 0);
        assert_true(rows[r].name[0] != 0);
        size_t j;
        for (j = 0; j < ng && strcmp(g[j].key, rows[r].key) != 0; j++)
            ;
        if (j == ng)
            fprintf(stderr, "%s: unexpected row %s\n", what, rows[r].key);
        assert_true(j < ng);
        char w2[192];
        snprintf(w2, sizeof w2, "%s row %s", what, rows[r].key);
        s_assert_measures(&rows[r].m, &g[j].m, w2);
    }
    s_assert_measures(&t, &total->m, what);
    free(rows);
    free(g);
}

static void s_check(as_ledger_t *l, const m_ev_t *evs, size_t n, uint32_t year, as_dim_t by,
                    const as_filter_t *flt)
{
    s_check_pair(l, evs, n, year, by, -1, flt);
}

static uint64_t s_rng = 88172645463325252ull;
static uint32_t s_rand(uint32_t n)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t)(s_rng % n);
}

static void s_random_event(fx_t *f, as_event_t *ev)
{
    uint32_t county = s_county(s_rand(12));
    uint32_t year = 2025 + s_rand(2);
    s_event(f, ev, county, (int)s_rand(25), year * 10000 + (1 + s_rand(12)) * 100 + 1 + s_rand(28));
    ev->area = (uint8_t)s_rand(AS_AREA_COUNT);
    ev->project = (uint8_t)s_rand(AS_PROJECT_COUNT);
    ev->group = (uint8_t)s_rand(AS_GROUP_COUNT);
    ev->funding = (uint8_t)s_rand(AS_FUNDING_COUNT);
    if (s_rand(5) == 0)
        ev->village[0] = 0;
    else
        snprintf(ev->village, sizeof ev->village, "%06u%06u", county, 1 + s_rand(8));
    ev->deep_village = ev->village[0] && s_rand(3) == 0;
    ev->beneficiaries = s_rand(100);
    ev->registered_poor = s_rand(10);
    ev->funds_fen = s_rand(1000000);
    ev->goods_fen = s_rand(5000);
    ev->volunteers = s_rand(9);
    ev->volunteer_tenths = s_rand(400);
    ev->social_workers = s_rand(3);
    ev->persons_lifted = s_rand(3);
    ev->jobs = s_rand(4);
    ev->trainees = s_rand(30);
    ev->income_fen = s_rand(90000);
}

static void test_totals_property(void **state)
{
    fx_t *f = *state;
    const size_t N = 2500;
    m_ev_t *evs = calloc(N, sizeof *evs);
    size_t n = 0;
    as_event_t ev;
    while (n < N) {
        assert_int_equal(as_ledger_begin(f->l), 0);
        size_t group = 1 + s_rand(120);
        for (size_t i = 0; i < group && n < N; i++) {
            s_random_event(f, &ev);
            uint32_t dice = s_rand(10);
            m_ev_t *target = n ? &evs[s_rand((uint32_t)n)] : NULL;
            if (target && dice == 0) {
                ev = target->ev; /* a resend: duplicate whatever the state */
                ev.funds_fen++;
            } else if (target && dice <= 2) {
                ev.has_correction = true;
                memcpy(ev.correction_of, target->ev.id, AS_ID_LEN);
                ev.county = target->ev.county;
                ev.id[0] = (uint8_t)(ev.county >> 16);
                ev.id[1] = (uint8_t)(ev.county >> 8);
                ev.id[2] = (uint8_t)ev.county;
                snprintf(ev.village, sizeof ev.village, "%s", target->ev.village);
                ev.retract = dice == 2;
            }
            as_apply_result_t r;
            assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
            bool known = false;
            for (size_t j = 0; j < n && !known; j++)
                known = memcmp(evs[j].ev.id, ev.id, AS_ID_LEN) == 0;
            if (known) {
                assert_int_equal(r.code, AS_RESULT_DUPLICATE);
                continue;
            }
            bool live = ev.has_correction && target->state == M_LIVE;
            if (ev.retract && !live) {
                assert_int_equal(r.code, AS_RESULT_REJECTED);
                continue;
            }
            assert_int_equal(r.code, AS_RESULT_ACCEPTED);
            assert_true(r.seq > 0);
            if (ev.has_correction)
                assert_int_equal(!!(ev.flags & AS_FLAG_CORRECTION_TARGET_MISSING), !live);
            if (live)
                target->state = M_DEAD;
            evs[n].ev = ev;
            evs[n].state = ev.retract ? M_DEAD : M_LIVE;
            n++;
        }
        assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    }
    /* every dimension with every kind of filter, in both years */
    uint32_t c0 = s_county(0), c1 = s_county(4);
    as_filter_t filters[] = {{0, -1},     {c0, -1}, {as_division_city_of(c1), -1},
                             {0, 0},      {0, 2},   {as_division_city_of(c0), 1},
                             {360000, -1}};
    for (uint32_t year = 2025; year <= 2026; year++)
        for (size_t fi = 0; fi < sizeof filters / sizeof filters[0]; fi++)
            for (int d = 0; d < AS_DIM_COUNT; d++)
                s_check(f->l, evs, n, year, (as_dim_t)d, &filters[fi]);
    /* pairs: a geographic or supervisor dimension with any other (read from the scope totals,
     * either order), keys cut at 23 bytes (county × org), two other dimensions (the scan) */
    static const int pairs[][2] = {
        {AS_DIM_COUNTY, AS_DIM_MONTH},       {AS_DIM_SUPERVISOR, AS_DIM_COUNTY},
        {AS_DIM_CITY, AS_DIM_AREA},          {AS_DIM_POVERTY, AS_DIM_GROUP},
        {AS_DIM_AREA, AS_DIM_COUNTY},        {AS_DIM_MONTH, AS_DIM_SUPERVISOR},
        {AS_DIM_SUPERVISOR, AS_DIM_ORG},     {AS_DIM_COUNTY, AS_DIM_ORG},
        {AS_DIM_SUPERVISOR, AS_DIM_PROJECT}, {AS_DIM_SUPERVISOR, AS_DIM_SUPERVISOR},
        {AS_DIM_CITY, AS_DIM_COUNTY},        {AS_DIM_COUNTY, AS_DIM_POVERTY},
        {AS_DIM_POVERTY, AS_DIM_CITY},       {AS_DIM_PROVINCE, AS_DIM_FUNDING},
        {AS_DIM_AREA, AS_DIM_FUNDING},       {AS_DIM_ORG, AS_DIM_PROJECT},
        {AS_DIM_FUNDING, AS_DIM_POVERTY},    {AS_DIM_GROUP, AS_DIM_CITY},
    };
    for (size_t fi = 0; fi < sizeof filters / sizeof filters[0]; fi++)
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
            s_check_pair(f->l, evs, n, 2025, (as_dim_t)pairs[p][0], pairs[p][1], &filters[fi]);
    /* the same after a reopen */
    as_ledger_destroy(&f->l);
    f->l = s_open(f, 0);
    for (int d = 0; d < AS_DIM_COUNT; d++)
        s_check(f->l, evs, n, 2025, (as_dim_t)d, &filters[0]);
    free(evs);
}

/* ---- log, durability, growth ---------------------------------------------------------------- */

typedef struct {
    uint64_t expect;
    size_t n;
    const char *prefix;
} s_replay_t;

static int s_replay_cb(void *ctx, const as_log_entry_t *e, const uint8_t *pb, size_t len)
{
    s_replay_t *r = ctx;
    char c[8];
    snprintf(c, sizeof c, "%u", e->ev.county);
    assert_true(e->seq >= r->expect);
    if (!r->prefix)
        assert_int_equal(e->seq, r->expect); /* gap-free */
    else
        assert_memory_equal(c, r->prefix, strlen(r->prefix));
    r->expect = e->seq + 1;
    assert_true(len > 0);
    assert_non_null(pb);
    assert_true(e->commit_ms > 0);
    r->n++;
    return 0;
}

typedef struct {
    as_ledger_t *l;
    size_t n;
    uint64_t first;
} s_raw_t;

typedef struct {
    uint64_t seq, commit_ms;
    size_t len;
    uint8_t pb[4096];
    bool found;
} s_one_t;

static int s_one_cb(void *ctx, const as_log_entry_t *e, const uint8_t *pb, size_t pb_len)
{
    s_one_t *o = ctx;
    o->seq = e->seq;
    o->commit_ms = e->commit_ms;
    o->len = pb_len;
    memcpy(o->pb, pb, pb_len);
    o->found = true;
    return 1;
}

/* Each raw entry equals what as_ledger_replay gives for the same sequence. */
static int s_raw_cb(void *ctx, uint64_t seq, uint64_t commit_ms, const uint8_t *pb, size_t pb_len)
{
    s_raw_t *rw = ctx;
    if (!rw->n)
        rw->first = seq;
    assert_int_equal(seq, rw->first + rw->n);
    rw->n++;
    s_one_t one = {0};
    uint64_t next, last;
    assert_int_equal(as_ledger_replay(rw->l, seq, 1, NULL, s_one_cb, &one, &next, &last), 0);
    assert_true(one.found);
    assert_int_equal(one.seq, seq);
    assert_int_equal(one.commit_ms, commit_ms);
    assert_int_equal(one.len, pb_len);
    assert_memory_equal(one.pb, pb, pb_len);
    return 0;
}

static void test_log_reopen_abort(void **state)
{
    fx_t *f = *state;
    as_event_t ev;
    uint32_t a = s_county(0), b = s_county(9);
    assert_true(as_division_city_of(a) != as_division_city_of(b));
    assert_int_equal(as_ledger_begin(f->l), 0);
    for (int i = 0; i < 300; i++) {
        s_event(f, &ev, i % 3 ? a : b, i % 11, 20250801);
        as_apply_result_t r;
        assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
        assert_int_equal(r.seq, (uint64_t)i + 1);
    }
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    /* an aborted group leaves nothing, and its sequence numbers are handed out again */
    assert_int_equal(as_ledger_begin(f->l), 0);
    for (int i = 0; i < 50; i++) {
        s_event(f, &ev, a, 1, 20250901);
        as_apply_result_t r;
        assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
    }
    as_ledger_abort(f->l);
    as_ledger_abort(f->l);
    assert_int_equal(as_ledger_last_seq(f->l), 300);
    assert_int_equal(s_total(f->l, 2025).activities, 300);
    as_apply_result_t r = s_apply1(f, &ev); /* the aborted id is new again */
    assert_int_equal(r.code, AS_RESULT_ACCEPTED);
    assert_int_equal(r.seq, 301);

    as_measures_t before = s_total(f->l, 2025);
    as_ledger_destroy(&f->l);
    f->l = s_open(f, 0);
    as_measures_t after = s_total(f->l, 2025);
    assert_memory_equal(&before, &after, sizeof before);
    assert_int_equal(as_ledger_last_seq(f->l), 301);
    assert_int_equal(s_apply1(f, &ev).code, AS_RESULT_DUPLICATE);

    /* replay: all, gap-free; then by county prefix, by city prefix; paging with limit */
    s_replay_t rp = {1, 0, NULL};
    uint64_t next, last;
    assert_int_equal(as_ledger_replay(f->l, 1, 1000, NULL, s_replay_cb, &rp, &next, &last), 0);
    assert_int_equal(rp.n, 301);
    assert_int_equal(next, 302);
    assert_int_equal(last, 301);
    char pfx[16];
    snprintf(pfx, sizeof pfx, "%u", b);
    rp = (s_replay_t){1, 0, pfx};
    assert_int_equal(as_ledger_replay(f->l, 1, 1000, pfx, s_replay_cb, &rp, &next, &last), 0);
    assert_int_equal(rp.n, 100);
    snprintf(pfx, sizeof pfx, "%u", as_division_city_of(a) / 100 % 10000);
    rp = (s_replay_t){1, 0, pfx};
    assert_int_equal(as_ledger_replay(f->l, 1, 1000, pfx, s_replay_cb, &rp, &next, &last), 0);
    assert_int_equal(rp.n, 201);
    rp = (s_replay_t){10, 0, NULL};
    assert_int_equal(as_ledger_replay(f->l, 10, 5, "", s_replay_cb, &rp, &next, &last), 0);
    assert_int_equal(rp.n, 5);
    assert_int_equal(next, 15);
    /* raw: the same entries, the stored bytes as they are, paged alike */
    s_raw_t rw = {0};
    rw.l = f->l;
    assert_int_equal(as_ledger_replay_raw(f->l, 290, 7, s_raw_cb, &rw, &next, &last), 0);
    assert_int_equal(rw.n, 7);
    assert_int_equal(rw.first, 290);
    assert_int_equal(next, 297);
    assert_int_equal(last, 301);

    /* backup: a compacted copy opens with the same totals */
    char bdir[128];
    snprintf(bdir, sizeof bdir, "%s/backup", f->dir);
    assert_int_equal(as_ledger_backup(f->l, bdir), 0);
    as_ledger_opts_t o = {.no_sync = true};
    int err;
    as_ledger_t *copy = as_ledger_new(bdir, &o, &err);
    assert_non_null(copy);
    as_measures_t c = s_total(copy, 2025);
    assert_memory_equal(&c, &after, sizeof c);
    assert_int_equal(as_ledger_last_seq(copy), 301);
    as_ledger_destroy(&copy);
}

static void test_map_growth(void **state)
{
    fx_t *f = *state;
    as_ledger_destroy(&f->l);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->path);
    assert_int_equal(system(cmd), 0);
    f->l = s_open(f, 1u << 20);
    uint64_t file, map;
    assert_int_equal(as_ledger_size(f->l, &file, &map), 0);
    assert_int_equal(map, 1u << 20);
    as_event_t ev;
    const int N = 50000;
    for (int i = 0; i < N;) {
        assert_int_equal(as_ledger_begin(f->l), 0);
        for (int j = 0; j < 1000; j++, i++) {
            s_event(f, &ev, s_county((size_t)i % 40), i % 300, 20250101 + (i % 12) * 100);
            snprintf(ev.village, sizeof ev.village, "%06u%06d", ev.county, i % 500);
            as_apply_result_t r;
            assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
            assert_int_equal(r.code, AS_RESULT_ACCEPTED);
        }
        assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    }
    assert_int_equal(as_ledger_size(f->l, &file, &map), 0);
    assert_true(map > (1u << 20));
    assert_true(file > (1u << 20));
    assert_int_equal(as_ledger_last_seq(f->l), (uint64_t)N);
    assert_int_equal(s_total(f->l, 2025).activities, (uint64_t)N);
    assert_int_equal(s_total(f->l, 2025).organisations, 300);
}

/* While another thread's read holds the map, as_ledger_grow does not resize it but says that
 * it waits; once released, the next call grows it. */
/* Replaces the fixture's ledger by an empty one of a 1 MiB map that grows only in
 * as_ledger_grow (as a daemon's does). */
static void s_fresh_grow_outside(fx_t *f)
{
    as_ledger_destroy(&f->l);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->path);
    assert_int_equal(system(cmd), 0);
    as_ledger_opts_t o = {
        .initial_map_bytes = 1u << 20, .no_sync = true, .grow_outside_groups = true};
    int err = 0;
    f->l = as_ledger_new(f->path, &o, &err);
    assert_non_null(f->l);
}

static void test_map_growth_held(void **state)
{
    fx_t *f = *state;
    s_fresh_grow_outside(f);
    assert_false(as_ledger_growth_waiting(f->l));
    as_event_t ev;
    uint64_t file, map;
    /* fill the 1 MiB map past 70 % with small groups, growing only when not held */
    as_ledger_hold_map(f->l, +1);
    int i = 0;
    while (!as_ledger_growth_waiting(f->l)) {
        assert_int_equal(as_ledger_grow(f->l), 0);
        if (as_ledger_growth_waiting(f->l))
            break;
        assert_int_equal(as_ledger_begin(f->l), 0);
        for (int j = 0; j < 50; j++, i++) {
            s_event(f, &ev, s_county((size_t)i % 40), i % 300, 20250101 + (i % 12) * 100);
            as_apply_result_t r;
            assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
        }
        assert_int_equal(as_ledger_commit(f->l, NULL), 0);
        assert_true(i < 20000);
    }
    assert_int_equal(as_ledger_size(f->l, &file, &map), 0);
    assert_int_equal(map, 1u << 20); /* held: not grown */
    as_ledger_hold_map(f->l, -1);
    assert_int_equal(as_ledger_grow(f->l), 0);
    assert_false(as_ledger_growth_waiting(f->l));
    assert_int_equal(as_ledger_size(f->l, &file, &map), 0);
    assert_true(map > (1u << 20));
    assert_int_equal(as_ledger_last_seq(f->l), (uint64_t)i);
}

/* as_ledger_reserve leaves the asked room free past the data, refuses inside a group or while the
 * map is held, and as_ledger_log_get reads an entry inside a caller's transaction. */
static void test_reserve_and_log_get(void **state)
{
    fx_t *f = *state;
    s_fresh_grow_outside(f);
    as_event_t ev;
    as_apply_result_t r;
    assert_int_equal(as_ledger_begin(f->l), 0);
    s_event(f, &ev, s_county(3), 7, 20250402);
    assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
    assert_int_equal(as_ledger_reserve(f->l, 8u << 20), AS_E_STATE);
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    uint64_t file, map;
    assert_int_equal(as_ledger_size(f->l, &file, &map), 0);
    assert_int_equal(map, 1u << 20);
    as_ledger_hold_map(f->l, +1);
    assert_int_equal(as_ledger_reserve(f->l, 8u << 20), AS_E_STATE);
    as_ledger_hold_map(f->l, -1);
    assert_int_equal(as_ledger_reserve(f->l, 8u << 20), 0);
    assert_int_equal(as_ledger_size(f->l, &file, &map), 0);
    assert_true(map >= file + (8u << 20));
    assert_int_equal(as_ledger_reserve(f->l, 8u << 20), 0); /* enough already: unchanged */
    uint64_t map2;
    assert_int_equal(as_ledger_size(f->l, &file, &map2), 0);
    assert_int_equal(map2, map);

    MDB_txn *txn;
    as_log_entry_t *e = malloc(sizeof *e);
    assert_non_null(e);
    assert_int_equal(mdb_txn_begin(as_ledger_env(f->l), NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(as_ledger_log_get(f->l, txn, r.seq, e), 0);
    assert_int_equal(e->seq, r.seq);
    assert_int_equal(e->ev.county, ev.county);
    assert_int_equal(e->ev.date, 20250402);
    assert_memory_equal(e->ev.id, ev.id, AS_ID_LEN);
    assert_int_equal(as_ledger_log_get(f->l, txn, r.seq + 1, e), MDB_NOTFOUND);
    mdb_txn_abort(txn);
    free(e);
}

static void test_collectors(void **state)
{
    fx_t *f = *state;
    as_event_t ev;
    as_apply_result_t r;
    as_collector_info_t ci;
    assert_int_equal(as_ledger_collector(f->l, "c-1", &ci), AS_E_NOTFOUND);
    assert_int_equal(as_ledger_begin(f->l), 0);
    as_ledger_set_source(f->l, "c-1");
    s_event(f, &ev, s_county(0), 1, 20250101);
    assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
    assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
    as_event_t x;
    s_event(f, &x, s_county(0), 1, 20250101);
    x.has_correction = x.retract = true;
    s_id(s_county(0), 77777777, x.correction_of);
    assert_int_equal(as_ledger_apply(f->l, &x, &r), 0);
    as_collector_state_t st = {
        .county = s_county(0), .last_batch_seq = 42, .backlog = 7, .last_heard_ms = 1234};
    snprintf(st.collector_id, sizeof st.collector_id, "c-1");
    snprintf(st.version, sizeof st.version, "0.1.0");
    assert_int_equal(as_ledger_put_collector(f->l, &st), 0);
    as_ledger_set_source(f->l, "c-2");
    s_event(f, &ev, s_county(1), 1, 20250101);
    assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    /* the source stays named across groups */
    assert_int_equal(as_ledger_begin(f->l), 0);
    assert_int_equal(as_ledger_apply(f->l, &ev, &r), 0);
    assert_int_equal(as_ledger_commit(f->l, NULL), 0);

    assert_int_equal(as_ledger_collector(f->l, "c-1", &ci), 0);
    assert_int_equal(ci.accepted, 1);
    assert_int_equal(ci.duplicates, 1);
    assert_int_equal(ci.rejected, 1);
    assert_int_equal(ci.st.last_batch_seq, 42);
    assert_int_equal(ci.st.backlog, 7);
    assert_string_equal(ci.st.version, "0.1.0");
    as_collector_info_t *all;
    size_t n;
    assert_int_equal(as_ledger_collectors(f->l, &all, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(all[1].st.collector_id, "c-2");
    assert_int_equal(all[1].accepted, 1);
    assert_int_equal(all[1].duplicates, 1);
    free(all);
}

/* ---- organisations' activities by attribute value ------------------------------------------ */

typedef struct {
    char code[AS_CODE_LEN + 1];
    uint64_t n;
} s_oa_t;

typedef struct {
    s_oa_t rows[64];
    size_t n;
} s_oas_t;

static int s_oa_cb(void *ctx, const char *code, uint64_t activities)
{
    s_oas_t *o = ctx;
    assert_true(o->n < 64);
    assert_true(o->n == 0 || strcmp(o->rows[o->n - 1].code, code) < 0); /* credit-code order */
    snprintf(o->rows[o->n].code, sizeof o->rows[o->n].code, "%s", code);
    o->rows[o->n++].n = activities;
    return 0;
}

static unsigned s_attr_value(const as_event_t *ev, as_dim_t dim)
{
    return dim == AS_DIM_AREA      ? ev->area
           : dim == AS_DIM_MONTH   ? ev->date / 100 % 100
           : dim == AS_DIM_GROUP   ? ev->group
           : dim == AS_DIM_FUNDING ? ev->funding
                                   : ev->project;
}

/* as_ledger_org_activities against the live events, after corrections and retractions. */
static void test_org_activities(void **state)
{
    fx_t *f = *state;
    const size_t N = 600;
    as_event_t *evs = calloc(N, sizeof *evs);
    bool *live = calloc(N, sizeof *live);
    size_t n = 0;
    while (n < N) {
        assert_int_equal(as_ledger_begin(f->l), 0);
        for (size_t i = 0; i < 40 && n < N; i++, n++) {
            as_event_t *ev = &evs[n];
            s_random_event(f, ev);
            size_t t = n ? s_rand((uint32_t)n) : 0;
            bool change = n && live[t] && s_rand(6) == 0;
            if (change && s_rand(2) == 0) { /* a retraction: the target with a new id */
                *ev = evs[t];
                s_id(ev->county, ++f->next_id, ev->id);
                ev->retract = true;
            }
            if (change) { /* else a correction: new attributes in the same county */
                ev->county = evs[t].county;
                s_id(ev->county, ++f->next_id, ev->id);
                ev->has_correction = true;
                memcpy(ev->correction_of, evs[t].id, AS_ID_LEN);
            }
            as_apply_result_t r;
            assert_int_equal(as_ledger_apply(f->l, ev, &r), 0);
            assert_int_equal(r.code, AS_RESULT_ACCEPTED);
            if (change)
                live[t] = false;
            live[n] = !ev->retract;
        }
        assert_int_equal(as_ledger_commit(f->l, NULL), 0);
    }
    static const struct {
        as_dim_t dim;
        unsigned count;
    } dims[] = {{AS_DIM_AREA, AS_AREA_COUNT},
                {AS_DIM_MONTH, 13},
                {AS_DIM_GROUP, AS_GROUP_COUNT},
                {AS_DIM_FUNDING, AS_FUNDING_COUNT},
                {AS_DIM_PROJECT, AS_PROJECT_COUNT}};
    for (uint32_t year = 2025; year <= 2027; year++)
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
            for (unsigned v = 0; v < dims[d].count; v++) {
                s_oas_t got = {.n = 0};
                assert_int_equal(
                    as_ledger_org_activities(f->l, year, dims[d].dim, v, s_oa_cb, &got), 0);
                size_t expect_orgs = 0;
                for (size_t i = 0; i < got.n; i++) {
                    uint64_t want = 0;
                    for (size_t e = 0; e < N; e++)
                        want += live[e] && evs[e].date / 10000 == year &&
                                s_attr_value(&evs[e], dims[d].dim) == v &&
                                strcmp(evs[e].org_code, got.rows[i].code) == 0;
                    assert_int_equal(got.rows[i].n, want);
                }
                /* and no organisation with live events there is missing */
                char seen[64][AS_CODE_LEN + 1];
                for (size_t e = 0; e < N; e++) {
                    if (!live[e] || evs[e].date / 10000 != year ||
                        s_attr_value(&evs[e], dims[d].dim) != v)
                        continue;
                    size_t k = 0;
                    while (k < expect_orgs && strcmp(seen[k], evs[e].org_code) != 0)
                        k++;
                    if (k == expect_orgs)
                        snprintf(seen[expect_orgs++], sizeof seen[0], "%s", evs[e].org_code);
                }
                assert_int_equal(got.n, expect_orgs);
            }
    s_oas_t none = {.n = 0};
    assert_int_equal(as_ledger_org_activities(f->l, 2025, AS_DIM_COUNTY, 0, s_oa_cb, &none),
                     AS_E_INVALID);
    assert_int_equal(
        as_ledger_org_activities(f->l, 2025, AS_DIM_PROJECT, AS_PROJECT_COUNT, s_oa_cb, &none),
        AS_E_INVALID);
    assert_int_equal(none.n, 0);
    free(evs);
    free(live);
}

static void test_names(void **state)
{
    fx_t *f = *state;
    for (int d = 0; d < AS_DIM_COUNT; d++)
        assert_int_equal(as_dim_parse(as_dim_name((as_dim_t)d)), d);
    assert_int_equal(as_dim_parse("nope"), -1);
    as_event_t ev;
    uint32_t county = s_county(0);
    s_event(f, &ev, county, 3, 20250312);
    assert_int_equal(s_apply1(f, &ev).code, AS_RESULT_ACCEPTED);
    as_totals_row_t *rows;
    size_t n;
    as_measures_t t;
    assert_int_equal(as_ledger_totals(f->l, 2025, AS_DIM_COUNTY, NULL, &rows, &n, &t), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].name, as_division_find(county)->name);
    free(rows);
    assert_int_equal(as_ledger_totals(f->l, 2025, AS_DIM_ORG, NULL, &rows, &n, &t), 0);
    assert_string_equal(rows[0].key, ev.org_code);
    assert_string_equal(rows[0].name, "测试社会组织3");
    free(rows);
    /* a name longer than a row's 95 bytes is cut at a character, never inside one */
    as_event_t lg;
    s_event(f, &lg, county, 4, 20250313);
    char longname[AS_NAME_MAX + 1] = "";
    for (int i = 0; i < 40; i++)
        strcat(longname, i % 2 ? "会" : "协"); /* 3 bytes each: 95 = 31 x 3 + 2 */
    snprintf(lg.org_name, sizeof lg.org_name, "%s", longname);
    assert_int_equal(s_apply1(f, &lg).code, AS_RESULT_ACCEPTED);
    assert_int_equal(as_ledger_totals(f->l, 2025, AS_DIM_ORG, NULL, &rows, &n, &t), 0);
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].key, lg.org_code) != 0)
            continue;
        seen = true;
        assert_int_equal(strlen(rows[i].name), 93);
        assert_memory_equal(rows[i].name, longname, 93);
    }
    assert_true(seen);
    free(rows);
    assert_int_equal(as_ledger_totals(f->l, 2025, AS_DIM_AREA, NULL, &rows, &n, &t), 0);
    assert_string_equal(rows[0].key, as_area_name(AS_AREA_EDUCATION));
    assert_string_equal(rows[0].name, as_area_name_zh(AS_AREA_EDUCATION));
    free(rows);
    assert_int_equal(as_ledger_totals(f->l, 2025, AS_DIM_MONTH, NULL, &rows, &n, &t), 0);
    assert_string_equal(rows[0].key, "2025-03");
    free(rows);
    assert_int_equal(as_ledger_totals(f->l, 2025, AS_DIM_SUPERVISOR, NULL, &rows, &n, &t), 0);
    assert_string_equal(rows[0].key, "1");
    free(rows);
    assert_int_equal(as_ledger_totals(f->l, 2024, AS_DIM_COUNTY, NULL, &rows, &n, &t), 0);
    assert_int_equal(n, 0);
    assert_int_equal(t.activities, 0);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_and_duplicate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_packed_events, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_corrections, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_retractions, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_distinct_refcounts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_totals_property, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_log_reopen_abort, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_map_growth, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_map_growth_held, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reserve_and_log_get, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_collectors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_commits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_apply_packed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_names, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_org_activities, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
