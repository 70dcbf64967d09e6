/* metrics: counters and histograms in the Prometheus text format 0.0.4. */
#include "metrics.h"
#include "refusal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REJECT_CODES AS_REJECT_CODE_COUNT

static const double s_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                          0.025,  0.05,    0.1,    0.25,  0.5,    1.0};
#define LAT_N (sizeof s_latency_bounds / sizeof s_latency_bounds[0])
static const double s_batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
#define BATCH_N (sizeof s_batch_bounds / sizeof s_batch_bounds[0])

typedef struct {
    uint64_t bucket[16]; /* non-cumulative counts per bound; the last slot is +Inf */
    uint64_t count;
    double sum;
} s_hist_t;

struct as_metrics_s {
    uint64_t accepted, duplicate, rejected;
    uint64_t rejected_by[REJECT_CODES];
    uint64_t counter[AS_METRIC_COUNT];
    s_hist_t latency; /* seconds */
    s_hist_t batch;   /* events per committed group */
};

static const char *s_reject_names[REJECT_CODES] = {
    "none", "invalid", "wrong_county", "retract_not_live", "malformed", "other_county", "overflow"};
_Static_assert(AS_REJECT_CODE_COUNT == 7, "every reject code needs its name in s_reject_names");

as_metrics_t *as_metrics_new(void)
{
    return calloc(1, sizeof(as_metrics_t));
}

