/* ledger: the provincial ledger in LMDB — dedup, gap-free event log, totals at the finest grain,
 * distinct sets by reference count, corrections, retractions, collectors — in group commits. */
#include "ledger.h"
#include "division.h"
#include "err.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/*
 * Layout (one LMDB environment, sub-databases):
 *   dedup   16-byte wire id → seq (u64 BE) + state (live, replaced, retracted, retraction)
 *   log     seq (u64 BE, MDB_APPEND) → header (LOG_HDR bytes) + packed protobuf Event
 *   cells   year·county·month·area·project·group·funding·supervisor·type·level·org
 *           → NM additive measures (i64); the finest grain, grows with the organisations'
 *           activities: scanned only for what the blocks do not hold (see s_totals)
 *   vrefs   year·county·month·…·level·kind(village|deep)·village·org → live event count;
 *           cells and vrefs are scanned only for pairs of two non-geographic dimensions
 *   blocks  year·level·sup·code → the measures of one scope (a county, city, poverty class,
 *           province, or city × poverty class; sup 0xffff = every supervisor, else one) per
 *           slot: everything, each area, month, group, funding source and project; stored
 *           sparse as (slot, NG i64) for the slots with live events. Every dimension and filter
 *           except the pairs of two non-geographic dimensions reads a handful of these.
 *   orefs   year·level·code·sup·org → NG measures of the organisation in the scope (the org
 *           rows) + NS live-event counters per slot; a counter's 0 ↔ 1 moves the block slot's
 *           distinct organisations
 *   vsets   year·county·sup·village·kind(village|deep) → NS live-event counters per slot; a
 *           counter's 0 ↔ 1 moves the distinct villages of the slot in the county block, and
 *           through it every level's (a village lies in one county, so villages sum)
 *   vorgs   year·county·org·village·kind → (sup, live events) per supervisor scope; a count's
 *           0 ↔ 1 moves the org rows' villages
 *   Distinct counties: a county block slot's (or a county org row's) 0 ↔ 1 moves the slot of
 *   the coarser levels. Per group, the unique keys of these tables are few (coarse keys), and
 *   the coarser records move only on transitions.
 *   orgs    credit code → latest organisation name
 *   coll    collector id → as_collector_info_t
 *   meta    "last_seq", "schema" → u64 BE
 * Each group's writes are summed in memory per key (hash tables below) and written once, in key
 * order, at commit. Dedup records are written at commit too; the group's own ids are looked up in
 * memory first, so duplicates, corrections and retractions inside one group behave exactly as
 * across groups.
 */

#define SCHEMA_VERSION 3
#define MAP_DEFAULT    (64u << 20)
#define NM             12 /* additive measures, in the order of s_add_measures */
#define NG             (NM + 4)
#define LOG_HDR        18
#define MARGIN_START   (16u << 20) /* room kept free before a group until one was measured */

enum { ST_LIVE = 1, ST_REPLACED = 2, ST_RETRACTED = 3, ST_RETRACTION = 4 };
enum { K_ORG = 1, K_VILLAGE = 2, K_DEEP = 3, K_COUNTY = 4 };
enum { LV_COUNTY = 1, LV_CITY = 2, LV_POVERTY = 3, LV_PROVINCE = 4, LV_CITYPOV = 5, NLV = 5 };

/* Slots of a block: everything, then one per value of each non-geographic dimension. */
enum {
    SL_ALL = 0,
    SL_AREA = 1,
    SL_MONTH = SL_AREA + AS_AREA_COUNT,
    SL_GROUP = SL_MONTH + 13,
    SL_FUNDING = SL_GROUP + AS_GROUP_COUNT,
    SL_PROJECT = SL_FUNDING + AS_FUNDING_COUNT,
    NS = SL_PROJECT + AS_PROJECT_COUNT
};
#define SUP_ANY 0xffff /* the block of every supervisor (65535 is not a supervisor id) */

/* Keys begin with what arrives together (county, then month) so that a group's writes land on
 * few pages; the entity comes last. */
#define CELL_KEY  32 /* year2 county3 month area project group funding sup2 type level org18 */
#define VREF_KEY  45 /* year2 county3 month..funding(5) sup2 type level kind1 village12 org18 */
#define BLOCK_KEY 8  /* year2 level1 sup2 code3 */
#define BLOCK_VAL (NS * NG * 8) /* dense in memory */
#define OREF_KEY  26            /* year2 level1 code3 sup2 org18 */
#define OREF_VAL  (NG * 8 + NS * 4)
#define VSET_KEY  20 /* year2 county3 sup2 village12 kind1 */
#define VORG_KEY  38 /* in memory: year2 county3 org18 village12 kind1 sup2 */
#define VORG_REC  36 /* stored: the same without sup; value (sup2, live events u32) per scope */
#define ID_VAL    9

static void s_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t s_get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- a small hash table with fixed-size keys and values -------------------------------------- */

/* The entries (key, value) lie back to back in insertion order; an open-addressing index of
 * 32-bit words (entry number + 1, 0 when free) with each entry's hash tag beside it finds them.
 * A probe thus reads two small arrays and compares a key only when the tags agree: the entries,
 * some of them kilobytes wide (a block's dense columns), are touched once per look-up instead of
 * once per probe step (the wide-slot table it replaces spent ≈ 15 % of the writer's time in
 * probing, mostly cache misses). Entry numbers stay valid as the table grows; pointers into the
 * entries do not. */
typedef struct {
    size_t klen, vlen, esz; /* key and value bytes; esz = klen + vlen rounded up to 8 */
    size_t cap, n;          /* index slots (power of two), entries */
    size_t ecap;            /* entries allocated */
    uint32_t *idx;          /* cap: entry + 1, or 0 */
    uint32_t *tag;          /* cap: low 32 bits of the entry's hash */
    uint8_t *ents;          /* ecap * esz */
    uint64_t *hash;         /* ecap: each entry's hash (to grow the index without rehashing) */
    uint32_t *order;        /* ecap: entry numbers, insertion order until s_map_sort */
    struct s_sortent *sbuf; /* 2 * ecap: s_map_sort's working space */
} s_map_t;

/* An entry being sorted: its key's first 16 bytes as two big-endian numbers beside its number,
 * so that most comparisons are integer comparisons that do not touch the entry. */
typedef struct s_sortent {
    uint64_t pre[2];
    uint32_t e;
} s_sortent_t;

static int s_map_init(s_map_t *m, size_t klen, size_t vlen)
{
    memset(m, 0, sizeof *m);
    m->klen = klen;
    m->vlen = vlen;
    m->esz = (klen + vlen + 7) & ~(size_t)7;
    m->cap = 1024;
    m->ecap = 256;
    m->idx = calloc(m->cap, sizeof *m->idx);
    m->tag = malloc(m->cap * sizeof *m->tag);
    m->ents = malloc(m->ecap * m->esz);
    m->hash = malloc(m->ecap * sizeof *m->hash);
    m->order = malloc(m->ecap * sizeof *m->order);
    m->sbuf = malloc(2 * m->ecap * sizeof *m->sbuf);
    return m->idx && m->tag && m->ents && m->hash && m->order && m->sbuf ? 0 : AS_E_NOMEM;
}

static void s_map_free(s_map_t *m)
{
    free(m->idx);
    free(m->tag);
    free(m->ents);
    free(m->hash);
    free(m->order);
    free(m->sbuf);
    memset(m, 0, sizeof *m);
}

/* Eight bytes at a time, each word multiplied in and rotated, then MurmurHash3's finaliser so
 * that the low bits (the table index) depend on every byte. */
static uint64_t s_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    for (; n >= 8; n -= 8, p += 8) {
        memcpy(&w, p, 8);
        h ^= w * 0x87c37b91114253d5ull;
        h = (h << 27 | h >> 37) * 0x4cf5ad432745937full;
    }
    w = 0;
    memcpy(&w, p, n);
    h ^= w * 0x87c37b91114253d5ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint8_t *s_map_key(const s_map_t *m, uint32_t e)
{
    return m->ents + (size_t)e * m->esz;
}

static uint8_t *s_map_val(const s_map_t *m, uint32_t e)
{
    return m->ents + (size_t)e * m->esz + m->klen;
}

/* The index slot of key (hash h): where it is, or the free slot where it would go. */
static size_t s_map_probe(const s_map_t *m, const uint8_t *key, uint64_t h)
{
    uint32_t t = (uint32_t)h;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint32_t e = m->idx[i];
        if (!e || (m->tag[i] == t && memcmp(s_map_key(m, e - 1), key, m->klen) == 0))
            return i;
    }
}

static int s_map_grow_index(s_map_t *m)
{
    size_t cap = m->cap * 2;
    uint32_t *idx = calloc(cap, sizeof *idx), *tag = malloc(cap * sizeof *tag);
    if (!idx || !tag) {
        free(idx);
        free(tag);
        return AS_E_NOMEM;
    }
    for (size_t e = 0; e < m->n; e++) {
        size_t i = m->hash[e] & (cap - 1);
        while (idx[i])
            i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)e + 1;
        tag[i] = (uint32_t)m->hash[e];
    }
    free(m->idx);
    free(m->tag);
    m->idx = idx;
    m->tag = tag;
    m->cap = cap;
    return 0;
}

static int s_map_grow_entries(s_map_t *m)
{
    size_t ecap = m->ecap * 2;
    uint8_t *ents = realloc(m->ents, ecap * m->esz);
    if (!ents)
        return AS_E_NOMEM;
    m->ents = ents;
    uint64_t *hash = realloc(m->hash, ecap * sizeof *hash);
    if (!hash)
        return AS_E_NOMEM;
    m->hash = hash;
    uint32_t *order = realloc(m->order, ecap * sizeof *order);
    if (!order)
        return AS_E_NOMEM;
    m->order = order;
    s_sortent_t *sbuf = realloc(m->sbuf, 2 * ecap * sizeof *sbuf);
    if (!sbuf)
        return AS_E_NOMEM;
    m->sbuf = sbuf;
    m->ecap = ecap;
    return 0;
}

/* The value for key, or NULL when absent. */
static uint8_t *s_map_find(const s_map_t *m, const uint8_t *key)
{
    uint32_t e = m->idx[s_map_probe(m, key, s_hash(key, m->klen))];
    return e ? s_map_val(m, e - 1) : NULL;
}

/* The value for key, inserted zeroed when absent (*fresh tells); NULL when out of memory. */
static uint8_t *s_map_upsert(s_map_t *m, const uint8_t *key, bool *fresh)
{
    if ((m->n + 1) * 2 > m->cap && s_map_grow_index(m) != 0)
        return NULL;
    uint64_t h = s_hash(key, m->klen);
    size_t i = s_map_probe(m, key, h);
    if (fresh)
        *fresh = !m->idx[i];
    if (m->idx[i])
        return s_map_val(m, m->idx[i] - 1);
    if (m->n == m->ecap && s_map_grow_entries(m) != 0)
        return NULL;
    uint32_t e = (uint32_t)m->n++;
    m->idx[i] = e + 1;
    m->tag[i] = (uint32_t)h;
    m->hash[e] = h;
    m->order[e] = e;
    uint8_t *k = s_map_key(m, e);
    memcpy(k, key, m->klen);
    memset(k + m->klen, 0, m->vlen);
    return k + m->klen;
}

/* Empties the table, keeping its memory: only the index slots in use are cleared. */
static void s_map_clear(s_map_t *m)
{
    if (m->n * 8 < m->cap) {
        for (size_t e = 0; e < m->n; e++) {
            size_t i = m->hash[e] & (m->cap - 1);
            while (m->idx[i] != e + 1)
                i = (i + 1) & (m->cap - 1);
            m->idx[i] = 0;
        }
    } else {
        memset(m->idx, 0, m->cap * sizeof *m->idx);
    }
    m->n = 0;
}

/* Whether entry a's key sorts before b's: the prefixes, then the bytes after them. */
static inline bool s_sort_less(const s_map_t *m, const s_sortent_t *a, const s_sortent_t *b)
{
    if (a->pre[0] != b->pre[0])
        return a->pre[0] < b->pre[0];
    if (a->pre[1] != b->pre[1])
        return a->pre[1] < b->pre[1];
    return m->klen > 16 &&
           memcmp(s_map_key(m, a->e) + 16, s_map_key(m, b->e) + 16, m->klen - 16) < 0;
}

/* Sorts the iteration order by key, so the commit writes each B-tree in order (LMDB then finds
 * most keys on the page its cursor is already on): a merge sort of (prefix, entry) pairs, bottom
 * up from runs of 16 sorted by insertion. (qsort_r, an indirect call and a memcmp per comparison
 * on keys scattered over the entries, took ≈ 8 % of the writer's time.) */
static void s_map_sort(s_map_t *m)
{
    enum { RUN = 16 };
    size_t n = m->n;
    s_sortent_t *a = m->sbuf, *b = m->sbuf + m->ecap;
    for (size_t i = 0; i < n; i++) {
        uint8_t pre[16] = {0};
        memcpy(pre, s_map_key(m, (uint32_t)i), m->klen < 16 ? m->klen : 16);
        a[i].pre[0] = s_get_be(pre, 8);
        a[i].pre[1] = s_get_be(pre + 8, 8);
        a[i].e = (uint32_t)i;
    }
    for (size_t lo = 0; lo < n; lo += RUN) {
        size_t hi = lo + RUN < n ? lo + RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            s_sortent_t x = a[i];
            size_t j = i;
            for (; j > lo && s_sort_less(m, &x, &a[j - 1]); j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
    }
    for (size_t w = RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                b[o++] = s_sort_less(m, &a[j], &a[i]) ? a[j++] : a[i++];
            while (i < mid)
                b[o++] = a[i++];
            while (j < hi)
                b[o++] = a[j++];
        }
        s_sortent_t *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++)
        m->order[i] = a[i].e;
}

/* ---- the ledger --------------------------------------------------------------------------- */

typedef struct {
    char id[64];
    bool has_state;
    as_collector_state_t st;
    uint64_t accepted, duplicates, rejected;
} s_coll_delta_t;

