/* feed: the downstream PUB feed of committed events and the per-second heartbeat. */
#include "feed.h"
#include "err.h"
#include "log.h"
#include "wire.h"

#include "aidstat/v1/feed.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <zmq.h>

#define S_HEARTBEAT_MS 1000
#define S_LINGER_MS    500

struct as_feed_s {
    uv_timer_t timer;   /* heartbeat */
    void *pub;          /* PUB socket */
    uint64_t last_seq;  /* newest sequence published (or the ledger's at start) */
    uint64_t published; /* messages sent */
    uint64_t drops;     /* messages that could not be sent */
    uint8_t *buf;       /* packing buffer */
    size_t cap;
};

/* "%06u" of a county code into d (7 bytes with the NUL), without printf: once per event. */
static void s_county_digits(char *d, uint32_t county)
{
    if (county > 999999) {
        snprintf(d, 21, "%u", (unsigned)county);
        return;
    }
    for (int i = 5; i >= 0; i--, county /= 10)
        d[i] = (char)('0' + county % 10);
    d[6] = 0;
}
static uint64_t s_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

int as_feed_kind(const as_event_t *ev)
{
    if (ev->has_correction && ev->retract)
        return AIDSTAT__V1__FEED_KIND__FEED_RETRACTION;
    if (ev->has_correction && !(ev->flags & AS_FLAG_CORRECTION_TARGET_MISSING))
        return AIDSTAT__V1__FEED_KIND__FEED_CORRECTION;
    return AIDSTAT__V1__FEED_KIND__FEED_EVENT;
}

static uint8_t *s_reserve(as_feed_t *f, size_t n)
{
    if (n > f->cap) {
        uint8_t *b = realloc(f->buf, n);
        if (!b)
            return NULL;
        f->buf = b;
        f->cap = n;
    }
    return f->buf;
}

/* Sends [topic, header, payload]; counts the message once, sent or dropped. With ev, the
 * payload is ev packed; else pl bytes at pb (none for a heartbeat). */
