/* archive: the closed years — lock state, the final report's files kept byte for byte, and the
 * amendments (events for a locked year that arrived after its final report), all in the
 * ledger's LMDB so that the lock and the figures share the ledger's transactions. */
#ifndef AS_ARCHIVE_H
#define AS_ARCHIVE_H

#include "ledger.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct as_archive_s as_archive_t;

/* One late event as the amendments table shows it: what it changed in the year's figures. */
typedef struct {
    uint64_t seq; /* event-log sequence */
    uint8_t kind; /* as_log_kind_t: new, correction, retraction */
    uint32_t county;
    uint32_t date; /* yyyymmdd of the event (of the target for retractions) */
    char org_code[AS_CODE_LEN + 1];
    char org_name[96];                   /* cut to fit, UTF-8 safe */
    char event_id[AS_EVENT_ID_MAX + 1];  /* office's id, or the wire id in hex */
    char target_id[AS_EVENT_ID_MAX + 1]; /* replaced or withdrawn event, "" for new ones */
    int64_t activities, beneficiaries, registered_poor, funds_fen, goods_fen, volunteers,
        volunteer_tenths, social_workers, persons_lifted, jobs, trainees, income_fen; /* deltas */
} as_amendment_t;

/* One file of a final report. */
typedef struct {
    char name[128]; /* relative path inside reports/Y/, e.g. "report.json", "units/3/summary.csv" */
    uint8_t *data;  /* owned by whoever filled the array */
    size_t len;
} as_archive_file_t;

/* Opens (creating) the archive's sub-database in env (borrowed). NULL with *err on failure. */
as_archive_t *as_archive_new(MDB_env *env, int *err);

/* Safe on NULL and twice. */
void as_archive_destroy(as_archive_t **self_p);

/* Whether year is locked, read in txn (NULL: a read transaction of its own). 0 or AS_E_DB. */
int as_archive_locked(as_archive_t *a, MDB_txn *txn, uint32_t year, bool *locked);

/* A number that changes whenever a year is locked (for look-up caches of lock states). */
uint64_t as_archive_generation(as_archive_t *a);

/* Records an amendment of year in txn (a write transaction, normally the ledger's group). */
int as_archive_put_amendment(as_archive_t *a, MDB_txn *txn, uint32_t year,
                             const as_amendment_t *am);

/* The amendments of year in sequence order; *out is the caller's to free(). */
int as_archive_amendments(as_archive_t *a, uint32_t year, as_amendment_t **out, size_t *n);

/* Locks year in txn (a write transaction) and keeps its final files. AS_E_LOCKED when it is
 * already locked. */
int as_archive_lock(as_archive_t *a, MDB_txn *txn, uint32_t year, const as_archive_file_t *files,
                    size_t n, uint64_t locked_ms);

/* The final files of a locked year (AS_E_NOTFOUND when not locked); free with
 * as_archive_files_free. *locked_ms receives the moment of the lock (may be NULL). */
int as_archive_files(as_archive_t *a, uint32_t year, as_archive_file_t **files, size_t *n,
                     uint64_t *locked_ms);
void as_archive_files_free(as_archive_file_t *files, size_t n);

#endif
