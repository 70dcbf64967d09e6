/* review: flags for review, raised while the ledger accepts an event and kept with it —
 * unregistered organisation, online fundraising without the qualification, outliers, the same
 * activity reported by two counties, amendments of a locked year — and counted per year, flag
 * and county so that the report reads counts, never the event log. */
#ifndef AS_REVIEW_H
#define AS_REVIEW_H

#include "archive.h"
#include "ledger.h"
#include "registry.h"

#include <stddef.h>
#include <stdint.h>

typedef struct as_review_s as_review_t;

/* The outlier rule. An event is an outlier when its amount (funds + goods, fen) or its count
 * (beneficiaries) exceeds  median + k · max(1.4826 · MAD, median / 10, 1)  over the last `window`
 * events of its county AND over the last `window` events of its area (province-wide), each window
 * holding at least `min_samples` events (before that nothing is judged). The event then joins the
 * windows. Windows live in memory and start empty when the daemon starts; each threshold is
 * recomputed after every window/8 new values (not per event, to keep ingest fast). */
typedef struct {
    double k;             /* default 6 */
    unsigned window;      /* default 200 */
    unsigned min_samples; /* default 30 */
} as_outlier_rule_t;

/* Fills the defaults. */
void as_outlier_rule_default(as_outlier_rule_t *r);

/* Attaches review to ledger l: installs the ledger's organisation look-up and unit names (from
 * reg) and its event hook. reg and ar are borrowed and must outlive the review; rule may be NULL
 * (defaults). NULL with *err on failure. */
as_review_t *as_review_new(as_ledger_t *l, as_registry_t *reg, as_archive_t *ar,
                           const as_outlier_rule_t *rule, int *err);

/* Detaches from the ledger and frees; safe on NULL and twice. */
void as_review_destroy(as_review_t **self_p);

/* Live flagged events of a year: one row per flag bit and county with a non-zero count. */
typedef struct {
    uint32_t flag; /* one AS_FLAG_* bit */
    uint32_t county;
    int64_t count;
} as_flag_count_t;

/* The counts of year in (flag, county) order; *rows is the caller's to free(). */
int as_review_flag_counts(as_review_t *r, uint32_t year, as_flag_count_t **rows, size_t *n);

/* Chinese and English names of a flag bit. */
const char *as_review_flag_name_zh(uint32_t flag);
const char *as_review_flag_name(uint32_t flag);

#endif