static void s_send3(as_feed_t *f, const char *topic, const Aidstat__V1__FeedHeader *h,
                    const as_event_t *ev, const uint8_t *pb, size_t pl)
{
    size_t hl = aidstat__v1__feed_header__get_packed_size(h);
    if (ev)
        pl = as_event_packed_size(ev);
    uint8_t *b = s_reserve(f, hl + (ev ? pl : 0) + 1);
    if (!b) {
        f->drops++;
        return;
    }
    aidstat__v1__feed_header__pack(h, b);
    if (ev) {
        as_event_pack(ev, b + hl);
        pb = b + hl;
    }
    if (zmq_send(f->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(f->pub, b, hl, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(f->pub, pl ? pb : b, pl, ZMQ_DONTWAIT) < 0) {
        if (f->drops++ % 10000 == 0)
            AS_WARN("feed",
                    "cannot publish on the feed: %s (%llu dropped so far; subscribers "
                    "recover by replay)",
                    zmq_strerror(zmq_errno()), (unsigned long long)f->drops);
        return;
    }
    f->published++;
}

static void s_publish(as_feed_t *f, uint64_t seq, uint64_t commit_ms, uint32_t county, int kind,
                      uint32_t flags, const as_event_t *ev, const uint8_t *pb, size_t pb_len)
{
    Aidstat__V1__FeedHeader h = AIDSTAT__V1__FEED_HEADER__INIT;
    h.seq = seq;
    h.kind = (Aidstat__V1__FeedKind)kind;
    h.commit_time_ms = commit_ms;
    h.county_code = county;
    h.flags = flags;
    char topic[24] = "ev.";
    s_county_digits(topic + 3, county);
    s_send3(f, topic, &h, ev, pb, pb_len);
    if (seq > f->last_seq)
        f->last_seq = seq;
}

void as_feed_publish(as_feed_t *f, uint64_t seq, uint64_t commit_ms, const as_event_t *ev)
{
    s_publish(f, seq, commit_ms, ev->county, as_feed_kind(ev), ev->flags, ev, NULL, 0);
}

void as_feed_publish_packed(as_feed_t *f, uint64_t seq, uint64_t commit_ms, uint32_t county,
                            int kind, uint32_t flags, const uint8_t *pb, size_t pb_len)
{
    s_publish(f, seq, commit_ms, county, kind, flags, NULL, pb, pb_len);
}

void as_feed_publish_report(as_feed_t *f, uint32_t year, bool final, const char *dir, uint64_t ms)
{
    Aidstat__V1__FeedHeader h = AIDSTAT__V1__FEED_HEADER__INIT;
    h.seq = f->last_seq;
    h.kind = AIDSTAT__V1__FEED_KIND__FEED_REPORT;
    h.commit_time_ms = ms;
    Aidstat__V1__ReportNotice rn = AIDSTAT__V1__REPORT_NOTICE__INIT;
    rn.year = year;
    rn.final = final;
    rn.directory = (char *)dir;
    rn.generated_ms = ms;
    size_t hl = aidstat__v1__feed_header__get_packed_size(&h);
    size_t pl = aidstat__v1__report_notice__get_packed_size(&rn);
    uint8_t *b = s_reserve(f, hl + pl + 1);
    char topic[24];
    snprintf(topic, sizeof topic, "report.%u", year);
    if (!b) {
        f->drops++;
        return;
    }
    aidstat__v1__feed_header__pack(&h, b);
    aidstat__v1__report_notice__pack(&rn, b + hl);
    if (zmq_send(f->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(f->pub, b, hl, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(f->pub, b + hl, pl, ZMQ_DONTWAIT) < 0) {
        f->drops++;
        AS_WARN("feed", "cannot publish %s: %s", topic, zmq_strerror(zmq_errno()));
        return;
    }
    f->published++;
}

static void s_heartbeat(uv_timer_t *t)
{
    as_feed_t *f = t->data;
    Aidstat__V1__FeedHeader h = AIDSTAT__V1__FEED_HEADER__INIT;
    h.seq = f->last_seq;
    h.kind = AIDSTAT__V1__FEED_KIND__FEED_HEARTBEAT;
    h.commit_time_ms = s_now_ms();
    s_send3(f, "hb", &h, NULL, NULL, 0);
}

as_feed_t *as_feed_new(uv_loop_t *loop, void *zctx, const char *endpoint, uint64_t last_seq,
                       int sndhwm, int *err)
{
    as_feed_t *f = calloc(1, sizeof *f);
    if (!f) {
        *err = AS_E_NOMEM;
        return NULL;
    }
    f->last_seq = last_seq;
    f->pub = zmq_socket(zctx, ZMQ_PUB);
    int hwm = sndhwm > 0 ? sndhwm : AS_FEED_SNDHWM, linger = S_LINGER_MS;
    if (!f->pub || zmq_setsockopt(f->pub, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(f->pub, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(f->pub, endpoint) != 0) {
        AS_ERROR("feed", "cannot bind the feed on %s: %s", endpoint, zmq_strerror(zmq_errno()));
        if (f->pub)
            zmq_close(f->pub);
        free(f);
        *err = AS_E_ZMQ;
        return NULL;
    }
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, s_heartbeat, S_HEARTBEAT_MS, S_HEARTBEAT_MS);
    AS_INFO("feed", "publishing committed events on %s", endpoint);
    return f;
}

uint64_t as_feed_published(const as_feed_t *f)
{
    return f->published;
}

uint64_t as_feed_drops(const as_feed_t *f)
{
    return f->drops;
}

static void s_close_cb(uv_handle_t *h)
{
    as_feed_t *f = h->data;
    free(f->buf);
    free(f);
}

void as_feed_destroy(as_feed_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    as_feed_t *f = *self_p;
    *self_p = NULL;
    zmq_close(f->pub);
    f->pub = NULL;
    uv_close((uv_handle_t *)&f->timer, s_close_cb);
}
