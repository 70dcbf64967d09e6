/* review: the ledger's event hook — flags, flag counts, the cross-county index, amendments. */
#include "review.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Sub-databases of the ledger's environment, written inside the group transaction:
 *   flagcount  year(2) bit(1) county(3) → live flagged events (i64)
 *   xday       date(4) hash(org)(4) 'V' hash(org, village)(8) county(3) seq(8) and
 *              date(4) hash(org)(4) 'M' hash(org, funds, goods, benef)(8) county(3) seq(8)
 *              → empty: live events, to find the same activity reported by another county
 * The same-activity rule: a new event (or correction) is flagged DUPLICATE_ACROSS_COUNTIES when a
 * live event of the same organisation on the same date from ANOTHER county has the same village
 * code, or the same funds, goods and beneficiaries with at least one of them non-zero. The later
 * report is the one flagged (the earlier one was already logged and published).
 */

#define NWIN_SLOTS 1024 /* open-addressing table of county windows */

typedef struct {
    uint64_t *v; /* ring of window values */
    unsigned n, next;
    unsigned stale;   /* pushes since the threshold was computed */
    bool have;        /* threshold valid (the window had min_samples then) */
    double threshold; /* median + k · scale, cached */
} s_ring_t;

typedef struct {
    uint32_t key; /* county code, or 1000 + area; 0 free */
    s_ring_t amount, count;
} s_win_t;

struct as_review_s {
    as_ledger_t *l;
    as_registry_t *reg;
    as_archive_t *ar;
    MDB_dbi db_flags, db_x;
    as_outlier_rule_t rule;
    s_win_t win[NWIN_SLOTS];
    uint64_t *scratch;
    uint64_t lk_gen;     /* archive generation the lock cache was filled at */
    uint32_t lk_year[8]; /* cached lock states: year (0 empty) */
    bool lk_val[8];
};

/* Whether year is locked, through a small cache refilled when the archive's generation moves. */
static int s_locked(as_review_t *r, MDB_txn *txn, uint32_t year, bool *locked)
{
    uint64_t gen = as_archive_generation(r->ar);
    if (gen != r->lk_gen) {
        memset(r->lk_year, 0, sizeof r->lk_year);
        r->lk_gen = gen;
    }
    size_t i = year % 8;
    if (r->lk_year[i] == year) {
        *locked = r->lk_val[i];
        return 0;
    }
    int rc = as_archive_locked(r->ar, txn, year, locked);
    if (rc == 0) {
        r->lk_year[i] = year;
        r->lk_val[i] = *locked;
    }
    return rc;
}

static const uint32_t s_bits[] = {AS_FLAG_CHECK_CHAR_FAILED,
                                  AS_FLAG_UNREGISTERED,
                                  AS_FLAG_ONLINE_UNQUALIFIED,
                                  AS_FLAG_OUTLIER,
                                  AS_FLAG_CORRECTION_TARGET_MISSING,
                                  AS_FLAG_DUPLICATE_ACROSS_COUNTIES,
                                  AS_FLAG_AMENDMENT};

const char *as_review_flag_name_zh(uint32_t flag)
{
    switch (flag) {
    case AS_FLAG_CHECK_CHAR_FAILED:
        return "信用代码校验位不符（登记在册）";
    case AS_FLAG_UNREGISTERED:
        return "未经登记的组织";
    case AS_FLAG_ONLINE_UNQUALIFIED:
        return "无公开募捐资格开展网络募捐";
    case AS_FLAG_OUTLIER:
        return "数值异常偏高";
    case AS_FLAG_CORRECTION_TARGET_MISSING:
        return "更正对象不存在";
    case AS_FLAG_DUPLICATE_ACROSS_COUNTIES:
        return "疑似多县重复填报";
    case AS_FLAG_AMENDMENT:
        return "定稿后补报";
    default:
        return "";
    }
}