struct as_ledger_s {
    MDB_env *env;
    MDB_dbi db_dedup, db_log, db_cells, db_vrefs, db_blocks, db_orefs, db_vsets, db_vorgs, db_orgs,
        db_coll, db_meta;
    size_t mapsize;
    bool no_sync;
    MDB_txn *txn;             /* the open write transaction, or NULL */
    uint64_t last_seq;        /* newest sequence inside the open group */
    uint64_t committed_seq;   /* newest committed sequence */
    uint64_t group_ms;        /* time of as_ledger_begin */
    uint64_t grow_margin;     /* bytes the largest group so far added to the file, doubled */
    bool must_grow;           /* the last group hit MDB_MAP_FULL */
    bool grow_outside;        /* growth only in as_ledger_grow (opts.grow_outside_groups) */
    atomic_int backups;       /* reads in other threads (backups, monitor): no growth */
    atomic_bool grow_waiting; /* as_ledger_grow found the map too small while it was held */
    as_commit_info_t info;    /* of the open group */
    s_map_t ids;              /* id → seq + state, this group's dedup records */
    s_map_t cells, vrefs;     /* summed deltas */
    s_map_t blocks_c, blocks; /* county blocks (flushed first), the other levels */
    s_map_t orefs_c, orefs, vsets, vorgs;
    s_map_t orgnames; /* credit code → name (AS_NAME_MAX + 1) */
    /* this group's log records (header, packed event), back to back; two buffers used in turn,
     * so that a pipelined caller publishes a committed group while the next one is applied */
    uint8_t *packed, *packed_buf[2];
    size_t packed_n, packed_cap, packed_caps[2];
    int packed_i;
    /* Durability (see as_ledger_sync): mdb_txn_commit syncs a group's pages but not its meta
     * page; group commits count up in `commits`, `synced` is the count whose meta page is known
     * to be on disk. */
    _Atomic uint64_t commits, synced;
    /* an fsync of the ledger failed: Linux reports a writeback error to one fsync caller only and
     * may drop the pages, so from then on nothing is reported durable (as_ledger_failed) */
    atomic_bool io_failed;
    s_coll_delta_t *colls; /* this group's collectors */
    size_t ncolls, capcolls;
    int source; /* index into colls, -1 for none */
    char source_id[64];
    as_org_lookup_cb org_cb;
    void *org_ctx;
    as_supervisor_name_cb sup_cb;
    void *sup_ctx;
    as_ledger_event_cb ev_cb; /* extension hook, see as_ledger_set_event_hook */
    void *ev_ctx;
    as_event_t scratch; /* a correction's or retraction's target */
    size_t packcap;
};

static int s_db(const char *what, int rc)
{
    AS_ERROR("ledger", "%s failed: %s", what, mdb_strerror(rc));
    return AS_E_DB;
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int s_meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    *out = rc == 0 && v.mv_size == 8 ? s_get_be(v.mv_data, 8) : 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int s_meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t value)
{
    uint8_t b[8];
    s_be(b, value, 8);
    MDB_val k = {strlen(key), (void *)key}, v = {8, b};
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

as_ledger_t *as_ledger_new(const char *dir, const as_ledger_opts_t *opts, int *err)
{
    as_ledger_t *l = calloc(1, sizeof *l);
    MDB_txn *txn = NULL;
    int rc = 0, dummy;
    if (!err)
        err = &dummy;
    if (!l) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        *err = -errno;
        AS_ERROR("ledger", "cannot create %s: %s", dir, strerror(errno));
        free(l);
        return NULL;
    }
    as_division_init();
    l->source = -1;
    l->no_sync = opts && opts->no_sync;
    l->grow_outside = opts && opts->grow_outside_groups;
    l->mapsize = opts && opts->initial_map_bytes ? opts->initial_map_bytes : MAP_DEFAULT;
    l->grow_margin = MARGIN_START;
    if (s_map_init(&l->ids, AS_ID_LEN, ID_VAL) || s_map_init(&l->cells, CELL_KEY, NM * 8) ||
        s_map_init(&l->vrefs, VREF_KEY, 8) || s_map_init(&l->blocks_c, BLOCK_KEY, BLOCK_VAL) ||
        s_map_init(&l->blocks, BLOCK_KEY, BLOCK_VAL) ||
        s_map_init(&l->orefs_c, OREF_KEY, OREF_VAL) || s_map_init(&l->orefs, OREF_KEY, OREF_VAL) ||
        s_map_init(&l->vsets, VSET_KEY, NS * 4) || s_map_init(&l->vorgs, VORG_KEY, 4) ||
        s_map_init(&l->orgnames, AS_CODE_LEN, AS_NAME_MAX + 1)) {
        rc = ENOMEM;
        goto fail;
    }
    if ((rc = mdb_env_create(&l->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(l->env, 34); /* 11 here, 23 for extensions */
    mdb_env_set_maxreaders(l->env, 254);
    if ((rc = mdb_env_set_mapsize(l->env, l->mapsize)) != 0)
        goto fail;
    /* MDB_NOTLS: read transactions are not tied to threads, so a reader may run on the thread
     * that holds the write transaction (the daemon's one loop thread). MDB_NOMETASYNC: a commit
     * syncs its pages before it writes its meta page, but does not sync the meta page; that
     * second fsync comes from as_ledger_sync (see there), on another thread in a pipeline. */
    if ((rc = mdb_env_open(l->env, dir, MDB_NOTLS | (l->no_sync ? MDB_NOSYNC : MDB_NOMETASYNC),
                           0640)) != 0)
        goto fail;
    mdb_env_set_userctx(l->env, l);
    MDB_envinfo info;
    if (mdb_env_info(l->env, &info) == 0 && info.me_mapsize > l->mapsize)
        l->mapsize = info.me_mapsize; /* a map grown in an earlier run */
    if ((rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0)
        goto fail;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"dedup", &l->db_dedup},     {"log", &l->db_log},       {"cells", &l->db_cells},
               {"vrefs", &l->db_vrefs},     {"blocks", &l->db_blocks}, {"orefs", &l->db_orefs},
               {"vsets", &l->db_vsets},     {"vorgs", &l->db_vorgs},   {"orgs", &l->db_orgs},
               {"collectors", &l->db_coll}, {"meta", &l->db_meta}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++)
        if ((rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi)) != 0)
            goto fail;
    uint64_t schema;
    if ((rc = s_meta_get(txn, l->db_meta, "schema", &schema)) != 0 ||
        (rc = s_meta_get(txn, l->db_meta, "last_seq", &l->committed_seq)) != 0)
        goto fail;
    if (schema == 0 && (rc = s_meta_put(txn, l->db_meta, "schema", SCHEMA_VERSION)) != 0)
        goto fail;
    if (schema != 0 && schema != SCHEMA_VERSION) {
        /* schema 2 stored the scope totals uncompressed; there is no converter */
        AS_ERROR("ledger", "%s holds schema %llu, not this program's %d; not opened", dir,
                 (unsigned long long)schema, SCHEMA_VERSION);
        mdb_txn_abort(txn);
        mdb_env_close(l->env);
        l->env = NULL;
        as_ledger_destroy(&l);
        *err = AS_E_DB;
        return NULL;
    }
    rc = as_ledger_txn_commit(txn);
    txn = NULL;
    if (rc)
        goto fail;
    l->last_seq = l->committed_seq;
    return l;
fail:
    if (txn)
        mdb_txn_abort(txn);
    AS_ERROR("ledger", "cannot open the ledger in %s: %s", dir, mdb_strerror(rc));
    as_ledger_destroy(&l);
    *err = rc == ENOMEM ? AS_E_NOMEM : AS_E_DB;
    return NULL;
}

void as_ledger_destroy(as_ledger_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_ledger_t *l = *self_p;
    *self_p = NULL;
    if (l->txn)
        mdb_txn_abort(l->txn);
    if (l->env) {
        if (as_ledger_sync(l) != 0)
            AS_ERROR("ledger", "closing: the last commits could not be made durable (fsync "
                               "failed); their events were not acknowledged");
        mdb_env_close(l->env);
    }
    s_map_free(&l->ids);
    s_map_free(&l->cells);
    s_map_free(&l->vrefs);
    s_map_free(&l->blocks_c);
    s_map_free(&l->blocks);
    s_map_free(&l->orefs_c);
    s_map_free(&l->orefs);
    s_map_free(&l->vsets);
    s_map_free(&l->vorgs);
    s_map_free(&l->orgnames);
    free(l->packed_buf[0]);
    free(l->packed_buf[1]);
    free(l->colls);
    free(l);
}

void as_ledger_set_org_lookup(as_ledger_t *l, as_org_lookup_cb cb, void *ctx)
{
    l->org_cb = cb;
    l->org_ctx = ctx;
}

void as_ledger_set_supervisor_name_cb(as_ledger_t *l, as_supervisor_name_cb cb, void *ctx)
{
    l->sup_cb = cb;
    l->sup_ctx = ctx;
}

/* ---- extensions: other modules' records in the same environment and transaction --------- */

MDB_env *as_ledger_env(as_ledger_t *l)
{
    return l->env;
}

MDB_txn *as_ledger_txn(as_ledger_t *l)
{
    return l->txn;
}

void as_ledger_set_event_hook(as_ledger_t *l, as_ledger_event_cb cb, void *ctx)
{
    l->ev_cb = cb;
    l->ev_ctx = ctx;
}

/* ---- map growth ---------------------------------------------------------------------------- */

/* Grows the map (no transaction open) when the data would come near its end: above 70% use, or
 * less room left than twice the largest group so far wrote or than `room`, or after a
 * MDB_MAP_FULL. */
static int s_maybe_grow(as_ledger_t *l, bool dry_run, uint64_t room)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc;
    if ((rc = mdb_env_info(l->env, &info)) != 0 || (rc = mdb_env_stat(l->env, &st)) != 0)
        return s_db("reading the map size", rc);
    uint64_t used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    uint64_t want = info.me_mapsize;
    bool must = l->must_grow;
    while (must || used * 10 > want * 7 || want - used < l->grow_margin || want - used < room) {
        want *= 2;
        must = false;
    }
    if (dry_run) {
        atomic_store(&l->grow_waiting, want != info.me_mapsize);
        return 0;
    }
    l->must_grow = false;
    atomic_store(&l->grow_waiting, false);
    if (want == info.me_mapsize)
        return 0;
    if ((rc = mdb_env_set_mapsize(l->env, want)) != 0)
        return s_db("growing the map", rc);
    AS_INFO("ledger", "map grown from %llu to %llu MiB (%llu MiB used)",
            (unsigned long long)(info.me_mapsize >> 20), (unsigned long long)(want >> 20),
            (unsigned long long)(used >> 20));
    l->mapsize = want;
    return 0;
}

static uint64_t s_used_bytes(as_ledger_t *l)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(l->env, &info) != 0 || mdb_env_stat(l->env, &st) != 0)
        return 0;
    return (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
}

/* Translates an LMDB failure inside a group; MDB_MAP_FULL makes the next begin grow the map. */
static int s_txn_err(as_ledger_t *l, const char *what, int rc)
{
    if (rc == MDB_MAP_FULL) {
        l->must_grow = true;
        AS_WARN("ledger",
                "%s: the map is full; the group is abandoned and the map will grow "
                "before the next one (resend the group)",
                what);
        return AS_E_DB;
    }
    return s_db(what, rc);
}

/* ---- writing ------------------------------------------------------------------------------- */

static void s_reset_group(as_ledger_t *l)
{
    s_map_clear(&l->ids);
    s_map_clear(&l->cells);
    s_map_clear(&l->vrefs);
    s_map_clear(&l->blocks_c);
    s_map_clear(&l->blocks);
    s_map_clear(&l->orefs_c);
    s_map_clear(&l->orefs);
    s_map_clear(&l->vsets);
    s_map_clear(&l->vorgs);
    s_map_clear(&l->orgnames);
    l->packed_n = 0; /* the buffer is chosen in as_ledger_begin */
    l->ncolls = 0;
    l->source = -1;
    l->last_seq = l->committed_seq;
    memset(&l->info, 0, sizeof l->info);
}

int as_ledger_grow(as_ledger_t *l)
{
    if (l->txn)
        return AS_E_STATE;
    if (atomic_load(&l->backups) > 0) /* a read in another thread: next time */
        return s_maybe_grow(l, true, 0);
    return s_maybe_grow(l, false, 0);
}

int as_ledger_reserve(as_ledger_t *l, uint64_t bytes)
{
    if (l->txn)
        return AS_E_STATE;
    if (atomic_load(&l->backups) > 0)
        return AS_E_STATE;
    return s_maybe_grow(l, false, bytes);
}

bool as_ledger_growth_waiting(as_ledger_t *l)
{
    return atomic_load(&l->grow_waiting);
}

int as_ledger_begin(as_ledger_t *l)
{
    if (l->txn)
        return AS_E_STATE;
    int rc = l->grow_outside ? 0 : s_maybe_grow(l, false, 0);
    if (rc)
        return rc;
    if ((rc = mdb_txn_begin(l->env, NULL, 0, &l->txn)) != 0) {
        l->txn = NULL;
        return s_db("beginning a group", rc);
    }
    s_reset_group(l);
    /* the buffer the previous group's listeners are not reading (flipped by each commit) */
    l->packed = l->packed_buf[l->packed_i];
    l->packed_cap = l->packed_caps[l->packed_i];
    l->group_ms = s_now_ms();
    if (l->source_id[0])
        as_ledger_set_source(l, l->source_id);
    return 0;
}

void as_ledger_abort(as_ledger_t *l)
{
    if (l->txn)
        mdb_txn_abort(l->txn);
    l->txn = NULL;
    s_reset_group(l);
}

static s_coll_delta_t *s_coll(as_ledger_t *l, const char *id)
{
    for (size_t i = 0; i < l->ncolls; i++)
        if (strcmp(l->colls[i].id, id) == 0)
            return &l->colls[i];
    if (l->ncolls == l->capcolls) {
        size_t cap = l->capcolls ? l->capcolls * 2 : 8;
        s_coll_delta_t *c = realloc(l->colls, cap * sizeof *c);
        if (!c)
            return NULL;
        l->colls = c;
        l->capcolls = cap;
    }
    s_coll_delta_t *c = &l->colls[l->ncolls++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    return c;
}

void as_ledger_set_source(as_ledger_t *l, const char *collector_id)
{
    l->source = -1;
    if (!collector_id || !collector_id[0]) {
        l->source_id[0] = 0;
        return;
    }
    if (collector_id != l->source_id)
        snprintf(l->source_id, sizeof l->source_id, "%s", collector_id);
    if (!l->txn)
        return; /* counted from the next begin on */
    s_coll_delta_t *c = s_coll(l, collector_id);
    if (c)
        l->source = (int)(c - l->colls);
}

int as_ledger_put_collector(as_ledger_t *l, const as_collector_state_t *st)
{
    if (!l->txn)
        return AS_E_STATE;
    s_coll_delta_t *c = s_coll(l, st->collector_id);
    if (!c)
        return AS_E_NOMEM;
    c->has_state = true;
    c->st = *st;
    c->st.collector_id[sizeof c->st.collector_id - 1] = 0;
    c->st.version[sizeof c->st.version - 1] = 0;
    return 0;
}

static void s_count(as_ledger_t *l, uint8_t code)
{
    if (code == AS_RESULT_ACCEPTED)
        l->info.accepted++;
    else if (code == AS_RESULT_DUPLICATE)
        l->info.duplicates++;
    else
        l->info.rejected++;
    if (l->source < 0)
        return;
    s_coll_delta_t *c = &l->colls[l->source];
    if (code == AS_RESULT_ACCEPTED)
        c->accepted++;
    else if (code == AS_RESULT_DUPLICATE)
        c->duplicates++;
    else
        c->rejected++;
}

void as_ledger_count_rejected(as_ledger_t *l)
{
    if (l->txn)
        s_count(l, AS_RESULT_REJECTED);
}

/* The dedup record of id: this group's first, then the ledger's. Returns 0 (found), 1 (absent)
 * or an LMDB error. */
static int s_id_get(as_ledger_t *l, const uint8_t *id, uint64_t *seq, uint8_t *state)
{
    const uint8_t *v = s_map_find(&l->ids, id);
    MDB_val k = {AS_ID_LEN, (void *)id}, dv;
    if (!v) {
        int rc = mdb_get(l->txn, l->db_dedup, &k, &dv);
        if (rc == MDB_NOTFOUND)
            return 1;
        if (rc)
            return rc;
        if (dv.mv_size != ID_VAL)
            return MDB_CORRUPTED;
        v = dv.mv_data;
    }
    *seq = s_get_be(v, 8);
    *state = v[8];
    return 0;
}

static int s_id_put(as_ledger_t *l, const uint8_t *id, uint64_t seq, uint8_t state)
{
    uint8_t *v = s_map_upsert(&l->ids, id, NULL);
    if (!v)
        return ENOMEM;
    s_be(v, seq, 8);
    v[8] = state;
    return 0;
}

/* Reads the log entry seq (header and event). Returns 0 or an LMDB error. */
static int s_log_read(MDB_txn *txn, MDB_dbi dbi, uint64_t seq, as_log_entry_t *e)
{
    uint8_t kb[8];
    s_be(kb, seq, 8);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc)
        return rc;
    const uint8_t *p = v.mv_data;
    if (v.mv_size < LOG_HDR || p[0] != 1)
        return MDB_CORRUPTED;
    e->seq = seq;
    e->kind = p[1];
    e->org.supervisor = (uint16_t)s_get_be(p + 2, 2);
    e->org.type = p[4];
    e->org.level = p[5];
    e->commit_ms = s_get_be(p + 10, 8);
    if (as_event_unpack(p + LOG_HDR, v.mv_size - LOG_HDR, &e->ev) != 0)
        return MDB_CORRUPTED;
    return 0;
}

