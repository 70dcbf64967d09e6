/* aggregator: the daemon object — loop, ledger, ingest, ZAP, feed, query, signals, hooks. */
#include "aggregator.h"
#include "err.h"
#include "feed.h"
#include "log.h"
#include "query.h"
#include "wire.h"
#include "zap.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define S_LISTENERS 8
/* Events published on the feed per loop iteration (three frames each): a group of 20,000
 * published at once held the loop for 50 ms, and every HTTP request, query and acknowledgement
 * with it. */
#define S_FEED_SLICE 128

/* A committed event waiting for the feed: its header fields and where its packed bytes (the
 * event log's, see as_committed_t) are in the queue's byte buffer. */
typedef struct {
    uint64_t seq;
    uint64_t commit_ms;
    uint32_t county;
    uint32_t flags;
    int kind;
    size_t off, len;
} s_feed_item_t;

typedef struct {
    as_commit_cb cb;
    void *arg;
} s_listener_t;

struct as_aggregator_s {
    uv_loop_t loop;
    bool loop_open;
    uv_signal_t sig[3]; /* SIGTERM, SIGINT, SIGHUP */
    int nsig;
    void *zctx;
    as_ledger_t *ledger;
    as_zap_t *zap;
    as_ingest_t *ingest;
    as_feed_t *feed;
    as_query_t *query;
    uv_idle_t feed_idle; /* publishes the feed queue slice by slice while it is active */
    bool feed_idle_open;
    s_feed_item_t *feed_q;    /* committed events not yet published, in sequence order */
    size_t feed_head, feed_n; /* next to publish, end */
    size_t feed_cap;
    uint8_t *feed_bytes; /* their packed events, back to back from feed_q[0].off */
    size_t feed_bytes_n, feed_bytes_cap;
    s_listener_t listeners[S_LISTENERS];
    size_t nlisteners;
    void (*result_cb)(void *, int, int);
    void *result_arg;
    int (*nil_cb)(void *, uint32_t, uint32_t, uint32_t);
    void *nil_arg;
    void (*stop_cb)(void *);
    void *stop_arg;
    void (*reload_cb)(void *);
    void *reload_arg;
    bool stopping;
    bool stopped;
    bool failed; /* the ledger could not be made durable: stopped with a failure */
};

/* ---- hooks from the ingest ----------------------------------------------------------------- */

/* Publishes up to max queued events; stops the idle handle when the queue is empty. */
static void s_feed_drain(as_aggregator_t *agg, size_t max)
{
    size_t end = agg->feed_n - agg->feed_head > max ? agg->feed_head + max : agg->feed_n;
    for (; agg->feed_head < end; agg->feed_head++) {
        const s_feed_item_t *it = &agg->feed_q[agg->feed_head];
        if (agg->feed)
            as_feed_publish_packed(agg->feed, it->seq, it->commit_ms, it->county, it->kind,
                                   it->flags, agg->feed_bytes + it->off, it->len);
    }
    if (agg->feed_head == agg->feed_n) {
        agg->feed_head = agg->feed_n = agg->feed_bytes_n = 0;
        if (agg->feed_idle_open)
            uv_idle_stop(&agg->feed_idle);
    }
}

static void s_feed_idle_cb(uv_idle_t *h)
{
    s_feed_drain(h->data, S_FEED_SLICE);
}

/* Room for n more items and bytes more packed bytes, the unpublished rest moved to the front
 * first; false when out of memory. */
static bool s_feed_room(as_aggregator_t *agg, size_t n, size_t bytes)
{
    if (agg->feed_head) {
        size_t live = agg->feed_n - agg->feed_head;
        size_t from = agg->feed_q[agg->feed_head].off;
        memmove(agg->feed_q, agg->feed_q + agg->feed_head, live * sizeof *agg->feed_q);
        memmove(agg->feed_bytes, agg->feed_bytes + from, agg->feed_bytes_n - from);
        for (size_t i = 0; i < live; i++)
            agg->feed_q[i].off -= from;
        agg->feed_head = 0;
        agg->feed_n = live;
        agg->feed_bytes_n -= from;
    }
    if (agg->feed_n + n > agg->feed_cap) {
        size_t cap = agg->feed_cap ? agg->feed_cap : 1024;
        while (cap < agg->feed_n + n)
            cap *= 2;
        s_feed_item_t *q = realloc(agg->feed_q, cap * sizeof *q);
        if (!q)
            return false;
        agg->feed_q = q;
        agg->feed_cap = cap;
    }
    if (agg->feed_bytes_n + bytes > agg->feed_bytes_cap) {
        size_t cap = agg->feed_bytes_cap ? agg->feed_bytes_cap : 1 << 20;
        while (cap < agg->feed_bytes_n + bytes)
            cap *= 2;
        uint8_t *b = realloc(agg->feed_bytes, cap);
        if (!b)
            return false;
        agg->feed_bytes = b;
        agg->feed_bytes_cap = cap;
    }
    return true;
}

