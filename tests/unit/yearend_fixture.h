/* yearend_fixture: a ledger with registry, archive, review and report in a temp folder, and
 * events made by hand, shared by test_review and test_report (header only). */
#ifndef YEAREND_FIXTURE_H
#define YEAREND_FIXTURE_H

#include "archive.h"
#include "err.h"
#include "ledger.h"
#include "registry.h"
#include "report.h"
#include "review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char dir[64];
    as_ledger_t *l;
    as_registry_t *reg;
    as_archive_t *ar;
    as_review_t *rv;
    as_report_t *rep;
    uint32_t next_id;
} yf_t;

/* Opens everything in a fresh folder; registry_csv may be NULL; rule may be NULL. */
static inline yf_t *yf_open(const char *registry_csv, const as_outlier_rule_t *rule)
{
    yf_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_yearend.XXXXXX");
    if (!mkdtemp(f->dir))
        abort();
    char sub[128];
    snprintf(sub, sizeof sub, "%s/ledger", f->dir);
    as_ledger_opts_t lo = {.no_sync = true};
    int err;
    f->l = as_ledger_new(sub, &lo, &err);
    f->reg = as_registry_new(as_ledger_env(f->l), &err);
    f->ar = as_archive_new(as_ledger_env(f->l), &err);
    if (!f->l || !f->reg || !f->ar)
        abort();
    if (registry_csv && as_registry_import_csv(f->reg, registry_csv, strlen(registry_csv), NULL))
        abort();
    f->rv = as_review_new(f->l, f->reg, f->ar, rule, &err);
    as_report_opts_t ro;
    as_report_opts_default(&ro);
    ro.out_dir = f->dir;
    f->rep = as_report_new(f->l, f->reg, f->ar, f->rv, &ro, &err);
    if (!f->rv || !f->rep)
        abort();
    f->next_id = 1;
    return f;
}

static inline void yf_close(yf_t *f)
{
    as_report_destroy(&f->rep);
    as_review_destroy(&f->rv);
    as_archive_destroy(&f->ar);
    as_registry_destroy(&f->reg);
    as_ledger_destroy(&f->l);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (!getenv("AS_KEEP_TMP") && system(cmd) != 0)
        abort();
    free(f);
}

/* A plain event with a fresh id: county, organisation, date, amounts. */
static inline as_event_t yf_event(yf_t *f, uint32_t county, const char *org, uint32_t date,
                                  int64_t funds_fen, uint64_t beneficiaries)
{
    as_event_t ev;
    memset(&ev, 0, sizeof ev);
    uint32_t id = f->next_id++;
    ev.id[0] = (uint8_t)(county >> 16);
    ev.id[1] = (uint8_t)(county >> 8);
    ev.id[2] = (uint8_t)county;
    memcpy(ev.id + 12, &id, 4);
    snprintf(ev.event_id, sizeof ev.event_id, "E%u", id);
    ev.county = county;
    snprintf(ev.org_code, sizeof ev.org_code, "%s", org);
    snprintf(ev.org_name, sizeof ev.org_name, "组织%s", org + 14);
    ev.area = 3;
    ev.group = 1;
    ev.funding = 2;
    ev.date = date;
    ev.funds_fen = funds_fen;
    ev.beneficiaries = beneficiaries;
    return ev;
}

/* A correction (retract false) or retraction (true) of target, with a fresh id. */
static inline as_event_t yf_change(yf_t *f, const as_event_t *target, bool retract)
{
    as_event_t ev = *target;
    uint32_t id = f->next_id++;
    memcpy(ev.id + 12, &id, 4);
    snprintf(ev.event_id, sizeof ev.event_id, "E%u", id);
    ev.has_correction = true;
    memcpy(ev.correction_of, target->id, AS_ID_LEN);
    ev.retract = retract;
    ev.flags = 0;
    return ev;
}

/* Applies n events in one group; returns their flags as logged through ev[i].flags. */
static inline void yf_apply(yf_t *f, as_event_t *ev, size_t n)
{
    if (as_ledger_begin(f->l) != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        as_apply_result_t res;
        if (as_ledger_apply(f->l, &ev[i], &res) != 0 || res.code != AS_RESULT_ACCEPTED)
            abort();
    }
    if (as_ledger_commit(f->l, NULL) != 0)
        abort();
}

static inline int yf_log_cb(void *ctx, const as_log_entry_t *e, const uint8_t *pb, size_t len)
{
    uint32_t *flags = ctx;
    flags[e->seq] = e->ev.flags;
    return 0;
}

/* The flags of every logged event, by sequence (index 0 unused); caller frees. */
static inline uint32_t *yf_logged_flags(yf_t *f)
{
    uint64_t last = as_ledger_last_seq(f->l), next, l2;
    uint32_t *flags = calloc(last + 2, sizeof *flags);
    if (as_ledger_replay(f->l, 1, last + 1, NULL, yf_log_cb, flags, &next, &l2) != 0)
        abort();
    return flags;
}

#endif
