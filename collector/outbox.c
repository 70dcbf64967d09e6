/* outbox: the collector's durable queue of items for the aggregator, in LMDB. */
#include "outbox.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAP_START   (64u << 20) /* first map size; doubled whenever a write finds it full */
#define SEQ_RESERVE 1024        /* batch sequences reserved per durable write */

struct as_outbox_s {
    MDB_env *env;
    MDB_dbi pending;         /* u64 BE outbox seq → kind byte + packed message */
    MDB_dbi files;           /* 32-byte content hash → u64 taken time (s) + name */
    MDB_dbi rejected;        /* u64 BE outbox seq → kind, code, u16 reason len, reason, msg */
    MDB_dbi meta;            /* "next_seq", "batch_reserved" → u64 */
    size_t mapsize;          /* current map size */
    uint64_t next_seq;       /* next outbox sequence to hand out */
    uint64_t batch_next;     /* next batch sequence */
    uint64_t batch_reserved; /* batch sequences below this are reserved on disk */
    bool no_sync;            /* tests and benchmarks: nothing is synced */
};

/* ---- helpers ------------------------------------------------------------------------------- */

static int s_db(const char *what, int rc)
{
    AS_ERROR("outbox", "%s failed: %s; the operation is abandoned and will be retried", what,
             mdb_strerror(rc));
    return AS_E_DB;
}

