/* registry: the organisation registry (credit code, name, type, level, business supervisory unit,
 * public-fundraising qualification), imported from CSV, kept in the ledger's LMDB and held in
 * memory for look-ups from the applying thread; supervisory units get stable small ids. */
#ifndef AS_REGISTRY_H
#define AS_REGISTRY_H

#include "ledger.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct as_registry_s as_registry_t;

/* Organisation types (as_org_info_t.type). */
enum {
    AS_ORGTYPE_UNKNOWN = 0,
    AS_ORGTYPE_SOCIAL_GROUP,   /* 社会团体 */
    AS_ORGTYPE_FOUNDATION,     /* 基金会 */
    AS_ORGTYPE_SOCIAL_SERVICE, /* 社会服务机构 (民办非企业单位) */
    AS_ORGTYPE_SOCIAL_WORK,    /* 社会工作服务机构 */
    AS_ORGTYPE_VOLUNTEER,      /* 志愿服务组织 */
    AS_ORGTYPE_TRADE_ASSOC,    /* 行业协会商会 */
    AS_ORGTYPE_OTHER,          /* 其他 */
    AS_ORGTYPE_COUNT
};

/* Registration levels (as_org_info_t.level). */
enum { AS_ORGLEVEL_UNKNOWN = 0, AS_ORGLEVEL_PROVINCIAL, AS_ORGLEVEL_CITY, AS_ORGLEVEL_COUNTY };

/* One registered organisation. */
typedef struct {
    char code[AS_CODE_LEN + 1]; /* unified social credit code, upper case */
    char name[AS_NAME_MAX + 1];
    uint8_t type;        /* AS_ORGTYPE_* */
    uint8_t level;       /* AS_ORGLEVEL_* */
    uint16_t supervisor; /* supervisory unit id (1…); 0 when the row named none */
    bool fundraising;    /* holds the public-fundraising qualification (公开募捐资格) */
} as_registry_org_t;

/* One supervisory unit. */
typedef struct {
    uint16_t id;
    char name[128];
} as_registry_unit_t;

/* Opens the registry's sub-databases in env (borrowed; created when missing) and loads them.
 * Returns the registry or NULL with *err set (AS_E_DB, AS_E_NOMEM). */
as_registry_t *as_registry_new(MDB_env *env, int *err);

/* Frees the registry; safe on NULL and twice. */
void as_registry_destroy(as_registry_t **self_p);

/* What an import did: rows taken, rows rejected (first errors kept as text). */
typedef struct {
    size_t imported, rejected;
    char errors[1024]; /* "row N: reason; …" (中文 / English), truncated */
} as_registry_import_t;

/* Replaces the registry with the rows of a CSV file (UTF-8 with or without BOM, or GB18030;
 * headers in Chinese or English, any order; RFC 4180 quoting). Supervisory units keep their ids
 * across imports (new names get the next id). Bad rows are skipped and reported in *res; a file
 * without the credit-code column, or with no good row, changes nothing (AS_E_INVALID). Writes in
 * its own transaction, then swaps the in-memory copy. Returns 0 or an error. */
int as_registry_import_csv(as_registry_t *r, const char *data, size_t len,
                           as_registry_import_t *res);

/* Reloads the in-memory copy from LMDB (what SIGHUP does). */
int as_registry_reload(as_registry_t *r);

/* Number of organisations registered (0: no registry loaded; nothing is judged unregistered). */
size_t as_registry_count(as_registry_t *r);

/* Looks up a credit code (case-insensitive): 0 with *out filled, or AS_E_NOTFOUND. Thread-safe. */
int as_registry_lookup(as_registry_t *r, const char *code, as_registry_org_t *out);

/* Name of a supervisory unit (borrowed, valid until the registry is destroyed), or NULL. */
const char *as_registry_unit_name(as_registry_t *r, uint16_t id);

/* All supervisory units, by id; *out is the caller's to free(). */
int as_registry_units(as_registry_t *r, as_registry_unit_t **out, size_t *n);

/* Callbacks for as_ledger_set_org_lookup and as_ledger_set_supervisor_name_cb (ctx: registry). */
int as_registry_org_cb(void *ctx, const char *credit_code, as_org_info_t *out);
const char *as_registry_unit_cb(void *ctx, uint16_t supervisor);

/* Chinese names of types and levels ("" for unknown values). */
const char *as_registry_type_name_zh(int type);
const char *as_registry_level_name_zh(int level);

#endif