/* Queues a commit's events for the feed (copies of their packed bytes: the group's memory goes
 * after this call) and publishes the first slice at once; the rest goes out on the next loop
 * iterations, between which requests are answered. Publishes everything here when queueing is
 * impossible. */
static void s_feed_enqueue(as_aggregator_t *agg, const as_committed_t *evs, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += evs[i].pb ? evs[i].pb_len : as_event_packed_size(evs[i].ev);
    if (!s_feed_room(agg, n, bytes)) {
        AS_WARN("aggregator",
                "out of memory queueing %zu events for the feed: publishing them at once", n);
        s_feed_drain(agg, SIZE_MAX);
        for (size_t i = 0; i < n; i++)
            as_feed_publish(agg->feed, evs[i].seq, evs[i].commit_ms, evs[i].ev);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const as_event_t *ev = evs[i].ev;
        s_feed_item_t *it = &agg->feed_q[agg->feed_n++];
        it->seq = evs[i].seq;
        it->commit_ms = evs[i].commit_ms;
        it->county = ev->county;
        it->flags = ev->flags;
        it->kind = as_feed_kind(ev);
        it->off = agg->feed_bytes_n;
        if (evs[i].pb) {
            memcpy(agg->feed_bytes + it->off, evs[i].pb, evs[i].pb_len);
            it->len = evs[i].pb_len;
        } else {
            it->len = as_event_pack(ev, agg->feed_bytes + it->off);
        }
        agg->feed_bytes_n += it->len;
    }
    s_feed_drain(agg, S_FEED_SLICE);
    if (agg->feed_n && agg->feed_idle_open)
        uv_idle_start(&agg->feed_idle, s_feed_idle_cb);
    else if (agg->feed_n)
        s_feed_drain(agg, SIZE_MAX);
}

static void s_on_commit(void *arg, const as_commit_info_t *info, const as_committed_t *evs,
                        size_t n)
{
    as_aggregator_t *agg = arg;
    s_feed_enqueue(agg, evs, n);
    for (size_t i = 0; i < agg->nlisteners; i++)
        agg->listeners[i].cb(agg->listeners[i].arg, info, evs, n);
}

static void s_on_result(void *arg, int code, int reject)
{
    as_aggregator_t *agg = arg;
    if (agg->result_cb)
        agg->result_cb(agg->result_arg, code, reject);
}

static int s_on_nil(void *arg, uint32_t county, uint32_t year, uint32_t month)
{
    as_aggregator_t *agg = arg;
    return agg->nil_cb(agg->nil_arg, county, year, month);
}

static void s_on_fatal(void *arg, int rc)
{
    as_aggregator_t *agg = arg;
    agg->failed = true;
    AS_ERROR("aggregator", "stopping after a ledger failure (%s); exit status 1", as_strerror(rc));
    as_aggregator_stop(agg);
}

static void s_set_hooks(as_aggregator_t *agg)
{
    as_ingest_hooks_t h = {.on_commit = s_on_commit,
                           .on_result = s_on_result,
                           .on_nil = agg->nil_cb ? s_on_nil : NULL,
                           .on_fatal = s_on_fatal,
                           .arg = agg};
    as_ingest_set_hooks(agg->ingest, &h);
}

int as_aggregator_on_commit(as_aggregator_t *agg, as_commit_cb cb, void *arg)
{
    if (agg->nlisteners == S_LISTENERS)
        return AS_E_TOOBIG;
    agg->listeners[agg->nlisteners++] = (s_listener_t){cb, arg};
    return 0;
}

void as_aggregator_on_result(as_aggregator_t *agg, void (*cb)(void *, int, int), void *arg)
{
    agg->result_cb = cb;
    agg->result_arg = arg;
}

