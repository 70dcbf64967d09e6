/* monitor: nil reports, reported months and flagged events in a small LMDB of their own. */
#include "monitor.h"
#include "division.h"
#include "err.h"
#include "log.h"
#include "measures_json.h"
#include "wire.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAP_BYTES   ((size_t)1 << 30) /* sparse; flags are a few hundred bytes each */
#define REPLAY_PAGE 4096

struct as_monitor_s {
    MDB_env *env;
    MDB_dbi nil;          /* county(4) year(2) month(1) → "" */
    MDB_dbi months;       /* county(4) year(2) month(1) → uint64 events read from the log */
    MDB_dbi flags;        /* seq(8, big-endian) → date(4) flags(4) JSON text */
    MDB_dbi meta;         /* "seq" → uint64 newest event-log sequence read */
    uint64_t seq;         /* under lock */
    pthread_mutex_t lock; /* one catch-up at a time, from any thread */
    pthread_cond_t idle;  /* signalled when pending falls to 0 */
    int pending;          /* catch-ups handed to another thread, not yet ended */
};

static const char *s_flag_names[] = {"check_char_failed",
                                     "unregistered",
                                     "online_unqualified",
                                     "outlier",
                                     "correction_target_missing",
                                     "duplicate_across_counties",
                                     "amendment"};

const char *as_flag_name(uint32_t bit)
{
    for (unsigned i = 0; i < sizeof s_flag_names / sizeof s_flag_names[0]; i++)
        if (bit == (1u << i))
            return s_flag_names[i];
    return NULL;
}

static int s_db_err(const char *what, int rc)
{
    AS_ERROR("monitor", "%s: %s", what, mdb_strerror(rc));
    return AS_E_DB;
}

static void s_cm_key(uint8_t k[7], uint32_t county, uint32_t year, uint32_t month)
{
    k[0] = (uint8_t)(county >> 24);
    k[1] = (uint8_t)(county >> 16);
    k[2] = (uint8_t)(county >> 8);
    k[3] = (uint8_t)county;
    k[4] = (uint8_t)(year >> 8);
    k[5] = (uint8_t)year;
    k[6] = (uint8_t)month;
}

as_monitor_t *as_monitor_new(const char *dir, bool no_sync, int *err)
{
    int rc;
    MDB_txn *txn = NULL;
    as_monitor_t *m = calloc(1, sizeof *m);
    if (!m) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        *err = -errno;
        AS_ERROR("monitor", "cannot create %s: %s", dir, strerror(errno));
        free(m);
        return NULL;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        *err = AS_E_NOMEM;
        free(m);
        return NULL;
    }
    if (pthread_cond_init(&m->idle, NULL) != 0) {
        pthread_mutex_destroy(&m->lock);
        *err = AS_E_NOMEM;
        free(m);
        return NULL;
    }
    *err = AS_E_DB;
    if ((rc = mdb_env_create(&m->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(m->env, 8);
    mdb_env_set_mapsize(m->env, MAP_BYTES);
    /* Meta pages are not flushed at each commit (one fsync instead of two): what the catch-ups
     * write is derived from the ledger's log and is re-read after a system crash undoes the last
     * commit; a nil report, which is not, is synced before it is acknowledged. */
    if ((rc = mdb_env_open(m->env, dir, MDB_NOTLS | (no_sync ? MDB_NOSYNC : MDB_NOMETASYNC),
                           0640)) != 0)
        goto fail;
    if ((rc = mdb_txn_begin(m->env, NULL, 0, &txn)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(txn, "nil", MDB_CREATE, &m->nil)) != 0 ||
        (rc = mdb_dbi_open(txn, "months", MDB_CREATE, &m->months)) != 0 ||
        (rc = mdb_dbi_open(txn, "flags", MDB_CREATE, &m->flags)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &m->meta)) != 0)
        goto fail;
    MDB_val k = {3, "seq"}, v;
    if (mdb_get(txn, m->meta, &k, &v) == 0 && v.mv_size == sizeof m->seq)
        memcpy(&m->seq, v.mv_data, sizeof m->seq);
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        goto fail;
    }
    *err = 0;
    return m;
fail:
    s_db_err(dir, rc);
    if (txn)
        mdb_txn_abort(txn);
    if (m->env)
        mdb_env_close(m->env);
    pthread_cond_destroy(&m->idle);
    pthread_mutex_destroy(&m->lock);
    free(m);
    return NULL;
}