const char *as_review_flag_name(uint32_t flag)
{
    switch (flag) {
    case AS_FLAG_CHECK_CHAR_FAILED:
        return "check_char_failed";
    case AS_FLAG_UNREGISTERED:
        return "unregistered";
    case AS_FLAG_ONLINE_UNQUALIFIED:
        return "online_unqualified";
    case AS_FLAG_OUTLIER:
        return "outlier";
    case AS_FLAG_CORRECTION_TARGET_MISSING:
        return "correction_target_missing";
    case AS_FLAG_DUPLICATE_ACROSS_COUNTIES:
        return "duplicate_across_counties";
    case AS_FLAG_AMENDMENT:
        return "amendment";
    default:
        return "";
    }
}

void as_outlier_rule_default(as_outlier_rule_t *r)
{
    r->k = 6;
    r->window = 200;
    r->min_samples = 30;
}

/* ---- outliers ------------------------------------------------------------------------------ */

static s_win_t *s_win(as_review_t *r, uint32_t key)
{
    size_t i = (key * 2654435761u) % NWIN_SLOTS;
    for (size_t probe = 0; probe < NWIN_SLOTS; probe++, i = (i + 1) % NWIN_SLOTS) {
        s_win_t *w = &r->win[i];
        if (w->key == key)
            return w;
        if (w->key == 0) {
            w->amount.v = calloc(r->rule.window, sizeof(uint64_t));
            w->count.v = calloc(r->rule.window, sizeof(uint64_t));
            if (!w->amount.v || !w->count.v) {
                free(w->amount.v);
                free(w->count.v);
                w->amount.v = w->count.v = NULL;
                return NULL;
            }
            w->key = key;
            return w;
        }
    }
    return NULL;
}

