/* test_feed: the downstream PUB feed on ipc:// in a temporary folder, read by a real SUB —
 * topics by county prefix, the FeedHeader of each kind (event, correction, retraction, a
 * correction whose target was missing), the Event payload decoding back to what was published,
 * report notices, heartbeats carrying the newest sequence, counters, and bind failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agg_fixture.h"
#include "feed.h"
#include "wire.h"

#include "aidstat/v1/feed.pb-c.h"

typedef struct {
    af_t *a;
    as_feed_t *feed;
    void *sub;
    char ep[160];
} fx_t;

/* One received feed message. */
typedef struct {
    char topic[32];
    Aidstat__V1__FeedHeader *h;
    uint8_t payload[4096];
    size_t payload_len;
} msg_t;

static int s_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->a = af_open();
    af_endpoint(f->a, "feed", f->ep, sizeof f->ep);
    int err = 0;
    f->feed = as_feed_new(&f->a->loop, f->a->zctx, f->ep, 42, 0, &err);
    assert_non_null(f->feed);
    f->sub = zmq_socket(f->a->zctx, ZMQ_SUB);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(f->sub, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "hb", 2), 0);
    assert_int_equal(zmq_connect(f->sub, f->ep), 0);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *f = *state;
    zmq_close(f->sub);
    as_feed_destroy(&f->feed);
    as_feed_destroy(&f->feed); /* safe twice */
    assert_int_equal(af_close(f->a), 0);
    free(f);
    return 0;
}

/* Pumps the loop until one message arrives (ms at most); false when none did. */
static bool s_recv(fx_t *f, msg_t *m, int ms)
{
    memset(m, 0, sizeof *m);
    uint64_t end = af_now_ms() + (uint64_t)ms;
    while (af_now_ms() < end) {
        int n = zmq_recv(f->sub, m->topic, sizeof m->topic - 1, ZMQ_DONTWAIT);
        if (n < 0) {
            af_pump(f->a, 2);
            continue;
        }
        m->topic[n] = 0;
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(f->sub, ZMQ_RCVMORE, &more, &sz);
        assert_true(more);
        uint8_t hb[256];
        n = zmq_recv(f->sub, hb, sizeof hb, 0);
        assert_true(n >= 0);
        m->h = aidstat__v1__feed_header__unpack(NULL, (size_t)n, hb);
        assert_non_null(m->h);
        zmq_getsockopt(f->sub, ZMQ_RCVMORE, &more, &sz);
        assert_true(more); /* always three frames, the last maybe empty */
        n = zmq_recv(f->sub, m->payload, sizeof m->payload, 0);
        assert_true(n >= 0 && (size_t)n <= sizeof m->payload);
        m->payload_len = (size_t)n;
        zmq_getsockopt(f->sub, ZMQ_RCVMORE, &more, &sz);
        assert_false(more);
        return true;
    }
    return false;
}

static void s_free(msg_t *m)
{
    aidstat__v1__feed_header__free_unpacked(m->h, NULL);
    m->h = NULL;
}

/* Waits for a heartbeat: after it, the subscriptions made before are in force. */
static void s_sync(fx_t *f, msg_t *m)
{
    for (int i = 0; i < 5; i++) {
        assert_true(s_recv(f, m, 2500));
        if (!strcmp(m->topic, "hb"))
            return;
        s_free(m);
    }
    fail_msg("no heartbeat");
}

static void test_heartbeat_carries_newest_seq(void **state)
{
    fx_t *f = *state;
    msg_t m;
    uint64_t t0 = af_now_ms();
    s_sync(f, &m);
    assert_true(af_now_ms() - t0 < 2500); /* about once a second */
    assert_int_equal(m.h->kind, AIDSTAT__V1__FEED_KIND__FEED_HEARTBEAT);
    assert_int_equal(m.h->seq, 42); /* the ledger's at start */
    assert_int_equal(m.payload_len, 0);
    uint64_t wall = (uint64_t)time(NULL) * 1000;
    assert_true(m.h->commit_time_ms + 5000 > wall && m.h->commit_time_ms < wall + 5000);
    s_free(&m);

    as_event_t ev = af_event(f->a, 360730, 1, 20260101);
    as_feed_publish(f->feed, 50, 1, &ev);
    as_feed_publish(f->feed, 49, 1, &ev); /* an older one does not move the newest back */
    assert_true(s_recv(f, &m, 2500));
    assert_string_equal(m.topic, "hb"); /* events are not subscribed */
    assert_int_equal(m.h->seq, 50);
    s_free(&m);
    assert_int_equal(as_feed_drops(f->feed), 0);
}