static void s_be64(uint64_t v, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

static uint64_t s_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int s_meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        *out = s_get_be64(v.mv_data);
    else if (rc == MDB_NOTFOUND)
        *out = 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int s_meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t value)
{
    uint8_t b[8];
    s_be64(value, b);
    MDB_val k = {strlen(key), (void *)key}, v = {8, b};
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* Doubles the map after MDB_MAP_FULL; no transaction may be open (we are single-threaded). */
static int s_grow(as_outbox_t *ob)
{
    size_t want = ob->mapsize * 2;
    int rc = mdb_env_set_mapsize(ob->env, want);
    if (rc)
        return s_db("growing the map", rc);
    AS_INFO("outbox", "map grown to %zu MiB; retrying the write", want >> 20);
    ob->mapsize = want;
    return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

as_outbox_t *as_outbox_new(const char *dir, bool no_sync, int *err)
{
    as_outbox_t *ob = calloc(1, sizeof *ob);
    MDB_txn *txn = NULL;
    int rc;
    if (!ob) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        *err = -errno;
        AS_ERROR("outbox", "cannot create %s: %s", dir, strerror(errno));
        free(ob);
        return NULL;
    }
    if ((rc = mdb_env_create(&ob->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(ob->env, 4);
    ob->mapsize = MAP_START;
    if ((rc = mdb_env_set_mapsize(ob->env, ob->mapsize)) != 0)
        goto fail;
    /* Commits flush their pages but not the meta page (one fsync instead of two): integrity is
     * kept and a system crash may undo the last commit. That is harmless for what the sender
     * writes (settling acknowledged items: undone, they are sent again and answered as
     * duplicates); what must not be undone — a file taken, batch numbers reserved — is synced in
     * full (mdb_env_sync) before anyone relies on it. */
    ob->no_sync = no_sync;
    if ((rc = mdb_env_open(ob->env, dir, MDB_NOTLS | (no_sync ? MDB_NOSYNC : MDB_NOMETASYNC),
                           0640)) != 0)
        goto fail;
    MDB_envinfo info;
    if (mdb_env_info(ob->env, &info) == 0 && info.me_mapsize > ob->mapsize)
        ob->mapsize = info.me_mapsize; /* a map grown in an earlier run */
    if ((rc = mdb_txn_begin(ob->env, NULL, 0, &txn)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(txn, "pending", MDB_CREATE, &ob->pending)) != 0 ||
        (rc = mdb_dbi_open(txn, "files", MDB_CREATE, &ob->files)) != 0 ||
        (rc = mdb_dbi_open(txn, "rejected", MDB_CREATE, &ob->rejected)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ob->meta)) != 0)
        goto fail;
    if ((rc = s_meta_get(txn, ob->meta, "next_seq", &ob->next_seq)) != 0 ||
        (rc = s_meta_get(txn, ob->meta, "batch_reserved", &ob->batch_reserved)) != 0)
        goto fail;
    if (ob->next_seq == 0)
        ob->next_seq = 1;
    ob->batch_next = ob->batch_reserved ? ob->batch_reserved : 1;
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        goto fail;
    }
    return ob;
fail:
    if (txn)
        mdb_txn_abort(txn);
    AS_ERROR("outbox", "cannot open the outbox in %s: %s", dir, mdb_strerror(rc));
    if (ob->env)
        mdb_env_close(ob->env);
    free(ob);
    *err = AS_E_DB;
    return NULL;
}

void as_outbox_destroy(as_outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_outbox_t *ob = *self_p;
    *self_p = NULL;
    mdb_env_close(ob->env);
    free(ob);
}

/* ---- files and items ----------------------------------------------------------------------- */

int as_outbox_file_taken(as_outbox_t *ob, const uint8_t hash[AS_OUTBOX_HASH_LEN], char *name,
                         size_t namelen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(ob->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_db("beginning a read", rc);
    MDB_val k = {AS_OUTBOX_HASH_LEN, (void *)hash}, v;
    rc = mdb_get(txn, ob->files, &k, &v);
    if (rc == 0 && name && namelen) {
        size_t l = v.mv_size > 8 ? v.mv_size - 8 : 0;
        if (l >= namelen)
            l = namelen - 1;
        memcpy(name, (char *)v.mv_data + 8, l);
        name[l] = 0;
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return AS_E_NOTFOUND;
    return rc ? s_db("looking up a file", rc) : 0;
}

static int s_put_one(as_outbox_t *ob, MDB_txn *txn, uint64_t seq, const as_outbox_blob_t *b)
{
    uint8_t key[8];
    s_be64(seq, key);
    MDB_val k = {8, key}, v = {b->len + 1, NULL};
    int rc = mdb_put(txn, ob->pending, &k, &v, MDB_RESERVE | MDB_APPEND);
    if (rc == 0) {
        ((uint8_t *)v.mv_data)[0] = b->kind;
        memcpy((uint8_t *)v.mv_data + 1, b->data, b->len);
    }
    return rc;
}

/* One write transaction putting items (and the file record when hash is non-NULL); retried once
 * per map growth. */
static int s_put(as_outbox_t *ob, const uint8_t *hash, const char *name,
                 const as_outbox_blob_t *items, size_t n, uint64_t *first)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(ob->env, NULL, 0, &txn);
        if (rc)
            return s_db("beginning a write", rc);
        uint64_t seq = ob->next_seq;
        if (hash) {
            size_t nl = strlen(name);
            uint8_t val[8 + 256];
            if (nl > 256)
                nl = 256;
            s_be64((uint64_t)time(NULL), val);
            memcpy(val + 8, name, nl);
            MDB_val k = {AS_OUTBOX_HASH_LEN, (void *)hash}, v = {8 + nl, val};
            rc = mdb_put(txn, ob->files, &k, &v, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST) {
                mdb_txn_abort(txn);
                return AS_E_EXISTS;
            }
        }
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = s_put_one(ob, txn, seq + i, &items[i]);
        if (rc == 0)
            rc = s_meta_put(txn, ob->meta, "next_seq", seq + n);
        if (rc == 0) {
            rc = mdb_txn_commit(txn);
            if (rc == 0) {
                ob->next_seq = seq + n; /* committed: these numbers are taken either way */
                if (!ob->no_sync && (rc = mdb_env_sync(ob->env, 1)) != 0)
                    return s_db("syncing the outbox", rc); /* not known durable: say so */
                if (first)
                    *first = seq;
                return 0;
            }
        } else
            mdb_txn_abort(txn);
        if (rc != MDB_MAP_FULL)
            return s_db("writing to the outbox", rc);
        if ((rc = s_grow(ob)) != 0)
            return rc;
    }
}

int as_outbox_put_file(as_outbox_t *ob, const uint8_t hash[AS_OUTBOX_HASH_LEN], const char *name,
                       const as_outbox_blob_t *items, size_t n)
{
    return s_put(ob, hash, name, items, n, NULL);
}

int as_outbox_put(as_outbox_t *ob, const as_outbox_blob_t *item, uint64_t *seq)
{
    return s_put(ob, NULL, NULL, item, 1, seq);
}

int as_outbox_take(as_outbox_t *ob, uint64_t after, size_t max, as_outbox_item_t **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (max == 0)
        return 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(ob->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_db("beginning a read", rc);
    if ((rc = mdb_cursor_open(txn, ob->pending, &cur)) != 0) {
        mdb_txn_abort(txn);
        return s_db("opening a cursor", rc);
    }
    as_outbox_item_t *out = calloc(max, sizeof *out);
    size_t got = 0;
    uint8_t key[8];
    s_be64(after + 1, key);
    MDB_val k = {8, key}, v;
    rc = out ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : ENOMEM;
    while (rc == 0 && got < max) {
        if (k.mv_size != 8 || v.mv_size < 1) {
            rc = MDB_CORRUPTED;
            break;
        }
        as_outbox_item_t *it = &out[got];
        it->seq = s_get_be64(k.mv_data);
        it->kind = ((uint8_t *)v.mv_data)[0];
        it->len = v.mv_size - 1;
        it->data = malloc(it->len ? it->len : 1);
        if (!it->data) {
            rc = ENOMEM;
            break;
        }
        memcpy(it->data, (uint8_t *)v.mv_data + 1, it->len);
        got++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        as_outbox_items_free(out, got);
        return rc == ENOMEM ? AS_E_NOMEM : s_db("reading pending items", rc);
    }
    *items = out;
    *n = got;
    return 0;
}

void as_outbox_items_free(as_outbox_item_t *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i].data);
    free(items);
}

static int s_settle_one(as_outbox_t *ob, MDB_txn *txn, const as_outbox_settle_t *s)
{
    uint8_t key[8];
    s_be64(s->seq, key);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(txn, ob->pending, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0; /* settled before: an answer to a resent batch */
    if (rc)
        return rc;
    if (s->rejected) {
        size_t rl = s->reason ? strlen(s->reason) : 0;
        if (rl > 1000)
            rl = 1000;
        size_t len = 4 + rl + (v.mv_size - 1);
        MDB_val rv = {len, NULL};
        const uint8_t *old = v.mv_data;
        /* old points into the map; copy before a put could move pages */
        uint8_t *copy = malloc(v.mv_size);
        if (!copy)
            return ENOMEM;
        memcpy(copy, old, v.mv_size);
        rc = mdb_put(txn, ob->rejected, &k, &rv, MDB_RESERVE);
        if (rc == 0) {
            uint8_t *p = rv.mv_data;
            p[0] = copy[0];
            p[1] = s->reject;
            p[2] = (uint8_t)(rl >> 8);
            p[3] = (uint8_t)rl;
            memcpy(p + 4, s->reason, rl);
            memcpy(p + 4 + rl, copy + 1, v.mv_size - 1);
        }
        free(copy);
        if (rc)
            return rc;
    }
    return mdb_del(txn, ob->pending, &k, NULL);
}

int as_outbox_settle(as_outbox_t *ob, const as_outbox_settle_t *s, size_t n)
{
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(ob->env, NULL, 0, &txn);
        if (rc)
            return s_db("beginning a write", rc);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = s_settle_one(ob, txn, &s[i]);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc == 0)
            return 0;
        if (rc == ENOMEM)
            return AS_E_NOMEM;
        if (rc != MDB_MAP_FULL)
            return s_db("settling acknowledged items", rc);
        if ((rc = s_grow(ob)) != 0)
            return rc;
    }
}