/* The k-th smallest of v[0..n) (0-based), v reordered: Hoare's selection, expected O(n). */
static uint64_t s_select(uint64_t *v, unsigned n, unsigned k)
{
    unsigned lo = 0, hi = n - 1;
    while (lo < hi) {
        uint64_t pivot = v[lo + (hi - lo) / 2];
        unsigned i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                uint64_t t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

/* The median of v[0..n), n > 0 (v reordered). */
static double s_median(uint64_t *v, unsigned n)
{
    uint64_t hi = s_select(v, n, n / 2);
    if (n % 2)
        return (double)hi;
    /* the lower middle is the largest of the part left of n/2 after the selection */
    uint64_t lo = v[0];
    for (unsigned i = 1; i < n / 2; i++)
        if (v[i] > lo)
            lo = v[i];
    return ((double)lo + (double)hi) / 2;
}

/* True when x is far above the ring's usual (see as_outlier_rule_t); false while warming up.
 * The threshold is recomputed once the window has turned over by half (two selections over the
 * window), not for every event: the usual moves slowly. Selection rather than sorting: the sorts
 * were still 6-11% of the aggregator's CPU during delivery (perf). */
static bool s_far_above(as_review_t *r, s_ring_t *ring, uint64_t x)
{
    if (ring->n < r->rule.min_samples || ring->n == 0)
        return false;
    unsigned every = r->rule.window / 2 ? r->rule.window / 2 : 1;
    if (ring->have && ring->stale < every)
        return (double)x > ring->threshold;
    memcpy(r->scratch, ring->v, ring->n * sizeof *ring->v);
    double med = s_median(r->scratch, ring->n);
    for (unsigned i = 0; i < ring->n; i++) {
        double d = fabs((double)ring->v[i] - med);
        r->scratch[i] = (uint64_t)llround(d * 2); /* halves, exact for integer values */
    }
    double mad = s_median(r->scratch, ring->n) / 2;
    double scale = 1.4826 * mad;
    if (scale < med / 10)
        scale = med / 10;
    if (scale < 1)
        scale = 1;
    ring->threshold = med + r->rule.k * scale;
    ring->have = true;
    ring->stale = 0;
    return (double)x > ring->threshold;
}

static void s_push(s_ring_t *ring, unsigned cap, uint64_t x)
{
    ring->v[ring->next] = x;
    ring->next = (ring->next + 1) % cap;
    ring->stale++;
    if (ring->n < cap)
        ring->n++;
}

static bool s_outlier(as_review_t *r, const as_event_t *ev)
{
    s_win_t *wc = s_win(r, ev->county), *wa = s_win(r, 1000u + ev->area);
    if (!wc || !wa)
        return false;
    uint64_t amount = (uint64_t)(ev->funds_fen + ev->goods_fen), count = ev->beneficiaries;
    bool out = (s_far_above(r, &wc->amount, amount) && s_far_above(r, &wa->amount, amount)) ||
               (s_far_above(r, &wc->count, count) && s_far_above(r, &wa->count, count));
    s_push(&wc->amount, r->rule.window, amount);
    s_push(&wa->amount, r->rule.window, amount);
    s_push(&wc->count, r->rule.window, count);
    s_push(&wa->count, r->rule.window, count);
    return out;
}

/* ---- the cross-county index ----------------------------------------------------------------- */

/* "xday" holds up to two records per live counted event, each keyed by the day, the
 * organisation and what the rule compares, then by county, so that a lookup is at most two seeks
 * whatever a county reported that day:
 *   date4 o4 'V' h8 county3 seq8   h = hash of (organisation, village), when the event names one
 *   date4 o4 'M' h8 county3 seq8   h = hash of (organisation, funds, goods, beneficiaries), when
 *                                  one of the three is non-zero
 * o is a 32-bit hash of the organisation: an event's two records share the prefix (date, o), so
 * they land on the same page, as the records of one organisation's day do. Random keys cost a
 * page each per group (LMDB copies and writes every page a group touches): with the tag first
 * ("xmatch", before), the two records lay in two halves of the tree, and the index alone was
 * ~2.1 of the ~3.4 pages a group wrote per event at 1,000,000 events held. The 64-bit hash keeps
 * the keys at 28 bytes (the compared fields themselves made 50 and 62). Two different activities
 * share a hash with odds of 2^-64: at worst a needless review flag. Values are empty. */
#define XTAG  8               /* where the tag is */
#define XP    (4 + 4 + 1 + 8) /* the prefix compared */
#define XKMAX (XP + 3 + 8)

typedef struct {
    uint32_t date, county;
    const char *org;     /* credit code, up to AS_CODE_LEN bytes */
    const char *village; /* up to 12 bytes, "" for none */
    int64_t funds, goods;
    uint64_t benef;
} s_xfacts_t;

static s_xfacts_t s_facts(const as_event_t *ev)
{
    return (s_xfacts_t){.date = ev->date,
                        .county = ev->county,
                        .org = ev->org_code,
                        .village = ev->village,
                        .funds = ev->funds_fen,
                        .goods = ev->goods_fen,
                        .benef = ev->beneficiaries};
}

static void s_put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t s_get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* 64-bit FNV-1a over n bytes, continued from h, with a final mix (MurmurHash3's) so that every
 * input byte moves every output bit. */
static uint64_t s_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t s_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* The key of kind 'V' or 'M' for f (with county and seq); returns its prefix length, or 0 when f
 * has no record of that kind. */
static size_t s_xkey(uint8_t k[XKMAX], char kind, const s_xfacts_t *f, uint32_t county,
                     uint64_t seq)
{
    size_t on = strnlen(f->org, AS_CODE_LEN);
    s_put_be(k, f->date, 4);
    s_put_be(k + 4, s_mix(s_fnv(0xcbf29ce484222325ull, f->org, on)) >> 32, 4);
    k[XTAG] = (uint8_t)kind;
    uint64_t h = s_fnv(0xcbf29ce484222325ull, &k[XTAG], 1);
    h = s_fnv(h, k, 4);
    h = s_fnv(h, f->org, on);
    h = s_fnv(h, "|", 1);
    if (kind == 'V') {
        size_t vn = strnlen(f->village, 12);
        if (!vn)
            return 0;
        h = s_fnv(h, f->village, vn);
    } else {
        if (!f->funds && !f->goods && !f->benef)
            return 0;
        uint8_t m[24];
        s_put_be(m, (uint64_t)f->funds, 8);
        s_put_be(m + 8, (uint64_t)f->goods, 8);
        s_put_be(m + 16, f->benef, 8);
        h = s_fnv(h, m, sizeof m);
    }
    s_put_be(k + XTAG + 1, s_mix(h), 8);
    s_put_be(k + XP, county, 3);
    s_put_be(k + XP + 3, seq, 8);
    return XP;
}

/* Puts (dir > 0) or deletes (dir < 0) f's records. */
static int s_xindex(MDB_txn *txn, MDB_dbi dbi, const s_xfacts_t *f, uint64_t seq, int dir)
{
    static const char kinds[2] = {'V', 'M'};
    for (int i = 0; i < 2; i++) {
        uint8_t kb[XKMAX];
        size_t p = s_xkey(kb, kinds[i], f, f->county, seq);
        if (!p)
            continue;
        MDB_val k = {p + 11, kb}, v = {0, NULL};
        int rc = dir > 0 ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL);
        if (rc && !(dir < 0 && rc == MDB_NOTFOUND))
            return rc;
    }
    return 0;
}

/* Is there a record with kb's first p bytes from a county other than ev's? */
static int s_other_county(MDB_cursor *c, uint8_t *kb, size_t p, uint32_t mine, bool *hit)
{
    for (uint32_t from = 0;; from = mine + 1) {
        s_put_be(kb + p, from, 3);
        memset(kb + p + 3, 0, 8);
        MDB_val k = {p + 11, kb}, v;
        int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc)
            return rc;
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != p + 11 || memcmp(kp, kb, p) != 0)
            return 0;
        uint32_t county = (uint32_t)(kp[p] << 16 | kp[p + 1] << 8 | kp[p + 2]);
        if (county != mine) {
            *hit = true;
            return 0;
        }
        if (from > mine || mine == 0xffffff)
            return 0;
    }
}

