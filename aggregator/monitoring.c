/* monitoring: HTTP server + metrics + monitor store behind one object for the daemon. */
#include "monitoring.h"
#include "err.h"
#include "log.h"
#include "monitor.h"

#include <stdio.h>
#include <stdlib.h>

struct as_monitoring_s {
    as_ledger_t *ledger; /* borrowed */
    as_monitor_t *monitor;
    as_metrics_t *metrics;
    as_http_t *http;
};

as_monitoring_t *as_monitoring_new(uv_loop_t *loop, as_ledger_t *ledger,
                                   const as_monitoring_opts_t *opts, int *err)
{
    as_monitoring_t *m = calloc(1, sizeof *m);
    if (!m) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    m->ledger = ledger;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/monitor", opts->data_dir ? opts->data_dir : ".");
    m->monitor = as_monitor_new(dir, opts->no_sync, err);
    m->metrics = as_metrics_new();
    if (!m->monitor || !m->metrics) {
        if (m->monitor)
            *err = AS_E_NOMEM;
        goto fail;
    }
    if (as_monitor_catch_up(m->monitor, ledger) != 0)
        AS_WARN("http", "could not read the event log for completeness and flags yet; "
                        "retrying after the next commit");
    as_http_source_t src = {.ledger = ledger,
                            .monitor = m->monitor,
                            .metrics = m->metrics,
                            .is_connected_cb = opts->is_connected_cb,
                            .ctx = opts->ctx,
                            .live_cb = opts->live_cb,
                            .live_ctx = opts->live_ctx};
    as_http_opts_t hopts = {.silent_after_s = opts->silent_after_s,
                            .max_connections = opts->http_max_connections,
                            .max_streams = opts->http_max_streams,
                            .max_streams_per_client = opts->http_max_streams_per_client,
                            .token = opts->http_token};
    const char *listen = opts->listen && opts->listen[0] ? opts->listen : "127.0.0.1:7680";
    m->http = as_http_new(loop, listen, &src, &hopts, err);
    if (!m->http)
        goto fail;
    return m;
fail:
    as_monitoring_destroy(&m);
    return NULL;
}

void as_monitoring_on_commit(as_monitoring_t *m, const as_commit_info_t *info)
{
    if (!m)
        return;
    as_metrics_observe_commit(m->metrics, info);
    as_http_notify_commit(m->http, info);
}

void as_monitoring_on_result(as_monitoring_t *m, int code, int reject)
{
    if (m)
        as_metrics_count_result(m->metrics, code, reject);
}

int as_monitoring_on_nil_report(as_monitoring_t *m, uint32_t county, uint32_t year, uint32_t month)
{
    if (!m)
        return AS_E_STATE;
    int rc = as_monitor_put_nil(m->monitor, county, year, month);
    if (rc == 0) {
        as_metrics_add(m->metrics, AS_METRIC_NIL_REPORTS, 1);
        AS_INFO("http", "nil report: county %u had no activity in %04u-%02u", county, year, month);
    }
    return rc;
}

as_metrics_t *as_monitoring_metrics(as_monitoring_t *m)
{
    return m ? m->metrics : NULL;
}

int as_monitoring_port(const as_monitoring_t *m)
{
    return m && m->http ? as_http_port(m->http) : 0;
}

void as_monitoring_destroy(as_monitoring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_monitoring_t *m = *self_p;
    as_http_destroy(&m->http);
    as_monitor_destroy(&m->monitor);
    as_metrics_destroy(&m->metrics);
    free(m);
    *self_p = NULL;
}
