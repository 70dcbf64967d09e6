/* agg_fixture: a ledger in a temporary folder, a libuv loop and a ZeroMQ context, plus events
 * made by hand and a loop pump, shared by the aggregator modules' unit tests (header only). */
#ifndef AGG_FIXTURE_H
#define AGG_FIXTURE_H

#include "division.h"
#include "err.h"
#include "event.h"
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <zmq.h>

typedef struct {
    char dir[64];   /* the temporary folder, removed by af_close */
    as_ledger_t *l; /* in dir/ledger */
    uv_loop_t loop; /* run by af_pump; closed by af_close (must end with no handle left) */
    void *zctx;     /* terminated by af_close: close the test's sockets first */
    uint64_t next_id;
} af_t;

static inline af_t *af_open(void)
{
    af_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_agg.XXXXXX");
    if (!f || !mkdtemp(f->dir) || as_division_init() != 0)
        abort();
    char sub[128];
    snprintf(sub, sizeof sub, "%s/ledger", f->dir);
    as_ledger_opts_t lo = {.no_sync = true};
    int err = 0;
    f->l = as_ledger_new(sub, &lo, &err);
    if (!f->l || uv_loop_init(&f->loop) != 0 || !(f->zctx = zmq_ctx_new()))
        abort();
    return f;
}

/* Runs the loop to the end (closing handles), then checks it is empty and removes everything. */
static inline int af_close(af_t *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    as_ledger_destroy(&f->l);
    zmq_ctx_term(f->zctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (!getenv("AS_KEEP_TMP") && system(cmd) != 0)
        abort();
    free(f);
    return rc;
}

/* "ipc://DIR/name" into out. */
static inline void af_endpoint(const af_t *f, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "ipc://%s/%s", f->dir, name);
}

static inline uint64_t af_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop without blocking for about ms milliseconds. */
static inline void af_pump(af_t *f, int ms)
{
    uint64_t end = af_now_ms() + (uint64_t)ms;
    do {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    } while (af_now_ms() < end);
}

/* A plain new event with a fresh id, every measure set; org is a number (the credit code is
 * made from it), date yyyymmdd. */
static inline as_event_t af_event(af_t *f, uint32_t county, int org, uint32_t date)
{
    as_event_t ev;
    memset(&ev, 0, sizeof ev);
    uint64_t k = ++f->next_id;
    ev.id[0] = (uint8_t)(county >> 16);
    ev.id[1] = (uint8_t)(county >> 8);
    ev.id[2] = (uint8_t)county;
    for (int i = 0; i < 8; i++)
        ev.id[8 + i] = (uint8_t)(k >> (8 * (7 - i)));
    ev.county = county;
    snprintf(ev.event_id, sizeof ev.event_id, "E%llu", (unsigned long long)k);
    snprintf(ev.org_code, sizeof ev.org_code, "513600005000%05uX", (unsigned)org % 100000u);
    snprintf(ev.org_name, sizeof ev.org_name, "测试社会组织%d", org);
    ev.area = AS_AREA_EDUCATION;
    ev.group = AS_GROUP_ELDERLY;
    ev.funding = AS_FUNDING_CHARITY;
    ev.date = date;
    snprintf(ev.village, sizeof ev.village, "%06u%06u", county % 1000000u,
             (100u + (unsigned)org) % 1000000u);
    ev.beneficiaries = 10;
    ev.registered_poor = 3;
    ev.funds_fen = 100000;
    ev.goods_fen = 500;
    ev.volunteers = 2;
    ev.volunteer_tenths = 15;
    ev.social_workers = 1;
    ev.persons_lifted = 1;
    ev.jobs = 2;
    ev.trainees = 4;
    ev.income_fen = 7000;
    return ev;
}

/* A correction (retract false) or retraction (true) of target, with a fresh id. */
static inline as_event_t af_change(af_t *f, const as_event_t *target, bool retract)
{
    as_event_t ev = af_event(f, target->county, 0, target->date);
    uint8_t id[AS_ID_LEN];
    memcpy(id, ev.id, AS_ID_LEN);
    char eid[sizeof ev.event_id];
    memcpy(eid, ev.event_id, sizeof eid);
    ev = *target;
    memcpy(ev.id, id, AS_ID_LEN);
    memcpy(ev.event_id, eid, sizeof eid);
    ev.has_correction = true;
    memcpy(ev.correction_of, target->id, AS_ID_LEN);
    ev.retract = retract;
    ev.flags = 0;
    return ev;
}

/* Applies n events in one group, aborting the test program unless every one is accepted;
 * returns the group's commit info. */
static inline as_commit_info_t af_apply(af_t *f, as_event_t *ev, size_t n)
{
    as_commit_info_t info;
    memset(&info, 0, sizeof info);
    if (as_ledger_begin(f->l) != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        as_apply_result_t res;
        if (as_ledger_apply(f->l, &ev[i], &res) != 0 || res.code != AS_RESULT_ACCEPTED)
            abort();
    }
    if (as_ledger_commit(f->l, &info) != 0)
        abort();
    return info;
}

#endif