/* Is there a live event of the same organisation and date from another county matching ev?
 * Then ev's own records go in (seq), each right after its lookup with the same cursor, which
 * LMDB then finds on the page the lookup left it on instead of searching the tree again. */
static int s_cross_county_put(as_review_t *r, MDB_txn *txn, const as_event_t *ev, uint64_t seq,
                              bool *hit)
{
    *hit = false;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, r->db_x, &c);
    if (rc)
        return rc;
    s_xfacts_t f = s_facts(ev);
    static const char kinds[2] = {'V', 'M'};
    for (int i = 0; i < 2 && !rc; i++) {
        uint8_t kb[XKMAX];
        size_t p = s_xkey(kb, kinds[i], &f, 0, 0);
        if (!p)
            continue;
        if (!*hit)
            rc = s_other_county(c, kb, p, ev->county, hit);
        if (!rc) { /* the same prefix: only the county and seq after it differ */
            s_put_be(kb + p, f.county, 3);
            s_put_be(kb + p + 3, seq, 8);
            MDB_val k = {p + 11, kb}, v = {0, NULL};
            rc = mdb_cursor_put(c, &k, &v, 0);
        }
    }
    mdb_cursor_close(c);
    return rc;
}

/* A ledger written before "xmatch" holds one record per live event in "xdate" (date4 org18
 * county3 seq8) or, older, "xcounty" (org18 date4 county3 seq8), each → village12 funds8 goods8
 * benef8 (native order): they move to "xday" once, in the opening transaction, and the old
 * index is dropped. */
static int s_convert_old(MDB_txn *txn, MDB_dbi to, const char *name, size_t date_at, size_t org_at)
{
    MDB_dbi from;
    int rc = mdb_dbi_open(txn, name, 0, &from);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, from, &c)) != 0)
        return rc;
    size_t n = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 33 || v.mv_size != 36)
            continue;
        const uint8_t *kp = k.mv_data, *vp = v.mv_data;
        char org[AS_CODE_LEN + 1] = {0}, village[13] = {0};
        memcpy(org, kp + org_at, 18);
        memcpy(village, vp, 12);
        s_xfacts_t f = {.date = (uint32_t)s_get_be(kp + date_at, 4),
                        .county = (uint32_t)s_get_be(kp + 22, 3),
                        .org = org,
                        .village = village};
        memcpy(&f.funds, vp + 12, 8);
        memcpy(&f.goods, vp + 20, 8);
        memcpy(&f.benef, vp + 28, 8);
        if ((rc = s_xindex(txn, to, &f, s_get_be(kp + 25, 8), +1)) != 0)
            break;
        n++;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_drop(txn, from, 1)) != 0)
        return rc;
    AS_INFO("review", "cross-county index converted from \"%s\" (%zu events)", name, n);
    return 0;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A ledger written with "xmatch" (tag1 date4 h8 county3 seq8, the tag first) holds
 * the sequences of the live events but not their organisations: each of them is read back from
 * the event log into "xday", in the opening transaction, and the old index is dropped. */
