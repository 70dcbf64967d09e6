/* registry: the organisation registry — CSV import into the ledger's LMDB, an in-memory sorted
 * copy swapped under a read-write lock, stable supervisory-unit ids. */
#include "registry.h"
#include "err.h"
#include "ledger.h"
#include "log.h"

#include <ctype.h>
#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Layout (sub-databases of the ledger's environment):
 *   reg_orgs   credit code (18) → type, level, supervisor (u16 BE), fundraising, name
 *   reg_units  'i' + id (u16 BE) → name; 'n' + name → id (u16 BE). Units are never deleted, so
 *              an id stays the same unit's across imports.
 */

#define REC_HDR 5

typedef struct {
    as_registry_org_t *orgs; /* sorted by code */
    size_t n;
} s_snap_t;

struct as_registry_s {
    MDB_env *env;
    MDB_dbi db_orgs, db_units;
    pthread_rwlock_t lock; /* guards snap and units */
    s_snap_t snap;
    char **units; /* id → name (index 0 unused); grows, never shrinks, so names stay borrowed */
    size_t nunits;
};

static const char *const s_type_zh[AS_ORGTYPE_COUNT] = {
    "",    "社会团体", "基金会", "社会服务机构", "社会工作服务机构", "志愿服务组织", "行业协会商会",
    "其他"};
static const char *const s_type_en[AS_ORGTYPE_COUNT] = {
    "",          "social_group",      "foundation", "social_service", "social_work",
    "volunteer", "trade_association", "other"};

const char *as_registry_type_name_zh(int type)
{
    return type > 0 && type < AS_ORGTYPE_COUNT ? s_type_zh[type] : "";
}

const char *as_registry_level_name_zh(int level)
{
    static const char *const zh[] = {"", "省级", "市级", "县级"};
    return level > 0 && level <= AS_ORGLEVEL_COUNTY ? zh[level] : "";
}

/* ---- loading ------------------------------------------------------------------------------ */

static int s_cmp_org(const void *a, const void *b)
{
    return strcmp(((const as_registry_org_t *)a)->code, ((const as_registry_org_t *)b)->code);
}

static int s_db(const char *what, int rc)
{
    AS_ERROR("registry", "%s failed: %s", what, mdb_strerror(rc));
    return AS_E_DB;
}

