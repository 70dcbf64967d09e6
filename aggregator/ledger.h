/* ledger: the provincial ledger in LMDB — dedup of event ids, the gap-free event log, totals at
 * the finest grain, distinct sets with reference counts, corrections and retractions,
 * per-collector state — written in group-commit transactions, read without blocking the writer. */
#ifndef AS_LEDGER_H
#define AS_LEDGER_H

#include "event.h"

#include <lmdb.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct as_ledger_s as_ledger_t;

/* ---- opening ----------------------------------------------------------------------------------
 */

typedef struct {
    size_t initial_map_bytes; /* 0: 64 MiB; the map grows by itself before it is full */
    bool no_sync;             /* true only for tests that do not need durability */
    /* false: as_ledger_begin grows the map when needed (single-threaded users);
     * true: only as_ledger_grow does, called by the owner at a moment when no transaction of
     * the process is open — LMDB forbids resizing under any open transaction, and a daemon
     * reads on one thread while it writes on another. */
    bool grow_outside_groups;
} as_ledger_opts_t;

/* Opens (creating if needed) the ledger in directory dir (created if missing). opts may be NULL.
 * Returns the ledger or NULL with *err set (AS_E_DB, -errno). Caller owns it. */
as_ledger_t *as_ledger_new(const char *dir, const as_ledger_opts_t *opts, int *err);

/* Closes the ledger (aborting any open write transaction); safe on NULL and twice. */
void as_ledger_destroy(as_ledger_t **self_p);

/* ---- organisations: the registry hook ------------------------------------------------------ */

/* What the organisation registry says about a credit code; kept with each logged event so that
 * a later correction subtracts exactly what was added, whatever the registry says by then. */
typedef struct {
    uint16_t supervisor; /* business supervisory unit id; 0 = 未登记 / unknown */
    uint8_t type;        /* organisation type (registry's numbering); 0 = unknown */
    uint8_t level;       /* registration level (registry's numbering); 0 = unknown */
} as_org_info_t;

/* Fills *out for credit_code and returns 0, or returns non-zero when the code is not known (the
 * event is then counted under supervisor 0, type 0, level 0). Called inside as_ledger_apply. */
typedef int (*as_org_lookup_cb)(void *ctx, const char *credit_code, as_org_info_t *out);

/* Installs (or with cb NULL removes) the organisation look-up used by as_ledger_apply. */
void as_ledger_set_org_lookup(as_ledger_t *l, as_org_lookup_cb cb, void *ctx);

/* Name of a supervisory unit for the supervisor rows of as_ledger_totals; NULL when unknown.
 * The returned text is borrowed and must stay valid until the next call. */
typedef const char *(*as_supervisor_name_cb)(void *ctx, uint16_t supervisor);

/* Installs the supervisor naming (default: 0 → "未登记/unknown", n → "业务主管单位 n"). */
void as_ledger_set_supervisor_name_cb(as_ledger_t *l, as_supervisor_name_cb cb, void *ctx);

/* ---- writing: one transaction per group of events (group commit) --------------------------- */

typedef enum {
    AS_RESULT_ACCEPTED = 1,  /* applied; seq is its event-log sequence */
    AS_RESULT_DUPLICATE = 2, /* id already in the ledger: success for the sender */
    AS_RESULT_REJECTED = 3,  /* not applied: reject/reason say why */
} as_result_code_t;

typedef enum {
    AS_REJECT_NONE = 0,
    AS_REJECT_INVALID = 1,
    AS_REJECT_WRONG_COUNTY = 2,
    AS_REJECT_RETRACT_NOT_LIVE = 3,
    AS_REJECT_MALFORMED = 4,
    AS_REJECT_OTHER_COUNTY = 5, /* a correction/retraction naming another county's event */
    AS_REJECT_OVERFLOW = 6,     /* applying it would overflow a total */
    AS_REJECT_CODE_COUNT
} as_reject_code_t;

