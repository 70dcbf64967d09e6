/* report: the year-end statistics — the eight parts of DESIGN.md "Report" computed from the
 * ledger's totals (never the event log), written to OUT/reports/Y/ as CSV (UTF-8 with BOM), JSON
 * and a printable HTML page, with a folder per supervisory unit; drafts on demand and on a
 * timer, the final report at the deadline (or on demand), which locks the year. */
#ifndef AS_REPORT_H
#define AS_REPORT_H

#include "archive.h"
#include "ledger.h"
#include "registry.h"
#include "review.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct as_report_s as_report_t;

typedef struct {
    const char *out_dir;          /* default parent of reports/ (the aggregator's data dir) */
    unsigned pairing_target;      /* provincial organisations paired; default 100 */
    unsigned social_work_target;  /* social-work talents a year; default 35 */
    unsigned deep_villages_total; /* deep-poverty villages of the province; default 269 */
    const char *deadline;         /* "MM-DD HH:MM" of year Y in +08:00; default "12-31 00:00" */
    unsigned draft_interval_s;    /* scheduled drafts of the current year; 0: none; 86400 */
    const char *province_name;    /* default 江西省 */
} as_report_opts_t;

/* Fills the defaults (out_dir "."). */
void as_report_opts_default(as_report_opts_t *o);

/* Called after a report was written: year, final, the folder, the report's moment (Unix ms). */
typedef void (*as_report_written_cb)(void *ctx, uint32_t year, bool final, const char *dir,
                                     uint64_t ms);

/* A report writer over borrowed parts (review may be NULL: no flag counts). Strings in opts are
 * copied. NULL with *err (AS_E_INVALID for a bad deadline, AS_E_NOMEM). */
as_report_t *as_report_new(as_ledger_t *l, as_registry_t *reg, as_archive_t *ar, as_review_t *rv,
                           const as_report_opts_t *opts, int *err);

/* Stops the schedule (the timer is freed in its close callback: run the loop once more) and
 * frees; safe on NULL and twice. */
void as_report_destroy(as_report_t **self_p);

/* Sets the listener (e.g. the feed's report.Y publisher). */
void as_report_on_written(as_report_t *r, as_report_written_cb cb, void *ctx);

/* Writes the report of year into OUT/reports/YEAR/ (out_dir NULL or "": the configured one).
 *  - draft, year open: the current figures;
 *  - final, year open: the figures at this moment, kept in the ledger and the year locked, in
 *    one write transaction (no event slips between the figures and the lock);
 *  - year locked (final or not): the kept final files, byte for byte; a draft then also goes to
 *    OUT/reports/YEAR/amended/ with the current figures and the amendments.
 * msg (may be NULL) receives a one-line summary. Returns 0 or an error. */
int as_report_write(as_report_t *r, uint32_t year, bool final, const char *out_dir, char *msg,
                    size_t msg_cap);

/* The deadline of year as Unix ms (from opts.deadline, +08:00). */
uint64_t as_report_deadline_ms(const as_report_t *r, uint32_t year);

/* Starts the schedule on loop: every minute, the current or the previous year, past its deadline,
 * not locked and with at least one activity, gets its final report; every draft_interval_s the
 * current year gets a draft. */
int as_report_schedule(as_report_t *r, uv_loop_t *loop);

/* One check of the schedule at time now_ms (what the timer does; exposed for tests). */
void as_report_tick(as_report_t *r, uint64_t now_ms);

#endif
