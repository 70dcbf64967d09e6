/* ingest: the ingest ROUTER, per-collector state, validation and group commit. */
#include "ingest.h"
#include "division.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "wire.h"
#include "zap.h"
#include "zpoll.h"

#include "aidstat/v1/ingest.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <zmq.h>

/* A draft option in libzmq 4.3 headers; the library accepts it when built with draft APIs. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define S_RECV_BUDGET 256  /* messages per readable callback before other handles run */
#define S_LINGER_MS   2000 /* time the last results get to leave on close */
#define S_SNDHWM      10000
#define S_RID_MAX     256
#define S_DEAD_BEATS  5 /* heartbeats of silence after which a collector is not connected */

/* ---- state ------------------------------------------------------------------------------- */

typedef struct {
    uint8_t rid[S_RID_MAX]; /* ZeroMQ routing id of its connection */
    size_t rid_len;
    char collector_id[64]; /* from Hello */
    uint32_t county;       /* authenticated (CURVE) or from Hello */
    bool welcomed;
    bool dirty;             /* state to write with the next commit */
    uint64_t last_heard_ms; /* Unix ms */
    uint64_t backlog;
    uint64_t rejected_extra; /* rejected before the ledger, not yet committed with its count */
    uint64_t last_batch_seq; /* committed */
    uint64_t group_seq;      /* highest batch seq in the pending group */
    char version[32];
} s_peer_t;

/* One batch received, waiting for its group's commit. */
typedef struct s_batch_s {
    struct s_batch_s *next;
    size_t peer;           /* index into peers (never removed) */
    char collector_id[64]; /* copy, for the worker */
    uint64_t seq;
    size_t n;
    as_event_t *evs;           /* n events */
    bool *valid;               /* goes to the ledger */
    as_apply_result_t *res;    /* n results */
    uint8_t (*ids)[AS_ID_LEN]; /* ids as received, echoed in the results */
    size_t *id_len;
    size_t pre_rejected; /* events rejected before the ledger (counted there at the commit) */
    uint8_t *pk;         /* the valid events packed here on the loop, back to back, so that */
    uint32_t *pk_off;    /* the writer copies them into the log instead of packing them */
    uint32_t *pk_len;    /* (as_ledger_apply_packed); pk_len 0: not packed */
    size_t pk_n, pk_cap;
} s_batch_t;

/* A group of batches committed in one transaction. Its life: pending → committing (the worker
 * applies and commits it, `running`) → syncing (committed, readers see it; the fsync of its meta
 * page runs on a worker while the next group is applied) → finished on the loop in commit
 * order: listeners, then the results go back. */
typedef struct s_group_s {
    uv_work_t work;
    uv_work_t sync_work;
    struct s_group_s *next; /* in the syncing queue */
    struct as_ingest_s *in;
    s_batch_t *head;
    as_collector_state_t *states;
    size_t *state_peer;
    size_t nstates;
    as_commit_info_t info;
    int rc;
    size_t events;
    uint64_t work_us;      /* the whole transaction on the worker thread, apply to commit */
    uint64_t cpu_us;       /* of it, CPU time of the worker thread */
    const uint8_t *packed; /* the ledger's packed events of this group (as_ledger_packed) */
    bool synced;           /* its fsync is over (sync_rc says how it went) */
    int sync_rc;
    uint64_t sync_us;    /* the fsync's wall time */
    uint64_t start_us;   /* when the worker began the transaction */
    uint64_t durable_us; /* from then until the fsync was over */
} s_group_t;

/* Memory for decoding one message: protobuf-c allocates from it and frees nothing; it is
 * emptied after the message is handled (decoding with malloc, one allocation per string and
 * event and a walk to free them, was a third of the loop thread's instructions per event). */
typedef struct s_chunk_s {
    struct s_chunk_s *next;
    size_t cap, used;
    max_align_t data[];
} s_chunk_t;

typedef struct {
    s_chunk_t *head; /* newest first; after a reset only the largest is kept */
} s_arena_t;

#define S_ARENA_CHUNK ((size_t)1 << 20)

static void *s_arena_alloc(void *ad, size_t size)
{
    s_arena_t *a = ad;
    size_t need = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    s_chunk_t *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > S_ARENA_CHUNK ? need : S_ARENA_CHUNK;
        if (!(c = malloc(sizeof *c + cap)))
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (uint8_t *)c->data + c->used;
    c->used += need;
    return p;
}

static void s_arena_free(void *ad, void *p)
{
    (void)ad;
    (void)p;
}

/* Empties the arena, keeping one chunk as large as all of them were. */
static void s_arena_reset(s_arena_t *a)
{
    if (!a->head)
        return;
    if (!a->head->next) {
        a->head->used = 0;
        return;
    }
    size_t total = 0;
    for (s_chunk_t *c = a->head, *n; c; c = n) {
        n = c->next;
        total += c->cap;
        free(c);
    }
    a->head = malloc(sizeof *a->head + total);
    if (a->head) {
        a->head->next = NULL;
        a->head->cap = total;
        a->head->used = 0;
    }
}