int as_outbox_each_rejected(as_outbox_t *ob, as_outbox_rejected_cb fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(ob->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_db("beginning a read", rc);
    if ((rc = mdb_cursor_open(txn, ob->rejected, &cur)) != 0) {
        mdb_txn_abort(txn);
        return s_db("opening a cursor", rc);
    }
    MDB_val k, v;
    int stop = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && !stop) {
        const uint8_t *p = v.mv_data;
        if (k.mv_size == 8 && v.mv_size >= 4) {
            size_t rl = (size_t)p[2] << 8 | p[3];
            if (4 + rl <= v.mv_size) {
                char reason[1001];
                memcpy(reason, p + 4, rl);
                reason[rl] = 0;
                stop = fn(arg, s_get_be64(k.mv_data), p[0], p[1], reason, p + 4 + rl,
                          v.mv_size - 4 - rl);
            }
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : s_db("reading rejected items", rc);
}

/* ---- counts and sequences ------------------------------------------------------------------ */

static uint64_t s_entries(as_outbox_t *ob, MDB_dbi dbi)
{
    MDB_txn *txn;
    MDB_stat st;
    if (mdb_txn_begin(ob->env, NULL, MDB_RDONLY, &txn) != 0)
        return 0;
    uint64_t n = mdb_stat(txn, dbi, &st) == 0 ? st.ms_entries : 0;
    mdb_txn_abort(txn);
    return n;
}

uint64_t as_outbox_backlog(as_outbox_t *ob)
{
    return s_entries(ob, ob->pending);
}

uint64_t as_outbox_rejected(as_outbox_t *ob)
{
    return s_entries(ob, ob->rejected);
}

uint64_t as_outbox_next_batch_seq(as_outbox_t *ob, uint64_t floor)
{
    if (ob->batch_next <= floor)
        ob->batch_next = floor + 1;
    if (ob->batch_next >= ob->batch_reserved) {
        uint64_t want = ob->batch_next + SEQ_RESERVE;
        for (;;) {
            MDB_txn *txn;
            int rc = mdb_txn_begin(ob->env, NULL, 0, &txn);
            if (rc) {
                s_db("beginning a write", rc);
                return 0;
            }
            rc = s_meta_put(txn, ob->meta, "batch_reserved", want);
            rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
            if (rc == 0 && !ob->no_sync && (rc = mdb_env_sync(ob->env, 1)) != 0) {
                s_db("syncing the outbox", rc);
                return 0;
            }
            if (rc == 0)
                break;
            if (rc != MDB_MAP_FULL || s_grow(ob) != 0) {
                s_db("reserving batch sequences", rc);
                return 0;
            }
        }
        ob->batch_reserved = want;
    }
    return ob->batch_next++;
}