typedef struct {
    uint8_t code;     /* as_result_code_t */
    uint8_t reject;   /* as_reject_code_t */
    uint64_t seq;     /* event-log sequence when accepted (else 0) */
    uint32_t pb_off;  /* accepted: the event as the log holds it (packed aidstat.v1.Event) is */
    uint32_t pb_len;  /* as_ledger_packed() + pb_off, pb_len bytes; 0 otherwise */
    char reason[200]; /* "中文 / English" when rejected */
} as_apply_result_t;

/* What the collector told us, kept per collector in the ledger in the same transaction. */
typedef struct {
    char collector_id[64];
    uint32_t county;
    uint64_t last_batch_seq; /* newest batch sequence committed */
    uint64_t backlog;        /* from its last heartbeat */
    uint64_t last_heard_ms;
    char version[32];
} as_collector_state_t;

/* Grows the map when it is more than 70% used or has less room than the largest groups need
 * (see opts.grow_outside_groups). The caller guarantees that no transaction of this process
 * is open, in any thread; a running as_ledger_backup postpones growth. Returns 0, AS_E_STATE
 * when the group transaction is open, or AS_E_DB. */
int as_ledger_grow(as_ledger_t *l);

/* Grows the map, if needed, so that at least `bytes` lie free past the data (for one large write
 * transaction of an extension, e.g. a conversion when it opens), under the same rules as
 * as_ledger_grow. Returns 0, AS_E_STATE when a group transaction is open or the map is held, or
 * AS_E_DB. */
int as_ledger_reserve(as_ledger_t *l, uint64_t bytes);

/* Holds (delta +1) or releases (-1) the map's size for reads in another thread: as_ledger_grow
 * does nothing while it is held. Hold on the thread that grows the map (the loop) before handing
 * work to the other thread; release from anywhere once that work's reads are over. */
void as_ledger_hold_map(as_ledger_t *l, int delta);

/* True when as_ledger_grow wanted to grow the map but it was held: holders that can wait (the
 * monitor's catch-up) should not take a new hold until a growth has happened. */
bool as_ledger_growth_waiting(as_ledger_t *l);

/* Starts the write transaction of a group. Returns 0, AS_E_STATE if one is open, AS_E_DB. */
int as_ledger_begin(as_ledger_t *l);

/* Applies one (already validated) event inside the open transaction:
 *  - an id already in the ledger (or earlier in this group) → DUPLICATE, nothing changes;
 *  - a retraction (retract && has_correction): the target must be live, else REJECTED with
 *    AS_REJECT_RETRACT_NOT_LIVE; the target's contribution leaves the totals and distinct sets;
 *  - a correction (has_correction): a live target's contribution is replaced by this event's
 *    (totals move by the difference); a target that is not live makes it a new event flagged
 *    AS_FLAG_CORRECTION_TARGET_MISSING;
 *  - otherwise a new event: totals and distinct sets grow.
 * Accepted events get the next gap-free sequence number and go to the event log (ev->flags as
 * finally set). Returns 0 (see *res) or a negative error, after which the group must be aborted. */
int as_ledger_apply(as_ledger_t *l, as_event_t *ev, as_apply_result_t *res);

/* as_ledger_apply, given ev already packed (as_event_pack, pk_len bytes at pk) by a caller with
 * CPU to spare: the log then copies those bytes instead of packing ev again, unless the ledger
 * or its event hook changed ev's flags (then it packs). pk NULL: as as_ledger_apply. */
int as_ledger_apply_packed(as_ledger_t *l, as_event_t *ev, const uint8_t *pk, size_t pk_len,
                           as_apply_result_t *res);

/* The packed events of the accepted results of the group begun last (see as_apply_result_t),
 * so that listeners publish the log's own bytes without packing each event again. Take the
 * pointer right after the group's commit: the ledger packs groups into two buffers in turn,
 * so a committed group's bytes stay valid while the next group is applied and committed, until
 * the one after it begins. */
