/* ingest: the aggregator's ingest endpoint — a ROUTER on the loop speaking the ingest protocol
 * (Hello/Welcome, Batch/BatchResult, Heartbeat, NilReport, Error), re-validating every event,
 * and committing what arrived in one ledger transaction per group on a worker thread; results go
 * back only after that transaction committed. */
#ifndef AS_INGEST_H
#define AS_INGEST_H

#include "ledger.h"
#include "query.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_ingest_s as_ingest_t;

#define AS_INGEST_PROTOCOL        1
#define AS_INGEST_GROUP_CAP       20000 /* default pending events that force a commit */
#define AS_INGEST_MAXMSG          (16 * 1024 * 1024) /* ZMQ_MAXMSGSIZE of the ROUTER */
#define AS_INGEST_PAGE_BUDGET     (48u << 20) /* a group's page writes, see as_ingest_group_limit */
#define AS_INGEST_GROUP_MIN       1000        /* the group limit never goes below this */
#define AS_INGEST_WORKER_SLICE_NS 100000u     /* scheduler slice the commit and fsync threads ask */

typedef struct {
    const char *endpoint;     /* e.g. "tcp://127.0.0.1:7601" */
    const char *curve_secret; /* the aggregator's key pair file; NULL/"" = plain (no CURVE) */
    size_t group_cap;         /* 0: AS_INGEST_GROUP_CAP */
    int worker_nice;          /* added to the nice of the threads that commit and fsync (0..19;
                               * 0: unchanged), which also ask for a short scheduler slice, so
                               * that the loop's answers go first while ingest runs */
    uint32_t heartbeat_ms;    /* told to collectors in Welcome (0: 1000) */
} as_ingest_opts_t;

/* One event of a committed group, in sequence order. ev is borrowed for the call. */
typedef struct {
    uint64_t seq;
    uint64_t commit_ms; /* Unix ms, taken right after the commit returned */
    const as_event_t *ev;
    const uint8_t *pb; /* the event as the log holds it (packed aidstat.v1.Event) */
    size_t pb_len;
} as_committed_t;

/* Hooks, all optional; arg is given back to each. */
typedef struct {
    /* After each successful commit, once it is durable, before the results go back: the
     * accepted events, group after group in commit order. */
    void (*on_commit)(void *arg, const as_commit_info_t *info, const as_committed_t *evs, size_t n);
    /* For every per-event result sent (as_result_code_t, as_reject_code_t). */
    void (*on_result)(void *arg, int code, int reject);
    /* A county's nil report; return 0 once it is stored durably (then it is echoed to the
     * collector as its acknowledgement), non-zero to leave it unacknowledged. NULL: nil reports
     * are logged and counted but not acknowledged. */
    int (*on_nil)(void *arg, uint32_t county, uint32_t year, uint32_t month);
    /* The ledger could not be made durable (an fsync failed, rc): the ingest commits and
     * acknowledges nothing more; the owner should stop (as_ingest_stop, which may finish and
     * free the ingest inside this call; when the ingest is already stopping, it must not). */
    void (*on_fatal)(void *arg, int rc);
    void *arg;
} as_ingest_hooks_t;

/* Counters; every drop and refusal is one of them. */
typedef struct {
    uint64_t messages;    /* messages received */
    uint64_t malformed;   /* messages that could not be decoded (answered with Error) */
    uint64_t errors_sent; /* Error replies */
    uint64_t send_drops;  /* replies that could not be sent (peer gone, HWM) */
    uint64_t batches;     /* batches answered */
    uint64_t events;      /* events received */
    uint64_t accepted, duplicates, rejected; /* results sent */
    uint64_t commits;                        /* ledger transactions committed */
    uint64_t commit_failures; /* groups whose commit failed (nothing acknowledged; resent) */
    uint64_t nil_reports;     /* nil reports received */
    uint64_t max_group;       /* largest group committed, in events */
} as_ingest_stats_t;

/* Binds the ROUTER on opts->endpoint in zctx (not owned); ledger is borrowed. With
 * curve_secret, the socket is a CURVE server with ZAP domain AS_ZAP_DOMAIN (a ZAP handler,
 * see zap.h, must run in zctx) and each collector's county is the message's "User-Id"; without
 * it the county comes from Hello. Returns NULL with *err set (AS_E_ZMQ, AS_E_INVALID for an
 * unusable key file) on failure. */
as_ingest_t *as_ingest_new(uv_loop_t *loop, void *zctx, as_ledger_t *ledger,
                           const as_ingest_opts_t *opts, int *err);

void as_ingest_set_hooks(as_ingest_t *in, const as_ingest_hooks_t *hooks);

/* The collectors heard since start (as_query_live_cb for the query endpoint; ctx is the
 * ingest). *out is the caller's to free(). */
int as_ingest_live(void *ctx, as_collector_live_t **out, size_t *n);

/* True when collector_id was heard within the last five heartbeat periods. */
bool as_ingest_connected(const as_ingest_t *in, const char *collector_id);

void as_ingest_stats(const as_ingest_t *in, as_ingest_stats_t *st);

/* The events the next group may take, after a group of `events` whose commit wrote page_bytes
 * (0: unknown): AS_INGEST_PAGE_BUDGET divided by its bytes per event, between AS_INGEST_GROUP_MIN
 * and cap. LMDB keeps a buffer for every page a transaction writes and keeps those buffers for
 * later transactions, so its memory is that of the largest group's pages; and as the ledger
 * grows, each event writes more distinct pages (≈ 1.7 KB at 1 M events held, ≈ 6 KB at 8 M), so
 * a cap in events alone let the aggregator's memory grow with the ledger. */
size_t as_ingest_group_limit(size_t cap, uint64_t page_bytes, size_t events);

/* Stops taking input, commits what was received (waiting for a running commit), sends those
 * results, then calls done(arg) on the loop. Calling it twice is harmless (done is called once). */
void as_ingest_stop(as_ingest_t *in, void (*done)(void *arg), void *arg);

/* Closes the socket (bounded linger lets the last results leave). Must not be called while a
 * commit runs: call as_ingest_stop first and wait for done. Safe on NULL and twice. */
void as_ingest_destroy(as_ingest_t **self_p);

/* Reads a key pair file ("public = <z85>" / "secret = <z85>", as `aidstat keygen` writes it;
 * the public key is derived when missing). pub and sec receive 41 bytes each. Returns 0, -errno
 * or AS_E_INVALID. */

#endif