static int s_convert_xmatch(as_ledger_t *l, MDB_txn *txn, MDB_dbi to)
{
    MDB_dbi from;
    int rc = mdb_dbi_open(txn, "xmatch", 0, &from);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    MDB_stat st;
    if ((rc = mdb_stat(txn, from, &st)) != 0)
        return rc;
    uint64_t *seqs = malloc((st.ms_entries ? st.ms_entries : 1) * sizeof *seqs);
    as_log_entry_t *e = malloc(sizeof *e);
    MDB_cursor *c = NULL;
    if (!seqs || !e) {
        rc = ENOMEM;
        goto done;
    }
    size_t n = 0;
    if ((rc = mdb_cursor_open(txn, from, &c)) != 0)
        goto done;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < st.ms_entries;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (k.mv_size == 24)
            seqs[n++] = s_get_be((const uint8_t *)k.mv_data + 16, 8);
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto done;
    qsort(seqs, n, sizeof *seqs, s_cmp_u64);
    size_t events = 0;
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i && seqs[i] == seqs[i - 1]) /* an event's 'V' and 'M' records */
            continue;
        if ((rc = as_ledger_log_get(l, txn, seqs[i], e)) == MDB_NOTFOUND) {
            AS_WARN("review",
                    "converting the cross-county index: event %llu is not in the log; it is "
                    "left out of the index",
                    (unsigned long long)seqs[i]);
            rc = 0;
            continue;
        }
        if (rc == 0) {
            s_xfacts_t f = s_facts(&e->ev);
            rc = s_xindex(txn, to, &f, seqs[i], +1);
            events++;
        }
    }
    if (rc == 0 && (rc = mdb_drop(txn, from, 1)) == 0)
        AS_INFO("review", "cross-county index converted from \"xmatch\" to \"xday\" (%zu events)",
                events);
done:
    free(seqs);
    free(e);
    return rc;
}

/* Bytes of the pages of the older indexes that a conversion reads (0: none to convert). */
static uint64_t s_old_index_bytes(MDB_env *env)
{
    static const char *const names[] = {"xmatch", "xdate", "xcounty"};
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
        return 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        MDB_dbi dbi;
        MDB_stat st;
        if (mdb_dbi_open(txn, names[i], 0, &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0)
            bytes += (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) *
                     st.ms_psize;
    }
    mdb_txn_abort(txn);
    return bytes;
}

/* ---- counts and amendments ---------------------------------------------------------------------
 */