int as_ledger_log_get(as_ledger_t *l, MDB_txn *txn, uint64_t seq, as_log_entry_t *e)
{
    return s_log_read(txn, l->db_log, seq, e);
}

/* Measures of an event in the order of the NM columns. */
static void s_measures(const as_event_t *ev, int64_t m[NM])
{
    m[0] = 1;
    m[1] = (int64_t)ev->beneficiaries;
    m[2] = (int64_t)ev->registered_poor;
    m[3] = ev->funds_fen;
    m[4] = ev->goods_fen;
    m[5] = (int64_t)ev->volunteers;
    m[6] = (int64_t)ev->volunteer_tenths;
    m[7] = (int64_t)ev->social_workers;
    m[8] = (int64_t)ev->persons_lifted;
    m[9] = (int64_t)ev->jobs;
    m[10] = (int64_t)ev->trainees;
    m[11] = ev->income_fen;
}

static void s_add_i64(uint8_t *dst, const int64_t *src, int n, int sign)
{
    int64_t v[NG];
    memcpy(v, dst, (size_t)n * 8);
    for (int i = 0; i < n; i++)
        v[i] += sign * src[i];
    memcpy(dst, v, (size_t)n * 8);
}

static uint32_t s_province_of(uint32_t county)
{
    return county / 10000 * 10000;
}

static uint32_t s_city_of(uint32_t county)
{
    uint32_t c = as_division_city_of(county);
    return c ? c : county / 100 * 100;
}

static bool s_poverty(uint32_t county)
{
    const as_division_t *d = as_division_find(county);
    return d && d->poverty;
}

static bool s_all_zero(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i])
            return false;
    return true;
}

/* The cell key's attribute tail (county … level), shared by cells and vrefs. */
static void s_attrs(uint8_t *p, const as_event_t *ev, const as_org_info_t *org)
{
    s_be(p, ev->county, 3);
    p[3] = (uint8_t)(ev->date / 100 % 100);
    p[4] = ev->area;
    p[5] = ev->project;
    p[6] = ev->group;
    p[7] = ev->funding;
    s_be(p + 8, org->supervisor, 2);
    p[10] = org->type;
    p[11] = org->level;
}

static void s_code18(uint8_t *p, const char *s)
{
    memset(p, 0, 18);
    memcpy(p, s, strnlen(s, 18));
}

/* The scope codes of a county at every level (index LV_*): the county, its city, its poverty
 * class (1 inside the former poverty counties, 2 outside), its province, city·class. */
static void s_codes(uint32_t county, uint32_t codes[NLV + 1])
{
    uint32_t cls = s_poverty(county) ? 1 : 2;
    codes[0] = 0;
    codes[LV_COUNTY] = county;
    codes[LV_CITY] = s_city_of(county);
    codes[LV_POVERTY] = cls;
    codes[LV_PROVINCE] = s_province_of(county);
    codes[LV_CITYPOV] = codes[LV_CITY] * 10 + cls;
}

/* The block slots an event counts in: everything, its area, month, group, funding, project. */
static void s_slots(const as_event_t *ev, uint8_t sl[6])
{
    unsigned month = ev->date / 100 % 100;
    sl[0] = SL_ALL;
    sl[1] = (uint8_t)(SL_AREA + (ev->area < AS_AREA_COUNT ? ev->area : 0));
    sl[2] = (uint8_t)(SL_MONTH + (month <= 12 ? month : 0));
    sl[3] = (uint8_t)(SL_GROUP + (ev->group < AS_GROUP_COUNT ? ev->group : 0));
    sl[4] = (uint8_t)(SL_FUNDING + (ev->funding < AS_FUNDING_COUNT ? ev->funding : 0));
    sl[5] = (uint8_t)(SL_PROJECT + (ev->project < AS_PROJECT_COUNT ? ev->project : 0));
}

static void s_block_key(uint8_t k[BLOCK_KEY], uint16_t year, uint8_t lv, uint16_t sup,
                        uint32_t code)
{
    s_be(k, year, 2);
    k[2] = lv;
    s_be(k + 3, sup, 2);
    s_be(k + 5, code, 3);
}

static void s_oref_key(uint8_t k[OREF_KEY], uint16_t year, uint8_t lv, uint32_t code, uint16_t sup,
                       const uint8_t org[18])
{
    s_be(k, year, 2);
    k[2] = lv;
    s_be(k + 3, code, 3);
    s_be(k + 6, sup, 2);
    memcpy(k + 8, org, 18);
}

static void s_add_i32(uint8_t *p, int slot, int d)
{
    int32_t n;
    memcpy(&n, p + slot * 4, 4);
    n += d;
    memcpy(p + slot * 4, &n, 4);
}

static int32_t s_i32(const uint8_t *p, int slot)
{
    int32_t n;
    memcpy(&n, p + slot * 4, 4);
    return n;
}

/* Adds (sign +1) or subtracts (-1) an event's contribution to this group's deltas: only its
 * finest records (cell, village references) and its organisation's name; the coarser records
 * are derived from the group's summed finest records at commit (s_spread). */
static int s_contribute(as_ledger_t *l, const as_event_t *ev, const as_org_info_t *org, int sign)
{
    int64_t m[NM];
    s_measures(ev, m);
    uint16_t year = (uint16_t)(ev->date / 10000);

    uint8_t ck[CELL_KEY];
    s_be(ck, year, 2);
    s_attrs(ck + 2, ev, org);
    s_code18(ck + 14, ev->org_code);
    uint8_t *v = s_map_upsert(&l->cells, ck, NULL);
    if (!v)
        return ENOMEM;
    s_add_i64(v, m, NM, sign);

    if (ev->village[0]) {
        uint8_t vk[VREF_KEY];
        s_be(vk, year, 2);
        memcpy(vk + 2, ck + 2, 12);
        memset(vk + 15, 0, 12);
        memcpy(vk + 15, ev->village, strnlen(ev->village, 12));
        s_code18(vk + 27, ev->org_code);
        for (int deep = 0; deep <= (ev->deep_village ? 1 : 0); deep++) {
            vk[14] = deep ? K_DEEP : K_VILLAGE;
            if (!(v = s_map_upsert(&l->vrefs, vk, NULL)))
                return ENOMEM;
            int64_t n;
            memcpy(&n, v, 8);
            n += sign;
            memcpy(v, &n, 8);
        }
    }
    if (sign > 0) {
        uint8_t ok[AS_CODE_LEN];
        s_code18(ok, ev->org_code);
        if (!(v = s_map_upsert(&l->orgnames, ok, NULL)))
            return ENOMEM;
        size_t n = strnlen(ev->org_name, AS_NAME_MAX); /* what snprintf kept, without it */
        memcpy(v, ev->org_name, n);
        v[n] = 0;
    }
    return 0;
}

/* The block slots of a cell key's attribute tail (see s_attrs). */
static void s_slots_of(const uint8_t *a, uint8_t sl[6])
{
    as_event_t ev;
    ev.date = (uint32_t)a[3] * 100;
    ev.area = a[4];
    ev.project = a[5];
    ev.group = a[6];
    ev.funding = a[7];
    s_slots(&ev, sl);
}

/* A summed cell delta d (NM columns; d[0] is its live events) into the county blocks and
 * county org rows of supervisor scope sup. */
static int s_spread_cell(as_ledger_t *l, const uint8_t *ck, uint16_t sup, const int64_t *d,
                         const uint8_t sl[6])
{
    uint16_t year = (uint16_t)s_get_be(ck, 2);
    uint32_t county = (uint32_t)s_get_be(ck + 2, 3);
    uint8_t bk[BLOCK_KEY], ok[OREF_KEY], *v;
    s_block_key(bk, year, LV_COUNTY, sup, county);
    if (!(v = s_map_upsert(&l->blocks_c, bk, NULL)))
        return ENOMEM;
    for (int i = 0; i < 6; i++)
        s_add_i64(v + (size_t)sl[i] * NG * 8, d, NM, 1);
    s_oref_key(ok, year, LV_COUNTY, county, sup, ck + 14);
    if (!(v = s_map_upsert(&l->orefs_c, ok, NULL)))
        return ENOMEM;
    s_add_i64(v, d, NM, 1);
    for (int i = 0; i < 6; i++)
        s_add_i32(v + NG * 8, sl[i], (int)d[0]);
    return 0;
}

/* A summed village reference delta n into the village sets and organisation-village references
 * of supervisor scope sup. */
static int s_spread_vref(as_ledger_t *l, const uint8_t *vk, uint16_t sup, int n,
                         const uint8_t sl[6])
{
    uint8_t sk[VSET_KEY], wk[VORG_KEY], *v;
    memcpy(sk, vk, 5);
    s_be(sk + 5, sup, 2);
    memcpy(sk + 7, vk + 15, 12);
    sk[19] = vk[14];
    memcpy(wk, vk, 5);
    memcpy(wk + 5, vk + 27, 18);
    memcpy(wk + 23, vk + 15, 12);
    wk[35] = vk[14];
    s_be(wk + 36, sup, 2);
    if (!(v = s_map_upsert(&l->vsets, sk, NULL)))
        return ENOMEM;
    for (int i = 0; i < 6; i++)
        s_add_i32(v, sl[i], n);
    if (!(v = s_map_upsert(&l->vorgs, wk, NULL)))
        return ENOMEM;
    s_add_i32(v, 0, n);
    return 0;
}

/* Derives the group's county-level deltas from its summed finest records, once per distinct
 * key rather than once per event: the county blocks and org rows from the cells, the village
 * sets and organisation-village references from the village references. */
static int s_spread_finest(as_ledger_t *l)
{
    int rc = 0;
    for (size_t j = 0; j < l->cells.n && rc == 0; j++) {
        const uint8_t *ck = s_map_key(&l->cells, l->cells.order[j]);
        int64_t d[NM];
        memcpy(d, s_map_val(&l->cells, l->cells.order[j]), sizeof d);
        if (s_all_zero((const uint8_t *)d, sizeof d))
            continue;
        uint8_t sl[6];
        s_slots_of(ck + 2, sl);
        uint16_t sup = (uint16_t)s_get_be(ck + 10, 2);
        rc = s_spread_cell(l, ck, SUP_ANY, d, sl);
        if (rc == 0 && sup != SUP_ANY)
            rc = s_spread_cell(l, ck, sup, d, sl);
    }
    for (size_t j = 0; j < l->vrefs.n && rc == 0; j++) {
        const uint8_t *vk = s_map_key(&l->vrefs, l->vrefs.order[j]);
        int64_t n;
        memcpy(&n, s_map_val(&l->vrefs, l->vrefs.order[j]), 8);
        if (!n)
            continue;
        uint8_t sl[6];
        s_slots_of(vk + 2, sl);
        uint16_t sup = (uint16_t)s_get_be(vk + 10, 2);
        rc = s_spread_vref(l, vk, SUP_ANY, (int)n, sl);
        if (rc == 0 && sup != SUP_ANY)
            rc = s_spread_vref(l, vk, sup, (int)n, sl);
    }
    return rc;
}

/* Adds the columns of a county record that sum over counties (the additive measures, and the
 * distinct villages: a village lies in one county) to a coarser record. Distinct organisations
 * and counties do not sum; they move on transitions at the flushes. */
static void s_add_summable(uint8_t *dst, const uint8_t *src)
{
    int64_t d[NG], v[NG];
    memcpy(d, src, sizeof d);
    if (s_all_zero((const uint8_t *)d, sizeof d))
        return;
    memcpy(v, dst, sizeof v);
    for (int i = 0; i < NM + 3; i++)
        if (i != NM)
            v[i] += d[i];
    memcpy(dst, v, sizeof v);
}

/* The coarser levels' deltas from the county ones, once per county record (after the village
 * flushes, whose transitions move the county records' villages only). */
static int s_spread_coarse(as_ledger_t *l)
{
    int rc = 0;
    for (size_t j = 0; j < l->blocks_c.n && rc == 0; j++) {
        const uint8_t *bk = s_map_key(&l->blocks_c, l->blocks_c.order[j]);
        const uint8_t *src = s_map_val(&l->blocks_c, l->blocks_c.order[j]);
        uint32_t codes[NLV + 1];
        s_codes((uint32_t)s_get_be(bk + 5, 3), codes);
        for (uint8_t lv = LV_CITY; lv <= NLV && rc == 0; lv++) {
            uint8_t k[BLOCK_KEY], *v;
            s_block_key(k, (uint16_t)s_get_be(bk, 2), lv, (uint16_t)s_get_be(bk + 3, 2), codes[lv]);
            if (!(v = s_map_upsert(&l->blocks, k, NULL))) {
                rc = ENOMEM;
                break;
            }
            for (int s = 0; s < NS; s++)
                s_add_summable(v + (size_t)s * NG * 8, src + (size_t)s * NG * 8);
        }
    }
    for (size_t j = 0; j < l->orefs_c.n && rc == 0; j++) {
        const uint8_t *ok = s_map_key(&l->orefs_c, l->orefs_c.order[j]);
        const uint8_t *src = s_map_val(&l->orefs_c, l->orefs_c.order[j]);
        uint32_t codes[NLV + 1];
        s_codes((uint32_t)s_get_be(ok + 3, 3), codes);
        for (uint8_t lv = LV_CITY; lv <= NLV; lv++) {
            uint8_t k[OREF_KEY], *v;
            s_oref_key(k, (uint16_t)s_get_be(ok, 2), lv, codes[lv], (uint16_t)s_get_be(ok + 6, 2),
                       ok + 8);
            if (!(v = s_map_upsert(&l->orefs, k, NULL))) {
                rc = ENOMEM;
                break;
            }
            s_add_summable(v, src);
            for (int s = 0; s < NS; s++)
                s_add_i32(v + NG * 8, s, s_i32(src + NG * 8, s));
        }
    }
    return rc;
}

