/* sender: the outbox to the aggregator over ZeroMQ DEALER, acknowledged, resent, forever. */
#include "sender.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "zpoll.h"

#include "aidstat/v1/ingest.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define PROTOCOL_VERSION 1
#define MAX_MSG_BYTES    (16 << 20) /* largest answer we accept */
#define RECV_BUDGET      256        /* messages per readable callback */
#define HELLO_RETRY_MS   100        /* tick while not welcomed */
#define HOLD_MAX         64         /* batch results settled in one outbox transaction */

/* One batch (or one nil report) sent and not yet answered. */
typedef struct {
    bool used;
    uint64_t batch_seq;      /* 0 for a nil report */
    as_outbox_item_t *items; /* the outbox items it carries (owned) */
    size_t n;                /* how many */
    uint8_t (*ids)[16];      /* event ids, in batch order, to check the answer against */
    uint8_t *msg;            /* the packed IngestMessage, sent again as it is */
    size_t msg_len;
    uint64_t sent_ms; /* loop time of the last send; 0 = not sent yet */
    uint32_t nil_year, nil_month;
} s_flight_t;

struct as_sender_s {
    uv_loop_t *loop;
    void *zctx; /* borrowed */
    void *sock; /* DEALER */
    as_zpoll_t *zpoll;
    uv_timer_t timer; /* heartbeat, resend and Hello tick */
    as_outbox_t *ob;  /* borrowed */
    char *endpoint, *collector_id, *curve_secret, *aggregator_key;
    uint32_t county;
    size_t batch_size, window;
    uint64_t resend_ms, heartbeat_ms, dead_ms;
    s_flight_t *flights;    /* window slots */
    uint64_t cursor;        /* highest outbox sequence handed to a slot */
    uint64_t batch_floor;   /* Welcome.last_batch_seq */
    uint64_t last_heard_ms; /* loop time of the aggregator's last message */
    uint64_t last_hello_ms;
    as_sender_reject_cb reject_cb;
    void *reject_arg;
    as_sender_stats_t st;
    /* batch results read in one pass over the socket, settled together (one outbox commit, one
     * fsync, instead of one per batch); empty outside s_on_readable */
    Aidstat__V1__IngestMessage *held[HOLD_MAX];
    size_t nheld;
};

/* ---- socket --------------------------------------------------------------------------------- */

static void s_on_readable(void *sock, void *arg);