const uint8_t *as_ledger_packed(const as_ledger_t *l);

/* Counts one event of the current source (as_ledger_set_source) that was rejected before the
 * ledger (ingest's own validation), so that the collector's rejected count, kept in the ledger,
 * includes it and survives a restart. */
void as_ledger_count_rejected(as_ledger_t *l);

/* Records a collector's state in the open transaction (counts of accepted/duplicate/rejected are
 * kept by the ledger itself from as_ledger_apply calls made after as_ledger_set_source). */
int as_ledger_put_collector(as_ledger_t *l, const as_collector_state_t *st);

/* Names the collector that the following as_ledger_apply calls come from (for its counters);
 * NULL for none. */
void as_ledger_set_source(as_ledger_t *l, const char *collector_id);

typedef struct {
    uint64_t first_seq; /* first sequence accepted in this group, 0 if none */
    uint64_t last_seq;  /* newest sequence in the log after the commit */
    size_t accepted, duplicates, rejected;
    uint64_t commit_us;  /* mdb_txn_commit: the pages, their fsync, the meta page (and the
                            meta page's fsync for as_ledger_commit) */
    uint64_t commit_no;  /* this group's number among the commits since the ledger opened */
    uint64_t group_us;   /* the whole transaction, begin to durable commit; set by the caller
                            that times it (ingest), else 0 */
    uint64_t commit_ms;  /* the Unix ms logged with this group's events (as_log_entry_t) */
    uint64_t page_bytes; /* what mdb_txn_commit wrote: the group's dirty pages (0: unknown) */
} as_commit_info_t;

/* Writes the summed deltas and commits durably. Only after this returns 0 may results be
 * acknowledged. On failure the group is aborted and nothing of it is in the ledger, except
 * AS_E_DB from the final fsync: then the group is committed (readers see it) but may not be on
 * disk — acknowledge nothing of it. */
int as_ledger_commit(as_ledger_t *l, as_commit_info_t *info);

/* The pipelined commit: as as_ledger_commit, but returns once the group is committed (readers
 * see it; its pages are on disk) without syncing its meta page; the next group may begin at
 * once. Acknowledge its events only after an as_ledger_sync that began after this returned has
 * returned 0. */
int as_ledger_commit_nosync(as_ledger_t *l, as_commit_info_t *info);

/* Makes every group committed so far durable (fdatasync: their meta page). Safe from any
 * thread, also while the next group is being applied. 0 or AS_E_DB (the disk failed: those
 * groups must not be acknowledged). */
int as_ledger_sync(as_ledger_t *l);

/* True once an fsync of the ledger failed (in a commit or as_ledger_sync): nothing committed
 * since its last successful sync may be on disk, and none of it must be acknowledged; the
 * owner should stop. as_ledger_sync fails from then on. */
bool as_ledger_failed(as_ledger_t *l);

/* True when the group numbered commit_no (as_commit_info_t) is known to be durable. */
bool as_ledger_durable(as_ledger_t *l, uint64_t commit_no);

/* mdb_txn_commit for other write transactions in the ledger's environment (registry, archive,
 * report, review): durable on return 0 (the environment does not sync meta pages). Works on
 * transactions of any environment (plain mdb_txn_commit elsewhere). Returns an LMDB code or
 * errno; the transaction is gone either way. */
int as_ledger_txn_commit(MDB_txn *txn);

/* Drops the open transaction, if any. */
void as_ledger_abort(as_ledger_t *l);

/* ---- reading: each call uses its own read transaction (never waits for the writer) -------- */

typedef struct {
    uint64_t activities;
    uint64_t organisations; /* distinct */
    uint64_t beneficiaries;
    uint64_t registered_poor;
    int64_t funds_fen;
    int64_t goods_fen;
    uint64_t volunteers;
    uint64_t volunteer_tenths;
    uint64_t social_workers;
    uint64_t persons_lifted;
    uint64_t jobs;
    uint64_t trainees;
    int64_t income_fen;
    uint64_t villages;      /* distinct */
    uint64_t deep_villages; /* distinct */
    uint64_t counties;      /* distinct */
} as_measures_t;