static int s_count(as_review_t *r, MDB_txn *txn, uint32_t flags, uint32_t year, uint32_t county,
                   int sign)
{
    for (size_t i = 0; i < sizeof s_bits / sizeof s_bits[0]; i++) {
        if (!(flags & s_bits[i]))
            continue;
        uint8_t kb[6] = {(uint8_t)(year >> 8),    (uint8_t)year,          (uint8_t)i,
                         (uint8_t)(county >> 16), (uint8_t)(county >> 8), (uint8_t)county};
        MDB_val k = {6, kb}, v;
        int64_t n = 0;
        int rc = mdb_get(txn, r->db_flags, &k, &v);
        if (rc == 0 && v.mv_size == 8)
            memcpy(&n, v.mv_data, 8);
        else if (rc && rc != MDB_NOTFOUND)
            return rc;
        n += sign;
        v.mv_size = 8;
        v.mv_data = &n;
        if ((rc = n ? mdb_put(txn, r->db_flags, &k, &v, 0) : mdb_del(txn, r->db_flags, &k, NULL)) &&
            rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

static void s_id_text(char *out, size_t cap, const as_event_t *ev, const uint8_t *id)
{
    if (ev && ev->event_id[0]) {
        snprintf(out, cap, "%s", ev->event_id);
    } else {
        char hex[33];
        as_id_to_hex(id, hex);
        snprintf(out, cap, "%s", hex);
    }
}

static void s_cut_utf8(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void s_delta(as_amendment_t *am, const as_event_t *e, int sign)
{
    am->activities += sign;
    am->beneficiaries += sign * (int64_t)e->beneficiaries;
    am->registered_poor += sign * (int64_t)e->registered_poor;
    am->funds_fen += sign * e->funds_fen;
    am->goods_fen += sign * e->goods_fen;
    am->volunteers += sign * (int64_t)e->volunteers;
    am->volunteer_tenths += sign * (int64_t)e->volunteer_tenths;
    am->social_workers += sign * (int64_t)e->social_workers;
    am->persons_lifted += sign * (int64_t)e->persons_lifted;
    am->jobs += sign * (int64_t)e->jobs;
    am->trainees += sign * (int64_t)e->trainees;
    am->income_fen += sign * e->income_fen;
}

/* ---- the hook ----------------------------------------------------------------------------------
 */

static int s_hook(void *ctx, MDB_txn *txn, as_event_t *ev, const as_ledger_event_t *info)
{
    as_review_t *r = ctx;
    const as_event_t *t = info->target ? &info->target->ev : NULL;
    uint32_t year = ev->date / 10000, tyear = t ? t->date / 10000 : 0;
    int rc;
    bool counted = info->kind != AS_LOG_RETRACTION;

    if (counted) {
        if (r->reg && as_registry_count(r->reg) > 0) {
            as_registry_org_t o;
            bool known = as_registry_lookup(r->reg, ev->org_code, &o) == 0;
            if (!known)
                ev->flags |= AS_FLAG_UNREGISTERED;
            if (ev->online_fundraising && !(known && o.fundraising))
                ev->flags |= AS_FLAG_ONLINE_UNQUALIFIED;
        }
        if (s_outlier(r, ev))
            ev->flags |= AS_FLAG_OUTLIER;
        bool hit;
        if ((rc = s_cross_county_put(r, txn, ev, info->seq, &hit)) != 0)
            return rc;
        if (hit)
            ev->flags |= AS_FLAG_DUPLICATE_ACROSS_COUNTIES;
    }
    bool lk = false, tlk = false;
    if ((rc = s_locked(r, txn, year, &lk)) != 0 || (t && (rc = s_locked(r, txn, tyear, &tlk)) != 0))
        return rc;
    if (lk || tlk)
        ev->flags |= AS_FLAG_AMENDMENT;

    /* the target leaves the counts and the index; the event enters them */
    if (t) {
        s_xfacts_t f = s_facts(t);
        if ((rc = s_xindex(txn, r->db_x, &f, info->target->seq, -1)) != 0)
            return rc;
        if ((rc = s_count(r, txn, t->flags, tyear, t->county, -1)) != 0)
            return rc;
    }
    if (counted) { /* its cross-county records went in with the lookup */
        if ((rc = s_count(r, txn, ev->flags, year, ev->county, +1)) != 0)
            return rc;
    }
    if (lk || tlk) {
        as_amendment_t am;
        memset(&am, 0, sizeof am);
        const as_event_t *shown = counted ? ev : t;
        am.seq = info->seq;
        am.kind = info->kind;
        am.county = shown->county;
        am.date = shown->date;
        snprintf(am.org_code, sizeof am.org_code, "%s", shown->org_code);
        s_cut_utf8(am.org_name, sizeof am.org_name, shown->org_name);
        s_id_text(am.event_id, sizeof am.event_id, ev, ev->id);
        if (ev->has_correction)
            s_id_text(am.target_id, sizeof am.target_id, t, ev->correction_of);
        if (counted)
            s_delta(&am, ev, +1);
        if (t)
            s_delta(&am, t, -1);
        /* a correction moving an event across years is listed under each locked year */
        if (lk && (rc = as_archive_put_amendment(r->ar, txn, year, &am)) != 0)
            return rc;
        if (tlk && tyear != year && (rc = as_archive_put_amendment(r->ar, txn, tyear, &am)) != 0)
            return rc;
    }
    return 0;
}

/* ---- life cycle -------------------------------------------------------------------------------
 */

as_review_t *as_review_new(as_ledger_t *l, as_registry_t *reg, as_archive_t *ar,
                           const as_outlier_rule_t *rule, int *err)
{
    int dummy, rc;
    if (!err)
        err = &dummy;
    as_review_t *r = calloc(1, sizeof *r);
    if (!r) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    r->l = l;
    r->reg = reg;
    r->ar = ar;
    if (rule)
        r->rule = *rule;
    else
        as_outlier_rule_default(&r->rule);
    if (r->rule.window < 1)
        r->rule.window = 1;
    r->scratch = calloc(r->rule.window, sizeof *r->scratch);
    MDB_txn *txn;
    if (!r->scratch) {
        *err = AS_E_NOMEM;
        as_review_destroy(&r);
        return NULL;
    }
    /* a conversion writes the new index in one transaction: room for it, beside the old one */
    uint64_t room = s_old_index_bytes(as_ledger_env(l)) * 3;
    if (room && (rc = as_ledger_reserve(l, room)) != 0) {
        AS_ERROR("review",
                 "cannot make room in the ledger's map to convert the cross-county "
                 "index: %s; the aggregator does not start",
                 as_strerror(rc));
        *err = rc;
        as_review_destroy(&r);
        return NULL;
    }
    if ((rc = mdb_txn_begin(as_ledger_env(l), NULL, 0, &txn)) != 0) {
        *err = AS_E_DB;
        as_review_destroy(&r);
        return NULL;
    }
    if ((rc = mdb_dbi_open(txn, "flagcount", MDB_CREATE, &r->db_flags)) != 0 ||
        (rc = mdb_dbi_open(txn, "xday", MDB_CREATE, &r->db_x)) != 0 ||
        (rc = s_convert_old(txn, r->db_x, "xdate", 0, 4)) != 0 ||
        (rc = s_convert_old(txn, r->db_x, "xcounty", 18, 0)) != 0 ||
        (rc = s_convert_xmatch(l, txn, r->db_x)) != 0)
        mdb_txn_abort(txn);
    else
        rc = as_ledger_txn_commit(txn);
    if (rc) {
        AS_ERROR("review", "opening the review databases: %s", mdb_strerror(rc));
        *err = AS_E_DB;
        as_review_destroy(&r);
        return NULL;
    }
    if (reg) {
        as_ledger_set_org_lookup(l, as_registry_org_cb, reg);
        as_ledger_set_supervisor_name_cb(l, as_registry_unit_cb, reg);
    }
    as_ledger_set_event_hook(l, s_hook, r);
    return r;
}

void as_review_destroy(as_review_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_review_t *r = *self_p;
    *self_p = NULL;
    if (r->l && r->scratch) {
        as_ledger_set_event_hook(r->l, NULL, NULL);
        as_ledger_set_org_lookup(r->l, NULL, NULL);
        as_ledger_set_supervisor_name_cb(r->l, NULL, NULL);
    }
    for (size_t i = 0; i < NWIN_SLOTS; i++) {
        free(r->win[i].amount.v);
        free(r->win[i].count.v);
    }
    free(r->scratch);
    free(r);
}

int as_review_flag_counts(as_review_t *r, uint32_t year, as_flag_count_t **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(as_ledger_env(r->l), NULL, MDB_RDONLY, &txn);
    if (rc)
        return AS_E_DB;
    if ((rc = mdb_cursor_open(txn, r->db_flags, &c)) != 0) {
        mdb_txn_abort(txn);
        return AS_E_DB;
    }
    uint8_t kb[2] = {(uint8_t)(year >> 8), (uint8_t)year};
    MDB_val k = {2, kb}, v;
    size_t cap = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != 6 || memcmp(kp, kb, 2) != 0)
            break;
        if (v.mv_size != 8 || kp[2] >= sizeof s_bits / sizeof s_bits[0])
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            as_flag_count_t *p = realloc(*rows, cap * sizeof *p);
            if (!p) {
                rc = -1;
                break;
            }
            *rows = p;
        }
        as_flag_count_t *f = &(*rows)[(*n)++];
        f->flag = s_bits[kp[2]];
        f->county = (uint32_t)(kp[3] << 16 | kp[4] << 8 | kp[5]);
        memcpy(&f->count, v.mv_data, 8);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        free(*rows);
        *rows = NULL;
        *n = 0;
        return rc == -1 ? AS_E_NOMEM : AS_E_DB;
    }
    return 0;
}