/* Appends ev to the log as seq. */
static int s_log_put(as_ledger_t *l, uint64_t seq, uint8_t kind, const as_org_info_t *org,
                     const as_event_t *ev, const uint8_t *pb, size_t pb_n, size_t *pb_off,
                     size_t *pb_len)
{
    /* packed once, straight into the group's copy for the listeners (header first, as the log
     * stores it); LMDB copies it into the log */
    if (l->packed_n + LOG_HDR + AS_EVENT_PACKED_MAX > l->packed_cap) {
        size_t cap = l->packed_cap ? l->packed_cap : 1 << 20;
        while (cap < l->packed_n + LOG_HDR + AS_EVENT_PACKED_MAX)
            cap *= 2;
        uint8_t *b = cap <= UINT32_MAX ? realloc(l->packed, cap) : NULL;
        if (!b)
            return ENOMEM;
        l->packed = l->packed_buf[l->packed_i] = b;
        l->packed_cap = l->packed_caps[l->packed_i] = cap;
    }
    uint8_t *p = l->packed + l->packed_n;
    p[0] = 1;
    p[1] = kind;
    s_be(p + 2, org->supervisor, 2);
    p[4] = org->type;
    p[5] = org->level;
    s_be(p + 6, ev->county, 4);
    s_be(p + 10, l->group_ms, 8);
    size_t n;
    if (pb && pb_n <= AS_EVENT_PACKED_MAX) /* packed by the caller, flags as they are now */
        memcpy(p + LOG_HDR, pb, n = pb_n);
    else
        n = as_event_pack(ev, p + LOG_HDR);
    uint8_t kb[8];
    s_be(kb, seq, 8);
    MDB_val k = {8, kb}, v = {LOG_HDR + n, p};
    int rc = mdb_put(l->txn, l->db_log, &k, &v, MDB_APPEND);
    if (rc)
        return rc;
    *pb_off = l->packed_n + LOG_HDR;
    *pb_len = n;
    l->packed_n += LOG_HDR + n;
    return 0;
}

const uint8_t *as_ledger_packed(const as_ledger_t *l)
{
    return l->packed;
}

static void s_reject(as_apply_result_t *res, uint8_t why, const char *reason)
{
    res->code = AS_RESULT_REJECTED;
    res->reject = why;
    snprintf(res->reason, sizeof res->reason, "%s", reason);
}

int as_ledger_apply(as_ledger_t *l, as_event_t *ev, as_apply_result_t *res)
{
    return as_ledger_apply_packed(l, ev, NULL, 0, res);
}

int as_ledger_apply_packed(as_ledger_t *l, as_event_t *ev, const uint8_t *pk, size_t pk_len,
                           as_apply_result_t *res)
{
    uint32_t flags0 = ev->flags;
    memset(res, 0, sizeof *res);
    if (!l->txn)
        return AS_E_STATE;
    uint64_t seq;
    uint8_t state;
    int rc = s_id_get(l, ev->id, &seq, &state);
    if (rc < 0 || rc > 1)
        return s_txn_err(l, "looking up an event id", rc);
    if (rc == 0) {
        res->code = AS_RESULT_DUPLICATE;
        s_count(l, res->code);
        return 0;
    }
    as_org_info_t org = {0, 0, 0};
    if (l->org_cb && l->org_cb(l->org_ctx, ev->org_code, &org) != 0)
        memset(&org, 0, sizeof org);

    uint8_t kind = AS_LOG_NEW;
    bool target_live = false;
    uint64_t tseq = 0;
    if (ev->has_correction) {
        uint8_t tstate = 0;
        rc = s_id_get(l, ev->correction_of, &tseq, &tstate);
        if (rc < 0 || rc > 1)
            return s_txn_err(l, "looking up a correction's target", rc);
        target_live = rc == 0 && tstate == ST_LIVE;
    }
    if (ev->has_correction && ev->retract && !target_live) {
        s_reject(res, AS_REJECT_RETRACT_NOT_LIVE,
                 "撤回的事件不存在或已被撤回、更正 / the retracted event is unknown, already "
                 "retracted or replaced");
        s_count(l, res->code);
        return 0;
    }
    as_log_entry_t *t = NULL;
    if (target_live) {
        t = (as_log_entry_t *)malloc(sizeof *t);
        if (!t)
            return AS_E_NOMEM;
        rc = s_log_read(l->txn, l->db_log, tseq, t);
        if (rc == 0)
            rc = s_contribute(l, &t->ev, &t->org, -1);
        if (rc == 0)
            rc = s_id_put(l, ev->correction_of, tseq, ev->retract ? ST_RETRACTED : ST_REPLACED);
        if (rc) {
            free(t);
            return rc == ENOMEM ? AS_E_NOMEM : s_txn_err(l, "reading a correction's target", rc);
        }
        kind = ev->retract ? AS_LOG_RETRACTION : AS_LOG_CORRECTION;
    } else if (ev->has_correction) {
        ev->flags |= AS_FLAG_CORRECTION_TARGET_MISSING;
    }
    rc = 0;
    if (l->ev_cb) {
        as_ledger_event_t he = {l->last_seq + 1, kind, &org, t};
        rc = l->ev_cb(l->ev_ctx, l->txn, ev, &he);
    }
    free(t);
    if (rc)
        return rc < 0 ? rc : s_txn_err(l, "an extension's records", rc);
    if (kind != AS_LOG_RETRACTION && (rc = s_contribute(l, ev, &org, +1)) != 0)
        return AS_E_NOMEM;
    seq = l->last_seq + 1;
    size_t pb_off, pb_len;
    if (ev->flags != flags0) /* the packed copy no longer says what the log must hold */
        pk = NULL;
    if ((rc = s_log_put(l, seq, kind, &org, ev, pk, pk_len, &pb_off, &pb_len)) != 0)
        return rc == ENOMEM ? AS_E_NOMEM : s_txn_err(l, "appending to the event log", rc);
    if (s_id_put(l, ev->id, seq, kind == AS_LOG_RETRACTION ? ST_RETRACTION : ST_LIVE) != 0)
        return AS_E_NOMEM;
    l->last_seq = seq;
    if (!l->info.first_seq)
        l->info.first_seq = seq;
    res->code = AS_RESULT_ACCEPTED;
    res->seq = seq;
    res->pb_off = (uint32_t)pb_off;
    res->pb_len = (uint32_t)pb_len;
    s_count(l, res->code);
    return 0;
}

/* ---- commit: write each summed key once, in key order ------------------------------------ */

static int s_flush_ids(as_ledger_t *l)
{
    s_map_sort(&l->ids);
    MDB_cursor *c;
    int rc = mdb_cursor_open(l->txn, l->db_dedup, &c);
    if (rc)
        return rc;
    for (size_t j = 0; rc == 0 && j < l->ids.n; j++) {
        MDB_val k = {AS_ID_LEN, s_map_key(&l->ids, l->ids.order[j])};
        MDB_val v = {ID_VAL, s_map_val(&l->ids, l->ids.order[j])};
        rc = mdb_cursor_put(c, &k, &v, 0);
    }
    mdb_cursor_close(c);
    return rc;
}

/* Adds the summed i64 deltas of m to the stored records; a record whose first column (its count
 * of live events) reaches 0 is deleted. */
static int s_flush_sum(as_ledger_t *l, s_map_t *m, MDB_dbi dbi, int ncols)
{
    s_map_sort(m);
    MDB_cursor *c;
    int rc = mdb_cursor_open(l->txn, dbi, &c);
    if (rc)
        return rc;
    size_t vbytes = (size_t)ncols * 8;
    for (size_t j = 0; j < m->n; j++) {
        uint8_t *key = s_map_key(m, m->order[j]), *delta = s_map_val(m, m->order[j]);
        if (s_all_zero(delta, vbytes))
            continue;
        int64_t cur[NG] = {0};
        MDB_val k = {m->klen, key}, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
        bool had = rc == 0;
        if (rc == 0 && v.mv_size == vbytes)
            memcpy(cur, v.mv_data, vbytes);
        else if (rc == 0 || rc != MDB_NOTFOUND)
            break;
        int64_t d[NG];
        memcpy(d, delta, vbytes); /* slots are not 8-aligned for every key length */
        s_add_i64((uint8_t *)cur, d, ncols, 1);
        if (cur[0] <= 0) {
            if (cur[0] < 0)
                AS_ERROR("ledger", "a count went below zero (%lld); clamped", (long long)cur[0]);
            rc = had ? mdb_cursor_del(c, 0) : 0;
        } else {
            MDB_val nv = {vbytes, cur};
            k.mv_size = m->klen;
            k.mv_data = key;
            rc = mdb_cursor_put(c, &k, &nv, 0);
        }
        if (rc)
            break;
    }
    mdb_cursor_close(c);
    return rc;
}

static int s_bump(s_map_t *m, const uint8_t *key, size_t off, int dir)
{
    uint8_t *v = s_map_upsert(m, key, NULL);
    if (!v)
        return ENOMEM;
    int64_t n;
    memcpy(&n, v + off, 8);
    n += dir;
    memcpy(v + off, &n, 8);
    return 0;
}

/* Moves distinct column col of slot `slot` in the blocks of every level above a county (from
 * lv_from) by dir. */
static int s_bump_blocks(as_ledger_t *l, uint16_t year, uint16_t sup, uint32_t county,
                         uint8_t lv_from, int slot, int col, int dir)
{
    uint32_t codes[NLV + 1];
    s_codes(county, codes);
    for (uint8_t lv = lv_from; lv <= NLV; lv++) {
        uint8_t bk[BLOCK_KEY];
        s_block_key(bk, year, lv, sup, codes[lv]);
        int rc = s_bump(lv == LV_COUNTY ? &l->blocks_c : &l->blocks, bk,
                        ((size_t)slot * NG + (size_t)col) * 8, dir);
        if (rc)
            return rc;
    }
    return 0;
}

/* A village set's slot went 0 → n (dir +1) or n → 0: the slot's villages in its county block
 * (s_spread_coarse carries them to the coarser levels). */
static int s_vset_transition(as_ledger_t *l, const uint8_t *k, int slot, int dir)
{
    uint8_t bk[BLOCK_KEY];
    s_block_key(bk, (uint16_t)s_get_be(k, 2), LV_COUNTY, (uint16_t)s_get_be(k + 5, 2),
                (uint32_t)s_get_be(k + 2, 3));
    return s_bump(&l->blocks_c, bk, ((size_t)slot * NG + (k[19] == K_DEEP ? NM + 2 : NM + 1)) * 8,
                  dir);
}

/* An organisation's first (last) live event in a village under supervisor scope sup (k: a
 * stored record key): its county org row's villages move (s_spread_coarse carries them to the
 * coarser levels). */
static int s_vorg_transition(as_ledger_t *l, const uint8_t *k, uint16_t sup, int dir)
{
    uint8_t ok[OREF_KEY];
    s_oref_key(ok, (uint16_t)s_get_be(k, 2), LV_COUNTY, (uint32_t)s_get_be(k + 2, 3), sup, k + 5);
    return s_bump(&l->orefs_c, ok, (size_t)(k[35] == K_DEEP ? NM + 2 : NM + 1) * 8, dir);
}

/* Adds the group's organisation-village deltas to the stored records: one record per
 * organisation, village and kind holds a live-event count per supervisor scope (SUP_ANY and the
 * organisation's supervisors), so a group writes half as many entries as with a record per
 * scope. The map's keys end with the scope, so one record's scopes are adjacent once sorted. */
static int s_flush_vorgs(as_ledger_t *l)
{
    s_map_t *m = &l->vorgs;
    s_map_sort(m);
    MDB_cursor *c;
    int rc = mdb_cursor_open(l->txn, l->db_vorgs, &c);
    if (rc)
        return rc;
    uint8_t val[6 * 64];
    for (size_t j = 0, e; j < m->n && rc == 0; j = e) {
        const uint8_t *key = s_map_key(m, m->order[j]);
        for (e = j + 1; e < m->n && memcmp(s_map_key(m, m->order[e]), key, VORG_REC) == 0; e++)
            ;
        MDB_val k = {VORG_REC, (void *)key}, v;
        size_t n = 0;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
        bool had = rc == 0, changed = false;
        if (rc == 0 && (v.mv_size % 6 || v.mv_size > sizeof val))
            rc = MDB_CORRUPTED;
        else if (rc == 0)
            memcpy(val, v.mv_data, v.mv_size), n = v.mv_size / 6;
        else if (rc == MDB_NOTFOUND)
            rc = 0;
        for (size_t i = j; i < e && rc == 0; i++) {
            int32_t d = s_i32(s_map_val(m, m->order[i]), 0);
            if (!d)
                continue;
            changed = true;
            uint16_t sup = (uint16_t)s_get_be(s_map_key(m, m->order[i]) + VORG_REC, 2);
            size_t p = 0;
            while (p < n && s_get_be(val + p * 6, 2) != sup)
                p++;
            if (p == n) {
                if (n == sizeof val / 6) {
                    rc = MDB_CORRUPTED;
                    break;
                }
                s_be(val + n * 6, sup, 2);
                s_be(val + n * 6 + 2, 0, 4);
                n++;
            }
            int32_t before = (int32_t)s_get_be(val + p * 6 + 2, 4), after = before + d;
            if (after < 0)
                AS_ERROR("ledger", "a reference count went below zero (%d)", (int)after);
            s_be(val + p * 6 + 2, (uint32_t)after, 4);
            if ((before > 0) != (after > 0))
                rc = s_vorg_transition(l, key, sup, after > 0 ? +1 : -1);
        }
        if (rc || !changed)
            continue;
        size_t w = 0;
        for (size_t p = 0; p < n; p++)
            if ((int32_t)s_get_be(val + p * 6 + 2, 4) > 0)
                memmove(val + 6 * w++, val + p * 6, 6);
        k.mv_size = VORG_REC;
        k.mv_data = (void *)key;
        if (w == 0) {
            rc = had ? mdb_cursor_del(c, 0) : 0;
        } else {
            MDB_val nv = {w * 6, val};
            rc = mdb_cursor_put(c, &k, &nv, 0);
        }
    }
    mdb_cursor_close(c);
    return rc;
}

/* An organisation's slot in a scope went 0 ↔ n: the block slot's organisations move; a county
 * org row that appears or leaves moves the counties of its rows at the coarser levels. */
static int s_oref_transition(as_ledger_t *l, const uint8_t *k, int slot, int dir)
{
    uint16_t year = (uint16_t)s_get_be(k, 2), sup = (uint16_t)s_get_be(k + 6, 2);
    uint32_t code = (uint32_t)s_get_be(k + 3, 3);
    uint8_t bk[BLOCK_KEY];
    s_block_key(bk, year, k[2], sup, code);
    int rc = s_bump(k[2] == LV_COUNTY ? &l->blocks_c : &l->blocks, bk, ((size_t)slot * NG + NM) * 8,
                    dir);
    if (rc || k[2] != LV_COUNTY || slot != SL_ALL)
        return rc;
    uint32_t codes[NLV + 1];
    s_codes(code, codes);
    for (uint8_t lv = LV_CITY; lv <= NLV; lv++) {
        uint8_t ok[OREF_KEY];
        s_oref_key(ok, year, lv, codes[lv], sup, k + 8);
        if ((rc = s_bump(&l->orefs, ok, (size_t)(NM + 3) * 8, dir)) != 0)
            return rc;
    }
    return 0;
}