typedef enum {
    AS_DIM_PROVINCE = 0,
    AS_DIM_CITY,
    AS_DIM_COUNTY,
    AS_DIM_AREA,
    AS_DIM_SUPERVISOR,
    AS_DIM_ORG,
    AS_DIM_MONTH,
    AS_DIM_GROUP,   /* beneficiary group */
    AS_DIM_FUNDING, /* funding source */
    AS_DIM_PROJECT,
    AS_DIM_POVERTY, /* inside / outside the 25 former poverty counties */
    AS_DIM_COUNT
} as_dim_t;

/* "province" … "poverty" ↔ as_dim_t; parse returns -1 for an unknown name. */
const char *as_dim_name(as_dim_t d);
int as_dim_parse(const char *name);

typedef struct {
    uint32_t county;    /* 0: whole province; a county code; or a city code (e.g. 360700) */
    int32_t supervisor; /* -1: any; else a supervisor id (0 = unregistered / unknown) */
} as_filter_t;

typedef struct {
    char key[24];  /* "360730", "2026-03", "education", credit code, supervisor id ... */
    char name[96]; /* human name: 宁都县, 教育扶贫, organisation or unit name ... */
    as_measures_t m;
} as_totals_row_t;

/* Totals of year grouped by `by`, restricted by filter (NULL: none): rows sorted by key, and the
 * total over them (distinct measures are distinct over the whole filter, not summed). *rows is
 * the caller's to free(). Reads totals and distinct sets only, never the event log. */
int as_ledger_totals(as_ledger_t *l, uint32_t year, as_dim_t by, const as_filter_t *filter,
                     as_totals_row_t **rows, size_t *nrows, as_measures_t *total);

/* Like as_ledger_totals, grouped by two dimensions in one scan (for reports that cross a
 * dimension with another, e.g. supervisor × county): row keys "KEY|KEY2" and names
 * "NAME|NAME2" (keys cut at 23 bytes: keep the first dimension short); rows sorted by key. */
int as_ledger_totals2(as_ledger_t *l, uint32_t year, as_dim_t by, as_dim_t by2,
                      const as_filter_t *filter, as_totals_row_t **rows, size_t *nrows,
                      as_measures_t *total);

/* Receives an organisation (credit code) and its activities (live events); non-zero stops. */
typedef int (*as_org_activities_cb)(void *ctx, const char *credit_code, uint64_t activities);

/* Calls cb for every organisation with activities in year whose attribute dim (AS_DIM_AREA,
 * MONTH, GROUP, FUNDING or PROJECT) has the given value (the enum's number, a month 1…12), with
 * their number, in credit-code order (once per province the ledger holds). Reads the
 * organisations' province rows only (as many as organisations), never the finest records or the
 * event log. AS_E_INVALID for another dimension or a value out of range. */
int as_ledger_org_activities(as_ledger_t *l, uint32_t year, as_dim_t dim, unsigned value,
                             as_org_activities_cb cb, void *ctx);

/* How an accepted event changed the ledger. */
typedef enum {
    AS_LOG_NEW = 0,        /* a new event */
    AS_LOG_CORRECTION = 1, /* replaced a live event (correction_of) */
    AS_LOG_RETRACTION = 2, /* withdrew a live event (correction_of) */
} as_log_kind_t;

/* One event-log entry. */
typedef struct {
    uint64_t seq;
    uint64_t commit_ms; /* Unix ms of the group that accepted it (taken at as_ledger_begin) */
    uint8_t kind;       /* as_log_kind_t */
    as_org_info_t org;  /* registry facts the event was counted under */
    as_event_t ev;      /* flags as accepted; correction_of/retract tell the kind */
} as_log_entry_t;