void as_aggregator_on_nil_report(as_aggregator_t *agg,
                                 int (*cb)(void *, uint32_t, uint32_t, uint32_t), void *arg)
{
    agg->nil_cb = cb;
    agg->nil_arg = arg;
    s_set_hooks(agg);
}

void as_aggregator_on_stop(as_aggregator_t *agg, void (*cb)(void *), void *arg)
{
    agg->stop_cb = cb;
    agg->stop_arg = arg;
}

void as_aggregator_on_reload(as_aggregator_t *agg, void (*cb)(void *), void *arg)
{
    agg->reload_cb = cb;
    agg->reload_arg = arg;
}

as_query_t *as_aggregator_query(as_aggregator_t *agg)
{
    return agg->query;
}

as_feed_t *as_aggregator_feed(as_aggregator_t *agg)
{
    return agg->feed;
}

uv_loop_t *as_aggregator_loop(as_aggregator_t *agg)
{
    return &agg->loop;
}

as_ledger_t *as_aggregator_ledger(as_aggregator_t *agg)
{
    return agg->ledger;
}

as_ingest_t *as_aggregator_ingest(as_aggregator_t *agg)
{
    return agg->ingest;
}

/* ---- stopping ------------------------------------------------------------------------------ */

static void s_noop_close(uv_handle_t *h)
{
    (void)h;
}

static void s_feed_close(as_aggregator_t *agg)
{
    if (agg->feed_idle_open) {
        uv_close((uv_handle_t *)&agg->feed_idle, s_noop_close);
        agg->feed_idle_open = false;
    }
}

/* The last commit's results went out: close everything so the loop ends. */
static void s_ingest_stopped(void *arg)
{
    as_aggregator_t *agg = arg;
    if (agg->stop_cb)
        agg->stop_cb(agg->stop_arg);
    s_feed_drain(agg, SIZE_MAX); /* the last commits' events, before the feed closes */
    s_feed_close(agg);
    as_query_destroy(&agg->query);
    as_feed_destroy(&agg->feed);
    as_zap_destroy(&agg->zap);
    as_ingest_destroy(&agg->ingest); /* linger lets the results leave */
    for (int i = 0; i < agg->nsig; i++)
        uv_close((uv_handle_t *)&agg->sig[i], s_noop_close);
    agg->nsig = 0;
    agg->stopped = true;
    AS_INFO("aggregator", "stopped cleanly; ledger at seq %llu",
            (unsigned long long)as_ledger_last_seq(agg->ledger));
}

void as_aggregator_stop(as_aggregator_t *agg)
{
    if (agg->stopping)
        return;
    agg->stopping = true;
    AS_INFO("aggregator", "stopping: no new input; the running commit finishes and is answered");
    if (agg->ingest)
        as_ingest_stop(agg->ingest, s_ingest_stopped, agg);
    else
        s_ingest_stopped(agg);
}

int as_aggregator_reload(as_aggregator_t *agg)
{
    return agg->zap ? as_zap_reload(agg->zap) : 0;
}

