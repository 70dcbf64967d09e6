/* yearend: the year-end plug-in of the aggregator daemon — the organisation registry, review
 * flags, the archive of locked years and the report with its schedule, wired to the daemon's
 * ledger, query endpoint (registry import, report requests), feed (report.Y) and SIGHUP. */
#ifndef AS_YEAREND_H
#define AS_YEAREND_H

#include "aggregator.h"
#include "report.h"
#include "review.h"

typedef struct as_yearend_s as_yearend_t;

typedef struct {
    as_report_opts_t report; /* out_dir: the daemon's data folder (reports/ goes inside) */
    as_outlier_rule_t outlier;
    bool schedule; /* run the deadline and draft timer */
} as_yearend_opts_t;

/* Fills the defaults (as_report_opts_default, as_outlier_rule_default, schedule on). */
void as_yearend_opts_default(as_yearend_opts_t *o);

/* Plugs the year-end parts into agg (borrowed; call before as_aggregator_run). NULL with *err. */
as_yearend_t *as_yearend_new(as_aggregator_t *agg, const as_yearend_opts_t *o, int *err);

/* Unplugs and frees (call on the loop, e.g. from the aggregator's stop hook, then let the loop
 * run once more for the timer's close). Safe on NULL and twice. */
void as_yearend_destroy(as_yearend_t **self_p);

/* Borrowed parts. */
as_registry_t *as_yearend_registry(as_yearend_t *y);
as_report_t *as_yearend_report(as_yearend_t *y);

#endif