/* An org row is one organisation; a county's row one county. */
static void s_oref_fix(const uint8_t *k, int64_t *meas, bool live)
{
    meas[NM] = live;
    if (k[2] == LV_COUNTY)
        meas[NM + 3] = live;
}

/* Reference records (org rows, village sets, organisation-village references) are stored
 * compact: a bitmask of the non-zero columns (one bit per column, little-endian bytes), then each
 * of those columns as a zigzag LEB128 varint. Most of a record's per-slot counters are 0. */
#define REC_MAX (((NG + NS) + 7) / 8 + (NG + NS) * 10)

static size_t s_rec_encode(uint8_t *p, const int64_t *cols, int n)
{
    size_t mb = ((size_t)n + 7) / 8, o = mb;
    memset(p, 0, mb);
    for (int i = 0; i < n; i++) {
        if (!cols[i])
            continue;
        p[i / 8] |= (uint8_t)(1u << (i % 8));
        uint64_t z = ((uint64_t)cols[i] << 1) ^ (uint64_t)(cols[i] >> 63);
        for (; z >= 0x80; z >>= 7)
            p[o++] = (uint8_t)(z | 0x80);
        p[o++] = (uint8_t)z;
    }
    return o;
}

static int s_rec_decode(const uint8_t *p, size_t len, int64_t *cols, int n)
{
    size_t mb = ((size_t)n + 7) / 8, o = mb;
    if (len < mb)
        return MDB_CORRUPTED;
    for (int i = 0; i < n; i++) {
        cols[i] = 0;
        if (!(p[i / 8] >> (i % 8) & 1))
            continue;
        uint64_t z = 0;
        for (int sh = 0;; sh += 7) {
            if (o == len || sh > 63)
                return MDB_CORRUPTED;
            uint8_t b = p[o++];
            z |= (uint64_t)(b & 0x7f) << sh;
            if (!(b & 0x80))
                break;
        }
        cols[i] = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    }
    return o == len ? 0 : MDB_CORRUPTED;
}

/* Adds the summed deltas of reference records — nm i64 measures, then nc i32 live-event
 * counters per slot (counter 0: the record's live events) — to the stored ones; a record
 * whose counter 0 reaches 0 is deleted. on_slot is told each counter's 0 → n and n → 0. */
static int s_flush_refs(as_ledger_t *l, s_map_t *m, MDB_dbi dbi, int nm, int nc,
                        int (*on_slot)(as_ledger_t *, const uint8_t *key, int slot, int dir),
                        void (*fix)(const uint8_t *key, int64_t *meas, bool live))
{
    s_map_sort(m);
    MDB_cursor *c;
    int rc = mdb_cursor_open(l->txn, dbi, &c);
    if (rc)
        return rc;
    size_t vbytes = (size_t)nm * 8 + (size_t)nc * 4;
    uint8_t cur[OREF_VAL], enc[REC_MAX];
    for (size_t j = 0; j < m->n && rc == 0; j++) {
        uint8_t *key = s_map_key(m, m->order[j]), *delta = s_map_val(m, m->order[j]);
        if (s_all_zero(delta, vbytes))
            continue;
        MDB_val k = {m->klen, key}, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
        bool had = rc == 0;
        int64_t cols[NG + NS];
        if (rc == 0 && (rc = s_rec_decode(v.mv_data, v.mv_size, cols, nm + nc)) == 0) {
            memcpy(cur, cols, (size_t)nm * 8);
            for (int s = 0; s < nc; s++) {
                int32_t n32 = (int32_t)cols[nm + s];
                memcpy(cur + nm * 8 + s * 4, &n32, 4);
            }
        } else if (rc == MDB_NOTFOUND) {
            memset(cur, 0, vbytes);
        } else {
            break;
        }
        rc = 0;
        int64_t meas[NG], dm[NG];
        memcpy(meas, cur, (size_t)nm * 8);
        memcpy(dm, delta, (size_t)nm * 8);
        for (int i = 0; i < nm; i++)
            meas[i] += dm[i];
        for (int s = 0; s < nc && rc == 0; s++) {
            int32_t d = s_i32(delta + nm * 8, s);
            if (!d)
                continue;
            int32_t before = s_i32(cur + nm * 8, s);
            s_add_i32(cur + nm * 8, s, d);
            int32_t after = before + d;
            if (after < 0)
                AS_ERROR("ledger", "a reference count went below zero (%d)", (int)after);
            if (on_slot && (before > 0) != (after > 0))
                rc = on_slot(l, key, s, after > 0 ? +1 : -1);
        }
        if (rc)
            break;
        bool live = s_i32(cur + nm * 8, 0) > 0;
        if (fix)
            fix(key, meas, live);
        memcpy(cur, meas, (size_t)nm * 8);
        k.mv_size = m->klen;
        k.mv_data = key;
        if (!live) {
            rc = had ? mdb_cursor_del(c, 0) : 0;
        } else {
            memcpy(cols, cur, (size_t)nm * 8);
            for (int s = 0; s < nc; s++)
                cols[nm + s] = s_i32(cur + nm * 8, s);
            MDB_val nv = {s_rec_encode(enc, cols, nm + nc), enc};
            rc = mdb_cursor_put(c, &k, &nv, 0);
        }
    }
    mdb_cursor_close(c);
    return rc;
}

/* A stored block is sparse and compact, so that it stays well under LMDB's overflow size and a
 * commit dirties few pages: per live slot, the slot byte, a 16-bit little-endian mask of its
 * non-zero columns, then each of those columns as a zigzag LEB128 varint. */
#define BLOCK_ENC_MAX ((size_t)NS * (3 + NG * 10))

static size_t s_block_encode_slot(uint8_t *p, int slot, const int64_t *cols)
{
    size_t n = 3;
    unsigned mask = 0;
    p[0] = (uint8_t)slot;
    for (int i = 0; i < NG; i++) {
        if (!cols[i])
            continue;
        mask |= 1u << i;
        uint64_t z = ((uint64_t)cols[i] << 1) ^ (uint64_t)(cols[i] >> 63);
        for (; z >= 0x80; z >>= 7)
            p[n++] = (uint8_t)(z | 0x80);
        p[n++] = (uint8_t)z;
    }
    p[1] = (uint8_t)mask;
    p[2] = (uint8_t)(mask >> 8);
    return n;
}

/* One stored block entry at *p (slot, column mask, zigzag varints) into cols[0..NG) (columns
 * absent 0); *p moves past it. */
static int s_block_entry(const uint8_t **p, const uint8_t *end, int64_t *cols)
{
    const uint8_t *q = *p;
    if (end - q < 3 || q[0] >= NS)
        return MDB_CORRUPTED;
    unsigned mask = q[1] | (unsigned)q[2] << 8;
    q += 3;
    for (int i = 0; i < NG; i++) {
        cols[i] = 0;
        if (!(mask >> i & 1))
            continue;
        uint64_t z = 0;
        for (int sh = 0;; sh += 7) {
            if (q == end || sh > 63)
                return MDB_CORRUPTED;
            uint8_t b = *q++;
            z |= (uint64_t)(b & 0x7f) << sh;
            if (!(b & 0x80))
                break;
        }
        cols[i] = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    }
    *p = q;
    return 0;
}

/* Only the "everything" slot (SL_ALL, stored first when present) of a stored block into
 * dense[0..NG): a by-county or by-supervisor listing reads nothing else of each block, and
 * decoding whole blocks (≈ 40 slots) was most of the time of /api/totals by county. */
static int s_block_decode_all(const MDB_val *v, int64_t *dense)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if (p == end || p[0] != SL_ALL) {
        memset(dense, 0, NG * sizeof *dense);
        return 0;
    }
    return s_block_entry(&p, end, dense);
}

/* A stored block (sparse) into NS × NG dense columns. */
static int s_block_decode(const MDB_val *v, int64_t *dense)
{
    memset(dense, 0, BLOCK_VAL);
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    while (p < end) {
        int rc = p[0] < NS ? s_block_entry(&p, end, dense + (size_t)p[0] * NG) : MDB_CORRUPTED;
        if (rc)
            return rc;
    }
    return 0;
}

/* Adds the summed block deltas of m to the stored blocks. A county block slot is one county
 * while it holds live events; its 0 ↔ n moves the counties of the coarser levels' slot. */
static int s_flush_blocks(as_ledger_t *l, s_map_t *m, bool counties)
{
    s_map_sort(m);
    MDB_cursor *c;
    int rc = mdb_cursor_open(l->txn, l->db_blocks, &c);
    if (rc)
        return rc;
    int64_t *cur = malloc(BLOCK_VAL), *d = malloc(BLOCK_VAL);
    uint8_t *enc = malloc(BLOCK_ENC_MAX);
    if (!cur || !d || !enc)
        rc = ENOMEM;
    for (size_t j = 0; j < m->n && rc == 0; j++) {
        uint8_t *key = s_map_key(m, m->order[j]);
        memcpy(d, s_map_val(m, m->order[j]), BLOCK_VAL);
        MDB_val k = {BLOCK_KEY, key}, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
        bool had = rc == 0;
        if (rc == 0)
            rc = s_block_decode(&v, cur);
        else if (rc == MDB_NOTFOUND)
            rc = 0, memset(cur, 0, BLOCK_VAL);
        if (rc)
            break;
        size_t n = 0;
        bool changed = false;
        for (int s = 0; s < NS && rc == 0; s++) {
            int64_t *cs = cur + (size_t)s * NG, *ds = d + (size_t)s * NG;
            if (!s_all_zero((const uint8_t *)ds, NG * 8)) {
                changed = true;
                bool before = cs[0] > 0;
                for (int i = 0; i < NG; i++)
                    cs[i] += ds[i];
                if (cs[0] < 0)
                    AS_ERROR("ledger", "a count went below zero (%lld)", (long long)cs[0]);
                if (counties) {
                    cs[NM + 3] = cs[0] > 0;
                    if (before != (cs[0] > 0))
                        rc = s_bump_blocks(
                            l, (uint16_t)s_get_be(key, 2), (uint16_t)s_get_be(key + 3, 2),
                            (uint32_t)s_get_be(key + 5, 3), LV_CITY, s, NM + 3, before ? -1 : +1);
                }
            }
            if (cs[0] > 0)
                n += s_block_encode_slot(enc + n, s, cs);
        }
        if (rc || !changed)
            continue;
        k.mv_size = BLOCK_KEY;
        k.mv_data = key;
        if (n == 0) {
            rc = had ? mdb_cursor_del(c, 0) : 0;
        } else {
            MDB_val nv = {n, enc};
            rc = mdb_cursor_put(c, &k, &nv, 0);
        }
    }
    mdb_cursor_close(c);
    free(cur);
    free(d);
    free(enc);
    return rc;
}

static int s_flush_names(as_ledger_t *l)
{
    for (size_t j = 0; j < l->orgnames.n; j++) {
        uint8_t *key = s_map_key(&l->orgnames, l->orgnames.order[j]);
        const char *name = (const char *)s_map_val(&l->orgnames, l->orgnames.order[j]);
        MDB_val k = {AS_CODE_LEN, key}, v;
        int rc = mdb_get(l->txn, l->db_orgs, &k, &v);
        size_t nl = strlen(name);
        if (rc == 0 && v.mv_size == nl && memcmp(v.mv_data, name, nl) == 0)
            continue;
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        v.mv_size = nl;
        v.mv_data = (void *)name;
        if ((rc = mdb_put(l->txn, l->db_orgs, &k, &v, 0)) != 0)
            return rc;
    }
    return 0;
}

static int s_flush_collectors(as_ledger_t *l)
{
    for (size_t i = 0; i < l->ncolls; i++) {
        s_coll_delta_t *d = &l->colls[i];
        if (!d->has_state && !d->accepted && !d->duplicates && !d->rejected)
            continue;
        as_collector_info_t ci;
        memset(&ci, 0, sizeof ci);
        MDB_val k = {strlen(d->id), d->id}, v;
        int rc = mdb_get(l->txn, l->db_coll, &k, &v);
        if (rc == 0 && v.mv_size == sizeof ci)
            memcpy(&ci, v.mv_data, sizeof ci);
        else if (rc && rc != MDB_NOTFOUND)
            return rc;
        if (d->has_state)
            ci.st = d->st;
        snprintf(ci.st.collector_id, sizeof ci.st.collector_id, "%s", d->id);
        ci.accepted += d->accepted;
        ci.duplicates += d->duplicates;
        ci.rejected += d->rejected;
        v.mv_size = sizeof ci;
        v.mv_data = &ci;
        if ((rc = mdb_put(l->txn, l->db_coll, &k, &v, 0)) != 0)
            return rc;
    }
    return 0;
}

/* Bytes this thread has written so far (wchar of /proc/thread-self/io), 0 when unknown: around
 * mdb_txn_commit it tells the group's page footprint (LMDB writes each dirty page once there). */
