/* yearend: registry, review, archive and report plugged into the aggregator daemon. */
#include "yearend.h"
#include "archive.h"
#include "err.h"
#include "feed.h"
#include "log.h"
#include "query.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct as_yearend_s {
    as_aggregator_t *agg;
    as_registry_t *reg;
    as_archive_t *ar;
    as_review_t *rv;
    as_report_t *rep;
};

void as_yearend_opts_default(as_yearend_opts_t *o)
{
    memset(o, 0, sizeof *o);
    as_report_opts_default(&o->report);
    as_outlier_rule_default(&o->outlier);
    o->schedule = true;
}

static int s_registry_import(void *ctx, const uint8_t *csv, size_t len, char *msg, size_t cap)
{
    as_yearend_t *y = ctx;
    as_registry_import_t res;
    int rc = as_registry_import_csv(y->reg, (const char *)csv, len, &res);
    if (rc)
        snprintf(msg, cap, "登记信息导入失败 / registry import failed: %s%s%s", as_strerror(rc),
                 res.errors[0] ? ": " : "", res.errors);
    else
        snprintf(msg, cap,
                 "已导入 %zu 个组织，%zu 行有误 / %zu organisations imported, %zu rows "
                 "rejected%s%s",
                 res.imported, res.rejected, res.imported, res.rejected, res.errors[0] ? ": " : "",
                 res.errors);
    return rc;
}

static int s_report(void *ctx, uint32_t year, bool final, const char *out_dir, char *msg,
                    size_t cap)
{
    as_yearend_t *y = ctx;
    int rc = as_report_write(y->rep, year, final, out_dir, msg, cap);
    if (rc && !msg[0])
        snprintf(msg, cap, "report of %u failed: %s", year, as_strerror(rc));
    return rc;
}

static void s_written(void *ctx, uint32_t year, bool final, const char *dir, uint64_t ms)
{
    as_yearend_t *y = ctx;
    as_feed_t *f = as_aggregator_feed(y->agg);
    if (f)
        as_feed_publish_report(f, year, final, dir, ms);
}

static void s_reload(void *ctx)
{
    as_yearend_t *y = ctx;
    AS_INFO("yearend", "SIGHUP: reloading the organisation registry");
    as_registry_reload(y->reg);
}

as_yearend_t *as_yearend_new(as_aggregator_t *agg, const as_yearend_opts_t *o, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    as_yearend_opts_t def;
    if (!o) {
        as_yearend_opts_default(&def);
        o = &def;
    }
    as_yearend_t *y = calloc(1, sizeof *y);
    if (!y) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    y->agg = agg;
    as_ledger_t *l = as_aggregator_ledger(agg);
    if (!(y->reg = as_registry_new(as_ledger_env(l), err)) ||
        !(y->ar = as_archive_new(as_ledger_env(l), err)) ||
        !(y->rv = as_review_new(l, y->reg, y->ar, &o->outlier, err)) ||
        !(y->rep = as_report_new(l, y->reg, y->ar, y->rv, &o->report, err))) {
        as_yearend_destroy(&y);
        return NULL;
    }
    as_report_on_written(y->rep, s_written, y);
    if (o->schedule && (*err = as_report_schedule(y->rep, as_aggregator_loop(agg))) != 0) {
        as_yearend_destroy(&y);
        return NULL;
    }
    as_query_t *q = as_aggregator_query(agg);
    if (q)
        as_query_set_yearend(q, s_registry_import, s_report, y);
    as_aggregator_on_reload(agg, s_reload, y);
    AS_INFO("yearend", "registry of %zu organisations; reports in %s/reports",
            as_registry_count(y->reg), o->report.out_dir ? o->report.out_dir : ".");
    return y;
}

void as_yearend_destroy(as_yearend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_yearend_t *y = *self_p;
    *self_p = NULL;
    as_query_t *q = as_aggregator_query(y->agg);
    if (q)
        as_query_set_yearend(q, NULL, NULL, NULL);
    as_aggregator_on_reload(y->agg, NULL, NULL);
    as_report_destroy(&y->rep);
    as_review_destroy(&y->rv);
    as_archive_destroy(&y->ar);
    as_registry_destroy(&y->reg);
    free(y);
}

as_registry_t *as_yearend_registry(as_yearend_t *y)
{
    return y->reg;
}

as_report_t *as_yearend_report(as_yearend_t *y)
{
    return y->rep;
}