static void test_events_by_topic(void **state)
{
    fx_t *f = *state;
    msg_t m;
    assert_int_equal(zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "ev.3607", 7), 0);
    s_sync(f, &m);
    s_free(&m);
    uint64_t before = as_feed_published(f->feed);

    as_event_t a = af_event(f->a, 360730, 1, 20260101);
    a.flags = AS_FLAG_UNREGISTERED | AS_FLAG_OUTLIER;
    snprintf(a.note, sizeof a.note, "入户走访");
    as_event_t other = af_event(f->a, 360102, 2, 20260102); /* another city: not subscribed */
    as_event_t corr = af_change(f->a, &a, false);
    as_event_t retr = af_change(f->a, &a, true);
    as_event_t orphan = af_change(f->a, &a, false); /* its target was not live */
    orphan.flags = AS_FLAG_CORRECTION_TARGET_MISSING;
    as_event_t c731 = af_event(f->a, 360731, 3, 20260103);
    as_feed_publish(f->feed, 43, 1111, &a);
    as_feed_publish(f->feed, 44, 1111, &other);
    as_feed_publish(f->feed, 45, 2222, &corr);
    as_feed_publish(f->feed, 46, 2222, &retr);
    as_feed_publish(f->feed, 47, 3333, &orphan);
    uint8_t packed[4096]; /* already packed (the event log's bytes): the same message */
    size_t plen = as_event_pack(&c731, packed);
    as_feed_publish_packed(f->feed, 48, 3333, c731.county, as_feed_kind(&c731), c731.flags, packed,
                           plen);
    assert_int_equal(as_feed_published(f->feed), before + 6);

    const struct {
        const char *topic;
        uint64_t seq, ms;
        int kind;
        const as_event_t *ev;
    } want[] = {
        {"ev.360730", 43, 1111, AIDSTAT__V1__FEED_KIND__FEED_EVENT, &a},
        {"ev.360730", 45, 2222, AIDSTAT__V1__FEED_KIND__FEED_CORRECTION, &corr},
        {"ev.360730", 46, 2222, AIDSTAT__V1__FEED_KIND__FEED_RETRACTION, &retr},
        {"ev.360730", 47, 3333, AIDSTAT__V1__FEED_KIND__FEED_EVENT, &orphan},
        {"ev.360731", 48, 3333, AIDSTAT__V1__FEED_KIND__FEED_EVENT, &c731},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        do {
            assert_true(s_recv(f, &m, 2500));
            if (!strcmp(m.topic, "hb"))
                s_free(&m);
        } while (!m.h);
        assert_string_equal(m.topic, want[i].topic);
        assert_int_equal(m.h->seq, want[i].seq);
        assert_int_equal(m.h->kind, want[i].kind);
        assert_int_equal(m.h->commit_time_ms, want[i].ms);
        assert_int_equal(m.h->county_code, want[i].ev->county);
        assert_int_equal(m.h->flags, want[i].ev->flags);
        as_event_t back;
        assert_int_equal(as_event_unpack(m.payload, m.payload_len, &back), 0);
        assert_memory_equal(back.id, want[i].ev->id, AS_ID_LEN);
        assert_string_equal(back.event_id, want[i].ev->event_id);
        assert_string_equal(back.org_code, want[i].ev->org_code);
        assert_string_equal(back.note, want[i].ev->note);
        assert_int_equal(back.funds_fen, want[i].ev->funds_fen);
        assert_int_equal(back.has_correction, want[i].ev->has_correction);
        assert_int_equal(back.retract, want[i].ev->retract);
        if (back.has_correction)
            assert_memory_equal(back.correction_of, a.id, AS_ID_LEN);
        s_free(&m);
    }
    /* nothing else: the 360102 event went to nobody here */
    while (s_recv(f, &m, 300)) {
        assert_string_equal(m.topic, "hb");
        s_free(&m);
    }
}

static void test_feed_kind(void **state)
{
    fx_t *f = *state;
    as_event_t ev = af_event(f->a, 360730, 1, 20260101);
    assert_int_equal(as_feed_kind(&ev), AIDSTAT__V1__FEED_KIND__FEED_EVENT);
    ev.retract = true; /* retract without a target is no retraction */
    assert_int_equal(as_feed_kind(&ev), AIDSTAT__V1__FEED_KIND__FEED_EVENT);
    ev.has_correction = true;
    assert_int_equal(as_feed_kind(&ev), AIDSTAT__V1__FEED_KIND__FEED_RETRACTION);
    ev.retract = false;
    assert_int_equal(as_feed_kind(&ev), AIDSTAT__V1__FEED_KIND__FEED_CORRECTION);
    ev.flags = AS_FLAG_OUTLIER | AS_FLAG_CORRECTION_TARGET_MISSING;
    assert_int_equal(as_feed_kind(&ev), AIDSTAT__V1__FEED_KIND__FEED_EVENT);
}

static void test_report_notice(void **state)
{
    fx_t *f = *state;
    msg_t m;
    assert_int_equal(zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "report.", 7), 0);
    s_sync(f, &m);
    s_free(&m);
    as_event_t ev = af_event(f->a, 360730, 1, 20260101);
    as_feed_publish(f->feed, 77, 1, &ev);
    as_feed_publish_report(f->feed, 2026, true, "/var/reports/2026", 1234567);
    do {
        assert_true(s_recv(f, &m, 2500));
        if (!strcmp(m.topic, "hb"))
            s_free(&m);
    } while (!m.h);
    assert_string_equal(m.topic, "report.2026");
    assert_int_equal(m.h->kind, AIDSTAT__V1__FEED_KIND__FEED_REPORT);
    assert_int_equal(m.h->seq, 77); /* the newest published */
    assert_int_equal(m.h->commit_time_ms, 1234567);
    Aidstat__V1__ReportNotice *rn =
        aidstat__v1__report_notice__unpack(NULL, m.payload_len, m.payload);
    assert_non_null(rn);
    assert_int_equal(rn->year, 2026);
    assert_true(rn->final);
    assert_string_equal(rn->directory, "/var/reports/2026");
    assert_int_equal(rn->generated_ms, 1234567);
    aidstat__v1__report_notice__free_unpacked(rn, NULL);
    s_free(&m);
}

static void test_bind_failure(void **state)
{
    fx_t *f = *state;
    int err = 0;
    as_feed_t *g =
        as_feed_new(&f->a->loop, f->a->zctx, "ipc:///nonexistent/aidstat/feed", 0, 0, &err);
    assert_null(g);
    assert_int_equal(err, AS_E_ZMQ);
    err = 0;
    g = as_feed_new(&f->a->loop, f->a->zctx, "tcp://no-such-host.invalid:1", 0, 10, &err);
    assert_null(g);
    assert_int_equal(err, AS_E_ZMQ);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_heartbeat_carries_newest_seq, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_events_by_topic, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_feed_kind, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_report_notice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bind_failure, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
