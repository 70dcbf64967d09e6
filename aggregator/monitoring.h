/* monitoring: the provincial office's view of the aggregator in one object — the HTTP server
 * (API, stream, dashboard, /metrics), the metrics counters and the monitor store (nil reports,
 * completeness, flags) — so that the daemon wires it with a handful of calls. */
#ifndef AS_MONITORING_H
#define AS_MONITORING_H

#include "http.h"
#include "ledger.h"
#include "metrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_monitoring_s as_monitoring_t;

typedef struct {
    const char *listen;   /* "ADDR:PORT"; NULL or "": 127.0.0.1:7680 */
    const char *data_dir; /* the aggregator's data folder; the monitor store goes in DIR/monitor */
    int silent_after_s;   /* 0: 86,400; a collector not heard for longer stands out */
    bool no_sync;         /* tests only */
    /* Whether a collector is connected now (the daemon knows); NULL: heard within 30 s. */
    bool (*is_connected_cb)(void *ctx, const char *collector_id);
    void *ctx;
    as_query_live_cb live_cb; /* live backlog and last heard (see as_http_source_t) */
    void *live_ctx;
    /* HTTP's caps and bearer token (see as_http_opts_t; 0 and NULL: the defaults, no token) */
    int http_max_connections;
    int http_max_streams;
    int http_max_streams_per_client;
    const char *http_token;
} as_monitoring_opts_t;

/* Opens the monitor store, catches it up with the ledger's event log and starts the HTTP
 * server on loop. ledger is borrowed and must outlive it. Returns NULL with *err set (AS_E_DB,
 * AS_E_INVALID for a bad address, a libuv error such as UV_EADDRINUSE). */
as_monitoring_t *as_monitoring_new(uv_loop_t *loop, as_ledger_t *ledger,
                                   const as_monitoring_opts_t *opts, int *err);

/* Call after each successful as_ledger_commit: histograms, and one stream message when the
 * group changed the totals. */
void as_monitoring_on_commit(as_monitoring_t *m, const as_commit_info_t *info);

/* Call for every per-event result sent back to a collector (as_result_code_t, as_reject_code_t). */
void as_monitoring_on_result(as_monitoring_t *m, int code, int reject);

/* Records a nil report (NilReport message). Returns 0 or AS_E_INVALID / AS_E_DB. */
int as_monitoring_on_nil_report(as_monitoring_t *m, uint32_t county, uint32_t year, uint32_t month);

/* The metrics object, for the other counters (as_metrics_add). Borrowed. */
as_metrics_t *as_monitoring_metrics(as_monitoring_t *m);

/* The bound HTTP port. */
int as_monitoring_port(const as_monitoring_t *m);

/* Stops the server and closes the store; the loop must run again before uv_loop_close().
 * Safe on NULL and twice. */
void as_monitoring_destroy(as_monitoring_t **self_p);

#endif