static uint64_t s_thread_wchar(void)
{
    FILE *f = fopen("/proc/thread-self/io", "r");
    if (!f)
        return 0;
    char line[96];
    unsigned long long v = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %llu", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* Writes the group and commits it: its pages synced, its meta page written but not synced
 * (as_ledger_sync explains why). */
static int s_commit(as_ledger_t *l, as_commit_info_t *info)
{
    if (!l->txn)
        return AS_E_STATE;
    uint64_t used_before = s_used_bytes(l);
    int rc;
    const char *what = "writing dedup records";
    if ((rc = s_flush_ids(l)) != 0)
        goto fail;
    what = "writing totals";
    if ((rc = s_flush_sum(l, &l->cells, l->db_cells, NM)) != 0)
        goto fail;
    what = "writing village references";
    if ((rc = s_flush_sum(l, &l->vrefs, l->db_vrefs, 1)) != 0)
        goto fail;
    what = "summing scope totals";
    if ((rc = s_spread_finest(l)) != 0)
        goto fail;
    /* finer records first: their 0 ↔ n transitions add to the coarser ones' deltas */
    what = "writing village sets";
    if ((rc = s_flush_refs(l, &l->vsets, l->db_vsets, 0, NS, s_vset_transition, NULL)) != 0 ||
        (rc = s_flush_vorgs(l)) != 0)
        goto fail;
    what = "summing scope totals";
    if ((rc = s_spread_coarse(l)) != 0)
        goto fail;
    what = "writing organisation rows";
    if ((rc = s_flush_refs(l, &l->orefs_c, l->db_orefs, NG, NS, s_oref_transition, s_oref_fix)) !=
            0 ||
        (rc = s_flush_refs(l, &l->orefs, l->db_orefs, NG, NS, s_oref_transition, s_oref_fix)) != 0)
        goto fail;
    what = "writing scope totals";
    if ((rc = s_flush_blocks(l, &l->blocks_c, true)) != 0 ||
        (rc = s_flush_blocks(l, &l->blocks, false)) != 0)
        goto fail;
    what = "writing organisation names";
    if ((rc = s_flush_names(l)) != 0)
        goto fail;
    what = "writing collectors";
    if ((rc = s_flush_collectors(l)) != 0)
        goto fail;
    what = "writing the sequence";
    if (l->last_seq != l->committed_seq &&
        (rc = s_meta_put(l->txn, l->db_meta, "last_seq", l->last_seq)) != 0)
        goto fail;
    uint64_t t1 = s_now_us(), w0 = s_thread_wchar();
    rc = mdb_txn_commit(l->txn);
    uint64_t w1 = s_thread_wchar();
    l->info.page_bytes = w0 && w1 > w0 ? w1 - w0 : 0;
    l->txn = NULL;
    if (rc) {
        what = "committing a group";
        if (rc == EIO) {
            atomic_store(&l->io_failed, true);
            what = "committing a group (the ledger's fsync)";
        }
        goto fail;
    }
    l->info.commit_no = atomic_fetch_add(&l->commits, 1) + 1;
    l->packed_i ^= 1; /* the next group packs into the other buffer */
    l->info.commit_us = s_now_us() - t1;
    l->info.commit_ms = l->group_ms;
    l->committed_seq = l->last_seq;
    l->info.last_seq = l->committed_seq;
    uint64_t used_after = s_used_bytes(l);
    if (used_after > used_before && (used_after - used_before) * 4 > l->grow_margin)
        l->grow_margin = (used_after - used_before) * 4;
    if (info)
        *info = l->info;
    s_reset_group(l);
    return 0;
fail:;
    int err = rc == ENOMEM ? AS_E_NOMEM : s_txn_err(l, what, rc);
    as_ledger_abort(l);
    return err;
}

int as_ledger_commit_nosync(as_ledger_t *l, as_commit_info_t *info)
{
    return s_commit(l, info);
}

int as_ledger_commit(as_ledger_t *l, as_commit_info_t *info)
{
    int rc = s_commit(l, info);
    if (rc)
        return rc;
    uint64_t t0 = s_now_us();
    rc = as_ledger_sync(l);
    if (info)
        info->commit_us += s_now_us() - t0;
    return rc;
}

/* Why a commit does not sync its meta page: LMDB's durable commit writes the group's pages,
 * fsyncs, writes the meta page and fsyncs again, all while it holds the one write lock. With
 * MDB_NOMETASYNC it does the first three only, which keeps the order that makes a crash safe
 * (a meta page reaches the disk only after the pages it points to): after a system crash the
 * ledger is intact and at worst misses its newest group (LMDB's own guarantee for this flag).
 * The second fsync — making that newest meta page durable — runs here, on another thread while
 * the next group is applied; nobody acknowledges a group before it returned 0 after the
 * group's commit. A process crash loses nothing written (the pages are in the page cache). */
int as_ledger_sync(as_ledger_t *l)
{
    uint64_t target = atomic_load(&l->commits);
    if (atomic_load(&l->io_failed))
        return AS_E_DB;
    if (atomic_load(&l->synced) >= target)
        return 0;
    if (!l->no_sync) {
        int rc = mdb_env_sync(l->env, 1);
        if (rc) {
            atomic_store(&l->io_failed, true);
            AS_ERROR("ledger",
                     "fsync of the ledger failed: %s; the commits since the last durable one are "
                     "not acknowledged",
                     mdb_strerror(rc));
            return AS_E_DB;
        }
    }
    uint64_t cur = atomic_load(&l->synced);
    while (cur < target && !atomic_compare_exchange_weak(&l->synced, &cur, target))
        ;
    return 0;
}

bool as_ledger_failed(as_ledger_t *l)
{
    return atomic_load(&l->io_failed);
}

bool as_ledger_durable(as_ledger_t *l, uint64_t commit_no)
{
    return atomic_load(&l->synced) >= commit_no;
}

int as_ledger_txn_commit(MDB_txn *txn)
{
    as_ledger_t *l = mdb_env_get_userctx(mdb_txn_env(txn));
    int rc = mdb_txn_commit(txn);
    if (rc) {
        if (rc == EIO && l)
            atomic_store(&l->io_failed, true);
        return rc;
    }
    if (l && !l->no_sync && mdb_env_sync(l->env, 1) != 0) {
        atomic_store(&l->io_failed, true);
        AS_ERROR("ledger", "fsync of the ledger failed after a transaction; it may not be "
                           "durable");
        return EIO;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

static int s_read_begin(as_ledger_t *l, MDB_txn **txn)
{
    int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, txn);
    return rc ? s_db("beginning a read", rc) : 0;
}

uint64_t as_ledger_last_seq(as_ledger_t *l)
{
    MDB_txn *txn;
    uint64_t seq = 0;
    if (s_read_begin(l, &txn) != 0)
        return l->committed_seq;
    s_meta_get(txn, l->db_meta, "last_seq", &seq);
    mdb_txn_abort(txn);
    return seq;
}

/* as_ledger_replay (cb) or as_ledger_replay_raw (raw), one of them set. */
static int s_replay(as_ledger_t *l, uint64_t from, size_t limit, const char *county_prefix,
                    as_log_cb cb, as_log_raw_cb raw, void *ctx, uint64_t *next, uint64_t *last)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int rc = s_read_begin(l, &txn);
    if (rc)
        return rc;
    uint64_t newest = 0;
    s_meta_get(txn, l->db_meta, "last_seq", &newest);
    if (last)
        *last = newest;
    if (from == 0)
        from = 1;
    if (next)
        *next = from;
    size_t plen = county_prefix ? strlen(county_prefix) : 0;
    as_log_entry_t *e = raw ? NULL : malloc(sizeof *e);
    if (!raw && !e) {
        mdb_txn_abort(txn);
        return AS_E_NOMEM;
    }
    if ((rc = mdb_cursor_open(txn, l->db_log, &c)) != 0)
        goto done;
    uint8_t kb[8];
    s_be(kb, from, 8);
    MDB_val k = {8, kb}, v;
    size_t delivered = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && delivered < limit;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint64_t seq = s_get_be(k.mv_data, 8);
        const uint8_t *p = v.mv_data;
        if (next)
            *next = seq + 1;
        if (v.mv_size < LOG_HDR || p[0] != 1) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (plen) {
            char cs[12];
            snprintf(cs, sizeof cs, "%06u", (unsigned)s_get_be(p + 6, 4));
            if (strncmp(cs, county_prefix, plen) != 0)
                continue;
        }
        if (raw) {
            delivered++;
            if (raw(ctx, seq, s_get_be(p + 10, 8), p + LOG_HDR, v.mv_size - LOG_HDR) != 0) {
                rc = 0;
                break;
            }
            continue;
        }
        e->seq = seq;
        e->kind = p[1];
        e->org.supervisor = (uint16_t)s_get_be(p + 2, 2);
        e->org.type = p[4];
        e->org.level = p[5];
        e->commit_ms = s_get_be(p + 10, 8);
        if (as_event_unpack(p + LOG_HDR, v.mv_size - LOG_HDR, &e->ev) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        delivered++;
        if (cb(ctx, e, p + LOG_HDR, v.mv_size - LOG_HDR) != 0) {
            rc = 0;
            break;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
done:
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    free(e);
    return rc ? s_db("replaying the event log", rc) : 0;
}

int as_ledger_replay(as_ledger_t *l, uint64_t from, size_t limit, const char *county_prefix,
                     as_log_cb cb, void *ctx, uint64_t *next, uint64_t *last)
{
    return s_replay(l, from, limit, county_prefix, cb, NULL, ctx, next, last);
}

int as_ledger_replay_raw(as_ledger_t *l, uint64_t from, size_t limit, as_log_raw_cb cb, void *ctx,
                         uint64_t *next, uint64_t *last)
{
    return s_replay(l, from, limit, NULL, NULL, cb, ctx, next, last);
}

int as_ledger_collectors(as_ledger_t *l, as_collector_info_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = s_read_begin(l, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, l->db_coll, &c)) != 0) {
        mdb_txn_abort(txn);
        return s_db("listing collectors", rc);
    }
    size_t cap = 0;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        if (v.mv_size != sizeof(as_collector_info_t))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            as_collector_info_t *p = realloc(*out, cap * sizeof *p);
            if (!p) {
                rc = ENOMEM;
                break;
            }
            *out = p;
        }
        memcpy(&(*out)[(*n)++], v.mv_data, sizeof(as_collector_info_t));
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return 0;
    free(*out);
    *out = NULL;
    *n = 0;
    return rc == ENOMEM ? AS_E_NOMEM : s_db("listing collectors", rc);
}

int as_ledger_collector(as_ledger_t *l, const char *collector_id, as_collector_info_t *out)
{
    MDB_txn *txn;
    int rc = s_read_begin(l, &txn);
    if (rc)
        return rc;
    MDB_val k = {strlen(collector_id), (void *)collector_id}, v;
    rc = mdb_get(txn, l->db_coll, &k, &v);
    if (rc == 0 && v.mv_size == sizeof *out)
        memcpy(out, v.mv_data, sizeof *out);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != sizeof *out))
        return AS_E_NOTFOUND;
    return rc ? s_db("reading a collector", rc) : 0;
}

void as_ledger_hold_map(as_ledger_t *l, int delta)
{
    atomic_fetch_add(&l->backups, delta);
}

int as_ledger_backup(as_ledger_t *l, const char *dir)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        AS_ERROR("ledger", "cannot create %s: %s", dir, strerror(errno));
        return -errno;
    }
    atomic_fetch_add(&l->backups, 1); /* no map growth while the copy reads */
    int rc = mdb_env_copy2(l->env, dir, MDB_CP_COMPACT);
    atomic_fetch_sub(&l->backups, 1); /* the query endpoint also holds it from the loop */
    return rc ? s_db("backing up the ledger", rc) : 0;
}

int as_ledger_size(as_ledger_t *l, uint64_t *file_bytes, uint64_t *map_bytes)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc;
    if ((rc = mdb_env_info(l->env, &info)) != 0 || (rc = mdb_env_stat(l->env, &st)) != 0)
        return s_db("reading the ledger size", rc);
    const char *path = NULL;
    struct stat sb;
    char file[4096];
    if (file_bytes) {
        *file_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
        if (mdb_env_get_path(l->env, &path) == 0 && path) {
            snprintf(file, sizeof file, "%s/data.mdb", path);
            if (stat(file, &sb) == 0)
                *file_bytes = (uint64_t)sb.st_size;
        }
    }
    if (map_bytes)
        *map_bytes = info.me_mapsize;
    return 0;
}

/* ---- totals -------------------------------------------------------------------------------- */

static const char *const s_dim_names[AS_DIM_COUNT] = {"province",   "city",    "county", "area",
                                                      "supervisor", "org",     "month",  "group",
                                                      "funding",    "project", "poverty"};

const char *as_dim_name(as_dim_t d)
{
    return (unsigned)d < AS_DIM_COUNT ? s_dim_names[d] : "";
}

int as_dim_parse(const char *name)
{
    for (int i = 0; name && i < AS_DIM_COUNT; i++)
        if (strcmp(name, s_dim_names[i]) == 0)
            return i;
    return -1;
}

/* The attributes of a cell or village reference, decoded. */
typedef struct {
    const uint8_t *org; /* 18 bytes, zero padded */
    uint32_t county;
    uint8_t month, area, project, group, funding;
    uint16_t supervisor;
} s_attr_t;

static void s_attr_decode(s_attr_t *a, const uint8_t *org, const uint8_t *p)
{
    a->org = org;
    a->county = (uint32_t)s_get_be(p, 3);
    a->month = p[3];
    a->area = p[4];
    a->project = p[5];
    a->group = p[6];
    a->funding = p[7];
    a->supervisor = (uint16_t)s_get_be(p + 8, 2);
}

typedef struct {
    as_totals_row_t row;
} s_grp_t;

typedef struct {
    as_ledger_t *l;
    MDB_txn *txn;
    uint32_t year;
    as_dim_t by;
    int by2; /* second dimension of as_ledger_totals2, -1 for none */
    as_filter_t f;
    int flevel; /* filter: 0 none, LV_COUNTY, LV_CITY */
    s_grp_t *g;
    size_t n, cap;
    s_map_t index; /* row key (24 bytes) → u32 group index */
    s_map_t seen;  /* group index (u32) · kind · entity (18) → present: the distinct sets */
    s_grp_t total;
    int last; /* group of the previous record (cells run by org), -1 none */
    char last_key[24];
    int64_t *dense;    /* a block read, NS × NG */
    uint32_t province; /* the province code of the query's scope */
} s_q_t;

static void s_measures_from(as_measures_t *m, const int64_t *v, int ncols, int sign)
{
    uint64_t *u[NM] = {&m->activities,
                       &m->beneficiaries,
                       &m->registered_poor,
                       NULL,
                       NULL,
                       &m->volunteers,
                       &m->volunteer_tenths,
                       &m->social_workers,
                       &m->persons_lifted,
                       &m->jobs,
                       &m->trainees,
                       NULL};
    for (int i = 0; i < NM; i++)
        if (u[i])
            *u[i] += (uint64_t)(sign * v[i]);
    m->funds_fen += sign * v[3];
    m->goods_fen += sign * v[4];
    m->income_fen += sign * v[11];
    if (ncols == NG) {
        m->organisations += (uint64_t)v[NM];
        m->villages += (uint64_t)v[NM + 1];
        m->deep_villages += (uint64_t)v[NM + 2];
        m->counties += (uint64_t)v[NM + 3];
    }
}

static const char *s_or_none(const char *s)
{
    return s && s[0] ? s : "none";
}

/* The key of a record for dimension by. */
static void s_dim_key(const s_q_t *q, as_dim_t by, const s_attr_t *a, char key[24])
{
    memset(key, 0, 24);
    switch (by) {
    case AS_DIM_PROVINCE:
        snprintf(key, 24, "%06u", s_province_of(a->county));
        break;
    case AS_DIM_CITY:
        snprintf(key, 24, "%06u", s_city_of(a->county));
        break;
    case AS_DIM_COUNTY:
        snprintf(key, 24, "%06u", a->county);
        break;
    case AS_DIM_AREA:
        snprintf(key, 24, "%s", a->area ? s_or_none(as_area_name(a->area)) : "none");
        break;
    case AS_DIM_SUPERVISOR:
        snprintf(key, 24, "%u", a->supervisor);
        break;
    case AS_DIM_ORG:
        memcpy(key, a->org, 18);
        break;
    case AS_DIM_MONTH:
        snprintf(key, 24, "%04u-%02u", q->year % 10000, a->month % 100);
        break;
    case AS_DIM_GROUP:
        snprintf(key, 24, "%s", a->group ? s_or_none(as_group_name(a->group)) : "none");
        break;
    case AS_DIM_FUNDING:
        snprintf(key, 24, "%s", a->funding ? s_or_none(as_funding_name(a->funding)) : "none");
        break;
    case AS_DIM_PROJECT:
        snprintf(key, 24, "%s", a->project ? s_or_none(as_project_name(a->project)) : "none");
        break;
    case AS_DIM_POVERTY:
        snprintf(key, 24, "%s", s_poverty(a->county) ? "inside" : "outside");
        break;
    default:
        break;
    }
}

/* The row key of a record: "KEY" or, with a second dimension, "KEY|KEY2" (cut at 23 bytes). */
static void s_row_key(const s_q_t *q, const s_attr_t *a, char key[24])
{
    s_dim_key(q, q->by, a, key);
    if (q->by2 < 0)
        return;
    char k2[24], both[48] = {0}; /* zeroed: the whole 24-byte key is hashed */
    s_dim_key(q, (as_dim_t)q->by2, a, k2);
    snprintf(both, sizeof both, "%s|%s", key, k2);
    memcpy(key, both, 23);
    key[23] = 0;
}