static void s_on_signal(uv_signal_t *h, int signum)
{
    as_aggregator_t *agg = h->data;
    if (signum == SIGHUP) {
        AS_INFO("aggregator", "SIGHUP: reloading the authorized keys");
        as_aggregator_reload(agg);
        if (agg->reload_cb)
            agg->reload_cb(agg->reload_arg);
        return;
    }
    AS_INFO("aggregator", "%s received", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    as_aggregator_stop(agg);
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static int s_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

as_aggregator_t *as_aggregator_new(const as_aggregator_opts_t *o, int *err)
{
    as_aggregator_t *agg = calloc(1, sizeof *agg);
    if (!agg) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    int rc = uv_loop_init(&agg->loop);
    if (rc) {
        free(agg);
        *err = rc;
        return NULL;
    }
    agg->loop_open = true;
    bool has_secret = o->curve_secret && *o->curve_secret;
    bool has_keys = o->authorized_keys && *o->authorized_keys;
    if (has_secret != has_keys) {
        AS_ERROR("aggregator",
                 "CURVE needs both --curve-secret and --authorized-keys; only %s "
                 "given",
                 has_secret ? "--curve-secret" : "--authorized-keys");
        rc = AS_E_INVALID;
        goto fail;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ledger", o->data_dir && *o->data_dir ? o->data_dir : ".");
    if ((rc = s_mkdirs(dir)) != 0) {
        AS_ERROR("aggregator", "cannot create %s: %s", dir, as_strerror(rc));
        goto fail;
    }
    as_ledger_opts_t lo = {
        .initial_map_bytes = o->map_bytes, .no_sync = o->no_sync, .grow_outside_groups = true};
    if (!(agg->ledger = as_ledger_new(dir, &lo, &rc))) {
        AS_ERROR("aggregator", "cannot open the ledger in %s: %s", dir, as_strerror(rc));
        goto fail;
    }
    if (!(agg->zctx = zmq_ctx_new())) {
        rc = AS_E_ZMQ;
        goto fail;
    }
    if (has_secret) {
        if (!(agg->zap = as_zap_new(&agg->loop, agg->zctx, o->authorized_keys, &rc)))
            goto fail;
    } else {
        AS_WARN("aggregator", "ingest runs WITHOUT CURVE: no encryption, no authentication; a "
                              "collector's county is taken from its Hello (set --curve-secret and "
                              "--authorized-keys to secure it)");
    }
    as_ingest_opts_t io = {.endpoint = o->ingest ? o->ingest : "tcp://127.0.0.1:7601",
                           .curve_secret = has_secret ? o->curve_secret : NULL,
                           .group_cap = o->group_cap,
                           .worker_nice = o->worker_nice};
    if (!(agg->ingest = as_ingest_new(&agg->loop, agg->zctx, agg->ledger, &io, &rc)))
        goto fail;
    s_set_hooks(agg);
    uv_idle_init(&agg->loop, &agg->feed_idle);
    agg->feed_idle.data = agg;
    agg->feed_idle_open = true;
    if (!(agg->feed = as_feed_new(&agg->loop, agg->zctx, o->feed ? o->feed : "tcp://127.0.0.1:7602",
                                  as_ledger_last_seq(agg->ledger), o->feed_hwm, &rc)))
        goto fail;
    if (!(agg->query =
              as_query_new(&agg->loop, agg->zctx, o->query ? o->query : "tcp://127.0.0.1:7603",
                           agg->ledger, as_ingest_live, agg->ingest, &rc)))
        goto fail;
    if (o->signals) {
        const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
        for (int i = 0; i < 3; i++) {
            uv_signal_init(&agg->loop, &agg->sig[i]);
            agg->sig[i].data = agg;
            agg->nsig++;
            uv_signal_start(&agg->sig[i], s_on_signal, sigs[i]);
        }
    }
    AS_INFO("aggregator", "ready; ledger %s at seq %llu", dir,
            (unsigned long long)as_ledger_last_seq(agg->ledger));
    return agg;
fail:
    *err = rc;
    as_aggregator_destroy(&agg);
    return NULL;
}

int as_aggregator_run(as_aggregator_t *agg)
{
    uv_run(&agg->loop, UV_RUN_DEFAULT);
    if (agg->failed)
        return AS_E_DB;
    return agg->stopped ? 0 : AS_E_STATE;
}

void as_aggregator_destroy(as_aggregator_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_aggregator_t *agg = *self_p;
    *self_p = NULL;
    if (agg->ingest && !agg->stopped) {
        /* never ran or did not stop: finish any commit, then close */
        as_aggregator_stop(agg);
        uv_run(&agg->loop, UV_RUN_DEFAULT);
    }
    s_feed_drain(agg, SIZE_MAX);
    s_feed_close(agg);
    as_query_destroy(&agg->query);
    as_feed_destroy(&agg->feed);
    as_zap_destroy(&agg->zap);
    as_ingest_destroy(&agg->ingest);
    for (int i = 0; i < agg->nsig; i++)
        uv_close((uv_handle_t *)&agg->sig[i], s_noop_close);
    agg->nsig = 0;
    if (agg->loop_open) {
        uv_run(&agg->loop, UV_RUN_DEFAULT); /* close callbacks */
        if (uv_loop_close(&agg->loop) != 0)
            AS_WARN("aggregator", "handles still open at exit");
    }
    if (agg->zctx)
        zmq_ctx_term(agg->zctx);
    as_ledger_destroy(&agg->ledger);
    free(agg->feed_q);
    free(agg->feed_bytes);
    free(agg);
}
