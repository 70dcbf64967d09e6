/* query: the aggregator's query endpoint — a ROUTER answering QueryRequest with QueryResponse
 * (totals, status, replay of the event log, backup) from read transactions on the loop thread,
 * so a query never waits for the writer. */
#ifndef AS_QUERY_H
#define AS_QUERY_H

#include "ledger.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_query_s as_query_t;

/* What the daemon knows of a collector beyond the ledger (connection, heartbeat). */
typedef struct {
    char collector_id[64];
    uint32_t county;
    bool connected;          /* heard within the last few heartbeats */
    uint64_t last_heard_ms;  /* Unix ms */
    uint64_t backlog;        /* from its last Hello or heartbeat */
    uint64_t rejected_extra; /* rejected before reaching the ledger (malformed, invalid, county)
                              * in groups not yet committed; once committed the ledger's
                              * per-collector count holds them */
    uint64_t last_batch_seq;
    char version[32];
} as_collector_live_t;

/* Lists the collectors the daemon has heard since it started: *out (caller frees) and *n. */
typedef int (*as_query_live_cb)(void *ctx, as_collector_live_t **out, size_t *n);

#define AS_REPLAY_MAX 10000 /* events per replay answer at most */

/* Binds a ROUTER on endpoint in zctx (not owned) and answers on loop from ledger (borrowed).
 * live_cb may be NULL (status then shows only what the ledger holds). Returns NULL with *err set
 * (AS_E_ZMQ with the reason logged) on failure. Requests are single frames behind any envelope
 * (REQ or DEALER clients both work); the reply carries the same envelope. */
as_query_t *as_query_new(uv_loop_t *loop, void *zctx, const char *endpoint, as_ledger_t *ledger,
                         as_query_live_cb live_cb, void *live_ctx, int *err);

/* Year-end requests, answered by whoever installs them (the year-end plug-in): each returns 0
 * with msg (a one-line summary for the SimpleResponse) or an error code with msg saying why. */
typedef int (*as_query_registry_cb)(void *ctx, const uint8_t *csv, size_t len, char *msg,
                                    size_t cap);
typedef int (*as_query_report_cb)(void *ctx, uint32_t year, bool final, const char *out_dir,
                                  char *msg, size_t cap);

/* Installs the handlers of RegistryImportRequest and ReportRequest (NULL: "not available"). */
void as_query_set_yearend(as_query_t *q, as_query_registry_cb registry, as_query_report_cb report,
                          void *ctx);

/* Requests answered, and requests that could not be decoded (answered with an error). */
uint64_t as_query_answered(const as_query_t *q);
uint64_t as_query_malformed(const as_query_t *q);

/* Stops answering and closes the socket; a backup still running finishes first and its memory
 * is freed then (run the loop until it ends). Safe on NULL and twice. */
void as_query_destroy(as_query_t **self_p);

#endif