typedef int (*as_log_cb)(void *ctx, const as_log_entry_t *entry, const uint8_t *pb, size_t pb_len);

/* Calls cb for events with seq >= from (in order), whose county code starts with the decimal
 * prefix county_prefix ("" or NULL: all), until `limit` were delivered or the log ends; pb/pb_len
 * is the stored protobuf Event. Stops early when cb returns non-zero. *next is the sequence to
 * continue from; *last the newest sequence in the log. */
int as_ledger_replay(as_ledger_t *l, uint64_t from, size_t limit, const char *county_prefix,
                     as_log_cb cb, void *ctx, uint64_t *next, uint64_t *last);

/* The same for every county without decoding: cb gets each entry's sequence, its group's
 * commit_ms and the stored protobuf Event (see as_event_peek for a cheap look inside). */
typedef int (*as_log_raw_cb)(void *ctx, uint64_t seq, uint64_t commit_ms, const uint8_t *pb,
                             size_t pb_len);
int as_ledger_replay_raw(as_ledger_t *l, uint64_t from, size_t limit, as_log_raw_cb cb, void *ctx,
                         uint64_t *next, uint64_t *last);

/* Reads log entry seq inside txn, a transaction of the ledger's environment (an extension's
 * opening transaction, say). Returns 0, MDB_NOTFOUND, or another LMDB code. */
int as_ledger_log_get(as_ledger_t *l, MDB_txn *txn, uint64_t seq, as_log_entry_t *e);

/* Newest sequence number in the event log (0 when empty). */
uint64_t as_ledger_last_seq(as_ledger_t *l);

typedef struct {
    as_collector_state_t st;
    uint64_t accepted, duplicates, rejected;
} as_collector_info_t;

/* Every collector the ledger knows; *out is the caller's to free(). */
int as_ledger_collectors(as_ledger_t *l, as_collector_info_t **out, size_t *n);

/* Looks up one collector's stored state (AS_E_NOTFOUND when unknown). */
int as_ledger_collector(as_ledger_t *l, const char *collector_id, as_collector_info_t *out);

/* Hot, compacted copy of the LMDB environment into directory dir (created if needed). */
int as_ledger_backup(as_ledger_t *l, const char *dir);

/* Size of the data file in bytes and the current map size. */
int as_ledger_size(as_ledger_t *l, uint64_t *file_bytes, uint64_t *map_bytes);

/* ---- extensions: other modules' records in the same environment and transaction --------- */

/* The LMDB environment (borrowed), for modules that keep sub-databases of their own next to the
 * ledger's (up to 23 more named databases). Such a module writes either inside the ledger's
 * group transaction (from the event hook) or in a write transaction of its own, which LMDB
 * serialises with the groups. */
MDB_env *as_ledger_env(as_ledger_t *l);

/* The open group's write transaction (borrowed), or NULL between groups. */
MDB_txn *as_ledger_txn(as_ledger_t *l);

/* What as_ledger_apply knows of an event it is about to accept. */
typedef struct {
    uint64_t seq;                 /* the sequence the event will get */
    uint8_t kind;                 /* as_log_kind_t */
    const as_org_info_t *org;     /* registry facts it is counted under */
    const as_log_entry_t *target; /* a correction's or retraction's live target, else NULL */
} as_ledger_event_t;

/* Called by as_ledger_apply for every event it accepts, inside the group's transaction (txn),
 * before the event is counted and logged: it may set ev->flags (logged as set) and write its own
 * sub-databases in txn. Returns 0, or non-zero to fail the apply (the group must be aborted):
 * a negative aidstat code or an LMDB error. Runs on the thread that applies. */
typedef int (*as_ledger_event_cb)(void *ctx, MDB_txn *txn, as_event_t *ev,
                                  const as_ledger_event_t *info);

/* Installs (or with cb NULL removes) the event hook. */
void as_ledger_set_event_hook(as_ledger_t *l, as_ledger_event_cb cb, void *ctx);

#endif