static int s_filter_level(uint32_t code)
{
    if (code == 0 || code % 10000 == 0)
        return 0;
    return code % 100 == 0 ? LV_CITY : LV_COUNTY;
}

static bool s_match(const s_q_t *q, uint32_t county, uint16_t sup)
{
    if (q->f.supervisor >= 0 && sup != (uint16_t)q->f.supervisor)
        return false;
    if (q->flevel == LV_COUNTY)
        return county == q->f.county;
    if (q->flevel == LV_CITY)
        return s_city_of(county) == q->f.county;
    return true;
}

/* The group of a row key, created when new; NULL when out of memory. */
static s_grp_t *s_group(s_q_t *q, const char key[24])
{
    if (q->last >= 0 && memcmp(q->last_key, key, 24) == 0)
        return &q->g[q->last];
    bool fresh;
    uint8_t *v = s_map_upsert(&q->index, (const uint8_t *)key, &fresh);
    if (!v)
        return NULL;
    uint32_t i;
    if (fresh) {
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 32;
            s_grp_t *g = realloc(q->g, cap * sizeof *g);
            if (!g)
                return NULL;
            q->g = g;
            q->cap = cap;
        }
        i = (uint32_t)q->n++;
        memset(&q->g[i], 0, sizeof q->g[i]);
        memcpy(q->g[i].row.key, key, 24);
        q->g[i].row.key[23] = 0;
        memcpy(v, &i, 4);
    } else {
        memcpy(&i, v, 4);
    }
    q->last = (int)i;
    memcpy(q->last_key, key, 24);
    return &q->g[i];
}

/* Counts entity (kind K_*) once in group gi's distinct measure. */
static int s_distinct(s_q_t *q, uint32_t gi, as_measures_t *m, uint8_t kind, const uint8_t *entity)
{
    uint8_t k[23];
    memcpy(k, &gi, 4);
    k[4] = kind;
    memcpy(k + 5, entity, 18);
    bool fresh;
    if (!s_map_upsert(&q->seen, k, &fresh))
        return AS_E_NOMEM;
    if (fresh) {
        uint64_t *c[5] = {NULL, &m->organisations, &m->villages, &m->deep_villages, &m->counties};
        (*c[kind])++;
    }
    return 0;
}

/* One scan of the year's cells: additive measures, distinct organisations and counties. */
static int s_scan_cells(s_q_t *q)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(q->txn, q->l->db_cells, &c);
    if (rc)
        return s_db("reading totals", rc);
    uint8_t start[2];
    s_be(start, q->year, 2);
    MDB_val k = {2, start}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != CELL_KEY || memcmp(kp, start, 2) != 0)
            break;
        if (v.mv_size != NM * 8)
            continue;
        s_attr_t a;
        s_attr_decode(&a, kp + 14, kp + 2);
        if (!s_match(q, a.county, a.supervisor))
            continue;
        char key[24];
        s_row_key(q, &a, key);
        s_grp_t *g = s_group(q, key);
        if (!g) {
            rc = ENOMEM;
            break;
        }
        int64_t m[NM];
        memcpy(m, v.mv_data, sizeof m);
        uint8_t county[18] = {0};
        memcpy(county, kp + 2, 3);
        s_grp_t *both[2] = {g, &q->total};
        uint32_t gi[2] = {(uint32_t)(g - q->g), UINT32_MAX};
        for (int i = 0; i < 2 && rc == 0; i++) {
            s_measures_from(&both[i]->row.m, m, NM, 1);
            if (s_distinct(q, gi[i], &both[i]->row.m, K_ORG, kp + 14) != 0 ||
                s_distinct(q, gi[i], &both[i]->row.m, K_COUNTY, county) != 0)
                rc = ENOMEM;
        }
        if (rc)
            break;
    }
    mdb_cursor_close(c);
    if (rc == ENOMEM)
        return AS_E_NOMEM;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : s_db("reading totals", rc);
}

/* One scan of the year's village references: distinct villages and deep-poverty villages. */
static int s_scan_vrefs(s_q_t *q)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(q->txn, q->l->db_vrefs, &c);
    if (rc)
        return s_db("reading village references", rc);
    uint8_t start[2];
    s_be(start, q->year, 2);
    MDB_val k = {2, start}, v;
    q->last = -1;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != VREF_KEY || memcmp(kp, start, 2) != 0)
            break;
        s_attr_t a;
        s_attr_decode(&a, kp + 27, kp + 2);
        if (!s_match(q, a.county, a.supervisor))
            continue;
        char key[24];
        s_row_key(q, &a, key);
        s_grp_t *g = s_group(q, key);
        if (!g) {
            rc = ENOMEM;
            break;
        }
        uint8_t village[18] = {0};
        memcpy(village, kp + 15, 12);
        uint8_t kind = kp[14] == K_DEEP ? K_DEEP : K_VILLAGE;
        if (s_distinct(q, (uint32_t)(g - q->g), &g->row.m, kind, village) != 0 ||
            s_distinct(q, UINT32_MAX, &q->total.row.m, kind, village) != 0) {
            rc = ENOMEM;
            break;
        }
    }
    mdb_cursor_close(c);
    if (rc == ENOMEM)
        return AS_E_NOMEM;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : s_db("reading village references", rc);
}

/* ---- totals from the blocks ------------------------------------------------------------- */

/* A scope: a block's level, supervisor (SUP_ANY: all) and code. */
typedef struct {
    uint8_t lv;
    uint16_t sup;
    uint32_t code;
} s_ctx_t;

/* Receives a row: its key, measures and, for a geographic or supervisor row, its scope. */
typedef int (*s_row_cb)(s_q_t *q, void *arg, const char *key, const as_measures_t *m,
                        const s_ctx_t *child);

#define S_COLLIDE 2 /* two rows with one (cut) key: the query takes the scan instead */

static void s_slot_measures(const int64_t *dense, int slot, as_measures_t *m)
{
    memset(m, 0, sizeof *m);
    s_measures_from(m, dense + (size_t)slot * NG, NG, 1);
}

/* Reads the block of c into q->dense: 1 when present, 0 when absent, or an error. */
static int s_block_get(s_q_t *q, const s_ctx_t *c)
{
    uint8_t kb[BLOCK_KEY];
    s_block_key(kb, (uint16_t)q->year, c->lv, c->sup, c->code);
    MDB_val k = {BLOCK_KEY, kb}, v;
    int rc = mdb_get(q->txn, q->l->db_blocks, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0)
        rc = s_block_decode(&v, q->dense);
    return rc ? s_db("reading scope totals", rc) : q->dense[0] > 0;
}

static unsigned s_class(uint8_t lv, uint32_t code)
{
    return lv == LV_COUNTY ? (s_poverty(code) ? 1 : 2) : lv == LV_CITYPOV ? code % 10 : code;
}

static uint32_t s_city_code(uint8_t lv, uint32_t code)
{
    return lv == LV_COUNTY ? s_city_of(code) : lv == LV_CITYPOV ? code / 10 : code;
}

/* Whether the scope (lv, code) lies inside parent. */
static bool s_within(const s_q_t *q, const s_ctx_t *parent, uint8_t lv, uint32_t code)
{
    switch (parent->lv) {
    case LV_PROVINCE:
        return lv == LV_POVERTY || s_province_of(s_city_code(lv, code)) == parent->code;
    case LV_CITY:
        return s_city_code(lv, code) == parent->code;
    case LV_POVERTY:
        return s_class(lv, code) == parent->code;
    case LV_CITYPOV:
        return s_city_code(lv, code) * 10 + s_class(lv, code) == parent->code;
    default:
        (void)q;
        return false;
    }
}

/* The row key of the scope (lv, code) for a geographic dimension. */
static void s_geo_key(const s_q_t *q, as_dim_t by, uint8_t lv, uint32_t code, char key[24])
{
    memset(key, 0, 24);
    if (by == AS_DIM_POVERTY)
        snprintf(key, 24, "%s", s_class(lv, code) == 1 ? "inside" : "outside");
    else if (by == AS_DIM_PROVINCE)
        snprintf(key, 24, "%06u",
                 lv == LV_POVERTY ? q->province : s_province_of(s_city_code(lv, code)));
    else if (by == AS_DIM_CITY)
        snprintf(key, 24, "%06u", s_city_code(lv, code));
    else
        snprintf(key, 24, "%06u", code);
}

/* Every block of level lv inside parent, as rows of by. */
static int s_each_block(s_q_t *q, const s_ctx_t *parent, as_dim_t by, uint8_t lv, s_row_cb cb,
                        void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(q->txn, q->l->db_blocks, &c);
    if (rc)
        return s_db("reading scope totals", rc);
    uint8_t start[BLOCK_KEY];
    s_block_key(start, (uint16_t)q->year, lv, parent->sup, 0);
    MDB_val k = {BLOCK_KEY, start}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != BLOCK_KEY || memcmp(k.mv_data, start, 5) != 0)
            break;
        s_ctx_t child = {lv, parent->sup, (uint32_t)s_get_be((const uint8_t *)k.mv_data + 5, 3)};
        if (!s_within(q, parent, lv, child.code))
            continue;
        if ((rc = s_block_decode_all(&v, q->dense)) != 0)
            break;
        if (q->dense[0] <= 0)
            continue;
        char key[24];
        as_measures_t m;
        s_geo_key(q, by, lv, child.code, key);
        s_slot_measures(q->dense, SL_ALL, &m);
        if ((rc = cb(q, arg, key, &m, &child)) != 0)
            break;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc == MDB_CORRUPTED ? s_db("reading scope totals", rc) : rc;
}

/* The supervisor blocks of the scope (ctx->lv, ctx->code): one seek per supervisor. */
static int s_each_supervisor(s_q_t *q, const s_ctx_t *ctx, s_row_cb cb, void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(q->txn, q->l->db_blocks, &c);
    if (rc)
        return s_db("reading scope totals", rc);
    uint32_t sup = 0;
    while (rc == 0 && sup < SUP_ANY) {
        uint8_t kb[BLOCK_KEY];
        s_block_key(kb, (uint16_t)q->year, ctx->lv, (uint16_t)sup, ctx->code);
        MDB_val k = {BLOCK_KEY, kb}, v;
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0)
            break;
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != BLOCK_KEY || memcmp(kp, kb, 3) != 0)
            break;
        uint32_t found = (uint32_t)s_get_be(kp + 3, 2), code = (uint32_t)s_get_be(kp + 5, 3);
        if (found >= SUP_ANY)
            break;
        if (code != ctx->code) {
            sup = code < ctx->code ? found : found + 1; /* seek this supervisor's code, or on */
            continue;
        }
        sup = found + 1;
        if ((rc = s_block_decode_all(&v, q->dense)) != 0 || q->dense[0] <= 0)
            continue;
        char key[24];
        as_measures_t m;
        snprintf(key, sizeof key, "%u", found);
        s_slot_measures(q->dense, SL_ALL, &m);
        s_ctx_t child = {ctx->lv, (uint16_t)found, ctx->code};
        rc = cb(q, arg, key, &m, &child);
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc == MDB_CORRUPTED ? s_db("reading scope totals", rc) : rc;
}

/* The organisation rows of a scope. */
static int s_each_org(s_q_t *q, const s_ctx_t *ctx, s_row_cb cb, void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(q->txn, q->l->db_orefs, &c);
    if (rc)
        return s_db("reading organisation rows", rc);
    uint8_t start[OREF_KEY] = {0};
    s_oref_key(start, (uint16_t)q->year, ctx->lv, ctx->code, ctx->sup, start + 8);
    MDB_val k = {OREF_KEY, start}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != OREF_KEY || memcmp(k.mv_data, start, 8) != 0)
            break;
        int64_t g[NG + NS];
        if (s_rec_decode(v.mv_data, v.mv_size, g, NG + NS) != 0)
            continue;
        char key[24] = {0};
        memcpy(key, (const uint8_t *)k.mv_data + 8, 18);
        as_measures_t m;
        memset(&m, 0, sizeof m);
        s_measures_from(&m, g, NG, 1);
        if ((rc = cb(q, arg, key, &m, NULL)) != 0)
            break;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc;
}

/* The rows of dimension by inside the scope ctx. */
static int s_each(s_q_t *q, const s_ctx_t *ctx, as_dim_t by, s_row_cb cb, void *arg)
{
    bool single = by == AS_DIM_PROVINCE ||
                  (by == AS_DIM_CITY && ctx->lv != LV_PROVINCE && ctx->lv != LV_POVERTY) ||
                  (by == AS_DIM_COUNTY && ctx->lv == LV_COUNTY) ||
                  (by == AS_DIM_POVERTY && ctx->lv != LV_PROVINCE && ctx->lv != LV_CITY) ||
                  (by == AS_DIM_SUPERVISOR && ctx->sup != SUP_ANY);
    char key[24];
    as_measures_t m;
    if (single) {
        int rc = s_block_get(q, ctx);
        if (rc <= 0)
            return rc;
        if (by == AS_DIM_SUPERVISOR)
            snprintf(key, sizeof key, "%u", ctx->sup);
        else
            s_geo_key(q, by, ctx->lv, ctx->code, key);
        s_slot_measures(q->dense, SL_ALL, &m);
        return cb(q, arg, key, &m, ctx);
    }
    switch (by) {
    case AS_DIM_CITY:
        return s_each_block(q, ctx, by, ctx->lv == LV_PROVINCE ? LV_CITY : LV_CITYPOV, cb, arg);
    case AS_DIM_COUNTY:
        return s_each_block(q, ctx, by, LV_COUNTY, cb, arg);
    case AS_DIM_POVERTY:
        return s_each_block(q, ctx, by, ctx->lv == LV_PROVINCE ? LV_POVERTY : LV_CITYPOV, cb, arg);
    case AS_DIM_SUPERVISOR:
        return s_each_supervisor(q, ctx, cb, arg);
    case AS_DIM_ORG:
        return s_each_org(q, ctx, cb, arg);
    default:
        break;
    }
    int first = by == AS_DIM_AREA      ? SL_AREA
                : by == AS_DIM_MONTH   ? SL_MONTH
                : by == AS_DIM_GROUP   ? SL_GROUP
                : by == AS_DIM_FUNDING ? SL_FUNDING
                                       : SL_PROJECT;
    int end = by == AS_DIM_AREA      ? SL_MONTH
              : by == AS_DIM_MONTH   ? SL_GROUP
              : by == AS_DIM_GROUP   ? SL_FUNDING
              : by == AS_DIM_FUNDING ? SL_PROJECT
                                     : NS;
    int rc = s_block_get(q, ctx);
    if (rc <= 0)
        return rc;
    rc = 0;
    int64_t *dense = malloc(BLOCK_VAL); /* the callback may read other blocks */
    if (!dense)
        return AS_E_NOMEM;
    memcpy(dense, q->dense, BLOCK_VAL);
    for (int sl = first; sl < end && rc == 0; sl++) {
        if (dense[(size_t)sl * NG] <= 0)
            continue;
        s_attr_t a;
        memset(&a, 0, sizeof a);
        uint8_t v = (uint8_t)(sl - first);
        a.area = a.month = a.group = a.funding = a.project = v;
        s_dim_key(q, by, &a, key);
        s_slot_measures(dense, sl, &m);
        rc = cb(q, arg, key, &m, NULL);
    }
    free(dense);
    return rc;
}