/* Reads both databases in txn into a new snapshot and unit table, then swaps them in. */
static int s_load(as_registry_t *r, MDB_txn *txn)
{
    s_snap_t snap = {NULL, 0};
    size_t cap = 0;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, r->db_orgs, &c);
    if (rc)
        return s_db("reading the registry", rc);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != AS_CODE_LEN || v.mv_size < REC_HDR)
            continue;
        if (snap.n == cap) {
            cap = cap ? cap * 2 : 256;
            as_registry_org_t *o = realloc(snap.orgs, cap * sizeof *o);
            if (!o) {
                mdb_cursor_close(c);
                free(snap.orgs);
                return AS_E_NOMEM;
            }
            snap.orgs = o;
        }
        as_registry_org_t *o = &snap.orgs[snap.n++];
        const uint8_t *p = v.mv_data;
        memcpy(o->code, k.mv_data, AS_CODE_LEN);
        o->code[AS_CODE_LEN] = 0;
        o->type = p[0];
        o->level = p[1];
        o->supervisor = (uint16_t)(p[2] << 8 | p[3]);
        o->fundraising = p[4] != 0;
        size_t nl = v.mv_size - REC_HDR;
        if (nl > AS_NAME_MAX)
            nl = AS_NAME_MAX;
        memcpy(o->name, p + REC_HDR, nl);
        o->name[nl] = 0;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        free(snap.orgs);
        return s_db("reading the registry", rc);
    }
    /* units: only new ids are added, so borrowed names stay valid */
    char **units = NULL;
    size_t nunits = 0;
    if ((rc = mdb_cursor_open(txn, r->db_units, &c)) != 0) {
        free(snap.orgs);
        return s_db("reading supervisory units", rc);
    }
    uint8_t start = 'i';
    k.mv_size = 1;
    k.mv_data = &start;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != 3 || kp[0] != 'i')
            break;
        size_t id = (size_t)(kp[1] << 8 | kp[2]);
        if (id >= nunits) {
            char **u = realloc(units, (id + 1) * sizeof *u);
            if (!u)
                break;
            memset(u + nunits, 0, (id + 1 - nunits) * sizeof *u);
            units = u;
            nunits = id + 1;
        }
        units[id] = strndup(v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    if (snap.n)
        qsort(snap.orgs, snap.n, sizeof *snap.orgs, s_cmp_org);

    pthread_rwlock_wrlock(&r->lock);
    free(r->snap.orgs);
    r->snap = snap;
    if (nunits > r->nunits) {
        char **u = realloc(r->units, nunits * sizeof *u);
        if (u) {
            memset(u + r->nunits, 0, (nunits - r->nunits) * sizeof *u);
            r->units = u;
            r->nunits = nunits;
        }
    }
    for (size_t i = 0; i < nunits; i++) {
        if (i < r->nunits && !r->units[i]) {
            r->units[i] = units[i];
            units[i] = NULL;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    for (size_t i = 0; i < nunits; i++)
        free(units[i]);
    free(units);
    return 0;
}

as_registry_t *as_registry_new(MDB_env *env, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    as_registry_t *r = calloc(1, sizeof *r);
    if (!r) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    pthread_rwlock_init(&r->lock, NULL);
    r->env = env;
    MDB_txn *txn;
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc) {
        *err = s_db("opening the registry", rc);
        as_registry_destroy(&r);
        return NULL;
    }
    if ((rc = mdb_dbi_open(txn, "reg_orgs", MDB_CREATE, &r->db_orgs)) != 0 ||
        (rc = mdb_dbi_open(txn, "reg_units", MDB_CREATE, &r->db_units)) != 0 ||
        (rc = s_load(r, txn)) != 0)
        mdb_txn_abort(txn);
    else
        rc = as_ledger_txn_commit(txn);
    if (rc) {
        *err = rc < 0 ? rc : s_db("opening the registry", rc);
        as_registry_destroy(&r);
        return NULL;
    }
    return r;
}

void as_registry_destroy(as_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_registry_t *r = *self_p;
    *self_p = NULL;
    free(r->snap.orgs);
    for (size_t i = 0; i < r->nunits; i++)
        free(r->units[i]);
    free(r->units);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

int as_registry_reload(as_registry_t *r)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_db("reloading the registry", rc);
    rc = s_load(r, txn);
    mdb_txn_abort(txn);
    if (rc == 0)
        AS_INFO("registry", "reloaded: %zu organisations", as_registry_count(r));
    return rc;
}

size_t as_registry_count(as_registry_t *r)
{
    pthread_rwlock_rdlock(&r->lock);
    size_t n = r->snap.n;
    pthread_rwlock_unlock(&r->lock);
    return n;
}

int as_registry_lookup(as_registry_t *r, const char *code, as_registry_org_t *out)
{
    as_registry_org_t key;
    size_t i;
    for (i = 0; code[i] && i < AS_CODE_LEN; i++)
        key.code[i] = (char)toupper((unsigned char)code[i]);
    key.code[i] = 0;
    int rc = AS_E_NOTFOUND;
    pthread_rwlock_rdlock(&r->lock);
    const as_registry_org_t *o =
        r->snap.n ? bsearch(&key, r->snap.orgs, r->snap.n, sizeof key, s_cmp_org) : NULL;
    if (o) {
        *out = *o;
        rc = 0;
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

const char *as_registry_unit_name(as_registry_t *r, uint16_t id)
{
    pthread_rwlock_rdlock(&r->lock);
    const char *s = id < r->nunits ? r->units[id] : NULL;
    pthread_rwlock_unlock(&r->lock);
    return s;
}

int as_registry_units(as_registry_t *r, as_registry_unit_t **out, size_t *n)
{
    pthread_rwlock_rdlock(&r->lock);
    *out = calloc(r->nunits ? r->nunits : 1, sizeof **out);
    *n = 0;
    for (size_t i = 1; *out && i < r->nunits; i++) {
        if (!r->units[i])
            continue;
        (*out)[*n].id = (uint16_t)i;
        snprintf((*out)[*n].name, sizeof(*out)[*n].name, "%s", r->units[i]);
        (*n)++;
    }
    pthread_rwlock_unlock(&r->lock);
    return *out ? 0 : AS_E_NOMEM;
}

int as_registry_org_cb(void *ctx, const char *credit_code, as_org_info_t *out)
{
    as_registry_org_t o;
    if (as_registry_lookup(ctx, credit_code, &o) != 0)
        return -1;
    out->supervisor = o.supervisor;
    out->type = o.type;
    out->level = o.level;
    return 0;
}

const char *as_registry_unit_cb(void *ctx, uint16_t supervisor)
{
    return supervisor ? as_registry_unit_name(ctx, supervisor) : NULL;
}

/* ---- CSV import --------------------------------------------------------------------------- */

/* One RFC 4180 field from *p (up to end) into a malloc'd string; *eol set at a record's end. */
static char *s_field(const char **p, const char *end, bool *eol)
{
    const char *s = *p;
    size_t cap = 64, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    bool quoted = s < end && *s == '"';
    if (quoted)
        s++;
    *eol = false;
    while (s < end) {
        char ch = *s;
        if (quoted) {
            if (ch == '"') {
                if (s + 1 < end && s[1] == '"') {
                    s += 2;
                } else {
                    quoted = false;
                    s++;
                    continue;
                }
            } else {
                s++;
            }
        } else {
            if (ch == ',') {
                s++;
                break;
            }
            if (ch == '\r' || ch == '\n') {
                s += (ch == '\r' && s + 1 < end && s[1] == '\n') ? 2 : 1;
                *eol = true;
                break;
            }
            s++;
        }
        if (n + 2 > cap) {
            char *o = realloc(out, cap *= 2);
            if (!o) {
                free(out);
                return NULL;
            }
            out = o;
        }
        out[n++] = ch;
    }
    if (s >= end)
        *eol = true;
    out[n] = 0;
    *p = s;
    /* trim spaces */
    char *b = out;
    while (*b == ' ' || *b == '\t')
        b++;
    size_t m = strlen(b);
    while (m && (b[m - 1] == ' ' || b[m - 1] == '\t'))
        b[--m] = 0;
    memmove(out, b, m + 1);
    return out;
}

enum { C_CODE, C_NAME, C_TYPE, C_LEVEL, C_UNIT, C_FUND, C_N };

static int s_header(const char *h)
{
    static const char *const names[C_N][6] = {
        {"统一社会信用代码", "credit_code", "org_credit_code", "code", NULL},
        {"组织名称", "name", "org_name", "名称", NULL},
        {"类型", "type", "org_type", "组织类型", NULL},
        {"级别", "level", "登记级别", "registration_level", NULL},
        {"业务主管单位", "supervisor", "supervisory_unit", "supervisory unit", NULL},
        {"公开募捐资格", "public_fundraising", "fundraising_qualification", "fundraising",
         "public-fundraising qualification", NULL}};
    for (int c = 0; c < C_N; c++)
        for (int i = 0; names[c][i]; i++)
            if (strcasecmp(h, names[c][i]) == 0)
                return c;
    return -1;
}

static int s_parse_type(const char *s)
{
    for (int t = 1; t < AS_ORGTYPE_COUNT; t++)
        if (strcmp(s, s_type_zh[t]) == 0 || strcasecmp(s, s_type_en[t]) == 0)
            return t;
    if (strcmp(s, "民办非企业单位") == 0 || strcmp(s, "民办非企业") == 0)
        return AS_ORGTYPE_SOCIAL_SERVICE;
    if (strcmp(s, "社会组织") == 0 || !s[0])
        return AS_ORGTYPE_OTHER;
    return -1;
}

static int s_parse_level(const char *s)
{
    if (!s[0])
        return AS_ORGLEVEL_UNKNOWN;
    if (!strcmp(s, "省级") || !strcasecmp(s, "provincial") || !strcasecmp(s, "province") ||
        !strcmp(s, "省"))
        return AS_ORGLEVEL_PROVINCIAL;
    if (!strcmp(s, "市级") || !strcasecmp(s, "city") || !strcmp(s, "市") || !strcmp(s, "设区市级"))
        return AS_ORGLEVEL_CITY;
    if (!strcmp(s, "县级") || !strcasecmp(s, "county") || !strcmp(s, "县") || !strcmp(s, "县区级"))
        return AS_ORGLEVEL_COUNTY;
    return -1;
}

static int s_parse_bool(const char *s)
{
    if (!strcmp(s, "是") || !strcmp(s, "有") || !strcmp(s, "1") || !strcasecmp(s, "yes") ||
        !strcasecmp(s, "true") || !strcasecmp(s, "y"))
        return 1;
    if (!s[0] || !strcmp(s, "否") || !strcmp(s, "无") || !strcmp(s, "0") || !strcasecmp(s, "no") ||
        !strcasecmp(s, "false") || !strcasecmp(s, "n"))
        return 0;
    return -1;
}

static bool s_valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (k == 9 || i + k >= n + (k ? 0 : 1))
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

/* data as UTF-8: itself (*owned NULL) or a GB18030 conversion (*owned to free). */
static const char *s_utf8(const char *data, size_t *len, char **owned)
{
    *owned = NULL;
    if (*len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        *len -= 3;
        return data + 3;
    }
    if (s_valid_utf8((const unsigned char *)data, *len))
        return data;
    iconv_t cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t)-1)
        return data;
    size_t cap = *len * 2 + 16, left = cap, in = *len;
    char *out = malloc(cap), *op = out, *ip = (char *)data;
    if (out && iconv(cd, &ip, &in, &op, &left) != (size_t)-1) {
        *owned = out;
        *len = cap - left;
        iconv_close(cd);
        return out;
    }
    free(out);
    iconv_close(cd);
    return data;
}

/* The id of unit name in txn, created when new. */
static int s_unit_id(as_registry_t *r, MDB_txn *txn, const char *name, uint16_t *id)
{
    size_t n = strlen(name);
    char *kb = malloc(n + 1);
    if (!kb)
        return AS_E_NOMEM;
    kb[0] = 'n';
    memcpy(kb + 1, name, n);
    MDB_val k = {n + 1, kb}, v;
    int rc = mdb_get(txn, r->db_units, &k, &v);
    if (rc == 0 && v.mv_size == 2) {
        const uint8_t *p = v.mv_data;
        *id = (uint16_t)(p[0] << 8 | p[1]);
        free(kb);
        return 0;
    }
    /* the next id: one past the largest 'i' key */
    MDB_cursor *c;
    uint16_t next = 1;
    if ((rc = mdb_cursor_open(txn, r->db_units, &c)) == 0) {
        uint8_t last[3] = {'i', 0xff, 0xff};
        MDB_val lk = {3, last}, lv;
        rc = mdb_cursor_get(c, &lk, &lv, MDB_SET_RANGE);
        rc =
            rc == 0 ? mdb_cursor_get(c, &lk, &lv, MDB_PREV) : mdb_cursor_get(c, &lk, &lv, MDB_LAST);
        while (rc == 0) {
            const uint8_t *kp = lk.mv_data;
            if (lk.mv_size == 3 && kp[0] == 'i') {
                next = (uint16_t)((kp[1] << 8 | kp[2]) + 1);
                break;
            }
            if (kp[0] < 'i')
                break;
            rc = mdb_cursor_get(c, &lk, &lv, MDB_PREV);
        }
        mdb_cursor_close(c);
    }
    uint8_t idb[2] = {(uint8_t)(next >> 8), (uint8_t)next}, ik[3] = {'i', idb[0], idb[1]};
    MDB_val iv = {2, idb}, ikv = {3, ik}, nv = {n, (void *)name};
    rc = mdb_put(txn, r->db_units, &k, &iv, 0);
    if (rc == 0)
        rc = mdb_put(txn, r->db_units, &ikv, &nv, 0);
    free(kb);
    if (rc)
        return s_db("adding a supervisory unit", rc);
    *id = next;
    return 0;
}

static void s_note(as_registry_import_t *res, size_t row, const char *why)
{
    size_t used = strlen(res->errors);
    if (used + 8 < sizeof res->errors)
        snprintf(res->errors + used, sizeof res->errors - used, "%srow %zu: %s", used ? "; " : "",
                 row, why);
}

int as_registry_import_csv(as_registry_t *r, const char *data, size_t len,
                           as_registry_import_t *res)
{
    as_registry_import_t dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    char *owned;
    const char *p = s_utf8(data, &len, &owned), *end = p + len;
    int col[32], ncol = 0, rc = 0;
    int have[C_N];
    for (int i = 0; i < C_N; i++)
        have[i] = -1;
    bool eol = false;
    while (!eol && p < end && ncol < 32) {
        char *h = s_field(&p, end, &eol);
        if (!h) {
            free(owned);
            return AS_E_NOMEM;
        }
        col[ncol] = s_header(h);
        if (col[ncol] >= 0)
            have[col[ncol]] = ncol;
        ncol++;
        free(h);
    }
    if (have[C_CODE] < 0) {
        snprintf(res->errors, sizeof res->errors,
                 "缺少“统一社会信用代码”列 / the credit code column is missing");
        free(owned);
        return AS_E_INVALID;
    }
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) != 0) {
        free(owned);
        return s_db("importing the registry", rc);
    }
    if ((rc = mdb_drop(txn, r->db_orgs, 0)) != 0) {
        rc = s_db("clearing the registry", rc);
        goto fail;
    }
    size_t row = 1;
    while (p < end) {
        char *cell[C_N] = {0};
        int ci = 0;
        bool blank = true;
        eol = false;
        while (!eol) {
            char *f = s_field(&p, end, &eol);
            if (!f) {
                rc = AS_E_NOMEM;
                break;
            }
            if (f[0])
                blank = false;
            if (ci < ncol && col[ci] >= 0 && !cell[col[ci]])
                cell[col[ci]] = f;
            else
                free(f);
            ci++;
        }
        row++;
        const char *why = NULL;
        as_registry_org_t o;
        memset(&o, 0, sizeof o);
        int t = 0, lv = 0, fund = 0;
        if (rc || blank)
            goto next;
        const char *code = cell[C_CODE] ? cell[C_CODE] : "";
        if (strlen(code) != AS_CODE_LEN) {
            why = "统一社会信用代码应为18位 / the credit code must have 18 characters";
            goto next;
        }
        for (int i = 0; i < AS_CODE_LEN; i++)
            o.code[i] = (char)toupper((unsigned char)code[i]);
        snprintf(o.name, sizeof o.name, "%s", cell[C_NAME] ? cell[C_NAME] : "");
        if ((t = s_parse_type(cell[C_TYPE] ? cell[C_TYPE] : "")) < 0) {
            why = "无法识别的类型 / unknown organisation type";
            goto next;
        }
        if ((lv = s_parse_level(cell[C_LEVEL] ? cell[C_LEVEL] : "")) < 0) {
            why = "级别应为省级、市级或县级 / level must be provincial, city or county";
            goto next;
        }
        if ((fund = s_parse_bool(cell[C_FUND] ? cell[C_FUND] : "")) < 0) {
            why = "公开募捐资格应为是或否 / fundraising qualification must be yes or no";
            goto next;
        }
        o.type = (uint8_t)t;
        o.level = (uint8_t)lv;
        o.fundraising = fund == 1;
        if (cell[C_UNIT] && cell[C_UNIT][0] &&
            (rc = s_unit_id(r, txn, cell[C_UNIT], &o.supervisor)) != 0)
            goto next;
        size_t nl = strlen(o.name);
        uint8_t rec[REC_HDR + AS_NAME_MAX];
        rec[0] = o.type;
        rec[1] = o.level;
        rec[2] = (uint8_t)(o.supervisor >> 8);
        rec[3] = (uint8_t)o.supervisor;
        rec[4] = o.fundraising;
        memcpy(rec + REC_HDR, o.name, nl);
        MDB_val k = {AS_CODE_LEN, o.code}, v = {REC_HDR + nl, rec};
        if ((rc = mdb_put(txn, r->db_orgs, &k, &v, 0)) != 0)
            rc = s_db("writing the registry", rc);
    next:
        for (int i = 0; i < C_N; i++)
            free(cell[i]);
        if (rc)
            goto fail;
        if (why) {
            res->rejected++;
            s_note(res, row, why);
        } else if (!blank) {
            res->imported++;
        }
    }
    if (res->imported == 0) {
        rc = AS_E_INVALID;
        if (!res->errors[0])
            snprintf(res->errors, sizeof res->errors, "没有有效的行 / no valid row");
        goto fail;
    }
    if ((rc = as_ledger_txn_commit(txn)) != 0) {
        free(owned);
        return s_db("committing the registry", rc);
    }
    free(owned);
    AS_INFO("registry", "imported %zu organisations (%zu rows rejected)", res->imported,
            res->rejected);
    return as_registry_reload(r);
fail:
    mdb_txn_abort(txn);
    free(owned);
    return rc;
}