/* A new DEALER with our options, connected; NULL on failure (logged). */
static void *s_socket(as_sender_t *s, int *err)
{
    char pub[41], sec[41];
    bool curve = s->curve_secret && *s->curve_secret;
    if (curve) {
        int rc = as_keys_read(s->curve_secret, pub, sec);
        if (rc || !s->aggregator_key || !as_keys_is_z85(s->aggregator_key)) {
            AS_ERROR("sender",
                     "CURVE keys unusable (%s: %s; aggregator key %s); not connecting with them",
                     s->curve_secret, rc ? as_strerror(rc) : "ok",
                     s->aggregator_key && *s->aggregator_key ? "malformed" : "missing");
            *err = AS_E_INVALID;
            return NULL;
        }
    }
    void *z = zmq_socket(s->zctx, ZMQ_DEALER);
    if (!z) {
        *err = AS_E_ZMQ;
        return NULL;
    }
    /* reconnect after 100 ms, backing off to at most 500 ms: an aggregator back from a restart
     * hears from every county within half a second (at 30 s, a county could wait half a
     * minute); two refused TCP connections a second per county cost nothing (ZeroMQ's own
     * default is ten, without backing off) */
    int linger = 1000, ivl = 100, ivl_max = 500, immediate = 1;
    int hb_ivl = 2000, hb_timeout = 6000, hwm = 1000;
    int64_t maxmsg = MAX_MSG_BYTES;
    zmq_setsockopt(z, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(z, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(z, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    /* Queue nothing on a connection not yet made: a Hello sent while the aggregator is down
     * would otherwise arrive, with many others, when it comes back. */
    zmq_setsockopt(z, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    zmq_setsockopt(z, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
    zmq_setsockopt(z, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout);
    zmq_setsockopt(z, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(z, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(z, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(z, ZMQ_ROUTING_ID, s->collector_id, strlen(s->collector_id));
    if (curve) {
        zmq_setsockopt(z, ZMQ_CURVE_SERVERKEY, s->aggregator_key, 41);
        zmq_setsockopt(z, ZMQ_CURVE_PUBLICKEY, pub, 41);
        zmq_setsockopt(z, ZMQ_CURVE_SECRETKEY, sec, 41);
    }
    if (zmq_connect(z, s->endpoint) != 0) {
        AS_ERROR("sender", "cannot connect to %s: %s", s->endpoint, zmq_strerror(zmq_errno()));
        zmq_close(z);
        *err = AS_E_ZMQ;
        return NULL;
    }
    as_zpoll_t *zp = as_zpoll_new(s->loop, z, s_on_readable, s, err);
    if (!zp) {
        zmq_close(z);
        return NULL;
    }
    s->zpoll = zp;
    AS_INFO("sender", "connecting to the aggregator at %s (%s)", s->endpoint,
            curve ? "CURVE" : "plain, no encryption");
    return z;
}

/* Sends one packed IngestMessage without blocking; false when ZeroMQ cannot take it now (no
 * connection yet, or the pipe is full): the caller tries again later. */
static bool s_send_raw(as_sender_t *s, const uint8_t *buf, size_t len)
{
    if (zmq_send(s->sock, buf, len, ZMQ_DONTWAIT) >= 0)
        return true;
    if (zmq_errno() != EAGAIN)
        AS_WARN("sender", "send failed: %s; will retry", zmq_strerror(zmq_errno()));
    return false;
}

static bool s_send_msg(as_sender_t *s, const Aidstat__V1__IngestMessage *m)
{
    size_t len = aidstat__v1__ingest_message__get_packed_size(m);
    uint8_t stackbuf[512], *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf)
        return false;
    aidstat__v1__ingest_message__pack(m, buf);
    bool ok = s_send_raw(s, buf, len);
    if (buf != stackbuf)
        free(buf);
    return ok;
}

static uint64_t s_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void s_send_hello(as_sender_t *s)
{
    Aidstat__V1__Hello h = AIDSTAT__V1__HELLO__INIT;
    h.collector_id = s->collector_id;
    h.county_code = s->county;
    h.software_version = AIDSTAT_VERSION;
    h.protocol_version = PROTOCOL_VERSION;
    h.backlog = as_outbox_backlog(s->ob);
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HELLO;
    m.hello = &h;
    /* a Hello that ZeroMQ could not take (no connection yet) is tried again at the next tick
     * (every HELLO_RETRY_MS while not welcomed), not two heartbeats later: the aggregator hears
     * from us right after the connection */
    if (s_send_msg(s, &m)) {
        s->last_hello_ms = uv_now(s->loop);
        s->st.hellos++;
    }
}

static void s_send_heartbeat(as_sender_t *s)
{
    Aidstat__V1__Heartbeat hb = AIDSTAT__V1__HEARTBEAT__INIT;
    hb.backlog = as_outbox_backlog(s->ob);
    hb.rejected = as_outbox_rejected(s->ob);
    hb.time_ms = s_unix_ms();
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    s_send_msg(s, &m);
}

/* ---- the window ----------------------------------------------------------------------------- */

static void s_flight_clear(s_flight_t *f)
{
    as_outbox_items_free(f->items, f->n);
    free(f->ids);
    free(f->msg);
    memset(f, 0, sizeof *f);
}

static void s_flight_send(as_sender_t *s, s_flight_t *f)
{
    if (s_send_raw(s, f->msg, f->msg_len)) {
        if (f->sent_ms)
            s->st.resent++;
        f->sent_ms = uv_now(s->loop);
        if (!f->sent_ms)
            f->sent_ms = 1;
    }
}

/* Parks an item we cannot even read back (a damaged outbox record): kept for the office to see,
 * never sent. */
static void s_park_unreadable(as_sender_t *s, const as_outbox_item_t *it)
{
    as_outbox_settle_t st = {it->seq, true, AIDSTAT__V1__REJECT_CODE__REJECT_MALFORMED,
                             "发件箱记录无法读取 / outbox record unreadable"};
    AS_ERROR("sender", "outbox item %llu cannot be decoded; parked as rejected",
             (unsigned long long)it->seq);
    as_outbox_settle(s->ob, &st, 1);
}

/* Builds a nil-report flight from one item. */
static int s_build_nil(as_sender_t *s, s_flight_t *f, as_outbox_item_t *it)
{
    Aidstat__V1__NilReport *nr = aidstat__v1__nil_report__unpack(NULL, it->len, it->data);
    if (!nr)
        return AS_E_PARSE;
    Aidstat__V1__IngestMessage m = AIDSTAT__V1__INGEST_MESSAGE__INIT;
    m.body_case = AIDSTAT__V1__INGEST_MESSAGE__BODY_NIL_REPORT;
    m.nil_report = nr;
    f->msg_len = aidstat__v1__ingest_message__get_packed_size(&m);
    f->msg = malloc(f->msg_len);
    if (f->msg)
        aidstat__v1__ingest_message__pack(&m, f->msg);
    f->nil_year = nr->year;
    f->nil_month = nr->month;
    aidstat__v1__nil_report__free_unpacked(nr, NULL);
    return f->msg ? 0 : AS_E_NOMEM;
}

/* Reads a varint at *p (before end); false when cut or longer than 10 bytes. */
static bool s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static size_t s_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80)
        v >>= 7, n++;
    return n;
}

static uint8_t *s_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* The event id of a stored event (a packed aidstat.v1.Event), read without decoding it: every
 * field well formed, with the wire type of its declared type (strings and bytes: fields 1, 2, 4,
 * 5, 9, 25, 26, 29; the rest varints; unknown fields of any valid type are skipped, as the
 * aggregator's decoder does), and field 1 a 16-byte id. NULL when anything is off. */
static const uint8_t *s_stored_event_id(const uint8_t *p, size_t n)
{
    static const uint32_t lenfields =
        1u << 1 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 9 | 1u << 25 | 1u << 26 | 1u << 29;
    const uint8_t *end = p + n, *id = NULL;
    while (p < end) {
        uint64_t tag, v;
        if (!s_varint(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
            return NULL;
        uint64_t field = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        bool known = field <= 30;
        if (known && wt != ((lenfields >> field) & 1 ? 2u : 0u))
            return NULL;
        switch (wt) {
        case 0:
            if (!s_varint(&p, end, &v))
                return NULL;
            break;
        case 1:
            if (end - p < 8)
                return NULL;
            p += 8;
            break;
        case 2:
            if (!s_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return NULL;
            if (field == 1)
                id = v == 16 ? p : NULL;
            p += v;
            break;
        case 5:
            if (end - p < 4)
                return NULL;
            p += 4;
            break;
        default:
            return NULL;
        }
    }
    return id;
}

/* Builds a batch flight from n event items (taking ownership of nothing). The message is written
 * from the stored bytes as protobuf-c would pack it (IngestMessage.batch = 3 { seq = 1, repeated
 * events = 2 }), without decoding and packing each event again. */
static int s_build_batch(as_sender_t *s, s_flight_t *f, as_outbox_item_t *items, size_t n,
                         size_t *used)
{
    *used = 0;
    f->ids = calloc(n, sizeof *f->ids);
    if (!f->ids)
        return AS_E_NOMEM;
    size_t k = 0, blen = f->batch_seq ? 1 + s_varint_len(f->batch_seq) : 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *id = s_stored_event_id(items[i].data, items[i].len);
        if (!id) {
            s_park_unreadable(s, &items[i]);
            continue;
        }
        memcpy(f->ids[k], id, 16);
        if (k != i) { /* keep items and events in the same order */
            as_outbox_item_t tmp = items[k];
            items[k] = items[i];
            items[i] = tmp;
        }
        blen += 1 + s_varint_len(items[k].len) + items[k].len;
        k++;
    }
    *used = k;
    if (k == 0)
        return 0;
    f->msg_len = 1 + s_varint_len(blen) + blen;
    uint8_t *p = f->msg = malloc(f->msg_len);
    if (!p)
        return AS_E_NOMEM;
    *p++ = 3 << 3 | 2;
    p = s_put_varint(p, blen);
    if (f->batch_seq) {
        *p++ = 1 << 3 | 0;
        p = s_put_varint(p, f->batch_seq);
    }
    for (size_t i = 0; i < k; i++) {
        *p++ = 2 << 3 | 2;
        p = s_put_varint(p, items[i].len);
        memcpy(p, items[i].data, items[i].len);
        p += items[i].len;
    }
    return 0;
}

static s_flight_t *s_free_slot(as_sender_t *s)
{
    for (size_t i = 0; i < s->window; i++)
        if (!s->flights[i].used)
            return &s->flights[i];
    return NULL;
}

/* Turns the items taken from the outbox into one flight: a nil report alone, or the leading run
 * of events as a batch. Frees what it does not keep. Returns 0 (f->used set when there is
 * something to send), or a negative error with every item freed. */
static int s_build(as_sender_t *s, s_flight_t *f, as_outbox_item_t *items, size_t n)
{
    int rc;
    size_t keep;
    if (items[0].kind == AS_ITEM_NIL) {
        keep = 1;
        rc = s_build_nil(s, f, &items[0]);
        if (rc == AS_E_PARSE) {
            s_park_unreadable(s, &items[0]);
            keep = 0;
            rc = 0;
        }
    } else {
        size_t ne = 0;
        while (ne < n && items[ne].kind == AS_ITEM_EVENT)
            ne++;
        f->batch_seq = as_outbox_next_batch_seq(s->ob, s->batch_floor);
        if (f->batch_seq == 0) {
            as_outbox_items_free(items, n);
            return AS_E_DB;
        }
        rc = s_build_batch(s, f, items, ne, &keep);
    }
    for (size_t i = keep; i < n; i++)
        free(items[i].data);
    f->items = items;
    f->n = keep;
    if (rc != 0 || keep == 0) {
        s_flight_clear(f);
        return rc;
    }
    f->used = true;
    return 0;
}

/* Fills free window slots from the outbox and sends them. */
static void s_fill(as_sender_t *s)
{
    s_flight_t *f;
    while (s->st.welcomed && (f = s_free_slot(s)) != NULL) {
        as_outbox_item_t *items;
        size_t n;
        if (as_outbox_take(s->ob, s->cursor, s->batch_size, &items, &n) != 0 || n == 0) {
            as_outbox_items_free(items, n);
            return;
        }
        /* the items this flight will cover: a nil report alone, or the leading events */
        size_t span = 1;
        if (items[0].kind == AS_ITEM_EVENT)
            while (span < n && items[span].kind == AS_ITEM_EVENT)
                span++;
        uint64_t last = items[span - 1].seq;
        memset(f, 0, sizeof *f);
        int rc = s_build(s, f, items, n);
        if (rc != 0) {
            AS_ERROR("sender", "cannot build a batch: %s; retrying at the next tick",
                     as_strerror(rc));
            return;
        }
        s->cursor = last;
        if (f->used) {
            s->st.in_flight++;
            s_flight_send(s, f);
        }
    }
}

/* ---- answers -------------------------------------------------------------------------------- */

/* What one batch result settles, checked against its flight before anything is written. */
typedef struct {
    s_flight_t *f; /* NULL: the answer is ignored (logged) */
    const Aidstat__V1__BatchResult *r;
    size_t k, dup, rej, undecided;
} s_answer_t;

/* Finds r's flight and checks r against it; appends what it settles to st (room for f->n). A
 * flight already answered by an earlier result of the same pass (`taken`) counts as gone. */
static void s_answer_check(as_sender_t *s, const Aidstat__V1__BatchResult *r, s_answer_t *a,
                           const bool *taken, as_outbox_settle_t *st)
{
    memset(a, 0, sizeof *a);
    a->r = r;
    s_flight_t *f = NULL;
    for (size_t i = 0; i < s->window && !f; i++)
        if (s->flights[i].used && s->flights[i].batch_seq == r->seq && r->seq && !taken[i])
            f = &s->flights[i];
    if (!f) {
        AS_DEBUG("sender", "answer to batch %llu, which is no longer in flight; ignored",
                 (unsigned long long)r->seq);
        return;
    }
    if (r->n_results != f->n) {
        AS_WARN("sender",
                "answer to batch %llu has %zu results for %zu events; ignored, the "
                "batch will be resent",
                (unsigned long long)r->seq, r->n_results, f->n);
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        const Aidstat__V1__EventResult *er = r->results[i];
        if (er->id.len != 16 || memcmp(er->id.data, f->ids[i], 16) != 0) {
            AS_WARN("sender",
                    "answer to batch %llu names another event at position %zu; "
                    "ignored, the batch will be resent",
                    (unsigned long long)r->seq, i);
            a->k = 0;
            return;
        }
        switch (er->code) {
        case AIDSTAT__V1__RESULT_CODE__RESULT_DUPLICATE:
            a->dup++;
            /* fall through */
        case AIDSTAT__V1__RESULT_CODE__RESULT_ACCEPTED:
            st[a->k++] = (as_outbox_settle_t){f->items[i].seq, false, 0, NULL};
            break;
        case AIDSTAT__V1__RESULT_CODE__RESULT_REJECTED:
            a->rej++;
            st[a->k++] =
                (as_outbox_settle_t){f->items[i].seq, true, (uint8_t)er->reject, er->reason};
            break;
        default:
            a->undecided++;
        }
    }
    a->f = f;
}

/* After the outbox has settled a's events: counts, rejected events to the callback, and the
 * flight freed unless some of its events had no result. */
static void s_answer_done(as_sender_t *s, const s_answer_t *a)
{
    s_flight_t *f = a->f;
    const Aidstat__V1__BatchResult *r = a->r;
    s->st.batches++;
    s->st.acked += a->k - a->rej;
    s->st.duplicate += a->dup;
    s->st.rejected += a->rej;
    if (a->rej && s->reject_cb) {
        for (size_t i = 0; i < f->n; i++) {
            const Aidstat__V1__EventResult *er = r->results[i];
            if (er->code == AIDSTAT__V1__RESULT_CODE__RESULT_REJECTED)
                s->reject_cb(s->reject_arg, f->items[i].kind, f->items[i].data, f->items[i].len,
                             (uint8_t)er->reject, er->reason);
        }
    }
    if (a->rej)
        AS_WARN("sender",
                "batch %llu: %zu of %zu events rejected by the aggregator; parked in "
                "the rejected store",
                (unsigned long long)r->seq, a->rej, f->n);
    if (a->undecided) {
        AS_WARN("sender", "batch %llu: %zu events without a result; the batch will be resent",
                (unsigned long long)r->seq, a->undecided);
        return;
    }
    s_flight_clear(f);
    s->st.in_flight--;
}

/* Settles the held batch results in one outbox transaction, then frees them. When the outbox
 * cannot settle (logged), none of their flights is freed: they are resent and answered again. */
static void s_settle_held(as_sender_t *s)
{
    size_t n = s->nheld, total = 0;
    if (!n)
        return;
    s->nheld = 0;
    for (size_t h = 0; h < n; h++) { /* an answer longer than a batch settles nothing */
        size_t nr = s->held[h]->batch_result->n_results;
        total += nr <= s->batch_size ? nr : 0;
    }
    s_answer_t ans[HOLD_MAX];
    as_outbox_settle_t *st = calloc(total ? total : 1, sizeof *st);
    bool *taken = calloc(s->window, sizeof *taken);
    if (st && taken) {
        size_t k = 0;
        for (size_t h = 0; h < n; h++) {
            s_answer_check(s, s->held[h]->batch_result, &ans[h], taken, st + k);
            if (ans[h].f) {
                taken[ans[h].f - s->flights] = true;
                k += ans[h].k;
            }
        }
        int rc = k ? as_outbox_settle(s->ob, st, k) : 0;
        if (rc == 0 && k)
            s->st.settles++;
        if (rc == 0) {
            for (size_t h = 0; h < n; h++)
                if (ans[h].f)
                    s_answer_done(s, &ans[h]);
        } /* else logged; the batches stay in flight and are resent */
    } else {
        AS_ERROR("sender", "out of memory settling %zu answers; their batches will be resent", n);
    }
    free(st);
    free(taken);
    for (size_t h = 0; h < n; h++)
        aidstat__v1__ingest_message__free_unpacked(s->held[h], NULL);
    s_fill(s);
}

static void s_on_nil_echo(as_sender_t *s, const Aidstat__V1__NilReport *nr)
{
    for (size_t i = 0; i < s->window; i++) {
        s_flight_t *f = &s->flights[i];
        if (f->used && f->batch_seq == 0 && f->nil_year == nr->year && f->nil_month == nr->month) {
            as_outbox_settle_t st = {f->items[0].seq, false, 0, NULL};
            if (as_outbox_settle(s->ob, &st, 1) == 0) {
                s->st.settles++;
                AS_INFO("sender", "nil report for %04u-%02u acknowledged by the aggregator",
                        nr->year, nr->month);
                s->st.acked++;
                s_flight_clear(f);
                s->st.in_flight--;
            }
        }
    }
}

static void s_on_welcome(as_sender_t *s, const Aidstat__V1__Welcome *w)
{
    bool again = s->st.welcomed;
    s->st.welcomed = true;
    if (w->last_batch_seq > s->batch_floor)
        s->batch_floor = w->last_batch_seq;
    if (!again)
        AS_INFO("sender",
                "aggregator welcomed us (protocol %u); %zu batches in flight to "
                "resend, backlog %llu",
                w->protocol_version, s->st.in_flight, (unsigned long long)as_outbox_backlog(s->ob));
    /* Whatever was in flight may have been lost with the old connection: same seq, same events.
     * A second Welcome (an answer to a repeated Hello) resends only what was never sent. */
    for (size_t i = 0; i < s->window; i++)
        if (s->flights[i].used && (!again || !s->flights[i].sent_ms))
            s_flight_send(s, &s->flights[i]);
    s_fill(s);
}

/* Takes m (unpacked): a batch result is held to be settled with the others of this pass; any
 * other message is handled now, after the results held before it. */
static void s_handle(as_sender_t *s, Aidstat__V1__IngestMessage *m)
{
    s->last_heard_ms = uv_now(s->loop);
    if (m->body_case == AIDSTAT__V1__INGEST_MESSAGE__BODY_BATCH_RESULT && m->batch_result) {
        s->held[s->nheld++] = m;
        if (s->nheld == HOLD_MAX)
            s_settle_held(s);
        return;
    }
    s_settle_held(s);
    switch (m->body_case) {
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_WELCOME:
        s_on_welcome(s, m->welcome);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_NIL_REPORT:
        s_on_nil_echo(s, m->nil_report);
        s_fill(s);
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_HEARTBEAT:
        break;
    case AIDSTAT__V1__INGEST_MESSAGE__BODY_ERROR:
        AS_WARN("sender", "aggregator reports an error: %s; saying Hello again", m->error->reason);
        s->st.welcomed = false;
        break;
    default:
        AS_WARN("sender", "unexpected message (body %d) from the aggregator; ignored",
                (int)m->body_case);
    }
    aidstat__v1__ingest_message__free_unpacked(m, NULL);
}

static void s_on_readable(void *sock, void *arg)
{
    as_sender_t *s = arg;
    for (int i = 0; i < RECV_BUDGET; i++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        Aidstat__V1__IngestMessage *m =
            aidstat__v1__ingest_message__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
        if (m)
            s_handle(s, m);
        else
            AS_WARN("sender", "undecodable message of %zu bytes from the aggregator; ignored",
                    zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
    s_settle_held(s);
}

/* ---- the tick ------------------------------------------------------------------------------- */

static void s_tick(uv_timer_t *t)
{
    as_sender_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    if (s->st.welcomed && now - s->last_heard_ms > s->dead_ms) {
        AS_WARN("sender",
                "nothing heard from the aggregator for %llu ms; treating it as down, "
                "saying Hello until it answers (%zu batches in flight, kept)",
                (unsigned long long)(now - s->last_heard_ms), s->st.in_flight);
        s->st.welcomed = false;
    }
    /* tick fast while waiting for a Welcome (only a Hello attempt each time), at the heartbeat
     * once welcomed; a new repeat takes effect from the tick after next */
    uv_timer_set_repeat(t, s->st.welcomed ? s->heartbeat_ms : HELLO_RETRY_MS);
    if (!s->st.welcomed) {
        if (!s->last_hello_ms || now - s->last_hello_ms >= 2 * s->heartbeat_ms)
            s_send_hello(s);
        return;
    }
    s_send_heartbeat(s);
    for (size_t i = 0; i < s->window; i++) {
        s_flight_t *f = &s->flights[i];
        if (f->used && (!f->sent_ms || now - f->sent_ms >= s->resend_ms)) {
            if (f->sent_ms)
                AS_WARN("sender", "batch %llu unanswered for %llu ms; resending it",
                        (unsigned long long)f->batch_seq, (unsigned long long)(now - f->sent_ms));
            s_flight_send(s, f);
        }
    }
    s_fill(s);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static char *s_dup(const char *v)
{
    return strdup(v ? v : "");
}

as_sender_t *as_sender_new(uv_loop_t *loop, void *zctx, as_outbox_t *ob, const as_sender_opts_t *o,
                           int *err)
{
    as_sender_t *s = calloc(1, sizeof *s);
    if (!s) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    s->loop = loop;
    s->zctx = zctx;
    s->ob = ob;
    s->endpoint = s_dup(o->endpoint);
    s->collector_id = s_dup(o->collector_id);
    s->curve_secret = s_dup(o->curve_secret);
    s->aggregator_key = s_dup(o->aggregator_key);
    s->county = o->county;
    s->batch_size = o->batch_size ? o->batch_size : 500;
    s->window = o->window ? o->window : 16;
    s->resend_ms = o->resend_ms ? o->resend_ms : 10000;
    s->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : 1000;
    s->dead_ms = s->heartbeat_ms * (o->dead_after ? o->dead_after : 5);
    s->flights = calloc(s->window, sizeof *s->flights);
    if (!s->endpoint || !s->collector_id || !s->curve_secret || !s->aggregator_key || !s->flights) {
        *err = AS_E_NOMEM;
        goto fail;
    }
    if (!(s->sock = s_socket(s, err)))
        goto fail;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, s_tick, 0, HELLO_RETRY_MS); /* not welcomed yet */
    return s;
fail:
    free(s->endpoint);
    free(s->collector_id);
    free(s->curve_secret);
    free(s->aggregator_key);
    free(s->flights);
    free(s);
    return NULL;
}

static void s_timer_closed(uv_handle_t *h)
{
    as_sender_t *s = h->data;
    for (size_t i = 0; i < s->window; i++)
        s_flight_clear(&s->flights[i]);
    free(s->flights);
    free(s->endpoint);
    free(s->collector_id);
    free(s->curve_secret);
    free(s->aggregator_key);
    free(s);
}

void as_sender_destroy(as_sender_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_sender_t *s = *self_p;
    *self_p = NULL;
    as_zpoll_destroy(&s->zpoll);
    zmq_close(s->sock);
    s->sock = NULL;
    uv_close((uv_handle_t *)&s->timer, s_timer_closed);
}

void as_sender_kick(as_sender_t *s)
{
    s_fill(s);
}

int as_sender_reload(as_sender_t *s)
{
    as_zpoll_t *old_zp = s->zpoll;
    void *old = s->sock;
    int err = 0;
    s->zpoll = NULL;
    void *z = s_socket(s, &err);
    if (!z) {
        s->zpoll = old_zp;
        return AS_E_INVALID;
    }
    as_zpoll_destroy(&old_zp);
    zmq_close(old);
    s->sock = z;
    s->st.welcomed = false;
    s->last_hello_ms = 0;
    for (size_t i = 0; i < s->window; i++)
        s->flights[i].sent_ms = 0; /* resent after the new Welcome */
    s_send_hello(s);
    return 0;
}

void as_sender_on_reject(as_sender_t *s, as_sender_reject_cb cb, void *arg)
{
    s->reject_cb = cb;
    s->reject_arg = arg;
}

void as_sender_stats(const as_sender_t *s, as_sender_stats_t *st)
{
    *st = s->st;
}