/* A row of the answer; a key met twice (cut composite keys) sends the query to the scan. */
static int s_put_row(s_q_t *q, const char key[24], const as_measures_t *m)
{
    size_t n = q->n;
    q->last = -1;
    s_grp_t *g = s_group(q, key);
    if (!g)
        return AS_E_NOMEM;
    if (q->n == n)
        return S_COLLIDE;
    g->row.m = *m;
    return 0;
}

static int s_row1(s_q_t *q, void *arg, const char *key, const as_measures_t *m,
                  const s_ctx_t *child)
{
    (void)arg;
    (void)child;
    char k[24] = {0};
    snprintf(k, sizeof k, "%s", key);
    return s_put_row(q, k, m);
}

typedef struct {
    const char *outer; /* the enclosing row's key */
    bool outer_first;  /* "OUTER|KEY" (else "KEY|OUTER") */
} s_pair_t;

static int s_row2(s_q_t *q, void *arg, const char *key, const as_measures_t *m,
                  const s_ctx_t *child)
{
    (void)child;
    const s_pair_t *p = arg;
    char both[64], k[24] = {0};
    snprintf(both, sizeof both, "%s|%s", p->outer_first ? p->outer : key,
             p->outer_first ? key : p->outer);
    memcpy(k, both, 23);
    return s_put_row(q, k, m);
}

static int s_outer(s_q_t *q, void *arg, const char *key, const as_measures_t *m,
                   const s_ctx_t *child)
{
    (void)m;
    s_pair_t p = {key, arg == NULL};
    as_dim_t inner = arg == NULL ? (as_dim_t)q->by2 : q->by;
    return s_each(q, child, inner, s_row2, &p);
}

static bool s_scoped(int by)
{
    return by == AS_DIM_PROVINCE || by == AS_DIM_CITY || by == AS_DIM_COUNTY ||
           by == AS_DIM_POVERTY || by == AS_DIM_SUPERVISOR;
}

/* Rows and total from the blocks: 0 when done, 1 when the query needs the scan of the finest
 * records (a pair of two non-geographic dimensions, cut keys that collide, several provinces
 * without a filter), or an error. */
static int s_from_blocks(s_q_t *q)
{
    if (q->by2 >= 0 && !s_scoped(q->by) && !s_scoped(q->by2))
        return 1;
    if (q->f.supervisor >= SUP_ANY)
        return 1;
    s_ctx_t ctx = {LV_PROVINCE, q->f.supervisor >= 0 ? (uint16_t)q->f.supervisor : SUP_ANY, 0};
    if (q->flevel) {
        ctx.lv = (uint8_t)q->flevel;
        ctx.code = q->f.county;
        q->province = s_province_of(q->f.county);
    } else {
        /* the province: the only one the ledger holds for the year */
        MDB_cursor *c;
        int rc = mdb_cursor_open(q->txn, q->l->db_blocks, &c);
        if (rc)
            return s_db("reading scope totals", rc);
        uint8_t start[BLOCK_KEY];
        s_block_key(start, (uint16_t)q->year, LV_PROVINCE, ctx.sup, 0);
        MDB_val k = {BLOCK_KEY, start}, v;
        size_t provinces = 0;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && provinces < 2;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (k.mv_size != BLOCK_KEY || memcmp(k.mv_data, start, 5) != 0)
                break;
            ctx.code = (uint32_t)s_get_be((const uint8_t *)k.mv_data + 5, 3);
            provinces++;
        }
        mdb_cursor_close(c);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return s_db("reading scope totals", rc);
        if (provinces > 1)
            return 1;
        if (provinces == 0)
            return 0; /* nothing in the year */
        q->province = ctx.code;
    }
    int rc = s_block_get(q, &ctx);
    if (rc <= 0)
        return rc;
    s_slot_measures(q->dense, SL_ALL, &q->total.row.m);
    if (q->by2 < 0)
        rc = s_each(q, &ctx, q->by, s_row1, NULL);
    else if (s_scoped(q->by))
        rc = s_each(q, &ctx, q->by, s_outer, NULL);
    else
        rc = s_each(q, &ctx, (as_dim_t)q->by2, s_outer, (void *)1);
    return rc == S_COLLIDE ? 1 : rc;
}

static bool s_all_digits(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int s_cmp_rows(const void *a, const void *b)
{
    const char *x = ((const as_totals_row_t *)a)->key, *y = ((const as_totals_row_t *)b)->key;
    if (s_all_digits(x) && s_all_digits(y) && strlen(x) != strlen(y))
        return strlen(x) < strlen(y) ? -1 : 1;
    return strcmp(x, y);
}

static const char *s_zh_or(const char *zh, const char *fallback)
{
    return zh && zh[0] ? zh : fallback;
}

/* English (zh false) or Chinese name of value i of an enum dimension; NULL past the last. */
static const char *s_enum_name(as_dim_t by, int i, bool zh)
{
    switch (by) {
    case AS_DIM_AREA:
        return i >= AS_AREA_COUNT ? NULL
               : zh               ? as_area_name_zh((as_area_t)i)
                                  : as_area_name((as_area_t)i);
    case AS_DIM_GROUP:
        return i >= AS_GROUP_COUNT ? NULL
               : zh                ? as_group_name_zh((as_group_t)i)
                                   : as_group_name((as_group_t)i);
    case AS_DIM_FUNDING:
        return i >= AS_FUNDING_COUNT ? NULL
               : zh                  ? as_funding_name_zh((as_funding_t)i)
                                     : as_funding_name((as_funding_t)i);
    case AS_DIM_PROJECT:
        return i >= AS_PROJECT_COUNT ? NULL
               : zh                  ? as_project_name_zh((as_project_t)i)
                                     : as_project_name((as_project_t)i);
    default:
        return NULL;
    }
}

/* The human name of a row key. */
/* Drops a UTF-8 character cut by a byte-limited copy at the end of s. */
static void s_trim_cut_utf8(char *s)
{
    size_t n = strlen(s), i = n, cont = 0;
    while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--, cont++;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (want > 1 && cont + 1 < want)
        s[i - 1] = 0;
}

static void s_row_name(s_q_t *q, as_totals_row_t *r)
{
    const char *k = r->key, *name = NULL;
    char buf[96];
    unsigned long code = strtoul(k, NULL, 10);
    const as_division_t *d;
    switch (q->by) {
    case AS_DIM_PROVINCE:
    case AS_DIM_CITY:
    case AS_DIM_COUNTY:
        d = as_division_find((uint32_t)code);
        name = d ? d->name : code == 360000 ? "江西省" : NULL;
        break;
    case AS_DIM_POVERTY:
        name = strcmp(k, "inside") == 0 ? "原贫困县" : "非贫困县";
        break;
    case AS_DIM_MONTH:
        snprintf(buf, sizeof buf, "%.4s年%u月", k, (unsigned)strtoul(k + 5, NULL, 10));
        name = buf;
        break;
    case AS_DIM_SUPERVISOR:
        if (q->l->sup_cb)
            name = q->l->sup_cb(q->l->sup_ctx, (uint16_t)code);
        if (!name && code == 0)
            name = "未登记/unknown";
        if (!name) {
            snprintf(buf, sizeof buf, "业务主管单位 %lu", code);
            name = buf;
        }
        break;
    case AS_DIM_ORG: {
        uint8_t ok[AS_CODE_LEN];
        s_code18(ok, k);
        MDB_val kk = {AS_CODE_LEN, ok}, v;
        if (mdb_get(q->txn, q->l->db_orgs, &kk, &v) == 0) {
            size_t n = v.mv_size < sizeof buf - 1 ? v.mv_size : sizeof buf - 1;
            memcpy(buf, v.mv_data, n);
            buf[n] = 0;
            name = buf;
        }
        break;
    }
    default:
        if (strcmp(k, "none") == 0)
            name = q->by == AS_DIM_PROJECT ? "无" : "未填写";
        for (int i = 1; !name && i < 16; i++) {
            const char *en = s_enum_name(q->by, i, false);
            if (!en)
                break;
            if (strcmp(en, k) == 0)
                name = s_zh_or(s_enum_name(q->by, i, true), k);
        }
        break;
    }
    snprintf(r->name, sizeof r->name, "%s", name ? name : k);
    s_trim_cut_utf8(r->name); /* a long organisation name is cut to the row's bytes */
}

/* The name of a composite row "KEY|KEY2": "NAME|NAME2". */
static void s_row_name2(s_q_t *q, as_totals_row_t *r)
{
    as_totals_row_t a, b;
    char *bar = strchr(r->key, '|');
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    snprintf(a.key, sizeof a.key, "%.*s", bar ? (int)(bar - r->key) : 23, r->key);
    snprintf(b.key, sizeof b.key, "%s", bar ? bar + 1 : "");
    as_dim_t by = q->by;
    s_row_name(q, &a);
    q->by = (as_dim_t)q->by2;
    s_row_name(q, &b);
    q->by = by;
    size_t n = strlen(a.name), cap = sizeof r->name;
    memcpy(r->name, a.name, n < cap ? n : cap - 1);
    r->name[n < cap ? n : cap - 1] = 0;
    if (n + 1 < cap) {
        r->name[n] = '|';
        size_t m = strlen(b.name);
        if (m > cap - n - 2)
            m = cap - n - 2;
        memcpy(r->name + n + 1, b.name, m);
        r->name[n + 1 + m] = 0;
    }
    s_trim_cut_utf8(r->name);
}

static int s_totals(as_ledger_t *l, uint32_t year, as_dim_t by, int by2, const as_filter_t *filter,
                    as_totals_row_t **rows, size_t *nrows, as_measures_t *total);

int as_ledger_totals(as_ledger_t *l, uint32_t year, as_dim_t by, const as_filter_t *filter,
                     as_totals_row_t **rows, size_t *nrows, as_measures_t *total)
{
    return s_totals(l, year, by, -1, filter, rows, nrows, total);
}

int as_ledger_totals2(as_ledger_t *l, uint32_t year, as_dim_t by, as_dim_t by2,
                      const as_filter_t *filter, as_totals_row_t **rows, size_t *nrows,
                      as_measures_t *total)
{
    if ((unsigned)by2 >= AS_DIM_COUNT) {
        *rows = NULL;
        *nrows = 0;
        return AS_E_INVALID;
    }
    return s_totals(l, year, by, (int)by2, filter, rows, nrows, total);
}

static int s_totals(as_ledger_t *l, uint32_t year, as_dim_t by, int by2, const as_filter_t *filter,
                    as_totals_row_t **rows, size_t *nrows, as_measures_t *total)
{
    *rows = NULL;
    *nrows = 0;
    if (total)
        memset(total, 0, sizeof *total);
    if ((unsigned)by >= AS_DIM_COUNT || year > 9999)
        return AS_E_INVALID;
    s_q_t q;
    memset(&q, 0, sizeof q);
    q.l = l;
    q.year = year;
    q.by = by;
    q.by2 = by2;
    q.f.county = filter ? filter->county : 0;
    q.f.supervisor = filter ? filter->supervisor : -1;
    q.flevel = s_filter_level(q.f.county);
    q.last = -1;
    int rc;
    if ((rc = s_map_init(&q.index, 24, 4)) != 0 || (rc = s_map_init(&q.seen, 23, 0)) != 0)
        goto done;
    if ((rc = s_read_begin(l, &q.txn)) != 0)
        goto done;
    if ((q.dense = malloc(BLOCK_VAL)) == NULL) {
        rc = AS_E_NOMEM;
        goto done;
    }
    rc = s_from_blocks(&q);
    if (rc == 1) {
        /* the full scan, from a clean slate (the fast path may have stopped half way) */
        q.n = 0;
        s_map_clear(&q.index);
        memset(&q.total, 0, sizeof q.total);
        q.last = -1;
        if ((rc = s_scan_cells(&q)) == 0)
            rc = s_scan_vrefs(&q);
    }
    if (rc)
        goto done;
    as_totals_row_t *out = malloc((q.n ? q.n : 1) * sizeof *out);
    if (!out) {
        rc = AS_E_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < q.n; i++)
        out[i] = q.g[i].row;
    qsort(out, q.n, sizeof *out, s_cmp_rows);
    for (size_t i = 0; i < q.n; i++) {
        if (by2 >= 0)
            s_row_name2(&q, &out[i]);
        else
            s_row_name(&q, &out[i]);
    }
    *rows = out;
    *nrows = q.n;
    if (total)
        *total = q.total.row.m;
done:
    if (q.txn)
        mdb_txn_abort(q.txn);
    free(q.g);
    free(q.dense);
    s_map_free(&q.index);
    s_map_free(&q.seen);
    return rc;
}

/* ---- organisations' activities by attribute value (the province org rows) ----------------- */

int as_ledger_org_activities(as_ledger_t *l, uint32_t year, as_dim_t dim, unsigned value,
                             as_org_activities_cb cb, void *ctx)
{
    int first = dim == AS_DIM_AREA      ? SL_AREA
                : dim == AS_DIM_MONTH   ? SL_MONTH
                : dim == AS_DIM_GROUP   ? SL_GROUP
                : dim == AS_DIM_FUNDING ? SL_FUNDING
                : dim == AS_DIM_PROJECT ? SL_PROJECT
                                        : -1;
    int end = dim == AS_DIM_AREA      ? SL_MONTH
              : dim == AS_DIM_MONTH   ? SL_GROUP
              : dim == AS_DIM_GROUP   ? SL_FUNDING
              : dim == AS_DIM_FUNDING ? SL_PROJECT
                                      : NS;
    if (first < 0 || year > 9999 || first + (int)value >= end)
        return AS_E_INVALID;
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int rc = s_read_begin(l, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, l->db_orefs, &c)) != 0)
        goto done;
    /* year · LV_PROVINCE · province · SUP_ANY · org: one seek per province */
    uint32_t code = 0;
    for (;;) {
        uint8_t start[OREF_KEY] = {0};
        s_oref_key(start, (uint16_t)year, LV_PROVINCE, code, SUP_ANY, start + 8);
        MDB_val k = {OREF_KEY, start}, v;
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0)
            break;
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != OREF_KEY || memcmp(kp, start, 3) != 0)
            break;
        code = (uint32_t)s_get_be(kp + 3, 3);
        if (s_get_be(kp + 6, 2) != SUP_ANY)
            continue; /* the province's supervisor rows come first: seek its SUP_ANY rows */
        for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            kp = k.mv_data;
            if (k.mv_size != OREF_KEY || memcmp(kp, start, 3) != 0 || s_get_be(kp + 3, 3) != code ||
                s_get_be(kp + 6, 2) != SUP_ANY)
                break;
            int64_t g[NG + NS];
            if (s_rec_decode(v.mv_data, v.mv_size, g, NG + NS) != 0)
                continue;
            int64_t n = g[NG + first + (int)value];
            if (n <= 0)
                continue;
            char org[AS_CODE_LEN + 1] = {0};
            memcpy(org, kp + 8, 18);
            if (cb(ctx, org, (uint64_t)n) != 0)
                goto done; /* rc is 0 */
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            break;
        rc = 0;
        if (++code > 0xffffff)
            break;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
done:
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return rc ? s_db("reading organisation rows", rc) : 0;
}