void as_monitor_destroy(as_monitor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_monitor_t *m = *self_p;
    pthread_mutex_lock(&m->lock);
    while (m->pending > 0) /* a catch-up queued on a worker thread still uses m */
        pthread_cond_wait(&m->idle, &m->lock);
    pthread_mutex_unlock(&m->lock);
    mdb_env_close(m->env);
    pthread_cond_destroy(&m->idle);
    pthread_mutex_destroy(&m->lock);
    free(m);
    *self_p = NULL;
}

uint64_t as_monitor_seq(as_monitor_t *m)
{
    pthread_mutex_lock(&m->lock);
    uint64_t seq = m->seq;
    pthread_mutex_unlock(&m->lock);
    return seq;
}

void as_monitor_async_begin(as_monitor_t *m, as_ledger_t *l)
{
    as_ledger_hold_map(l, +1);
    pthread_mutex_lock(&m->lock);
    m->pending++;
    pthread_mutex_unlock(&m->lock);
}

int as_monitor_async_run(as_monitor_t *m, as_ledger_t *l)
{
    int rc = as_monitor_catch_up(m, l);
    as_ledger_hold_map(l, -1); /* before the end: the ledger may close once destroy returns */
    pthread_mutex_lock(&m->lock);
    if (--m->pending == 0)
        pthread_cond_broadcast(&m->idle);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int as_monitor_put_nil(as_monitor_t *m, uint32_t county, uint32_t year, uint32_t month)
{
    if (month < 1 || month > 12 || year < 2000 || year > 2100 || !as_division_is_county(county))
        return AS_E_INVALID;
    MDB_txn *txn;
    int rc = mdb_txn_begin(m->env, NULL, 0, &txn);
    if (rc != 0)
        return s_db_err("nil report", rc);
    uint8_t kb[7];
    s_cm_key(kb, county, year, month);
    MDB_val k = {sizeof kb, kb}, v = {0, ""};
    if ((rc = mdb_put(txn, m->nil, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        return s_db_err("nil report", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return s_db_err("nil report commit", rc);
    if ((rc = mdb_env_sync(m->env, 1)) != 0)
        return s_db_err("nil report sync", rc);
    return 0;
}

/* ---- following the event log ---------------------------------------------------------------- */

#define MONTH_SLOTS 1024 /* distinct county-months summed in memory per catch-up (power of 2) */

typedef struct {
    uint8_t key[7]; /* s_cm_key; all zero when free */
    uint64_t n;
} s_month_t;

typedef struct {
    as_monitor_t *m;
    MDB_txn *txn;
    int rc;
    uint64_t seq;
    as_log_entry_t *entry; /* a flagged event decoded, allocated on the first */
    as_jtext_t text;       /* its JSON */
    size_t used;
    s_month_t month[MONTH_SLOTS]; /* events per county-month read, written once per catch-up */
} s_scan_t;

/* Adds the summed county-months to the "months" table, and empties the sums. */
static int s_flush_months(s_scan_t *s)
{
    for (size_t i = 0; i < MONTH_SLOTS && s->used; i++) {
        s_month_t *mo = &s->month[i];
        if (!mo->n)
            continue;
        MDB_val k = {sizeof mo->key, mo->key}, v;
        uint64_t n = 0;
        int rc = mdb_get(s->txn, s->m->months, &k, &v);
        if (rc == 0 && v.mv_size == sizeof n)
            memcpy(&n, v.mv_data, sizeof n);
        else if (rc != 0 && rc != MDB_NOTFOUND)
            return s_db_err("months", rc);
        n += mo->n;
        v.mv_size = sizeof n;
        v.mv_data = &n;
        if ((rc = mdb_put(s->txn, s->m->months, &k, &v, 0)) != 0)
            return s_db_err("months", rc);
        memset(mo, 0, sizeof *mo);
        s->used--;
    }
    return 0;
}

/* Counts one event of the county-month key kb. */
static int s_count_month(s_scan_t *s, const uint8_t kb[7])
{
    if (s->used * 2 >= MONTH_SLOTS) {
        int rc = s_flush_months(s);
        if (rc)
            return rc;
    }
    uint32_t h = 2166136261u;
    for (int i = 0; i < 7; i++)
        h = (h ^ kb[i]) * 16777619u;
    for (size_t i = h & (MONTH_SLOTS - 1);; i = (i + 1) & (MONTH_SLOTS - 1)) {
        s_month_t *mo = &s->month[i];
        if (mo->n && memcmp(mo->key, kb, 7) == 0) {
            mo->n++;
            return 0;
        }
        if (!mo->n) {
            memcpy(mo->key, kb, 7);
            mo->n = 1;
            s->used++;
            return 0;
        }
    }
}

/* The flag's names as a JSON array. */
static void s_flag_list(as_jtext_t *o, uint32_t flags)
{
    as_jtext_raw(o, "[", 1);
    bool first = true;
    for (uint32_t bit = 1; bit && bit <= AS_FLAG_AMENDMENT; bit <<= 1)
        if ((flags & bit) && as_flag_name(bit)) {
            if (!first)
                as_jtext_raw(o, ",", 1);
            as_jtext_str(o, as_flag_name(bit));
            first = false;
        }
    as_jtext_raw(o, "]", 1);
}

#define S_LIT(o, lit) as_jtext_raw(o, lit, sizeof(lit) - 1)

/* The stored JSON of a flagged event (what /api/flags lists), written without a jansson tree:
 * about a tenth of realistic events are flagged, and building and dumping a tree per event was
 * most of the monitor's catch-up. The same text as jansson's compact dump of
 * {"seq","id","event_id","county","county_name","org_code","org_name","date","flags",
 * "funds_fen","beneficiaries","commit_ms","source_file"}, or, when a text is not valid UTF-8,
 * of {"seq","id","county","flags"} (tested against jansson in test_monitor). */
int as_monitor_flag_json(const as_log_entry_t *e, as_jtext_t *o)
{
    const as_event_t *ev = &e->ev;
    char idhex[33], date[16];
    as_id_to_hex(ev->id, idhex);
    snprintf(date, sizeof date, "%04u-%02u-%02u", ev->date / 10000, ev->date / 100 % 100,
             ev->date % 100);
    const as_division_t *div = as_division_find(ev->county);
    const char *cname = div ? div->name : "";
    bool text_ok = as_jtext_valid(ev->event_id) && as_jtext_valid(cname) &&
                   as_jtext_valid(ev->org_code) && as_jtext_valid(ev->org_name) &&
                   as_jtext_valid(ev->source_file);
    o->n = 0;
    o->failed = false;
    S_LIT(o, "{\"seq\":");
    as_jtext_int(o, (int64_t)e->seq);
    S_LIT(o, ",\"id\":");
    as_jtext_str(o, idhex);
    if (text_ok) {
        S_LIT(o, ",\"event_id\":");
        as_jtext_str(o, ev->event_id);
    }
    S_LIT(o, ",\"county\":");
    as_jtext_int(o, ev->county);
    if (text_ok) {
        S_LIT(o, ",\"county_name\":");
        as_jtext_str(o, cname);
        S_LIT(o, ",\"org_code\":");
        as_jtext_str(o, ev->org_code);
        S_LIT(o, ",\"org_name\":");
        as_jtext_str(o, ev->org_name);
        S_LIT(o, ",\"date\":");
        as_jtext_str(o, date);
    }
    S_LIT(o, ",\"flags\":");
    s_flag_list(o, ev->flags);
    if (text_ok) {
        S_LIT(o, ",\"funds_fen\":");
        as_jtext_int(o, ev->funds_fen);
        S_LIT(o, ",\"beneficiaries\":");
        as_jtext_int(o, (int64_t)ev->beneficiaries);
        S_LIT(o, ",\"commit_ms\":");
        as_jtext_int(o, (int64_t)e->commit_ms);
        S_LIT(o, ",\"source_file\":");
        as_jtext_str(o, ev->source_file);
    }
    S_LIT(o, "}");
    return o->failed ? AS_E_NOMEM : 0;
}

static int s_put_flag(s_scan_t *s, const as_log_entry_t *e)
{
    const as_event_t *ev = &e->ev;
    int rc = as_monitor_flag_json(e, &s->text);
    if (rc)
        return rc;
    const char *txt = s->text.p;
    size_t n = s->text.n;
    uint8_t kb[8];
    for (int i = 0; i < 8; i++)
        kb[i] = (uint8_t)(e->seq >> (56 - 8 * i));
    MDB_val k = {8, kb}, v = {8 + n, NULL};
    rc = mdb_put(s->txn, s->m->flags, &k, &v, MDB_RESERVE);
    if (rc == 0) {
        uint32_t hdr[2] = {ev->date, ev->flags};
        memcpy(v.mv_data, hdr, 8);
        memcpy((char *)v.mv_data + 8, txt, n);
    }
    return rc == 0 ? 0 : s_db_err("flag", rc);
}

/* Each entry is only peeked at (county, date, retract, flags); a flagged one is decoded. */
static int s_scan_cb(void *ctx, uint64_t seq, uint64_t commit_ms, const uint8_t *pb, size_t pb_len)
{
    s_scan_t *s = ctx;
    as_event_peek_t pk;
    if (as_event_peek(pb, pb_len, &pk) != 0) {
        s->rc = s_db_err("reading the event log", MDB_CORRUPTED);
        return 1;
    }
    s->seq = seq;
    if (pk.retract)
        return 0;
    uint8_t kb[7];
    s_cm_key(kb, pk.county, pk.date / 10000, pk.date / 100 % 100);
    if ((s->rc = s_count_month(s, kb)) != 0)
        return 1;
    if (!pk.flags)
        return 0;
    if (!s->entry && !(s->entry = malloc(sizeof *s->entry))) {
        s->rc = AS_E_NOMEM;
        return 1;
    }
    memset(s->entry, 0, offsetof(as_log_entry_t, ev));
    s->entry->seq = seq;
    s->entry->commit_ms = commit_ms;
    if (as_event_unpack(pb, pb_len, &s->entry->ev) != 0) {
        s->rc = s_db_err("reading the event log", MDB_CORRUPTED);
        return 1;
    }
    if ((s->rc = s_put_flag(s, s->entry)) != 0)
        return 1;
    return 0;
}

static int s_catch_up(as_monitor_t *m, as_ledger_t *l);

int as_monitor_catch_up(as_monitor_t *m, as_ledger_t *l)
{
    pthread_mutex_lock(&m->lock);
    int rc = s_catch_up(m, l);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int s_catch_up(as_monitor_t *m, as_ledger_t *l)
{
    uint64_t last = as_ledger_last_seq(l);
    if (last <= m->seq)
        return 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(m->env, NULL, 0, &txn);
    if (rc != 0)
        return s_db_err("catch up", rc);
    s_scan_t *s = calloc(1, sizeof *s);
    if (!s) {
        mdb_txn_abort(txn);
        return AS_E_NOMEM;
    }
    s->m = m;
    s->txn = txn;
    s->seq = m->seq;
    uint64_t from = m->seq + 1;
    while (from <= last) {
        uint64_t next = from;
        rc = as_ledger_replay_raw(l, from, REPLAY_PAGE, s_scan_cb, s, &next, &last);
        if (rc != 0 || s->rc != 0 || next <= from)
            break;
        from = next;
    }
    if (rc == 0)
        rc = s->rc;
    if (rc == 0)
        rc = s_flush_months(s);
    uint64_t seq = s->seq;
    free(s->entry);
    free(s->text.p);
    free(s);
    if (rc == 0) {
        MDB_val k = {3, "seq"}, v = {sizeof seq, &seq};
        if ((rc = mdb_put(txn, m->meta, &k, &v, 0)) != 0)
            rc = s_db_err("catch up", rc);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return s_db_err("catch up commit", rc);
    m->seq = seq;
    return 0;
}

/* ---- answers -------------------------------------------------------------------------------- */

json_t *as_monitor_completeness_json(as_monitor_t *m, uint32_t year, uint32_t today)
{
    MDB_txn *txn;
    if (mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn) != 0)
        return NULL;
    uint32_t last_month = 12;
    if (today / 10000 == year)
        last_month = today / 100 % 100;
    else if (today / 10000 < year)
        last_month = 0;
    json_t *o = json_object(), *months = json_array(), *counties = json_array();
    uint64_t sum[3] = {0, 0, 0};
    for (uint32_t mo = 1; mo <= 12; mo++) {
        char buf[8];
        snprintf(buf, sizeof buf, "%04u-%02u", year % 10000, mo);
        json_array_append_new(months, json_string(buf));
    }
    size_t n = 0;
    const as_division_t *c = as_division_counties(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *cells = json_array();
        uint64_t cnt[3] = {0, 0, 0};
        for (uint32_t mo = 1; mo <= 12; mo++) {
            uint8_t kb[7];
            s_cm_key(kb, c[i].code, year, mo);
            MDB_val k = {sizeof kb, kb}, v;
            const char *state;
            if (mdb_get(txn, m->months, &k, &v) == 0)
                state = "reported", cnt[0]++;
            else if (mdb_get(txn, m->nil, &k, &v) == 0)
                state = "nil", cnt[1]++;
            else if (mo > last_month)
                state = "future";
            else
                state = "silent", cnt[2]++;
            json_array_append_new(cells, json_string(state));
        }
        const as_division_t *city = as_division_find(c[i].parent);
        char code[12], pcode[12];
        snprintf(code, sizeof code, "%u", c[i].code);
        snprintf(pcode, sizeof pcode, "%u", c[i].parent);
        json_array_append_new(
            counties,
            json_pack("{s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:I}", "code", code, "name", c[i].name, "city",
                      pcode, "city_name", city ? city->name : "", "cells", cells, "reported",
                      (json_int_t)cnt[0], "nil", (json_int_t)cnt[1], "silent", (json_int_t)cnt[2]));
        for (int j = 0; j < 3; j++)
            sum[j] += cnt[j];
    }
    mdb_txn_abort(txn);
    json_object_set_new(o, "year", json_integer(year));
    json_object_set_new(o, "months", months);
    json_object_set_new(o, "counties", counties);
    json_object_set_new(o, "summary",
                        json_pack("{s:I,s:I,s:I}", "reported", (json_int_t)sum[0], "nil",
                                  (json_int_t)sum[1], "silent", (json_int_t)sum[2]));
    return o;
}

json_t *as_monitor_flags_json(as_monitor_t *m, uint32_t year, size_t limit)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    if (mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn) != 0)
        return NULL;
    if (mdb_cursor_open(txn, m->flags, &cur) != 0) {
        mdb_txn_abort(txn);
        return NULL;
    }
    json_t *list = json_array();
    uint64_t total = 0;
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        if (v.mv_size < 8)
            continue;
        uint32_t hdr[2];
        memcpy(hdr, v.mv_data, 8);
        if (year && hdr[0] / 10000 != year)
            continue;
        total++;
        if (json_array_size(list) < limit) {
            json_t *e = json_loadb((const char *)v.mv_data + 8, v.mv_size - 8, 0, NULL);
            if (e)
                json_array_append_new(list, e);
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return json_pack("{s:I,s:o}", "total", (json_int_t)total, "flags", list);
}
