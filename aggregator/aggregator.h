/* aggregator: the provincial aggregator daemon as one object — its libuv loop, the LMDB ledger,
 * the ingest (with its ZAP handler under CURVE), the feed and the query endpoint — with hooks so
 * that other parts (HTTP, dashboard, metrics) plug in without touching the ingest. */
#ifndef AS_AGGREGATOR_H
#define AS_AGGREGATOR_H

#include "ingest.h"
#include "ledger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_aggregator_s as_aggregator_t;

typedef struct {
    const char *data_dir;        /* the ledger goes in DATA/ledger (created if needed) */
    const char *ingest;          /* ROUTER endpoint, e.g. "tcp://127.0.0.1:7601" */
    const char *feed;            /* PUB endpoint */
    int feed_hwm;                /* PUB send high-water mark, 0: AS_FEED_SNDHWM */
    const char *query;           /* ROUTER endpoint */
    const char *curve_secret;    /* the aggregator's key pair file; with authorized_keys: CURVE */
    const char *authorized_keys; /* lines "<county> <z85 public key>" */
    size_t group_cap;            /* 0: AS_INGEST_GROUP_CAP */
    int worker_nice;             /* as_ingest_opts_t.worker_nice */
    size_t map_bytes;            /* initial LMDB map, 0: the ledger's default */
    bool no_sync;                /* tests only: commits are not durable */
    bool signals;                /* handle SIGTERM/SIGINT (stop) and SIGHUP (reload keys) */
} as_aggregator_opts_t;

/* Opens the ledger and binds the sockets. Strings in opts are copied where kept. Returns NULL
 * with *err set (AS_E_INVALID for half a CURVE configuration or unreadable keys, AS_E_DB,
 * AS_E_ZMQ, -errno) and the reason logged. */
as_aggregator_t *as_aggregator_new(const as_aggregator_opts_t *opts, int *err);

/* Runs the loop until the aggregator stopped (signal or as_aggregator_stop) and every handle is
 * closed. Returns 0 after a clean stop, AS_E_DB when it stopped because the ledger could not be
 * made durable (an fsync failed). */
int as_aggregator_run(as_aggregator_t *agg);

/* Stops taking input, finishes the running commit and sends its results, closes the sockets and
 * handles; as_aggregator_run then returns. Call on the loop thread. Harmless twice. */
void as_aggregator_stop(as_aggregator_t *agg);

/* Re-reads the authorized keys (the aggregator's part of SIGHUP; the daemon's reload hook,
 * as_aggregator_on_reload, then reloads the rest, e.g. the organisation registry). Returns 0,
 * or an error (old keys kept); 0 when CURVE is off. */
int as_aggregator_reload(as_aggregator_t *agg);

/* Called on the loop after each successful commit (after its events were queued for the feed,
 * before the results go back), with the accepted events in sequence order. The feed publishes a
 * slice of the queue at once and the rest over the next loop iterations, in sequence order, so
 * that a large group does not hold requests back; everything queued is published before the
 * feed closes. */
typedef void (*as_commit_cb)(void *arg, const as_commit_info_t *info, const as_committed_t *evs,
                             size_t n);

/* Adds a commit listener (up to 8). Returns 0 or AS_E_TOOBIG. */
int as_aggregator_on_commit(as_aggregator_t *agg, as_commit_cb cb, void *arg);

/* Optional: called for every per-event result sent (as_result_code_t, as_reject_code_t). */
void as_aggregator_on_result(as_aggregator_t *agg, void (*cb)(void *arg, int code, int reject),
                             void *arg);

/* Optional: where nil reports are stored (see as_ingest_hooks_t.on_nil). Without it nil
 * reports are logged and counted but not acknowledged. */
void as_aggregator_on_nil_report(as_aggregator_t *agg,
                                 int (*cb)(void *arg, uint32_t county, uint32_t year,
                                           uint32_t month),
                                 void *arg);

/* Optional: called once when the aggregator starts stopping, after the last commit's results
 * were sent, so that a plug-in closes its handles on the loop. */
void as_aggregator_on_stop(as_aggregator_t *agg, void (*cb)(void *arg), void *arg);

/* Optional: called on SIGHUP after the keys were reloaded (e.g. the organisation registry). */
void as_aggregator_on_reload(as_aggregator_t *agg, void (*cb)(void *arg), void *arg);

/* Borrowed parts, for plug-ins. */
uv_loop_t *as_aggregator_loop(as_aggregator_t *agg);
as_ledger_t *as_aggregator_ledger(as_aggregator_t *agg);
as_ingest_t *as_aggregator_ingest(as_aggregator_t *agg);
struct as_query_s *as_aggregator_query(as_aggregator_t *agg);
struct as_feed_s *as_aggregator_feed(as_aggregator_t *agg);

/* Closes what is left, the ledger, the ZeroMQ context and the loop. Safe on NULL and twice. */
void as_aggregator_destroy(as_aggregator_t **self_p);

#endif