void as_metrics_destroy(as_metrics_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

void as_metrics_count_result(as_metrics_t *m, int code, int reject)
{
    if (!m)
        return;
    if (code == AS_RESULT_ACCEPTED)
        m->accepted++;
    else if (code == AS_RESULT_DUPLICATE)
        m->duplicate++;
    else {
        m->rejected++;
        m->rejected_by[(reject > 0 && reject < REJECT_CODES) ? reject : 0]++;
    }
}

static void s_observe(s_hist_t *h, const double *bounds, size_t n, double v)
{
    size_t i = 0;
    while (i < n && v > bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

void as_metrics_observe_commit(as_metrics_t *m, const as_commit_info_t *info)
{
    if (!m || !info)
        return;
    uint64_t us = info->group_us ? info->group_us : info->commit_us;
    s_observe(&m->latency, s_latency_bounds, LAT_N, (double)us / 1e6);
    s_observe(&m->batch, s_batch_bounds, BATCH_N,
              (double)(info->accepted + info->duplicates + info->rejected));
}

void as_metrics_add(as_metrics_t *m, as_metric_counter_t which, uint64_t n)
{
    if (m && which < AS_METRIC_COUNT)
        m->counter[which] += n;
}

uint64_t as_metrics_get(const as_metrics_t *m, as_metric_counter_t which)
{
    return (m && which < AS_METRIC_COUNT) ? m->counter[which] : 0;
}

uint64_t as_metrics_events(const as_metrics_t *m, int code)
{
    if (!m)
        return 0;
    return code == AS_RESULT_ACCEPTED    ? m->accepted
           : code == AS_RESULT_DUPLICATE ? m->duplicate
                                         : m->rejected;
}

/* ---- rendering into a growing buffer ------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} s_buf_t;

static void s_printf(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_printf(s_buf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void s_header(s_buf_t *b, const char *name, const char *type, const char *help)
{
    s_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_hist(s_buf_t *b, const char *name, const char *help, const s_hist_t *h,
                   const double *bounds, size_t n)
{
    s_header(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += h->bucket[i];
        s_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    s_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    s_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

static void s_gauge(s_buf_t *b, const char *name, const char *help, uint64_t v)
{
    s_header(b, name, "gauge", help);
    s_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void s_counter(s_buf_t *b, const char *name, const char *help, uint64_t v)
{
    s_header(b, name, "counter", help);
    s_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

char *as_metrics_render(const as_metrics_t *m, const as_metrics_gauges_t *g, size_t *len)
{
    static const as_metrics_t zero;
    static const as_metrics_gauges_t gzero;
    if (!m)
        m = &zero;
    if (!g)
        g = &gzero;
    s_buf_t b = {malloc(4096), 0, 4096, 0};
    if (!b.p)
        return NULL;
    b.p[0] = '\0';

    s_header(&b, "aidstat_events_total", "counter",
             "Events answered to collectors, by result (accepted, duplicate, rejected).");
    s_printf(&b, "aidstat_events_total{result=\"accepted\"} %llu\n",
             (unsigned long long)m->accepted);
    s_printf(&b, "aidstat_events_total{result=\"duplicate\"} %llu\n",
             (unsigned long long)m->duplicate);
    s_printf(&b, "aidstat_events_total{result=\"rejected\"} %llu\n",
             (unsigned long long)m->rejected);
    s_header(&b, "aidstat_events_rejected_total", "counter", "Rejected events, by reason.");
    for (int i = 1; i < REJECT_CODES; i++)
        s_printf(&b, "aidstat_events_rejected_total{reason=\"%s\"} %llu\n", s_reject_names[i],
                 (unsigned long long)m->rejected_by[i]);
    if (m->rejected_by[0])
        s_printf(&b, "aidstat_events_rejected_total{reason=\"other\"} %llu\n",
                 (unsigned long long)m->rejected_by[0]);

    s_hist(&b, "aidstat_commit_duration_seconds",
           "Duration of each group's LMDB write transaction, from its first event to the durable "
           "commit.",
           &m->latency, s_latency_bounds, LAT_N);
    s_hist(&b, "aidstat_commit_batch_events", "Events in each committed group.", &m->batch,
           s_batch_bounds, BATCH_N);

    s_counter(&b, "aidstat_batches_total", "Ingest batches answered.",
              m->counter[AS_METRIC_BATCHES]);
    s_counter(&b, "aidstat_ingest_malformed_messages_total",
              "Ingest messages that could not be decoded.", m->counter[AS_METRIC_MALFORMED_MSGS]);
    s_counter(&b, "aidstat_nil_reports_total", "Nil reports (a county-month without activity).",
              m->counter[AS_METRIC_NIL_REPORTS]);
    s_counter(&b, "aidstat_feed_drops_total", "Feed messages that could not be published.",
              m->counter[AS_METRIC_FEED_DROPS]);
    s_counter(&b, "aidstat_http_requests_total", "HTTP requests answered.",
              m->counter[AS_METRIC_HTTP_REQUESTS]);
    s_counter(&b, "aidstat_http_errors_total", "HTTP requests answered with an error status.",
              m->counter[AS_METRIC_HTTP_ERRORS]);
    s_counter(&b, "aidstat_stream_drops_total", "Stream clients dropped for being too slow.",
              m->counter[AS_METRIC_SSE_DROPS]);

    s_header(&b, "aidstat_refusals_total", "counter",
             "Input refused before it could change anything, by stage and reason.");
    for (int i = 0; i < AS_REFUSE_COUNT; i++)
        s_printf(&b, "aidstat_refusals_total{stage=\"%s\",reason=\"%s\"} %llu\n",
                 as_refusal_stage((as_refusal_t)i), as_refusal_reason((as_refusal_t)i),
                 (unsigned long long)as_refusal_get((as_refusal_t)i));

    s_gauge(&b, "aidstat_collectors", "Collectors the ledger knows.", g->collectors_known);
    s_gauge(&b, "aidstat_collectors_connected", "Collectors connected now.",
            g->collectors_connected);
    s_gauge(&b, "aidstat_ledger_bytes", "Size of the ledger's data file.", g->ledger_file_bytes);
    s_gauge(&b, "aidstat_ledger_map_bytes", "Current LMDB map size of the ledger.",
            g->ledger_map_bytes);
    s_gauge(&b, "aidstat_feed_sequence", "Newest event-log (feed) sequence number.", g->feed_seq);
    s_gauge(&b, "aidstat_stream_clients", "Open /api/stream connections.", g->sse_clients);
    s_gauge(&b, "aidstat_http_connections", "Open HTTP connections.", g->http_connections);

    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