static void s_arena_destroy(s_arena_t *a)
{
    for (s_chunk_t *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    a->head = NULL;
}

struct as_ingest_s {
    uv_loop_t *loop;
    void *router;
    as_zpoll_t *zp;
    as_ledger_t *ledger; /* borrowed */
    as_ingest_hooks_t hooks;
    bool curve;
    size_t group_cap;
    size_t group_limit; /* events the pending group may take: as_ingest_group_limit */
    int worker_nice;    /* added to a worker thread's nice before its first commit or fsync */
    uint32_t heartbeat_ms;
    s_peer_t *peers;
    size_t npeers, cap_peers;
    s_batch_t *head, *tail; /* pending group */
    size_t pending_events;
    s_group_t *running;               /* the commit on the worker thread, or NULL */
    s_group_t *sync_head, *sync_tail; /* committed groups not yet finished, in commit order */
    bool broken;  /* an fsync failed: nothing more is committed or acknowledged */
    int fatal_rc; /* why, to tell hooks.on_fatal (once, see s_go_on) */
    bool fatal_told;
    bool stopping;
    void (*stop_done)(void *);
    void *stop_arg;
    as_ingest_stats_t st;
    uint8_t *buf; /* packing buffer */
    size_t cap;
    s_arena_t arena; /* decoding memory of the message being handled */
};

static uint64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t s_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* Copies src into dst[size] cutting at a UTF-8 character boundary. */
static void s_copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* ---- peers ------------------------------------------------------------------------------------
 */

static s_peer_t *s_peer_by_rid(as_ingest_t *in, const void *rid, size_t len)
{
    for (size_t i = 0; i < in->npeers; i++)
        if (in->peers[i].rid_len == len && memcmp(in->peers[i].rid, rid, len) == 0)
            return &in->peers[i];
    return NULL;
}

static s_peer_t *s_peer_by_id(as_ingest_t *in, const char *id)
{
    for (size_t i = 0; i < in->npeers; i++)
        if (!strcmp(in->peers[i].collector_id, id))
            return &in->peers[i];
    return NULL;
}

static s_peer_t *s_peer_add(as_ingest_t *in)
{
    if (in->npeers == in->cap_peers) {
        size_t cap = in->cap_peers ? in->cap_peers * 2 : 16;
        s_peer_t *p = realloc(in->peers, cap * sizeof *p);
        if (!p)
            return NULL;
        in->peers = p;
        in->cap_peers = cap;
    }
    s_peer_t *p = &in->peers[in->npeers++];
    memset(p, 0, sizeof *p);
    return p;
}

static bool s_connected(const as_ingest_t *in, const s_peer_t *p, uint64_t now)
{
    return p->welcomed && now - p->last_heard_ms <= (uint64_t)S_DEAD_BEATS * in->heartbeat_ms;
}

int as_ingest_live(void *ctx, as_collector_live_t **out, size_t *n)
{
    as_ingest_t *in = ctx;
    *n = 0;
    *out = calloc(in->npeers ? in->npeers : 1, sizeof **out);
    if (!*out)
        return AS_E_NOMEM;
    uint64_t now = s_now_ms();
    for (size_t i = 0; i < in->npeers; i++) {
        const s_peer_t *p = &in->peers[i];
        if (!p->collector_id[0])
            continue;
        as_collector_live_t *l = &(*out)[(*n)++];
        memcpy(l->collector_id, p->collector_id, sizeof l->collector_id);
        l->county = p->county;
        l->connected = s_connected(in, p, now);
        l->last_heard_ms = p->last_heard_ms;
        l->backlog = p->backlog;
        l->rejected_extra = p->rejected_extra;
        l->last_batch_seq = p->last_batch_seq;
        memcpy(l->version, p->version, sizeof l->version);
    }
    return 0;
}

bool as_ingest_connected(const as_ingest_t *in, const char *collector_id)
{
    uint64_t now = s_now_ms();
    for (size_t i = 0; i < in->npeers; i++)
        if (!strcmp(in->peers[i].collector_id, collector_id))
            return s_connected(in, &in->peers[i], now);
    return false;
}

void as_ingest_stats(const as_ingest_t *in, as_ingest_stats_t *st)
{
    *st = in->st;
}

void as_ingest_set_hooks(as_ingest_t *in, const as_ingest_hooks_t *hooks)
{
    if (hooks)
        in->hooks = *hooks;
    else
        memset(&in->hooks, 0, sizeof in->hooks);
}

/* ---- sending ------------------------------------------------------------------------------- */

static void s_send(as_ingest_t *in, const void *rid, size_t rid_len,
                   const Aidstat__V1__IngestMessage *m)
{
    size_t len = aidstat__v1__ingest_message__get_packed_size(m);
    if (len > in->cap) {
        uint8_t *b = realloc(in->buf, len);
        if (!b) {
            in->st.send_drops++;
            return;
        }
        in->buf = b;
        in->cap = len;
    }
    aidstat__v1__ingest_message__pack(m, in->buf);
    if (zmq_send(in->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(in->router, in->buf, len, ZMQ_DONTWAIT) < 0) {
        if (in->st.send_drops++ % 1000 == 0)
            AS_WARN("ingest",
                    "a reply of %zu bytes could not be sent: %s (%llu so far; the "
                    "collector resends what stays unanswered)",
                    len, zmq_strerror(zmq_errno()), (unsigned long long)in->st.send_drops);
    }
}

static void s_send_error(as_ingest_t *in, const void *rid, size_t rid_len, const char *reason)
{
    Aidstat__V1__Error e = AIDSTAT__V1__ERROR__INIT;
    e.reason = (char *)reason;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR;
    m.error = &e;
    in->st.errors_sent++;
    s_send(in, rid, rid_len, &m);
}

/* ---- group commit ------------------------------------------------------------------------ */

static void s_batch_free(s_batch_t *b)
{
    if (!b)
        return;
    free(b->evs);
    free(b->valid);
    free(b->res);
    free(b->ids);
    free(b->id_len);
    free(b->pk);
    free(b->pk_off);
    free(b->pk_len);
    free(b);
}

static void s_group_free(s_group_t *g)
{
    for (s_batch_t *b = g->head, *next; b; b = next) {
        next = b->next;
        s_batch_free(b);
    }
    free(g->states);
    free(g->state_peer);
    free(g);
}

/* The kernel's struct sched_attr (sched_setattr(2)); glibc 2.36 has no wrapper. */
typedef struct {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
} s_sched_attr_t;

/* Lowers the calling worker thread's priority by in->worker_nice and asks for a short scheduler
 * slice (AS_INGEST_WORKER_SLICE_NS), once per thread. On a machine with few cores a commit (tens
 * of ms of CPU at province scale, much of it the kernel writing pages) otherwise keeps a core
 * while the loop, woken by a request, waits: Linux's EEVDF scheduler lets a running thread finish
 * its slice (1.4 ms on 2 cores, looked at only on the next tick: up to 4 ms at HZ=250) before a
 * woken one takes over, whatever their nice. A short slice ends that protection early, and the
 * nice keeps the short slice from making the commit the one picked first. The pool's other work
 * (stream catch-up, backups) runs on these threads too, at the same priority: it is background
 * work as well. Kernels before 6.12 ignore the slice; a thread that cannot be changed keeps the
 * loop's priority (told once). */
static void s_worker_nice(const as_ingest_t *in)
{
    static _Thread_local bool done;
    static atomic_bool told;
    if (done || !in->worker_nice)
        return;
    done = true;
    pid_t tid = gettid();
    s_sched_attr_t a = {0};
    int rc = (int)syscall(SYS_sched_getattr, tid, &a, (unsigned)sizeof a, 0u);
    if (rc == 0 && a.policy == SCHED_OTHER) {
        int want = a.nice + in->worker_nice > 19 ? 19 : a.nice + in->worker_nice;
        a.size = (uint32_t)sizeof a;
        a.flags = 0;
        a.nice = want;
        a.runtime = AS_INGEST_WORKER_SLICE_NS;
        rc = (int)syscall(SYS_sched_setattr, tid, &a, 0u);
        if (rc != 0) /* no custom slices here: the nice alone */
            rc = setpriority(PRIO_PROCESS, (id_t)tid, want);
    }
    if (rc != 0 && !atomic_exchange(&told, true))
        AS_WARN("ingest",
                "cannot lower the priority of the commit and fsync threads (%s); they keep the "
                "loop's, so answers may wait for a commit while ingest runs",
                strerror(errno));
}

static void s_commit_work(uv_work_t *w)
{
    s_group_t *g = w->data;
    s_worker_nice(g->in);
    as_ledger_t *l = g->in->ledger;
    uint64_t t0 = g->start_us = s_now_us();
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    int rc = as_ledger_begin(l);
    for (s_batch_t *b = g->head; b && rc == 0; b = b->next) {
        as_ledger_set_source(l, b->collector_id);
        for (size_t i = 0; i < b->n && rc == 0; i++)
            if (b->valid[i])
                rc = as_ledger_apply_packed(l, &b->evs[i],
                                            b->pk_len[i] ? b->pk + b->pk_off[i] : NULL,
                                            b->pk_len[i], &b->res[i]);
            else
                as_ledger_count_rejected(l);
    }
    as_ledger_set_source(l, NULL);
    for (size_t i = 0; i < g->nstates && rc == 0; i++)
        rc = as_ledger_put_collector(l, &g->states[i]);
    if (rc == 0 && (rc = as_ledger_commit_nosync(l, &g->info)) == 0)
        g->packed = as_ledger_packed(l); /* before the next group begins */
    else if (rc)
        as_ledger_abort(l);
    g->rc = rc;
    g->work_us = s_now_us() - t0;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    g->cpu_us = (uint64_t)((c1.tv_sec - c0.tv_sec) * 1000000 + (c1.tv_nsec - c0.tv_nsec) / 1000);
}

static void s_commit_done(uv_work_t *w, int status);

/* Starts a commit of the pending group when none runs and there is something to write. */
static void s_maybe_commit(as_ingest_t *in)
{
    /* one group on the worker, at most one more committed and waiting for its fsync (the ledger
     * keeps two groups' packed events, see as_ledger_packed) */
    if (in->running || (in->sync_head && in->sync_head->next) || in->broken)
        return;
    bool dirty = false;
    for (size_t i = 0; i < in->npeers && !dirty; i++)
        dirty = in->peers[i].dirty;
    if (!in->head && !dirty)
        return;
    s_group_t *g = calloc(1, sizeof *g);
    size_t np = in->npeers ? in->npeers : 1;
    if (!g || !(g->states = calloc(np, sizeof *g->states)) ||
        !(g->state_peer = calloc(np, sizeof *g->state_peer))) {
        if (g)
            s_group_free(g);
        AS_ERROR("ingest", "out of memory starting a commit; retrying with the next message");
        return;
    }
    g->in = in;
    g->head = in->head;
    g->events = in->pending_events;
    in->head = in->tail = NULL;
    in->pending_events = 0;
    for (size_t i = 0; i < in->npeers; i++) {
        s_peer_t *p = &in->peers[i];
        if (!p->dirty && !p->group_seq)
            continue;
        as_collector_state_t *s = &g->states[g->nstates];
        g->state_peer[g->nstates++] = i;
        memcpy(s->collector_id, p->collector_id, sizeof s->collector_id);
        s->county = p->county;
        s->last_batch_seq = p->group_seq > p->last_batch_seq ? p->group_seq : p->last_batch_seq;
        s->backlog = p->backlog;
        s->last_heard_ms = p->last_heard_ms;
        memcpy(s->version, p->version, sizeof s->version);
        p->dirty = false;
        p->group_seq = 0;
    }
    /* The map grows here, on the loop thread between callbacks: no read transaction is open
     * and the previous group has finished, as LMDB requires for a resize. */
    int grc = as_ledger_grow(in->ledger);
    if (grc)
        AS_WARN("ingest", "could not grow the ledger's map (%s); committing into the current one",
                as_strerror(grc));
    g->work.data = g;
    int rc = uv_queue_work(in->loop, &g->work, s_commit_work, s_commit_done);
    if (rc) {
        AS_ERROR("ingest", "cannot start a commit: %s; the collectors will resend",
                 uv_strerror(rc));
        s_group_free(g);
        return;
    }
    in->running = g;
}

static const char *s_reject_name(int r)
{
    switch (r) {
    case AS_REJECT_INVALID:
        return "invalid";
    case AS_REJECT_WRONG_COUNTY:
        return "wrong county";
    case AS_REJECT_RETRACT_NOT_LIVE:
        return "retraction not live";
    case AS_REJECT_MALFORMED:
        return "malformed";
    case AS_REJECT_OTHER_COUNTY:
        return "another county's event";
    case AS_REJECT_OVERFLOW:
        return "total would overflow";
    }
    return "?";
}

/* Sends one batch's results (after its group committed). */
static void s_send_results(as_ingest_t *in, s_batch_t *b)
{
    Aidstat__V1__EventResult *er = calloc(b->n ? b->n : 1, sizeof *er);
    Aidstat__V1__EventResult **pp = calloc(b->n ? b->n : 1, sizeof *pp);
    if (!er || !pp) {
        free(er);
        free(pp);
        in->st.send_drops++;
        return;
    }
    s_peer_t *p = &in->peers[b->peer];
    size_t rejected = 0;
    for (size_t i = 0; i < b->n; i++) {
        const as_apply_result_t *r = &b->res[i];
        aidstat__v1__event_result__init(&er[i]);
        er[i].id.data = b->ids[i];
        er[i].id.len = b->id_len[i];
        er[i].code = r->code;
        er[i].reject = r->reject;
        er[i].reason = (char *)r->reason;
        er[i].ledger_seq = r->seq;
        pp[i] = &er[i];
        if (r->code == AS_RESULT_ACCEPTED)
            in->st.accepted++;
        else if (r->code == AS_RESULT_DUPLICATE)
            in->st.duplicates++;
        else {
            in->st.rejected++;
            if (rejected++ < 3)
                AS_INFO("ingest", "%s: event %zu of batch %llu rejected (%s): %s", p->collector_id,
                        i + 1, (unsigned long long)b->seq, s_reject_name(r->reject), r->reason);
        }
        if (in->hooks.on_result)
            in->hooks.on_result(in->hooks.arg, r->code, r->reject);
    }
    Aidstat__V1__BatchResult br = AIDSTAT__V1__BATCH_RESULT__INIT;
    br.seq = b->seq;
    br.n_results = b->n;
    br.results = pp;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT;
    m.batch_result = &br;
    s_send(in, p->rid, p->rid_len, &m);
    in->st.batches++;
    free(er);
    free(pp);
}

/* What comes after a group has left the pipeline: the next commit, or the end of a stop (whose
 * callback may free the ingest: callers return right after this). */
static void s_go_on(as_ingest_t *in)
{
    if (in->broken && !in->fatal_told) {
        in->fatal_told = true;
        if (in->hooks.on_fatal) {
            bool was_stopping = in->stopping;
            in->hooks.on_fatal(in->hooks.arg, in->fatal_rc);
            if (!was_stopping)
                return; /* the owner's stop may have freed the ingest before the hook returned */
        }
    }
    if (!in->stopping || in->head) /* a stop commits and answers what was received */
        s_maybe_commit(in);
    if (in->stopping && !in->running && !in->sync_head && in->stop_done) {
        void (*done)(void *) = in->stop_done;
        in->stop_done = NULL;
        done(in->stop_arg);
    }
}

/* A group committed and durable: listeners, then the results go back. */
static void s_finish(as_ingest_t *in, s_group_t *g)
{
    in->st.commits++;
    if (g->events > in->st.max_group)
        in->st.max_group = g->events;
    for (size_t i = 0; i < g->nstates; i++) {
        s_peer_t *p = &in->peers[g->state_peer[i]];
        if (g->states[i].last_batch_seq > p->last_batch_seq)
            p->last_batch_seq = g->states[i].last_batch_seq;
    }
    /* the time the event log holds, so that live and replayed copies are the same */
    uint64_t commit_ms = g->info.commit_ms;
    g->info.group_us = g->durable_us;
    uint64_t t0 = s_now_us();
    if (in->hooks.on_commit) {
        as_committed_t *c = calloc(g->info.accepted ? g->info.accepted : 1, sizeof *c);
        size_t n = 0;
        for (s_batch_t *b = g->head; b && c; b = b->next)
            for (size_t i = 0; i < b->n; i++)
                if (b->valid[i] && b->res[i].code == AS_RESULT_ACCEPTED && n < g->info.accepted)
                    c[n++] = (as_committed_t){b->res[i].seq, commit_ms, &b->evs[i],
                                              g->packed + b->res[i].pb_off, b->res[i].pb_len};
        if (c)
            in->hooks.on_commit(in->hooks.arg, &g->info, c, n);
        else
            AS_ERROR("ingest", "out of memory: the commit listeners miss %zu events",
                     g->info.accepted);
        free(c);
    }
    AS_DEBUG("ingest",
             "group of %zu events committed: %zu accepted, %zu duplicates, %zu rejected; "
             "transaction %llu us (cpu %llu, commit %llu us: %llu bytes of pages, their fsync, "
             "meta page), meta fsync %llu us, listeners %llu us",
             g->events, g->info.accepted, g->info.duplicates, g->info.rejected,
             (unsigned long long)g->work_us, (unsigned long long)g->cpu_us,
             (unsigned long long)g->info.commit_us, (unsigned long long)g->info.page_bytes,
             (unsigned long long)g->sync_us, (unsigned long long)(s_now_us() - t0));
    for (s_batch_t *b = g->head; b; b = b->next)
        s_send_results(in, b);
    /* the ledger's counts hold them now */
    for (s_batch_t *b = g->head; b; b = b->next)
        in->peers[b->peer].rejected_extra -= b->pre_rejected;
}

/* The ledger's fsync failed (rc): g and every group after it stay unanswered and the
 * aggregator stops. The group may be in the ledger (readers see it) but not on disk, and a disk
 * that failed an fsync may have dropped pages silently: acknowledging anything more, even as
 * duplicates, could confirm events that are not stored. */
static void s_fail(as_ingest_t *in, s_group_t *g, int rc)
{
    in->st.commit_failures++;
    if (in->broken)
        return;
    in->broken = true;
    AS_ERROR("ingest",
             "the ledger's fsync failed (%s): the group of %zu events is not acknowledged and "
             "the aggregator stops; check the disk, then restart it (the collectors keep and "
             "resend everything unacknowledged)",
             as_strerror(rc), g->events);
    in->fatal_rc = rc;
}

/* Finishes the syncing groups from the oldest, as long as their fsync is over. */
static void s_finish_synced(as_ingest_t *in)
{
    while (in->sync_head && in->sync_head->synced) {
        s_group_t *g = in->sync_head;
        in->sync_head = g->next;
        if (!in->sync_head)
            in->sync_tail = NULL;
        if (g->sync_rc == 0 && !in->broken)
            s_finish(in, g);
        else
            s_fail(in, g, g->sync_rc ? g->sync_rc : AS_E_DB);
        s_group_free(g);
    }
}

static void s_sync_work(uv_work_t *w)
{
    s_group_t *g = w->data;
    s_worker_nice(g->in);
    uint64_t t0 = s_now_us();
    g->sync_rc = as_ledger_sync(g->in->ledger);
    uint64_t t1 = s_now_us();
    g->sync_us = t1 - t0;
    g->durable_us = t1 - g->start_us;
}

static void s_sync_done(uv_work_t *w, int status)
{
    s_group_t *g = w->data;
    as_ingest_t *in = g->in;
    if (status != 0 && g->sync_rc == 0) /* cancelled: cannot happen once queued; be safe */
        g->sync_rc = as_ledger_sync(in->ledger);
    g->synced = true;
    s_finish_synced(in);
    s_go_on(in);
}

/* The worker has committed the group (or failed): its fsync goes to another worker and the next
 * group may start at once. */
static void s_commit_done(uv_work_t *w, int status)
{
    s_group_t *g = w->data;
    as_ingest_t *in = g->in;
    in->running = NULL;
    if (status == 0 && g->rc == 0) {
        size_t limit = as_ingest_group_limit(in->group_cap, g->info.page_bytes, g->events);
        if (limit != in->group_limit)
            AS_DEBUG("ingest",
                     "groups now take up to %zu events (the last wrote %llu bytes of pages for "
                     "%zu events; budget %u MiB)",
                     limit, (unsigned long long)g->info.page_bytes, g->events,
                     AS_INGEST_PAGE_BUDGET >> 20);
        in->group_limit = limit;
        g->sync_work.data = g;
        if (in->sync_tail)
            in->sync_tail->next = g;
        else
            in->sync_head = g;
        in->sync_tail = g;
        int rc = uv_queue_work(in->loop, &g->sync_work, s_sync_work, s_sync_done);
        if (rc) {
            AS_WARN("ingest", "cannot hand the fsync to a worker (%s); syncing on the loop",
                    uv_strerror(rc));
            s_sync_work(&g->sync_work);
            g->synced = true;
            s_finish_synced(in);
        }
    } else if (as_ledger_failed(in->ledger)) {
        s_fail(in, g, g->rc ? g->rc : AS_E_DB);
        s_group_free(g);
    } else {
        in->st.commit_failures++;
        for (size_t i = 0; i < g->nstates; i++)
            in->peers[g->state_peer[i]].dirty = true;
        AS_ERROR("ingest",
                 "commit of a group of %zu events failed (%s); nothing of it is in "
                 "the ledger, nothing acknowledged: the collectors will resend",
                 g->events, as_strerror(status ? status : g->rc));
        /* not answered: their pre-ledger rejections were not counted either */
        for (s_batch_t *b = g->head; b; b = b->next)
            in->peers[b->peer].rejected_extra -= b->pre_rejected;
        s_group_free(g);
    }
    s_go_on(in);
}

/* ---- messages ------------------------------------------------------------------------------ */

/* The county this message was authenticated for (CURVE), 0 when unknown. */
static uint32_t s_user_county(zmq_msg_t *msg)
{
    const char *u = zmq_msg_gets(msg, "User-Id");
    if (!u || !*u)
        return 0;
    char *end;
    unsigned long c = strtoul(u, &end, 10);
    return *end ? 0 : (uint32_t)c;
}

static void s_on_hello(as_ingest_t *in, const uint8_t *rid, size_t rid_len, uint32_t user,
                       const Aidstat__V1__Hello *h)
{
    char reason[200];
    const char *id = h->collector_id ? h->collector_id : "";
    size_t idl = strlen(id);
    if (idl == 0 || idl >= 64) {
        s_send_error(in, rid, rid_len,
                     "Hello 的 collector_id 须为 1–63 字节 / Hello needs a "
                     "collector_id of 1–63 bytes");
        return;
    }
    uint32_t county = h->county_code;
    if (in->curve) {
        if (county != user) {
            snprintf(reason, sizeof reason,
                     "县区代码 %06u 与密钥不符 / county %06u does not "
                     "match the county %06u of your key",
                     county, county, user);
            AS_WARN("ingest", "%s refused: %s", id, reason);
            s_send_error(in, rid, rid_len, reason);
            return;
        }
    } else if (!as_division_is_county(county)) {
        snprintf(reason, sizeof reason,
                 "%06u 不是本省县级区划 / %06u is not a county of the "
                 "province",
                 county, county);
        AS_WARN("ingest", "%s refused: %s", id, reason);
        s_send_error(in, rid, rid_len, reason);
        return;
    }
    s_peer_t *p = s_peer_by_id(in, id);
    if (!p) {
        p = s_peer_by_rid(in, rid, rid_len);
        if (p && p->collector_id[0])
            p = NULL; /* that routing id belonged to another collector */
    }
    bool known = p != NULL;
    if (!p && !(p = s_peer_add(in))) {
        s_send_error(in, rid, rid_len, "out of memory");
        return;
    }
    if (!known) {
        memcpy(p->collector_id, id, idl + 1);
        as_collector_info_t ci;
        if (as_ledger_collector(in->ledger, id, &ci) == 0)
            p->last_batch_seq = ci.st.last_batch_seq;
    }
    if (p->county && p->county != county)
        AS_WARN("ingest", "%s now serves county %06u (was %06u)", id, county, p->county);
    memcpy(p->rid, rid, rid_len);
    p->rid_len = rid_len;
    p->county = county;
    p->backlog = h->backlog;
    p->last_heard_ms = s_now_ms();
    s_copy_utf8(p->version, sizeof p->version, h->software_version ? h->software_version : "");
    if (!p->welcomed)
        AS_INFO("ingest",
                "%s (county %06u, version %s%s) connected; backlog %llu, last batch "
                "%llu",
                id, county, p->version, in->curve ? ", CURVE" : ", plain",
                (unsigned long long)p->backlog, (unsigned long long)p->last_batch_seq);
    p->welcomed = true;
    p->dirty = true;
    Aidstat__V1__Welcome w = AIDSTAT__V1__WELCOME__INIT;
    w.protocol_version = AS_INGEST_PROTOCOL;
    w.last_batch_seq = p->last_batch_seq;
    w.heartbeat_ms = in->heartbeat_ms;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_WELCOME;
    m.welcome = &w;
    s_send(in, rid, rid_len, &m);
}

/* Joins a row's errors into one reason "column: 中文 / English; ...". */
static void s_reason(const as_row_errors_t *errs, char *out, size_t size)
{
    char tmp[1024];
    size_t off = 0;
    tmp[0] = 0;
    for (size_t i = 0; i < errs->n && i < AS_MAX_ROW_ERRORS && off < sizeof tmp - 1; i++) {
        const as_field_error_t *e = &errs->e[i];
        int k = snprintf(tmp + off, sizeof tmp - off, "%s%s%s%s / %s", i ? "; " : "", e->column,
                         e->column[0] ? ": " : "", e->reason_zh, e->reason_en);
        if (k < 0)
            break;
        off += (size_t)k;
    }
    if (!tmp[0])
        snprintf(tmp, sizeof tmp, "校验未通过 / failed validation");
    s_copy_utf8(out, size, tmp);
}

/* Packs valid event i into the batch's buffer, here on the loop, off the writer's path (the
 * writer packs it itself when this fails for want of memory, or when it changes the flags). */
static void s_prepack(s_batch_t *b, size_t i)
{
    if (b->pk_cap - b->pk_n < AS_EVENT_PACKED_MAX) {
        size_t cap = b->pk_cap ? b->pk_cap * 2 : b->n * 512 + AS_EVENT_PACKED_MAX;
        if (cap < b->pk_n + AS_EVENT_PACKED_MAX)
            cap = b->pk_n + AS_EVENT_PACKED_MAX;
        uint8_t *pk = cap <= UINT32_MAX ? realloc(b->pk, cap) : NULL;
        if (!pk)
            return;
        b->pk = pk;
        b->pk_cap = cap;
    }
    size_t len = as_event_pack(&b->evs[i], b->pk + b->pk_n);
    b->pk_off[i] = (uint32_t)b->pk_n;
    b->pk_len[i] = (uint32_t)len;
    b->pk_n += len;
}

static void s_on_batch(as_ingest_t *in, s_peer_t *p, uint32_t county, const Aidstat__V1__Batch *bm)
{
    s_batch_t *b = calloc(1, sizeof *b);
    size_t n = bm->n_events;
    size_t k = n ? n : 1;
    /* evs not zeroed: each is filled by as_event_from_pb (which clears it first) or, when its
     * id is malformed, never read (valid stays false) */
    if (!b || !(b->evs = malloc(k * sizeof *b->evs)) || !(b->valid = calloc(k, sizeof(bool))) ||
        !(b->res = calloc(k, sizeof *b->res)) || !(b->ids = calloc(k, sizeof *b->ids)) ||
        !(b->id_len = calloc(k, sizeof *b->id_len)) ||
        !(b->pk_off = malloc(k * sizeof *b->pk_off)) ||
        !(b->pk_len = calloc(k, sizeof *b->pk_len))) {
        s_batch_free(b);
        AS_ERROR("ingest", "out of memory for a batch of %zu events; it stays unanswered", n);
        return;
    }
    b->peer = (size_t)(p - in->peers);
    memcpy(b->collector_id, p->collector_id, sizeof b->collector_id);
    b->seq = bm->seq;
    b->n = n;
    as_validate_ctx_t ctx = {.county = county, .today = as_today_cst()};
    size_t valid = 0;
    for (size_t i = 0; i < n; i++) {
        const Aidstat__V1__Event *pe = bm->events[i];
        as_apply_result_t *r = &b->res[i];
        b->id_len[i] = pe->id.len <= AS_ID_LEN ? pe->id.len : AS_ID_LEN;
        if (pe->id.len)
            memcpy(b->ids[i], pe->id.data, b->id_len[i]);
        const char *field = NULL;
        r->code = AS_RESULT_REJECTED;
        if (pe->id.len != AS_ID_LEN || as_event_from_pb(pe, &b->evs[i], &field) != 0) {
            r->reject = AS_REJECT_MALFORMED;
            snprintf(r->reason, sizeof r->reason, "无法解码 %s / cannot be decoded: %s",
                     field ? field : "id", field ? field : "id is not 16 bytes");
        } else if (b->evs[i].county != county) {
            r->reject = AS_REJECT_WRONG_COUNTY;
            snprintf(r->reason, sizeof r->reason,
                     "县区代码 %06u 不是本采集端的县 %06u / county "
                     "%06u is not this collector's county %06u",
                     b->evs[i].county, county, b->evs[i].county, county);
        } else {
            as_row_errors_t errs; /* 7 KB; as_event_validate empties it (n = 0) */
            if (as_event_validate(&b->evs[i], &ctx, &errs) != 0 || errs.n) {
                r->reject = AS_REJECT_INVALID;
                s_reason(&errs, r->reason, sizeof r->reason);
            } else {
                r->code = 0; /* decided by the ledger */
                b->valid[i] = true;
                valid++;
                s_prepack(b, i);
            }
        }
        if (r->code == AS_RESULT_REJECTED) {
            p->rejected_extra++;
            b->pre_rejected++;
        }
    }
    in->st.events += n;
    if (bm->seq > p->group_seq)
        p->group_seq = bm->seq;
    if (in->tail)
        in->tail->next = b;
    else
        in->head = b;
    in->tail = b;
    in->pending_events += valid ? valid : 1;
}

static void s_on_nil(as_ingest_t *in, s_peer_t *p, uint32_t county, const void *rid, size_t rid_len,
                     const Aidstat__V1__NilReport *nr)
{
    in->st.nil_reports++;
    char reason[200];
    if (nr->county_code != county || nr->month < 1 || nr->month > 12 || nr->year < 2000 ||
        nr->year > 2999) {
        snprintf(reason, sizeof reason, "无效的零报告 / invalid nil report (county %06u, %u-%02u)",
                 nr->county_code, nr->year, nr->month);
        s_send_error(in, rid, rid_len, reason);
        return;
    }
    if (!in->hooks.on_nil) {
        AS_INFO("ingest",
                "%s: nil report for %06u %04u-%02u (no store configured; not "
                "acknowledged)",
                p->collector_id, county, nr->year, nr->month);
        return;
    }
    int rc = in->hooks.on_nil(in->hooks.arg, county, nr->year, nr->month);
    if (rc) {
        AS_WARN("ingest",
                "%s: nil report for %04u-%02u not stored (%s); the collector will "
                "send it again",
                p->collector_id, nr->year, nr->month, as_strerror(rc));
        return;
    }
    AS_INFO("ingest", "%s: nil report for %06u %04u-%02u recorded", p->collector_id, county,
            nr->year, nr->month);
    Aidstat__V1__NilReport echo = *nr;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_NIL_REPORT;
    m.nil_report = &echo;
    s_send(in, rid, rid_len, &m);
}

static void s_handle(as_ingest_t *in, const uint8_t *rid, size_t rid_len, zmq_msg_t *body)
{
    in->st.messages++;
    uint32_t user = in->curve ? s_user_county(body) : 0;
    if (in->curve && !user) {
        in->st.malformed++;
        s_send_error(in, rid, rid_len, "未认证 / not authenticated");
        return;
    }
    ProtobufCAllocator alloc = {s_arena_alloc, s_arena_free, &in->arena};
    Aidstat__V1__IngestMessage *m =
        aidstat__v1__ingest_message__unpack(&alloc, zmq_msg_size(body), zmq_msg_data(body));
    if (!m) {
        s_arena_reset(&in->arena);
        in->st.malformed++;
        if (in->st.malformed % 1000 == 1)
            AS_WARN("ingest",
                    "undecodable message of %zu bytes answered with an error (%llu so "
                    "far)",
                    zmq_msg_size(body), (unsigned long long)in->st.malformed);
        s_send_error(in, rid, rid_len, "无法解码的消息 / message is not an IngestMessage");
        return;
    }
    if (m->body_case == AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO) {
        s_on_hello(in, rid, rid_len, user, m->hello);
        goto done;
    }
    s_peer_t *p = s_peer_by_rid(in, rid, rid_len);
    if (!p || !p->welcomed || (in->curve && p->county != user)) {
        s_send_error(in, rid, rid_len, "请先发送 Hello / say Hello first");
        goto done;
    }
    p->last_heard_ms = s_now_ms();
    uint32_t county = in->curve ? user : p->county;
    switch (m->body_case) {
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH:
        s_on_batch(in, p, county, m->batch);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT: {
        p->backlog = m->heartbeat->backlog;
        Aidstat__V1__Heartbeat hb = AIDSTAT__V1__HEARTBEAT__INIT;
        hb.time_ms = p->last_heard_ms;
        Aidstat__V1__IngestMessage r = AIDSTAT__V1__INGEST_MESSAGE__INIT;
        r.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT;
        r.heartbeat = &hb;
        s_send(in, rid, rid_len, &r);
        break;
    }
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_NIL_REPORT:
        s_on_nil(in, p, county, rid, rid_len, m->nil_report);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR:
        AS_WARN("ingest", "%s reports an error: %s", p->collector_id,
                m->error->reason ? m->error->reason : "");
        break;
    default:
        in->st.malformed++;
        s_send_error(in, rid, rid_len, "此消息不应发给汇总端 / not a message for the aggregator");
    }
done:
    s_arena_reset(&in->arena); /* m and everything it points to */
}

static void s_on_readable(void *sock, void *arg)
{
    as_ingest_t *in = arg;
    for (int round = 0; round < S_RECV_BUDGET; round++) {
        /* back-pressure: the next group is full until a commit can take it (one is running, or
         * two groups wait for their fsync: s_maybe_commit refused it below) */
        if (in->pending_events >= in->group_limit && (in->running || in->sync_head))
            return;
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            break; /* input drained */
        }
        zmq_msg_init(&body);
        int frames = 1;
        bool ok = zmq_msg_more(&rid) && zmq_msg_recv(&body, sock, 0) >= 0;
        if (ok)
            frames++;
        while (ok && zmq_msg_more(&body)) { /* more than one body frame: drain and refuse */
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, sock, 0) < 0)
                break;
            frames++;
        }
        if (ok && frames == 2 && zmq_msg_size(&rid) <= S_RID_MAX) {
            s_handle(in, zmq_msg_data(&rid), zmq_msg_size(&rid), &body);
        } else {
            in->st.messages++;
            in->st.malformed++;
            if (zmq_msg_size(&rid) <= S_RID_MAX)
                s_send_error(in, zmq_msg_data(&rid), zmq_msg_size(&rid),
                             "每条消息须为一帧 / one frame per message");
        }
        zmq_msg_close(&body);
        zmq_msg_close(&rid);
        if (in->pending_events >= in->group_limit && !in->running)
            s_maybe_commit(in);
    }
    s_maybe_commit(in);
}

