/* metrics: the aggregator's counters and histograms, rendered in the Prometheus text format
 * 0.0.4 for GET /metrics. Updated and read on the aggregator's loop thread only. */
#ifndef AS_METRICS_H
#define AS_METRICS_H

#include "ledger.h"

#include <stddef.h>
#include <stdint.h>

typedef struct as_metrics_s as_metrics_t;

/* Counters that are not per-event results. */
typedef enum {
    AS_METRIC_BATCHES = 0,    /* batches answered */
    AS_METRIC_MALFORMED_MSGS, /* ingest messages that could not be decoded */
    AS_METRIC_NIL_REPORTS,    /* nil reports recorded */
    AS_METRIC_FEED_DROPS,     /* feed messages that could not be published */
    AS_METRIC_HTTP_REQUESTS,  /* HTTP requests answered */
    AS_METRIC_HTTP_ERRORS,    /* HTTP requests answered with 4xx/5xx */
    AS_METRIC_SSE_DROPS,      /* stream clients dropped for being too slow */
    AS_METRIC_COUNT
} as_metric_counter_t;

/* Values read at render time (gauges); the caller fills what it knows, zeros otherwise. */
typedef struct {
    uint64_t collectors_known;
    uint64_t collectors_connected;
    uint64_t ledger_file_bytes;
    uint64_t ledger_map_bytes;
    uint64_t feed_seq;    /* newest event-log / feed sequence */
    uint64_t sse_clients; /* open /api/stream connections */
    uint64_t http_connections;
} as_metrics_gauges_t;

/* Returns a new, zeroed metrics object or NULL. Caller owns it. */
as_metrics_t *as_metrics_new(void);

/* Frees it; safe on NULL and twice. */
void as_metrics_destroy(as_metrics_t **self_p);

/* Counts one per-event result sent to a collector: code is as_result_code_t, reject an
 * as_reject_code_t (used when code is AS_RESULT_REJECTED). */
void as_metrics_count_result(as_metrics_t *m, int code, int reject);

/* Observes one committed group: its latency (info->group_us, or info->commit_us when the
 * caller did not time the whole transaction) and batch size
 * (accepted + duplicates + rejected) go to their histograms. */
void as_metrics_observe_commit(as_metrics_t *m, const as_commit_info_t *info);

/* Adds n to one of the other counters. */
void as_metrics_add(as_metrics_t *m, as_metric_counter_t which, uint64_t n);

/* Current value of a counter (for tests and the dashboard). */
uint64_t as_metrics_get(const as_metrics_t *m, as_metric_counter_t which);
uint64_t as_metrics_events(const as_metrics_t *m, int code);

/* Renders everything in the Prometheus text format. m may be NULL (counters then 0), g may be
 * NULL. Returns a malloc'd NUL-terminated text (caller frees) with its length in *len, or NULL
 * when out of memory. */
char *as_metrics_render(const as_metrics_t *m, const as_metrics_gauges_t *g, size_t *len);

#endif
