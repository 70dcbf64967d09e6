/* archive: lock records, final report files and amendments in one sub-database of the ledger. */
#include "archive.h"
#include "err.h"
#include "ledger.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout of sub-database "yearend" (keys begin with a tag and the year, u16 BE):
 *   'L' year            → locked_ms (u64 BE)
 *   'F' year name       → the file's bytes
 *   'A' year seq(u64BE) → as_amendment_t (this build's layout)
 */

struct as_archive_s {
    MDB_env *env;
    MDB_dbi db;
    uint64_t gen; /* bumped (atomically) by every lock */
};

uint64_t as_archive_generation(as_archive_t *a)
{
    return __atomic_load_n(&a->gen, __ATOMIC_ACQUIRE);
}

static int s_db(const char *what, int rc)
{
    AS_ERROR("archive", "%s failed: %s", what, mdb_strerror(rc));
    return AS_E_DB;
}

static void s_key(uint8_t *k, char tag, uint32_t year)
{
    k[0] = (uint8_t)tag;
    k[1] = (uint8_t)(year >> 8);
    k[2] = (uint8_t)year;
}

as_archive_t *as_archive_new(MDB_env *env, int *err)
{
    int dummy, rc;
    if (!err)
        err = &dummy;
    as_archive_t *a = calloc(1, sizeof *a);
    if (!a) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    a->env = env;
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
        *err = s_db("opening the archive", rc);
        free(a);
        return NULL;
    }
    if ((rc = mdb_dbi_open(txn, "yearend", MDB_CREATE, &a->db)) != 0)
        mdb_txn_abort(txn);
    else
        rc = as_ledger_txn_commit(txn);
    if (rc) {
        *err = s_db("opening the archive", rc);
        free(a);
        return NULL;
    }
    return a;
}

void as_archive_destroy(as_archive_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int as_archive_locked(as_archive_t *a, MDB_txn *txn, uint32_t year, bool *locked)
{
    MDB_txn *own = NULL;
    int rc;
    if (!txn) {
        if ((rc = mdb_txn_begin(a->env, NULL, MDB_RDONLY, &own)) != 0)
            return s_db("reading a lock", rc);
        txn = own;
    }
    uint8_t kb[3];
    s_key(kb, 'L', year);
    MDB_val k = {3, kb}, v;
    rc = mdb_get(txn, a->db, &k, &v);
    *locked = rc == 0;
    if (own)
        mdb_txn_abort(own);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : s_db("reading a lock", rc);
}

int as_archive_put_amendment(as_archive_t *a, MDB_txn *txn, uint32_t year, const as_amendment_t *am)
{
    uint8_t kb[11];
    s_key(kb, 'A', year);
    for (int i = 0; i < 8; i++)
        kb[3 + i] = (uint8_t)(am->seq >> (56 - 8 * i));
    MDB_val k = {sizeof kb, kb}, v = {sizeof *am, (void *)am};
    int rc = mdb_put(txn, a->db, &k, &v, 0);
    return rc ? s_db("recording an amendment", rc) : 0;
}

int as_archive_amendments(as_archive_t *a, uint32_t year, as_amendment_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(a->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_db("reading amendments", rc);
    if ((rc = mdb_cursor_open(txn, a->db, &c)) != 0) {
        mdb_txn_abort(txn);
        return s_db("reading amendments", rc);
    }
    uint8_t kb[3];
    s_key(kb, 'A', year);
    MDB_val k = {3, kb}, v;
    size_t cap = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 11 || memcmp(k.mv_data, kb, 3) != 0)
            break;
        if (v.mv_size != sizeof **out)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            as_amendment_t *p = realloc(*out, cap * sizeof *p);
            if (!p) {
                rc = ENOMEM;
                break;
            }
            *out = p;
        }
        memcpy(&(*out)[(*n)++], v.mv_data, sizeof **out);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc == ENOMEM) {
        free(*out);
        *out = NULL;
        *n = 0;
        return AS_E_NOMEM;
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : s_db("reading amendments", rc);
}

int as_archive_lock(as_archive_t *a, MDB_txn *txn, uint32_t year, const as_archive_file_t *files,
                    size_t n, uint64_t locked_ms)
{
    bool locked;
    int rc = as_archive_locked(a, txn, year, &locked);
    if (rc)
        return rc;
    if (locked)
        return AS_E_LOCKED;
    for (size_t i = 0; i < n; i++) {
        uint8_t kb[3 + sizeof files[i].name];
        size_t nl = strnlen(files[i].name, sizeof files[i].name);
        s_key(kb, 'F', year);
        memcpy(kb + 3, files[i].name, nl);
        MDB_val k = {3 + nl, kb}, v = {files[i].len, files[i].data};
        if ((rc = mdb_put(txn, a->db, &k, &v, 0)) != 0)
            return s_db("keeping a final report file", rc);
    }
    uint8_t kb[3], vb[8];
    s_key(kb, 'L', year);
    for (int i = 0; i < 8; i++)
        vb[i] = (uint8_t)(locked_ms >> (56 - 8 * i));
    MDB_val k = {3, kb}, v = {8, vb};
    if ((rc = mdb_put(txn, a->db, &k, &v, 0)) != 0)
        return s_db("locking a year", rc);
    /* before the commit: no group can run until this transaction ends, so a cache that sees the
     * old generation cannot see the new lock either */
    __atomic_add_fetch(&a->gen, 1, __ATOMIC_RELEASE);
    return 0;
}

void as_archive_files_free(as_archive_file_t *files, size_t n)
{
    for (size_t i = 0; files && i < n; i++)
        free(files[i].data);
    free(files);
}

int as_archive_files(as_archive_t *a, uint32_t year, as_archive_file_t **files, size_t *n,
                     uint64_t *locked_ms)
{
    *files = NULL;
    *n = 0;
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(a->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_db("reading a final report", rc);
    uint8_t kb[3];
    s_key(kb, 'L', year);
    MDB_val k = {3, kb}, v;
    if ((rc = mdb_get(txn, a->db, &k, &v)) != 0) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? AS_E_NOTFOUND : s_db("reading a lock", rc);
    }
    if (locked_ms) {
        *locked_ms = 0;
        for (size_t i = 0; i < 8 && i < v.mv_size; i++)
            *locked_ms = *locked_ms << 8 | ((const uint8_t *)v.mv_data)[i];
    }
    if ((rc = mdb_cursor_open(txn, a->db, &c)) != 0) {
        mdb_txn_abort(txn);
        return s_db("reading a final report", rc);
    }
    s_key(kb, 'F', year);
    k.mv_size = 3;
    k.mv_data = kb;
    size_t cap = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= 3 || memcmp(k.mv_data, kb, 3) != 0)
            break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            as_archive_file_t *p = realloc(*files, cap * sizeof *p);
            if (!p) {
                rc = ENOMEM;
                break;
            }
            *files = p;
        }
        as_archive_file_t *f = &(*files)[*n];
        memset(f, 0, sizeof *f);
        size_t nl = k.mv_size - 3 < sizeof f->name - 1 ? k.mv_size - 3 : sizeof f->name - 1;
        memcpy(f->name, (const uint8_t *)k.mv_data + 3, nl);
        f->data = malloc(v.mv_size ? v.mv_size : 1);
        if (!f->data) {
            rc = ENOMEM;
            break;
        }
        memcpy(f->data, v.mv_data, v.mv_size);
        f->len = v.mv_size;
        (*n)++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        as_archive_files_free(*files, *n);
        *files = NULL;
        *n = 0;
        return rc == ENOMEM ? AS_E_NOMEM : s_db("reading a final report", rc);
    }
    return 0;
}