size_t as_ingest_group_limit(size_t cap, uint64_t page_bytes, size_t events)
{
    if (!page_bytes || !events)
        return cap;
    uint64_t per = (page_bytes + events - 1) / events;
    uint64_t n = AS_INGEST_PAGE_BUDGET / per;
    if (n < AS_INGEST_GROUP_MIN)
        n = AS_INGEST_GROUP_MIN;
    return n < cap ? (size_t)n : cap;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

as_ingest_t *as_ingest_new(uv_loop_t *loop, void *zctx, as_ledger_t *ledger,
                           const as_ingest_opts_t *o, int *err)
{
    as_ingest_t *in = calloc(1, sizeof *in);
    if (!in) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    in->loop = loop;
    in->ledger = ledger;
    in->group_cap = o->group_cap ? o->group_cap : AS_INGEST_GROUP_CAP;
    in->group_limit = in->group_cap;
    in->worker_nice = o->worker_nice < 0 ? 0 : o->worker_nice > 19 ? 19 : o->worker_nice;
    in->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : 1000;
    in->curve = o->curve_secret && *o->curve_secret;
    as_division_init();
    char pub[41], sec[41];
    if (in->curve) {
        int rc = as_keys_read(o->curve_secret, pub, sec);
        if (rc) {
            AS_ERROR("ingest", "cannot read the aggregator's key pair from %s: %s", o->curve_secret,
                     as_strerror(rc));
            *err = AS_E_INVALID;
            goto fail;
        }
    }
    in->router = zmq_socket(zctx, ZMQ_ROUTER);
    int one = 1, linger = S_LINGER_MS, hwm = S_SNDHWM;
    int hb_ivl = 2000, hb_timeout = 6000, hb_ttl = 6000;
    int64_t maxmsg = AS_INGEST_MAXMSG;
    if (!in->router || zmq_setsockopt(in->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) ||
        zmq_setsockopt(in->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one) ||
        zmq_setsockopt(in->router, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(in->router, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(in->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(in->router, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl) ||
        zmq_setsockopt(in->router, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout) ||
        zmq_setsockopt(in->router, ZMQ_HEARTBEAT_TTL, &hb_ttl, sizeof hb_ttl)) {
        AS_ERROR("ingest", "cannot set up the ingest socket: %s", zmq_strerror(zmq_errno()));
        *err = AS_E_ZMQ;
        goto fail;
    }
    if (in->curve &&
        (zmq_setsockopt(in->router, ZMQ_CURVE_SERVER, &one, sizeof one) ||
         zmq_setsockopt(in->router, ZMQ_CURVE_SECRETKEY, sec, 40) ||
         zmq_setsockopt(in->router, ZMQ_ZAP_DOMAIN, AS_ZAP_DOMAIN, strlen(AS_ZAP_DOMAIN)))) {
        AS_ERROR("ingest", "cannot enable CURVE on the ingest: %s", zmq_strerror(zmq_errno()));
        *err = AS_E_ZMQ;
        goto fail;
    }
    if (in->curve && zmq_setsockopt(in->router, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) != 0)
        AS_WARN("ingest",
                "this libzmq lacks ZMQ_ZAP_ENFORCE_DOMAIN (%s); our ZAP handler "
                "refuses every other domain itself",
                zmq_strerror(zmq_errno()));
    if (zmq_bind(in->router, o->endpoint) != 0) {
        AS_ERROR("ingest", "cannot bind the ingest on %s: %s", o->endpoint,
                 zmq_strerror(zmq_errno()));
        *err = AS_E_ZMQ;
        goto fail;
    }
    if (!(in->zp = as_zpoll_new(loop, in->router, s_on_readable, in, err)))
        goto fail;
    AS_INFO("ingest", "receiving batches on %s (%s; group cap %zu events)", o->endpoint,
            in->curve ? "CURVE" : "plain", in->group_cap);
    return in;
fail:
    as_ingest_destroy(&in);
    return NULL;
}

void as_ingest_stop(as_ingest_t *in, void (*done)(void *arg), void *arg)
{
    if (in->stopping)
        return;
    in->stopping = true;
    as_zpoll_destroy(&in->zp);
    in->stop_done = done;
    in->stop_arg = arg;
    s_maybe_commit(in); /* what was received is committed and answered */
    s_go_on(in);
}

void as_ingest_destroy(as_ingest_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_ingest_t *in = *self_p;
    *self_p = NULL;
    as_zpoll_destroy(&in->zp);
    if (in->running || in->sync_head) /* programmer error: a worker still holds a group; leak
                                         rather than crash */
        return;
    if (in->router)
        zmq_close(in->router);
    for (s_batch_t *b = in->head, *next; b; b = next) {
        next = b->next;
        s_batch_free(b);
    }
    free(in->peers);
    free(in->buf);
    s_arena_destroy(&in->arena);
    free(in);
}
